//! `watch`: follow every selected pod and keep the verdicts current.
//!
//! The same per-line path as `report` (a pipeline [`Worker`]) inside a thin
//! `tokio::select!` shell: chunks from the followers, pod events from the
//! watcher, a ticker that publishes [`snapshot::Snapshot`]s (to the live
//! view, the HTTP endpoint and the state file), and the shutdown signal.
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

pub mod follow;
mod history;
pub mod live;
pub mod pods;
pub mod snapshot;
pub mod state;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::aggregate::AggregateConfig;
use crate::envelope::InputKind;
use crate::format::FormatSet;
use crate::pipeline::Worker;
use crate::render::{OutputKind, RenderOptions};
use crate::source::Chunk;
use crate::source::kube::{self, KubeAccess, KubeError, KubeSelection, PeerIndex};
use crate::verdict::{self, Report, VerdictConfig};

use follow::{Cursor, Follow, Health, Progress};
use history::{Followed, mark_pending, note_processed};
use live::LiveView;
use pods::PodEvent;
use snapshot::{RequestTotal, Snapshot, StreamHealth};

/// How far before the window the first connection reads, so the first
/// verdict can already tell whether each replica's log covers the window.
const COVERAGE_MARGIN_S: i64 = 3600;

/// How often the state file is saved (and on exit).
const STATE_EVERY: Duration = Duration::from_secs(30);

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
    let mut peers = match kube::select(&client, &config.selection, &default_ns).await {
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

    let mut worker = Worker::new(
        &config.formats,
        &config.aggregate,
        InputKind::Auto,
        Arc::from(Vec::new()),
    );
    let mut names: Vec<String> = Vec::new();
    let mut inputs: HashMap<String, u32> = HashMap::new();
    let mut cursors: HashMap<String, Cursor> = HashMap::new();
    if let Some(saved) = saved {
        worker.aggregator = saved.aggregator;
        names = saved.names;
        inputs = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        cursors = saved.cursors;
    }
    let mut followed: HashMap<String, Followed> = HashMap::new();
    // Per input: the kubelet timestamp of the newest line processed.
    let mut newest_processed: HashMap<u32, i64> = HashMap::new();
    let mut save_failures = 0u64;
    let mut save_failing = false;
    let since_s = config
        .backfill_ms
        .map_or(config.window_ms / 1000 + COVERAGE_MARGIN_S, |s| s / 1000);

    let mut ticker = tokio::time::interval(config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut peer_refresh = tokio::time::interval(Duration::from_secs(60));
    peer_refresh.tick().await;
    let mut live = live::Live::new(config.live, config.color);
    let mut last_save = tokio::time::Instant::now();
    let deadline = config.duration.map(|d| tokio::time::Instant::now() + d);
    let shutdown = shutdown_signal(deadline);
    tokio::pin!(shutdown);

    let make_snapshot = |worker: &mut Worker,
                         names: &[String],
                         peers: &PeerIndex,
                         followed: &HashMap<String, Followed>,
                         save_failures: u64|
     -> Snapshot {
        let now = chrono::Utc::now().timestamp_millis();
        // The window slides: what fell out of it is folded into "last plaintext".
        worker.aggregator.prune(now - config.window_ms);
        let resolved = worker.aggregator.resolve();
        let verdict_config = VerdictConfig {
            window_ms: config.window_ms,
            until_ms: Some(now),
            min_requests: config.min_requests,
            max_sources: config.max_sources,
        };
        let mut report = verdict::report(&resolved, &verdict_config, names);
        name_peers(&mut report, peers);
        let reading: HashSet<&str> = followed
            .iter()
            .filter(|(_, f)| !f.caught_up)
            .map(|(n, _)| n.as_str())
            .collect();
        mark_pending(&mut report, &resolved, &reading);
        let totals = resolved
            .destinations
            .iter()
            .flat_map(|d| {
                d.sources.iter().map(|s| RequestTotal {
                    destination: d.name.clone(),
                    source: s.source.clone(),
                    peer: s.peer.clone(),
                    mtls: s.cell.total_mtls,
                    plaintext: s.cell.total_plaintext,
                })
            })
            .collect();
        Snapshot {
            report,
            taken_at_ms: now,
            totals,
            health: StreamHealth {
                pods: followed.len() as u64,
                streams_open: health.streams_open.load(Ordering::Relaxed),
                reconnects: health.reconnects.load(Ordering::Relaxed),
                errors: health.errors.load(Ordering::Relaxed)
                    + watch_errors.load(Ordering::Relaxed),
                duplicates_skipped: health.duplicates_skipped.load(Ordering::Relaxed),
                streams_reading_history: reading.len() as u64,
                state_save_failures: save_failures,
            },
        }
    };

    let mut fatal: Option<KubeError> = None;
    loop {
        tokio::select! {
            Some(chunk) = chunk_rx.recv() => {
                note_processed(&mut newest_processed, &chunk);
                worker.process(&chunk);
            }
            Some(e) = fatal_rx.recv() => {
                fatal = Some(e);
                break;
            }
            Some(event) = pod_rx.recv() => match event {
                PodEvent::Follow(target) => {
                    let name = target.name();
                    if followed.get(&name).is_some_and(|f| !f.task.is_finished()) {
                        continue;
                    }
                    let input = *inputs.entry(name.clone()).or_insert_with(|| {
                        names.push(name.clone());
                        (names.len() - 1) as u32
                    });
                    worker.aggregator.declare(input, &name, &target.meta, None);
                    let cursor = Arc::new(Mutex::new(cursors.get(&name).copied().unwrap_or_default()));
                    let progress = Arc::new(Progress::default());
                    // A pod seen again (after a re-list) keeps what it had read.
                    let caught_up = followed.get(&name).is_some_and(|f| f.caught_up);
                    let task = tokio::spawn(follow::follow(Follow {
                        client: client.clone(),
                        meta: Arc::clone(&target.meta),
                        input,
                        since_seconds: since_s,
                        stall: config.stall,
                        cursor: Arc::clone(&cursor),
                        health: Arc::clone(&health),
                        out: chunk_tx.clone(),
                        read_previous: target.restart_count > 0,
                        fatal: fatal_tx.clone(),
                        progress: Arc::clone(&progress),
                    }));
                    followed.insert(name, Followed { task, cursor, input, progress, caught_up });
                }
                PodEvent::Gone { namespace, pod } => {
                    let prefix = format!("{namespace}/pod/{pod}/");
                    followed.retain(|name, f| {
                        let gone = name.starts_with(&prefix);
                        if gone {
                            f.task.abort();
                            if let Ok(c) = f.cursor.lock() {
                                cursors.insert(name.clone(), *c);
                            }
                        }
                        !gone
                    });
                }
            },
            _ = ticker.tick() => {
                // What the followers already sent counts before anyone is judged caught up.
                while let Ok(chunk) = chunk_rx.try_recv() {
                    note_processed(&mut newest_processed, &chunk);
                    worker.process(&chunk);
                }
                let now_ms = chrono::Utc::now().timestamp_millis();
                for f in followed.values_mut() {
                    f.check_caught_up(newest_processed.get(&f.input).copied(), now_ms);
                }
                let snap = Arc::new(make_snapshot(&mut worker, &names, &peers, &followed, save_failures));
                // Published before the change lines are written: whoever
                // reacts to a line reads that tick's /metrics and /report.
                snap_tx.send_replace(Some(Arc::clone(&snap)));
                live.update(&snap);
                // A failed save is said once per run of failures, counted, and retried every tick.
                if let Some(path) = &config.state
                    && (save_failing || last_save.elapsed() >= STATE_EVERY)
                {
                    match save_state(path, &worker, &names, &followed, &cursors) {
                        Ok(()) => {
                            if save_failing {
                                let _ = writeln!(std::io::stderr(), "strictly: --state {}: saved again", path.display());
                            }
                            save_failing = false;
                            last_save = tokio::time::Instant::now();
                        }
                        Err(e) => {
                            save_failures += 1;
                            if !save_failing {
                                let _ = writeln!(std::io::stderr(), "strictly: warning: {e} (retrying)");
                            }
                            save_failing = true;
                        }
                    }
                }
            }
            _ = peer_refresh.tick() => {
                if let Ok((_, fresh)) = kube::select(&client, &config.selection, &default_ns).await {
                    peers = fresh;
                }
            }
            _ = &mut shutdown => break,
        }
    }

    if let Some(e) = fatal {
        for f in followed.values() {
            f.task.abort();
        }
        let _ = stop_tx.send(true);
        return Err(e.into());
    }
    // Drain what the followers already sent and judge who caught up while
    // they still run (an aborted follower would look finished), then stop them.
    while let Ok(chunk) = chunk_rx.try_recv() {
        note_processed(&mut newest_processed, &chunk);
        worker.process(&chunk);
    }
    let now_ms = chrono::Utc::now().timestamp_millis();
    for f in followed.values_mut() {
        f.check_caught_up(newest_processed.get(&f.input).copied(), now_ms);
    }
    for f in followed.values() {
        f.task.abort();
    }
    while let Ok(chunk) = chunk_rx.try_recv() {
        worker.process(&chunk);
    }
    let snap = make_snapshot(&mut worker, &names, &peers, &followed, save_failures);
    // The final report is printed even when the state cannot be saved.
    if let Some(path) = &config.state
        && let Err(e) = save_state(path, &worker, &names, &followed, &cursors)
    {
        let _ = writeln!(std::io::stderr(), "strictly: warning: {e}");
    }
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

fn save_state(
    path: &std::path::Path,
    worker: &Worker,
    names: &[String],
    followed: &HashMap<String, Followed>,
    cursors: &HashMap<String, Cursor>,
) -> Result<(), WatchError> {
    let mut all = cursors.clone();
    for (name, f) in followed {
        if let Ok(c) = f.cursor.lock() {
            all.insert(name.clone(), *c);
        }
    }
    state::save(path, &worker.aggregator, names, &all)?;
    Ok(())
}

fn name_peers(report: &mut Report, peers: &PeerIndex) {
    let lookup = |ip: &str| {
        peers
            .get(ip)
            .map(|p| (p.pod.clone(), p.workload.clone(), p.sidecar))
    };
    verdict::name_peers(report, &lookup);
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
