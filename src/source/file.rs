//! Files, gzip files and stdin as chunk sources.
//!
//! [`Input`] names what the user passed (a path, or `-`/nothing for stdin);
//! [`Input::open`] gives an [`InputReader`] that decompresses gzip (detected by
//! its magic bytes, not the file name: rotated logs are often `.1` or have no
//! extension at all) and counts the raw bytes it consumed, so a progress bar
//! can show the position against [`Input::len_hint`]. [`read_chunks`] cuts
//! what it reads into line-aligned [`Chunk`]s for the parser threads.
//!
//! Memory stays bounded whatever the input: a line longer than `max_line` is
//! cut, and the rest of it is read and thrown away, never buffered.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;
use memchr::memchr;

use super::{Chunk, SourceError};

/// A good block size for [`read_chunks`]: large enough that per-chunk
/// overhead (channel send, thread wake-up) vanishes, small enough that every
/// parser thread gets work early.
pub const DEFAULT_CHUNK_SIZE: usize = 2 << 20;

/// A good `max_line` for [`read_chunks`]: far above any real access-log line
/// (Envoy's own limit on a request's headers is 60 KiB by default).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

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

    /// The file's size in bytes (compressed size for gzip), for a progress bar;
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

    /// Opens the input, decompressing it if it starts with the gzip magic bytes.
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
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::Path(path) => path.display().fmt(f),
        }
    }
}

/// Where the undecoded bytes come from.
enum RawSource {
    File(File),
    // `Stdin` rather than a lock: it is `Send`, and with megabyte reads the per-call lock costs nothing.
    Stdin(io::Stdin),
    Other(Box<dyn Read + Send>),
}

/// The raw source, with the bytes peeked for gzip detection put back in front,
/// counting what it consumed for progress reporting.
struct Counted {
    raw: RawSource,
    head: [u8; 2],
    head_pos: usize,
    head_len: usize,
    raw_bytes: u64,
    /// Returns true once a read of the raw source itself failed, to tell I/O
    /// errors from corrupt gzip data.
    raw_failed: bool,
}

impl Counted {
    fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match &mut self.raw {
            RawSource::File(f) => f.read(buf),
            RawSource::Stdin(s) => s.read(buf),
            RawSource::Other(r) => r.read(buf),
        };
        match &result {
            Ok(n) => self.raw_bytes += *n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.raw_failed = true,
        }
        result
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.head_pos < self.head_len {
            let n = (self.head_len - self.head_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            return Ok(n);
        }
        self.read_raw(buf)
    }
}

/// An opened input: the decoded bytes of a file or stdin.
pub struct InputReader {
    name: String,
    decoded: Decoded,
}

enum Decoded {
    Plain(Counted),
    // `MultiGzDecoder` because `cat a.gz b.gz` and many log shippers write
    // several members; `GzDecoder` would stop silently after the first.
    Gzip(Box<MultiGzDecoder<Counted>>),
}

impl InputReader {
    /// Wraps any byte stream (a network body, a test buffer) like a file:
    /// gzip is detected and decoded, and errors name `name`.
    pub fn from_reader(
        name: impl Into<String>,
        reader: impl Read + Send + 'static,
    ) -> Result<InputReader, SourceError> {
        InputReader::new(name.into(), RawSource::Other(Box::new(reader)))
    }

    fn new(name: String, raw: RawSource) -> Result<InputReader, SourceError> {
        let mut counted = Counted {
            raw,
            head: [0; 2],
            head_pos: 0,
            head_len: 0,
            raw_bytes: 0,
            raw_failed: false,
        };
        // Peek at up to two bytes: a pipe may deliver them one read at a time.
        while counted.head_len < GZIP_MAGIC.len() {
            let mut byte = [0u8; 2];
            let want = GZIP_MAGIC.len() - counted.head_len;
            match counted.read_raw(&mut byte[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    counted.head[counted.head_len..counted.head_len + n]
                        .copy_from_slice(&byte[..n]);
                    counted.head_len += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(SourceError::Io { name, error }),
            }
        }
        let decoded = if counted.head == GZIP_MAGIC {
            Decoded::Gzip(Box::new(MultiGzDecoder::new(counted)))
        } else {
            Decoded::Plain(counted)
        };
        Ok(InputReader { name, decoded })
    }

    /// The name errors use.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns true if and only if the input is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        matches!(self.decoded, Decoded::Gzip(_))
    }

    /// Appends up to `limit` bytes to `buf`, fewer only at the end of the input.
    fn read_up_to(&mut self, limit: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
        if let Decoded::Plain(c) = &mut self.decoded
            && c.head_pos == c.head_len
            && let RawSource::File(file) = &mut c.raw
        {
            let result = file.take(limit).read_to_end(buf);
            match &result {
                Ok(n) => c.raw_bytes += *n as u64,
                Err(_) => c.raw_failed = true,
            }
            return result;
        }
        self.take(limit).read_to_end(buf)
    }

    /// Bytes consumed from the underlying file so far (compressed bytes for gzip).
    pub fn raw_bytes_read(&self) -> u64 {
        self.counted().raw_bytes
    }

    fn counted(&self) -> &Counted {
        match &self.decoded {
            Decoded::Plain(c) => c,
            Decoded::Gzip(d) => d.get_ref(),
        }
    }

    /// Names the input in an error from [`Read::read`], telling corrupt gzip data from I/O failures.
    pub fn error(&self, error: io::Error) -> SourceError {
        let name = self.name.clone();
        if self.is_gzip() && !self.counted().raw_failed {
            SourceError::Gzip { name, error }
        } else {
            SourceError::Io { name, error }
        }
    }
}

impl Read for InputReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.decoded {
            Decoded::Plain(c) => c.read(buf),
            Decoded::Gzip(d) => d.read(buf),
        }
    }
}

/// What [`read_chunks`] read from one input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes consumed from the file (compressed bytes for gzip).
    pub raw_bytes: u64,
    /// Decoded bytes read, before long lines were cut.
    pub bytes: u64,
    /// Lines emitted (a cut line counts once).
    pub lines: u64,
    /// Lines longer than `max_line`, emitted cut to `max_line` bytes.
    pub cut_lines: u64,
    /// Chunks emitted.
    pub chunks: u64,
    /// Returns true if `emit` asked to stop before the end of the input.
    pub stopped: bool,
}

/// Reads one input into line-aligned chunks.
///
/// Opens `input` (see [`Input::open`]) and reads it in blocks of about
/// `chunk_size` bytes; each [`Chunk`] holds whole lines ending in `\n` (a last
/// unterminated line gets one), is tagged with `input_index`, and its
/// `first_line` is the 1-based number of its first line in the input. A line
/// longer than `max_line` bytes (without its `\n`) is cut to `max_line` bytes;
/// the rest of it is discarded as it is read, so memory stays at about
/// `chunk_size + max_line` per reader, and the line still counts as one.
///
/// `progress` is called after each block with the number of raw bytes read
/// since the previous call (compressed bytes for gzip), to advance a bar
/// sized by [`Input::len_hint`]. `emit` receives each chunk; returning false
/// stops reading (the result then has `stopped` set).
///
/// Errors name the input: it cannot be opened, a read fails, or its gzip data
/// is corrupt or cut short. Chunks emitted before the error stand.
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
    let mut reader = input.open()?;
    read_chunks_from(
        &mut reader,
        input_index,
        chunk_size,
        max_line,
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
    let mut chunker = Chunker::new(input_index, chunk_size, max_line);
    let mut stats = ReadStats::default();
    let mut reported_raw = 0;
    loop {
        // Fill the block up to `chunk_size`; a carried partial line longer than
        // that (only when `max_line > chunk_size`) gets another `chunk_size`.
        let len = chunker.data.len();
        let room = if len < chunker.chunk_size {
            chunker.chunk_size - len
        } else {
            chunker.chunk_size
        };
        // `take(..).read_to_end` only stops short of `room` at the end of the
        // input. Through `File` itself it reads into the spare capacity
        // without zeroing it first (std implements `read_buf` for files); any
        // other reader gets its buffer zeroed, which costs as much as a copy.
        let read = reader.read_up_to(room as u64, &mut chunker.data);
        let raw = reader.raw_bytes_read();
        if raw > reported_raw {
            progress(raw - reported_raw);
            reported_raw = raw;
        }
        stats.raw_bytes = raw;
        let n = read.map_err(|e| reader.error(e))?;
        stats.bytes += n as u64;
        let at_end = n < room;
        chunker.scan(len);
        if at_end {
            chunker.finish();
        }
        if chunker.line_start > 0 {
            let chunk = chunker.take_chunk();
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
    stats.lines = chunker.next_line - 1;
    stats.cut_lines = chunker.cut_lines;
    Ok(stats)
}

/// Cuts a byte stream into whole lines, cutting overlong ones.
///
/// Invariant: `data[..line_start]` holds `pending_lines` whole lines ending
/// in `\n`; `data[line_start..]` is the start of a line not yet terminated
/// and never longer than `max_line` (it would have been cut).
struct Chunker {
    input: u32,
    chunk_size: usize,
    max_line: usize,
    data: Vec<u8>,
    line_start: usize,
    pending_lines: u64,
    /// 1-based number of the first line in `data`.
    next_line: u64,
    /// Returns true while the rest of a cut line is being thrown away.
    discarding: bool,
    cut_lines: u64,
}

impl Chunker {
    fn new(input: u32, chunk_size: usize, max_line: usize) -> Chunker {
        let chunk_size = chunk_size.max(1);
        Chunker {
            input,
            chunk_size,
            max_line: max_line.max(1),
            data: Vec::with_capacity(chunk_size + 1),
            line_start: 0,
            pending_lines: 0,
            next_line: 1,
            discarding: false,
            cut_lines: 0,
        }
    }

    /// Finds the line ends in `data[from..]`, cutting lines longer than `max_line`.
    fn scan(&mut self, mut pos: usize) {
        while pos < self.data.len() {
            let newline = memchr(b'\n', &self.data[pos..]).map(|i| pos + i);
            if self.discarding {
                // The cut line already ends in `\n`: drop its tail including the original `\n`.
                match newline {
                    Some(nl) => {
                        self.data.drain(pos..=nl);
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        self.data.truncate(pos);
                        return;
                    }
                }
            }
            match newline {
                Some(nl) => {
                    if nl - self.line_start > self.max_line {
                        let keep = self.line_start + self.max_line;
                        self.data.drain(keep..nl);
                        self.cut_lines += 1;
                        pos = keep + 1;
                    } else {
                        pos = nl + 1;
                    }
                    self.pending_lines += 1;
                    self.line_start = pos;
                }
                None => {
                    if self.data.len() - self.line_start > self.max_line {
                        self.data.truncate(self.line_start + self.max_line);
                        self.data.push(b'\n');
                        self.cut_lines += 1;
                        self.pending_lines += 1;
                        self.line_start = self.data.len();
                        self.discarding = true;
                    }
                    return;
                }
            }
        }
    }

    /// Terminates a last line that has no `\n`.
    fn finish(&mut self) {
        if self.line_start < self.data.len() {
            self.data.push(b'\n');
            self.pending_lines += 1;
            self.line_start = self.data.len();
        }
    }

    /// Hands out the whole lines, keeping the partial line for the next block.
    fn take_chunk(&mut self) -> Chunk {
        // A fresh Vec per chunk: the chunk goes to another thread, and a
        // partial line (at most `max_line`) is all that is copied.
        let mut next =
            Vec::with_capacity(self.chunk_size.max(self.data.len() - self.line_start) + 1);
        next.extend_from_slice(&self.data[self.line_start..]);
        self.data.truncate(self.line_start);
        let chunk = Chunk {
            input: self.input,
            first_line: self.next_line,
            data: std::mem::replace(&mut self.data, next),
            meta: None,
        };
        self.next_line += self.pending_lines;
        self.pending_lines = 0;
        self.line_start = 0;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::io::Write;
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
        assert_eq!(stats, ReadStats::default());
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
