//! The live view of a running watch: a table redrawn in place on a terminal,
//! one JSON line per verdict change otherwise.
//!
//! A destination still reading its history is `pending` and makes no verdict
//! change line: its first line comes once its backlog is counted, so a start
//! never shows `insufficient → blocked` for lines that were there all along.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use serde::Serialize;

use super::snapshot::Snapshot;
use crate::render::{RenderOptions, table};
use crate::time::format_ms;
use crate::verdict::Verdict;

/// How the live view shows itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveView {
    /// Redraw a table in place (stdout is a terminal).
    Table,
    /// One JSON object per verdict change (stdout is a pipe or file).
    JsonLines,
    /// Nothing until the final report (`-o table` off a terminal: the table at exit).
    Off,
}

/// One verdict change, as written off a terminal.
#[derive(Debug, Serialize)]
pub struct VerdictChange<'a> {
    pub time: String,
    pub destination: &'a str,
    pub from: Option<Verdict>,
    pub to: Verdict,
    pub reason: &'a str,
}

/// The state the live view keeps between ticks.
pub struct Live {
    mode: LiveView,
    color: bool,
    verdicts: BTreeMap<String, Verdict>,
    last_lines: Option<(u64, Instant)>,
}

impl Live {
    pub fn new(mode: LiveView, color: bool) -> Self {
        Live {
            mode,
            color,
            verdicts: BTreeMap::new(),
            last_lines: None,
        }
    }

    /// Shows one tick's snapshot.
    pub fn update(&mut self, snap: &Snapshot) {
        let mut out = std::io::stdout().lock();
        let _ = match self.mode {
            LiveView::Off => Ok(()),
            LiveView::JsonLines => self.changes(snap, &mut out),
            LiveView::Table => self.redraw(snap, &mut out),
        };
        let _ = out.flush();
        for d in &snap.report.destinations {
            if d.verdict != Verdict::Pending {
                self.verdicts.insert(d.destination.clone(), d.verdict);
            }
        }
    }

    /// Writes the verdict changes since the last tick, one JSON object per line.
    pub fn changes(&self, snap: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
        for d in &snap.report.destinations {
            let from = self.verdicts.get(&d.destination).copied();
            if from == Some(d.verdict) || d.verdict == Verdict::Pending {
                continue;
            }
            let change = VerdictChange {
                time: format_ms(snap.taken_at_ms),
                destination: &d.destination,
                from,
                to: d.verdict,
                reason: &d.reason,
            };
            serde_json::to_writer(&mut *out, &change)?;
            writeln!(out)?;
        }
        Ok(())
    }

    fn redraw(&mut self, snap: &Snapshot, out: &mut dyn Write) -> std::io::Result<()> {
        let lines = snap.report.input.lines;
        let now = Instant::now();
        let rate = match self.last_lines {
            Some((before, at)) if now > at => {
                (lines.saturating_sub(before)) as f64 / (now - at).as_secs_f64()
            }
            _ => 0.0,
        };
        self.last_lines = Some((lines, now));
        // Home and clear, then the same table `report` prints.
        write!(out, "\x1b[H\x1b[2J")?;
        table::render(
            &snap.report,
            RenderOptions {
                color: self.color,
                ..RenderOptions::default()
            },
            out,
        )?;
        let h = &snap.health;
        if h.streams_reading_history > 0 {
            write!(
                out,
                "reading history: {}/{} streams · ",
                h.pods.saturating_sub(h.streams_reading_history),
                h.pods
            )?;
        }
        writeln!(
            out,
            "watching {} containers · {} streams open · {:.0} lines/s · {} reconnects · {} errors · updated {}",
            h.pods,
            h.streams_open,
            rate,
            h.reconnects,
            h.errors,
            format_ms(snap.taken_at_ms)
        )
    }

    /// Leaves the terminal tidy before the final report.
    pub fn finish(&mut self) {
        if self.mode == LiveView::Table {
            let _ = writeln!(std::io::stdout());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AggregateConfig, Aggregator};
    use crate::envelope::StreamMeta;
    use crate::request::{Request, Transport};
    use crate::verdict::{VerdictConfig, report};
    use crate::watch::snapshot::StreamHealth;

    fn snapshot(plaintext: bool) -> Snapshot {
        let mut agg = Aggregator::new(AggregateConfig {
            destination: Some("ns/web".into()),
            ..Default::default()
        });
        let s = agg.stream(0, "in", &StreamMeta::default(), None);
        let req = Request {
            inbound: true,
            time_ms: Some(1_000),
            transport: if plaintext {
                Transport::Plaintext { forged_xfcc: false }
            } else {
                Transport::Mtls { identity: None }
            },
            peer: Some(b"10.0.0.9"),
            named_destination: None,
            local_address: None,
            audited: false,
            duration_ms: None,
            caller: None,
            ambient: None,
        };
        agg.record(s, &req, None);
        let config = VerdictConfig {
            window_ms: 60_000,
            until_ms: Some(2_000),
            min_requests: 1,
            max_sources: 10,
        };
        Snapshot {
            report: report(&agg.into_resolved(), &config, &["in".into()]),
            taken_at_ms: 2_000,
            totals: Vec::new(),
            health: StreamHealth::default(),
        }
    }

    #[test]
    fn json_lines_only_on_change() {
        let mut live = Live::new(LiveView::JsonLines, false);
        let mut out = Vec::new();
        live.changes(&snapshot(true), &mut out).unwrap();
        let first: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(first["destination"], "ns/web");
        assert_eq!(first["from"], serde_json::Value::Null);
        assert_eq!(first["to"], "blocked");
        assert!(first["reason"].as_str().unwrap().contains("plaintext"));
        live.verdicts.insert("ns/web".into(), Verdict::Blocked);
        let mut again = Vec::new();
        live.changes(&snapshot(true), &mut again).unwrap();
        assert!(again.is_empty(), "no change, no line");
    }

    #[test]
    fn table_redraws_in_place_with_a_status_line() {
        let mut live = Live::new(LiveView::Table, false);
        let mut out = Vec::new();
        live.redraw(&snapshot(true), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\x1b[H\x1b[2J"), "{text:?}");
        assert!(
            text.contains("ns/web") && text.contains("← 10.0.0.9"),
            "{text}"
        );
        assert!(
            text.contains("streams open") && text.contains("lines/s"),
            "{text}"
        );
    }
}
