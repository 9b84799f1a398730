//! Ambient mode from the cluster: which selected pods are ambient, and the
//! ztunnel pods whose logs carry their connections.
//!
//! An ambient pod has no istio-proxy container: the ztunnel of its node
//! (DaemonSet `ztunnel` in `istio-system`, label `app=ztunnel`) logs every
//! connection it receives. A pod is ambient when it or its namespace is
//! labelled `istio.io/dataplane-mode=ambient`; istio-cni marks every pod it
//! captured with the annotation `ambient.istio.io/redirection: enabled`, so
//! the pod alone tells, and no cluster-wide read of namespaces is needed.
//! Each ambient pod is declared against its node's ztunnel stream: that
//! ztunnel's log coverage is the pod's (a ztunnel restarted or rotated
//! inside the window leaves the workloads of its node insufficient, named).

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};

use super::{KubeError, Target, target_of};

/// Where the ztunnel DaemonSet runs and how its pods are labelled (Istio's chart).
pub const ZTUNNEL_NAMESPACE: &str = "istio-system";
pub const ZTUNNEL_SELECTOR: &str = "app=ztunnel";
/// The Role in `deploy/rbac-ztunnel.yaml` that grants reading ztunnel's logs.
pub const ZTUNNEL_ROLE: &str =
    "deploy/rbac-ztunnel.yaml (Role strictly-ztunnel: list pods and get pods/log in istio-system)";

/// A selected pod in ambient mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmbientPod {
    pub namespace: String,
    pub name: String,
    /// `spec.nodeName`: whose ztunnel logs its connections.
    pub node: Option<String>,
}

/// Returns true if and only if `pod` is enrolled in ambient mode and has no sidecar.
pub fn is_ambient(pod: &Pod) -> bool {
    let label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("istio.io/dataplane-mode"))
        .map(String::as_str);
    let redirected = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("ambient.istio.io/redirection"))
        .is_some_and(|v| v == "enabled");
    // `none` opts a pod out of its namespace's ambient mode.
    label != Some("none")
        && (label == Some("ambient") || redirected)
        && !super::has_container(pod, "istio-proxy")
}

/// The ambient pods among `pods`.
pub fn ambient_pods(pods: &[Pod]) -> Vec<AmbientPod> {
    let mut out: Vec<AmbientPod> = pods
        .iter()
        .filter(|p| is_ambient(p))
        .map(|p| AmbientPod {
            namespace: p.metadata.namespace.clone().unwrap_or_default(),
            name: p.metadata.name.clone().unwrap_or_default(),
            node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        })
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// A ztunnel pod to read, and the node it serves.
#[derive(Clone, Debug)]
pub struct ZtunnelTarget {
    pub target: Target,
    pub node: Option<String>,
}

/// Lists the ztunnel pods (all nodes); a 403 names the Role that grants it.
pub async fn ztunnels(client: &Client) -> Result<Vec<ZtunnelTarget>, KubeError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ZTUNNEL_NAMESPACE);
    let list = api
        .list(&ListParams::default().labels(ZTUNNEL_SELECTOR))
        .await
        .map_err(|e| forbidden_names_role(KubeError::from_kube("list ztunnel pods", e)))?;
    let mut out: Vec<ZtunnelTarget> = list
        .items
        .iter()
        .filter_map(|p| {
            // Istio's chart names the container istio-proxy; some builds call it ztunnel.
            let mut target = target_of(p, "istio-proxy").or_else(|| target_of(p, "ztunnel"))?;
            // A ztunnel that started inside the window replaced one whose log
            // is gone (a DaemonSet rollout, a node's restart): unlike a new
            // replica, its node's pods were served before it. No start-time exception.
            let mut meta = (*target.meta).clone();
            meta.container_started_ms = None;
            target.meta = std::sync::Arc::new(meta);
            Some(ZtunnelTarget {
                target,
                node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            })
        })
        .collect();
    out.sort_by_key(|z| z.target.name());
    Ok(out)
}

/// A 403 on istio-system is the ztunnel Role missing: say which.
pub fn forbidden_names_role(e: KubeError) -> KubeError {
    match e {
        KubeError::Forbidden { message } => KubeError::Forbidden {
            message: format!("{message}; reading ztunnel logs (ambient mode) needs {ZTUNNEL_ROLE}"),
        },
        other => other,
    }
}

/// Which destinations a cluster report is about: the selected namespaces
/// (and workloads). ztunnel logs every namespace's connections on its node,
/// so ambient destinations outside the selection are left out of the report.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `None`: all namespaces.
    pub namespaces: Option<Vec<String>>,
    /// Workload names asked for (empty: all).
    pub workloads: Vec<String>,
}

impl Scope {
    /// Returns true if and only if destination `ns/name` lies in the scope.
    pub fn keeps(&self, destination: &str) -> bool {
        let (ns, name) = destination.split_once('/').unwrap_or(("", destination));
        self.namespaces
            .as_ref()
            .is_none_or(|nss| nss.iter().any(|n| n == ns))
            && (self.workloads.is_empty() || self.workloads.iter().any(|w| w == name))
    }
}
