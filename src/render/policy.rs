//! `strictly policy`: Istio PeerAuthentication YAML from a report.
//!
//! One `security.istio.io/v1` PeerAuthentication with `mtls.mode: STRICT` per
//! ready workload, selecting its pods; a namespace-wide `default` (no
//! selector) where every workload seen in the namespace is ready; for every
//! other workload no policy, only a comment saying why (the plaintext
//! callers, the missing evidence). The output is a multi-document YAML
//! stream for `kubectl apply -f -`; each document is serialized by
//! serde_yaml_ng from typed data, so quoting is the emitter's, not ours.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::policy_input::{PolicyDestination, PolicyReport};

/// The label every policy strictly writes carries: `kubectl delete
/// peerauthentication -A -l app.kubernetes.io/managed-by=strictly` undoes them all.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "strictly");

/// Callers named per blocked workload; the rest are counted.
const CALLERS_SHOWN: usize = 10;

/// How `policy` writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct PolicyOptions {
    /// `--port-exceptions`: PERMISSIVE on the one port plaintext uses, where the report shows one.
    pub port_exceptions: bool,
}

/// What was written: the exit code and stderr follow from it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySummary {
    /// PeerAuthentication documents written (namespace defaults included).
    pub policies: usize,
    /// Workloads given a policy.
    pub workloads_with_policy: usize,
    /// Workloads given only a comment (blocked, insufficient, no safe selector, no namespace).
    pub workloads_without_policy: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PeerAuthentication {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata,
    spec: Spec,
}

#[derive(Serialize)]
struct Metadata {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Spec {
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Selector>,
    mtls: Mtls,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Selector {
    match_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Mtls {
    mode: &'static str,
}

/// One workload's outcome: a document (with the comment above it), or a comment only.
enum Decision {
    Policy {
        comment: Vec<String>,
        doc: PeerAuthentication,
    },
    Comment(Vec<String>),
}

/// Writes the policies for `report` and returns what was written.
pub fn render(
    report: &PolicyReport,
    opts: PolicyOptions,
    out: &mut dyn Write,
) -> io::Result<PolicySummary> {
    let mut summary = PolicySummary::default();
    let mut destinations: Vec<&PolicyDestination> = report.destinations.iter().collect();
    destinations.sort_by(|a, b| a.destination.cmp(&b.destination));

    let mut comments: Vec<String> = Vec::new();
    let mut docs: Vec<(Vec<String>, PeerAuthentication)> = Vec::new();
    for d in &destinations {
        match decide(d, opts) {
            Decision::Policy { comment, doc } => {
                summary.workloads_with_policy += 1;
                docs.push((comment, doc));
            }
            Decision::Comment(lines) => {
                summary.workloads_without_policy += 1;
                comments.extend(lines);
            }
        }
    }
    docs.extend(namespace_defaults(&destinations));
    summary.policies = docs.len();

    writeln!(
        out,
        "# strictly policy: PeerAuthentication STRICT for the workloads ready over {} .. {} (at least {} mTLS requests, no plaintext).",
        report.window.start, report.window.end, report.min_requests
    )?;
    writeln!(
        out,
        "# {} policies for {} workloads; {} workloads without a policy{}",
        summary.policies,
        summary.workloads_with_policy,
        summary.workloads_without_policy,
        if summary.workloads_without_policy > 0 {
            ", and why:"
        } else {
            "."
        }
    )?;
    for line in &comments {
        writeln!(out, "# {}", one_line(line))?;
    }
    for (comment, doc) in &docs {
        writeln!(out, "---")?;
        for line in comment {
            writeln!(out, "# {}", one_line(line))?;
        }
        let yaml = serde_yaml_ng::to_string(doc).map_err(io::Error::other)?;
        out.write_all(yaml.as_bytes())?;
    }
    Ok(summary)
}

/// A report's text on one comment line. Names and reasons come from the
/// logs: anything a YAML parser could take for a line break (YAML 1.1, as
/// libyaml and go-yaml read it, also breaks at NEL, LS and PS) would end the
/// comment and let the rest of the text be read as YAML.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Returns true if and only if `s` is a DNS-1123 label (a namespace, most workload names).
fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Splits `namespace/name`; `None` for `unattributed`, `unknown/…` and
/// anything that is not a Kubernetes namespace and name (a destination named
/// by a log's own SAN can be any text).
fn namespace_and_name(destination: &str) -> Option<(&str, &str)> {
    let (ns, name) = destination.split_once('/')?;
    let known = is_dns1123_label(ns)
        && name.len() <= 63 - "-strict".len()
        && name.split('.').all(is_dns1123_label)
        && ns != crate::aggregate::UNKNOWN_NAMESPACE;
    known.then_some((ns, name))
}

fn decide(d: &PolicyDestination, opts: PolicyOptions) -> Decision {
    let name = &d.destination;
    let Some((ns, workload)) = namespace_and_name(name) else {
        return Decision::Comment(vec![format!(
            "{name}: {}, no policy: not a Kubernetes namespace and workload name (see the report's hints; --destination NS/NAME names it)",
            d.verdict
        )]);
    };
    match d.verdict.as_str() {
        "ready" => {}
        "blocked" => return Decision::Comment(blocked(d, opts)),
        other => {
            let mut lines = vec![format!("{name}: {other}, no policy: {}", d.reason)];
            let short: Vec<String> = d
                .coverage
                .iter()
                .flat_map(|c| &c.short)
                .map(|s| match &s.error {
                    Some(e) => format!("{} ({e})", s.stream),
                    None => s.stream.clone(),
                })
                .collect();
            if !short.is_empty() {
                lines.push(format!(
                    "  logs that do not cover the window: {}",
                    short.join(", ")
                ));
            }
            return Decision::Comment(lines);
        }
    }
    let (selector, why) = match &d.pod_labels {
        Some(p) if !p.also_selects.is_empty() => {
            return Decision::Comment(vec![format!(
                "{name}: ready, no policy: the labels its pods share ({}) also select pods of {}, which would switch them to STRICT too; write a selector for {workload} alone",
                labels_text(&p.labels),
                p.also_selects.join(", ")
            )]);
        }
        Some(p) => (
            p.labels.clone(),
            format!(
                "selector: the labels all {} of its pods carry (Kubernetes API)",
                p.pods
            ),
        ),
        None => (
            BTreeMap::from([("app".to_string(), workload.to_string())]),
            format!(
                "selector: the `app: {workload}` convention (the logs carry no pod labels): check that `kubectl get pods -n {ns} -l app={workload}` lists {workload}'s pods and only them"
            ),
        ),
    };
    let mut comment = vec![format!("{name}: ready: {}", d.reason), why];
    if d.dataplane
        .as_deref()
        .is_some_and(|p| p.contains("ambient"))
    {
        // Issue 10 item 5: the same resource, another enforcer.
        comment.push(format!(
            "dataplane: {} (judged from ztunnel's connection log): ztunnel, the node proxy, enforces this PeerAuthentication for its pods; no restart is needed",
            d.dataplane.as_deref().unwrap_or_default()
        ));
    }
    Decision::Policy {
        comment,
        doc: peer_authentication(format!("{workload}-strict"), ns, Some(selector)),
    }
}

/// The comment for a blocked workload: its plaintext callers, and why no port exception.
fn blocked(d: &PolicyDestination, opts: PolicyOptions) -> Vec<String> {
    let mut callers: Vec<_> = d.sources.iter().filter(|s| s.plaintext > 0).collect();
    callers.sort_by_key(|s| std::cmp::Reverse(s.plaintext));
    let mut named: Vec<String> = callers
        .iter()
        .take(CALLERS_SHOWN)
        .map(|s| format!("{} ({} plaintext)", s.describe(), s.plaintext))
        .collect();
    if callers.len() > CALLERS_SHOWN {
        named.push(format!("{} more", callers.len() - CALLERS_SHOWN));
    }
    let mut lines = vec![format!(
        "{}: blocked, no policy: {}; plaintext callers: {}",
        d.destination,
        d.reason,
        if named.is_empty() {
            "(not named in the report)".to_string()
        } else {
            named.join(", ")
        }
    )];
    if opts.port_exceptions {
        lines.push(
            "  --port-exceptions: the report does not say which port each plaintext caller used (it counts per workload and caller, not per port), so no portLevelMtls exception is written".to_string(),
        );
    }
    lines
}

/// `default` in each namespace whose every workload seen is ready.
fn namespace_defaults(
    destinations: &[&PolicyDestination],
) -> Vec<(Vec<String>, PeerAuthentication)> {
    let mut by_ns: BTreeMap<&str, Vec<&PolicyDestination>> = BTreeMap::new();
    for d in destinations {
        if let Some((ns, _)) = namespace_and_name(&d.destination) {
            by_ns.entry(ns).or_default().push(d);
        }
    }
    by_ns
        .into_iter()
        .filter(|(_, ds)| ds.iter().all(|d| d.verdict == "ready"))
        .map(|(ns, ds)| {
            let names: Vec<&str> = ds
                .iter()
                .filter_map(|d| namespace_and_name(&d.destination).map(|(_, n)| n))
                .collect();
            let comment = vec![
                format!(
                    "{ns}: every workload seen is ready ({}): namespace-wide STRICT",
                    names.join(", ")
                ),
                format!(
                    "  it also covers workloads of {ns} that had no traffic in the logs, which strictly did not judge: apply it only if these are all of {ns}'s workloads"
                ),
            ];
            (comment, peer_authentication("default".into(), ns, None))
        })
        .collect()
}

fn peer_authentication(
    name: String,
    namespace: &str,
    match_labels: Option<BTreeMap<String, String>>,
) -> PeerAuthentication {
    PeerAuthentication {
        api_version: "security.istio.io/v1",
        kind: "PeerAuthentication",
        metadata: Metadata {
            name,
            namespace: namespace.to_string(),
            labels: BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())]),
        },
        spec: Spec {
            selector: match_labels.map(|match_labels| Selector { match_labels }),
            mtls: Mtls { mode: "STRICT" },
        },
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> PolicyReport {
        serde_json::from_value(json).unwrap()
    }

    fn dest(name: &str, verdict: &str) -> serde_json::Value {
        serde_json::json!({"destination": name, "verdict": verdict, "reason": "r", "sources": []})
    }

    fn yaml(r: &PolicyReport) -> (String, PolicySummary) {
        let mut out = Vec::new();
        let s = render(r, PolicyOptions::default(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), s)
    }

    #[test]
    fn a_newline_in_a_reason_stays_inside_its_comment() {
        let mut d = dest("ns/a", "insufficient");
        d["reason"] = "line one\nkind: Secret".into();
        let r = report(serde_json::json!({
            "window": {"start": "s", "end": "e"}, "min_requests": 10, "destinations": [d]
        }));
        let (text, s) = yaml(&r);
        assert!(
            text.lines().all(|l| l.starts_with('#')),
            "only comments: {text}"
        );
        assert_eq!(s.workloads_without_policy, 1);
    }

    #[test]
    fn a_caller_name_cannot_start_a_yaml_document() {
        let mut d = dest("ns/a", "blocked");
        d["sources"] = serde_json::json!([{
            "source": "plaintext", "plaintext": 1,
            "peer": "x\u{2028}---\u{2028}apiVersion: v1\u{85}kind: Secret\rmetadata: {name: s}"
        }]);
        let r = report(serde_json::json!({
            "window": {"start": "s", "end": "e"}, "min_requests": 10,
            "destinations": [d, dest("ns/b", "ready")]
        }));
        let (text, _) = yaml(&r);
        let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|d: &serde_yaml_ng::Value| !d.is_null())
            .collect();
        assert_eq!(docs.len(), 1, "{text}");
        assert_eq!(docs[0]["kind"], "PeerAuthentication");
    }

    #[test]
    fn names_that_are_not_kubernetes_names_get_no_policy() {
        let r = report(serde_json::json!({
            "window": {"start": "s", "end": "e"}, "min_requests": 10,
            "destinations": [dest("ns/Web_API", "ready"), dest("NS/web", "ready")]
        }));
        let (text, s) = yaml(&r);
        assert_eq!(s.policies, 0, "{text}");
    }

    #[test]
    fn unknown_namespace_gets_no_policy_and_no_default() {
        let r = report(serde_json::json!({
            "window": {"start": "s", "end": "e"}, "min_requests": 10,
            "destinations": [dest("unknown/web", "ready"), dest("unattributed", "ready")]
        }));
        let (text, s) = yaml(&r);
        assert_eq!(s.policies, 0, "{text}");
        assert_eq!(s.workloads_without_policy, 2);
    }
}
