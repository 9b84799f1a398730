//! A fake Kubernetes API server: pods, pod watches and container logs on
//! 127.0.0.1, in the real wire format, for the real kube client and for the
//! `strictly` binary run by `assert_cmd`.
//!
//! The server runs in its own thread with its own tokio runtime, so it serves
//! `#[tokio::test]`s and plain `#[test]`s alike; every control below is a
//! plain `&self` method, callable from any thread while clients are connected.
//!
//! # API
//!
//! ```text
//! FakeCluster::start(scenario: &Path) -> FakeCluster      // fixtures/kube/*.yaml, see kube_fixture()
//! FakeCluster::from_yaml(scenario: &str) -> FakeCluster
//! FakeCluster::empty() -> FakeCluster
//! url() -> String                                          // http://127.0.0.1:PORT
//! kubeconfig(dir) -> PathBuf                                // dir/kubeconfig: contexts `fake` (current), `other` (a closed port)
//! kubeconfig_with_namespace(dir, ns) -> PathBuf             // same, context `fake` has a namespace
//! kubeconfig_yaml() -> String
//! async client() -> kube::Client                            // through Kubeconfig::from_yaml + Config::from_custom_kubeconfig
//!
//! add_pod(FakePod)                                          // ADDED
//! delete_pod(ns, name)                                      // MODIFIED (deletionTimestamp), follows of the pod end, DELETED
//! restart_container(ns, pod, container)                     // restartCount+1, startedAt = now, log -> previous; follows end; MODIFIED
//! waiting_to_start(ns, pod, container)                      // state.waiting PodInitializing: logs get 400; follows end; MODIFIED
//! append_log(ns, pod, container, &["RFC3339 TEXT", ..])     // open follows receive the lines at once
//! append_log_bytes(ns, pod, container, at, bytes)           // one line of arbitrary bytes (invalid UTF-8)
//! end_follows(ns, pod)                                      // open follow bodies end cleanly (EOF)
//! stall_follows(ns, pod)                                    // open follows get nothing more until end_follows; new follows are normal
//! expire_watches()                                          // open watches get ERROR 410 Expired and end; older resourceVersions get 410 too
//! forbid(verb, resource, namespace: Option<&str>)           // 403; verb get|list|watch|*, resource pods|pods/log, None = cluster scope, Some("*") = every namespace
//! allow_all()
//! fail_next(path_substring, status)                         // one-shot 429/500/503/504 for the first request whose "path?query" contains it
//! fail_next_n(path_substring, status, count)                // the next `count` such requests (kube retries 429/503/504 itself)
//! set_now(rfc3339) / advance(Duration) / now() -> String    // the clock sinceSeconds and restarts use
//! set_bookmark_interval(Duration)                           // default 1 s
//! requests() -> Vec<RecordedRequest> / clear_requests()
//! open_follows(ns, pod) -> usize / open_watches() -> usize
//! pod(ns, name) -> Option<serde_json::Value>                // the Pod as a GET returns it
//! wait_until(timeout, cond) -> bool / wait_until_async(timeout, cond) -> bool
//! ```
//!
//! Misusing a control (an unknown pod, a malformed timestamp) panics: these
//! are test bugs, not cluster states.
//!
//! # Scenario files (`fixtures/kube/*.yaml`)
//!
//! ```yaml
//! now: 2026-11-20T12:00:00Z            # optional; default: newest log line + 1 s, else 2026-11-20T12:00:00Z
//! pods:
//!   - namespace: istioinaction
//!     name: web-api-7d9f8c6b5-x2x4z
//!     labels: {app: web-api, pod-template-hash: 7d9f8c6b5}
//!     annotations: {}                  # optional
//!     owner: {kind: ReplicaSet, name: web-api-7d9f8c6b5}   # optional; none for a bare pod
//!     podIP: 10.44.1.11
//!     hostIP: 10.128.0.11
//!     nodeName: gke-lab-default-pool-1
//!     serviceAccount: web-api          # optional, default "default"
//!     phase: Running                   # optional; default Running (Pending if every container waits)
//!     createdAt: 2026-11-19T07:59:50Z  # optional; default: 10 s before the earliest container start
//!     containers:
//!       - name: istio-proxy
//!         image: docker.io/istio/proxyv2:1.24.1   # optional
//!         startedAt: 2026-11-19T08:00:00Z
//!         restartCount: 1              # optional; at least 1 when `previous` is given
//!         state: running               # or waiting (+ reason:, default ContainerCreating)
//!         init: false                  # true: a native sidecar (initContainers, restartPolicy Always)
//!         log: |                       # one line per log line: "<RFC3339(Nano) timestamp> <text>"
//!           2026-11-20T11:30:00.012345678Z [2026-11-20T11:30:00.000Z] "GET / HTTP/1.1" 200 ...
//!         previous: |                  # optional: the previous (terminated) container's log
//!           2026-11-20T11:00:00.5Z ...
//! ```
//!
//! Timestamps are written back in Go's RFC3339Nano (trailing zeros of the
//! fraction dropped), as kubelet does.
//!
//! # Wire format
//!
//! - `GET /api/v1/pods`, `GET /api/v1/namespaces/{ns}/pods`: `PodList` with
//!   `metadata.resourceVersion`; items without kind/apiVersion, in key order
//!   (namespace, name), as the real server sends them. `labelSelector`
//!   (`=`, `==`, `!=`, `in`, `notin`, `k`, `!k`), `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`, `spec.nodeName`,
//!   `spec.serviceAccountName`, `spec.restartPolicy`, `status.phase`,
//!   `status.podIP`; others are 400), `limit`/`continue` (the continue token
//!   keeps the first page's resourceVersion). `Accept: ...;as=PartialObjectMetadata...`
//!   gets metadata-only lists and events.
//! - The same paths with `watch=true|1`: 200, chunked, one
//!   `{"type":..,"object":..}` per line. `resourceVersion` absent or `0`, or
//!   `sendInitialEvents=true`: ADDED for every matching pod first (then a
//!   BOOKMARK annotated `k8s.io/initial-events-end` for streaming lists);
//!   otherwise every event after that resourceVersion is replayed from the
//!   history. With `allowWatchBookmarks=true`, a BOOKMARK follows the initial
//!   events and one comes every bookmark interval. `timeoutSeconds` ends the
//!   body (default 1800). A resourceVersion older than the last
//!   `expire_watches()` gets 200 with one ERROR event (410, reason Expired,
//!   `too old resource version: OLD (NEW)`), as the watch cache answers.
//! - `GET /api/v1/namespaces/{ns}/pods/{name}`: the Pod, or 404 Status.
//! - `GET /api/v1/namespaces/{ns}/pods/{name}/log`: `text/plain`, one line per
//!   log line, `<RFC3339Nano> <text>` with `timestamps=true`; `container`,
//!   `sinceTime` / `sinceSeconds` (lines at or after), `tailLines`,
//!   `limitBytes`, `previous`, `follow` (open until `end_follows`, pod deletion,
//!   restart or waiting). Errors are kubelet's / the apiserver's messages as
//!   400 Status; a waiting container that ran before serves its previous log,
//!   as kubelet does in CrashLoopBackOff.
//! - Every request must carry `Authorization: Bearer fake-token` (else 401);
//!   non-GET methods get 405; unknown paths 404.
//!
//! What kube-rs 5 sends (recorded by the self-tests in `tests/fake_apiserver.rs`):
//!
//! - `watcher` with the default `Config` (ListWatch, `ListSemantic::MostRecent`,
//!   page size 500, bookmarks on): `GET .../pods?&limit=500[&labelSelector=..]`,
//!   then `GET .../pods?&watch=true&timeoutSeconds=290[&labelSelector=..]&allowWatchBookmarks=true&resourceVersion=N`
//!   with N from the list (later: the last event's or bookmark's); after a
//!   410 it lists again. `.streaming_lists()` instead opens
//!   `...&watch=true&timeoutSeconds=290[&labelSelector=..]&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&resourceVersion=0`
//!   and needs the `k8s.io/initial-events-end` bookmark before `InitDone`.
//! - `log_stream` / `logs`: `.../log?&container=istio-proxy[&follow=true][&limitBytes=N][&previous=true][&sinceSeconds=N|&sinceTime=2026-11-20T11%3A50%3A00Z][&tailLines=N][&timestamps=true]`
//!   (`sinceTime` rounded to whole seconds; `sinceSeconds` wins if both are set).
//! - The client retries 429, 503 and 504 by itself (up to 15 times, from 5 ms
//!   doubling, honouring `Retry-After`; this fake sends `Retry-After: 1` with
//!   429): a single injected 429/503/504 is invisible to the caller, use 500
//!   or [`FakeCluster::fail_next_n`] to make one surface.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State as AxumState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

/// The bearer token the kubeconfig carries; requests without it get 401.
pub const TOKEN: &str = "fake-token";
/// The clock of a scenario that names no `now` and has no log lines.
pub const DEFAULT_NOW: &str = "2026-11-20T12:00:00Z";
/// The user that 403 messages name.
pub const USER: &str = "system:serviceaccount:strictly:strictly";
/// The resourceVersion before the scenario's first pod (real clusters are never at 0).
const FIRST_RESOURCE_VERSION: u64 = 1000;
/// The apiserver's default for a watch without `timeoutSeconds` (its `--min-request-timeout`).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
const DEFAULT_ISTIO_PROXY_IMAGE: &str = "docker.io/istio/proxyv2:1.24.1";

/// Returns the path of `fixtures/kube/NAME`.
pub fn kube_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/kube")
        .join(name)
}

/// Polls `condition` every 5 ms until it holds; returns false if `timeout` passes first.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// [`wait_until`] for async tests: sleeps on the tokio clock so the test's runtime keeps running.
pub async fn wait_until_async(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// Scenario
// ---------------------------------------------------------------------------

/// A scenario file: the clock and the pods.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub now: Option<String>,
    #[serde(default)]
    pub pods: Vec<FakePod>,
}

/// A pod as a scenario (or [`FakeCluster::add_pod`]) describes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FakePod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub owner: Option<FakeOwner>,
    #[serde(default, rename = "podIP")]
    pub pod_ip: Option<String>,
    #[serde(default, rename = "hostIP")]
    pub host_ip: Option<String>,
    #[serde(default)]
    pub node_name: Option<String>,
    #[serde(default)]
    pub service_account: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub containers: Vec<FakeContainer>,
}

/// The controller that owns a pod (`ReplicaSet web-api-7d9f8c6b5`, `StatefulSet catalog`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeOwner {
    pub kind: String,
    pub name: String,
}

/// A container of a [`FakePod`] and its log.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FakeContainer {
    pub name: String,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub state: FakeState,
    /// The waiting reason (`ContainerCreating`, `PodInitializing`, `CrashLoopBackOff`).
    #[serde(default)]
    pub reason: Option<String>,
    /// True for a native sidecar: an init container with `restartPolicy: Always`.
    #[serde(default)]
    pub init: bool,
    /// The current container's log, one `<timestamp> <text>` line per log line.
    #[serde(default)]
    pub log: String,
    /// The previous container's log, in the same form.
    #[serde(default)]
    pub previous: Option<String>,
}

/// Whether a container runs or waits to start.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FakeState {
    #[default]
    Running,
    Waiting,
}

impl FakePod {
    /// A running pod with no labels, owner or containers.
    pub fn new(namespace: &str, name: &str) -> FakePod {
        FakePod {
            namespace: namespace.into(),
            name: name.into(),
            ..FakePod::default()
        }
    }

    /// Parses one pod in the scenario file's form.
    pub fn from_yaml(yaml: &str) -> FakePod {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("bad FakePod YAML: {e}"))
    }

    pub fn label(mut self, key: &str, value: &str) -> FakePod {
        self.labels.insert(key.into(), value.into());
        self
    }

    pub fn owner(mut self, kind: &str, name: &str) -> FakePod {
        self.owner = Some(FakeOwner {
            kind: kind.into(),
            name: name.into(),
        });
        self
    }

    pub fn pod_ip(mut self, ip: &str) -> FakePod {
        self.pod_ip = Some(ip.into());
        self
    }

    pub fn node_name(mut self, node: &str) -> FakePod {
        self.node_name = Some(node.into());
        self
    }

    pub fn created_at(mut self, at: &str) -> FakePod {
        self.created_at = Some(at.into());
        self
    }

    pub fn container(mut self, container: FakeContainer) -> FakePod {
        self.containers.push(container);
        self
    }
}

impl FakeContainer {
    /// A running container started at the cluster's "now", with an empty log.
    pub fn new(name: &str) -> FakeContainer {
        FakeContainer {
            name: name.into(),
            ..FakeContainer::default()
        }
    }

    pub fn started_at(mut self, at: &str) -> FakeContainer {
        self.started_at = Some(at.into());
        self
    }

    pub fn restart_count(mut self, count: u32) -> FakeContainer {
        self.restart_count = count;
        self
    }

    pub fn waiting(mut self, reason: &str) -> FakeContainer {
        self.state = FakeState::Waiting;
        self.reason = Some(reason.into());
        self
    }

    pub fn log_lines(mut self, lines: &[&str]) -> FakeContainer {
        self.log = lines.join("\n");
        self
    }

    pub fn previous_lines(mut self, lines: &[&str]) -> FakeContainer {
        self.previous = Some(lines.join("\n"));
        self
    }
}

// ---------------------------------------------------------------------------
// Time, ids
// ---------------------------------------------------------------------------

fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.trim()
        .parse::<Timestamp>()
        .map_err(|e| format!("bad RFC3339 timestamp {text:?}: {e}"))
}

fn must_parse_time(text: &str) -> Timestamp {
    parse_time(text).unwrap_or_else(|e| panic!("{e}"))
}

/// Formats as the API's `metav1.Time`: RFC3339, whole seconds, UTC.
fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Formats as Go's `time.RFC3339Nano`, the form of kubelet's log timestamps.
fn rfc3339_nano(at: Timestamp) -> String {
    let seconds = at.strftime("%Y-%m-%dT%H:%M:%S");
    match at.subsec_nanosecond() {
        0 => format!("{seconds}Z"),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{seconds}.{}Z", fraction.trim_end_matches('0'))
        }
    }
}

fn add_seconds(at: Timestamp, seconds: i64) -> Timestamp {
    at.checked_add(SignedDuration::from_secs(seconds))
        .unwrap_or(at)
}

fn fnv1a(data: &str) -> u64 {
    data.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A deterministic lowercase hex string of `len` digits derived from `seed`.
fn hex_id(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0;
    while out.len() < len {
        out.push_str(&format!("{:016x}", fnv1a(&format!("{seed}#{round}"))));
        round += 1;
    }
    out.truncate(len);
    out
}

fn uid(seed: &str) -> String {
    let h = hex_id(seed, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

/// One line of a container log: when kubelet received it, and its bytes.
#[derive(Clone, Debug)]
struct LogLine {
    at: Timestamp,
    text: Vec<u8>,
}

impl LogLine {
    /// Parses `<timestamp> <text>`.
    fn parse(line: &str) -> Result<LogLine, String> {
        let (at, text) = line.split_once(' ').unwrap_or((line, ""));
        Ok(LogLine {
            at: parse_time(at)?,
            text: text.as_bytes().to_vec(),
        })
    }

    fn render(&self, timestamps: bool, out: &mut Vec<u8>) {
        if timestamps {
            out.extend_from_slice(rfc3339_nano(self.at).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.text);
        out.push(b'\n');
    }
}

fn parse_log_block(block: &str) -> Result<Vec<LogLine>, String> {
    block
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(LogLine::parse)
        .collect()
}

fn render_lines<'a>(
    lines: impl IntoIterator<Item = &'a LogLine>,
    timestamps: bool,
    since: Option<Timestamp>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        if since.is_none_or(|since| line.at >= since) {
            line.render(timestamps, &mut out);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Cluster state
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Terminated {
    started_at: Timestamp,
    finished_at: Timestamp,
    exit_code: i32,
    reason: String,
    container_id: String,
}

#[derive(Clone, Debug)]
struct ContainerRecord {
    name: String,
    image: String,
    init: bool,
    started_at: Timestamp,
    restart_count: u32,
    waiting: Option<String>,
    last_terminated: Option<Terminated>,
    container_id: String,
    current: Vec<LogLine>,
    previous: Option<Vec<LogLine>>,
}

#[derive(Clone, Debug)]
struct PodRecord {
    /// Labels, owner, addresses; `containers` is empty (see `containers` below).
    meta: FakePod,
    uid: String,
    created_at: Timestamp,
    deleted_at: Option<Timestamp>,
    resource_version: u64,
    containers: Vec<ContainerRecord>,
}

fn container_id(namespace: &str, pod: &str, container: &str, restart: u32) -> String {
    format!(
        "containerd://{}",
        hex_id(&format!("{namespace}/{pod}/{container}/{restart}"), 64)
    )
}

impl PodRecord {
    fn build(mut pod: FakePod, now: Timestamp, seed: u64) -> Result<PodRecord, String> {
        let created_at = pod.created_at.as_deref().map(parse_time).transpose()?;
        let mut containers = Vec::new();
        for c in std::mem::take(&mut pod.containers) {
            let started_at = match &c.started_at {
                Some(at) => parse_time(at)?,
                None => created_at.unwrap_or(now),
            };
            let current = parse_log_block(&c.log)
                .map_err(|e| format!("{}/{} {}: {e}", pod.namespace, pod.name, c.name))?;
            let mut previous = c
                .previous
                .as_deref()
                .map(parse_log_block)
                .transpose()
                .map_err(|e| format!("{}/{} {} previous: {e}", pod.namespace, pod.name, c.name))?;
            let restart_count = if previous.is_some() {
                c.restart_count.max(1)
            } else {
                c.restart_count
            };
            if restart_count > 0 && previous.is_none() {
                previous = Some(Vec::new());
            }
            let last_terminated = previous.as_ref().map(|lines| Terminated {
                started_at: lines
                    .first()
                    .map_or_else(|| add_seconds(started_at, -3600), |l| l.at),
                finished_at: started_at,
                exit_code: 0,
                reason: "Completed".into(),
                container_id: container_id(&pod.namespace, &pod.name, &c.name, restart_count - 1),
            });
            let image = c.image.clone().unwrap_or_else(|| default_image(&c.name));
            containers.push(ContainerRecord {
                container_id: container_id(&pod.namespace, &pod.name, &c.name, restart_count),
                name: c.name,
                image,
                init: c.init,
                started_at,
                restart_count,
                waiting: (c.state == FakeState::Waiting)
                    .then(|| c.reason.unwrap_or_else(|| "ContainerCreating".into())),
                last_terminated,
                current,
                previous,
            });
        }
        let earliest = containers
            .iter()
            .flat_map(|c| {
                std::iter::once(c.started_at)
                    .chain(c.last_terminated.as_ref().map(|t| t.started_at))
            })
            .min();
        let created_at = created_at
            .or_else(|| earliest.map(|at| add_seconds(at, -10)))
            .unwrap_or(now);
        Ok(PodRecord {
            uid: uid(&format!("pod/{}/{}/{seed}", pod.namespace, pod.name)),
            meta: pod,
            created_at,
            deleted_at: None,
            resource_version: 0,
            containers,
        })
    }

    fn container_mut(&mut self, name: &str) -> &mut ContainerRecord {
        let pod = format!("{}/{}", self.meta.namespace, self.meta.name);
        self.containers
            .iter_mut()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("pod {pod} has no container {name:?}"))
    }

    /// Returns true if and only if every container runs and the pod is not being deleted.
    fn ready(&self) -> bool {
        self.deleted_at.is_none() && self.containers.iter().all(|c| c.waiting.is_none())
    }

    /// The Pod as `GET .../pods/NAME` returns it.
    fn render(&self) -> Value {
        let p = &self.meta;
        let mut metadata = Map::new();
        metadata.insert("name".into(), json!(p.name));
        if let Some(owner) = &p.owner
            && matches!(owner.kind.as_str(), "ReplicaSet" | "DaemonSet" | "Job")
        {
            metadata.insert("generateName".into(), json!(format!("{}-", owner.name)));
        }
        metadata.insert("namespace".into(), json!(p.namespace));
        metadata.insert("uid".into(), json!(self.uid));
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        metadata.insert("creationTimestamp".into(), json!(rfc3339(self.created_at)));
        if let Some(deleted_at) = self.deleted_at {
            metadata.insert(
                "deletionTimestamp".into(),
                json!(rfc3339(add_seconds(deleted_at, 30))),
            );
            metadata.insert("deletionGracePeriodSeconds".into(), json!(30));
        }
        if !p.labels.is_empty() {
            metadata.insert("labels".into(), json!(p.labels));
        }
        if !p.annotations.is_empty() {
            metadata.insert("annotations".into(), json!(p.annotations));
        }
        if let Some(owner) = &p.owner {
            metadata.insert(
                "ownerReferences".into(),
                json!([{
                    "apiVersion": owner_api_version(&owner.kind),
                    "kind": owner.kind,
                    "name": owner.name,
                    "uid": uid(&format!("{}/{}/{}", owner.kind, p.namespace, owner.name)),
                    "controller": true,
                    "blockOwnerDeletion": true,
                }]),
            );
        }

        let service_account = p.service_account.as_deref().unwrap_or("default");
        let mut spec = Map::new();
        let (init, regular): (Vec<_>, Vec<_>) = self.containers.iter().partition(|c| c.init);
        if !init.is_empty() {
            spec.insert(
                "initContainers".into(),
                init.iter().map(|c| c.spec()).collect(),
            );
        }
        spec.insert(
            "containers".into(),
            regular.iter().map(|c| c.spec()).collect(),
        );
        spec.insert("restartPolicy".into(), json!("Always"));
        spec.insert("terminationGracePeriodSeconds".into(), json!(30));
        spec.insert("dnsPolicy".into(), json!("ClusterFirst"));
        spec.insert("serviceAccountName".into(), json!(service_account));
        spec.insert("serviceAccount".into(), json!(service_account));
        if let Some(node) = &p.node_name {
            spec.insert("nodeName".into(), json!(node));
        }
        spec.insert("securityContext".into(), json!({}));
        spec.insert("schedulerName".into(), json!("default-scheduler"));
        spec.insert("priority".into(), json!(0));
        spec.insert("enableServiceLinks".into(), json!(true));
        spec.insert("preemptionPolicy".into(), json!("PreemptLowerPriority"));

        let started = self
            .containers
            .iter()
            .filter(|c| c.waiting.is_none())
            .map(|c| c.started_at)
            .max()
            .unwrap_or(self.created_at);
        let ready = if self.ready() { "True" } else { "False" };
        let condition = |kind: &str, status: &str, at: Timestamp| json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": rfc3339(at)});
        let mut status = Map::new();
        let phase = p.phase.clone().unwrap_or_else(|| {
            let never_ran = self
                .containers
                .iter()
                .all(|c| c.waiting.is_some() && c.last_terminated.is_none());
            if never_ran && !self.containers.is_empty() {
                "Pending".into()
            } else {
                "Running".into()
            }
        });
        status.insert("phase".into(), json!(phase));
        status.insert(
            "conditions".into(),
            json!([
                condition("PodReadyToStartContainers", "True", self.created_at),
                condition("Initialized", "True", self.created_at),
                condition("Ready", ready, started),
                condition("ContainersReady", ready, started),
                condition("PodScheduled", "True", self.created_at),
            ]),
        );
        if let Some(ip) = &p.host_ip {
            status.insert("hostIP".into(), json!(ip));
            status.insert("hostIPs".into(), json!([{ "ip": ip }]));
        }
        if let Some(ip) = &p.pod_ip {
            status.insert("podIP".into(), json!(ip));
            status.insert("podIPs".into(), json!([{ "ip": ip }]));
        }
        status.insert("startTime".into(), json!(rfc3339(self.created_at)));
        if !init.is_empty() {
            status.insert(
                "initContainerStatuses".into(),
                init.iter().map(|c| c.status()).collect(),
            );
        }
        status.insert(
            "containerStatuses".into(),
            regular.iter().map(|c| c.status()).collect(),
        );
        status.insert("qosClass".into(), json!("BestEffort"));

        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        })
    }
}

fn default_image(container: &str) -> String {
    if container == "istio-proxy" {
        DEFAULT_ISTIO_PROXY_IMAGE.into()
    } else {
        format!("docker.io/library/{container}:latest")
    }
}

fn owner_api_version(kind: &str) -> &'static str {
    match kind {
        "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Deployment" => "apps/v1",
        "Job" => "batch/v1",
        _ => "v1",
    }
}

impl ContainerRecord {
    fn spec(&self) -> Value {
        let mut spec = json!({
            "name": self.name,
            "image": self.image,
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        });
        if self.name == "istio-proxy" {
            spec["args"] = json!([
                "proxy",
                "sidecar",
                "--domain",
                "$(POD_NAMESPACE).svc.cluster.local",
                "--proxyLogLevel=warning",
                "--proxyComponentLogLevel=misc:error",
                "--log_output_level=default:info"
            ]);
            spec["ports"] = json!([
                {"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}
            ]);
        }
        if self.init {
            spec["restartPolicy"] = json!("Always");
        }
        spec
    }

    fn status(&self) -> Value {
        let image_repo = self.image.split(':').next().unwrap_or(&self.image);
        let running = self.waiting.is_none();
        let mut status = json!({
            "name": self.name,
            "state": match &self.waiting {
                None => json!({"running": {"startedAt": rfc3339(self.started_at)}}),
                Some(reason) => json!({"waiting": {"reason": reason}}),
            },
            "lastState": match &self.last_terminated {
                None => json!({}),
                Some(t) => json!({"terminated": {
                    "exitCode": t.exit_code,
                    "reason": t.reason,
                    "startedAt": rfc3339(t.started_at),
                    "finishedAt": rfc3339(t.finished_at),
                    "containerID": t.container_id,
                }}),
            },
            "ready": running,
            "restartCount": self.restart_count,
            "image": self.image,
            "imageID": format!("{image_repo}@sha256:{}", hex_id(&self.image, 64)),
            "started": running,
        });
        if running {
            status["containerID"] = json!(self.container_id);
        }
        status
    }
}

/// One request the fake served, as tests assert on it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query parameters (the last value of a repeated one).
    pub query: BTreeMap<String, String>,
    /// The query string as sent (kube-rs starts it with `&`).
    pub raw_query: String,
}

impl RecordedRequest {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// Returns true if and only if the request opened a watch.
    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }

    /// Returns true if and only if the request read a container log.
    pub fn is_log(&self) -> bool {
        self.path.ends_with("/log")
    }

    /// Returns true if and only if the request listed pods (not a watch).
    pub fn is_list(&self) -> bool {
        self.path.ends_with("/pods") && !self.is_watch()
    }
}

#[derive(Clone, Debug)]
enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

const SELECTABLE_FIELDS: &[(&str, &str)] = &[
    ("metadata.name", "/metadata/name"),
    ("metadata.namespace", "/metadata/namespace"),
    ("spec.nodeName", "/spec/nodeName"),
    ("spec.serviceAccountName", "/spec/serviceAccountName"),
    ("spec.restartPolicy", "/spec/restartPolicy"),
    ("status.phase", "/status/phase"),
    ("status.podIP", "/status/podIP"),
];

/// Which pods a list or watch selects.
#[derive(Clone, Debug, Default)]
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelRequirement>,
    /// (JSON pointer, equals?, value)
    fields: Vec<(&'static str, bool, String)>,
}

/// Splits on commas outside parentheses (`a in (x,y),b=c`).
fn split_requirements(selector: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in selector.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&selector[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn parse_set(key: &str, values: &str) -> Result<(String, Vec<String>), String> {
    let inner = values
        .trim()
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .ok_or_else(|| format!("unable to parse requirement: found '{values}', expected: '('"))?;
    Ok((
        key.trim().to_string(),
        inner.split(',').map(|v| v.trim().to_string()).collect(),
    ))
}

fn parse_label_selector(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    let mut requirements = Vec::new();
    for part in split_requirements(selector) {
        let requirement = if let Some(key) = part.strip_prefix('!') {
            LabelRequirement::DoesNotExist(key.trim().into())
        } else if let Some((k, v)) = part.split_once("!=") {
            LabelRequirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==") {
            LabelRequirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once('=') {
            LabelRequirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once(" notin ") {
            let (k, v) = parse_set(k, v)?;
            LabelRequirement::NotIn(k, v)
        } else if let Some((k, v)) = part.split_once(" in ") {
            let (k, v) = parse_set(k, v)?;
            LabelRequirement::In(k, v)
        } else {
            LabelRequirement::Exists(part.into())
        };
        let key = match &requirement {
            LabelRequirement::Equals(k, _)
            | LabelRequirement::NotEquals(k, _)
            | LabelRequirement::In(k, _)
            | LabelRequirement::NotIn(k, _)
            | LabelRequirement::Exists(k)
            | LabelRequirement::DoesNotExist(k) => k,
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("unable to parse requirement: {part:?}"));
        }
        requirements.push(requirement);
    }
    Ok(requirements)
}

impl Filter {
    fn parse(namespace: Option<&str>, query: &BTreeMap<String, String>) -> Result<Filter, String> {
        let labels = match query.get("labelSelector") {
            Some(selector) => parse_label_selector(selector)?,
            None => Vec::new(),
        };
        let mut fields = Vec::new();
        if let Some(selector) = query.get("fieldSelector") {
            for part in split_requirements(selector) {
                let (field, equals, value) = if let Some((f, v)) = part.split_once("!=") {
                    (f, false, v)
                } else if let Some((f, v)) = part.split_once("==") {
                    (f, true, v)
                } else if let Some((f, v)) = part.split_once('=') {
                    (f, true, v)
                } else {
                    return Err(format!("invalid field selector: {part}"));
                };
                let field = field.trim();
                let pointer = SELECTABLE_FIELDS
                    .iter()
                    .find(|(name, _)| *name == field)
                    .map(|(_, pointer)| *pointer)
                    .ok_or_else(|| format!("field label not supported: {field}"))?;
                fields.push((pointer, equals, value.trim().to_string()));
            }
        }
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        })
    }

    /// Returns true if and only if the rendered pod is in this filter's namespace and matches its selectors.
    fn matches(&self, pod: &Value) -> bool {
        let metadata = &pod["metadata"];
        if let Some(ns) = &self.namespace
            && metadata["namespace"].as_str() != Some(ns)
        {
            return false;
        }
        let label = |key: &str| metadata["labels"][key].as_str();
        let labels_match = self.labels.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => label(k) == Some(v),
            LabelRequirement::NotEquals(k, v) => label(k) != Some(v),
            LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelRequirement::Exists(k) => label(k).is_some(),
            LabelRequirement::DoesNotExist(k) => label(k).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(pointer, equals, value)| {
                let actual = pod.pointer(pointer).and_then(Value::as_str).unwrap_or("");
                (actual == value) == *equals
            })
    }
}

/// An open watch body.
struct WatchSub {
    filter: Filter,
    bookmarks: bool,
    metadata_only: bool,
    /// The newest resourceVersion this watch has been sent.
    resource_version: u64,
    tx: UnboundedSender<Bytes>,
}

fn partial_object_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object["metadata"],
    })
}

impl WatchSub {
    /// Sends one event; returns false if the client has gone.
    fn send_event(&mut self, kind: &str, object: &Value) -> bool {
        if let Some(rv) = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
        {
            self.resource_version = rv;
        }
        let object = if self.metadata_only {
            partial_object_metadata(object)
        } else {
            object.clone()
        };
        let line = format!("{{\"type\":\"{kind}\",\"object\":{object}}}\n");
        self.tx.send(Bytes::from(line)).is_ok()
    }

    fn send_bookmark(&mut self, resource_version: u64, initial_events_end: bool) -> bool {
        let mut metadata = json!({
            "resourceVersion": resource_version.to_string(),
            "creationTimestamp": null,
        });
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": {"containers": null},
            "status": {},
        });
        self.resource_version = resource_version;
        let line = format!("{{\"type\":\"BOOKMARK\",\"object\":{object}}}\n");
        self.tx.send(Bytes::from(line)).is_ok()
    }
}

/// An open `follow=true` log body.
struct FollowSub {
    namespace: String,
    pod: String,
    container: String,
    timestamps: bool,
    since: Option<Timestamp>,
    stalled: bool,
    tx: UnboundedSender<Bytes>,
}

struct HistoryEvent {
    resource_version: u64,
    kind: &'static str,
    object: Value,
}

struct Forbidden {
    verb: String,
    resource: String,
    namespace: Option<String>,
}

struct Failure {
    needle: String,
    status: u16,
}

struct State {
    now: Timestamp,
    resource_version: u64,
    /// Watches from a resourceVersion below this get 410 (set by `expire_watches`).
    oldest_watchable: u64,
    pods: BTreeMap<(String, String), PodRecord>,
    history: Vec<HistoryEvent>,
    watches: Vec<WatchSub>,
    follows: Vec<FollowSub>,
    forbidden: Vec<Forbidden>,
    failures: Vec<Failure>,
    requests: Vec<RecordedRequest>,
    bookmark_interval: Duration,
    pods_created: u64,
    /// Envoy `/stats` dumps per pod, served in turn through the pod proxy
    /// (`pods/NAME:15000/proxy/stats`); the last one repeats.
    stats: BTreeMap<(String, String), std::collections::VecDeque<String>>,
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_string(), name.to_string())
}

impl State {
    fn new(now: Timestamp) -> State {
        State {
            now,
            resource_version: FIRST_RESOURCE_VERSION,
            oldest_watchable: 0,
            pods: BTreeMap::new(),
            history: Vec::new(),
            watches: Vec::new(),
            follows: Vec::new(),
            forbidden: Vec::new(),
            failures: Vec::new(),
            requests: Vec::new(),
            bookmark_interval: Duration::from_secs(1),
            pods_created: 0,
            stats: BTreeMap::new(),
        }
    }

    /// Records an event and sends it to every open watch that selects the object.
    fn emit(&mut self, kind: &'static str, object: Value) {
        self.watches.retain_mut(|w| {
            if w.filter.matches(&object) {
                w.send_event(kind, &object)
            } else {
                !w.tx.is_closed()
            }
        });
        self.history.push(HistoryEvent {
            resource_version: self.resource_version,
            kind,
            object,
        });
    }

    /// Gives the pod a new resourceVersion and emits it as `kind`.
    fn touch(&mut self, key: &(String, String), kind: &'static str) {
        self.resource_version += 1;
        let pod = self.pods.get_mut(key).expect("touched pod exists");
        pod.resource_version = self.resource_version;
        let object = pod.render();
        self.emit(kind, object);
    }

    fn insert_pod(&mut self, pod: FakePod) -> Result<(), String> {
        self.pods_created += 1;
        let record = PodRecord::build(pod, self.now, self.pods_created)?;
        let key = key(&record.meta.namespace, &record.meta.name);
        if self.pods.contains_key(&key) {
            return Err(format!("pod {}/{} already exists", key.0, key.1));
        }
        self.pods.insert(key.clone(), record);
        self.touch(&key, "ADDED");
        Ok(())
    }

    fn pod_mut(&mut self, namespace: &str, name: &str) -> &mut PodRecord {
        self.pods
            .get_mut(&key(namespace, name))
            .unwrap_or_else(|| panic!("no pod {namespace}/{name} in the fake cluster"))
    }

    /// Ends the follow bodies `which` selects (their clients read EOF).
    fn close_follows(&mut self, which: impl Fn(&FollowSub) -> bool) {
        self.follows.retain(|f| !which(f));
    }

    fn send_bookmarks(&mut self) {
        let rv = self.resource_version;
        self.watches.retain_mut(|w| {
            if w.bookmarks {
                w.send_bookmark(rv, false)
            } else {
                !w.tx.is_closed()
            }
        });
    }

    fn take_failure(&mut self, path: &str, raw_query: &str) -> Option<u16> {
        let target = format!("{path}?{raw_query}");
        let index = self
            .failures
            .iter()
            .position(|f| target.contains(&f.needle))?;
        Some(self.failures.remove(index).status)
    }

    /// `GET pods/NAME:15000/proxy/stats`: the pod's next `/stats` dump, as
    /// the API server relays Envoy's admin answer (text/plain).
    fn proxy_stats(&mut self, ns: &str, target: &str) -> Response {
        let (name, port) = target.split_once(':').unwrap_or((target, ""));
        if let Some(denied) = self.check_forbidden("get", "pods/proxy", Some(ns), Some(name)) {
            return denied;
        }
        let Some(dumps) = self.stats.get_mut(&key(ns, name)) else {
            return status_response(
                404,
                "NotFound",
                &format!("pods \"{name}\" not found"),
                Some(json!({"name": name, "kind": "pods"})),
            );
        };
        if port != "15000" {
            return status_response(
                503,
                "ServiceUnavailable",
                "error trying to reach service: dial tcp: connect: connection refused",
                None,
            );
        }
        let body = if dumps.len() > 1 {
            dumps.pop_front().unwrap_or_default()
        } else {
            dumps.front().cloned().unwrap_or_default()
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::OK;
        with_common_headers(response, "text/plain; charset=UTF-8")
    }

    fn check_forbidden(
        &self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Option<Response> {
        let hit = self.forbidden.iter().any(|f| {
            (f.verb == verb || f.verb == "*")
                && f.resource == resource
                && (f.namespace.as_deref() == namespace
                    || (f.namespace.as_deref() == Some("*") && namespace.is_some()))
        });
        if !hit {
            return None;
        }
        let subject = match name {
            Some(name) => format!("pods \"{name}\""),
            None => "pods".to_string(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        let message = format!(
            "{subject} is forbidden: User \"{USER}\" cannot {verb} resource \"{resource}\" in API group \"\" {scope}"
        );
        let details = match name {
            Some(name) => json!({"name": name, "kind": "pods"}),
            None => json!({"kind": "pods"}),
        };
        Some(status_response(403, "Forbidden", &message, Some(details)))
    }

    fn list_or_watch(
        &mut self,
        namespace: Option<&str>,
        query: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> Response {
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let verb = if watch { "watch" } else { "list" };
        if let Some(denied) = self.check_forbidden(verb, "pods", namespace, None) {
            return denied;
        }
        let filter = match Filter::parse(namespace, query) {
            Ok(filter) => filter,
            Err(message) => return status_response(400, "BadRequest", &message, None),
        };
        if watch {
            self.watch(filter, query, metadata_only)
        } else {
            self.list(&filter, query, metadata_only)
        }
    }

    fn list(
        &self,
        filter: &Filter,
        query: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> Response {
        let limit = query
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|&l| l > 0);
        // The continue token is "RV/NAMESPACE/NAME": the page's resourceVersion and the last key served.
        let (list_rv, after) = match query.get("continue").filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut parts = token.splitn(3, '/');
                match (
                    parts.next().and_then(|rv| rv.parse::<u64>().ok()),
                    parts.next(),
                    parts.next(),
                ) {
                    (Some(rv), Some(ns), Some(name)) => (rv, Some(key(ns, name))),
                    _ => {
                        return status_response(
                            400,
                            "BadRequest",
                            &format!("invalid continue token {token:?}"),
                            None,
                        );
                    }
                }
            }
            None => (self.resource_version, None),
        };
        let matching: Vec<(&(String, String), Value)> = self
            .pods
            .iter()
            .filter(|(k, _)| after.as_ref().is_none_or(|after| *k > after))
            .map(|(k, pod)| (k, pod.render()))
            .filter(|(_, pod)| filter.matches(pod))
            .collect();
        let page_len = limit.map_or(matching.len(), |l| l.min(matching.len()));
        let remaining = matching.len() - page_len;
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if remaining > 0 {
            let (ns, name) = matching[page_len - 1].0;
            metadata["continue"] = json!(format!("{list_rv}/{ns}/{name}"));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = matching
            .into_iter()
            .take(page_len)
            .map(|(_, mut pod)| {
                if metadata_only {
                    pod = partial_object_metadata(&pod);
                }
                // List items carry no kind/apiVersion on the wire.
                if let Some(object) = pod.as_object_mut() {
                    object.remove("kind");
                    object.remove("apiVersion");
                }
                pod
            })
            .collect();
        let (kind, api_version) = if metadata_only {
            ("PartialObjectMetadataList", "meta.k8s.io/v1")
        } else {
            ("PodList", "v1")
        };
        let body = json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "items": items,
        });
        json_response(StatusCode::OK, body.to_string())
    }

    fn watch(
        &mut self,
        filter: Filter,
        query: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> Response {
        let param = |k: &str| query.get(k).map(String::as_str);
        let requested = param("resourceVersion").unwrap_or("");
        let initial_events = param("sendInitialEvents") == Some("true");
        let bookmarks = param("allowWatchBookmarks") == Some("true");
        let timeout = param("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
        let (tx, rx) = unbounded_channel();
        let mut sub = WatchSub {
            filter,
            bookmarks,
            metadata_only,
            resource_version: self.resource_version,
            tx,
        };
        if initial_events || requested.is_empty() || requested == "0" {
            for pod in self.pods.values() {
                let object = pod.render();
                if sub.filter.matches(&object) {
                    sub.send_event("ADDED", &object);
                }
            }
            if initial_events || bookmarks {
                sub.send_bookmark(self.resource_version, initial_events);
            }
        } else {
            let Ok(from) = requested.parse::<u64>() else {
                let message = format!("resourceVersion: Invalid value: \"{requested}\"");
                return status_response(400, "BadRequest", &message, None);
            };
            if from < self.oldest_watchable {
                let message = format!(
                    "too old resource version: {from} ({})",
                    self.resource_version
                );
                let _ = sub.tx.send(error_event(410, "Expired", &message));
                // `sub` drops here: the body ends after the ERROR event.
                return watch_response(rx, timeout);
            }
            for event in self.history.iter().filter(|e| e.resource_version > from) {
                if sub.filter.matches(&event.object) {
                    sub.send_event(event.kind, &event.object);
                }
            }
            if bookmarks {
                sub.send_bookmark(self.resource_version, false);
            }
        }
        self.watches.push(sub);
        watch_response(rx, timeout)
    }

    fn get(&self, namespace: &str, name: &str, metadata_only: bool) -> Response {
        if let Some(denied) = self.check_forbidden("get", "pods", Some(namespace), Some(name)) {
            return denied;
        }
        match self.pods.get(&key(namespace, name)) {
            Some(pod) => {
                let object = pod.render();
                let object = if metadata_only {
                    partial_object_metadata(&object)
                } else {
                    object
                };
                json_response(StatusCode::OK, object.to_string())
            }
            None => pod_not_found(name),
        }
    }

    fn logs(&mut self, namespace: &str, name: &str, query: &BTreeMap<String, String>) -> Response {
        if let Some(denied) = self.check_forbidden("get", "pods/log", Some(namespace), Some(name)) {
            return denied;
        }
        let param = |k: &str| query.get(k).map(String::as_str);
        let flag = |k: &str| param(k) == Some("true");
        let Some(pod) = self.pods.get(&key(namespace, name)) else {
            return pod_not_found(name);
        };
        let container_name = match param("container") {
            Some(c) => c.to_string(),
            None if pod.containers.len() == 1 => pod.containers[0].name.clone(),
            None => {
                let names = |init: bool| {
                    pod.containers
                        .iter()
                        .filter(|c| c.init == init)
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names(false)
                );
                if pod.containers.iter().any(|c| c.init) {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        names(true)
                    ));
                }
                return status_response(400, "BadRequest", &message, None);
            }
        };
        let Some(container) = pod.containers.iter().find(|c| c.name == container_name) else {
            let message = format!("container {container_name} is not valid for pod {name}");
            return status_response(400, "BadRequest", &message, None);
        };
        let previous = flag("previous");
        let lines: &[LogLine] = if previous {
            match &container.previous {
                Some(lines) => lines,
                None => {
                    let message = format!(
                        "previous terminated container \"{container_name}\" in pod \"{name}\" not found"
                    );
                    return status_response(400, "BadRequest", &message, None);
                }
            }
        } else if let Some(reason) = &container.waiting {
            // kubelet serves the last terminated container while the next one waits (CrashLoopBackOff).
            match &container.previous {
                Some(lines) if container.last_terminated.is_some() => lines,
                _ => {
                    let message = format!(
                        "container \"{container_name}\" in pod \"{name}\" is waiting to start: {reason}"
                    );
                    return status_response(400, "BadRequest", &message, None);
                }
            }
        } else {
            &container.current
        };
        let since = match (param("sinceSeconds"), param("sinceTime")) {
            (Some(seconds), _) => match seconds.parse::<i64>() {
                Ok(seconds) if seconds > 0 => Some(add_seconds(self.now, -seconds)),
                _ => {
                    let message = format!(
                        "PodLogOptions \"{name}\" is invalid: sinceSeconds: Invalid value: {seconds}: must be greater than 0"
                    );
                    return status_response(422, "Invalid", &message, None);
                }
            },
            (None, Some(time)) => match parse_time(time) {
                Ok(at) => Some(at),
                Err(message) => return status_response(400, "BadRequest", &message, None),
            },
            (None, None) => None,
        };
        let timestamps = flag("timestamps");
        let selected: Vec<&LogLine> = lines
            .iter()
            .filter(|l| since.is_none_or(|since| l.at >= since))
            .collect();
        let skip = param("tailLines")
            .and_then(|t| t.parse::<usize>().ok())
            .map_or(0, |tail| selected.len().saturating_sub(tail));
        let backlog = render_lines(selected[skip..].iter().copied(), timestamps, None);
        let limit = param("limitBytes").and_then(|l| l.parse::<usize>().ok());
        let follow = flag("follow") && !previous && container.waiting.is_none();

        let (tx, rx) = unbounded_channel();
        if !backlog.is_empty() {
            let _ = tx.send(Bytes::from(backlog));
        }
        if follow {
            self.follows.push(FollowSub {
                namespace: namespace.to_string(),
                pod: name.to_string(),
                container: container_name,
                timestamps,
                since,
                stalled: false,
                tx,
            });
        }
        streaming_response("text/plain", rx, None, limit)
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A `metav1.Status`, fields in the apiserver's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Map<String, Value>,
    status: &'static str,
    message: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
    code: u16,
}

fn status_json(code: u16, reason: &str, message: &str, details: Option<Value>) -> String {
    serde_json::to_string(&StatusBody {
        kind: "Status",
        api_version: "v1",
        metadata: Map::new(),
        status: "Failure",
        message,
        reason,
        details,
        code,
    })
    .expect("a Status serializes")
}

fn error_event(code: u16, reason: &str, message: &str) -> Bytes {
    Bytes::from(format!(
        "{{\"type\":\"ERROR\",\"object\":{}}}\n",
        status_json(code, reason, message, None)
    ))
}

fn with_common_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    with_common_headers(response, "application/json")
}

fn status_response(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, status_json(code, reason, message, details))
}

fn pod_not_found(name: &str) -> Response {
    status_response(
        404,
        "NotFound",
        &format!("pods \"{name}\" not found"),
        Some(json!({"name": name, "kind": "pods"})),
    )
}

fn injected_failure(code: u16) -> Response {
    let mut response = match code {
        429 => status_response(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
            Some(json!({"retryAfterSeconds": 1})),
        ),
        500 => status_response(
            500,
            "InternalError",
            "Internal error occurred: injected by the fake API server",
            Some(json!({"causes": [{"message": "injected by the fake API server"}]})),
        ),
        503 => status_response(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            None,
        ),
        504 => status_response(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request",
            None,
        ),
        other => status_response(other, "", &format!("injected HTTP {other}"), None),
    };
    if code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A body fed by `rx`: ends when every sender is gone, after `deadline`, or after `limit` bytes.
fn streaming_body(
    rx: UnboundedReceiver<Bytes>,
    deadline: Option<Duration>,
    limit: Option<usize>,
) -> Body {
    let sleep = deadline.map(|d| Box::pin(tokio::time::sleep(d)));
    let stream = futures::stream::unfold(
        (rx, sleep, limit),
        |(mut rx, mut sleep, limit)| async move {
            if limit == Some(0) {
                return None;
            }
            let next = match sleep.as_mut() {
                Some(deadline) => tokio::select! {
                    biased;
                    chunk = rx.recv() => chunk,
                    () = deadline.as_mut() => None,
                },
                None => rx.recv().await,
            };
            let mut chunk = next?;
            let limit = limit.map(|left| {
                chunk.truncate(left);
                left - chunk.len()
            });
            Some((Ok::<Bytes, Infallible>(chunk), (rx, sleep, limit)))
        },
    );
    Body::from_stream(stream)
}

fn streaming_response(
    content_type: &'static str,
    rx: UnboundedReceiver<Bytes>,
    deadline: Option<Duration>,
    limit: Option<usize>,
) -> Response {
    with_common_headers(
        Response::new(streaming_body(rx, deadline, limit)),
        content_type,
    )
}

fn watch_response(rx: UnboundedReceiver<Bytes>, timeout: Duration) -> Response {
    streaming_response("application/json", rx, Some(timeout), None)
}

struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its message behind PoisonError.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn respond(&self, request: &Request) -> Response {
        let uri = request.uri();
        let path = uri.path().to_string();
        let raw_query = uri.query().unwrap_or("").to_string();
        let query: BTreeMap<String, String> = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|q| q.0.into_iter().collect())
            .unwrap_or_default();
        let header = |name: header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let metadata_only = header(header::ACCEPT).contains("as=PartialObjectMetadata");
        let authorized = header(header::AUTHORIZATION) == format!("Bearer {TOKEN}");

        let mut state = self.lock();
        state.requests.push(RecordedRequest {
            method: request.method().to_string(),
            path: path.clone(),
            query: query.clone(),
            raw_query: raw_query.clone(),
        });
        if !authorized {
            return status_response(401, "Unauthorized", "Unauthorized", None);
        }
        if let Some(code) = state.take_failure(&path, &raw_query) {
            return injected_failure(code);
        }
        if request.method() != Method::GET {
            let message = format!(
                "the server does not allow this method on the requested resource ({} {path})",
                request.method()
            );
            return status_response(405, "MethodNotAllowed", &message, None);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["version"] => json_response(
                StatusCode::OK,
                json!({
                    "major": "1", "minor": "33", "gitVersion": "v1.33.4",
                    "gitCommit": "74cdb426e0b4d3b4e8a3d5c5b9c3c6a2d7e1f0a9", "gitTreeState": "clean",
                    "buildDate": "2025-08-12T18:00:00Z", "goVersion": "go1.24.5",
                    "compiler": "gc", "platform": "linux/amd64",
                })
                .to_string(),
            ),
            ["api", "v1", "pods"] => state.list_or_watch(None, &query, metadata_only),
            ["api", "v1", "namespaces", ns, "pods"] => {
                state.list_or_watch(Some(ns), &query, metadata_only)
            }
            ["api", "v1", "namespaces", ns, "pods", name] => state.get(ns, name, metadata_only),
            ["api", "v1", "namespaces", ns, "pods", name, "log"] => state.logs(ns, name, &query),
            ["api", "v1", "namespaces", ns, "pods", target, "proxy", "stats"] => {
                state.proxy_stats(ns, target)
            }
            _ => status_response(
                404,
                "NotFound",
                "the server could not find the requested resource",
                Some(json!({})),
            ),
        }
    }
}

async fn handle(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    shared.respond(&request)
}

async fn send_bookmarks_periodically(shared: Arc<Shared>) {
    loop {
        let interval = shared.lock().bookmark_interval;
        tokio::time::sleep(interval).await;
        shared.lock().send_bookmarks();
    }
}

// ---------------------------------------------------------------------------
// FakeCluster
// ---------------------------------------------------------------------------

/// A running fake API server and the cluster it serves; dropping it stops the server.
pub struct FakeCluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    closed_port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeCluster {
    /// Serves the scenario file at `scenario` (see the module doc for its form).
    pub fn start(scenario: &Path) -> FakeCluster {
        let text = std::fs::read_to_string(scenario)
            .unwrap_or_else(|e| panic!("cannot read scenario {}: {e}", scenario.display()));
        let parsed: Scenario = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("bad scenario {}: {e}", scenario.display()));
        FakeCluster::with_scenario(parsed)
    }

    /// Serves a scenario given as YAML text.
    pub fn from_yaml(scenario: &str) -> FakeCluster {
        let parsed: Scenario =
            serde_yaml_ng::from_str(scenario).unwrap_or_else(|e| panic!("bad scenario: {e}"));
        FakeCluster::with_scenario(parsed)
    }

    /// Serves a cluster without pods, its clock at [`DEFAULT_NOW`].
    pub fn empty() -> FakeCluster {
        FakeCluster::with_scenario(Scenario::default())
    }

    /// Serves `scenario`.
    pub fn with_scenario(scenario: Scenario) -> FakeCluster {
        let now = match &scenario.now {
            Some(now) => must_parse_time(now),
            None => newest_line(&scenario)
                .map_or_else(|| must_parse_time(DEFAULT_NOW), |at| add_seconds(at, 1)),
        };
        let mut state = State::new(now);
        for pod in scenario.pods {
            state
                .insert_pod(pod)
                .unwrap_or_else(|e| panic!("bad scenario: {e}"));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
        });

        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("listener address");
        let closed_port = {
            let closed = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            closed.local_addr().expect("address").port()
        };
        let (shutdown, shutdown_rx) = oneshot::channel();
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-apiserver".into())
            .spawn(move || serve(server_shared, listener, shutdown_rx))
            .expect("spawn the fake API server");
        FakeCluster {
            shared,
            addr,
            closed_port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig with contexts `fake` (current, this server, token auth) and `other` (a closed port).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_in(None)
    }

    fn kubeconfig_yaml_in(&self, namespace: Option<&str>) -> String {
        let namespace = namespace
            .map(|ns| format!("\n    namespace: {ns}"))
            .unwrap_or_default();
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: {url}
    insecure-skip-tls-verify: true
- name: other
  cluster:
    server: http://127.0.0.1:{closed}
    insecure-skip-tls-verify: true
contexts:
- name: fake
  context:
    cluster: fake
    user: fake{namespace}
- name: other
  context:
    cluster: other
    user: fake
current-context: fake
preferences: {{}}
users:
- name: fake
  user:
    token: {TOKEN}
",
            url = self.url(),
            closed = self.closed_port,
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `dir/kubeconfig` and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml()).expect("write kubeconfig");
        path
    }

    /// Like [`Self::kubeconfig`], with `namespace` as the `fake` context's namespace.
    pub fn kubeconfig_with_namespace(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml_in(Some(namespace))).expect("write kubeconfig");
        path
    }

    /// A kube client for the `fake` context, built the way a kubeconfig user's is.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml()).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kube config from the fake kubeconfig");
        kube::Client::try_from(config).expect("kube client")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Adds a pod (ADDED to open watches).
    pub fn add_pod(&self, pod: FakePod) {
        self.lock()
            .insert_pod(pod)
            .unwrap_or_else(|e| panic!("add_pod: {e}"));
    }

    /// Deletes a pod as the API does gracefully: MODIFIED with `deletionTimestamp`, its log follows end, then DELETED.
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let mut state = self.lock();
        let now = state.now;
        state.pod_mut(namespace, name).deleted_at = Some(now);
        let key = key(namespace, name);
        state.touch(&key, "MODIFIED");
        state.close_follows(|f| f.namespace == namespace && f.pod == name);
        state.resource_version += 1;
        let mut pod = state.pods.remove(&key).expect("pod exists");
        pod.resource_version = state.resource_version;
        state.emit("DELETED", pod.render());
    }

    /// Restarts a container: its log becomes `previous`, the new one starts empty at "now"; follows of it end; MODIFIED.
    pub fn restart_container(&self, namespace: &str, pod: &str, container: &str) {
        let mut state = self.lock();
        let now = state.now;
        let record = state.pod_mut(namespace, pod);
        let c = record.container_mut(container);
        c.last_terminated = Some(Terminated {
            started_at: c.started_at,
            finished_at: now,
            exit_code: 0,
            reason: "Completed".into(),
            container_id: c.container_id.clone(),
        });
        c.restart_count += 1;
        c.started_at = now;
        c.waiting = None;
        c.previous = Some(std::mem::take(&mut c.current));
        c.container_id = container_id(namespace, pod, container, c.restart_count);
        state.close_follows(|f| {
            f.namespace == namespace && f.pod == pod && f.container == container
        });
        state.touch(&key(namespace, pod), "MODIFIED");
    }

    /// Puts a container in `waiting: PodInitializing`: its log requests get 400; follows of it end; MODIFIED.
    pub fn waiting_to_start(&self, namespace: &str, pod: &str, container: &str) {
        let mut state = self.lock();
        state
            .pod_mut(namespace, pod)
            .container_mut(container)
            .waiting = Some("PodInitializing".into());
        state.close_follows(|f| {
            f.namespace == namespace && f.pod == pod && f.container == container
        });
        state.touch(&key(namespace, pod), "MODIFIED");
    }

    /// Appends `<timestamp> <text>` lines to a container's log; open follows receive them at once.
    pub fn append_log(&self, namespace: &str, pod: &str, container: &str, lines: &[&str]) {
        let parsed: Vec<LogLine> = lines
            .iter()
            .map(|line| LogLine::parse(line).unwrap_or_else(|e| panic!("append_log: {e}")))
            .collect();
        self.append_parsed(namespace, pod, container, parsed);
    }

    /// Appends one line of arbitrary bytes (invalid UTF-8 included) received at `at`.
    pub fn append_log_bytes(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        at: &str,
        text: &[u8],
    ) {
        let line = LogLine {
            at: must_parse_time(at),
            text: text.to_vec(),
        };
        self.append_parsed(namespace, pod, container, vec![line]);
    }

    fn append_parsed(&self, namespace: &str, pod: &str, container: &str, lines: Vec<LogLine>) {
        let mut state = self.lock();
        state
            .pod_mut(namespace, pod)
            .container_mut(container)
            .current
            .extend(lines.iter().cloned());
        state.follows.retain(|f| {
            if f.namespace != namespace || f.pod != pod || f.container != container || f.stalled {
                return !f.tx.is_closed();
            }
            let bytes = render_lines(&lines, f.timestamps, f.since);
            bytes.is_empty() || f.tx.send(Bytes::from(bytes)).is_ok()
        });
    }

    /// Ends the open follow bodies of a pod's containers cleanly (the client reads EOF).
    pub fn end_follows(&self, namespace: &str, pod: &str) {
        self.lock()
            .close_follows(|f| f.namespace == namespace && f.pod == pod);
    }

    /// Keeps the pod's open follows connected but sends them nothing more until [`Self::end_follows`].
    pub fn stall_follows(&self, namespace: &str, pod: &str) {
        for f in self.lock().follows.iter_mut() {
            if f.namespace == namespace && f.pod == pod {
                f.stalled = true;
            }
        }
    }

    /// Compacts the watch history: open watches get ERROR 410 and end, and watches from older resourceVersions get 410.
    pub fn expire_watches(&self) {
        let mut state = self.lock();
        // A newer resourceVersion (another object changed) so that a re-list can watch again.
        state.resource_version += 1;
        state.oldest_watchable = state.resource_version;
        let current = state.resource_version;
        for watch in std::mem::take(&mut state.watches) {
            let message = format!(
                "too old resource version: {} ({current})",
                watch.resource_version
            );
            let _ = watch.tx.send(error_event(410, "Expired", &message));
        }
    }

    /// Denies `verb` (`get`, `list`, `watch`, `*`) on `resource` (`pods`, `pods/log`) in `namespace`
    /// (`None`: the cluster scope, `GET /api/v1/pods`; `Some("*")`: every namespace) with 403.
    /// Serves `dumps` in turn as the pod's Envoy `/stats` through the pod proxy.
    pub fn set_stats(&self, namespace: &str, pod: &str, dumps: &[&str]) {
        self.lock().stats.insert(
            key(namespace, pod),
            dumps.iter().map(|d| d.to_string()).collect(),
        );
    }

    pub fn forbid(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        self.lock().forbidden.push(Forbidden {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
        });
    }

    /// Lifts every [`Self::forbid`].
    pub fn allow_all(&self) {
        self.lock().forbidden.clear();
    }

    /// Answers the next request whose `path?query` contains `path_substring` with `status` (429, 500, 503, 504), once.
    pub fn fail_next(&self, path_substring: &str, status: u16) {
        self.fail_next_n(path_substring, status, 1);
    }

    /// Like [`Self::fail_next`] for the next `count` matching requests (kube retries 429/503/504 up to 15 times).
    pub fn fail_next_n(&self, path_substring: &str, status: u16, count: usize) {
        let mut state = self.lock();
        for _ in 0..count {
            state.failures.push(Failure {
                needle: path_substring.into(),
                status,
            });
        }
    }

    /// Sets the clock that `sinceSeconds`, restarts and deletions use.
    pub fn set_now(&self, rfc3339: &str) {
        self.lock().now = must_parse_time(rfc3339);
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        let by = SignedDuration::try_from(by).expect("duration fits");
        state.now = state.now.checked_add(by).expect("clock in range");
    }

    /// The clock, RFC3339Nano.
    pub fn now(&self) -> String {
        rfc3339_nano(self.lock().now)
    }

    /// How often open watches that asked for bookmarks get one (default 1 s).
    pub fn set_bookmark_interval(&self, every: Duration) {
        self.lock().bookmark_interval = every;
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// How many follow bodies of the pod are still open.
    pub fn open_follows(&self, namespace: &str, pod: &str) -> usize {
        self.lock()
            .follows
            .iter()
            .filter(|f| f.namespace == namespace && f.pod == pod && !f.tx.is_closed())
            .count()
    }

    /// How many watch bodies are still open.
    pub fn open_watches(&self) -> usize {
        self.lock()
            .watches
            .iter()
            .filter(|w| !w.tx.is_closed())
            .count()
    }

    /// The pod as `GET .../pods/NAME` returns it, or None if there is none.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.lock()
            .pods
            .get(&key(namespace, name))
            .map(PodRecord::render)
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn newest_line(scenario: &Scenario) -> Option<Timestamp> {
    scenario
        .pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| {
            std::iter::once(c.log.as_str())
                .chain(c.previous.as_deref())
                .flat_map(|block| parse_log_block(block).unwrap_or_default())
        })
        .map(|line| line.at)
        .max()
}

/// The server thread: its own runtime, so it serves sync and async tests alike.
fn serve(shared: Arc<Shared>, listener: StdTcpListener, shutdown: oneshot::Receiver<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("fake API server runtime");
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::from_std(listener).expect("fake API server listener");
        tokio::spawn(send_bookmarks_periodically(Arc::clone(&shared)));
        let app = Router::new().fallback(handle).with_state(shared);
        tokio::select! {
            result = axum::serve(listener, app).into_future() => {
                if let Err(e) = result {
                    eprintln!("fake API server stopped: {e}");
                }
            }
            _ = shutdown => {}
        }
    });
    // Dropping the runtime here cancels every open connection.
}
