//! Sources: where log bytes come from, cut into line-aligned chunks.
//!
//! Everything up to a [`Chunk`] lives here: a run of whole lines (each
//! ending in `\n`) from one input, with the line number of its first line,
//! so parsing can run on many threads while malformed-line examples still
//! name `file:line`, tagged with what the source knows of its stream
//! ([`SourceMeta`]) and whether its lines are framed ([`Chunk::framed`]).
//! Every reader cuts its bytes with the one bounded [`lines::LineCutter`],
//! but files and stdin for `report`, cut at block ends by [`blocks::BlockCutter`].
//!
//! - [`file`]: files and stdin (compressed or not, [`decode`]), and the log
//!   stores' exports in them ([`export`]).
//! - [`kube`]: the Kubernetes API: which containers to read, and one log
//!   reader ([`kube::log`]) shared by the one-shot read ([`kube::snapshot`])
//!   and the follow of `watch` ([`kube::follow`], [`kube::pods`]).
//! - [`loki`]: Grafana Loki's `query_range`, paged ([`loki::LokiSource`]),
//!   and its push-down ([`loki::pushdown`]), which records counts, not lines.
//!
//! # The contract of a source
//!
//! A new source is a new file here, nothing else. A one-shot source (what
//! `report` reads) implements [`Source`]:
//!
//! 1. [`Source::inputs`] names its inputs; a chunk's [`Chunk::input`] indexes them.
//! 2. [`Source::read`] produces every chunk through `emit` on the calling
//!    thread (stopping when `emit` returns false), cutting bytes with
//!    [`lines::LineCutter`] and tagging them with [`SourceMeta`] when it
//!    knows the stream. Its error ends the run (exit 2): partial data is
//!    never judged. A problem of one stream is not an error: see 3.
//! 3. [`Source::streams`] declares, after the read, every stream it meant
//!    to read with why it failed if it did, so coverage is judged for a
//!    replica that sent no line and a failed read leaves its workload
//!    `insufficient` ([`crate::aggregate::Aggregator::declare`]).
//!
//! `pipeline::run_source` runs one on the worker threads. A live source
//! (`watch`) has the same three parts in async form: tasks send chunks on a
//! channel, and the driver declares each stream as it starts following it
//! (see [`kube::follow`]).

use std::iter::FusedIterator;
use std::sync::Arc;

pub mod blocks;
pub mod decode;
pub mod elastic;
pub mod export;
pub mod file;
pub mod inputs;
pub mod kube;
pub mod kube_error;
pub mod kube_labels;
pub mod lines;
pub mod loki;
pub mod prometheus;
pub mod stats;

/// A one-shot source of chunks: see the module doc for the contract.
pub trait Source {
    /// What ends the whole run (exit 2), naming the input.
    type Error;

    /// The inputs, by index: [`Chunk::input`] refers to them, malformed-line
    /// examples and stream names use them.
    fn inputs(&self) -> Vec<String>;

    /// Reads everything, handing each chunk to `emit` on the calling thread;
    /// stops early (without error) when `emit` returns false.
    fn read(&mut self, emit: &mut dyn FnMut(Chunk) -> bool) -> Result<(), Self::Error>;

    /// After [`read`](Self::read): every stream the source meant to read,
    /// whether or not a line came from it, with why its read failed.
    fn streams(&self) -> Vec<DeclaredStream> {
        Vec::new()
    }

    /// After [`read`](Self::read): what to warn about on stderr (one line
    /// each, without the `strictly: warning: ` prefix).
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Returns true if and only if the same access entry may arrive twice
    /// (overlapping exports): the pipeline then counts each entry once.
    fn may_repeat(&self) -> bool {
        false
    }
}

/// A stream a source meant to read (see [`Source::streams`]).
#[derive(Clone, Debug)]
pub struct DeclaredStream {
    /// The input its chunks carry.
    pub input: u32,
    pub meta: Arc<SourceMeta>,
    /// Why it could not be read, if it could not: its workload is then `insufficient`.
    pub failure: Option<String>,
}

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
    /// The chunk's place among its input's chunks (0, 1, ...) when the reader
    /// left numbering to the pipeline ([`blocks::BlockCutter`]): `first_line`
    /// is then 1 and `cut_lines` count from the chunk's start; the pipeline
    /// settles the input's real numbers in order. None: the numbers are the input's.
    pub seq: Option<u64>,
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
            seq: None,
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
