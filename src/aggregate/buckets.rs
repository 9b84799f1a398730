//! The one-second buckets of one cell: a sorted `Vec` with an open-bucket
//! cache, falling back to a `BTreeMap` when lines come far out of order.
//!
//! Issue 11 item 3: a `BTreeMap` per cell cost a tree walk per line and a
//! node allocation (hundreds of bytes) even for a cell of one request, and
//! Istio's formats have thousands of cells per destination. Logs are written
//! in time order, so the bucket a line needs is almost always the last one
//! touched or a new one at the end: both found without a search. A line
//! out of order is found by binary search and inserted; once a cell holds
//! [`VEC_LIMIT`] buckets, an insertion in the middle turns it into a tree,
//! so shuffled input costs what it cost before instead of a quadratic shift.
//! The representation never shows in an answer: both iterate in second order.

use std::collections::BTreeMap;
use std::collections::btree_map;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cell::Bucket;

/// Buckets a sorted vector may hold before an insertion in its middle turns
/// it into a tree: bounds the bytes one out-of-order line can shift (16 KiB).
const VEC_LIMIT: usize = 512;

/// Second → bucket, in second order.
#[derive(Clone, Debug)]
pub(super) enum Buckets {
    /// Sorted by second; `at` is the last bucket touched (the open bucket).
    Sorted {
        v: Vec<(i64, Bucket)>,
        at: usize,
    },
    Tree(BTreeMap<i64, Bucket>),
}

impl Default for Buckets {
    fn default() -> Self {
        Buckets::Sorted {
            v: Vec::new(),
            at: 0,
        }
    }
}

impl Buckets {
    /// The bucket of `second`, created empty if missing.
    pub(super) fn entry(&mut self, second: i64) -> &mut Bucket {
        if let Buckets::Sorted { v, .. } = self
            && v.len() >= VEC_LIMIT
            && v.last().is_some_and(|e| e.0 > second)
            && v.binary_search_by_key(&second, |e| e.0).is_err()
        {
            let tree: BTreeMap<i64, Bucket> = std::mem::take(v).into_iter().collect();
            *self = Buckets::Tree(tree);
        }
        let (v, at) = match self {
            Buckets::Tree(t) => return t.entry(second).or_default(),
            Buckets::Sorted { v, at } => (v, at),
        };
        if v.get(*at).is_some_and(|e| e.0 == second) {
            return &mut v[*at].1;
        }
        let i = match v.last() {
            Some(&(last, _)) if last >= second => match v.binary_search_by_key(&second, |e| e.0) {
                Ok(i) => i,
                Err(i) => {
                    grow(v);
                    v.insert(i, (second, Bucket::default()));
                    i
                }
            },
            _ => {
                grow(v);
                v.push((second, Bucket::default()));
                v.len() - 1
            }
        };
        *at = i;
        &mut v[i].1
    }

    pub(super) fn get(&self, second: i64) -> Option<&Bucket> {
        match self {
            Buckets::Sorted { v, .. } => v
                .binary_search_by_key(&second, |e| e.0)
                .ok()
                .map(|i| &v[i].1),
            Buckets::Tree(t) => t.get(&second),
        }
    }

    /// The buckets with `lo <= second <= hi`, in second order (empty when `lo > hi`).
    pub(super) fn range(&self, lo: i64, hi: i64) -> Iter<'_> {
        match self {
            Buckets::Sorted { v, .. } => {
                let from = v.partition_point(|e| e.0 < lo);
                let to = v.partition_point(|e| e.0 <= hi).max(from);
                Iter::Sorted(v[from..to].iter())
            }
            Buckets::Tree(t) if lo <= hi => Iter::Tree(t.range(lo..=hi)),
            Buckets::Tree(_) => Iter::Sorted([].iter()),
        }
    }

    /// Every bucket, in second order.
    pub(super) fn iter(&self) -> Iter<'_> {
        self.range(i64::MIN, i64::MAX)
    }

    /// Removes and returns the buckets with `lo <= second <= hi`, in second order.
    pub(super) fn take_range(&mut self, lo: i64, hi: i64) -> Vec<(i64, Bucket)> {
        match self {
            Buckets::Sorted { v, at } => {
                let from = v.partition_point(|e| e.0 < lo);
                let to = v.partition_point(|e| e.0 <= hi).max(from);
                *at = 0;
                v.drain(from..to).collect()
            }
            Buckets::Tree(t) => {
                let keys: Vec<i64> = t.range(lo..=hi.max(lo)).map(|(&s, _)| s).collect();
                if lo > hi {
                    return Vec::new();
                }
                keys.into_iter()
                    .filter_map(|s| t.remove(&s).map(|b| (s, b)))
                    .collect()
            }
        }
    }

    /// Adds `other`'s buckets to these (a linear merge when both are sorted vectors).
    pub(super) fn merge(&mut self, other: Buckets) {
        match (&mut *self, other) {
            (Buckets::Sorted { v, at }, Buckets::Sorted { v: o, .. }) => {
                if v.is_empty() {
                    *v = o;
                    return;
                }
                let mut out = Vec::with_capacity(v.len() + o.len());
                let mut mine = std::mem::take(v).into_iter().peekable();
                let mut theirs = o.into_iter().peekable();
                loop {
                    let next = match (mine.peek(), theirs.peek()) {
                        (Some(a), Some(b)) if a.0 == b.0 => {
                            let (s, mut x) = mine.next().expect("peeked");
                            x.add(&theirs.next().expect("peeked").1);
                            (s, x)
                        }
                        (Some(a), Some(b)) if a.0 < b.0 => mine.next().expect("peeked"),
                        (Some(_), None) => mine.next().expect("peeked"),
                        (_, Some(_)) => theirs.next().expect("peeked"),
                        (None, None) => break,
                    };
                    out.push(next);
                }
                *v = out;
                *at = 0;
            }
            (_, other) => {
                for (s, b) in other.iter() {
                    self.entry(s).add(b);
                }
            }
        }
    }
}

/// Grows a vector one element at a time while it is small: most cells of a
/// high-cardinality destination hold one or two buckets, and the default
/// growth would reserve four.
fn grow<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() && v.len() < 4 {
        v.reserve_exact(1);
    }
}

/// Buckets in second order, from either representation.
pub(super) enum Iter<'a> {
    Sorted(std::slice::Iter<'a, (i64, Bucket)>),
    Tree(btree_map::Range<'a, i64, Bucket>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (i64, &'a Bucket);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sorted(i) => i.next().map(|(s, b)| (*s, b)),
            Iter::Tree(i) => i.next().map(|(s, b)| (*s, b)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Sorted(i) => i.size_hint(),
            Iter::Tree(i) => i.size_hint(),
        }
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sorted(i) => i.next_back().map(|(s, b)| (*s, b)),
            Iter::Tree(i) => i.next_back().map(|(s, b)| (*s, b)),
        }
    }
}

/// Encoded as a map, byte for byte what the `BTreeMap` it replaced encoded
/// (state files keep their layout).
impl Serialize for Buckets {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // postcard needs the length up front; a tree's range does not say it.
        let mut map = s.serialize_map(Some(self.iter().count()))?;
        for (second, bucket) in self.iter() {
            map.serialize_entry(&second, bucket)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<i64, Bucket>::deserialize(d)?;
        Ok(Buckets::Sorted {
            v: map.into_iter().collect(),
            at: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Request, Transport};

    fn req() -> Request<'static> {
        Request {
            inbound: true,
            time_ms: None,
            transport: Transport::Mtls { identity: None },
            peer: None,
            named_destination: None,
            local_address: None,
            audited: false,
            duration_ms: None,
            caller: None,
            ambient: None,
        }
    }

    fn as_tree(b: &Buckets) -> BTreeMap<i64, Bucket> {
        b.iter().map(|(s, b)| (s, *b)).collect()
    }

    /// Any order of the same seconds gives the same buckets, sorted or tree.
    #[test]
    fn issue_11_3_buckets_are_the_same_in_any_order() {
        let seconds: Vec<i64> = (0..3000).map(|i| (i * 7919) % 1300 - 5).collect();
        let fill = |order: &[i64]| {
            let mut b = Buckets::default();
            for (n, &s) in order.iter().enumerate() {
                b.entry(s).record(&req(), 1 + (n % 1000) as u16);
            }
            b
        };
        let mut sorted = seconds.clone();
        sorted.sort();
        let mut reversed = sorted.clone();
        reversed.reverse();
        let want = {
            let mut t = BTreeMap::<i64, Bucket>::new();
            for (n, &s) in seconds.iter().enumerate() {
                t.entry(s)
                    .or_default()
                    .record(&req(), 1 + (n % 1000) as u16);
            }
            t
        };
        let shuffled = fill(&seconds);
        assert!(matches!(shuffled, Buckets::Tree(_)), "fell back to a tree");
        assert!(matches!(fill(&sorted), Buckets::Sorted { .. }));
        // Offsets differ by order, so compare counts, which do not.
        let counts = |t: BTreeMap<i64, Bucket>| -> Vec<(i64, [u32; 4])> {
            t.into_iter().map(|(s, b)| (s, b.parts().0)).collect()
        };
        for b in [&shuffled, &fill(&sorted), &fill(&reversed)] {
            assert_eq!(counts(as_tree(b)), counts(want.clone()));
        }
        // Merging halves (any split, either way round) equals one pass.
        let (a, b) = seconds.split_at(1234);
        for (x, y) in [(a, b), (b, a)] {
            let mut m = fill(x);
            m.merge(fill(y));
            assert_eq!(counts(as_tree(&m)), counts(want.clone()));
        }
    }

    #[test]
    fn issue_11_3_ranges_and_taking() {
        let mut b = Buckets::default();
        for s in [5, 1, 3, i64::MIN, 9] {
            b.entry(s).record(&req(), 1);
        }
        fn keys<'a>(i: impl Iterator<Item = (i64, &'a Bucket)>) -> Vec<i64> {
            i.map(|(s, _)| s).collect()
        }
        assert_eq!(keys(b.range(2, 5)), [3, 5]);
        assert_eq!(keys(b.range(6, 5)), Vec::<i64>::new());
        assert_eq!(keys(b.range(i64::MIN, 3).rev()), [3, 1, i64::MIN]);
        assert!(b.get(4).is_none() && b.get(9).is_some());
        let taken: Vec<i64> = b.take_range(i64::MIN + 1, 4).iter().map(|e| e.0).collect();
        assert_eq!(taken, [1, 3]);
        assert_eq!(keys(b.iter()), [i64::MIN, 5, 9]);
    }
}
