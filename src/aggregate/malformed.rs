//! Malformed lines as doubt, not evidence (review finding F3).
//!
//! A line that opens like an access entry but fits no format is never counted
//! as a request (spec §1) — yet it may be a plaintext request to the very pod
//! whose log holds it: a field added by a newer EnvoyFilter, a client that
//! put a quote into its own header, a clock step. So a destination whose
//! streams hold malformed lines inside the window is not `ready`.
//!
//! Times are kept per minute (enough to place a line against the window's
//! edges, bounded by the span of the data, not by the line count); a line
//! whose time cannot be read is "untimed" and counts as inside any window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Window;

/// Malformed lines of one stream (or one input), by minute of their write time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MalformedTimes {
    /// Lines whose time could not be read: they may lie inside any window.
    pub untimed: u64,
    /// Minute (epoch ms / 60,000) → lines written in it.
    pub minutes: BTreeMap<i64, u64>,
}

const MINUTE_MS: i64 = 60_000;

impl MalformedTimes {
    /// Notes one malformed line written at `t` (epoch ms), if known.
    pub fn add(&mut self, t: Option<i64>) {
        match t {
            Some(t) => *self.minutes.entry(t.div_euclid(MINUTE_MS)).or_default() += 1,
            None => self.untimed += 1,
        }
    }

    pub fn merge(&mut self, other: &MalformedTimes) {
        self.untimed += other.untimed;
        for (&m, &n) in &other.minutes {
            *self.minutes.entry(m).or_default() += n;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.untimed == 0 && self.minutes.is_empty()
    }

    /// Lines that may lie inside `window`: the untimed ones and those of every
    /// minute that overlaps it (a minute straddling an edge counts: doubt
    /// errs toward `insufficient`).
    pub fn in_window(&self, window: &Window) -> u64 {
        let first = window.start_ms.div_euclid(MINUTE_MS);
        // The window is half-open: a minute starting at its end lies outside.
        let last = (window.end_ms - 1).div_euclid(MINUTE_MS);
        if last < first {
            return self.untimed;
        }
        self.untimed
            + self
                .minutes
                .range(first..=last)
                .map(|(_, n)| n)
                .sum::<u64>()
    }

    /// Forgets minutes that end at or before `before_ms` (watch's pruning).
    pub fn prune(&mut self, before_ms: i64) {
        let keep = before_ms.div_euclid(MINUTE_MS);
        self.minutes = self.minutes.split_off(&keep);
    }
}

/// The write time a malformed line gives away, when its envelope has none:
/// the `[START_TIME]` Envoy's and Istio's text formats open with.
pub fn leading_time(line: &[u8]) -> Option<i64> {
    let rest = line.strip_prefix(b"[")?;
    let end = memchr::memchr(b']', &rest[..rest.len().min(64)])?;
    crate::time::parse_rfc3339_ms(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start_ms: i64, end_ms: i64) -> Window {
        Window { start_ms, end_ms }
    }

    #[test]
    fn minutes_overlapping_the_window_count_and_untimed_always_do() {
        let mut m = MalformedTimes::default();
        m.add(Some(0));
        m.add(Some(59_999));
        m.add(Some(120_000));
        m.add(None);
        assert_eq!(m.in_window(&window(0, 60_000)), 3);
        // A minute straddling the start counts (doubt errs toward insufficient).
        assert_eq!(m.in_window(&window(30_000, 60_000)), 3);
        // Half-open: the minute that starts at the end lies outside.
        assert_eq!(m.in_window(&window(60_000, 120_000)), 1);
        assert_eq!(m.in_window(&window(60_000, 120_001)), 2);
    }

    #[test]
    fn merge_is_order_free_and_prune_keeps_recent_minutes() {
        let (mut a, mut b) = (MalformedTimes::default(), MalformedTimes::default());
        a.add(Some(0));
        b.add(Some(180_000));
        b.add(None);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        ab.prune(120_000);
        assert_eq!(ab.minutes.len(), 1);
        assert_eq!(ab.untimed, 1);
    }

    #[test]
    fn the_leading_start_time_dates_a_raw_line() {
        assert_eq!(
            leading_time(b"[1970-01-01T00:01:00.000Z] \"GET / HTTP/1.1\" 200"),
            Some(60_000)
        );
        assert_eq!(leading_time(b"garbage [1970-01-01T00:01:00Z]"), None);
        assert_eq!(leading_time(b"["), None);
    }
}
