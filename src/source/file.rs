//! Files and stdin as chunk sources.
//!
//! [`Input`] names what the user passed (a path, or `-`/nothing for stdin);
//! [`Input::open`] gives an [`InputReader`] that decompresses gzip, zstd,
//! bzip2 and xz (see [`super::decode`]: detected by magic bytes, not the
//! file name) and counts the raw bytes it consumed, so a progress bar can
//! show the position against [`Input::len_hint`]. [`read_chunks`] cuts what
//! it reads into line-aligned [`Chunk`]s for the parser threads with the one
//! bounded [`LineCutter`], refuses binary input, and fingerprints the
//! decoded content so the same lines given twice can be refused.
//! [`read_blocks_as`], what `report` uses, does the same but cuts blocks at
//! their last newline ([`BlockCutter`]) and leaves counting and numbering
//! the lines to the pipeline's workers.
//!
//! Memory stays bounded whatever the input: a line longer than `max_line` is
//! cut, and the rest of it is read and thrown away, never buffered.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::blocks::BlockCutter;
use super::decode::{BINARY_CHECK_BYTES, RawSource, binary_reason};
use super::export;
use super::lines::LineCutter;
use super::{Chunk, SourceError};
use crate::envelope::InputKind;

pub use super::decode::{Compression, InputReader};
pub use super::lines::DEFAULT_MAX_LINE;

/// A good block size for [`read_chunks`]: large enough that per-chunk
/// overhead (channel send, thread wake-up) vanishes, small enough that every
/// parser thread gets work early.
pub const DEFAULT_CHUNK_SIZE: usize = 2 << 20;

/// One input the user named: a file, or standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Stdin,
    Path(PathBuf),
}

impl Input {
    /// The input for one command-line argument: `-` is stdin, anything else a path.
    pub fn from_arg(arg: impl Into<PathBuf>) -> Input {
        let path = arg.into();
        if path.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::Path(path)
        }
    }

    /// Standard input.
    pub fn stdin() -> Input {
        Input::Stdin
    }

    /// A file, taken literally (even one named `-`).
    pub fn path(path: impl Into<PathBuf>) -> Input {
        Input::Path(path.into())
    }

    /// The inputs for the command line's file arguments: stdin when there are none.
    pub fn from_args<I, P>(args: I) -> Vec<Input>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let inputs: Vec<Input> = args.into_iter().map(Input::from_arg).collect();
        if inputs.is_empty() {
            vec![Input::Stdin]
        } else {
            inputs
        }
    }

    /// The name errors and `file:line` references use: the path as given, or `<stdin>`.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The file's size in bytes (compressed size when compressed), for a progress bar;
    /// None for stdin and anything that is not a regular file (a pipe, `/dev/stdin`).
    pub fn len_hint(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::Path(path) => std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
        }
    }

    /// Opens the input, decompressing it if its first bytes say it is compressed.
    pub fn open(&self) -> Result<InputReader, SourceError> {
        let name = self.name();
        let raw = match self {
            Input::Stdin => RawSource::Stdin(io::stdin()),
            Input::Path(path) => match File::open(path) {
                Ok(file) => RawSource::File(file),
                Err(error) => return Err(SourceError::Io { name, error }),
            },
        };
        InputReader::new(name, raw)
    }

    /// The file's identity (device, inode), where the platform has one.
    fn identity(&self) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let path = match self {
                // Linux and the BSDs resolve it to what fd 0 is: `report x.log - < x.log` is caught too.
                Input::Stdin => std::path::Path::new("/dev/stdin"),
                Input::Path(p) => p.as_path(),
            };
            std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            None
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::Path(path) => path.display().fmt(f),
        }
    }
}

/// Refuses the same file named twice (same device and inode: a hard link,
/// `./x.log` and `x.log`, `x.log` and stdin redirected from it), before
/// anything is read. The same content under two names (`x.log` and
/// `x.log.gz`) is caught while reading, by [`ReadStats::content_hash`].
pub fn check_distinct(inputs: &[Input]) -> Result<(), SourceError> {
    if inputs.len() < 2 {
        return Ok(());
    }
    let mut seen: Vec<((u64, u64), &Input)> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Some(id) = input.identity() else { continue };
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
            return Err(SourceError::SameInput {
                first: first.name(),
                second: input.name(),
                how: "the same file as",
            });
        }
        seen.push((id, input));
    }
    Ok(())
}

/// What [`read_chunks`] read from one input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes consumed from the file (compressed bytes when compressed).
    pub raw_bytes: u64,
    /// Decoded bytes read, before long lines were cut.
    pub bytes: u64,
    /// Lines emitted (a cut line counts once); 0 from [`read_blocks_as`],
    /// whose reader does not count them (the pipeline's workers do).
    pub lines: u64,
    /// Lines longer than `max_line`, emitted cut to `max_line` bytes.
    pub cut_lines: u64,
    /// Chunks emitted.
    pub chunks: u64,
    /// Returns true if `emit` asked to stop before the end of the input.
    pub stopped: bool,
    /// A fingerprint of the decoded bytes (XXH3-128): equal for the same
    /// lines whatever the compression and block size. Covers only what was
    /// read when `stopped`; 0 when [`read_blocks_as`] was told not to fingerprint.
    pub content_hash: u128,
    /// Entries a Loki `tail` export says were dropped (never read: the verdict misses them).
    pub dropped_entries: u64,
    /// Bytes after the last gzip member that were ignored, as `zcat` does,
    /// and whether they were all NUL (padding); None if there were none.
    pub ignored_trailing: Option<(u64, bool)>,
}

/// Reads one input into line-aligned chunks.
///
/// Opens `input` (see [`Input::open`]) and reads it in blocks of about
/// `chunk_size` bytes; each [`Chunk`] holds whole lines ending in `\n` (a last
/// unterminated line gets one), is tagged with `input_index`, and its
/// `first_line` is the 1-based number of its first line in the input. A line
/// longer than `max_line` bytes (without its `\n`) is cut to `max_line` bytes
/// and its number listed in the chunk's `cut_lines`; the rest of it is
/// discarded as it is read, so memory stays at about `chunk_size + max_line`
/// per reader, and the line still counts as one.
///
/// `progress` is called after each block with the number of raw bytes read
/// since the previous call (compressed bytes when compressed), to advance a
/// bar sized by [`Input::len_hint`]. `emit` receives each chunk; returning
/// false stops reading (the result then has `stopped` set).
///
/// Errors name the input: it cannot be opened, a read fails, its compressed
/// data is corrupt or cut short, or it is binary (a NUL byte or an ELF header
/// in its first 8 KiB). Chunks emitted before an error stand.
///
/// Each block is read to its full size (or the end of the input) before its
/// lines are emitted: right for files and a drained pipe, not for following
/// a live stream line by line.
pub fn read_chunks(
    input: &Input,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    read_chunks_as(
        input,
        InputKind::Auto,
        input_index,
        chunk_size,
        max_line,
        progress,
        emit,
    )
}

/// [`read_chunks`] for `--input KIND`: with `auto`, `loki` and `elastic`, an
/// input that starts like a whole JSON document (a saved Loki or
/// Elasticsearch response, see [`super::export`]) is read as one and cut
/// into framed chunks; `loki` and `elastic` insist on it unless the input is
/// one entry per line (logcli, elasticdump).
pub fn read_chunks_as(
    input: &Input,
    kind: InputKind,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    let mut reader = input.open()?;
    read_chunks_impl(
        &mut reader,
        kind,
        input_index,
        chunk_size,
        max_line,
        NUMBERED,
        progress,
        emit,
    )
}

/// [`read_chunks`] over an already opened reader (stdin handed over by a test, a network body).
pub fn read_chunks_from(
    reader: &mut InputReader,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    read_chunks_impl(
        reader,
        InputKind::Raw,
        input_index,
        chunk_size,
        max_line,
        NUMBERED,
        progress,
        emit,
    )
}

/// [`read_chunks_as`] for the pipeline: a plain (non-document) input is cut
/// by one `memrchr` per block ([`BlockCutter`]), its chunks numbered by the
/// pipeline ([`Chunk::seq`]), so the reader thread does no per-line work;
/// `ReadStats::lines` is then 0 (the workers count the lines). The content
/// is fingerprinted only if `fingerprint` (it is compared only between
/// several inputs); `content_hash` is 0 otherwise.
#[allow(clippy::too_many_arguments)]
pub fn read_blocks_as(
    input: &Input,
    kind: InputKind,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    fingerprint: bool,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    let mut reader = input.open()?;
    let mode = ReadMode {
        blocks: true,
        fingerprint,
    };
    read_chunks_impl(
        &mut reader,
        kind,
        input_index,
        chunk_size,
        max_line,
        mode,
        progress,
        emit,
    )
}

/// [`read_blocks_as`] over an already opened reader (as [`read_chunks_from`]).
pub fn read_blocks_from(
    reader: &mut InputReader,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    let mode = ReadMode {
        blocks: true,
        fingerprint: true,
    };
    read_chunks_impl(
        reader,
        InputKind::Raw,
        input_index,
        chunk_size,
        max_line,
        mode,
        progress,
        emit,
    )
}

/// How [`read_chunks_impl`] cuts and fingerprints.
#[derive(Clone, Copy, Debug)]
struct ReadMode {
    /// Cut blocks at their last newline and leave numbering to the pipeline.
    blocks: bool,
    /// Compute [`ReadStats::content_hash`].
    fingerprint: bool,
}

const NUMBERED: ReadMode = ReadMode {
    blocks: false,
    fingerprint: true,
};

/// The line cutter (every line looked at, numbered here) or the block cutter.
enum Cutter {
    Lines(LineCutter),
    Blocks(BlockCutter),
}

impl Cutter {
    fn buffer(&mut self) -> &mut Vec<u8> {
        match self {
            Cutter::Lines(c) => c.buffer(),
            Cutter::Blocks(c) => c.buffer(),
        }
    }

    fn room(&mut self) -> usize {
        match self {
            // A carried partial line longer than a block (only when
            // `max_line > chunk_size`) gets another `chunk_size`.
            Cutter::Lines(c) => {
                let (len, size) = (c.buffer().len(), c.chunk_size());
                if len < size { size - len } else { size }
            }
            Cutter::Blocks(c) => c.room(),
        }
    }

    fn chunk_size(&self) -> usize {
        match self {
            Cutter::Lines(c) => c.chunk_size(),
            Cutter::Blocks(c) => c.chunk_size(),
        }
    }

    fn scan(&mut self, from: usize) {
        match self {
            Cutter::Lines(c) => c.scan(from),
            Cutter::Blocks(c) => c.scan(from),
        }
    }

    fn finish(&mut self) {
        match self {
            Cutter::Lines(c) => c.finish(),
            Cutter::Blocks(c) => c.finish(),
        }
    }

    fn take_chunk(&mut self) -> Option<Chunk> {
        match self {
            Cutter::Lines(c) => c.take_chunk(),
            Cutter::Blocks(c) => c.take_chunk(),
        }
    }

    /// Lines emitted, when this cutter counts them (the block cutter does not: 0).
    fn lines(&self) -> u64 {
        match self {
            Cutter::Lines(c) => c.lines(),
            Cutter::Blocks(_) => 0,
        }
    }

    fn cut_lines(&self) -> u64 {
        match self {
            Cutter::Lines(c) => c.cut_lines(),
            Cutter::Blocks(c) => c.cut_lines(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn read_chunks_impl(
    reader: &mut InputReader,
    kind: InputKind,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    mode: ReadMode,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, SourceError> {
    let documents = matches!(kind, InputKind::Auto | InputKind::Loki | InputKind::Elastic);
    let blocks = mode
        .blocks
        .then(|| BlockCutter::new(input_index, chunk_size, max_line))
        .flatten();
    let mut cutter = match blocks {
        Some(b) => Cutter::Blocks(b),
        None => Cutter::Lines(LineCutter::new(input_index, chunk_size, max_line)),
    };
    let chunk_size = cutter.chunk_size();
    let mut stats = ReadStats::default();
    let mut reported_raw = 0;
    // XXH3 runs near memory speed, yet on two cores the reader's every pass
    // over the bytes is taken from the workers: only several inputs need it.
    let mut hasher = mode.fingerprint.then(xxhash_rust::xxh3::Xxh3::new);
    loop {
        let len = cutter.buffer().len();
        let room = cutter.room();
        // `take(..).read_to_end` only stops short of `room` at the end of the
        // input. Through `File` itself it reads into the spare capacity
        // without zeroing it first (std implements `read_buf` for files); any
        // other reader gets its buffer zeroed, which costs as much as a copy.
        let read = reader.read_up_to(room as u64, cutter.buffer());
        let raw = reader.raw_bytes_read();
        if raw > reported_raw {
            progress(raw - reported_raw);
            reported_raw = raw;
        }
        stats.raw_bytes = raw;
        let n = read.map_err(|e| reader.error(e))?;
        stats.bytes += n as u64;
        let new = &cutter.buffer()[len..];
        if let Some(h) = &mut hasher {
            h.update(new);
        }
        if stats.bytes - (n as u64) < BINARY_CHECK_BYTES
            && let Some(what) = binary_reason(new, stats.bytes - n as u64)
        {
            return Err(SourceError::Binary {
                name: reader.name().to_string(),
                what,
            });
        }
        let at_end = n < room;
        if documents
            && len == 0
            && stats.bytes == n as u64
            && let Some(doc) = super::export::document_kind(cutter.buffer())
        {
            use super::export::DocumentKind;
            let other = match (kind, doc) {
                (InputKind::Loki, DocumentKind::Elastic) => Some("an Elasticsearch response"),
                (InputKind::Elastic, DocumentKind::Loki) => Some("a Loki response"),
                (InputKind::Loki, DocumentKind::KibanaCsv) => Some("a Kibana CSV export"),
                _ => None,
            };
            if let Some(other) = other {
                return Err(SourceError::Export {
                    name: reader.name().to_string(),
                    what: format!(
                        "--input {} was given, but this is {other}",
                        if kind == InputKind::Loki {
                            "loki"
                        } else {
                            "elastic"
                        }
                    ),
                });
            }
            // A whole document is bounded (`MAX_DOCUMENT`): fingerprinting it always costs little.
            let stats = read_whole_document(
                reader,
                doc,
                std::mem::take(cutter.buffer()),
                at_end,
                input_index,
                chunk_size,
                max_line,
                progress,
                emit,
                stats,
                hasher.unwrap_or_default(),
                export::MAX_DOCUMENT,
            )?;
            let content_hash = if mode.fingerprint {
                stats.content_hash
            } else {
                0
            };
            return Ok(ReadStats {
                content_hash,
                ..stats
            });
        }
        cutter.scan(len);
        if at_end {
            cutter.finish();
        }
        if let Some(chunk) = cutter.take_chunk() {
            stats.chunks += 1;
            if !emit(chunk) {
                stats.stopped = !at_end;
                break;
            }
        }
        if at_end {
            break;
        }
    }
    stats.lines = cutter.lines();
    stats.cut_lines = cutter.cut_lines();
    stats.content_hash = hasher.map_or(0, |h| h.digest128());
    stats.ignored_trailing = reader.ignored_trailing();
    Ok(stats)
}

/// Reads the rest of a whole JSON document (up to `limit` bytes, [`export::MAX_DOCUMENT`]) and cuts its entries.
#[allow(clippy::too_many_arguments)]
fn read_whole_document(
    reader: &mut InputReader,
    kind: export::DocumentKind,
    mut doc: Vec<u8>,
    mut at_end: bool,
    input_index: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
    mut stats: ReadStats,
    mut hasher: xxhash_rust::xxh3::Xxh3,
    limit: usize,
) -> Result<ReadStats, SourceError> {
    let mut reported_raw = reader.raw_bytes_read();
    while !at_end {
        let room = (limit + 1).saturating_sub(doc.len()).min(8 << 20);
        if room == 0 {
            return Err(SourceError::Export {
                name: reader.name().to_string(),
                what: if kind == export::DocumentKind::KibanaCsv {
                    format!(
                        "a CSV export over {} MiB: export a shorter time range per file, or NDJSON (elasticdump)",
                        limit >> 20
                    )
                } else {
                    format!(
                        "a saved JSON response over {} MiB: export NDJSON instead (logcli -o jsonl, elasticdump), or save smaller pages",
                        limit >> 20
                    )
                },
            });
        }
        let before = doc.len();
        let n = reader
            .read_up_to(room as u64, &mut doc)
            .map_err(|e| reader.error(e))?;
        hasher.update(&doc[before..]);
        let raw = reader.raw_bytes_read();
        if raw > reported_raw {
            progress(raw - reported_raw);
            reported_raw = raw;
        }
        stats.raw_bytes = raw;
        stats.bytes += n as u64;
        at_end = n < room;
    }
    let doc_stats = export::read_document(
        reader.name(),
        kind,
        &doc,
        input_index,
        chunk_size,
        max_line,
        emit,
    )?;
    stats.lines = doc_stats.lines;
    stats.cut_lines = doc_stats.cut_lines;
    stats.chunks = doc_stats.chunks;
    stats.stopped = doc_stats.stopped;
    stats.dropped_entries = doc_stats.dropped_entries;
    stats.content_hash = hasher.digest128();
    stats.ignored_trailing = reader.ignored_trailing();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::path::Path;

    /// Reads `bytes` through the chunker; returns the chunks and the stats.
    fn chunks_of(bytes: &[u8], chunk_size: usize, max_line: usize) -> (Vec<Chunk>, ReadStats) {
        let mut reader = InputReader::from_reader("test", io::Cursor::new(bytes.to_vec())).unwrap();
        let mut chunks = Vec::new();
        let stats = read_chunks_from(&mut reader, 7, chunk_size, max_line, &|_| {}, &mut |c| {
            chunks.push(c);
            true
        })
        .unwrap();
        (chunks, stats)
    }

    /// The lines of `bytes` as a reader should emit them: split on `\n`, each cut to `max_line`.
    fn expected_lines(bytes: &[u8], max_line: usize) -> Vec<Vec<u8>> {
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if bytes.is_empty() {
            return Vec::new();
        }
        body.split(|&b| b == b'\n')
            .map(|l| l[..l.len().min(max_line)].to_vec())
            .collect()
    }

    /// Checks the chunk invariants and returns `(line number, line)` pairs.
    fn numbered_lines(chunks: &[Chunk]) -> Vec<(u64, Vec<u8>)> {
        let mut next = 1;
        let mut out = Vec::new();
        for chunk in chunks {
            assert_eq!(chunk.input, 7);
            assert_eq!(chunk.first_line, next, "first_line");
            assert!(chunk.data.ends_with(b"\n"), "chunk must end in a newline");
            for (i, line) in chunk.lines().enumerate() {
                out.push((chunk.first_line + i as u64, line.to_vec()));
            }
            next += chunk.lines().count() as u64;
        }
        out
    }

    fn check(bytes: &[u8], chunk_size: usize, max_line: usize) {
        let (chunks, stats) = chunks_of(bytes, chunk_size, max_line);
        let got = numbered_lines(&chunks);
        let want: Vec<(u64, Vec<u8>)> = expected_lines(bytes, max_line)
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l))
            .collect();
        assert_eq!(got, want);
        assert_eq!(stats.lines, want.len() as u64);
        assert_eq!(stats.chunks, chunks.len() as u64);
        assert_eq!(stats.bytes, bytes.len() as u64);
        let cut = expected_lines(bytes, usize::MAX)
            .iter()
            .filter(|l| l.len() > max_line)
            .count();
        assert_eq!(stats.cut_lines, cut as u64);
        assert!(!stats.stopped);
    }

    proptest! {
        #[test]
        fn chunking_reproduces_lines(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(0xff), b'a'..=b'c'], 0..600),
            chunk_size in 1usize..70,
        ) {
            check(&bytes, chunk_size, usize::MAX);
        }

        #[test]
        fn chunking_cuts_long_lines(
            bytes in proptest::collection::vec(prop_oneof![1 => Just(b'\n'), 6 => b'a'..=b'c'], 0..600),
            chunk_size in 1usize..70,
            max_line in 1usize..40,
        ) {
            check(&bytes, chunk_size, max_line);
        }
    }

    #[test]
    fn a_document_over_the_limit_is_refused_naming_the_file() {
        let doc = format!(
            r#"{{"took":1,"hits":{{"hits":[{}]}}}}"#,
            vec![r#"{"_source":{"message":"x"}}"#; 100_000].join(",")
        );
        let head = doc.as_bytes()[..64].to_vec();
        let rest = doc.as_bytes()[64..].to_vec();
        let mut reader = InputReader::from_reader("hits.json", io::Cursor::new(rest)).unwrap();
        let err = read_whole_document(
            &mut reader,
            export::DocumentKind::Elastic,
            head.clone(),
            false,
            0,
            1 << 16,
            1 << 10,
            &|_| {},
            &mut |_| true,
            ReadStats::default(),
            xxhash_rust::xxh3::Xxh3::new(),
            1 << 20,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("hits.json: a saved JSON response over 1 MiB"),
            "{err}"
        );
        // Under the limit, every hit is a line.
        let rest = doc.as_bytes()[64..].to_vec();
        let mut reader = InputReader::from_reader("hits.json", io::Cursor::new(rest)).unwrap();
        let mut lines = 0;
        let stats = read_whole_document(
            &mut reader,
            export::DocumentKind::Elastic,
            head,
            false,
            0,
            1 << 16,
            1 << 10,
            &|_| {},
            &mut |c| {
                assert!(c.framed);
                lines += c.lines().count();
                true
            },
            ReadStats::default(),
            xxhash_rust::xxh3::Xxh3::new(),
            8 << 20,
        )
        .unwrap();
        assert_eq!((lines, stats.lines), (100_000, 100_000));
    }

    #[test]
    fn no_trailing_newline_gets_one() {
        let (chunks, stats) = chunks_of(b"a\nb", 1024, 1024);
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].data, b"a\nb\n");
        assert_eq!(stats.lines, 2);
    }

    #[test]
    fn empty_input_has_no_chunks() {
        let (chunks, stats) = chunks_of(b"", 16, 16);
        assert!(chunks.is_empty());
        assert_eq!(
            ReadStats {
                content_hash: 0,
                ..stats
            },
            ReadStats::default()
        );
    }

    #[test]
    fn empty_lines_are_lines() {
        let (chunks, _) = chunks_of(b"\n\n", 1, 16);
        assert_eq!(numbered_lines(&chunks), [(1, vec![]), (2, vec![])]);
    }

    #[test]
    fn crlf_and_invalid_utf8_pass_through() {
        let bytes = b"caf\xe9\r\n\xff\xfe\r\n";
        let (chunks, _) = chunks_of(bytes, 3, 1024);
        let data: Vec<u8> = chunks.iter().flat_map(|c| c.data.iter().copied()).collect();
        assert_eq!(data, bytes);
    }

    #[test]
    fn long_line_is_cut_counted_and_not_buffered() {
        // 10 MB in one line between two short ones; memory must stay near chunk + max_line.
        struct Repeat(u64);
        impl Read for Repeat {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(b'x');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let body = io::Cursor::new(b"first\n".to_vec())
            .chain(Repeat(10_000_000))
            .chain(&b"\nlast\n"[..]);
        let mut reader = InputReader::from_reader("big.log", body).unwrap();
        let mut lines = Vec::new();
        let mut largest = 0;
        let stats = read_chunks_from(&mut reader, 0, 4096, 1000, &|_| {}, &mut |c| {
            largest = largest.max(c.data.capacity());
            lines.extend(
                c.lines()
                    .enumerate()
                    .map(|(i, l)| (c.first_line + i as u64, l.len())),
            );
            true
        })
        .unwrap();
        assert_eq!(lines, [(1, 5), (2, 1000), (3, 4)]);
        assert_eq!(stats.cut_lines, 1);
        assert_eq!(stats.lines, 3);
        assert!(
            largest <= 4096 + 1000 + 2,
            "a chunk grew to {largest} bytes"
        );
    }

    #[test]
    fn emit_false_stops_reading() {
        let bytes: Vec<u8> = (0..1000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut reader = InputReader::from_reader("t", io::Cursor::new(bytes)).unwrap();
        let mut seen = 0;
        let stats = read_chunks_from(&mut reader, 0, 64, 1024, &|_| {}, &mut |_| {
            seen += 1;
            seen < 2
        })
        .unwrap();
        assert_eq!(seen, 2);
        assert!(stats.stopped);
        assert!(stats.bytes < 1000);
    }

    fn gzip(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for part in parts {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(part).unwrap();
            out.extend(encoder.finish().unwrap());
        }
        out
    }

    fn read_file(path: &Path, chunk_size: usize) -> Result<(Vec<u8>, ReadStats, u64), SourceError> {
        let mut data = Vec::new();
        let progressed = Cell::new(0);
        let stats = read_chunks(
            &Input::from_arg(path),
            0,
            chunk_size,
            DEFAULT_MAX_LINE,
            &|n| progressed.set(progressed.get() + n),
            &mut |c| {
                data.extend_from_slice(&c.data);
                true
            },
        )?;
        Ok((data, stats, progressed.get()))
    }

    #[test]
    fn gzip_is_detected_by_magic_and_members_are_concatenated() {
        let dir = tempfile::tempdir().unwrap();
        // No `.gz` extension: rotated logs often lack one.
        let path = dir.path().join("web-api.log.1");
        let compressed = gzip(&[b"one\ntwo", b"\nthree\n", b""]);
        std::fs::write(&path, &compressed).unwrap();
        let (data, stats, progressed) = read_file(&path, 5).unwrap();
        assert_eq!(data, b"one\ntwo\nthree\n");
        assert_eq!(stats.lines, 3);
        assert_eq!(stats.raw_bytes, compressed.len() as u64);
        assert_eq!(progressed, compressed.len() as u64);
        assert_eq!(
            Input::from_arg(&path).len_hint(),
            Some(compressed.len() as u64)
        );
        assert!(Input::from_arg(&path).open().unwrap().is_gzip());
    }

    #[test]
    fn plain_file_progress_matches_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.gz");
        // A `.gz` name with plain content is read as plain.
        std::fs::write(&path, b"a\nb\n").unwrap();
        let (data, stats, progressed) = read_file(&path, 1).unwrap();
        assert_eq!(data, b"a\nb\n");
        assert_eq!((stats.raw_bytes, progressed), (4, 4));
        let tiny = dir.path().join("one-byte");
        std::fs::write(&tiny, b"\x1f").unwrap();
        assert_eq!(read_file(&tiny, 16).unwrap().0, b"\x1f\n");
    }

    #[test]
    fn same_lines_have_the_same_fingerprint_whatever_the_compression() {
        let dir = tempfile::tempdir().unwrap();
        let lines = b"one\ntwo\n";
        let plain = dir.path().join("x.log");
        let gz = dir.path().join("x.log.gz");
        std::fs::write(&plain, lines).unwrap();
        std::fs::write(&gz, gzip(&[b"one\n", b"two\n"])).unwrap();
        let (_, a, _) = read_file(&plain, 3).unwrap();
        let (_, b, _) = read_file(&gz, 1 << 20).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        std::fs::write(&plain, b"one\ntwo\nthree\n").unwrap();
        assert_ne!(read_file(&plain, 3).unwrap().1.content_hash, b.content_hash);
    }

    #[test]
    fn same_file_twice_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, b"a\n").unwrap();
        let other = dir.path().join("y.log");
        std::fs::write(&other, b"a\n").unwrap();
        let dotted = dir.path().join(".").join("x.log");
        let err = check_distinct(&[
            Input::path(&path),
            Input::path(&other),
            Input::path(&dotted),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with(&dotted.display().to_string()), "{err}");
        assert!(err.contains("the same file as"), "{err}");
        // Different files with equal content pass here: the content check comes while reading.
        check_distinct(&[Input::path(&path), Input::path(&other)]).unwrap();
    }

    #[test]
    fn binary_input_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ls");
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.extend(b"text\n".repeat(100));
        std::fs::write(&path, &elf).unwrap();
        let err = read_file(&path, 16).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{}: not a text log: an executable (ELF)", path.display())
        );
        // A NUL in the first 8 KiB, even past the first small block.
        let mut late = b"line\n".repeat(1000);
        late[4000] = 0;
        std::fs::write(&path, &late).unwrap();
        let err = read_file(&path, 64).unwrap_err().to_string();
        assert!(err.contains("NUL byte at offset 4000"), "{err}");
    }

    #[test]
    fn gzip_with_padding_is_read_and_the_padding_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log.gz");
        let mut bytes = gzip(&[b"one\n", b"two\n"]);
        bytes.extend([0u8; 512]);
        std::fs::write(&path, &bytes).unwrap();
        let (data, stats, progressed) = read_file(&path, 4096).unwrap();
        assert_eq!(data, b"one\ntwo\n");
        assert_eq!(stats.ignored_trailing, Some((512, true)));
        assert_eq!(progressed, bytes.len() as u64);
    }

    #[test]
    fn corrupt_gzip_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = gzip(&[&b"line\n".repeat(10_000)]);
        let path = dir.path().join("web-api.log.gz");

        let mut corrupt = good.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle..middle + 8].fill(0xff);
        std::fs::write(&path, &corrupt).unwrap();
        let err = read_file(&path, 4096).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: corrupt gzip data: ", path.display())),
            "{err}"
        );

        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = read_file(&path, 4096).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: corrupt gzip data: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn missing_file_error_is_one_line_naming_it() {
        let err = read_file(Path::new("web-api.log.gz"), 16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "web-api.log.gz: No such file or directory (os error 2)"
        );
        // Complete on its own: `{:#}` in the binary must not repeat the OS message.
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(Input::from_arg("web-api.log.gz").len_hint(), None);
    }

    #[test]
    fn directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(dir.path(), 16).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: ", dir.path().display())),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn args_map_to_inputs() {
        assert_eq!(Input::from_args(Vec::<PathBuf>::new()), [Input::Stdin]);
        assert_eq!(
            Input::from_args(["-", "a.log"]),
            [Input::Stdin, Input::Path(PathBuf::from("a.log"))]
        );
        assert_eq!(Input::Stdin.name(), "<stdin>");
        assert_eq!(Input::Stdin.len_hint(), None);
    }
}
