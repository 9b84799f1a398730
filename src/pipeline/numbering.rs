//! Line numbers for chunks the reader did not number ([`Chunk::seq`]).
//!
//! The reader of files cuts blocks at their last newline and counts nothing
//! (`source::blocks`). A worker numbers a chunk's lines from 1 and hands the
//! aggregate a *key* for each: `seq << 32 | local`. Keys order like the real
//! numbers within an input, so everything that keeps "the first few by
//! (input, line)" (malformed examples, the first `-n` contradiction) keeps
//! the same lines whatever the threads. After a chunk, the worker reports
//! how many lines it held to the [`Ledger`], which settles each input's
//! chunks in order and remembers the first line of only the few chunks those
//! "first few" can come from; the merge turns the surviving keys into real
//! numbers ([`Ledger::resolve`]).
//!
//! Memory does not grow with the input: the ledger holds the chunks reported
//! out of order (those still being parsed on other threads: a few per
//! worker) and at most [`MALFORMED_EXAMPLES`] + 1 remembered first lines.
//!
//! [`Chunk::seq`]: crate::source::Chunk::seq

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::aggregate::MALFORMED_EXAMPLES;

/// Bits of a key that hold the line's number within its chunk (from 1).
const LOCAL_BITS: u32 = 32;

/// The key of line `local` (from 1) of chunk `seq`.
pub(super) fn key(seq: u64, local: u64) -> u64 {
    debug_assert!(local < 1 << LOCAL_BITS && seq < 1 << (64 - LOCAL_BITS));
    (seq << LOCAL_BITS) | local
}

/// What a chunk held that the merge will need its first line for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Marks {
    /// A malformed line (an example may come from it).
    pub(super) malformed: bool,
    /// A line contradicting `-n` (the warning may name it).
    pub(super) conflict: bool,
}

/// Settles the chunks of every input in order; see the module doc.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    inputs: HashMap<u32, InputLedger>,
    /// First lines of the smallest (input, seq) chunks with a malformed line.
    malformed: BTreeMap<(u32, u64), u64>,
    /// First line of the smallest (input, seq) chunk with a contradiction.
    conflict: BTreeMap<(u32, u64), u64>,
}

#[derive(Debug)]
struct InputLedger {
    /// The next chunk to settle, and its first line.
    next_seq: u64,
    next_first: u64,
    /// Chunks reported before an earlier one: (lines, marks).
    early: BTreeMap<u64, (u64, Marks)>,
}

impl Ledger {
    /// Reports that chunk `seq` of `input` held `lines` lines.
    pub(super) fn settle(&self, input: u32, seq: u64, lines: u64, marks: Marks) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner {
            inputs,
            malformed,
            conflict,
        } = &mut *inner;
        let state = inputs.entry(input).or_insert(InputLedger {
            next_seq: 0,
            next_first: 1,
            early: BTreeMap::new(),
        });
        state.early.insert(seq, (lines, marks));
        while let Some((lines, marks)) = state.early.remove(&state.next_seq) {
            let at = (input, state.next_seq);
            if marks.malformed {
                keep_smallest(malformed, at, state.next_first, MALFORMED_EXAMPLES);
            }
            if marks.conflict {
                keep_smallest(conflict, at, state.next_first, 1);
            }
            state.next_first += lines;
            state.next_seq += 1;
        }
    }

    /// The real number of the line with `key` in `input`, when the input's
    /// chunks were numbered here; None for an input numbered by its reader
    /// (the number is already real) or a chunk not remembered.
    pub(super) fn resolve(&self, input: u32, key: u64) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.inputs.get(&input)?;
        let at = (input, key >> LOCAL_BITS);
        let first = inner
            .malformed
            .get(&at)
            .or_else(|| inner.conflict.get(&at))?;
        Some(first + (key & ((1 << LOCAL_BITS) - 1)) - 1)
    }

    /// Returns true if chunks of `input` were numbered here.
    pub(super) fn numbers(&self, input: u32) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.inputs.contains_key(&input)
    }

    /// Chunks reported but not yet settled (for tests: the bound).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.inputs.values().map(|s| s.early.len()).sum()
    }
}

/// Remembers `first` for chunk `at`, keeping only the `cap` smallest chunks.
fn keep_smallest(map: &mut BTreeMap<(u32, u64), u64>, at: (u32, u64), first: u64, cap: usize) {
    map.insert(at, first);
    while map.len() > cap {
        map.pop_last();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_11_4_chunks_settle_in_order_whatever_order_they_report() {
        // Chunks of 3, 0, 5, 2 lines; malformed lines in chunks 1 and 3.
        let lines = [3, 0, 5, 2];
        let marked = Marks {
            malformed: true,
            conflict: false,
        };
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let ledger = Ledger::default();
            for seq in order {
                let marks = if seq == 1 || seq == 3 {
                    marked
                } else {
                    Marks::default()
                };
                ledger.settle(4, seq, lines[seq as usize], marks);
            }
            assert_eq!(ledger.waiting(), 0);
            // Line 2 of chunk 3 is line 3 + 0 + 5 + 2 = 10.
            assert_eq!(ledger.resolve(4, key(3, 2)), Some(10));
            assert_eq!(ledger.resolve(4, key(1, 1)), Some(4));
            assert!(ledger.numbers(4));
            assert!(!ledger.numbers(0));
            assert_eq!(ledger.resolve(0, 17), None);
        }
    }

    #[test]
    fn issue_11_4_the_ledger_stays_bounded_over_many_chunks() {
        let ledger = Ledger::default();
        let marks = Marks {
            malformed: true,
            conflict: true,
        };
        // A million chunks, every one marked, reported two at a time out of order.
        for pair in 0..500_000u64 {
            ledger.settle(0, 2 * pair + 1, 7, marks);
            ledger.settle(0, 2 * pair, 7, marks);
        }
        let inner = ledger.inner.lock().unwrap();
        assert_eq!(inner.malformed.len(), MALFORMED_EXAMPLES);
        assert_eq!(inner.conflict.len(), 1);
        assert_eq!(inner.inputs[&0].early.len(), 0);
        assert_eq!(inner.inputs[&0].next_first, 7_000_001);
        drop(inner);
        assert_eq!(ledger.resolve(0, key(0, 7)), Some(7));
        assert_eq!(ledger.resolve(0, key(4, 1)), Some(29));
        assert_eq!(ledger.resolve(0, key(999_999, 1)), None);
    }
}
