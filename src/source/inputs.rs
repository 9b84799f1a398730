//! The files and stdin of one `report` run as a [`Source`].
//!
//! Each input is read in turn by [`read_blocks_as`] (decompressed, exports
//! recognised, cut at block ends; the pipeline numbers the lines). The same lines must not
//! count twice: the same file named twice is refused before reading
//! ([`check_distinct`]), the same content under two names (`x.log`,
//! `x.log.gz`) after reading it; an entry repeated across overlapping
//! exports is the pipeline's to drop ([`Source::may_repeat`]).

use super::file::{Input, check_distinct, read_blocks_as};
use super::{Chunk, Source, SourceError};
use crate::envelope::InputKind;

/// The inputs of one run, read in order.
pub struct Inputs<'a> {
    inputs: &'a [Input],
    kind: InputKind,
    chunk_size: usize,
    max_line: usize,
    /// Called with the raw bytes consumed, for a progress bar.
    progress: &'a (dyn Fn(u64) + Sync),
    warnings: Vec<String>,
}

impl<'a> Inputs<'a> {
    /// The inputs to read as `kind`; refuses (before reading) an input named twice.
    pub fn new(
        inputs: &'a [Input],
        kind: InputKind,
        chunk_size: usize,
        max_line: usize,
        progress: &'a (dyn Fn(u64) + Sync),
    ) -> Result<Inputs<'a>, SourceError> {
        check_distinct(inputs)?;
        Ok(Inputs {
            inputs,
            kind,
            chunk_size,
            max_line,
            progress,
            warnings: Vec::new(),
        })
    }
}

impl Source for Inputs<'_> {
    type Error = SourceError;

    fn inputs(&self) -> Vec<String> {
        self.inputs.iter().map(Input::name).collect()
    }

    /// Refuses (after reading it) an input whose decoded content equals an earlier one's.
    fn read(&mut self, emit: &mut dyn FnMut(Chunk) -> bool) -> Result<(), SourceError> {
        let mut contents: Vec<(u128, &Input)> = Vec::new();
        for (i, input) in self.inputs.iter().enumerate() {
            // The pipeline numbers the lines (the reader only finds block
            // ends); only several inputs need the content fingerprint.
            let stats = read_blocks_as(
                input,
                self.kind,
                i as u32,
                self.chunk_size,
                self.max_line,
                self.inputs.len() > 1,
                self.progress,
                emit,
            )?;
            if let Some((bytes, zeros)) = stats.ignored_trailing {
                let what = if zeros {
                    "NUL padding"
                } else {
                    "trailing garbage"
                };
                self.warnings.push(format!(
                    "{input}: decompression OK, {what} ignored ({bytes} bytes after the last gzip member)"
                ));
            }
            if stats.dropped_entries > 0 {
                self.warnings.push(format!(
                    "{input}: Loki dropped {} entr{} from this tail (dropped_entries): they are not counted",
                    stats.dropped_entries,
                    if stats.dropped_entries == 1 { "y" } else { "ies" }
                ));
            }
            // Empty inputs are all alike and count nothing twice.
            if self.inputs.len() > 1 && stats.bytes > 0 {
                if let Some((_, first)) = contents.iter().find(|(h, _)| *h == stats.content_hash) {
                    return Err(SourceError::SameInput {
                        first: first.name(),
                        second: input.name(),
                        how: "the same lines as",
                    });
                }
                contents.push((stats.content_hash, input));
            }
        }
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    /// Always, not only across inputs: `cat a.log b.log | strictly report` of
    /// two overlapping exports is one input (review finding F7).
    fn may_repeat(&self) -> bool {
        true
    }
}
