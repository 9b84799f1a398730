//! Request durations of one cell, per hour: a sparse histogram.
//!
//! Issue 11 item 3: an hdrhistogram per cell per hour holds a counts array
//! whatever was recorded (1 KiB and more), and Istio's formats have
//! thousands of cells per destination. Here a cell keeps only the
//! (hour, value, count) triples it saw, sorted, with values already reduced
//! to the bucket an hdr histogram of 2 significant figures puts them in
//! (its lowest equivalent value), so the histogram rebuilt from them at
//! report time has exactly the counts, minimum and maximum per-cell
//! histograms would have had: the same p50, p99, max.
//!
//! (Until issue 11 the per-cell histograms were fresh `Histogram::new(2)`
//! written with `saturating_record`, which clamps instead of resizing: every
//! duration of 256 ms or more was reported as 2 ms.)

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A histogram of 2 significant figures: where its buckets lie does not
/// depend on what it holds, so one empty template answers for every cell.
fn template() -> &'static Histogram<u32> {
    static TEMPLATE: std::sync::LazyLock<Histogram<u32>> =
        std::sync::LazyLock::new(|| Histogram::new(2).expect("2 significant figures is valid"));
    &TEMPLATE
}

/// The value the histogram's bucket for `d` stands for (its lowest equivalent):
/// exact below 256 ms, within 1% above.
fn stored(d: u64) -> u64 {
    template().lowest_equivalent(d)
}

/// Records `count` values of `value` into `h`, growing it as needed.
fn record_into(h: &mut Histogram<u32>, value: u64, count: u32) {
    if h.record_n(value, count).is_err() {
        // Past what any histogram can hold (near u64::MAX): the largest it can.
        h.saturating_record_n(value, count);
    }
}

/// (hour, stored value, count), sorted by hour then value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Durations {
    entries: Vec<(i64, u64, u32)>,
}

impl Durations {
    /// Records `n` requests of `d` ms in `hour`.
    pub(super) fn record_n(&mut self, hour: i64, d: u64, n: u32) {
        let key = (hour, stored(d));
        let e = &mut self.entries;
        // A busy cell repeats its last value often: no search then.
        if let Some(last) = e.last_mut()
            && (last.0, last.1) == key
        {
            last.2 = last.2.saturating_add(n);
            return;
        }
        match e.binary_search_by(|x| (x.0, x.1).cmp(&key)) {
            Ok(i) => e[i].2 = e[i].2.saturating_add(n),
            Err(i) => {
                if e.len() == e.capacity() && e.len() < 4 {
                    e.reserve_exact(1);
                }
                e.insert(i, (hour, key.1, n));
            }
        }
    }

    pub(super) fn record(&mut self, hour: i64, d: u64) {
        self.record_n(hour, d, 1);
    }

    /// Adds `other`'s counts to these (saturating, like hdrhistogram's `add`).
    pub(super) fn merge(&mut self, other: &Durations) {
        if self.entries.is_empty() {
            self.entries = other.entries.clone();
            return;
        }
        let mut out = Vec::with_capacity(self.entries.len() + other.entries.len());
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.entries, &other.entries);
        while i < a.len() || j < b.len() {
            let next = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if (x.0, x.1) == (y.0, y.1) => {
                    i += 1;
                    j += 1;
                    (x.0, x.1, x.2.saturating_add(y.2))
                }
                (Some(x), Some(y)) if (x.0, x.1) < (y.0, y.1) => {
                    i += 1;
                    *x
                }
                (Some(x), None) => {
                    i += 1;
                    *x
                }
                (_, Some(y)) => {
                    j += 1;
                    *y
                }
                (None, None) => unreachable!("loop condition"),
            };
            out.push(next);
        }
        self.entries = out;
    }

    /// Forgets hours before `keep_hour`.
    pub(super) fn prune(&mut self, keep_hour: i64) {
        self.entries.retain(|e| e.0 >= keep_hour);
    }

    /// The hours that hold durations, ascending (for checking a state file).
    pub(super) fn hours(&self) -> impl Iterator<Item = i64> + '_ {
        let mut last = None;
        self.entries.iter().filter_map(move |e| {
            let new = last != Some(e.0);
            last = Some(e.0);
            new.then_some(e.0)
        })
    }

    /// The histogram of the hours `lo..=hi`, `None` if they hold no duration.
    pub(super) fn histogram(&self, lo: i64, hi: i64) -> Option<Histogram<u32>> {
        let from = self.entries.partition_point(|e| e.0 < lo);
        let mut out: Option<Histogram<u32>> = None;
        for &(hour, value, count) in &self.entries[from..] {
            if hour > hi {
                break;
            }
            let h = out
                .get_or_insert_with(|| Histogram::new(2).expect("2 significant figures is valid"));
            record_into(h, value, count);
        }
        out
    }
}

/// Encoded as hour → [(value, count)], byte for byte the per-hour
/// histograms' former encoding (state files keep their layout).
impl Serialize for Durations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
        for &(hour, value, count) in &self.entries {
            // hdr's own listing (`iter_recorded`) names a bucket by its highest value.
            let named = template().highest_equivalent(value);
            map.entry(hour).or_default().push((named, count as u64));
        }
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Durations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<i64, Vec<(u64, u64)>>::deserialize(d)?;
        let mut out = Durations::default();
        for (hour, recorded) in map {
            for (value, count) in recorded {
                let n = count.min(u32::MAX as u64) as u32;
                if n > 0 {
                    out.record_n(hour, value, n);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What per-cell histograms answer: `record` into a resizing
    /// `Histogram::new(2)` per hour, then `add` across hours.
    fn hdr(values: &[(i64, u64)], lo: i64, hi: i64) -> Option<Histogram<u32>> {
        let mut per_hour: BTreeMap<i64, Histogram<u32>> = BTreeMap::new();
        for &(hour, d) in values {
            per_hour
                .entry(hour)
                .or_insert_with(|| Histogram::new(2).unwrap())
                .record(d)
                .unwrap();
        }
        let mut out: Option<Histogram<u32>> = None;
        for (_, h) in per_hour.range(lo..=hi) {
            match &mut out {
                Some(o) => o.add(h).unwrap(),
                None => out = Some(h.clone()),
            }
        }
        out
    }

    fn summary(h: &Histogram<u32>) -> (u64, u64, u64, u64, u64) {
        (
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.max(),
            h.min_nz(),
            h.len(),
        )
    }

    /// Sparse quantiles equal hdr's, whatever the values (large ones
    /// included), the order, or how the parts were merged.
    #[test]
    fn issue_11_3_sparse_quantiles_equal_hdr() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut values = Vec::new();
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = match i % 5 {
                0 => x % 10,
                1 => x % 300,
                2 => x % 100_000,
                3 => (x >> (x % 64)) % (1 << 40),
                _ => 255 + x % 3,
            };
            values.push(((x >> 40) as i64 % 5, d));
        }
        let mut whole = Durations::default();
        let (mut a, mut b) = (Durations::default(), Durations::default());
        for (n, &(hour, d)) in values.iter().enumerate() {
            whole.record(hour, d);
            if n % 3 == 0 { &mut a } else { &mut b }.record(hour, d);
        }
        b.merge(&a);
        assert_eq!(b, whole, "merge equals one pass");
        let mut reversed = Durations::default();
        for &(hour, d) in values.iter().rev() {
            reversed.record(hour, d);
        }
        assert_eq!(reversed, whole, "order does not matter");
        for (lo, hi) in [(0, 4), (1, 1), (2, 3), (5, 9), (-3, 0)] {
            let want = hdr(&values, lo, hi);
            let got = whole.histogram(lo, hi);
            assert_eq!(want.as_ref().map(summary), got.as_ref().map(summary));
        }
    }

    /// A slow request reads as slow: before issue 11 every duration of
    /// 256 ms or more came out as 2 ms (a clamping record into a histogram
    /// that never grew).
    #[test]
    fn issue_11_3_long_durations_are_not_clamped() {
        let mut d = Durations::default();
        for v in [5, 300, 1_000, 60_000, 108_000_000] {
            d.record(7, v);
        }
        let h = d.histogram(7, 7).unwrap();
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want;
        assert!(near(h.max(), 108_000_000), "max {}", h.max());
        assert!(
            near(h.value_at_quantile(0.5), 1_000),
            "p50 {}",
            h.value_at_quantile(0.5)
        );
        assert_eq!(h.min_nz(), 5);
    }

    /// The encoding is the former per-hour histograms' (value, count) list,
    /// and decodes to the same durations.
    #[test]
    fn issue_11_3_durations_encode_like_the_histograms() {
        let mut d = Durations::default();
        for (hour, v) in [(3, 10), (1, 7), (3, 10), (3, 9000), (1, 0)] {
            d.record(hour, v);
        }
        let bytes = postcard::to_allocvec(&d).unwrap();
        let mut old: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
        for (hour, values) in [(1, vec![0, 7]), (3, vec![10, 10, 9000])] {
            let mut h = Histogram::<u32>::new(2).unwrap();
            for v in values {
                h.record(v).unwrap();
            }
            let recorded = h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value() as u64));
            old.insert(hour, recorded.collect());
        }
        assert_eq!(bytes, postcard::to_allocvec(&old).unwrap());
        let back: Durations = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, d);
    }
}
