//! The one line cutter every reader uses: files, cluster reads and `watch` follows.
//!
//! [`LineCutter`] turns a byte stream into [`Chunk`]s of whole, numbered
//! lines. Memory stays bounded whatever arrives: a line longer than
//! `max_line` is cut to `max_line` bytes, the rest of it is thrown away as it
//! is read (never buffered), and the cut line's number travels with its chunk
//! so the pipeline counts it malformed. A stream that never sends a newline
//! (a broken container, a binary blob) therefore costs `max_line`, not its size.

use std::sync::Arc;

use memchr::memchr;

use super::{Chunk, SourceMeta};

/// A good `max_line`: far above any real access-log line (Envoy's own limit
/// on a request's headers is 60 KiB by default).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Cuts a byte stream into whole lines, cutting overlong ones.
///
/// Bytes come in through [`push`](Self::push) (a network body) or are read
/// straight into [`buffer`](Self::buffer) and then [`scan`](Self::scan)ned
/// (a file: no copy). [`take_chunk`](Self::take_chunk) hands out the whole
/// lines waiting; the partial last line stays for the next bytes.
///
/// Invariant: `data[..line_start]` holds `pending_lines` whole lines ending
/// in `\n`; `data[line_start..]` is the start of a line not yet terminated
/// and never longer than `max_line` once scanned (it would have been cut).
#[derive(Debug)]
pub struct LineCutter {
    input: u32,
    chunk_size: usize,
    max_line: usize,
    /// Bytes reserved for each new buffer: a block read in place needs room;
    /// a followed stream pushes small pieces and must not hold 64 KiB idle per pod.
    reserve: usize,
    meta: Option<Arc<SourceMeta>>,
    data: Vec<u8>,
    line_start: usize,
    pending_lines: u64,
    /// Numbers of the cut lines among the pending ones.
    pending_cut: Vec<u64>,
    /// 1-based number of the first line in `data`.
    next_line: u64,
    /// Returns true while the rest of a cut line is being thrown away.
    discarding: bool,
    cut_lines: u64,
    /// Marks every chunk as framed (see [`Chunk::framed`]).
    framed: bool,
}

impl LineCutter {
    /// A cutter for input `input` whose chunks hold about `chunk_size` bytes
    /// and whose lines are at most `max_line` bytes (without their `\n`).
    pub fn new(input: u32, chunk_size: usize, max_line: usize) -> LineCutter {
        let chunk_size = chunk_size.max(1);
        // A network reader may ask for huge chunks; reserve what a file read fills at most.
        let reserve = chunk_size.min(4 << 20) + 1;
        LineCutter {
            input,
            chunk_size,
            max_line: max_line.max(1),
            reserve,
            meta: None,
            data: Vec::with_capacity(reserve),
            line_start: 0,
            pending_lines: 0,
            pending_cut: Vec::new(),
            next_line: 1,
            discarding: false,
            cut_lines: 0,
            framed: false,
        }
    }

    /// A cutter for a live stream fed by [`push`](Self::push) in small pieces
    /// and emptied after each: it reserves nothing ahead (200 followed pods
    /// would otherwise hold a block each while idle).
    pub fn for_stream(input: u32, max_line: usize) -> LineCutter {
        LineCutter {
            reserve: 0,
            data: Vec::new(),
            ..LineCutter::new(input, 64 * 1024, max_line)
        }
    }

    /// Tags every chunk with the stream's metadata (the Kubernetes source knows the pod).
    pub fn with_meta(mut self, meta: Arc<SourceMeta>) -> LineCutter {
        self.meta = Some(meta);
        self
    }

    /// Marks every chunk as holding framed lines (a whole document's entries, see [`Chunk::framed`]).
    pub fn framed(mut self) -> LineCutter {
        self.framed = true;
        self
    }

    /// The bytes per chunk this cutter was made for.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The buffer to read into: append, then call [`scan`](Self::scan) with
    /// the length it had before.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Bytes of whole lines waiting to be taken.
    pub fn whole_bytes(&self) -> usize {
        self.line_start
    }

    /// Lines cut so far.
    pub fn cut_lines(&self) -> u64 {
        self.cut_lines
    }

    /// Lines terminated so far (taken or waiting).
    pub fn lines(&self) -> u64 {
        self.next_line - 1 + self.pending_lines
    }

    /// Appends bytes and finds the line ends in them.
    pub fn push(&mut self, bytes: &[u8]) {
        let from = self.data.len();
        self.data.extend_from_slice(bytes);
        self.scan(from);
    }

    /// Appends one whole line (without its `\n`) that was already cut
    /// upstream if `cut`; it is cut here too if longer than `max_line`.
    pub fn push_line(&mut self, line: &[u8], cut: bool) {
        debug_assert_eq!(
            self.line_start,
            self.data.len(),
            "a partial line is waiting"
        );
        let keep = line.len().min(self.max_line);
        self.data.extend_from_slice(&line[..keep]);
        self.data.push(b'\n');
        if cut || keep < line.len() {
            self.note_cut();
        }
        self.pending_lines += 1;
        self.line_start = self.data.len();
    }

    fn note_cut(&mut self) {
        self.cut_lines += 1;
        self.pending_cut.push(self.next_line + self.pending_lines);
    }

    /// Finds the line ends in `data[from..]`, cutting lines longer than `max_line`.
    pub fn scan(&mut self, mut pos: usize) {
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
                        self.note_cut();
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
                        self.note_cut();
                        self.pending_lines += 1;
                        self.line_start = self.data.len();
                        self.discarding = true;
                    }
                    return;
                }
            }
        }
    }

    /// Terminates a last line that has no `\n` (the end of the input).
    pub fn finish(&mut self) {
        if self.line_start < self.data.len() {
            self.data.push(b'\n');
            self.pending_lines += 1;
            self.line_start = self.data.len();
        }
        self.discarding = false;
    }

    /// Hands out the whole lines waiting, keeping the partial line; None if there are none.
    pub fn take_chunk(&mut self) -> Option<Chunk> {
        if self.line_start == 0 {
            return None;
        }
        // A fresh Vec per chunk: the chunk goes to another thread, and a
        // partial line (at most `max_line`) is all that is copied.
        let partial = self.data.len() - self.line_start;
        let mut next = Vec::with_capacity(self.reserve.max(partial));
        next.extend_from_slice(&self.data[self.line_start..]);
        self.data.truncate(self.line_start);
        let chunk = Chunk {
            input: self.input,
            first_line: self.next_line,
            data: std::mem::replace(&mut self.data, next),
            meta: self.meta.clone(),
            cut_lines: std::mem::take(&mut self.pending_cut),
            framed: self.framed,
            seq: None,
        };
        self.next_line += self.pending_lines;
        self.pending_lines = 0;
        self.line_start = 0;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunk: &Chunk) -> Vec<(u64, usize)> {
        (chunk.first_line..)
            .zip(chunk.lines())
            .map(|(n, l)| (n, l.len()))
            .collect()
    }

    #[test]
    fn a_stream_without_newline_stays_bounded_and_is_counted_cut() {
        // 10 MB with no newline, pushed as a network body would arrive.
        let mut cutter = LineCutter::new(3, 1 << 16, 1000);
        cutter.push(b"first\n");
        let block = vec![b'x'; 64 * 1024];
        let mut largest = 0;
        for _ in 0..160 {
            cutter.push(&block);
            largest = largest.max(cutter.buffer().len());
        }
        cutter.push(b"\nlast");
        cutter.finish();
        assert!(largest <= 1000 + 64 * 1024 + 8, "buffer grew to {largest}");
        let chunk = cutter.take_chunk().unwrap();
        assert_eq!(lines_of(&chunk), [(1, 5), (2, 1000), (3, 4)]);
        assert_eq!(chunk.cut_lines, [2]);
        assert_eq!(chunk.input, 3);
        assert_eq!((cutter.cut_lines(), cutter.lines()), (1, 3));
        assert!(cutter.take_chunk().is_none());
    }

    #[test]
    fn cut_line_numbers_follow_their_chunks() {
        let mut cutter = LineCutter::new(0, 16, 4);
        cutter.push(b"ab\nabcdefgh\n");
        let first = cutter.take_chunk().unwrap();
        assert_eq!((first.first_line, first.cut_lines.clone()), (1, vec![2]));
        cutter.push(b"x\nyyyyyy");
        cutter.finish();
        let second = cutter.take_chunk().unwrap();
        assert_eq!(second.first_line, 3);
        assert_eq!(second.data, b"x\nyyyy\n");
        assert_eq!(second.cut_lines, [4]);
    }

    #[test]
    fn pushed_lines_keep_an_upstream_cut() {
        let meta = Arc::new(SourceMeta {
            pod: "web-0".into(),
            ..SourceMeta::default()
        });
        let mut cutter = LineCutter::new(1, 64, 8).with_meta(Arc::clone(&meta));
        cutter.push_line(b"short", false);
        cutter.push_line(b"cut upstream", true);
        cutter.push_line(b"ok", false);
        let chunk = cutter.take_chunk().unwrap();
        assert_eq!(chunk.data, b"short\ncut upst\nok\n");
        assert_eq!(chunk.cut_lines, [2]);
        assert_eq!(chunk.meta.as_deref(), Some(&*meta));
    }
}
