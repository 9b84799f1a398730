//! Renderers: report data to bytes (the table, JSON, `policy` and `instrument` YAML). Pure functions over any `Write`, so tests print into a `Vec<u8>`.

pub mod instrument;
pub mod json;
pub mod policy;
pub mod policy_input;
pub mod table;

use std::io::{self, Write};

use clap::ValueEnum;

use crate::verdict::Report;

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    /// A readable table that fits the terminal (default on a terminal).
    Table,
    /// The table with every column (audited, forged XFCC, last plaintext, coverage), unwrapped.
    Wide,
    /// The JSON report of the spec (default when stdout is not a terminal).
    Json,
}

/// How a renderer should look.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOptions {
    /// Colour verdicts (ANSI).
    pub color: bool,
    /// The terminal's width in columns: the table wraps its reasons to fit.
    pub width: Option<u16>,
    /// Every column, nothing wrapped (`-o wide`).
    pub wide: bool,
}

/// Writes `report` as `kind`.
pub fn render(
    report: &Report,
    kind: OutputKind,
    opts: RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match kind {
        OutputKind::Table => table::render(report, opts, out),
        OutputKind::Wide => table::render(report, RenderOptions { wide: true, ..opts }, out),
        OutputKind::Json => json::render(report, out),
    }
}
