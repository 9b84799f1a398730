//! When a followed stream has delivered its history (issue 7 item 21), and
//! the destinations still waiting for one: those are `pending`, not judged.
//!
//! kubelet sends a follow's backlog at once and then live lines, with no
//! marker between them. A follower records facts ([`Progress`]); the driver
//! decides here, after it has processed every chunk sent so far, so a
//! destination is never judged on part of a backlog already written.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use crate::source::Chunk;
use crate::source::kube::follow::{self, Cursor, Progress};
use crate::verdict::{self, Report};

/// A connected stream that sent nothing for this long, with every chunk it
/// sent processed, has delivered its history (kubelet sends the backlog at once).
const HISTORY_IDLE_MS: i64 = 1000;

/// A stream whose newest line is this close to when it connected has read its history.
const HISTORY_SLACK_NS: i64 = 1_000_000_000;

/// One followed container.
pub(super) struct Followed {
    pub task: tokio::task::JoinHandle<()>,
    pub cursor: Arc<Mutex<Cursor>>,
    pub input: u32,
    pub progress: Arc<Progress>,
    /// Its history has been read and processed: its destination may be judged.
    pub caught_up: bool,
}

impl Followed {
    /// Decides (once) whether the stream has delivered its history: it cannot
    /// deliver more, its newest processed line reached the moment it
    /// connected, or it has been idle with everything it sent processed.
    pub fn check_caught_up(&mut self, newest_processed_ns: Option<i64>, now_ms: i64) {
        if self.caught_up {
            return;
        }
        let p = &self.progress;
        let connected_at = p.connected_at_ms.load(Ordering::Relaxed);
        let reached = newest_processed_ns.is_some_and(|ns| {
            connected_at > 0 && ns >= connected_at * 1_000_000 - HISTORY_SLACK_NS
        });
        let idle =
            connected_at > 0 && now_ms - p.last_read_ms.load(Ordering::Relaxed) >= HISTORY_IDLE_MS;
        self.caught_up =
            self.task.is_finished() || p.nothing_to_read.load(Ordering::Relaxed) || reached || idle;
    }
}

/// The kubelet timestamp of a chunk's last line, in ns.
fn last_line_ns(data: &[u8]) -> Option<i64> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let start = memchr::memrchr(b'\n', body).map_or(0, |i| i + 1);
    follow::line_timestamp_ns(&body[start..])
}

pub(super) fn note_processed(newest: &mut HashMap<u32, i64>, chunk: &Chunk) {
    if let Some(ns) = last_line_ns(&chunk.data) {
        let at = newest.entry(chunk.input).or_insert(ns);
        *at = (*at).max(ns);
    }
}

/// Marks `pending` every destination one of whose streams is still reading
/// its history: its verdict could still change from lines already written.
pub(super) fn mark_pending(
    report: &mut Report,
    resolved: &crate::aggregate::Resolved,
    reading: &HashSet<&str>,
) {
    if reading.is_empty() {
        return;
    }
    for d in &resolved.destinations {
        let waiting = d
            .streams
            .iter()
            .filter(|s| reading.contains(s.display.as_str()))
            .count();
        if waiting == 0 {
            continue;
        }
        if let Some(r) = report
            .destinations
            .iter_mut()
            .find(|r| r.destination == d.name)
        {
            r.verdict = verdict::Verdict::Pending;
            r.reason = format!(
                "reading history: {}/{} streams caught up",
                d.streams.len() - waiting,
                d.streams.len()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunks_last_line_gives_its_time() {
        let a = last_line_ns(b"2026-11-20T11:00:00Z a\n2026-11-20T11:00:01.5Z b\n").unwrap();
        let one = last_line_ns(b"2026-11-20T11:00:01.5Z b\n").unwrap();
        assert_eq!(a, one);
        assert_eq!(
            last_line_ns(b"2026-11-20T11:00:01.5Z b\n2026-11-20T11:00:00Z a\n").unwrap()
                + 1_500_000_000,
            one
        );
        assert_eq!(last_line_ns(b"no time\n"), None);
    }
}
