//! The synchronous core of `watch`: everything it decides, none of it async.
//!
//! Vector's aggregate transform shape: the driver ([`super::run`]) only
//! moves data between channels in a short `tokio::select!`, and calls one
//! method here per event: a chunk to count, a pod to follow or forget, a
//! tick to judge. The core owns the per-line path (a pipeline [`Worker`],
//! the same as `report`'s), which inputs the followed streams are, their
//! cursors, when each has read its history, and the state file.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::history::{Followed, mark_pending, note_processed};
use super::snapshot::{RequestTotal, Snapshot, StreamHealth};
use super::state::{self, SavedState};
use super::{WatchConfig, WatchError};
use crate::envelope::InputKind;
use crate::pipeline::Worker;
use crate::source::Chunk;
use crate::source::kube::follow::{Cursor, Health, Progress};
use crate::source::kube::{PeerIndex, Target};
use crate::verdict::{self, Report, VerdictConfig};

/// How often the state file is saved (and on exit).
const STATE_EVERY: Duration = Duration::from_secs(30);

/// A follower to start: the driver spawns it and hands the task back ([`Core::started`]).
pub struct FollowStart {
    pub name: String,
    pub target: Target,
    pub input: u32,
    pub cursor: Arc<Mutex<Cursor>>,
    pub progress: Arc<Progress>,
    caught_up: bool,
}

/// What `watch` knows and decides between events.
pub struct Core {
    window_ms: i64,
    min_requests: u64,
    max_sources: usize,
    state: Option<PathBuf>,
    worker: Worker,
    /// Input names by index: one per container ever followed.
    names: Vec<String>,
    inputs: HashMap<String, u32>,
    /// Cursors of containers no longer followed (a pod seen again resumes there).
    cursors: HashMap<String, Cursor>,
    followed: HashMap<String, Followed>,
    /// Per input: the kubelet timestamp of the newest line processed.
    newest_processed: HashMap<u32, i64>,
    pub peers: PeerIndex,
    health: Arc<Health>,
    watch_errors: Arc<AtomicU64>,
    save_failures: u64,
    save_failing: bool,
    last_save: tokio::time::Instant,
}

impl Core {
    /// A core for `config`, resuming `saved` (the state file) if any.
    pub fn new(
        config: &WatchConfig,
        saved: Option<SavedState>,
        peers: PeerIndex,
        health: Arc<Health>,
        watch_errors: Arc<AtomicU64>,
    ) -> Core {
        let mut worker = Worker::new(
            &config.formats,
            &config.aggregate,
            InputKind::Auto,
            Arc::from(Vec::new()),
        );
        let (mut names, mut cursors) = (Vec::new(), HashMap::new());
        if let Some(saved) = saved {
            worker.aggregator = saved.aggregator;
            names = saved.names;
            cursors = saved.cursors;
        }
        let inputs = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Core {
            window_ms: config.window_ms,
            min_requests: config.min_requests,
            max_sources: config.max_sources,
            state: config.state.clone(),
            worker,
            names,
            inputs,
            cursors,
            followed: HashMap::new(),
            newest_processed: HashMap::new(),
            peers,
            health,
            watch_errors,
            save_failures: 0,
            save_failing: false,
            last_save: tokio::time::Instant::now(),
        }
    }

    /// Counts one chunk a follower sent.
    pub fn chunk(&mut self, chunk: &Chunk) {
        note_processed(&mut self.newest_processed, chunk);
        self.worker.process(chunk);
    }

    /// A selected pod's container to follow: declares its stream (it counts
    /// for coverage before a line arrives) and says what to start, unless it
    /// is followed already.
    pub fn follow(&mut self, target: Target) -> Option<FollowStart> {
        let name = target.name();
        if self
            .followed
            .get(&name)
            .is_some_and(|f| !f.task.is_finished())
        {
            return None;
        }
        let input = *self.inputs.entry(name.clone()).or_insert_with(|| {
            self.names.push(name.clone());
            (self.names.len() - 1) as u32
        });
        self.worker
            .aggregator
            .declare(input, &name, &target.meta, None);
        let cursor = self.cursors.get(&name).copied().unwrap_or_default();
        Some(FollowStart {
            // A pod seen again (after a re-list) keeps what it had read.
            caught_up: self.followed.get(&name).is_some_and(|f| f.caught_up),
            name,
            target,
            input,
            cursor: Arc::new(Mutex::new(cursor)),
            progress: Arc::new(Progress::default()),
        })
    }

    /// The follower of `start` runs as `task`.
    pub fn started(&mut self, start: FollowStart, task: tokio::task::JoinHandle<()>) {
        let FollowStart {
            name,
            input,
            cursor,
            progress,
            caught_up,
            ..
        } = start;
        let followed = Followed {
            task,
            cursor,
            input,
            progress,
            caught_up,
        };
        self.followed.insert(name, followed);
    }

    /// The pod is gone: stop its followers, keep their cursors.
    pub fn gone(&mut self, namespace: &str, pod: &str) {
        let prefix = format!("{namespace}/pod/{pod}/");
        let cursors = &mut self.cursors;
        self.followed.retain(|name, f| {
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

    /// Decides, for every follower, whether it has delivered its history
    /// (call after processing every chunk already sent).
    pub fn check_caught_up(&mut self, now_ms: i64) {
        for f in self.followed.values_mut() {
            f.check_caught_up(self.newest_processed.get(&f.input).copied(), now_ms);
        }
    }

    /// Stops every follower (the watch ends).
    pub fn stop_followers(&self) {
        for f in self.followed.values() {
            f.task.abort();
        }
    }

    /// The report and health as of `now_ms`: the window slides first.
    pub fn snapshot(&mut self, now_ms: i64) -> Snapshot {
        // What fell out of the window is folded into "last plaintext".
        self.worker.aggregator.prune(now_ms - self.window_ms);
        let resolved = self.worker.aggregator.resolve();
        let verdict_config = VerdictConfig {
            window_ms: self.window_ms,
            until_ms: Some(now_ms),
            min_requests: self.min_requests,
            max_sources: self.max_sources,
        };
        let mut report = verdict::report(&resolved, &verdict_config, &self.names);
        name_peers(&mut report, &self.peers);
        let reading: HashSet<&str> = self
            .followed
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
        let health = &self.health;
        Snapshot {
            report,
            taken_at_ms: now_ms,
            totals,
            health: StreamHealth {
                pods: self.followed.len() as u64,
                streams_open: health.streams_open.load(Ordering::Relaxed),
                reconnects: health.reconnects.load(Ordering::Relaxed),
                errors: health.errors.load(Ordering::Relaxed)
                    + self.watch_errors.load(Ordering::Relaxed),
                duplicates_skipped: health.duplicates_skipped.load(Ordering::Relaxed),
                streams_reading_history: reading.len() as u64,
                state_save_failures: self.save_failures,
            },
        }
    }

    /// Saves the state file when due (every [`STATE_EVERY`], every tick
    /// while failing). A failed save is said once per run of failures,
    /// counted, and retried.
    pub fn save_if_due(&mut self) {
        let Some(path) = &self.state else { return };
        if !self.save_failing && self.last_save.elapsed() < STATE_EVERY {
            return;
        }
        match self.save() {
            Ok(()) => {
                if self.save_failing {
                    let _ = writeln!(
                        std::io::stderr(),
                        "strictly: --state {}: saved again",
                        path.display()
                    );
                }
                self.save_failing = false;
                self.last_save = tokio::time::Instant::now();
            }
            Err(e) => {
                self.save_failures += 1;
                if !self.save_failing {
                    let _ = writeln!(std::io::stderr(), "strictly: warning: {e} (retrying)");
                }
                self.save_failing = true;
            }
        }
    }

    /// Saves the state file (at exit: a failure is only warned about, the
    /// final report is printed anyway).
    pub fn save_at_exit(&self) {
        if self.state.is_some()
            && let Err(e) = self.save()
        {
            let _ = writeln!(std::io::stderr(), "strictly: warning: {e}");
        }
    }

    fn save(&self) -> Result<(), WatchError> {
        let Some(path) = &self.state else {
            return Ok(());
        };
        let mut all = self.cursors.clone();
        for (name, f) in &self.followed {
            if let Ok(c) = f.cursor.lock() {
                all.insert(name.clone(), *c);
            }
        }
        state::save(path, &self.worker.aggregator, &self.names, &all)?;
        Ok(())
    }
}

fn name_peers(report: &mut Report, peers: &PeerIndex) {
    let lookup = |ip: &str| {
        peers
            .get(ip)
            .map(|p| (p.pod.clone(), p.workload.clone(), p.sidecar))
    };
    verdict::name_peers(report, &lookup);
}
