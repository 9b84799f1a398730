//! `watch`: follow every selected pod and keep the verdicts current.
//!
//! A driver: the followers and the pod watcher are the Kubernetes source's
//! ([`crate::source::kube::follow`], [`crate::source::kube::pods`]); the
//! decisions are a synchronous core (`sync_core`: the same per-line path as
//! `report`, a pipeline [`crate::pipeline::Worker`]); what is left here is a
//! short `tokio::select!` moving data between them: chunks from the
//! followers, pod events from the watcher, a ticker that publishes
//! [`snapshot::Snapshot`]s (to the live view, the HTTP endpoint and the
//! state file), and the shutdown signal.
//!
//! Concurrency choice (issue 4 item 10), measured by `benches/shared_state.rs`
//! (1M requests from 4 producer threads, 2 cores): one owner fed over a
//! channel records 4.7 M requests/s; a shared `DashMap` of the same cells
//! 7.1 M/s (1.5×, using both cores, and without the attribution rules). Both
//! are thousands of times the rate a mesh's access logs reach (the cost bench
//! runs 1,000 lines/s at 3% of one core), so the owner design is kept for what
//! the DashMap would cost: the per-line path is `report`'s, unchanged; each
//! tick sees one consistent aggregate to prune, resolve and snapshot, rather
//! than shards changing under it; followers only move bytes.

mod history;
pub mod live;
pub mod snapshot;
pub mod state;
mod sync_core;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::aggregate::AggregateConfig;
use crate::format::FormatSet;
use crate::render::{OutputKind, RenderOptions};
use crate::source::Chunk;
use crate::source::kube::{self, KubeAccess, KubeError, KubeSelection, PeerIndex, follow, pods};
use crate::verdict;

use follow::{Follow, Health};
use live::LiveView;
use pods::PodEvent;
use snapshot::Snapshot;
use sync_core::{Core, FollowStart};

/// How far before the window the first connection reads, so the first
/// verdict can already tell whether each replica's log covers the window.
const COVERAGE_MARGIN_S: i64 = 3600;

/// Everything `watch` is told.
pub struct WatchConfig {
    pub access: KubeAccess,
    pub selection: KubeSelection,
    pub formats: FormatSet,
    pub aggregate: AggregateConfig,
    pub window_ms: i64,
    /// `--backfill`: how far back the first connection reads (default: the window and a margin).
    pub backfill_ms: Option<i64>,
    pub min_requests: u64,
    pub max_sources: usize,
    /// How often verdicts are recomputed and published.
    pub tick: Duration,
    /// Reconnect a stream that sent nothing for this long.
    pub stall: Duration,
    pub listen: Option<SocketAddr>,
    pub state: Option<PathBuf>,
    /// The final report's format (on SIGINT/SIGTERM).
    pub output: OutputKind,
    pub live: LiveView,
    pub color: bool,
    /// Stop after this long (tests, cron-like runs); `None`: until a signal.
    pub duration: Option<Duration>,
}

/// A problem that stops `watch` before it runs (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Not a `source`: the reason is said once, not again as a cause (issue 7 item 25).
    #[error("--listen {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("{0}")]
    Runtime(String),
}

/// Runs the watch until a signal (or `duration`); returns the exit code of the final report.
pub fn run(config: WatchConfig) -> Result<i32, WatchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| WatchError::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_async(config))
}

async fn run_async(config: WatchConfig) -> Result<i32, WatchError> {
    let saved = match &config.state {
        Some(path) => {
            let saved = state::load(path)?;
            state::check_writable(path)?;
            saved
        }
        None => None,
    };
    let (client, default_ns) = kube::client(&config.access).await?;
    // Listing first fails fast, with the missing permission named, on RBAC.
    let peers = match kube::select(&client, &config.selection, &default_ns).await {
        Ok((_, peers)) => peers,
        // A watch may start before its workloads do: say so, and wait for them.
        Err(KubeError::NothingSelected(why)) => {
            let _ = writeln!(
                std::io::stderr(),
                "strictly: warning: {why}; waiting for pods to appear"
            );
            PeerIndex::new()
        }
        Err(e) => return Err(e.into()),
    };

    let listener = match config.listen {
        Some(addr) => {
            Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| WatchError::Listen {
                        addr,
                        reason: match e.kind() {
                            std::io::ErrorKind::AddrInUse => {
                                "address in use (another process listens there)".to_string()
                            }
                            std::io::ErrorKind::PermissionDenied => {
                                "permission denied (ports below 1024 need privileges)".to_string()
                            }
                            _ => e.to_string(),
                        },
                    })?,
            )
        }
        None => None,
    };

    let health = Arc::new(Health::default());
    let watch_errors = Arc::new(AtomicU64::new(0));
    let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Chunk>(1024);
    let (pod_tx, mut pod_rx) = tokio::sync::mpsc::channel::<PodEvent>(256);
    let (snap_tx, snap_rx) = tokio::sync::watch::channel::<Option<Arc<Snapshot>>>(None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<KubeError>(4);

    tokio::spawn(pods::watch_pods(
        client.clone(),
        config.selection.clone(),
        default_ns.clone(),
        pod_tx,
        Arc::clone(&watch_errors),
        fatal_tx.clone(),
    ));
    let server = listener.map(|l| {
        let mut stop = stop_rx.clone();
        tokio::spawn(crate::serve::serve(l, snap_rx.clone(), async move {
            let _ = stop.wait_for(|s| *s).await;
        }))
    });

    let mut core = Core::new(
        &config,
        saved,
        peers,
        Arc::clone(&health),
        Arc::clone(&watch_errors),
    );
    let since_s = config
        .backfill_ms
        .map_or(config.window_ms / 1000 + COVERAGE_MARGIN_S, |s| s / 1000);
    let spawn_follow = |start: &FollowStart| {
        tokio::spawn(follow::follow(Follow {
            client: client.clone(),
            meta: Arc::clone(&start.target.meta),
            input: start.input,
            since_seconds: since_s,
            stall: config.stall,
            cursor: Arc::clone(&start.cursor),
            health: Arc::clone(&health),
            out: chunk_tx.clone(),
            read_previous: start.target.restart_count > 0,
            fatal: fatal_tx.clone(),
            progress: Arc::clone(&start.progress),
        }))
    };

    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut peer_refresh = tokio::time::interval(Duration::from_secs(60));
    peer_refresh.tick().await;
    let mut live = live::Live::new(config.live, config.color);
    let deadline = config.duration.map(|d| tokio::time::Instant::now() + d);
    let shutdown = shutdown_signal(deadline);
    tokio::pin!(shutdown);

    let mut fatal: Option<KubeError> = None;
    loop {
        tokio::select! {
            Some(chunk) = chunk_rx.recv() => core.chunk(&chunk),
            Some(e) = fatal_rx.recv() => {
                fatal = Some(e);
                break;
            }
            Some(event) = pod_rx.recv() => match event {
                PodEvent::Follow(target) => {
                    if let Some(start) = core.follow(target) {
                        let task = spawn_follow(&start);
                        core.started(start, task);
                    }
                }
                PodEvent::Gone { namespace, pod } => core.gone(&namespace, &pod),
            },
            _ = ticker.tick() => {
                // What the followers already sent counts before anyone is judged caught up.
                while let Ok(chunk) = chunk_rx.try_recv() {
                    core.chunk(&chunk);
                }
                let now_ms = chrono::Utc::now().timestamp_millis();
                core.check_caught_up(now_ms);
                let snap = Arc::new(core.snapshot(now_ms));
                live.update(&snap);
                snap_tx.send_replace(Some(snap));
                core.save_if_due();
            }
            _ = peer_refresh.tick() => {
                if let Ok((_, fresh)) = kube::select(&client, &config.selection, &default_ns).await {
                    core.peers = fresh;
                }
            }
            _ = &mut shutdown => break,
        }
    }

    if let Some(e) = fatal {
        core.stop_followers();
        let _ = stop_tx.send(true);
        return Err(e.into());
    }
    // Drain what the followers already sent and judge who caught up while
    // they still run (an aborted follower would look finished), then stop them.
    while let Ok(chunk) = chunk_rx.try_recv() {
        core.chunk(&chunk);
    }
    core.check_caught_up(chrono::Utc::now().timestamp_millis());
    core.stop_followers();
    while let Ok(chunk) = chunk_rx.try_recv() {
        core.chunk(&chunk);
    }
    let snap = core.snapshot(chrono::Utc::now().timestamp_millis());
    // The final report is printed even when the state cannot be saved.
    core.save_at_exit();
    let _ = stop_tx.send(true);
    if let Some(server) = server {
        let _ = server.await;
    }
    live.finish();
    let mut out = std::io::stdout().lock();
    let rendered = match (config.output, config.live) {
        // Off a terminal stdout is a stream of JSON lines: the final report is one more line.
        (OutputKind::Json, LiveView::JsonLines) => serde_json::to_writer(&mut out, &snap.report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        (kind, _) => crate::render::render(
            &snap.report,
            kind,
            RenderOptions {
                color: config.color,
                ..RenderOptions::default()
            },
            &mut out,
        ),
    };
    let _ = rendered.and_then(|()| out.flush());
    Ok(verdict::exit_code(&snap.report))
}

/// Resolves on SIGINT, SIGTERM, or the deadline.
async fn shutdown_signal(deadline: Option<tokio::time::Instant>) {
    let deadline = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
            _ = deadline => {}
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = deadline => {}
    }
}
