//! The Kubernetes API as a source: which istio-proxy containers to read, and their logs.
//!
//! Reads one straight line as kube-rs examples do: client → `Api<Pod>` →
//! list (selection) → `log_stream` per container → chunks. What the API says
//! about each pod (namespace, owning workload, container start) travels with
//! its chunks as [`SourceMeta`], so attribution never guesses for this source.
//!
//! This file selects the containers; one log reader ([`log`]) serves both
//! drivers: the one-shot read of `report` ([`snapshot`]) and the follow of
//! `watch` ([`follow`], fed by the pod watcher [`pods`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::SourceMeta;

pub mod follow;
pub mod log;
pub mod pods;
pub mod snapshot;
pub mod ztunnel;

pub use snapshot::{ClusterRead, LogRequest, log_requests, read_log, read_logs};

/// How to reach the cluster (`--kubeconfig`, `--context`; in-cluster otherwise).
#[derive(Clone, Debug, Default)]
pub struct KubeAccess {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

/// Which pods and container to read (`-n`, `-A`, `-l`, workload arguments, `-c`).
#[derive(Clone, Debug)]
pub struct KubeSelection {
    /// Empty: the context's namespace (unless `all_namespaces`).
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    pub workloads: Vec<WorkloadRef>,
    pub container: String,
}

impl Default for KubeSelection {
    fn default() -> Self {
        KubeSelection {
            namespaces: Vec::new(),
            all_namespaces: false,
            selector: None,
            workloads: Vec::new(),
            container: "istio-proxy".into(),
        }
    }
}

/// A workload named on the command line: `deploy/web-api`, `NS/statefulset/db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadRef {
    pub namespace: Option<String>,
    pub kind: WorkloadKind,
    pub name: String,
}

/// The kinds of workload a pod can belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
}

impl WorkloadRef {
    /// Parses `KIND/NAME` or `NS/KIND/NAME` with kubectl's kind names and short forms.
    ///
    /// ```
    /// use strictly::source::kube::{WorkloadKind, WorkloadRef};
    /// let w = WorkloadRef::parse("istioinaction/deploy/web-api").unwrap();
    /// assert_eq!((w.namespace.as_deref(), w.kind, w.name.as_str()), (Some("istioinaction"), WorkloadKind::Deployment, "web-api"));
    /// assert!(WorkloadRef::parse("web-api.log").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<WorkloadRef> {
        let parts: Vec<&str> = text.split('/').collect();
        let (namespace, kind, name) = match parts.as_slice() {
            [kind, name] => (None, *kind, *name),
            [ns, kind, name] => (Some(ns.to_string()), *kind, *name),
            _ => return None,
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deploy" | "deployment" | "deployments" | "deployment.apps" => WorkloadKind::Deployment,
            "sts" | "statefulset" | "statefulsets" | "statefulset.apps" => {
                WorkloadKind::StatefulSet
            }
            "ds" | "daemonset" | "daemonsets" | "daemonset.apps" => WorkloadKind::DaemonSet,
            "job" | "jobs" | "job.batch" => WorkloadKind::Job,
            "po" | "pod" | "pods" => WorkloadKind::Pod,
            _ => return None,
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        (valid(name) && namespace.as_deref().is_none_or(valid)).then(|| WorkloadRef {
            namespace,
            kind,
            name: name.to_string(),
        })
    }
}

pub use super::kube_error::KubeError;
use super::kube_error::{plain, remember_server, unknown_context};

/// Connects: `--kubeconfig`/`--context`, else `$KUBECONFIG`/`~/.kube/config`, else in-cluster.
/// Returns the client and the namespace of the context.
pub async fn client(access: &KubeAccess) -> Result<(Client, String), KubeError> {
    let options = KubeConfigOptions {
        context: access.context.clone(),
        ..Default::default()
    };
    let config = match &access.kubeconfig {
        Some(path) => {
            let shown = path.display().to_string();
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| KubeError::Config(format!("--kubeconfig {shown}: {}", plain(&e))))?;
            check_context(access.context.as_deref(), &shown, &kubeconfig)?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| KubeError::Config(format!("--kubeconfig {shown}: {}", plain(&e))))?
        }
        None if access.context.is_some() => {
            let shown = std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into());
            let kubeconfig = Kubeconfig::read()
                .map_err(|e| KubeError::Config(format!("--context: {shown}: {}", plain(&e))))?;
            check_context(access.context.as_deref(), &shown, &kubeconfig)?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| KubeError::Config(format!("--context: {}", plain(&e))))?
        }
        None => Config::infer()
            .await
            .map_err(|e| KubeError::Config(format!("no cluster: {}", plain(&e))))?,
    };
    remember_server(&config.cluster_url.to_string());
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config)
        .map_err(|e| KubeError::Config(format!("cluster client: {}", plain(&e))))?;
    Ok((client, namespace))
}

/// `--context NAME` must name a context of the kubeconfig: say which exist.
fn check_context(
    context: Option<&str>,
    file: &str,
    kubeconfig: &Kubeconfig,
) -> Result<(), KubeError> {
    let Some(name) = context else { return Ok(()) };
    if kubeconfig.contexts.iter().any(|c| c.name == name) {
        return Ok(());
    }
    let names: Vec<String> = kubeconfig.contexts.iter().map(|c| c.name.clone()).collect();
    Err(unknown_context(name, file, &names))
}

/// One container to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub meta: Arc<SourceMeta>,
    pub kind: WorkloadKind,
    pub restart_count: i32,
    /// When the previous container (if any) started: the previous log reaches back there.
    pub previous_started_ms: Option<i64>,
    /// Returns true if and only if the container is running (a log can be followed).
    pub running: bool,
}

impl Target {
    /// `NS/pod/NAME/CONTAINER`: how inputs and errors name it.
    pub fn name(&self) -> String {
        format!(
            "{}/pod/{}/{}",
            self.meta.namespace, self.meta.pod, self.meta.container
        )
    }
}

/// Who holds an address: for naming plaintext callers (issue 4 item 9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// `namespace/pod`, or `node/NAME` for a node's address.
    pub pod: String,
    /// `namespace/workload` (absent for nodes).
    pub workload: Option<String>,
    /// Returns true if and only if the pod runs an istio-proxy sidecar.
    pub sidecar: bool,
}

/// Pod and node addresses of the pods strictly could list.
pub type PeerIndex = HashMap<String, PeerInfo>;

/// The owning workload of a pod: owner references, else the pod itself.
/// A ReplicaSet's name is its Deployment's plus `-<pod-template-hash>`: no
/// extra API call (and no extra RBAC) is needed to name the Deployment.
pub fn workload_of(pod: &Pod) -> (WorkloadKind, String) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .or_else(|| pod.metadata.owner_references.iter().flatten().next());
    let Some(owner) = owner else {
        return (WorkloadKind::Pod, name);
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            let deployment = match hash.and_then(|h| owner.name.strip_suffix(h.as_str())) {
                Some(d) => d.trim_end_matches('-').to_string(),
                None => owner
                    .name
                    .rsplit_once('-')
                    .map_or(owner.name.clone(), |(d, _)| d.to_string()),
            };
            (WorkloadKind::Deployment, deployment)
        }
        "StatefulSet" => (WorkloadKind::StatefulSet, owner.name.clone()),
        "DaemonSet" => (WorkloadKind::DaemonSet, owner.name.clone()),
        "Job" => (WorkloadKind::Job, owner.name.clone()),
        // Another controller (a CloneSet, a Knative revision, an operator's
        // own kind) still names the workload better than the pod does.
        _ => (WorkloadKind::Pod, owner.name.clone()),
    }
}

/// Returns true if and only if the pod declares `container` (as a container or a native sidecar).
pub fn has_container(pod: &Pod, container: &str) -> bool {
    pod.spec.as_ref().is_some_and(|spec| {
        spec.containers.iter().any(|c| c.name == container)
            || spec
                .init_containers
                .iter()
                .flatten()
                .any(|c| c.name == container)
    })
}

/// The target for `container` of `pod`, if the pod has it.
pub fn target_of(pod: &Pod, container: &str) -> Option<Target> {
    if !has_container(pod, container) {
        return None;
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let (kind, workload) = workload_of(pod);
    let status = pod.status.as_ref();
    let cs = status.and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .find(|c| c.name == container)
    });
    let state = cs.and_then(|c| c.state.as_ref());
    let started_ms = state
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(|t| t.0.as_millisecond());
    let previous_started_ms = cs
        .and_then(|c| c.last_state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.started_at.as_ref())
        .map(|t| t.0.as_millisecond());
    let restart_count = cs.map_or(0, |c| c.restart_count);
    Some(Target {
        meta: Arc::new(SourceMeta {
            namespace,
            pod: pod.metadata.name.clone().unwrap_or_default(),
            container: container.to_string(),
            workload: Some(workload),
            container_started_ms: if restart_count > 0 {
                previous_started_ms.or(started_ms)
            } else {
                started_ms
            },
            labels: pod.metadata.labels.clone().unwrap_or_default(),
        }),
        kind,
        restart_count,
        previous_started_ms,
        running: state.is_some_and(|s| s.running.is_some()),
    })
}

/// Returns true if and only if `target` is one of the named workloads (or none were named).
pub fn wanted(target: &Target, workloads: &[WorkloadRef]) -> bool {
    workloads.is_empty()
        || workloads.iter().any(|w| {
            w.namespace
                .as_deref()
                .is_none_or(|ns| ns == target.meta.namespace)
                && if w.kind == WorkloadKind::Pod {
                    w.name == target.meta.pod
                } else {
                    w.kind == target.kind && Some(&w.name) == target.meta.workload.as_ref()
                }
        })
}

/// The namespaces a selection reads (`None`: all).
pub fn namespaces(selection: &KubeSelection, default_namespace: &str) -> Option<Vec<String>> {
    if selection.all_namespaces {
        return None;
    }
    let mut ns: Vec<String> = selection.namespaces.clone();
    ns.extend(
        selection
            .workloads
            .iter()
            .filter_map(|w| w.namespace.clone()),
    );
    if ns.is_empty() {
        ns.push(default_namespace.to_string());
    }
    ns.sort();
    ns.dedup();
    Some(ns)
}

/// Lists the selected pods' containers, and the addresses of every pod it may list.
pub async fn select(
    client: &Client,
    selection: &KubeSelection,
    default_namespace: &str,
) -> Result<(Vec<Target>, PeerIndex), KubeError> {
    let selected = select_all(client, selection, default_namespace).await?;
    if selected.targets.is_empty() {
        let mut why = selected.nothing_selected;
        if !selected.ambient.is_empty() {
            // Said, so an ambient namespace is not taken for one without a mesh.
            why.push_str(&format!(
                "; {} pod{} in ambient mode: watch reads sidecars only, judge them with strictly report",
                selected.ambient.len(),
                if selected.ambient.len() == 1 { " is" } else { "s are" }
            ));
        }
        return Err(KubeError::NothingSelected(why));
    }
    Ok((selected.targets, selected.peers))
}

/// What a selection found: sidecar containers, ambient pods, addresses.
pub struct Selected {
    pub targets: Vec<Target>,
    /// Selected pods in ambient mode (no sidecar; their node's ztunnel logs them).
    pub ambient: Vec<ztunnel::AmbientPod>,
    pub peers: PeerIndex,
    /// Why there is nothing to read, for a caller that needs sidecars.
    pub nothing_selected: String,
}

/// [`select`], ambient pods included: an error only when neither a sidecar
/// nor an ambient pod was selected.
pub async fn select_all(
    client: &Client,
    selection: &KubeSelection,
    default_namespace: &str,
) -> Result<Selected, KubeError> {
    let mut params = ListParams::default();
    if let Some(l) = &selection.selector {
        params = params.labels(l);
    }
    let mut pods: Vec<Pod> = Vec::new();
    match namespaces(selection, default_namespace) {
        None => {
            let api: Api<Pod> = Api::all(client.clone());
            let list = api
                .list(&params)
                .await
                .map_err(|e| KubeError::from_kube("list pods in all namespaces", e))?;
            pods.extend(list.items);
        }
        Some(nss) => {
            for ns in nss {
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let list = api
                    .list(&params)
                    .await
                    .map_err(|e| KubeError::from_kube(format!("list pods in {ns}"), e))?;
                pods.extend(list.items);
            }
        }
    }
    let with_container: Vec<Target> = pods
        .iter()
        .filter_map(|p| target_of(p, &selection.container))
        .collect();
    let with_container_count = with_container.len();
    let mut targets: Vec<Target> = with_container
        .into_iter()
        .filter(|t| wanted(t, &selection.workloads))
        .collect();
    let why_nothing = nothing_selected(
        selection,
        default_namespace,
        pods.len(),
        with_container_count,
    );
    let ambient: Vec<ztunnel::AmbientPod> = ztunnel::ambient_pods(&pods)
        .into_iter()
        .filter(|a| {
            selection.workloads.is_empty()
                || pods
                    .iter()
                    .find(|p| {
                        p.metadata.name.as_deref() == Some(a.name.as_str())
                            && p.metadata.namespace.as_deref() == Some(a.namespace.as_str())
                    })
                    .and_then(target_of_any)
                    .is_some_and(|t| wanted(&t, &selection.workloads))
        })
        .collect();
    if targets.is_empty() && ambient.is_empty() {
        return Err(KubeError::NothingSelected(why_nothing));
    }
    targets.sort_by_key(Target::name);
    // Callers may live anywhere: index every pod strictly may list (a
    // namespace-scoped Role sees only its namespace; that is not an error).
    let everyone = match Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => list.items,
        Err(_) => pods,
    };
    Ok(Selected {
        targets,
        ambient,
        peers: peer_index(&everyone),
        nothing_selected: why_nothing,
    })
}

/// A pod as a [`Target`] of its first container: for matching workload arguments.
fn target_of_any(pod: &Pod) -> Option<Target> {
    let first = pod.spec.as_ref()?.containers.first()?.name.clone();
    target_of(pod, &first)
}

/// Why a selection has nothing to read, naming what was asked (issue 7 item 24):
/// no pod at all is not the same problem as pods without the container.
pub fn nothing_selected(
    selection: &KubeSelection,
    default_namespace: &str,
    listed: usize,
    with_container: usize,
) -> String {
    let mut asked = match namespaces(selection, default_namespace) {
        None => "all namespaces".to_string(),
        Some(ns) if ns.len() == 1 => format!("namespace {}", ns[0]),
        Some(ns) => format!("namespaces {}", ns.join(", ")),
    };
    if let Some(l) = &selection.selector {
        asked.push_str(&format!(", selector {l}"));
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if listed == 0 {
        return format!("no pods selected ({asked})");
    }
    if with_container == 0 {
        return format!(
            "{listed} pod{} selected ({asked}), none with a container named {} (no sidecar injected? -c names another container)",
            plural(listed),
            selection.container
        );
    }
    let named: Vec<String> = selection
        .workloads
        .iter()
        .map(|w| {
            let kind = match w.kind {
                WorkloadKind::Deployment => "deploy",
                WorkloadKind::StatefulSet => "statefulset",
                WorkloadKind::DaemonSet => "daemonset",
                WorkloadKind::Job => "job",
                WorkloadKind::Pod => "pod",
            };
            match &w.namespace {
                Some(ns) => format!("{ns}/{kind}/{}", w.name),
                None => format!("{kind}/{}", w.name),
            }
        })
        .collect();
    format!(
        "no pods of {} selected ({asked}; {with_container} other pod{} with {} there)",
        named.join(", "),
        plural(with_container),
        selection.container
    )
}

/// Maps pod and node addresses to who holds them.
pub fn peer_index(pods: &[Pod]) -> PeerIndex {
    let mut index = PeerIndex::new();
    for pod in pods {
        let Some(status) = &pod.status else { continue };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let (Some(host), Some(node)) = (
            &status.host_ip,
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ) {
            index.entry(host.clone()).or_insert(PeerInfo {
                pod: format!("node/{node}"),
                workload: None,
                sidecar: false,
            });
        }
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if host_network {
            continue;
        }
        let (_, workload) = workload_of(pod);
        for ip in status
            .pod_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .chain(status.pod_ip.clone())
        {
            index.insert(
                ip,
                PeerInfo {
                    pod: format!("{ns}/{name}"),
                    workload: Some(format!("{ns}/{workload}")),
                    sidecar: has_container(pod, "istio-proxy"),
                },
            );
        }
    }
    index
}
