//! Placeholder until the format compiler lands (see the issue): the interface the pipeline uses.

use super::{AccessEntry, Field, FormatError, FormatSet, Parsed};
use std::path::Path;

/// One compiled log format.
#[derive(Debug)]
pub struct LogFormat {
    name: String,
}

impl LogFormat {
    /// The format's name (`lab`, `istio`, ... or `custom`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns true if and only if the format logs `field`.
    pub fn logs(&self, _field: Field) -> bool {
        todo!()
    }
}

/// Names of the built-in formats, in the order auto-detection tries them.
pub fn builtin_names() -> &'static [&'static str] {
    &["lab", "lab-v0", "lab-cert", "istio", "istio-1.8", "istio-json"]
}

/// Resolves `--log-format`/`--log-format-file` into formats (all built-ins when both are `None` or `auto`).
pub fn select(_log_format: Option<&str>, _file: Option<&Path>) -> Result<Vec<LogFormat>, FormatError> {
    todo!()
}

/// Per-thread matcher state over a shared [`FormatSet`].
pub struct LineParser {
    _formats: FormatSet,
}

impl LineParser {
    pub fn new(formats: FormatSet) -> Self {
        LineParser { _formats: formats }
    }

    /// Parses one line (envelope removed, no trailing newline). `preferred` is the
    /// stream's last matching format: tried first, updated on a match.
    pub fn parse<'a>(&'a mut self, _line: &'a [u8], _preferred: &mut usize) -> Parsed<'a> {
        let _ = AccessEntry::default();
        todo!()
    }
}
