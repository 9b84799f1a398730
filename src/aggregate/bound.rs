//! The bound on live source cells per destination: which callers are folded
//! while reading, decided so that no order, chunking or thread count can change it.
//!
//! Issue 7 item 1: folding "the lighter half" depended on which chunks a
//! worker had seen, so the `other` row and even the named rows changed with
//! `--threads`. Here a source is folded if and only if a fixed 64-bit hash of
//! its name lies above its destination's threshold, and the threshold halves
//! while more than `max` sources lie at or below it. Sources only ever arrive,
//! so the final threshold is the highest one under which at most `max` of
//! *all* the destination's sources fall: the same whatever the order, and a
//! merge takes the lower of two thresholds and halves on if needed.
//!
//! Plaintext callers and mTLS callers are bounded separately, so thousands of
//! mTLS peers (Istio's formats group them by address) never push a plaintext
//! caller out of the named rows.

use std::collections::BTreeMap;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};

use super::cell::{Cell, UNTIMED};
use super::sketch::Sketch;

/// Source classes bounded separately: mTLS (0) and plaintext (1).
pub(super) const CLASSES: usize = 2;

/// The class of a source key (`plaintext` or `plaintext\0PEER` for plaintext).
pub(super) fn class_of(key: &[u8]) -> usize {
    (key == b"plaintext" || key.starts_with(b"plaintext\0")) as usize
}

/// A fixed hash of a source key: the same on every run, thread and machine.
pub(super) fn source_hash(key: &[u8]) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write(key);
    h.write_usize(key.len());
    // FxHash mixes its high bits poorly; a SplitMix64 finaliser spreads them.
    let mut x = h.finish();
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One destination's thresholds and live cell counts, per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Bound {
    /// The threshold is `u64::MAX >> level`.
    pub(super) level: [u8; CLASSES],
    pub(super) live: [u32; CLASSES],
}

impl Bound {
    pub(super) fn threshold(level: u8) -> u64 {
        u64::MAX.checked_shr(level as u32).unwrap_or(0)
    }

    /// Returns true if and only if a source of `class` with `hash` stays a row of its own.
    pub(super) fn keeps(&self, class: usize, hash: u64) -> bool {
        hash <= Self::threshold(self.level[class])
    }

    /// Returns true if and only if some source was folded while reading.
    pub(super) fn folded_any(&self) -> bool {
        self.level.iter().any(|&l| l > 0)
    }
}

/// Sources folded into one row: exact totals, and per hour a sketch of who
/// they were, so the distinct count can be estimated for any window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Folded {
    pub cell: Cell,
    /// Hour (of each request's bucket end) → sketch of the folded sources seen in it.
    pub(super) distinct: BTreeMap<i64, Sketch>,
}

/// The sketch key of a bucket: the hour its last millisecond falls in.
pub(super) fn hour_of_second(second: i64) -> i64 {
    if second == UNTIMED {
        UNTIMED
    } else {
        second.saturating_mul(1000).div_euclid(3_600_000)
    }
}

impl Folded {
    /// Notes that `key` was folded with requests in `hour` (see [`hour_of_second`]).
    pub(super) fn saw(&mut self, hour: i64, key: &[u8]) {
        self.distinct.entry(hour).or_default().insert(key);
    }

    /// Moves a source's cell in: its totals, and its name into every hour it had requests.
    pub(super) fn absorb(&mut self, key: &[u8], cell: Cell) {
        let mut last_hour = None;
        for (second, _) in cell.buckets.iter() {
            let hour = hour_of_second(second);
            if last_hour != Some(hour) {
                self.saw(hour, key);
                last_hour = Some(hour);
            }
        }
        self.cell.merge(cell);
    }

    pub(super) fn merge(&mut self, other: Folded) {
        self.cell.merge(other.cell);
        for (hour, sketch) in other.distinct {
            self.distinct.entry(hour).or_default().merge(&sketch);
        }
    }

    /// Estimated distinct folded sources with requests in the hours that meet
    /// `(start_ms, end_ms]` (untimed requests always count).
    pub fn distinct_in(&self, start_ms: i64, end_ms: i64) -> u64 {
        let lo = hour_of_second(start_ms.div_euclid(1000) + 1);
        let hi = hour_of_second((end_ms - 1).div_euclid(1000) + 1);
        let mut union = Sketch::default();
        let mut any = false;
        let untimed = self.distinct.get(&UNTIMED).into_iter();
        let hours = (lo <= hi)
            .then(|| self.distinct.range(lo..=hi).map(|(_, s)| s))
            .into_iter()
            .flatten();
        for s in untimed.chain(hours) {
            union.merge(s);
            any = true;
        }
        if any { union.estimate() } else { 0 }
    }

    /// Forgets sketches of hours before `keep_hour` (a sliding window moved past them).
    pub(super) fn prune(&mut self, keep_hour: i64) {
        let untimed = self.distinct.remove(&UNTIMED);
        self.distinct = self.distinct.split_off(&keep_hour);
        if let Some(u) = untimed {
            self.distinct.insert(UNTIMED, u);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed_and_spreads() {
        assert_eq!(
            source_hash(b"plaintext\x0010.0.0.1"),
            source_hash(b"plaintext\x0010.0.0.1")
        );
        let above_half = (0..10_000u32)
            .filter(|i| source_hash(format!("10.0.{i}").as_bytes()) > u64::MAX / 2)
            .count();
        assert!((4_500..5_500).contains(&above_half), "{above_half}");
    }

    #[test]
    fn classes_follow_the_key() {
        assert_eq!(class_of(b"plaintext"), 1);
        assert_eq!(class_of(b"plaintext\x001.2.3.4"), 1);
        assert_eq!(class_of(b"mtls\x001.2.3.4"), 0);
        assert_eq!(class_of(b"spiffe://cluster.local/ns/a/sa/b"), 0);
    }
}
