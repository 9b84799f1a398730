//! The Kubernetes API as a source: which istio-proxy containers to read, and their logs.
//!
//! Reads one straight line as kube-rs examples do: client → `Api<Pod>` →
//! list (selection) → `log_stream` per container → chunks. What the API says
//! about each pod (namespace, owning workload, container start) travels with
//! its chunks as [`crate::source::SourceMeta`], so attribution never guesses
//! for this source.
//!
//! This file connects and selects the containers ([`target`]: what a pod is
//! to strictly); one log reader ([`log`]) serves both drivers: the one-shot
//! read of `report` ([`snapshot`]) and the follow of `watch` ([`follow`],
//! fed by the pod watcher [`pods`]).

use std::path::PathBuf;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

pub mod follow;
pub mod log;
pub mod pods;
pub mod snapshot;
pub mod target;
pub mod ztunnel;

pub use snapshot::{ClusterRead, LogRequest, log_requests, read_log, read_logs};
pub use target::{
    PeerIndex, PeerInfo, Target, WorkloadKind, WorkloadRef, has_container, peer_index, target_of,
    wanted, workload_of,
};

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
