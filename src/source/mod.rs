//! Sources: where log bytes come from, cut into line-aligned chunks.
//!
//! Every source yields [`Chunk`]s: a run of whole lines (each ending in `\n`)
//! from one input, with the line number of its first line, so parsing can run
//! on many threads while malformed-line examples still name `file:line`.
//! Files and stdin live in [`file`]; the Kubernetes, Loki and Elasticsearch
//! sources yield the same chunks with their stream metadata. Every one cuts
//! its bytes with the one bounded [`lines::LineCutter`].

use std::iter::FusedIterator;
use std::sync::Arc;

pub mod decode;
pub mod export;
pub mod file;
pub mod kube;
pub mod kube_error;
pub mod lines;
pub mod loki;

/// What a source knows about a stream before reading a line of it (the
/// Kubernetes API knows the pod; a file knows nothing and lets the envelope speak).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMeta {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The owning workload's name (from owner references), when known.
    pub workload: Option<String>,
    /// When the container whose log this is started (epoch ms): a log that
    /// begins there covers everything the container ever served.
    pub container_started_ms: Option<i64>,
    /// The pod's labels (the policy work selects workloads by them).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A run of whole lines from one input.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Index into the run's list of inputs.
    pub input: u32,
    /// 1-based line number of the first line in `data`.
    pub first_line: u64,
    /// Whole lines, each terminated by `\n` (a last unterminated line gets one).
    pub data: Vec<u8>,
    /// The stream's metadata, when the source knows it (it wins over the envelope's).
    pub meta: Option<Arc<SourceMeta>>,
    /// Numbers of the lines in `data` that were cut at the maximum line
    /// length, ascending: the pipeline counts them malformed.
    pub cut_lines: Vec<u64>,
    /// Returns true if the lines are framed by [`export::frame`] (a whole
    /// document's entries): the frame, not the envelope, gives their metadata.
    pub framed: bool,
}

impl Chunk {
    /// Iterates the lines without their `\n`.
    ///
    /// Line `i` of the iterator (0-based) is line `first_line + i` of the input.
    pub fn lines(&self) -> Lines<'_> {
        Lines { rest: &self.data }
    }
}

/// The lines of a [`Chunk`], without their `\n` (see [`Chunk::lines`]).
#[derive(Clone, Debug)]
pub struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        // A chunk always ends in `\n`; a missing one (hand-built data) still yields the last line.
        let end = memchr::memchr(b'\n', self.rest).unwrap_or(self.rest.len());
        let line = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        Some(line)
    }
}

impl FusedIterator for Lines<'_> {}

/// A problem reading an input: names the input.
///
/// The message is complete on one line (`web-api.log.gz: No such file or
/// directory (os error 2)`), so the I/O error is deliberately not also
/// exposed as [`std::error::Error::source`]: `anyhow`'s `{:#}` would print it twice.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The input could not be opened or read.
    #[error("{name}: {error}")]
    Io { name: String, error: std::io::Error },
    /// The input starts like a compressed file (gzip, zstd, bzip2, xz) but
    /// its compressed data is corrupt or cut short.
    #[error("{name}: corrupt {format} data: {error}")]
    Decompress {
        name: String,
        format: &'static str,
        error: std::io::Error,
    },
    /// The input is binary (a program, an image, an unknown compression), not a text log.
    #[error("{name}: not a text log: {what}")]
    Binary { name: String, what: String },
    /// Two inputs are the same file or hold the same lines: they would be counted twice.
    #[error("{second}: {how} {first}: each line would be counted twice; pass one of them")]
    SameInput {
        first: String,
        second: String,
        how: &'static str,
    },
    /// A log store's export that cannot be read (not the document it starts like, too large).
    #[error("{name}: {what}")]
    Export { name: String, what: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8]) -> Vec<Vec<u8>> {
        let chunk = Chunk {
            input: 0,
            first_line: 1,
            data: data.to_vec(),
            meta: None,
            cut_lines: Vec::new(),
            framed: false,
        };
        chunk.lines().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn lines_split_on_newlines() {
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\n"), [b""]);
        assert_eq!(lines(b"a\n\nb\n"), [&b"a"[..], b"", b"b"]);
        // Hand-built data without the final `\n` still yields its last line; `\r` is the envelope's.
        assert_eq!(lines(b"a\r\nb"), [&b"a\r"[..], b"b"]);
    }
}
