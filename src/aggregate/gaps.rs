//! Holes inside a stream's log (review finding F11).
//!
//! Coverage asks whether a stream's evidence reaches back to the window's
//! start; that is not enough when files or exports are concatenated with a
//! piece missing (`cat app.log.2 app.log` without `app.log.1`, an export that
//! failed one day): the log then begins early enough and still hides hours.
//! A log cannot tell a hole from a quiet hour, but it can tell when a quiet
//! stretch would be wildly unlikely at the stream's own pace: a stretch of at
//! least [`MIN_HOLE_MS`] in which, at the rate the stream logs outside it, at
//! least [`MIN_EXPECTED`] lines were due is called a hole.
//!
//! Lines are counted per five-minute slot of their write time: mergeable in
//! any order, bounded by the span of the data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Window;

const SLOT_MS: i64 = 5 * 60_000;
/// The shortest quiet stretch that may be a hole.
pub const MIN_HOLE_MS: i64 = 60 * 60_000;
/// Lines the stream's own pace makes due in a stretch before its silence is a hole.
pub const MIN_EXPECTED: f64 = 1000.0;

/// Lines written per five-minute slot of one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    slots: BTreeMap<i64, u64>,
}

/// A quiet stretch inside the window that the stream's pace says is a hole.
#[derive(Clone, Debug, PartialEq)]
pub struct Hole {
    /// The last line before it (or the window's start) and the first after it.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Lines the stream logs per hour outside the stretch.
    pub per_hour: f64,
}

impl Activity {
    pub fn add(&mut self, t: i64) {
        *self.slots.entry(t.div_euclid(SLOT_MS)).or_default() += 1;
    }

    /// Adds `n` lines written somewhere in `(start_ms, end_ms]` (counted
    /// evidence: a store's per-hour count), spread evenly over its slots.
    pub fn add_spread(&mut self, start_ms: i64, end_ms: i64, n: u64) {
        let first = start_ms.div_euclid(SLOT_MS);
        let last = (end_ms - 1).div_euclid(SLOT_MS);
        let slots = (last - first + 1).max(1) as u64;
        for (i, slot) in (first..=last).enumerate() {
            let share = n / slots + u64::from((i as u64) < n % slots);
            if share > 0 {
                *self.slots.entry(slot).or_default() += share;
            }
        }
    }

    pub fn merge(&mut self, other: &Activity) {
        for (&s, &n) in &other.slots {
            *self.slots.entry(s).or_default() += n;
        }
    }

    /// Forgets slots that end at or before `before_ms` (watch's pruning).
    pub fn prune(&mut self, before_ms: i64) {
        self.slots = self.slots.split_off(&before_ms.div_euclid(SLOT_MS));
    }

    /// The longest quiet stretch within `window` (from its start, or the
    /// stream's first line if later, to its last line) if it is a hole.
    pub fn hole_in(&self, window: &Window) -> Option<Hole> {
        let first = window.start_ms.div_euclid(SLOT_MS);
        let last = window.end_ms.div_euclid(SLOT_MS);
        let in_window: Vec<(i64, u64)> = self
            .slots
            .range(first..=last)
            .map(|(&s, &n)| (s, n))
            .collect();
        let (&(first_seen, _), &(last_seen, _)) = (in_window.first()?, in_window.last()?);
        // Lines before the window show the log was there at its start: the
        // stretch from the start to the first line inside counts.
        let logged_before = self.slots.range(..first).next_back().is_some();
        let mut best: Option<(i64, i64)> = None; // (quiet slots, slot before the stretch)
        let mut previous = if logged_before { first - 1 } else { first_seen };
        for &(s, _) in &in_window {
            let quiet = s - previous - 1;
            if quiet > 0 && best.is_none_or(|(q, _)| quiet > q) {
                best = Some((quiet, previous));
            }
            previous = s;
        }
        let (quiet, before) = best?;
        let quiet_ms = quiet * SLOT_MS;
        if quiet_ms < MIN_HOLE_MS {
            return None;
        }
        let start = if logged_before { first } else { first_seen };
        let busy_ms = ((last_seen - start + 1) * SLOT_MS - quiet_ms).max(SLOT_MS);
        let lines: u64 = in_window.iter().map(|&(_, n)| n).sum();
        let per_hour = lines as f64 * 3_600_000.0 / busy_ms as f64;
        if per_hour * quiet_ms as f64 / 3_600_000.0 < MIN_EXPECTED {
            return None;
        }
        Some(Hole {
            start_ms: ((before + 1) * SLOT_MS).max(window.start_ms),
            end_ms: (before + 1 + quiet) * SLOT_MS,
            per_hour,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn window() -> Window {
        Window {
            start_ms: 0,
            end_ms: 24 * H,
        }
    }

    /// `per_hour` lines an hour over `[from, to)` hours.
    fn busy(a: &mut Activity, from: i64, to: i64, per_hour: i64) {
        for i in 0..(to - from) * per_hour {
            a.add(from * H + i * H / per_hour);
        }
    }

    #[test]
    fn a_busy_stream_with_hours_missing_has_a_hole() {
        let mut a = Activity::default();
        a.add(-6 * H); // one old line: the log began before the window
        busy(&mut a, 23, 24, 120);
        let hole = a.hole_in(&window()).expect("a hole");
        assert_eq!((hole.start_ms, hole.end_ms), (0, 23 * H));
        let mut b = Activity::default();
        busy(&mut b, 0, 10, 600);
        busy(&mut b, 14, 24, 600);
        let hole = b.hole_in(&window()).expect("a hole");
        assert_eq!((hole.start_ms, hole.end_ms), (10 * H, 14 * H));
    }

    #[test]
    fn a_quiet_stream_or_a_short_pause_is_no_hole() {
        let mut a = Activity::default();
        busy(&mut a, 0, 24, 2); // two lines an hour: hours of silence are normal
        a.add(23 * H);
        assert_eq!(a.hole_in(&window()), None);
        let mut d = Activity::default();
        busy(&mut d, 0, 10, 60);
        busy(&mut d, 14, 24, 60); // four quiet hours at 60 an hour: 240 due, a quiet night
        assert_eq!(d.hole_in(&window()), None);
        let mut b = Activity::default();
        busy(&mut b, 0, 10, 600);
        busy(&mut b, 10, 24, 600);
        assert_eq!(b.hole_in(&window()), None);
        let mut c = Activity::default();
        busy(&mut c, 0, 12, 30);
        busy(&mut c, 13, 24, 30); // one quiet hour at 30 lines an hour: 30 due, not 1,000
        assert_eq!(c.hole_in(&window()), None);
    }

    #[test]
    fn merge_is_order_free() {
        let (mut a, mut b) = (Activity::default(), Activity::default());
        busy(&mut a, 0, 3, 10);
        busy(&mut b, 2, 5, 10);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
    }
}
