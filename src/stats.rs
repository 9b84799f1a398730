//! `strictly stats`: verdicts from Envoy's own counters instead of access
//! logs (the lab's `tls_inspector` and `listener.0.0.0.0_15006` stats, issue
//! 9 item 3), in the same vocabulary: ready, blocked, insufficient.
//!
//! Per replica, between two `/stats` dumps: inbound connections are the rise
//! of `listener.0.0.0.0_15006.downstream_cx_total` (every connection a
//! sidecar receives goes through its virtual inbound listener), TLS
//! handshakes the rise of `listener.0.0.0.0_15006.ssl.handshake`, and the
//! connections without one are plaintext (or a failed handshake: either way
//! STRICT would refuse them). `tls_inspector.tls_not_found` is shown beside
//! them: the lab reads it, but the inspector runs on more than one listener
//! (the lab sees it rise by two for one plaintext call), so it is a hint,
//! never the count. Plain functions over plain data.

use serde::Serialize;

use crate::source::stats::StatsDump;
use crate::verdict::Verdict;

/// Every connection a sidecar receives.
pub const CX_TOTAL: &str = "listener.0.0.0.0_15006.downstream_cx_total";
/// TLS handshakes completed on the inbound listener (mTLS callers).
pub const SSL_HANDSHAKE: &str = "listener.0.0.0.0_15006.ssl.handshake";
/// Connections the TLS inspector saw without TLS.
pub const TLS_NOT_FOUND: &str = "tls_inspector.tls_not_found";
/// The annotation that makes the sidecar keep those stats (the lab's).
pub const INCLUSION_ANNOTATION: &str =
    r#"sidecar.istio.io/statsInclusionPrefixes: "tls_inspector,listener.0.0.0.0_15006""#;

/// One replica's counters over the interval.
#[derive(Clone, Debug, Serialize)]
pub struct ReplicaStats {
    pub replica: String,
    pub verdict: Verdict,
    pub reason: String,
    /// Rises between the two dumps; `None` when the counter is missing.
    pub inbound_connections: Option<u64>,
    pub tls_handshakes: Option<u64>,
    pub plaintext_connections: Option<u64>,
    pub tls_not_found: Option<u64>,
}

/// One workload: its replicas' verdicts combined.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadStats {
    pub workload: String,
    pub verdict: Verdict,
    pub reason: String,
    pub inbound_connections: u64,
    pub tls_handshakes: u64,
    pub plaintext_connections: u64,
    pub replicas: Vec<ReplicaStats>,
}

/// The whole `stats` answer.
#[derive(Clone, Debug, Serialize)]
pub struct StatsReport {
    /// Seconds between the dumps, where known (the pod proxy's `--interval`).
    pub interval_seconds: Option<f64>,
    pub min_connections: u64,
    pub workloads: Vec<WorkloadStats>,
    /// What would make the evidence better (the annotation to add).
    pub hints: Vec<String>,
}

/// Judges one replica from its two dumps.
pub fn judge_replica(
    replica: &str,
    before: &StatsDump,
    after: &StatsDump,
    min_connections: u64,
) -> ReplicaStats {
    let rise = |name: &str| -> Option<Result<u64, ()>> {
        let (b, a) = (before.values.get(name)?, after.values.get(name)?);
        Some(a.checked_sub(*b).ok_or(()))
    };
    let (cx, hs, tnf) = (rise(CX_TOTAL), rise(SSL_HANDSHAKE), rise(TLS_NOT_FOUND));
    let mut out = ReplicaStats {
        replica: replica.to_string(),
        verdict: Verdict::Insufficient,
        reason: String::new(),
        inbound_connections: cx.and_then(Result::ok),
        tls_handshakes: hs.and_then(Result::ok),
        plaintext_connections: None,
        tls_not_found: tnf.and_then(Result::ok),
    };
    let missing: Vec<&str> = [(CX_TOTAL, &cx), (SSL_HANDSHAKE, &hs)]
        .iter()
        .filter(|(_, r)| r.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        out.reason = format!(
            "the sidecar does not expose {} (stats not enabled): add the pod annotation {INCLUSION_ANNOTATION}",
            missing.join(" and ")
        );
        return out;
    }
    let (Some(Ok(cx)), Some(Ok(hs))) = (cx, hs) else {
        out.reason = "a counter went down between the dumps (the proxy restarted): take both dumps from one proxy run".into();
        return out;
    };
    let plaintext = cx.saturating_sub(hs);
    out.plaintext_connections = Some(plaintext);
    if plaintext > 0 {
        out.verdict = Verdict::Blocked;
        out.reason = format!(
            "{plaintext} of {cx} inbound connections in the interval had no TLS handshake (plaintext, or a failed handshake): STRICT would refuse them"
        );
    } else if hs < min_connections {
        out.reason = format!(
            "only {hs} TLS handshakes in the interval (--min-requests {min_connections}): take the dumps further apart (--interval)"
        );
    } else {
        out.verdict = Verdict::Ready;
        out.reason =
            format!("{hs} inbound connections in the interval, every one with a TLS handshake");
    }
    out
}

/// A replica whose dumps could not be read: insufficient, saying why.
pub fn unreadable(replica: &str, why: &str) -> ReplicaStats {
    ReplicaStats {
        replica: replica.to_string(),
        verdict: Verdict::Insufficient,
        reason: format!("its /stats could not be read: {why}"),
        inbound_connections: None,
        tls_handshakes: None,
        plaintext_connections: None,
        tls_not_found: None,
    }
}

/// Combines replicas of one workload: blocked if any is, else insufficient
/// if any is (every replica must have evidence), else ready.
pub fn judge_workload(workload: &str, replicas: Vec<ReplicaStats>) -> WorkloadStats {
    let sum = |f: fn(&ReplicaStats) -> Option<u64>| replicas.iter().filter_map(f).sum::<u64>();
    let verdict = if replicas.is_empty() {
        Verdict::Insufficient
    } else if replicas.iter().any(|r| r.verdict == Verdict::Blocked) {
        Verdict::Blocked
    } else if replicas.iter().any(|r| r.verdict != Verdict::Ready) {
        Verdict::Insufficient
    } else {
        Verdict::Ready
    };
    let reason = match replicas.iter().find(|r| r.verdict == verdict) {
        _ if replicas.is_empty() => "no replica to read".to_string(),
        Some(r) if replicas.len() > 1 => format!("{}: {}", r.replica, r.reason),
        Some(r) => r.reason.clone(),
        None => String::new(),
    };
    WorkloadStats {
        workload: workload.to_string(),
        verdict,
        reason,
        inbound_connections: sum(|r| r.inbound_connections),
        tls_handshakes: sum(|r| r.tls_handshakes),
        plaintext_connections: sum(|r| r.plaintext_connections),
        replicas,
    }
}

/// Builds the report; adds the annotation hint when any replica lacks the stats.
pub fn report(
    workloads: Vec<WorkloadStats>,
    interval_seconds: Option<f64>,
    min_connections: u64,
) -> StatsReport {
    let mut hints = Vec::new();
    let blind: Vec<&str> = workloads
        .iter()
        .filter(|w| {
            w.replicas
                .iter()
                .any(|r| r.reason.contains("stats not enabled"))
        })
        .map(|w| w.workload.as_str())
        .collect();
    if !blind.is_empty() {
        hints.push(format!(
            "{}: the inbound listener's stats are not enabled; add to the pod template's metadata.annotations: {INCLUSION_ANNOTATION}",
            blind.join(", ")
        ));
    }
    StatsReport {
        interval_seconds,
        min_connections,
        workloads,
        hints,
    }
}

/// Exit status, as `report`'s: 0 every workload ready, else 1.
pub fn exit_code(r: &StatsReport) -> i32 {
    let all_ready =
        !r.workloads.is_empty() && r.workloads.iter().all(|w| w.verdict == Verdict::Ready);
    if all_ready { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(pairs: &[(&str, u64)]) -> StatsDump {
        StatsDump {
            values: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn verdicts_from_rises() {
        let b = dump(&[(CX_TOTAL, 10), (SSL_HANDSHAKE, 10)]);
        let ready = judge_replica("r", &b, &dump(&[(CX_TOTAL, 30), (SSL_HANDSHAKE, 30)]), 10);
        assert_eq!(ready.verdict, Verdict::Ready);
        let blocked = judge_replica("r", &b, &dump(&[(CX_TOTAL, 31), (SSL_HANDSHAKE, 30)]), 10);
        assert_eq!(
            (blocked.verdict, blocked.plaintext_connections),
            (Verdict::Blocked, Some(1))
        );
        let few = judge_replica("r", &b, &dump(&[(CX_TOTAL, 12), (SSL_HANDSHAKE, 12)]), 10);
        assert_eq!(few.verdict, Verdict::Insufficient);
        let reset = judge_replica("r", &b, &dump(&[(CX_TOTAL, 1), (SSL_HANDSHAKE, 1)]), 1);
        assert_eq!(reset.verdict, Verdict::Insufficient);
        let blind = judge_replica("r", &dump(&[]), &dump(&[]), 1);
        assert!(blind.reason.contains("statsInclusionPrefixes"));
    }
}
