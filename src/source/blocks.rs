//! The reader's cutter for files and stdin: whole blocks, no per-line work.
//!
//! [`BlockCutter`] cuts a block read in place at its last newline (one
//! `memrchr`), hands out everything before it as a [`Chunk`] and carries the
//! partial last line to the next block. It neither counts nor numbers lines:
//! its chunks carry their place among the input's chunks ([`Chunk::seq`]),
//! their numbers count from 1, and the pipeline settles the real numbers in
//! order (`pipeline::numbering`). On two cores the reader shares the machine
//! with the workers, so every byte it does not look at is a byte parsed sooner.
//!
//! Lines longer than `max_line` are still cut and counted exactly as
//! [`LineCutter`](super::lines::LineCutter) does, without looking at every
//! line. Why only the first line of a block can be too long:
//!
//! - a block appends `n ≤ block_limit` new bytes after the carried partial
//!   line (which holds no `\n`), and `block_limit ≤ max_line` (checked by
//!   [`BlockCutter::new`]; otherwise the reader uses the line cutter);
//! - every line but the first of `data` starts after a `\n` among the new
//!   bytes and ends at a later `\n` (or is the carried tail), so it holds at
//!   most `n - 1 < max_line` bytes;
//! - the first line (the carried part plus the block's first line) can be
//!   any length: it alone is measured, and only when `data` is longer than
//!   `max_line` at all (never with the default 1 MiB blocks and lines, since
//!   a block is filled only up to `chunk_size` including the carried part).

use memchr::{memchr, memrchr};

use super::Chunk;

/// Cuts blocks at their last newline; see the module doc.
#[derive(Debug)]
pub struct BlockCutter {
    input: u32,
    chunk_size: usize,
    max_line: usize,
    /// The carried partial line, then the block just read.
    data: Vec<u8>,
    /// `data[..whole]` holds whole lines ending in `\n`, ready to hand out.
    whole: usize,
    /// The next chunk's place among this input's chunks.
    seq: u64,
    /// Returns true while the rest of a cut line is being thrown away.
    discarding: bool,
    /// Returns true if the first line of `data[..whole]` was cut.
    first_cut: bool,
    cut_lines: u64,
}

impl BlockCutter {
    /// A cutter for input `input` reading blocks of `chunk_size` bytes;
    /// None if `chunk_size > max_line` (lines inside one block could then
    /// be too long: the line cutter must look at each).
    pub fn new(input: u32, chunk_size: usize, max_line: usize) -> Option<BlockCutter> {
        let chunk_size = chunk_size.max(1);
        let max_line = max_line.max(1);
        // Line numbers within a chunk are 32-bit in the pipeline's keys.
        if chunk_size > max_line || chunk_size.saturating_add(max_line) >= u32::MAX as usize {
            return None;
        }
        Some(BlockCutter {
            input,
            chunk_size,
            max_line,
            data: Vec::with_capacity(chunk_size + 1),
            whole: 0,
            seq: 0,
            discarding: false,
            first_cut: false,
            cut_lines: 0,
        })
    }

    /// The bytes per block.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The buffer to read into: append, then call [`scan`](Self::scan) with
    /// the length it had before.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Lines cut so far.
    pub fn cut_lines(&self) -> u64 {
        self.cut_lines
    }

    /// Finds the whole lines in `data` after `from` new bytes were appended
    /// at `from` (`data[..from]` is the carried partial line, without `\n`).
    pub fn scan(&mut self, from: usize) {
        debug_assert_eq!(self.whole, 0, "take_chunk before the next block");
        let mut from = from;
        if self.discarding {
            debug_assert_eq!(from, 0);
            // The cut line went out already: drop its tail including its `\n`.
            match memchr(b'\n', &self.data) {
                Some(nl) => {
                    self.data.drain(..=nl);
                    self.discarding = false;
                }
                None => {
                    self.data.clear();
                    return;
                }
            }
        }
        if self.data.len() > self.max_line {
            // The first line may be too long; measure it (at most `max_line + 1` bytes looked at).
            let limit = self.max_line + 1;
            if memchr(b'\n', &self.data[from.min(limit)..limit]).is_none() {
                let keep = self.max_line;
                self.cut_lines += 1;
                self.first_cut = true;
                match memchr(b'\n', &self.data[keep..]) {
                    Some(i) => {
                        self.data.drain(keep..keep + i);
                        from = keep + 1;
                        self.whole = from;
                    }
                    None => {
                        self.data.truncate(keep);
                        self.data.push(b'\n');
                        self.whole = self.data.len();
                        self.discarding = true;
                        return;
                    }
                }
            }
        }
        if let Some(i) = memrchr(b'\n', &self.data[from..]) {
            self.whole = from + i + 1;
        }
    }

    /// Terminates a last line that has no `\n` (the end of the input).
    pub fn finish(&mut self) {
        if self.whole < self.data.len() {
            self.data.push(b'\n');
            self.whole = self.data.len();
        }
        self.discarding = false;
    }

    /// Hands out the whole lines waiting, keeping the partial line; None if there are none.
    pub fn take_chunk(&mut self) -> Option<Chunk> {
        if self.whole == 0 {
            return None;
        }
        // A fresh Vec per chunk: the chunk goes to another thread, and the
        // partial line (shorter than a block) is all that is copied.
        let mut next = Vec::with_capacity(self.chunk_size + 1);
        next.extend_from_slice(&self.data[self.whole..]);
        let mut data = std::mem::replace(&mut self.data, next);
        data.truncate(self.whole);
        let chunk = Chunk {
            input: self.input,
            first_line: 1,
            data,
            meta: None,
            cut_lines: if std::mem::take(&mut self.first_cut) {
                vec![1]
            } else {
                Vec::new()
            },
            framed: false,
            seq: Some(self.seq),
        };
        self.seq += 1;
        self.whole = 0;
        Some(chunk)
    }

    /// The room to read into for the next block: up to `chunk_size` in all,
    /// or another `chunk_size` when the carried line fills it already.
    pub fn room(&self) -> usize {
        let len = self.data.len();
        if len < self.chunk_size {
            self.chunk_size - len
        } else {
            self.chunk_size
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use proptest::prelude::*;

    use super::*;
    use crate::source::file::{InputReader, read_blocks_from};

    /// The reference: split on `\n` (a last line without one counts), cut each to `max_line`.
    fn reference(bytes: &[u8], max_line: usize) -> (Vec<Vec<u8>>, Vec<u64>) {
        if bytes.is_empty() {
            return (Vec::new(), Vec::new());
        }
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let mut cut = Vec::new();
        let lines = body
            .split(|&b| b == b'\n')
            .enumerate()
            .map(|(i, l)| {
                if l.len() > max_line {
                    cut.push(i as u64 + 1);
                }
                l[..l.len().min(max_line)].to_vec()
            })
            .collect();
        (lines, cut)
    }

    /// Reads `bytes` in blocks and numbers the lines as the pipeline does:
    /// chunks in `seq` order, each counted. Returns lines, cut line numbers, stats.
    fn read(
        bytes: &[u8],
        chunk_size: usize,
        max_line: usize,
    ) -> (Vec<Vec<u8>>, Vec<u64>, crate::source::file::ReadStats) {
        let mut reader = InputReader::from_reader("t", io::Cursor::new(bytes.to_vec())).unwrap();
        let mut chunks = Vec::new();
        let stats = read_blocks_from(&mut reader, 3, chunk_size, max_line, &|_| {}, &mut |c| {
            chunks.push(c);
            true
        })
        .unwrap();
        let (mut lines, mut cut) = (Vec::new(), Vec::new());
        let mut next = 1;
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.input, 3);
            assert!(chunk.data.ends_with(b"\n"));
            let base = match chunk.seq {
                Some(seq) => {
                    assert_eq!(seq, i as u64, "seq");
                    assert_eq!(chunk.first_line, 1);
                    next
                }
                None => {
                    assert_eq!(chunk.first_line, next, "a numbered chunk");
                    1
                }
            };
            cut.extend(chunk.cut_lines.iter().map(|&l| l + base - 1));
            let before = lines.len();
            lines.extend(chunk.lines().map(<[u8]>::to_vec));
            next += (lines.len() - before) as u64;
        }
        assert_eq!(stats.chunks, chunks.len() as u64);
        (lines, cut, stats)
    }

    proptest! {
        #[test]
        fn issue_11_4_blocks_give_the_reference_lines_numbers_and_cuts(
            bytes in proptest::collection::vec(prop_oneof![1 => Just(b'\n'), 5 => b'a'..=b'c', 1 => Just(0xff)], 0..800),
            chunk_size in 1usize..90,
            max_line in 1usize..120,
        ) {
            let (want, want_cut) = reference(&bytes, max_line);
            let (got, got_cut, stats) = read(&bytes, chunk_size, max_line);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&got_cut, &want_cut);
            prop_assert_eq!(stats.cut_lines, want_cut.len() as u64);
            prop_assert_eq!(stats.bytes, bytes.len() as u64);
        }
    }

    #[test]
    fn issue_11_4_only_a_block_no_longer_than_max_line_skips_the_line_scan() {
        assert!(BlockCutter::new(0, 1 << 20, 1 << 20).is_some());
        assert!(BlockCutter::new(0, 2 << 20, 1 << 20).is_none());
    }

    #[test]
    fn issue_11_4_a_stream_without_newline_stays_bounded_and_is_cut_once() {
        // 10 MB with no newline between two short lines, read in 4 KiB blocks.
        let mut bytes = b"first\n".to_vec();
        bytes.resize(10_000_006, b'x');
        bytes.extend(b"\nlast");
        let mut reader = InputReader::from_reader("t", io::Cursor::new(bytes)).unwrap();
        let mut largest = 0;
        let mut lines = Vec::new();
        let stats = read_blocks_from(&mut reader, 0, 4096, 5000, &|_| {}, &mut |c| {
            largest = largest.max(c.data.capacity());
            lines.extend(c.lines().map(<[u8]>::len));
            true
        })
        .unwrap();
        assert_eq!(lines, [5, 5000, 4]);
        assert_eq!(stats.cut_lines, 1);
        // A block plus a carried line of at most `max_line`, not the 10 MB.
        assert!(largest <= 4 * 4096, "a chunk grew to {largest} bytes");
    }
}
