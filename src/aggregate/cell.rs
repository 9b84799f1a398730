//! Time buckets: one second of one destination × source, the cells that hold
//! them, and sums over any window.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::buckets::Buckets;
use super::durations::Durations;

use crate::request::{KnownCaller, Request, Transport};

/// Bucket key for requests with no timestamp at all: always inside the window.
pub(super) const UNTIMED: i64 = i64::MIN;

/// A half-open time window `(start, end]`, epoch ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// Returns true if and only if `t` lies in `(start, end]`.
    pub fn contains(&self, t: i64) -> bool {
        t > self.start_ms && t <= self.end_ms
    }
}

/// One second of one destination × source: compact, since there are many.
///
/// Times are stored as offsets `1..=1000` ms into the bucket's second
/// (`0` = none), which keeps a bucket at 28 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Bucket {
    mtls: u32,
    plaintext: u32,
    audited: u32,
    xfcc_forged: u32,
    first: u16,
    last: u16,
    last_plaintext: u16,
}

impl Bucket {
    pub(super) fn record(&mut self, req: &Request<'_>, off: u16) {
        match req.transport {
            Transport::Mtls { .. } => self.mtls += 1,
            Transport::Plaintext { forged_xfcc } => {
                self.plaintext += 1;
                self.xfcc_forged += forged_xfcc as u32;
                self.last_plaintext = self.last_plaintext.max(off);
            }
        }
        self.audited += req.audited as u32;
        if self.first == 0 || off < self.first {
            self.first = off;
        }
        self.last = self.last.max(off);
    }

    /// Records `n` requests like `req` at offset `off` (counted evidence:
    /// a log store's count of one destination × source × transport).
    pub(super) fn record_n(&mut self, req: &Request<'_>, off: u16, n: u32) {
        if n == 0 {
            return;
        }
        match req.transport {
            Transport::Mtls { .. } => self.mtls = self.mtls.saturating_add(n),
            Transport::Plaintext { forged_xfcc } => {
                self.plaintext = self.plaintext.saturating_add(n);
                if forged_xfcc {
                    self.xfcc_forged = self.xfcc_forged.saturating_add(n);
                }
                self.last_plaintext = self.last_plaintext.max(off);
            }
        }
        if req.audited {
            self.audited = self.audited.saturating_add(n);
        }
        if self.first == 0 || off < self.first {
            self.first = off;
        }
        self.last = self.last.max(off);
    }

    pub(super) fn add(&mut self, o: &Bucket) {
        self.mtls += o.mtls;
        self.plaintext += o.plaintext;
        self.audited += o.audited;
        self.xfcc_forged += o.xfcc_forged;
        if self.first == 0 || (o.first != 0 && o.first < self.first) {
            self.first = o.first;
        }
        self.last = self.last.max(o.last);
        self.last_plaintext = self.last_plaintext.max(o.last_plaintext);
    }

    /// The counters and the time offsets, for checking a bucket read from a state file.
    pub(super) fn parts(&self) -> ([u32; 4], [u16; 3]) {
        (
            [self.mtls, self.plaintext, self.audited, self.xfcc_forged],
            [self.first, self.last, self.last_plaintext],
        )
    }

    /// Widens into [`Counts`]; `second` is the bucket key.
    pub(super) fn counts(&self, second: i64) -> Counts {
        let at =
            |off: u16| (off != 0 && second != UNTIMED).then(|| (second - 1) * 1000 + off as i64);
        Counts {
            mtls: self.mtls as u64,
            plaintext: self.plaintext as u64,
            audited: self.audited as u64,
            xfcc_forged: self.xfcc_forged as u64,
            first_ms: at(self.first),
            last_ms: at(self.last),
            last_plaintext_ms: at(self.last_plaintext),
        }
    }
}

/// Counters of any sum of buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub mtls: u64,
    pub plaintext: u64,
    pub audited: u64,
    pub xfcc_forged: u64,
    /// Earliest and latest request time summed in, epoch ms.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub last_plaintext_ms: Option<i64>,
}

impl Counts {
    pub fn requests(&self) -> u64 {
        self.mtls + self.plaintext
    }

    pub fn add(&mut self, o: &Counts) {
        self.mtls += o.mtls;
        self.plaintext += o.plaintext;
        self.audited += o.audited;
        self.xfcc_forged += o.xfcc_forged;
        self.first_ms = min_opt(self.first_ms, o.first_ms);
        self.last_ms = max_opt(self.last_ms, o.last_ms);
        self.last_plaintext_ms = max_opt(self.last_plaintext_ms, o.last_plaintext_ms);
    }
}

pub(super) fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.max(b)
}

/// The buckets of one destination × source (or of a folded group of sources).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Cell {
    pub(super) buckets: Buckets,
    /// Request durations per hour of their START_TIME.
    pub(super) durations: Durations,
    /// The newest plaintext request filtered out before a known window.
    pub(super) last_plaintext_before: Option<i64>,
    /// The newest plaintext request filtered out *after* a known window
    /// (`--until` in the past): the caller may still be plaintext now (F6).
    pub(super) plaintext_after: Option<i64>,
    /// Requests recorded since the start, pruned or not (Prometheus counters).
    pub total_mtls: u64,
    pub total_plaintext: u64,
    /// A well-known caller seen from this source (by User-Agent).
    pub caller: Option<KnownCaller>,
}

impl Cell {
    pub(super) fn merge(&mut self, other: Cell) {
        self.last_plaintext_before =
            max_opt(self.last_plaintext_before, other.last_plaintext_before);
        self.plaintext_after = max_opt(self.plaintext_after, other.plaintext_after);
        self.total_mtls += other.total_mtls;
        self.total_plaintext += other.total_plaintext;
        self.caller = self.caller.max(other.caller);
        self.buckets.merge(other.buckets);
        self.durations.merge(&other.durations);
    }
}

impl Cell {
    /// Sums the buckets inside `window` (untimed requests always count).
    pub fn counts_in(&self, window: &Window) -> Counts {
        let mut total = Counts::default();
        if let Some(b) = self.buckets.get(UNTIMED) {
            total.add(&b.counts(UNTIMED));
        }
        // Bucket s holds (s-1 s, s s]: it meets (start, end] when s > start and s-1 < end.
        let lo = window.start_ms.div_euclid(1000) + 1;
        let hi = (window.end_ms - 1).div_euclid(1000) + 1;
        if lo <= hi {
            for (s, b) in self.buckets.range(lo, hi) {
                total.add(&b.counts(s));
            }
        }
        total
    }

    /// The newest plaintext request at or before `end`, inside the window or not.
    pub fn last_plaintext_until(&self, end_ms: i64) -> Option<i64> {
        // Newest bucket first: the first one with plaintext answers (untimed last).
        let last_second = (end_ms - 1).div_euclid(1000) + 1;
        let in_buckets = self
            .buckets
            .range(i64::MIN, last_second)
            .rev()
            .filter_map(|(s, b)| b.counts(s).last_plaintext_ms)
            .find(|&t| t <= end_ms);
        max_opt(in_buckets, self.last_plaintext_before)
    }

    /// The newest plaintext request after a known window's end (`--until`).
    pub fn plaintext_after(&self) -> Option<i64> {
        self.plaintext_after
    }

    /// Request durations in the hours that meet the window.
    pub fn durations_in(&self, window: &Window) -> Option<Histogram<u32>> {
        let lo = window.start_ms.div_euclid(3_600_000);
        let hi = window.end_ms.div_euclid(3_600_000);
        self.durations.histogram(lo, hi)
    }
}
