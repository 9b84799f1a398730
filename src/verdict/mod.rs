//! Verdicts: from the settled aggregate to the report data (spec §4 and §5).
//!
//! Everything here is a plain function over plain data: the window is fixed,
//! each destination is judged ready, blocked or insufficient, and the result
//! is a [`Report`] whose field names are the spec's JSON contract.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Cell, Counts, Resolved, ResolvedDestination, Window};
use crate::time::format_ms;

mod judge;
use judge::{doubt_malformed, judge, unattributed_plaintext};

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
        for c in &mut d.rejected_callers {
            if let Some((pod, workload, sidecar)) = c.peer.as_deref().and_then(lookup) {
                let is_node = pod.starts_with("node/");
                c.peer_pod = Some(pod);
                c.peer_workload = workload;
                c.peer_sidecar = (!is_node).then_some(sidecar);
            }
        }
        if d.verdict == Verdict::Regressed {
            d.reason = regressed_reason(d);
        }
    }
}

/// Why a destination is `regressed`, naming the refused callers (by pod where known).
fn regressed_reason(d: &DestinationReport) -> String {
    const NAMED: usize = 5;
    let mut callers: Vec<String> = d
        .rejected_callers
        .iter()
        .take(NAMED)
        .map(|c| {
            let who = c
                .peer
                .clone()
                .unwrap_or_else(|| "an unlogged address".into());
            match (&c.peer_pod, c.peer_sidecar) {
                (Some(pod), Some(false)) => format!("{who} ({pod}, no sidecar)"),
                (Some(pod), _) => format!("{who} ({pod})"),
                (None, _) => who,
            }
        })
        .collect();
    if d.rejected_callers.len() > NAMED {
        callers.push(format!("{} more", d.rejected_callers.len() - NAMED));
    }
    format!(
        "refuses plaintext now (STRICT): {} plaintext {} refused in the window{}, from {}; these callers are failing: give them a sidecar, or roll this workload back to PERMISSIVE",
        d.rejected,
        if d.rejected == 1 {
            "connection"
        } else {
            "connections"
        },
        d.last_rejected
            .as_deref()
            .map_or_else(String::new, |t| format!(", last at {t}")),
        callers.join(", ")
    )
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
    /// The workload refuses plaintext now (STRICT) and plaintext callers were
    /// refused in the window after the last plaintext it accepted: they are
    /// failing (spec §4 `regressed`).
    Regressed,
    Blocked,
    Insufficient,
    Ready,
    /// `watch` only: a stream of the destination is still reading its
    /// history, so no verdict yet (issue 7 item 21).
    Pending,
}

impl Verdict {
    /// Every verdict, worst first.
    pub const ALL: [Verdict; 5] = [
        Verdict::Regressed,
        Verdict::Blocked,
        Verdict::Insufficient,
        Verdict::Ready,
        Verdict::Pending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regressed => "regressed",
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
    /// Plaintext connections a destination refused for want of a filter
    /// chain (it is STRICT), since the start of the input.
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
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
    /// Plaintext connections refused in the window (the workload is STRICT).
    #[serde(skip_serializing_if = "is_zero")]
    pub rejected: u64,
    /// The newest refusal, inside the window or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_rejected: Option<String>,
    /// Who was refused in the window, by address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_callers: Vec<RejectedCallerReport>,
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

/// One caller a STRICT destination refused in the window.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedCallerReport {
    /// The caller's address; `null` when not logged (or past the bound of named callers).
    pub peer: Option<String>,
    pub connections: u64,
    pub last: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_sidecar: Option<bool>,
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
    for u in &resolved.unplaced_refusals {
        hints.push(format!(
            "{}: {} {} refused for want of a filter chain (NR filter_chain_not_found) at {}, an address none of its inbound requests used; counted as outbound. If that is the pod's own IP, the pod refuses plaintext (STRICT) and those callers fail",
            u.stream,
            u.total,
            if u.total == 1 { "connection" } else { "connections" },
            if u.local.is_empty() { "an unlogged address" } else { u.local.as_str() },
        ));
    }
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
            rejected: resolved.rejected_total,
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

/// Exit status of `report` when some destination is `regressed` (spec §4).
pub const EXIT_REGRESSED: i32 = 3;

/// Exit status of `report` (spec §4): 3 when any destination is regressed,
/// else 0 when every destination is ready, else 1.
/// No destination at all is not "all ready": there is no evidence.
pub fn exit_code(report: &Report) -> i32 {
    if report
        .destinations
        .iter()
        .any(|d| d.verdict == Verdict::Regressed)
    {
        return EXIT_REGRESSED;
    }
    let all_ready = !report.destinations.is_empty()
        && report
            .destinations
            .iter()
            .all(|d| d.verdict == Verdict::Ready);
    if all_ready { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::judge::decide;
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
