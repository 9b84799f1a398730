//! Verdicts: from the settled aggregate to the report data (spec §4 and §5).
//!
//! Everything here is a plain function over plain data: the window is fixed,
//! each destination is judged ready, blocked or insufficient, and the result
//! is a [`Report`] whose field names are the spec's JSON contract.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Cell, Counts, Resolved, ResolvedDestination, Window};
use crate::time::format_ms;

/// What decides a verdict besides the data.
#[derive(Clone, Debug)]
pub struct VerdictConfig {
    /// Window length, ms (`--window`).
    pub window_ms: i64,
    /// `--until`, epoch ms; otherwise the newest timestamp seen.
    pub until_ms: Option<i64>,
    /// `--min-requests`.
    pub min_requests: u64,
    /// `--max-sources`: source rows per destination; the rest fold into `other`.
    pub max_sources: usize,
}

/// The source of the row that folds many sources into one.
pub const OTHER_SOURCES: &str = "other";

/// One source row over `window`, its durations merged from `cells`.
fn source_row<'a>(
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

/// Who held a peer address: pod (`ns/name` or `node/NAME`), workload, sidecar.
pub type PeerLookup<'a> = &'a dyn Fn(&str) -> Option<(String, Option<String>, bool)>;

/// Names the pods behind peer addresses (issue 4: "default/sleep (no sidecar)", not "10.44.0.7").
pub fn name_peers(report: &mut Report, lookup: PeerLookup<'_>) {
    for d in &mut report.destinations {
        for s in &mut d.sources {
            if let Some((pod, workload, sidecar)) = s.peer.as_deref().and_then(lookup) {
                let is_node = pod.starts_with("node/");
                s.peer_pod = Some(pod);
                s.peer_workload = workload;
                s.peer_sidecar = (!is_node).then_some(sidecar);
            }
        }
    }
}

/// Orders peer addresses as addresses (`10.0.0.9` before `10.0.0.10`), anything else after them.
pub fn address_key(peer: Option<&str>) -> (u8, Option<std::net::IpAddr>, String) {
    match peer {
        Some(p) => match p.parse::<std::net::IpAddr>() {
            Ok(ip) => (0, Some(ip), String::new()),
            Err(_) => (1, None, p.to_string()),
        },
        None => (2, None, String::new()),
    }
}

/// The verdict on one destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Blocked,
    Insufficient,
    Ready,
    /// `watch` only: a stream of the destination is still reading its
    /// history, so no verdict yet (issue 7 item 21).
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Blocked => "blocked",
            Verdict::Insufficient => "insufficient",
            Verdict::Ready => "ready",
            Verdict::Pending => "pending",
        }
    }
}

/// The whole report (spec §5).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub window: WindowReport,
    pub min_requests: u64,
    pub input: InputReport,
    pub destinations: Vec<DestinationReport>,
    /// What would make the evidence better: attribute unattributed lines,
    /// widen the window, name folded callers, fix a format (spec §5).
    pub hints: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WindowReport {
    pub start: String,
    pub end: String,
    pub seconds: i64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize)]
pub struct InputReport {
    pub lines: u64,
    pub requests: u64,
    pub outbound: u64,
    pub skipped: u64,
    pub malformed: u64,
    /// Access entries dropped as repeats across inputs (same stream, write time and bytes).
    pub duplicates: u64,
    /// Lines of other containers than istio-proxy (an export of a whole namespace), counted in `skipped`.
    #[serde(skip_serializing_if = "is_zero")]
    pub other_containers: u64,
    /// ztunnel `connection failed` lines (inbound early denies): no destination pod, counted apart.
    #[serde(skip_serializing_if = "is_zero")]
    pub failed_connections: u64,
    pub outside_window: u64,
    /// `file:line: text` of the first malformed lines.
    pub malformed_examples: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DestinationReport {
    pub destination: String,
    pub verdict: Verdict,
    pub reason: String,
    /// `sidecar` (istio-proxy access logs), `ambient` (ztunnel connection
    /// logs) or `sidecar+ambient` (both, e.g. a workload moved inside the window).
    pub dataplane: &'static str,
    /// What the counts count: `requests` (sidecar), `connections` (ambient),
    /// `requests+connections` (both).
    pub unit: &'static str,
    pub requests: u64,
    pub mtls: u64,
    pub plaintext: u64,
    pub audited: u64,
    pub xfcc_forged: u64,
    pub last_plaintext: Option<String>,
    /// The newest plaintext request after the window's end (`--until` in the
    /// past): while there is one the destination is not `ready`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext_after_window: Option<String>,
    /// Malformed lines that may lie in the window and be this destination's:
    /// while there are any it is not `ready`.
    pub malformed: u64,
    pub coverage: CoverageReport,
    pub sources: Vec<SourceReport>,
    /// Why the destination could not be named, and what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The labels its pods share (Kubernetes source): `strictly policy`'s selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<PodLabels>,
    /// Ambient only: how connections in the window ended, beside mTLS/plaintext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_outcomes: Option<crate::aggregate::OutcomeCounts>,
}

/// A destination's pod labels, as a selector for that workload alone (see `source::kube_labels`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLabels {
    /// The labels every replica read carries, minus per-pod and per-revision ones.
    pub labels: std::collections::BTreeMap<String, String>,
    /// How many pods (replicas) they were taken from.
    pub pods: u64,
    /// Other workloads (`ns/name`) with a pod these labels also select: not a safe selector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_selects: Vec<String>,
}

/// Sets each destination's pod labels from `labels` (keyed by destination name).
pub fn attach_pod_labels(
    report: &mut Report,
    labels: &std::collections::BTreeMap<String, PodLabels>,
) {
    for d in &mut report.destinations {
        d.pod_labels = labels.get(&d.destination).cloned();
    }
}

/// Dataplane, unit, and the nouns a reason counts in, one and many.
fn dataplane_of(dest: &ResolvedDestination) -> (&'static str, &'static str, [&'static str; 2]) {
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

#[derive(Clone, Debug, Serialize)]
pub struct CoverageReport {
    /// From when every stream (replica) that carried this destination has logs.
    pub start: Option<String>,
    pub complete: bool,
    /// Streams whose logs begin after the window starts.
    pub short: Vec<StreamShort>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamShort {
    pub stream: String,
    /// The stream's first and last write times.
    pub start: Option<String>,
    pub end: Option<String>,
    /// How much of the window its logs cover, seconds.
    pub covered_seconds: i64,
    /// Why its log could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A stretch inside the window with no line where the stream's own pace
    /// made many due: a missing rotation or export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hole: Option<HoleReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HoleReport {
    pub start: String,
    pub end: String,
    /// Lines the stream logs per hour outside the hole.
    pub lines_per_hour: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub peer: Option<String>,
    pub requests: u64,
    pub mtls: u64,
    pub plaintext: u64,
    pub audited: u64,
    pub xfcc_forged: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub duration_ms: Option<DurationReport>,
    /// The pod (`ns/name`) or node (`node/NAME`) that held the peer address (Kubernetes source).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_pod: Option<String>,
    /// That pod's workload (`ns/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_workload: Option<String>,
    /// Returns true if and only if that pod runs an istio-proxy sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_sidecar: Option<bool>,
    /// A well-known caller recognised by its User-Agent (kube-probe, Prometheus, load-balancer health checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// On the `other` row: how many distinct sources with requests in the
    /// window it holds (estimated when sources were folded while reading).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_sources: Option<u64>,
    /// On the `other` row: true when `folded_sources` is an estimate (HyperLogLog, ~3%, hour-granular at the window's edges).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_estimated: Option<bool>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct DurationReport {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Fixes the window: `--until`, else the newest timestamp seen rounded up to
/// the second (buckets are whole seconds, so the window is then exact).
pub fn window(config: &VerdictConfig, newest_ms: Option<i64>) -> Window {
    let end_ms = config
        .until_ms
        .or_else(|| newest_ms.map(|t| (t + 999).div_euclid(1000) * 1000))
        // Nothing carried a time: the window ends now, to the second.
        .unwrap_or_else(|| chrono::Utc::now().timestamp() * 1000);
    Window {
        start_ms: end_ms - config.window_ms,
        end_ms,
    }
}

/// Builds the report; `inputs` names the inputs for malformed-line examples.
pub fn report(resolved: &Resolved, config: &VerdictConfig, inputs: &[String]) -> Report {
    let window = window(config, resolved.newest_ms);
    let mut hints = Vec::new();
    // Malformed lines no pod is known for may be any destination's (F3).
    let unplaced: u64 = resolved
        .malformed_unplaced
        .values()
        .map(|m| m.in_window(&window))
        .sum();
    let mut destinations: Vec<DestinationReport> = resolved
        .destinations
        .iter()
        .map(|d| {
            let unattributed = unattributed_plaintext(resolved, d, &window, inputs);
            let mut r = judge(
                d,
                &window,
                config,
                unattributed,
                &mut hints,
                resolved.source_bound,
            );
            doubt_malformed(&mut r, d, unplaced, &window, &mut hints);
            r
        })
        .collect();
    destinations.sort_by(|a, b| (a.verdict, &a.destination).cmp(&(b.verdict, &b.destination)));
    let in_window: u64 = destinations.iter().map(|d| d.requests).sum();
    let input = &resolved.input;
    if input.failed_connections > 0 {
        // Said, not silently dropped: ztunnel logged no destination pod for them.
        hints.push(format!(
            "{} inbound {} ztunnel denied before it knew the workload (`connection failed`: addresses only, no identity): not counted for any destination; check them with kubectl logs -n istio-system -l app=ztunnel | grep 'connection failed'",
            input.failed_connections,
            if input.failed_connections == 1 { "connection" } else { "connections" }
        ));
    }
    Report {
        window: WindowReport {
            start: format_ms(window.start_ms),
            end: format_ms(window.end_ms),
            seconds: config.window_ms / 1000,
        },
        min_requests: config.min_requests,
        input: InputReport {
            lines: input.lines,
            requests: input.requests,
            outbound: input.outbound,
            skipped: input.skipped,
            malformed: input.malformed,
            duplicates: input.duplicates,
            other_containers: input.other_containers,
            failed_connections: input.failed_connections,
            outside_window: input.requests.saturating_sub(in_window),
            malformed_examples: input
                .malformed_examples
                .iter()
                .map(|e| {
                    let name = inputs.get(e.input as usize).map_or("-", String::as_str);
                    format!("{name}:{}: {}", e.line, e.text)
                })
                .collect(),
        },
        destinations,
        hints,
    }
}

/// Plaintext in the window that no rule could attribute: `dest` may have
/// received it (spec §3 rule 5). Any input's, not only the inputs that also
/// carried `dest`: two replicas' raw logs given as two files are the same
/// evidence as one concatenated file (review finding F4), and nothing in a
/// metadata-less log says it is *not* `dest`'s.
/// Returns the count and the inputs it came from.
fn unattributed_plaintext(
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
fn doubt_malformed(
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
    if r.malformed == 0 || r.verdict == Verdict::Blocked {
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
fn judge(
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
    DestinationReport {
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
    }
}

/// How soon after its container starts a log's first line must be to count
/// as "from the start" (pilot-agent logs within a second or two of it).
const CONTAINER_START_SLACK_MS: i64 = 60_000;

/// A hole inside a file's or export's log (review F11). A log read from the
/// Kubernetes API (its container start is known) is kubelet's own, whole
/// since the container started or since its rotation: no piece of it can be
/// missing in between, so quiet there is only quiet.
fn hole_in(
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
fn covers(s: &crate::aggregate::StreamCoverage, window: &Window) -> bool {
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
fn decide(
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

/// Formats milliseconds as `1d2h`, `24h`, `1h30m`, `45s`.
pub fn human_duration(ms: i64) -> String {
    let mut secs = ms / 1000;
    if secs <= 0 {
        return "0s".into();
    }
    let mut out = String::new();
    // Up to two days, hours read better (`--window 24h`, `--since 48h`).
    let units: &[(&str, i64)] = if secs <= 2 * 86_400 {
        &[("h", 3_600), ("m", 60), ("s", 1)]
    } else {
        &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    };
    for &(unit, len) in units {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

/// Exit status of `report` (spec §4): 0 when every destination is ready, else 1.
/// No destination at all is not "all ready": there is no evidence.
pub fn exit_code(report: &Report) -> i32 {
    let all_ready = !report.destinations.is_empty()
        && report
            .destinations
            .iter()
            .all(|d| d.verdict == Verdict::Ready);
    if all_ready { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(human_duration(86_400_000), "24h");
        assert_eq!(human_duration(7 * 86_400_000 + 3_600_000), "7d1h");
        assert_eq!(human_duration(5_400_000), "1h30m");
        assert_eq!(human_duration(0), "0s");
    }

    #[test]
    fn derived_window_end_rounds_up_to_the_second() {
        let cfg = VerdictConfig {
            window_ms: 60_000,
            until_ms: None,
            min_requests: 10,
            max_sources: 50,
        };
        let w = window(&cfg, Some(1_500));
        assert_eq!((w.start_ms, w.end_ms), (-58_000, 2_000));
        let cfg = VerdictConfig {
            until_ms: Some(1_234),
            ..cfg
        };
        assert_eq!(window(&cfg, Some(99_999)).end_ms, 1_234);
    }

    const NOUNS: [&str; 2] = ["request", "requests"];

    #[test]
    fn verdict_rules() {
        let w = Window {
            start_ms: 0,
            end_ms: 86_400_000,
        };
        let mtls = Counts {
            mtls: 10,
            ..Default::default()
        };
        assert_eq!(
            decide(&mtls, None, None, true, &[], &w, 10, NOUNS).0,
            Verdict::Ready
        );
        assert_eq!(
            decide(&mtls, None, None, true, &[], &w, 11, NOUNS).0,
            Verdict::Insufficient
        );
        assert_eq!(
            decide(&mtls, None, None, false, &[], &w, 10, NOUNS).0,
            Verdict::Insufficient
        );
        let pt = Counts {
            plaintext: 1,
            last_plaintext_ms: Some(5),
            ..mtls
        };
        let (v, reason) = decide(&pt, None, None, false, &[], &w, 10, NOUNS);
        assert_eq!(v, Verdict::Blocked);
        assert_eq!(
            reason,
            "1 plaintext request in the window, last at 1970-01-01T00:00:00.005Z"
        );
    }
}
