//! The JSON report (spec §5): the serialized [`Report`], pretty-printed, one trailing newline.

use std::io::{self, Write};

use crate::verdict::Report;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}
