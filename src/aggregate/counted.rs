//! Counted evidence: a log store's (or a metrics backend's) count of requests
//! of one destination × source × transport in one time span, recorded with
//! the same attribution, source bound and window rules as a line.
//!
//! Push-down (`--pushdown`) lets Loki or Elasticsearch count instead of
//! shipping lines: strictly receives "N requests like this one in this hour".
//! The span's requests are placed at its *end*: a window whose edges fall on
//! span edges (hour-aligned for push-down) is then answered exactly, and a
//! stream's coverage is judged from the end of the first span it has lines in
//! — the latest its first line can be, so a store that starts inside a span
//! never proves more coverage than it has.

use super::bound::hour_of_second;
use super::cell::{Window, max_opt, min_opt};
use super::{Aggregator, StreamId};
use crate::request::{Request, Transport};

/// `count` requests like `request` (its transport, caller, audit flag and
/// the destination it names; its times are ignored) in `span` = `(start, end]`.
#[derive(Clone, Copy, Debug)]
pub struct CountedRow<'a> {
    pub span: Window,
    pub count: u64,
    pub request: Request<'a>,
}

impl Aggregator {
    /// Notes that `stream` had lines (of any kind) written in `span`: evidence
    /// of what it covers, taken at the span's end (the latest its lines can be).
    pub fn observe_counted(&mut self, stream: StreamId, span: Window) {
        self.observe_counted_lines(stream, span, 1);
    }

    /// [`Aggregator::observe_counted`] for `lines` lines: they also count
    /// towards the stream's pace, spread over the span, so an hour with no
    /// line between busy hours is a hole as it is line by line (review F11).
    pub fn observe_counted_lines(&mut self, stream: StreamId, span: Window, lines: u64) {
        let s = &mut self.stream_info[stream.0 as usize];
        s.first_ms = min_opt(s.first_ms, Some(span.end_ms));
        s.last_ms = max_opt(s.last_ms, Some(span.end_ms));
        s.activity.add_spread(span.start_ms, span.end_ms, lines);
        self.newest_write_ms = max_opt(self.newest_write_ms, Some(span.end_ms));
    }

    /// Records `row.count` inbound requests of `stream` in `row.span`, as
    /// [`Aggregator::record`] would record as many lines, except for time:
    ///
    /// - a span inside the known window counts at its end;
    /// - a span that straddles an edge of the known window counts only if it
    ///   is plaintext (its requests may be inside: it must block), at the
    ///   earlier of its end and the window's end; straddling mTLS is left
    ///   out of the window (it may be outside: it must not make a `ready`);
    /// - a span before the window still says when plaintext was last seen.
    pub fn record_counted(&mut self, stream: StreamId, row: &CountedRow<'_>) {
        if row.count == 0 {
            return;
        }
        let req = &row.request;
        let span = row.span;
        self.input.requests += row.count;
        self.observe_counted_lines(stream, span, 0);
        self.newest_start_ms = max_opt(self.newest_start_ms, Some(span.end_ms));
        let dest = self.destination(stream, req);
        let info = &mut self.stream_info[stream.0 as usize];
        if info.last_dest != Some(dest) {
            info.last_dest = Some(dest);
            self.contributions.insert((dest, stream.0));
        }
        let mut t = span.end_ms;
        if let Some(w) = self.config.known_window {
            let inside = span.start_ms >= w.start_ms && span.end_ms <= w.end_ms;
            let meets = span.end_ms > w.start_ms && span.start_ms < w.end_ms;
            if meets && !inside && req.is_plaintext() {
                t = t.min(w.end_ms);
            } else if !inside {
                if span.end_ms <= w.end_ms && req.is_plaintext() {
                    let cell = self.target(dest, req, None);
                    cell.last_plaintext_before = max_opt(cell.last_plaintext_before, Some(t));
                }
                return;
            }
        }
        let second = (t + 999).div_euclid(1000);
        let off = (t - (second - 1) * 1000) as u16;
        let cell = self.target(dest, req, Some(hour_of_second(second)));
        let bucket = cell.buckets.entry(second);
        let mut left = row.count;
        while left > 0 {
            let n = left.min(u32::MAX as u64);
            bucket.record_n(req, off, n as u32);
            left -= n;
        }
        match req.transport {
            Transport::Mtls { .. } => cell.total_mtls += row.count,
            Transport::Plaintext { .. } => cell.total_plaintext += row.count,
        }
        cell.caller = cell.caller.max(req.caller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateConfig;
    use crate::envelope::StreamMeta;
    use crate::request::NamedDestination;
    use crate::verdict::{self, VerdictConfig};

    const HOUR: i64 = 3_600_000;
    /// 2026-11-20T00:00:00Z: an hour edge.
    const T0: i64 = 1_795_132_800_000;

    fn req(plaintext: bool, peer: &'static [u8]) -> Request<'static> {
        Request {
            inbound: true,
            time_ms: None,
            transport: if plaintext {
                Transport::Plaintext { forged_xfcc: false }
            } else {
                Transport::Mtls {
                    identity: Some(b"spiffe://td/ns/a/sa/caller"),
                }
            },
            peer: plaintext.then_some(peer),
            named_destination: Some(NamedDestination::Spiffe(b"spiffe://td/ns/ns/sa/dest")),
            local_address: None,
            audited: !plaintext,
            duration_ms: None,
            caller: None,
            ambient: None,
        }
    }

    fn meta(pod: &'static [u8]) -> StreamMeta<'static> {
        StreamMeta {
            namespace: Some(b"shop"),
            pod: Some(pod),
            container: Some(b"istio-proxy"),
        }
    }

    /// (pod, hour index after T0, plaintext?, count): lines spread over each hour.
    type Rows = &'static [(&'static [u8], i64, bool, u64)];

    fn config(window: Window) -> AggregateConfig {
        AggregateConfig {
            known_window: Some(window),
            max_sources: 3,
            ..Default::default()
        }
    }

    fn by_lines(rows: Rows, window: Window) -> Aggregator {
        let mut agg = Aggregator::new(config(window));
        for &(pod, hour, pt, n) in rows {
            let s = agg.stream(0, "in", &meta(pod), None);
            let start = T0 + hour * HOUR;
            for i in 0..n {
                // Spread evenly over the hour (all a count can say), START_TIME the same.
                let t = start + 1 + i as i64 * (HOUR - 1) / n as i64;
                let mut r = req(pt, b"10.0.0.9");
                r.time_ms = Some(t);
                agg.observe(s, t);
                agg.record(s, &r, Some(t));
            }
        }
        agg
    }

    fn by_counts(rows: Rows, window: Window) -> Aggregator {
        let mut agg = Aggregator::new(config(window));
        for &(pod, hour, pt, n) in rows {
            let s = agg.stream(0, "in", &meta(pod), None);
            let span = Window {
                start_ms: T0 + hour * HOUR,
                end_ms: T0 + (hour + 1) * HOUR,
            };
            agg.observe_counted_lines(s, span, n);
            agg.record_counted(
                s,
                &CountedRow {
                    span,
                    count: n,
                    request: req(pt, b"10.0.0.9"),
                },
            );
        }
        agg
    }

    /// The verdict, reason-free counts and coverage of each destination.
    fn outcome(agg: Aggregator, window: Window) -> Vec<(String, String, u64, u64, u64, usize)> {
        let config = VerdictConfig {
            window_ms: window.end_ms - window.start_ms,
            until_ms: Some(window.end_ms),
            min_requests: 10,
            max_sources: 10,
        };
        let report = verdict::report(&agg.into_resolved(), &config, &["in".into()]);
        let json = serde_json::to_value(&report).unwrap();
        json["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let n = |k: &str| d[k].as_u64().unwrap_or(0);
                let short = d["coverage"]["short"].as_array().map_or(0, Vec::len);
                (
                    d["destination"].as_str().unwrap().to_string(),
                    d["verdict"].as_str().unwrap().to_string(),
                    n("mtls"),
                    n("plaintext"),
                    n("audited"),
                    short,
                )
            })
            .collect()
    }

    #[test]
    fn n_counted_rows_equal_n_recorded_lines() {
        // A 3-hour window after a margin hour; "late" starts inside the window.
        let window = Window {
            start_ms: T0 + HOUR,
            end_ms: T0 + 4 * HOUR,
        };
        // Every stream logs in every hour from its first (no hole inside the window, review F11).
        let rows: Rows = &[
            (b"web-5d8f9c7b6d-x2k4p", 0, false, 5),
            (b"web-5d8f9c7b6d-x2k4p", 1, false, 40),
            (b"web-5d8f9c7b6d-x2k4p", 2, false, 30),
            (b"web-5d8f9c7b6d-x2k4p", 3, false, 12),
            (b"web-5d8f9c7b6d-q9z7m", 0, false, 1),
            (b"web-5d8f9c7b6d-q9z7m", 1, false, 2),
            (b"web-5d8f9c7b6d-q9z7m", 2, false, 30),
            (b"web-5d8f9c7b6d-q9z7m", 3, false, 3),
            (b"db-0", 0, false, 3),
            (b"db-0", 1, true, 2),
            (b"db-0", 2, false, 50),
            (b"db-0", 3, false, 5),
            (b"late-7c6b5d4f8-r2d2x", 2, false, 100),
            (b"late-7c6b5d4f8-r2d2x", 3, false, 100),
            (b"old-6b5c4d7f9-c2p4x", 0, true, 9),
            (b"old-6b5c4d7f9-c2p4x", 1, false, 2),
            (b"old-6b5c4d7f9-c2p4x", 2, false, 20),
            (b"old-6b5c4d7f9-c2p4x", 3, false, 4),
        ];
        let lines = outcome(by_lines(rows, window), window);
        let counted = outcome(by_counts(rows, window), window);
        assert_eq!(lines, counted);
        let verdicts: Vec<_> = lines.iter().map(|d| (d.0.as_str(), d.1.as_str())).collect();
        assert_eq!(
            verdicts,
            [
                ("shop/db", "blocked"),
                ("shop/late", "insufficient"),
                ("shop/old", "ready"),
                ("shop/web", "ready"),
            ],
            "{lines:?}"
        );
    }

    /// Review F11 with counted evidence: an hour with no line between busy
    /// hours is a hole, as it is line by line; a stream without one is not.
    #[test]
    fn a_silent_hour_between_busy_ones_is_a_hole_in_counts_too() {
        let window = Window {
            start_ms: T0 + HOUR,
            end_ms: T0 + 4 * HOUR,
        };
        let rows: Rows = &[
            (b"web-5d8f9c7b6d-x2k4p", 0, false, 3000),
            (b"web-5d8f9c7b6d-x2k4p", 1, false, 3000),
            (b"web-5d8f9c7b6d-x2k4p", 3, false, 3000),
            (b"db-0", 0, false, 3000),
            (b"db-0", 1, false, 3000),
            (b"db-0", 2, false, 3000),
            (b"db-0", 3, false, 3000),
        ];
        let lines = outcome(by_lines(rows, window), window);
        let counted = outcome(by_counts(rows, window), window);
        assert_eq!(lines, counted);
        let verdicts: Vec<_> = lines.iter().map(|d| (d.0.as_str(), d.1.as_str())).collect();
        assert_eq!(
            verdicts,
            [("shop/web", "insufficient"), ("shop/db", "ready")]
        );
    }

    #[test]
    fn a_span_across_the_window_edge_blocks_if_plaintext_and_never_proves_mtls() {
        let window = Window {
            start_ms: T0 + HOUR / 2,
            end_ms: T0 + 2 * HOUR + HOUR / 2,
        };
        let mut agg = Aggregator::new(config(window));
        let s = agg.stream(0, "in", &meta(b"web-5d8f9c7b6d-x2k4p"), None);
        let span = |h: i64| Window {
            start_ms: T0 + h * HOUR,
            end_ms: T0 + (h + 1) * HOUR,
        };
        for (h, pt, n) in [(0, false, 100), (1, false, 5), (2, true, 1)] {
            let row = CountedRow {
                span: span(h),
                count: n,
                request: req(pt, b"10.0.0.9"),
            };
            agg.record_counted(s, &row);
        }
        let out = outcome(agg, window);
        // Only hour 1 lies inside: 5 mTLS; hour 2's plaintext may be inside, so it blocks.
        assert_eq!(out[0].1, "blocked");
        assert_eq!((out[0].2, out[0].3), (5, 1));
    }
}
