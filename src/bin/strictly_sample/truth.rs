//! The ground truth: what a reader following `docs/verdict.md` must
//! conclude from the generated log, computed from the generator's own events.
//!
//! Two views:
//! - `destinations`: keyed the way the contract's attribution (§3) can key
//!   them *from this log* (format × envelope): a plaintext lab line in a raw
//!   log names no destination, so it lands in `unattributed`;
//! - `workloads`: keyed by the workload that really received each request,
//!   with the same per-format evidence (what the line proves, §2).
//!
//! Both count only what the format can show: `audited` and `xfcc_forged`
//! are 0 for Istio's formats (no audit_flag, no XFCC); in `lab-cert` a forged
//! XFCC is indistinguishable from mTLS and counts as such.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock;
use crate::mesh::{Caller, FLOWS, Mesh, PLAIN_CALLERS, WORKLOADS};
use crate::render::{Audit, Details, EnvelopeKind, FormatKind};
use crate::traffic::{Event, Side, Traffic};

/// The source of a plaintext request, and of an mTLS one whose identity is not logged.
const PLAINTEXT: &str = "plaintext";
const MTLS: &str = "mtls";
const UNATTRIBUTED: &str = "unattributed";

/// How the truth is judged, and the settings it is reported with.
#[derive(Clone, Debug)]
pub struct TruthConfig {
    pub format: FormatKind,
    pub envelope: EnvelopeKind,
    pub end_ms: i64,
    pub window_ms: i64,
    pub min_requests: u64,
    /// The generator's settings, echoed into the file so it says how it was made.
    pub generator: Value,
}

/// What one inbound line proves (§2).
struct Evidence {
    mtls: bool,
    source: String,
    peer: Option<String>,
    audited: bool,
    xfcc_forged: bool,
}

fn evidence(mesh: &Mesh, event: &Event, details: &Details, format: FormatKind) -> Evidence {
    let caller_ip = match event.caller {
        Caller::Pod(p) => mesh.pod(p).ip,
        Caller::Plain(c) => PLAIN_CALLERS[usize::from(c)].ip,
    };
    let first_xff = || {
        details
            .xff
            .as_deref()
            .and_then(|x| x.split(',').next())
            .map(|x| x.trim().to_string())
    };
    let audited = details.audit == Audit::True;
    match format {
        FormatKind::Lab | FormatKind::LabV0 => match event.caller {
            Caller::Pod(p) => Evidence {
                mtls: true,
                source: mesh.workload_of(p).spiffe(),
                peer: None,
                audited,
                xfcc_forged: false,
            },
            Caller::Plain(_) => Evidence {
                mtls: false,
                source: PLAINTEXT.into(),
                peer: first_xff(),
                audited,
                xfcc_forged: details.xfcc.as_deref().is_some_and(|x| x.contains("URI=")),
            },
        },
        FormatKind::LabCert => {
            let uri = details
                .xfcc
                .as_deref()
                .and_then(|x| x.rsplit(',').next())
                .and_then(|element| element.split(';').find_map(|kv| kv.strip_prefix("URI=")));
            match uri {
                Some(uri) => Evidence {
                    mtls: true,
                    source: uri.to_string(),
                    peer: None,
                    audited,
                    xfcc_forged: false,
                },
                None => Evidence {
                    mtls: false,
                    source: PLAINTEXT.into(),
                    peer: first_xff(),
                    audited,
                    xfcc_forged: false,
                },
            }
        }
        FormatKind::Istio | FormatKind::IstioJson => Evidence {
            mtls: matches!(event.caller, Caller::Pod(_)),
            source: if matches!(event.caller, Caller::Pod(_)) {
                MTLS
            } else {
                PLAINTEXT
            }
            .into(),
            peer: Some(caller_ip.to_string()),
            audited: false,
            xfcc_forged: false,
        },
    }
}

#[derive(Default)]
struct SourceCount {
    requests: u64,
    mtls: u64,
    plaintext: u64,
    audited: u64,
    xfcc_forged: u64,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
}

#[derive(Default)]
struct DestinationCount {
    requests: u64,
    mtls: u64,
    plaintext: u64,
    audited: u64,
    xfcc_forged: u64,
    /// Over the whole input, not only the window.
    first_request: Option<i64>,
    last_plaintext: Option<i64>,
    sources: BTreeMap<(String, Option<String>), SourceCount>,
}

impl DestinationCount {
    fn record(&mut self, at: i64, in_window: bool, e: &Evidence) {
        self.first_request = Some(self.first_request.map_or(at, |t| t.min(at)));
        if !e.mtls {
            self.last_plaintext = Some(self.last_plaintext.map_or(at, |t| t.max(at)));
        }
        if !in_window {
            return;
        }
        let bump = |n: &mut u64, yes: bool| *n += u64::from(yes);
        self.requests += 1;
        bump(&mut self.mtls, e.mtls);
        bump(&mut self.plaintext, !e.mtls);
        bump(&mut self.audited, e.audited);
        bump(&mut self.xfcc_forged, e.xfcc_forged);
        let source = self
            .sources
            .entry((e.source.clone(), e.peer.clone()))
            .or_default();
        source.requests += 1;
        bump(&mut source.mtls, e.mtls);
        bump(&mut source.plaintext, !e.mtls);
        bump(&mut source.audited, e.audited);
        bump(&mut source.xfcc_forged, e.xfcc_forged);
        source.first_seen = Some(source.first_seen.map_or(at, |t| t.min(at)));
        source.last_seen = Some(source.last_seen.map_or(at, |t| t.max(at)));
    }

    fn to_json(
        &self,
        name: &str,
        config: &TruthConfig,
        input_start: Option<i64>,
        malformed: u64,
    ) -> Value {
        let window_start = config.end_ms - config.window_ms;
        let complete = input_start.is_some_and(|t| t <= window_start);
        let last_plaintext = self.last_plaintext.map(clock::envoy);
        let (verdict, reason) = if self.plaintext > 0 {
            let last = last_plaintext.clone().unwrap_or_default();
            (
                "blocked",
                format!(
                    "{} plaintext requests in the window, last at {last}",
                    self.plaintext
                ),
            )
        } else if !complete {
            (
                "insufficient",
                "the input starts after the window starts".to_string(),
            )
        } else if malformed > 0 {
            (
                "insufficient",
                format!("{malformed} malformed lines may lie in the window"),
            )
        } else if self.mtls < config.min_requests {
            (
                "insufficient",
                format!(
                    "only {} mTLS requests in the window (--min-requests {})",
                    self.mtls, config.min_requests
                ),
            )
        } else {
            (
                "ready",
                format!("{} mTLS requests and no plaintext in the window", self.mtls),
            )
        };
        let mut sources: Vec<(&(String, Option<String>), &SourceCount)> =
            self.sources.iter().collect();
        sources.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then_with(|| a.0.cmp(b.0)));
        let plaintext_peers: Vec<Value> = sources
            .iter()
            .filter(|(_, s)| s.plaintext > 0)
            .map(|((_, peer), s)| json!({"peer": peer, "requests": s.plaintext}))
            .collect();
        let sources: Vec<Value> = sources
            .iter()
            .map(|((source, peer), s)| {
                json!({
                    "source": source, "peer": peer, "requests": s.requests, "mtls": s.mtls,
                    "plaintext": s.plaintext, "audited": s.audited, "xfcc_forged": s.xfcc_forged,
                    "first_seen": s.first_seen.map(clock::envoy), "last_seen": s.last_seen.map(clock::envoy),
                })
            })
            .collect();
        json!({
            "destination": name,
            "verdict": verdict,
            "reason": reason,
            "requests": self.requests,
            "mtls": self.mtls,
            "plaintext": self.plaintext,
            "audited": self.audited,
            "xfcc_forged": self.xfcc_forged,
            "last_plaintext": last_plaintext,
            "first_request": self.first_request.map(clock::envoy),
            "coverage_complete": complete,
            "plaintext_peers": plaintext_peers,
            "sources": sources,
        })
    }
}

/// The truth file's content for one generated run.
pub fn truth(mesh: &Mesh, traffic: &Traffic, lines_written: u64, config: &TruthConfig) -> Value {
    // strictly ends a window without --until at the newest *write* time of an
    // access entry, rounded up to the second (spec §4): kubelet's receive
    // time where the envelope shows it, else START_TIME + DURATION.
    let written = |e: &Event| {
        if config.envelope.has_write_time() {
            e.emitted_ns().div_euclid(1_000_000)
        } else {
            e.start_ms + i64::from(e.duration_ms)
        }
    };
    let newest_written = traffic
        .events
        .iter()
        .filter(|e| e.side != Side::Malformed)
        .map(written)
        .max()
        .unwrap_or(config.end_ms);
    let config = &TruthConfig {
        end_ms: (newest_written + 999).div_euclid(1000) * 1000,
        ..config.clone()
    };
    let window_start = config.end_ms - config.window_ms;
    // Details are derived again per pass rather than kept: a million of them would not fit lightly.
    let inbound = || traffic.events.iter().filter(|e| e.side == Side::Inbound);
    let evidence_of =
        |event: &Event| evidence(mesh, event, &Details::of(mesh, event), config.format);

    // §3.1: a pod-naming envelope gives the workload; the namespace comes
    // from the destination SAN (or XFCC By=) of the pod's own mTLS lines.
    let mut pod_has_san = vec![false; mesh.pods.len()];
    if config.envelope.names_pod() && config.format.logs_xfcc() {
        for event in inbound() {
            pod_has_san[usize::from(event.dest_pod)] |= evidence_of(event).mtls;
        }
    }
    let attribute = |event: &Event, e: &Evidence| -> String {
        let names_destination = if config.envelope.names_pod() {
            pod_has_san[usize::from(event.dest_pod)]
        } else {
            // §3.3: the line's own destination SAN or XFCC By=, which only mTLS lines carry.
            config.format.logs_xfcc() && e.mtls
        };
        if names_destination {
            mesh.workload_of(event.dest_pod).key()
        } else {
            UNATTRIBUTED.to_string()
        }
    };

    let input_start = inbound().map(|e| e.start_ms).min();
    let newest = inbound().map(|e| e.start_ms).max();
    debug_assert!(
        newest <= Some(config.end_ms),
        "the newest request is in the window"
    );

    let mut destinations: BTreeMap<String, DestinationCount> = BTreeMap::new();
    let mut workloads: BTreeMap<String, DestinationCount> = BTreeMap::new();
    let mut requests = 0usize;
    let mut outside_window = 0u64;
    for event in inbound() {
        let e = evidence_of(event);
        // A plaintext request counts when it ended (spec §7: a long plaintext
        // stream still open in the window blocks); mTLS when it started.
        let at = if e.mtls {
            event.start_ms
        } else {
            event.start_ms + i64::from(event.duration_ms)
        };
        let in_window = at > window_start && at <= config.end_ms;
        requests += 1;
        outside_window += u64::from(!in_window);
        destinations
            .entry(attribute(event, &e))
            .or_default()
            .record(at, in_window, &e);
        workloads
            .entry(mesh.workload_of(event.dest_pod).key())
            .or_default()
            .record(at, in_window, &e);
    }
    // A malformed line that may lie in the window keeps its destination from
    // ready (spec §4): its pod's workload where the envelope names the pod,
    // else every destination. strictly places it by the minute of its write
    // time (the envelope's, else the START_TIME it opens with).
    let minute = |t: i64| t.div_euclid(60_000);
    let mut doubt: BTreeMap<String, u64> = BTreeMap::new();
    let mut doubt_everywhere = 0;
    for event in traffic.events.iter().filter(|e| e.side == Side::Malformed) {
        let t = if config.envelope.has_write_time() {
            event.emitted_ns().div_euclid(1_000_000)
        } else {
            event.start_ms
        };
        if minute(t) < minute(window_start) || minute(t) > minute(config.end_ms - 1) {
            continue;
        }
        if config.envelope.names_pod() {
            *doubt
                .entry(mesh.workload_of(event.dest_pod).key())
                .or_default() += 1;
        } else {
            doubt_everywhere += 1;
        }
    }
    let doubt_of = |name: &str| {
        if name == UNATTRIBUTED {
            return 0;
        }
        doubt.get(name).copied().unwrap_or(0) + doubt_everywhere
    };
    let destinations: Vec<Value> = destinations
        .iter()
        .map(|(name, d)| d.to_json(name, config, input_start, doubt_of(name)))
        .collect();
    let workloads: Vec<Value> = workloads
        .iter()
        .map(|(name, d)| d.to_json(name, config, input_start, doubt_of(name)))
        .collect();
    let all_ready = destinations.iter().all(|d| d["verdict"] == "ready");

    let count = |side: Side| traffic.events.iter().filter(|e| e.side == side).count();
    let outbound = count(Side::Outbound);
    let pods: Vec<Value> = mesh
        .pods
        .iter()
        .map(|p| {
            let w = &WORKLOADS[p.workload];
            json!({"pod": format!("{}/{}", w.namespace, p.name), "workload": w.key(), "ip": p.ip,
                   "identity": w.spiffe(), "logged": w.logged})
        })
        .collect();
    let plaintext_callers: Vec<Value> = PLAIN_CALLERS
        .iter()
        .map(|c| {
            let flows: Vec<String> = FLOWS
                .iter()
                .filter(|f| matches!(f.caller, crate::mesh::CallerSpec::Plain(i) if PLAIN_CALLERS[i].ip == c.ip))
                .map(|f| WORKLOADS[f.dest].key())
                .collect();
            json!({"caller": c.name, "ip": c.ip, "calls": flows})
        })
        .collect();

    json!({
        "generator": config.generator,
        "window": {
            "start": clock::rfc3339(window_start),
            "end": clock::rfc3339(config.end_ms),
            "seconds": config.window_ms / 1000,
        },
        "min_requests": config.min_requests,
        "exit_code": if all_ready { 0 } else { 1 },
        "input": {
            "lines": lines_written,
            "access_lines": requests + outbound,
            "requests": requests,
            "outbound": outbound,
            "skipped": traffic.noise.len(),
            "malformed": count(Side::Malformed),
            "outside_window": outside_window,
            "first_request": input_start.map(clock::envoy),
            "last_request": newest.map(clock::envoy),
            "legacy_cron_at": traffic.cron_at.map(clock::envoy),
        },
        "destinations": destinations,
        "workloads": workloads,
        "mesh": {"pods": pods, "plaintext_callers": plaintext_callers},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{DAY_MS, HOUR_MS, parse_rfc3339};
    use crate::traffic::TrafficConfig;

    fn run(seed: u64, lines: usize, format: FormatKind, envelope: EnvelopeKind) -> Value {
        let end_ms = parse_rfc3339("2026-11-20T12:00:00Z").unwrap();
        let mesh = Mesh::new(seed);
        let traffic = Traffic::generate(
            &mesh,
            &TrafficConfig {
                lines,
                end_ms,
                span_ms: 26 * HOUR_MS,
                seed,
                noise_ratio: 0.02,
                malformed: 3,
                outbound: format.is_istio(),
            },
        );
        let config = TruthConfig {
            format,
            envelope,
            end_ms,
            window_ms: DAY_MS,
            min_requests: 10,
            generator: Value::Null,
        };
        truth(&mesh, &traffic, 0, &config)
    }

    fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["destination"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    const FORMATS: [FormatKind; 5] = [
        FormatKind::Lab,
        FormatKind::LabV0,
        FormatKind::LabCert,
        FormatKind::Istio,
        FormatKind::IstioJson,
    ];

    #[test]
    fn every_seed_and_format_shows_the_designed_verdicts() {
        for seed in 1..=6 {
            for lines in [200, 3000] {
                for format in FORMATS {
                    let t = run(seed, lines, format, EnvelopeKind::KubectlPrefix);
                    let w = &t["workloads"];
                    let at = |name: &str, field: &str| find(w, name)[field].clone();
                    let context = format!("seed {seed}, {lines} lines, {}", format.name());
                    assert_eq!(
                        at("istioinaction/web-api", "verdict"),
                        "blocked",
                        "{context}"
                    );
                    assert_eq!(at("default/httpbin", "verdict"), "blocked", "{context}");
                    assert_eq!(
                        at("istioinaction/recommendation", "verdict"),
                        "ready",
                        "{context}"
                    );
                    assert_eq!(
                        at("istioinaction/purchase-history", "verdict"),
                        "ready",
                        "{context}"
                    );
                    assert_eq!(
                        at("istioinaction/catalog", "verdict"),
                        "insufficient",
                        "{context}"
                    );
                    assert_eq!(at("istioinaction/catalog", "mtls"), 7, "{context}");
                    let last = at("istioinaction/purchase-history", "last_plaintext");
                    assert_eq!(
                        last.as_str().map(|s| &s[..13]),
                        Some("2026-11-19T11"),
                        "{context}"
                    );
                    let forged = if format.logs_xfcc() && format != FormatKind::LabCert {
                        1
                    } else {
                        0
                    };
                    assert_eq!(at("default/httpbin", "xfcc_forged"), forged, "{context}");
                    assert_eq!(
                        t["input"]["last_request"], "2026-11-20T12:00:00.000Z",
                        "{context}"
                    );
                    if format.logs_xfcc() {
                        // A pod-naming envelope attributes every line to its real workload.
                        assert_eq!(t["destinations"], t["workloads"], "{context}");
                    }
                }
            }
        }
    }

    #[test]
    fn metadata_less_input_leaves_plaintext_lab_lines_unattributed() {
        let t = run(1, 3000, FormatKind::Lab, EnvelopeKind::Raw);
        let d = &t["destinations"];
        assert_eq!(find(d, "istioinaction/web-api")["verdict"], "ready");
        assert_eq!(find(d, "unattributed")["verdict"], "blocked");
        assert_eq!(find(d, "unattributed")["xfcc_forged"], 1);
        let t = run(1, 3000, FormatKind::Istio, EnvelopeKind::Raw);
        assert_eq!(t["destinations"].as_array().unwrap().len(), 1);
    }
}
