//! Checks an [`Aggregator`] that did not come from this process (a `watch
//! --state` file) before anything indexes into it.
//!
//! The aggregate's tables refer to each other by dense ids (cells by
//! destination and source id, streams by id, pending destinations by stream),
//! and its times are used in arithmetic (seconds × 1000, offsets into a
//! second). A state file that decodes but breaks any of this would panic
//! later, or wrap in a release build; found by fuzzing the state loader
//! (issue 7 item 30). The loader refuses such a file instead.

use super::cell::{Bucket, UNTIMED};
use super::names::{Interner, OneOf};
use super::{Aggregator, Cell, DestKind};

/// Times beyond ±10,000 years from 1970, in ms: none of strictly's own, and far from overflow when scaled.
const MAX_ABS_MS: i64 = 10_000 * 366 * 86_400_000;
/// Bucket keys are seconds.
const MAX_ABS_SECOND: i64 = MAX_ABS_MS / 1000;
/// Per-bucket counters a watch may still add to without overflowing a `u32`.
const MAX_BUCKET_COUNT: u32 = u32::MAX / 2;

impl Aggregator {
    /// Returns an error naming the first inconsistency of an aggregate read from outside.
    pub fn check_consistent(&self) -> Result<(), String> {
        let dests = interner(&self.dests, "destination")?;
        let sources = interner(&self.sources, "source")?;
        let namespaces = interner(&self.namespaces, "namespace")?;
        let streams = interner(&self.streams, "stream")?;
        let id = |what: &str, id: u32, len: usize| {
            if (id as usize) < len {
                Ok(())
            } else {
                Err(format!("{what} id {id} out of range (0..{len})"))
            }
        };
        if self.dest_kind.len() != dests {
            return Err("destination kinds do not match the destinations".into());
        }
        if self.stream_info.len() != streams {
            return Err("stream details do not match the streams".into());
        }
        for kind in &self.dest_kind {
            match kind {
                DestKind::PendingStream(s) | DestKind::PendingNamespace(s) => {
                    id("stream", *s, streams)?;
                }
                DestKind::Ambient {
                    identity_ns: OneOf::One(n),
                } => id("namespace", *n, namespaces)?,
                _ => {}
            }
        }
        for info in &self.stream_info {
            if let OneOf::One(d) = info.named {
                id("destination", d, dests)?;
            }
            if let OneOf::One(n) = info.named_ns {
                id("namespace", n, namespaces)?;
            }
            for d in [info.last_dest, info.fallback_dest].into_iter().flatten() {
                id("destination", d, dests)?;
            }
            for t in [info.first_ms, info.last_ms, info.started_ms] {
                time(t)?;
            }
        }
        for (&(d, s), cell) in &self.cells {
            id("destination", d, dests)?;
            id("source", s, sources)?;
            if self.sources.free.contains(&s) {
                return Err(format!("a cell refers to released source id {s}"));
            }
            check_cell(cell)?;
        }
        for &(d, s) in &self.contributions {
            id("destination", d, dests)?;
            id("stream", s, streams)?;
        }
        for (&d, o) in &self.outcomes {
            id("destination", d, dests)?;
            if o.keys().any(|s| s.abs() > MAX_ABS_SECOND)
                || o.values().flatten().any(|&n| n > MAX_BUCKET_COUNT)
            {
                return Err("a connection outcome out of range".into());
            }
        }
        for (&d, bound) in &self.bounds {
            id("destination", d, dests)?;
            if bound.level.iter().any(|&l| l > 64) {
                return Err("a source bound past 64 levels".into());
            }
        }
        for &s in self.cells_per_source.keys() {
            id("source", s, sources)?;
        }
        for (&d, folded) in &self.folded {
            id("destination", d, dests)?;
            check_cell(&folded.cell)?;
            if !folded.distinct.values().all(|s| s.is_well_formed()) {
                return Err("a folded-sources sketch has the wrong size".into());
            }
        }
        self.rejections.check_streams(streams)?;
        time(self.newest_write_ms)?;
        time(self.newest_start_ms)?;
        if let Some(w) = self.config.known_window {
            time(Some(w.start_ms))?;
            time(Some(w.end_ms))?;
        }
        Ok(())
    }
}

/// Returns how many ids an interner has. Decoding it checked that its ids
/// and names agree and that no released id is still mapped (see `names`).
fn interner(i: &Interner, what: &str) -> Result<usize, String> {
    let len = i.names.len();
    if len > u32::MAX as usize {
        return Err(format!("too many {what} names"));
    }
    if i.ids().any(|id| id as usize >= len) || i.free.iter().any(|&f| f as usize >= len) {
        return Err(format!("a {what} id is out of range"));
    }
    Ok(len)
}

fn check_cell(cell: &Cell) -> Result<(), String> {
    for (second, bucket) in cell.buckets.iter() {
        if second != UNTIMED && !(-MAX_ABS_SECOND..=MAX_ABS_SECOND).contains(&second) {
            return Err(format!("a bucket's second {second} is out of range"));
        }
        check_bucket(bucket)?;
    }
    for hour in cell.durations.hours() {
        time(Some(hour.saturating_mul(3_600_000)))?;
    }
    time(cell.last_plaintext_before)?;
    time(cell.plaintext_after)
}

fn check_bucket(b: &Bucket) -> Result<(), String> {
    let (counts, offsets) = b.parts();
    if counts.iter().any(|&c| c > MAX_BUCKET_COUNT) {
        return Err("a bucket's counter is out of range".into());
    }
    if offsets.iter().any(|&o| o > 1000) {
        return Err("a bucket's time offset is out of range".into());
    }
    Ok(())
}

fn time(t: Option<i64>) -> Result<(), String> {
    match t {
        Some(t) if !(-MAX_ABS_MS..=MAX_ABS_MS).contains(&t) => {
            Err(format!("time {t} ms is out of range"))
        }
        _ => Ok(()),
    }
}
