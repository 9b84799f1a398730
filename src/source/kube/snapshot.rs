//! `report` from the Kubernetes API: every selected log read once, as a [`Source`].
//!
//! Connect → select the pods → read every current log (and the previous
//! container's where it restarted) since a point in time, concurrently,
//! through the one log reader ([`super::log`]). A log that cannot be read is
//! declared failed, so its replica counts as not covered; missing RBAC is
//! not one replica's bad luck and ends the run.

use std::sync::Arc;

use futures::StreamExt;
use kube::Client;

use super::log::{self, LogRead, Since};
use super::{KubeAccess, KubeError, KubeSelection, PeerIndex, Target};
use crate::source::lines::{DEFAULT_MAX_LINE, LineCutter};
use crate::source::{Chunk, DeclaredStream, Source, SourceMeta};

/// Bytes per chunk read from a log stream before it is handed on.
const CHUNK_BYTES: usize = 256 * 1024;

/// One log to fetch: a target's current or previous container.
#[derive(Clone, Debug)]
pub struct LogRequest {
    pub target: Target,
    pub previous: bool,
    /// Index of this log among the run's inputs.
    pub input: u32,
}

impl LogRequest {
    pub fn name(&self) -> String {
        if self.previous {
            format!("{} (previous)", self.target.name())
        } else {
            self.target.name()
        }
    }
}

/// The logs a one-shot report reads: every target's current log, and the
/// previous container's where it restarted.
pub fn log_requests(targets: &[Target]) -> Vec<LogRequest> {
    let mut out = Vec::new();
    for t in targets {
        if t.restart_count > 0 {
            out.push(LogRequest {
                target: t.clone(),
                previous: true,
                input: out.len() as u32,
            });
        }
        out.push(LogRequest {
            target: t.clone(),
            previous: false,
            input: out.len() as u32,
        });
    }
    out
}

/// Reads one log (no follow) from `since_seconds` ago, sending line-aligned chunks.
pub async fn read_log(
    client: &Client,
    request: &LogRequest,
    since_seconds: Option<i64>,
    out: &tokio::sync::mpsc::Sender<Chunk>,
) -> Result<(), KubeError> {
    let meta = &request.target.meta;
    let read = LogRead {
        previous: request.previous,
        follow: false,
        since: since_seconds.map_or(Since::All, Since::Seconds),
    };
    // A container that never writes a newline costs `DEFAULT_MAX_LINE`, not
    // its whole log, and its cut line counts malformed.
    let cutter =
        LineCutter::new(request.input, CHUNK_BYTES, DEFAULT_MAX_LINE).with_meta(Arc::clone(meta));
    let what = || format!("read logs of {}", request.name());
    let mut body = log::open(client, meta, read, cutter)
        .await
        .map_err(|e| KubeError::from_kube(what(), e))?;
    loop {
        let n = body.fill().await.map_err(|e| KubeError::Api {
            what: what(),
            message: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        if body.cutter.whole_bytes() >= CHUNK_BYTES
            && let Some(chunk) = body.cutter.take_chunk()
            && out.send(chunk).await.is_err()
        {
            return Ok(());
        }
    }
    body.cutter.finish();
    if let Some(chunk) = body.cutter.take_chunk() {
        let _ = out.send(chunk).await;
    }
    Ok(())
}

/// Reads every log concurrently (at most `max_requests` at once), calling
/// `emit` for each chunk on the calling task; returns the logs that failed.
pub async fn read_logs(
    client: &Client,
    requests: &[LogRequest],
    since_seconds: Option<i64>,
    max_requests: usize,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Vec<(LogRequest, KubeError)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(16);
    let requests = requests.to_vec();
    let client = client.clone();
    let reads = tokio::spawn(async move {
        futures::stream::iter(requests)
            .map(move |r| {
                let tx = tx.clone();
                let client = client.clone();
                async move {
                    let result = read_log(&client, &r, since_seconds, &tx).await;
                    result.err().map(|e| (r, e))
                }
            })
            .buffer_unordered(max_requests.max(1))
            .filter_map(|failed| async move { failed })
            .collect::<Vec<_>>()
            .await
    });
    while let Some(chunk) = rx.recv().await {
        if !emit(chunk) {
            break;
        }
    }
    reads.await.unwrap_or_default()
}

/// The selected logs of a cluster, read once: `report`'s Kubernetes source.
pub struct ClusterRead {
    /// The reads are async; the pipeline calls [`Source::read`] on a plain thread.
    runtime: tokio::runtime::Runtime,
    client: Client,
    requests: Vec<LogRequest>,
    since_seconds: Option<i64>,
    max_requests: usize,
    /// Who holds which address, for naming plaintext callers.
    pub peers: PeerIndex,
    /// Selected pods in ambient mode, and the ztunnels (one per node) whose
    /// logs are read for them (their requests follow the sidecars').
    pub ambient: Vec<super::ztunnel::AmbientPod>,
    pub ztunnels: Vec<super::ztunnel::ZtunnelTarget>,
    /// The context's namespace (the selection's when it names none).
    pub default_namespace: String,
    failed: Vec<(LogRequest, KubeError)>,
}

impl ClusterRead {
    /// The pods read, by stream name (`NS/pod/NAME/CONTAINER`): their labels make `policy`'s selectors.
    pub fn pods(&self) -> std::collections::BTreeMap<String, Arc<SourceMeta>> {
        self.requests
            .iter()
            .map(|r| (r.target.name(), Arc::clone(&r.target.meta)))
            .collect()
    }

    /// Connects and selects the containers to read (nothing is read yet):
    /// a selection with nothing to read, an unknown context or missing RBAC fail here.
    pub fn connect(
        access: &KubeAccess,
        selection: &KubeSelection,
        since_seconds: Option<i64>,
        max_requests: usize,
    ) -> Result<ClusterRead, KubeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| KubeError::Config(format!("cannot start the async runtime: {e}")))?;
        let (client, default_ns) = runtime.block_on(super::client(access))?;
        let selected = runtime.block_on(super::select_all(&client, selection, &default_ns))?;
        let ztunnels = if selected.ambient.is_empty() {
            Vec::new()
        } else {
            runtime.block_on(super::ztunnel::ztunnels(&client))?
        };
        let mut targets = selected.targets;
        targets.extend(ztunnels.iter().map(|z| z.target.clone()));
        Ok(ClusterRead {
            runtime,
            client,
            requests: log_requests(&targets),
            since_seconds,
            max_requests,
            peers: selected.peers,
            ambient: selected.ambient,
            ztunnels,
            default_namespace: default_ns,
            failed: Vec::new(),
        })
    }
}

impl Source for ClusterRead {
    type Error = KubeError;

    fn inputs(&self) -> Vec<String> {
        self.requests.iter().map(LogRequest::name).collect()
    }

    fn read(&mut self, emit: &mut dyn FnMut(Chunk) -> bool) -> Result<(), KubeError> {
        self.failed = self.runtime.block_on(read_logs(
            &self.client,
            &self.requests,
            self.since_seconds,
            self.max_requests,
            emit,
        ));
        // Missing RBAC is not one replica's bad luck: say which permission is missing.
        match self.failed.iter().find(|(_, e)| !e.is_transient()) {
            Some((r, KubeError::Forbidden { message })) => {
                let e = KubeError::Forbidden {
                    message: message.clone(),
                };
                let ztunnel = self.ztunnels.iter().any(|z| z.target.meta == r.target.meta);
                Err(if ztunnel {
                    super::ztunnel::forbidden_names_role(e)
                } else {
                    e
                })
            }
            Some((_, other)) => Err(KubeError::Config(other.to_string())),
            None => Ok(()),
        }
    }

    /// Every replica counts, read or not: a log that failed leaves its workload insufficient.
    fn streams(&self) -> Vec<DeclaredStream> {
        self.requests
            .iter()
            .map(|r| DeclaredStream {
                input: r.input,
                meta: Arc::clone(&r.target.meta),
                failure: self
                    .failed
                    .iter()
                    .find(|(f, _)| f.input == r.input)
                    .map(|(_, e)| e.to_string()),
            })
            .collect()
    }
}

impl ClusterRead {
    /// Declares each ambient pod against its node's ztunnel stream, after the
    /// read: that log's coverage is the pod's, and a node without a ztunnel
    /// to read leaves the pod's workload insufficient, named.
    pub fn declare_ambient(&self, aggregator: &mut crate::aggregate::Aggregator) {
        for pod in &self.ambient {
            let ztunnel = pod
                .node
                .as_ref()
                .and_then(|node| self.ztunnels.iter().find(|z| z.node.as_ref() == Some(node)));
            let stream = ztunnel.and_then(|z| {
                // The current log's request: the stream is the pod's, previous log or not.
                self.requests
                    .iter()
                    .rfind(|r| r.target.meta == z.target.meta)
                    .map(|r| (r.input, r.name(), std::sync::Arc::clone(&r.target.meta)))
            });
            match stream {
                Some((input, name, meta)) => {
                    aggregator.declare_ambient(&pod.namespace, &pod.name, input, &name, &meta, None)
                }
                None => {
                    let node = pod.node.as_deref().unwrap_or("(unscheduled)");
                    let meta = crate::source::SourceMeta {
                        namespace: super::ztunnel::ZTUNNEL_NAMESPACE.into(),
                        pod: format!("ztunnel on node {node}"),
                        container: "istio-proxy".into(),
                        ..Default::default()
                    };
                    aggregator.declare_ambient(
                        &pod.namespace,
                        &pod.name,
                        u32::MAX,
                        "-",
                        &meta,
                        Some(format!("no ztunnel pod found on node {node}")),
                    )
                }
            }
        }
    }
}
