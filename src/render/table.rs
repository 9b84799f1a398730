//! The terminal table: one row per destination, plaintext callers under each blocked one, a summary line.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, Color, Table, presets};

use crate::verdict::{Report, Verdict, human_duration};

pub fn render(report: &Report, opts: super::RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    if opts.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header([
        "DESTINATION",
        "VERDICT",
        "REQUESTS",
        "MTLS",
        "PLAINTEXT",
        "LAST PLAINTEXT",
        "REASON",
    ]);
    for i in 2..=4 {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    for d in &report.destinations {
        let color = match d.verdict {
            Verdict::Blocked => Color::Red,
            Verdict::Insufficient => Color::Yellow,
            Verdict::Ready => Color::Green,
            Verdict::Pending => Color::Blue,
        };
        table.add_row(vec![
            Cell::new(&d.destination),
            Cell::new(d.verdict.as_str()).fg(color),
            Cell::new(d.requests),
            Cell::new(share(d.mtls, d.requests)),
            Cell::new(d.plaintext),
            Cell::new(d.last_plaintext.as_deref().unwrap_or("-")),
            Cell::new(&d.reason),
        ]);
        if d.verdict != Verdict::Blocked {
            continue;
        }
        for s in d.sources.iter().filter(|s| s.plaintext > 0) {
            let named =
                s.peer_workload
                    .as_ref()
                    .or(s.peer_pod.as_ref())
                    .map(|w| match s.peer_sidecar {
                        Some(false) => format!("{w} (no sidecar)"),
                        _ => w.clone(),
                    });
            let who = match (&s.peer, s.source.as_str()) {
                (Some(peer), _) if named.is_some() => {
                    format!("{} {peer}", named.as_deref().unwrap_or_default())
                }
                (Some(peer), "plaintext") => peer.clone(),
                (None, "plaintext") => "unknown peer (the format logs no address)".to_string(),
                (Some(peer), source) => format!("{source} {peer}"),
                (None, source) => source.to_string(),
            };
            let mut note = format!("last seen {}", s.last_seen.as_deref().unwrap_or("-"));
            if let Some(caller) = &s.caller {
                note.push_str(&format!(", {caller}"));
            }
            if s.audited > 0 {
                note.push_str(&format!(", {} audited", s.audited));
            }
            if s.xfcc_forged > 0 {
                note.push_str(&format!(", {} with a forged XFCC header", s.xfcc_forged));
            }
            table.add_row(vec![
                Cell::new(format!("  ← {who}")),
                Cell::new("plaintext").fg(Color::Red),
                Cell::new(s.requests),
                Cell::new(""),
                Cell::new(s.plaintext),
                Cell::new(""),
                Cell::new(note),
            ]);
        }
    }
    if !report.destinations.is_empty() {
        for line in table.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    } else {
        writeln!(out, "no inbound requests found")?;
    }
    for d in report.destinations.iter().filter_map(|d| d.hint.as_ref()) {
        writeln!(out, "hint: {d}")?;
    }
    writeln!(out, "{}", summary(report))
}

fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".into();
    }
    let pct = part as f64 * 100.0 / whole as f64;
    if part != whole && pct > 99.9 {
        return "99.9%".into();
    }
    format!("{pct:.1}%")
}

/// One line saying what was judged, over which window, from how much input.
fn summary(report: &Report) -> String {
    let count = |v: Verdict| {
        report
            .destinations
            .iter()
            .filter(|d| d.verdict == v)
            .count()
    };
    let i = &report.input;
    let mut line = format!(
        "{} destinations: {} blocked, {} insufficient, {} ready · window {} → {} ({}) · {} lines: {} inbound requests ({} outside the window), {} outbound, {} skipped, {} malformed",
        report.destinations.len(),
        count(Verdict::Blocked),
        count(Verdict::Insufficient),
        count(Verdict::Ready),
        report.window.start,
        report.window.end,
        human_duration(report.window.seconds * 1000),
        i.lines,
        i.requests,
        i.outside_window,
        i.outbound,
        i.skipped,
        i.malformed,
    );
    if count(Verdict::Pending) > 0 {
        line.push_str(&format!(
            " · {} pending (reading history)",
            count(Verdict::Pending)
        ));
    }
    for ex in &i.malformed_examples {
        line.push_str("\n  malformed: ");
        match ex.char_indices().nth(160) {
            Some((cut, _)) => {
                line.push_str(&ex[..cut]);
                line.push('…');
            }
            None => line.push_str(ex),
        }
    }
    line
}
