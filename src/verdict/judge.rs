//! Judging one destination over the window (spec §4): its rows, coverage,
//! holes, doubt from malformed lines and unattributed plaintext, refusals
//! after a flip, and the sentence that explains the verdict.

use super::*;

/// One source row over `window`, its durations merged from `cells`.
pub(super) fn source_row<'a>(
    source: String,
    peer: Option<String>,
    c: &Counts,
    cells: impl IntoIterator<Item = &'a Cell>,
    window: &Window,
) -> SourceReport {
    let mut hist: Option<hdrhistogram::Histogram<u32>> = None;
    for h in cells
        .into_iter()
        .filter_map(|cell| cell.durations_in(window))
    {
        match &mut hist {
            Some(mine) => {
                let _ = mine.add(&h);
            }
            None => hist = Some(h),
        }
    }
    SourceReport {
        source,
        peer,
        requests: c.requests(),
        mtls: c.mtls,
        plaintext: c.plaintext,
        audited: c.audited,
        xfcc_forged: c.xfcc_forged,
        first_seen: c.first_ms.map(format_ms),
        last_seen: c.last_ms.map(format_ms),
        duration_ms: hist.filter(|h| !h.is_empty()).map(|h| DurationReport {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }),
        folded_sources: None,
        folded_estimated: None,
        caller: None,
        peer_pod: None,
        peer_workload: None,
        peer_sidecar: None,
    }
}

/// Dataplane, unit, and the nouns a reason counts in, one and many.
pub(super) fn dataplane_of(
    dest: &ResolvedDestination,
) -> (&'static str, &'static str, [&'static str; 2]) {
    match (dest.sidecar, dest.ambient) {
        (true, true) => (
            "sidecar+ambient",
            "requests+connections",
            ["request or connection", "requests or connections"],
        ),
        (false, true) => ("ambient", "connections", ["connection", "connections"]),
        _ => ("sidecar", "requests", ["request", "requests"]),
    }
}

/// Plaintext in the window that no rule could attribute: `dest` may have
/// received it (spec §3 rule 5). Any input's, not only the inputs that also
/// carried `dest`: two replicas' raw logs given as two files are the same
/// evidence as one concatenated file (review finding F4), and nothing in a
/// metadata-less log says it is *not* `dest`'s.
/// Returns the count and the inputs it came from.
pub(super) fn unattributed_plaintext(
    resolved: &Resolved,
    dest: &ResolvedDestination,
    window: &Window,
    inputs: &[String],
) -> Option<(u64, String)> {
    if dest.name == crate::aggregate::UNATTRIBUTED {
        return None;
    }
    let mut total = 0;
    let mut names = Vec::new();
    for (input, cell) in &resolved.unattributed {
        let n = cell.counts_in(window).plaintext;
        if n > 0 {
            total += n;
            names.push(inputs.get(*input as usize).map_or("-", String::as_str));
        }
    }
    (total > 0).then(|| (total, names.join(", ")))
}

/// Malformed lines that may lie in the window and may be this destination's
/// (its pods' own, or any no pod is known for) keep it from `ready`: a line
/// that fits no format may be a plaintext request (review finding F3).
pub(super) fn doubt_malformed(
    r: &mut DestinationReport,
    dest: &ResolvedDestination,
    unplaced: u64,
    window: &Window,
    hints: &mut Vec<String>,
) {
    if dest.name == crate::aggregate::UNATTRIBUTED {
        return;
    }
    let own: u64 = dest
        .streams
        .iter()
        .map(|s| s.malformed.in_window(window))
        .sum();
    r.malformed = own + unplaced;
    if r.malformed == 0 || matches!(r.verdict, Verdict::Blocked | Verdict::Regressed) {
        return;
    }
    let n = r.malformed;
    let why = format!(
        "{n} malformed line{} (access-looking, fitting no format) may lie in the window and could be plaintext requests to this destination: see input.malformed_examples; pass --format if the proxy logs another format",
        if n == 1 { "" } else { "s" }
    );
    r.reason = if r.verdict == Verdict::Ready {
        why.clone()
    } else {
        format!("{}; {why}", r.reason)
    };
    r.verdict = Verdict::Insufficient;
    hints.push(format!("{}: {why}", r.destination));
}

/// Judges one destination over `window` (spec §4).
pub(super) fn judge(
    dest: &ResolvedDestination,
    window: &Window,
    config: &VerdictConfig,
    unattributed: Option<(u64, String)>,
    hints: &mut Vec<String>,
    source_bound: usize,
) -> DestinationReport {
    let (min_requests, max_sources) = (config.min_requests, config.max_sources);
    let mut total = Counts::default();
    let mut last_plaintext = None;
    let mut rows: Vec<(SourceReport, &Cell)> = Vec::new();
    let mut plaintext_after = None;
    for s in &dest.sources {
        last_plaintext = last_plaintext.max(s.cell.last_plaintext_until(window.end_ms));
        plaintext_after = plaintext_after.max(s.cell.plaintext_after());
        let c = s.cell.counts_in(window);
        if c.requests() == 0 {
            continue;
        }
        total.add(&c);
        let mut row = source_row(s.source.clone(), s.peer.clone(), &c, [&s.cell], window);
        row.caller = s.cell.caller.map(|k| k.describe().to_string());
        rows.push((row, &s.cell));
    }
    // Plaintext callers first (they are the news), then the busiest.
    rows.sort_by(|(a, _), (b, _)| {
        (
            b.plaintext,
            b.requests,
            &a.source,
            address_key(a.peer.as_deref()),
        )
            .cmp(&(
                a.plaintext,
                a.requests,
                &b.source,
                address_key(b.peer.as_deref()),
            ))
    });
    // Past --max-sources, the tail folds into one `other` row with exact totals.
    let mut tail: Vec<&Cell> = rows.iter().skip(max_sources).map(|(_, c)| *c).collect();
    let mut folded_count = tail.len() as u64;
    rows.truncate(max_sources);
    let mut sources: Vec<SourceReport> = rows.into_iter().map(|(r, _)| r).collect();
    let mut estimated = false;
    if let Some(f) = &dest.folded {
        last_plaintext = last_plaintext.max(f.cell.last_plaintext_until(window.end_ms));
        plaintext_after = plaintext_after.max(f.cell.plaintext_after());
        let c = f.cell.counts_in(window);
        total.add(&c);
        if c.requests() > 0 {
            tail.push(&f.cell);
            folded_count += f.distinct_in(window.start_ms, window.end_ms);
            estimated = true;
        }
    }
    if !tail.is_empty() {
        let mut c = Counts::default();
        for cell in &tail {
            c.add(&cell.counts_in(window));
        }
        let mut row = source_row(OTHER_SOURCES.to_string(), None, &c, tail, window);
        row.folded_sources = Some(folded_count);
        row.folded_estimated = Some(estimated);
        sources.push(row);
    }
    if dest.folded_while_reading {
        hints.push(format!(
            "{}: more than {source_bound} distinct callers of one kind (mTLS or plaintext): past that they were folded into `other` while reading, by a fixed hash of their name rather than by traffic, and `folded_sources` is estimated; raise --max-sources to name more",
            dest.name
        ));
    }
    if let Some(h) = &dest.hint {
        hints.push(h.clone());
    }

    let short: Vec<StreamShort> = dest
        .streams
        .iter()
        .filter_map(|s| {
            let hole = hole_in(s, window);
            if covers(s, window) && hole.is_none() {
                return None;
            }
            let mut covered_seconds = s.first_ms.map_or(0, |t| {
                (window.end_ms - t.max(window.start_ms)).max(0) / 1000
            });
            if let Some(h) = &hole {
                covered_seconds -= (h.end_ms - h.start_ms) / 1000;
            }
            Some(StreamShort {
                stream: s.display.clone(),
                start: s.first_ms.map(format_ms),
                end: s.last_ms.map(format_ms),
                covered_seconds: covered_seconds.max(0),
                error: s.error.clone(),
                hole: hole.map(|h| HoleReport {
                    start: format_ms(h.start_ms),
                    end: format_ms(h.end_ms),
                    lines_per_hour: h.per_hour.round() as u64,
                }),
            })
        })
        .collect();
    let coverage_start = dest
        .streams
        .iter()
        .map(|s| s.first_ms)
        .try_fold(i64::MIN, |acc, t| t.map(|t| acc.max(t)))
        .filter(|&t| t != i64::MIN);
    let complete = short.is_empty() && !dest.streams.is_empty();

    // Where every stream's evidence ends before the window begins.
    let ends_before = dest
        .streams
        .iter()
        .map(|s| s.last_ms)
        .try_fold(i64::MIN, |acc, t| t.map(|t| acc.max(t)))
        .filter(|&t| t != i64::MIN && t <= window.start_ms);
    let (dataplane, unit, nouns) = dataplane_of(dest);
    let (mut verdict, mut reason) = decide(
        &total,
        last_plaintext,
        ends_before,
        complete,
        &short,
        window,
        min_requests,
        nouns,
    );
    let connection_outcomes = dest
        .ambient
        .then(|| crate::aggregate::outcomes_in(&dest.outcomes, window.start_ms, window.end_ms));
    if let Some(o) = connection_outcomes
        && o.rejected_plaintext > 0
    {
        reason.push_str(&format!(
            " ({} of them rejected by a policy: the caller is still trying plaintext)",
            o.rejected_plaintext
        ));
    }
    if let Some((n, from)) = unattributed
        && verdict != Verdict::Blocked
    {
        // Spec §3 rule 5: plaintext nobody can place may be this destination's.
        let why = format!(
            "{n} plaintext {} in {from} could not be attributed and may be this destination's: pass --destination NS/NAME, or read with kubectl logs --prefix",
            if n == 1 { "request" } else { "requests" }
        );
        reason = if verdict == Verdict::Ready {
            why.clone()
        } else {
            format!("{reason}; {why}")
        };
        verdict = Verdict::Insufficient;
        hints.push(format!("{}: {why}", dest.name));
    }
    if let Some(t) = plaintext_after
        && verdict == Verdict::Ready
    {
        // The window the flags chose is clean, but the input shows a caller
        // in plaintext since: STRICT now would break it (review finding F6).
        let why = format!(
            "plaintext after the window's end (--until {}): last at {}; judge a window that ends now",
            format_ms(window.end_ms),
            format_ms(t)
        );
        reason = why.clone();
        verdict = Verdict::Insufficient;
        hints.push(format!("{}: {why}", dest.name));
    }
    let rejected = rejected_in(dest, window);
    // The newest refusal after the newest accepted plaintext: STRICT now.
    // Untimed refusals cannot be ordered: regressed only if nothing was accepted.
    let strict_now = match (rejected.last_ms, last_plaintext) {
        (_, None) => true,
        (Some(r), Some(p)) => p < r,
        (None, Some(_)) => false,
    };
    if rejected.count > 0 && strict_now {
        verdict = Verdict::Regressed;
    } else if rejected.count > 0 {
        reason.push_str(&format!(
            "; {} plaintext {} refused in the window before the last plaintext request was accepted (STRICT, then PERMISSIVE again?)",
            rejected.count,
            if rejected.count == 1 { "connection was" } else { "connections were" }
        ));
    }
    let mut report = DestinationReport {
        destination: dest.name.clone(),
        verdict,
        reason,
        dataplane,
        unit,
        requests: total.requests(),
        mtls: total.mtls,
        plaintext: total.plaintext,
        audited: total.audited,
        xfcc_forged: total.xfcc_forged,
        last_plaintext: last_plaintext.map(format_ms),
        plaintext_after_window: plaintext_after.map(format_ms),
        malformed: 0,
        coverage: CoverageReport {
            start: coverage_start.map(format_ms),
            complete,
            short,
        },
        sources,
        hint: dest.hint.clone(),
        pod_labels: None,
        connection_outcomes,
        rejected: rejected.count,
        last_rejected: rejected.newest_ever.map(format_ms),
        rejected_callers: rejected.callers,
    };
    if report.verdict == Verdict::Regressed {
        report.reason = regressed_reason(&report);
    }
    report
}

/// A destination's refusals over a window.
pub(super) struct RejectedIn {
    count: u64,
    /// The newest refusal in the window (`None` if all were untimed).
    last_ms: Option<i64>,
    /// The newest refusal at or before the window's end.
    newest_ever: Option<i64>,
    callers: Vec<RejectedCallerReport>,
}

pub(super) fn rejected_in(dest: &ResolvedDestination, window: &Window) -> RejectedIn {
    let mut out = RejectedIn {
        count: 0,
        last_ms: None,
        newest_ever: None,
        callers: Vec::new(),
    };
    for c in &dest.rejected {
        let (n, last) = c.refusals.in_window(window.start_ms, window.end_ms);
        let (_, ever) = c.refusals.in_window(i64::MIN / 2, window.end_ms);
        out.newest_ever = out.newest_ever.max(ever);
        if n == 0 {
            continue;
        }
        out.count += n;
        out.last_ms = out.last_ms.max(last);
        out.callers.push(RejectedCallerReport {
            peer: c.peer.clone(),
            connections: n,
            last: last.map(format_ms),
            peer_pod: None,
            peer_workload: None,
            peer_sidecar: None,
        });
    }
    out
}

/// How soon after its container starts a log's first line must be to count
/// as "from the start" (pilot-agent logs within a second or two of it).
pub(super) const CONTAINER_START_SLACK_MS: i64 = 60_000;

/// A hole inside a file's or export's log (review F11). A log read from the
/// Kubernetes API (its container start is known) is kubelet's own, whole
/// since the container started or since its rotation: no piece of it can be
/// missing in between, so quiet there is only quiet.
pub(super) fn hole_in(
    s: &crate::aggregate::StreamCoverage,
    window: &Window,
) -> Option<crate::aggregate::Hole> {
    if s.started_ms.is_some() {
        return None;
    }
    s.activity.hole_in(window)
}

/// Returns true if and only if the stream's logs cover the window: they begin
/// at or before its start, or (Kubernetes) when the container started — a
/// replica that did not exist yet missed nothing (issue 4: per replica,
/// kubelet rotates logs).
pub(super) fn covers(s: &crate::aggregate::StreamCoverage, window: &Window) -> bool {
    if s.error.is_some() {
        return false;
    }
    match s.first_ms {
        None => false,
        Some(first) if first <= window.start_ms => true,
        Some(first) => s.started_ms.is_some_and(|started| {
            started > window.start_ms - CONTAINER_START_SLACK_MS
                && first <= started + CONTAINER_START_SLACK_MS
        }),
    }
}

/// The verdict rules of spec §4, with the sentence that explains the outcome.
// Plain inputs of one rule table; a struct for them would only be unpacked here.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide(
    total: &Counts,
    last_plaintext: Option<i64>,
    ends_before: Option<i64>,
    complete: bool,
    short: &[StreamShort],
    window: &Window,
    min_requests: u64,
    nouns: [&str; 2],
) -> (Verdict, String) {
    // Sidecars log requests, ztunnel connections: the reason says which.
    let plural = |n: u64, _one: &str| {
        if n == 1 {
            nouns[0].to_string()
        } else {
            nouns[1].to_string()
        }
    };
    if total.plaintext > 0 {
        let last = total
            .last_plaintext_ms
            .or(last_plaintext)
            .map_or_else(String::new, |t| format!(", last at {}", format_ms(t)));
        return (
            Verdict::Blocked,
            format!(
                "{} plaintext {} in the window{last}",
                total.plaintext,
                plural(total.plaintext, "request")
            ),
        );
    }
    let mut why = Vec::new();
    let hole = short.iter().find_map(|s| s.hole.as_ref().map(|h| (s, h)));
    if let Some(s) = short.iter().find(|s| s.error.is_some()) {
        why.push(format!(
            "the log of {} could not be read: {}",
            s.stream,
            s.error.as_deref().unwrap_or("-")
        ));
    } else if let Some(end) = ends_before {
        // The flags put the window after the input: not the logs' fault (issue 7 item 11).
        why.push(format!(
            "the window ({} to {}) lies after the input: its logs end at {}; check --until and --window",
            format_ms(window.start_ms),
            format_ms(window.end_ms),
            format_ms(end),
        ));
    } else if let Some((s, h)) = hole {
        why.push(format!(
            "logs of {} have no line from {} to {} though they hold ~{} lines an hour otherwise: a missing rotation or export? (if the workload was idle then, judge a window without it: --until, --window)",
            s.stream, h.start, h.end, h.lines_per_hour
        ));
    } else if !complete {
        match short
            .iter()
            .max_by_key(|s| (s.start.is_some(), s.start.clone()))
        {
            Some(s) if s.start.is_some() => why.push(format!(
                "logs of {} cover only {} of the {} window (from {})",
                s.stream,
                human_duration(s.covered_seconds * 1000),
                human_duration(window.end_ms - window.start_ms),
                s.start.as_deref().unwrap_or("-"),
            )),
            Some(s) => why.push(format!(
                "no line of {} says when it was written (no kubectl --timestamps, and the format logs no START_TIME and DURATION), so nothing shows its logs cover the window",
                s.stream
            )),
            None => why.push("no log stream carried this destination's requests".to_string()),
        }
    }
    if total.mtls < min_requests {
        why.push(format!(
            "only {} mTLS {} in the window (--min-requests {min_requests})",
            total.mtls,
            plural(total.mtls, "request")
        ));
    }
    if !why.is_empty() {
        return (Verdict::Insufficient, why.join("; "));
    }
    let mut reason = format!(
        "{} mTLS {} in the window, no plaintext",
        total.mtls,
        plural(total.mtls, "request")
    );
    if let Some(t) = last_plaintext {
        reason.push_str(&format!(
            " (last plaintext {}, before the window)",
            format_ms(t)
        ));
    }
    (Verdict::Ready, reason)
}
