//! A label selector per destination from its pods' labels (Kubernetes source):
//! what `strictly policy` puts in a PeerAuthentication's `selector.matchLabels`.
//!
//! The selector is the set of labels every replica that carried the
//! destination shares, minus labels that name one pod or one revision (a
//! selector on `pod-template-hash` stops applying at the next rollout, so the
//! workload would silently fall back to PERMISSIVE). It is then checked
//! against every other pod strictly read: a selector that also matches
//! another workload's pod would switch that workload to STRICT too, which is
//! the worst mistake strictly can make, so the report names those workloads
//! and `policy` writes no policy for it.

use std::collections::{BTreeMap, BTreeSet};

use super::SourceMeta;
use crate::aggregate::Resolved;
use crate::verdict::PodLabels;

/// Labels that select one pod, one revision, or every sidecar: never a workload's selector.
const NOT_SELECTORS: &[&str] = &[
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "security.istio.io/tlsMode",
    "service.istio.io/canonical-revision",
];

/// The selector of each destination, keyed by destination name.
///
/// `streams` are the streams read, by the name the aggregate displays
/// (`NS/pod/NAME/CONTAINER`), with their pod's metadata. A destination none
/// of whose streams is a pod strictly read (a line naming another workload's
/// SAN) gets no entry.
pub fn selectors(
    resolved: &Resolved,
    streams: &BTreeMap<String, std::sync::Arc<SourceMeta>>,
) -> BTreeMap<String, PodLabels> {
    let mut out = BTreeMap::new();
    for dest in &resolved.destinations {
        let pods: Vec<&SourceMeta> = dest
            .streams
            .iter()
            .filter_map(|s| streams.get(&s.display).map(|m| &**m))
            .collect();
        if let Some(labels) = selector(&pods, streams.values().map(|m| &**m)) {
            out.insert(dest.name.clone(), labels);
        }
    }
    out
}

/// The labels all of `pods` share (minus [`NOT_SELECTORS`]) and the other
/// workloads among `all` that those labels also select; `None` when `pods`
/// is empty or they share no label.
pub fn selector<'a>(
    pods: &[&SourceMeta],
    all: impl IntoIterator<Item = &'a SourceMeta>,
) -> Option<PodLabels> {
    let (first, rest) = pods.split_first()?;
    let mut labels: BTreeMap<String, String> = first
        .labels
        .iter()
        .filter(|(k, _)| !NOT_SELECTORS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for pod in rest {
        labels.retain(|k, v| pod.labels.get(k) == Some(v));
    }
    if labels.is_empty() {
        return None;
    }
    let workload = |m: &SourceMeta| {
        format!(
            "{}/{}",
            m.namespace,
            m.workload.as_deref().unwrap_or(&m.pod)
        )
    };
    let mine: BTreeSet<String> = pods.iter().map(|m| workload(m)).collect();
    let namespaces: BTreeSet<&str> = pods.iter().map(|m| m.namespace.as_str()).collect();
    let also_selects: BTreeSet<String> = all
        .into_iter()
        .filter(|m| namespaces.contains(m.namespace.as_str()))
        .filter(|m| labels.iter().all(|(k, v)| m.labels.get(k) == Some(v)))
        .map(workload)
        .filter(|w| !mine.contains(w))
        .collect();
    let distinct_pods: BTreeSet<(&str, &str)> = pods
        .iter()
        .map(|m| (m.namespace.as_str(), m.pod.as_str()))
        .collect();
    Some(PodLabels {
        labels,
        pods: distinct_pods.len() as u64,
        also_selects: also_selects.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, workload: &str, labels: &[(&str, &str)]) -> SourceMeta {
        SourceMeta {
            namespace: ns.into(),
            pod: name.into(),
            container: "istio-proxy".into(),
            workload: Some(workload.into()),
            container_started_ms: None,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn shared_labels_minus_per_pod_ones_and_conflicts_named() {
        let a = pod(
            "ns",
            "web-1",
            "web",
            &[
                ("app", "web"),
                ("version", "v1"),
                ("pod-template-hash", "abc"),
            ],
        );
        let b = pod(
            "ns",
            "web-2",
            "web",
            &[
                ("app", "web"),
                ("version", "v2"),
                ("pod-template-hash", "def"),
            ],
        );
        let other = pod("ns", "web-canary-1", "web-canary", &[("app", "web")]);
        let elsewhere = pod("other", "web-1", "web", &[("app", "web")]);
        let all = [&a, &b, &other, &elsewhere];
        let s = selector(&[&a, &b], all.iter().copied()).unwrap();
        assert_eq!(
            s.labels,
            BTreeMap::from([("app".to_string(), "web".to_string())])
        );
        assert_eq!(s.pods, 2);
        assert_eq!(s.also_selects, ["ns/web-canary"]);
        let alone = selector(&[&a], [&a, &other]).unwrap();
        assert_eq!(alone.labels.len(), 2, "app and version, not the hash");
        assert!(alone.also_selects.is_empty());
        let bare = pod("ns", "x", "x", &[("pod-template-hash", "abc")]);
        assert!(selector(&[&bare], [&bare]).is_none());
    }
}
