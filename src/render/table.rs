//! The terminal table: one row per destination, the plaintext callers under
//! each blocked one, then a summary that ends with the next step.
//!
//! `-o table` fits the terminal's width (the reason wraps); `-o wide` shows
//! every column at full width, as `kubectl get -o wide` does.

use std::io::{self, Write};

use comfy_table::{
    Cell, CellAlignment, Color, ColumnConstraint, ContentArrangement, Table, presets,
};

use crate::verdict::{
    DestinationReport, OTHER_SOURCES, Report, SourceReport, Verdict, address_key, human_duration,
};

pub fn render(report: &Report, opts: super::RenderOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    if opts.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    match (opts.wide, opts.width) {
        (false, Some(width)) => {
            table.set_content_arrangement(ContentArrangement::Dynamic);
            table.set_width(width);
        }
        _ => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let mut header = vec![
        "DESTINATION",
        "VERDICT",
        "REQUESTS",
        "MTLS SHARE",
        "PLAINTEXT",
    ];
    if opts.wide {
        header.extend(["AUDITED", "XFCC FORGED", "LAST PLAINTEXT", "COVERAGE FROM"]);
    }
    header.push("REASON");
    let columns = header.len();
    table.set_header(header);
    // Only the reason wraps: names and numbers are never cut.
    for i in 0..columns - 1 {
        if let Some(col) = table.column_mut(i) {
            col.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    let numeric = if opts.wide { 2..=6 } else { 2..=4 };
    for i in numeric {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    for d in &report.destinations {
        let color = match d.verdict {
            Verdict::Regressed => Color::Magenta,
            Verdict::Blocked => Color::Red,
            Verdict::Insufficient => Color::Yellow,
            Verdict::Ready => Color::Green,
            Verdict::Pending => Color::Blue,
        };
        let mut row = vec![
            Cell::new(&d.destination),
            Cell::new(d.verdict.as_str()).fg(color),
            Cell::new(d.requests),
            Cell::new(share(d.mtls, d.requests)),
            Cell::new(d.plaintext),
        ];
        if opts.wide {
            row.extend([
                Cell::new(d.audited),
                Cell::new(d.xfcc_forged),
                Cell::new(d.last_plaintext.as_deref().unwrap_or("-")),
                Cell::new(d.coverage.start.as_deref().unwrap_or("-")),
                Cell::new(reason_without_last_plaintext(&d.reason)),
            ]);
        } else {
            row.push(Cell::new(&d.reason));
        }
        table.add_row(row);
        if d.verdict == Verdict::Blocked {
            for s in plaintext_callers(d) {
                table.add_row(caller_row(s, columns, opts.wide));
            }
        }
    }
    if report.destinations.is_empty() {
        writeln!(out, "no inbound requests found")?;
    } else {
        for line in table.lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    for hint in &report.hints {
        writeln!(out, "hint: {hint}")?;
    }
    writeln!(out, "{}", summary(report, opts.width))?;
    for step in next_steps(report) {
        writeln!(out, "{step}")?;
    }
    Ok(())
}

/// The plaintext callers of a blocked destination, by count, then address (numerically).
fn plaintext_callers(d: &DestinationReport) -> Vec<&SourceReport> {
    let mut callers: Vec<&SourceReport> = d.sources.iter().filter(|s| s.plaintext > 0).collect();
    // Named callers by count then address; the folded row last.
    callers.sort_by(|a, b| {
        (a.source == OTHER_SOURCES)
            .cmp(&(b.source == OTHER_SOURCES))
            .then_with(|| b.plaintext.cmp(&a.plaintext))
            .then_with(|| address_key(a.peer.as_deref()).cmp(&address_key(b.peer.as_deref())))
            .then_with(|| a.source.cmp(&b.source))
    });
    callers
}

/// How a table names a plaintext caller, at most [`NAME_CHARS`] characters:
/// a client writes X-Forwarded-For, and the table's layout is quadratic in a
/// cell's length (review finding F12: a 90 KB header took 70 s to draw).
fn who(s: &SourceReport) -> String {
    let name = who_in_full(s);
    match name.char_indices().nth(NAME_CHARS) {
        Some((cut, _)) => format!("{}…", &name[..cut]),
        None => name,
    }
}

const NAME_CHARS: usize = 80;

/// [`who`], uncut: its workload or pod where known, else its address.
fn who_in_full(s: &SourceReport) -> String {
    if s.source == OTHER_SOURCES {
        let n = s.folded_sources.unwrap_or(0);
        let about = if s.folded_estimated == Some(true) {
            "~"
        } else {
            ""
        };
        return format!("{about}{n} other callers (folded: raise --max-sources to name them)");
    }
    let named = s
        .peer_workload
        .as_ref()
        .or(s.peer_pod.as_ref())
        .map(|w| match s.peer_sidecar {
            Some(false) => format!("{w} (no sidecar)"),
            _ => w.clone(),
        });
    match (&s.peer, s.source.as_str(), named) {
        (Some(peer), _, Some(named)) => format!("{named} {peer}"),
        (Some(peer), "plaintext", None) => peer.clone(),
        (None, "plaintext", _) => "unknown address (not logged)".to_string(),
        (Some(peer), source, None) => format!("{source} {peer}"),
        (None, source, _) => source.to_string(),
    }
}

fn caller_row(s: &SourceReport, columns: usize, wide: bool) -> Vec<Cell> {
    let mut note = format!("last seen {}", s.last_seen.as_deref().unwrap_or("-"));
    if let Some(caller) = &s.caller {
        note.push_str(&format!(", {caller}"));
    }
    if s.source == OTHER_SOURCES {
        note = format!("{} mTLS, {} plaintext; {note}", s.mtls, s.plaintext);
    }
    if s.audited > 0 && !wide {
        note.push_str(&format!(", {} audited", s.audited));
    }
    if s.xfcc_forged > 0 && !wide {
        note.push_str(&format!(", {} with a forged XFCC header", s.xfcc_forged));
    }
    let mut row = vec![
        Cell::new(format!("  ← {}", who(s))),
        Cell::new("plaintext").fg(Color::Red),
        Cell::new(s.requests),
        Cell::new(""),
        Cell::new(s.plaintext),
    ];
    if wide {
        row.extend([
            Cell::new(s.audited),
            Cell::new(s.xfcc_forged),
            Cell::new(""),
            Cell::new(""),
        ]);
    }
    row.push(Cell::new(note));
    debug_assert_eq!(row.len(), columns);
    row
}

/// In `-o wide` the LAST PLAINTEXT column says when: the reason need not repeat it.
fn reason_without_last_plaintext(reason: &str) -> &str {
    for marker in [", last at ", " (last plaintext "] {
        if let Some(at) = reason.find(marker) {
            return &reason[..at];
        }
    }
    reason
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

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// One line saying what was judged, over which window, from how much input.
fn summary(report: &Report, width: Option<u16>) -> String {
    let count = |v: Verdict| {
        report
            .destinations
            .iter()
            .filter(|d| d.verdict == v)
            .count()
    };
    let i = &report.input;
    let mut line = format!(
        "{}: {} blocked, {} insufficient, {} ready · window {} → {} ({})\n{} lines: {} inbound requests ({} outside the window), {} outbound, {} skipped, {} malformed",
        plural(report.destinations.len(), "destination"),
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
    if i.duplicates > 0 {
        line.push_str(&format!(
            ", {} duplicate entries dropped (read twice)",
            i.duplicates
        ));
    }
    if count(Verdict::Regressed) > 0 {
        line.push_str(&format!(
            " · {} REGRESSED (STRICT refuses plaintext callers now)",
            count(Verdict::Regressed)
        ));
    }
    if i.rejected > 0 {
        line.push_str(&format!(
            ", {} plaintext connections refused (STRICT)",
            i.rejected
        ));
    }
    if count(Verdict::Pending) > 0 {
        line.push_str(&format!(
            " · {} pending (reading history)",
            count(Verdict::Pending)
        ));
    }
    for ex in &i.malformed_examples {
        line.push_str("\n  malformed: ");
        let room = width.map_or(160, |w| (w as usize).saturating_sub(14).max(40));
        match ex.char_indices().nth(room) {
            Some((cut, _)) => {
                line.push_str(&ex[..cut]);
                line.push('…');
            }
            None => line.push_str(ex),
        }
    }
    line
}

/// What to do next: where STRICT is safe, who blocks what, what needs more evidence.
fn next_steps(report: &Report) -> Vec<String> {
    let names = |v: Verdict| -> Vec<&str> {
        report
            .destinations
            .iter()
            .filter(|d| d.verdict == v)
            .map(|d| d.destination.as_str())
            .collect()
    };
    let mut steps = Vec::new();
    for d in report
        .destinations
        .iter()
        .filter(|d| d.verdict == Verdict::Regressed)
    {
        steps.push(format!(
            "REGRESSED {}: {} (see REASON); to roll back: kubectl -n {} delete peerauthentication <the STRICT policy selecting it>, or set its mode to PERMISSIVE",
            d.destination,
            d.rejected_callers
                .iter()
                .map(|c| match (&c.peer_pod, &c.peer) {
                    (Some(pod), _) => pod.clone(),
                    (None, Some(p)) => p.clone(),
                    (None, None) => "an unlogged address".into(),
                })
                .collect::<Vec<_>>()
                .join(", "),
            d.destination.split('/').next().unwrap_or("NAMESPACE"),
        ));
    }
    let ready = names(Verdict::Ready);
    if !ready.is_empty() {
        steps.push(format!("STRICT is safe for: {}", ready.join(", ")));
    }
    // Group blocked destinations by the caller that blocks them.
    let mut by_caller: Vec<(String, Vec<&str>)> = Vec::new();
    for d in report
        .destinations
        .iter()
        .filter(|d| d.verdict == Verdict::Blocked)
    {
        for s in plaintext_callers(d) {
            let caller = who(s);
            match by_caller.iter_mut().find(|(c, _)| *c == caller) {
                Some((_, dests)) => dests.push(&d.destination),
                None => by_caller.push((caller, vec![&d.destination])),
            }
        }
    }
    for (caller, dests) in by_caller {
        steps.push(format!("blocked by {caller}: {}", dests.join(", ")));
    }
    let insufficient = names(Verdict::Insufficient);
    if !insufficient.is_empty() {
        steps.push(format!(
            "insufficient: {} (widen --window or check coverage; see REASON)",
            insufficient.join(", ")
        ));
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::verdict::address_key;

    #[test]
    fn addresses_sort_numerically() {
        let mut peers = vec![
            Some("10.0.0.10"),
            None,
            Some("host"),
            Some("10.0.0.9"),
            Some("::1"),
        ];
        peers.sort_by_key(|p| address_key(*p));
        assert_eq!(
            peers,
            [
                Some("10.0.0.9"),
                Some("10.0.0.10"),
                Some("::1"),
                Some("host"),
                None
            ]
        );
    }

    #[test]
    fn wide_reasons_do_not_repeat_the_last_plaintext_column() {
        assert_eq!(
            reason_without_last_plaintext(
                "3 plaintext requests in the window, last at 2026-11-20T11:00:00Z"
            ),
            "3 plaintext requests in the window"
        );
        assert_eq!(
            reason_without_last_plaintext(
                "12 mTLS requests in the window, no plaintext (last plaintext 2026-11-19T11:00:00Z, before the window)"
            ),
            "12 mTLS requests in the window, no plaintext"
        );
    }
}
