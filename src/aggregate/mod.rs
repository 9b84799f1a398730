//! Aggregation: counters per destination × source, in one-second buckets.
//!
//! The core is synchronous: [`Aggregator::record`] per request,
//! [`Aggregator::merge`] to combine per-thread aggregates, and
//! [`Aggregator::resolve`] to settle attribution that needs a whole stream
//! (spec §3 rules 1 and 4). Buckets are half-open seconds `(s-1, s]`, so any
//! window whose edges fall on whole seconds is answered exactly; when the
//! window is known while reading (`--until`), requests outside it are
//! filtered exactly at the millisecond instead.
//!
//! Names are interned once; the per-request path hashes borrowed bytes and
//! allocates only when it meets a new destination, source, second or hour.

mod ambient;
mod bound;
mod buckets;
mod cell;
mod counted;
mod durations;
mod gaps;
mod malformed;
mod merge;
mod names;
mod rejected;
mod resolve;
mod sketch;
mod validate;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use serde::{Deserialize, Serialize};

pub use ambient::{OutcomeCounts, Outcomes, outcomes_in};
pub use bound::Folded;
pub use cell::{Cell, Counts, Window};
pub use counted::CountedRow;
pub use gaps::{Activity, Hole};
pub use malformed::{MalformedTimes, leading_time};
pub use rejected::{Refusals, RejectedCaller, UnplacedRefusals};
pub use resolve::{
    Resolved, ResolvedDestination, ResolvedSource, StreamCoverage, UNATTRIBUTED, UNKNOWN_NAMESPACE,
};
pub use sketch::Sketch;

use bound::{Bound, class_of, hour_of_second, source_hash};
use cell::{UNTIMED, max_opt, min_opt};
use names::{Interner, OneOf};

use crate::envelope::StreamMeta;
use crate::request::{NamedDestination, Request, Transport};
use crate::source::SourceMeta;
use crate::workload::workload_of_pod;

/// How many malformed lines are kept as examples.
pub const MALFORMED_EXAMPLES: usize = 5;
/// How much of a malformed line an example keeps.
const EXAMPLE_BYTES: usize = 240;

/// What the CLI decides before reading.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AggregateConfig {
    /// `-n`: the namespace of streams whose metadata names the pod but not its namespace.
    pub namespace: Option<String>,
    /// `--destination NS/NAME` (spec §3 rule 2).
    pub destination: Option<String>,
    /// The window, when its end is known before reading (`--until`): filters exactly.
    pub known_window: Option<Window>,
    /// Source rows kept per destination and class (mTLS, plaintext) while
    /// reading (0: no bound). Past it, sources are folded by a fixed hash into
    /// one row with exact totals (see `bound`).
    pub max_sources: usize,
    /// Entries dated after this (epoch ms) are implausible: malformed, not
    /// evidence (a line dated 2096 must not move the window's end).
    #[serde(default)]
    pub latest_plausible_ms: Option<i64>,
}

/// How far an entry's START_TIME may lie after the time it was written
/// (clock steps, rounding): beyond it the entry is corrupt.
pub const START_AFTER_WRITE_SLACK_MS: i64 = 5 * 60_000;

/// Input-level counters (spec §5 `input`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputCounts {
    pub lines: u64,
    /// Inbound access entries.
    pub requests: u64,
    /// Access entries that are not inbound.
    pub outbound: u64,
    /// Lines that are not access entries.
    pub skipped: u64,
    /// Lines that look like access entries but match no format.
    pub malformed: u64,
    /// Access entries dropped because another input already had them (same
    /// stream, write time and bytes).
    #[serde(default)]
    pub duplicates: u64,
    /// Lines the envelope or export attributes to another container than
    /// istio-proxy (counted in `skipped` too).
    #[serde(default)]
    pub other_containers: u64,
    /// ztunnel `connection failed` lines (inbound): connections denied
    /// before ztunnel knew the workload, counted apart from any destination.
    /// Not in `watch --state` files (kept at version 2, whose fuzz regressions
    /// are layout-specific): informational, it counts again from a restart.
    #[serde(skip)]
    pub failed_connections: u64,
    /// The first few malformed lines, ordered by (input, line).
    pub malformed_examples: Vec<MalformedExample>,
}

/// Why an access entry's times make it no evidence (see [`Aggregator::check_times`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImplausibleTime {
    /// START_TIME lies after the time the line was written.
    StartsAfterWritten,
    /// Dated after the latest plausible time (the future).
    InTheFuture,
}

/// One malformed line kept for the report.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MalformedExample {
    pub input: u32,
    pub line: u64,
    pub text: String,
}

/// One stream: a pod's log, or a whole metadata-less input.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StreamInfo {
    /// What a reader calls it: `pod/NAME/CONTAINER` or the input's name.
    pub display: String,
    /// The input a metadata-less stream (or a substream of one) belongs to:
    /// its unattributed lines may be any of that input's destinations' (spec §3 rule 5).
    input: Option<u32>,
    /// The workload the metadata names (pod name minus suffixes).
    workload: Option<String>,
    /// The namespace the metadata (or `-n`) gives.
    namespace: Option<String>,
    /// Returns true if and only if `namespace` is `-n`'s, not the metadata's:
    /// the stream's own destination SANs then win over it (issue 7 item 13).
    #[serde(default)]
    namespace_from_flag: bool,
    /// The first and last *write* times seen (envelope timestamps, else an
    /// entry's START_TIME + DURATION): what the stream's evidence covers.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// When the stream's container started, where the source knows it.
    pub started_ms: Option<i64>,
    /// Why its log could not be read, if it could not.
    pub error: Option<String>,
    /// Destinations named by the stream's own lines (rule 3): for rule 4.
    named: OneOf,
    /// Namespaces of those destinations: for a prefix stream's missing namespace.
    named_ns: OneOf,
    /// The last destination this stream contributed to: skips a hash per line.
    last_dest: Option<u32>,
    /// See [`Aggregator::fallback_destination`]; ids are this aggregator's.
    fallback_dest: Option<u32>,
    /// Malformed lines of a pod's stream: doubt on its workload (review F3).
    #[serde(default)]
    pub malformed: MalformedTimes,
    /// Lines per five minutes: holes inside the log (review F11).
    #[serde(default)]
    pub activity: Activity,
    /// Addresses (IPs) the stream received inbound requests on: a refusal
    /// logged at one of them was the pod's own inbound listener's. Not in
    /// the state file (its layout is versioned): after a restart they are
    /// learnt again from the next inbound request.
    #[serde(skip)]
    own_addresses: Vec<Vec<u8>>,
}

/// Where a destination's name will come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum DestKind {
    Named,
    /// Lines of a stream with no destination of their own (rule 4).
    PendingStream(u32),
    /// A stream whose metadata names the workload but not the namespace.
    PendingNamespace(u32),
    /// A ztunnel connection's destination (ambient mode): the namespaces its
    /// lines' `dst.identity` named decide its final namespace (see `ambient`).
    Ambient {
        identity_ns: OneOf,
    },
}

/// Per-thread (or merged) aggregate of everything read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Aggregator {
    config: AggregateConfig,
    pub input: InputCounts,
    dests: Interner,
    dest_kind: Vec<DestKind>,
    sources: Interner,
    /// Namespaces named by lines: evidence for streams that lack one.
    namespaces: Interner,
    streams: Interner,
    stream_info: Vec<StreamInfo>,
    cells: HashMap<(u32, u32), Cell>,
    /// Which streams carried each destination's requests (coverage is per replica).
    contributions: HashSet<(u32, u32)>,
    /// Per destination: the source bound's thresholds and live counts.
    bounds: HashMap<u32, Bound>,
    /// Cells per source (a name is released when none is left).
    cells_per_source: HashMap<u32, u32>,
    /// What the bound folded away, per destination.
    folded: HashMap<u32, Folded>,
    /// Ambient destinations' connection outcomes per second (see `ambient`).
    /// Not in state files, like `InputCounts::failed_connections`: verdicts
    /// never depend on them (rejected plaintext is in the cells as plaintext).
    #[serde(skip)]
    outcomes: HashMap<u32, Outcomes>,
    /// The newest access entry's write time: where a window without `--until` ends.
    newest_write_ms: Option<i64>,
    /// The newest START_TIME, for inputs with no write time at all.
    newest_start_ms: Option<i64>,
    /// Malformed lines no pod is known for (metadata-less inputs, lines cut
    /// at the maximum length), per input: doubt on every destination.
    #[serde(default)]
    malformed_unplaced: std::collections::BTreeMap<u32, MalformedTimes>,
    /// Connections refused for want of a filter chain (spec §4 `regressed`).
    /// Not in the state file (its layout is versioned): a watch resumed from
    /// one sees a broken caller at its next refused connection.
    #[serde(skip)]
    rejections: rejected::Rejections,
    /// Line-named destinations (raw value → ids): skips a parse and two interns per line.
    #[serde(skip)]
    named_cache: HashMap<Box<[u8]>, Option<(u32, u32)>>,
    #[serde(skip)]
    scratch: Vec<u8>,
}

/// Identifies a stream inside one [`Aggregator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamId(u32);

impl StreamId {
    /// A dense index, for per-stream side tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl Aggregator {
    pub fn new(config: AggregateConfig) -> Self {
        Aggregator {
            config,
            ..Default::default()
        }
    }

    pub fn config(&self) -> &AggregateConfig {
        &self.config
    }

    /// Returns the stream a line belongs to: its pod (whichever input it came
    /// from: a restarted container's previous log is the same replica), or the input itself.
    pub fn stream(
        &mut self,
        input: u32,
        input_name: &str,
        meta: &StreamMeta<'_>,
        source: Option<&SourceMeta>,
    ) -> StreamId {
        let key = &mut self.scratch;
        key.clear();
        if meta.pod.is_none() {
            key.extend_from_slice(&input.to_le_bytes());
        }
        for part in [meta.namespace, meta.pod, meta.container] {
            key.push(0);
            key.extend_from_slice(part.unwrap_or(b"\x01"));
        }
        let id = self.streams.intern(key);
        if id as usize == self.stream_info.len() {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let display = match meta.pod {
                Some(pod) => {
                    let mut d = String::from("pod/");
                    if let Some(ns) = meta.namespace {
                        d = format!("{}/pod/", text(ns));
                    }
                    d.push_str(&text(pod));
                    if let Some(c) = meta.container {
                        d.push('/');
                        d.push_str(&text(c));
                    }
                    d
                }
                None => input_name.to_string(),
            };
            let workload = source
                .and_then(|s| s.workload.clone())
                .or_else(|| meta.pod.map(|p| text(workload_of_pod(p))));
            self.stream_info.push(StreamInfo {
                display,
                input: meta.pod.is_none().then_some(input),
                workload,
                namespace: meta
                    .namespace
                    .map(text)
                    .or_else(|| meta.pod.and(self.config.namespace.clone())),
                namespace_from_flag: meta.namespace.is_none()
                    && meta.pod.is_some()
                    && self.config.namespace.is_some(),
                started_ms: source.and_then(|s| s.container_started_ms),
                ..Default::default()
            });
        }
        StreamId(id)
    }

    /// Forgets buckets at or before `before_ms` (a sliding window moved past
    /// them), keeping when plaintext was last seen and the totals.
    pub fn prune(&mut self, before_ms: i64) {
        let keep_from = before_ms.div_euclid(1000) + 1;
        let keep_hour = before_ms.div_euclid(3_600_000);
        for cell in self
            .cells
            .values_mut()
            .chain(self.folded.values_mut().map(|f| &mut f.cell))
        {
            for (s, b) in cell.buckets.take_range(UNTIMED + 1, keep_from - 1) {
                if let Some(t) = b.counts(s).last_plaintext_ms {
                    cell.last_plaintext_before = max_opt(cell.last_plaintext_before, Some(t));
                }
            }
            cell.durations.prune(keep_hour);
        }
        for o in self.outcomes.values_mut() {
            *o = o.split_off(&keep_from);
        }
        self.outcomes.retain(|_, o| !o.is_empty());
        for f in self.folded.values_mut() {
            f.prune(keep_hour);
        }
        for info in &mut self.stream_info {
            info.malformed.prune(before_ms);
            info.activity.prune(before_ms);
        }
        for m in self.malformed_unplaced.values_mut() {
            m.prune(before_ms);
        }
        self.rejections.prune(before_ms);
    }

    /// Records a connection a listener of `stream` refused for want of a
    /// filter chain ([`crate::request::is_filter_chain_rejection`]).
    /// `known_inbound` is true for formats that log the inbound listener
    /// only; otherwise the refusal is placed by its local address when the
    /// aggregate is resolved (see `rejected`).
    pub fn reject(
        &mut self,
        stream: StreamId,
        req: &Request<'_>,
        known_inbound: bool,
        envelope_ms: Option<i64>,
    ) {
        self.observe_entry(stream, req, envelope_ms);
        if known_inbound {
            let dest = match self.stream_info[stream.0 as usize].fallback_dest {
                Some(d) => d,
                None => self.fallback_destination(stream),
            };
            self.contributions.insert((dest, stream.0));
        }
        let t = req.time_ms.or(envelope_ms);
        let site = rejected::RefusalSite {
            stream: stream.0,
            local: req.local_address.unwrap_or_default().to_vec(),
            known_inbound,
        };
        self.rejections.record(site, req.peer, t);
    }

    /// Declares a stream the source knows before reading it (a pod's log), so
    /// that a replica with no lines, or whose log could not be read, still
    /// counts against its workload's coverage.
    pub fn declare(
        &mut self,
        input: u32,
        input_name: &str,
        source: &SourceMeta,
        error: Option<String>,
    ) {
        let meta = StreamMeta {
            namespace: Some(source.namespace.as_bytes()),
            pod: Some(source.pod.as_bytes()),
            container: Some(source.container.as_bytes()),
        };
        let stream = self.stream(input, input_name, &meta, Some(source));
        // A ztunnel's log is no destination's own: its ambient pods are
        // declared against it (`declare_ambient`), its lines name theirs.
        if source.labels.get("app").is_some_and(|a| a == "ztunnel") {
            if error.is_some() {
                self.stream_info[stream.0 as usize].error = error;
            }
            return;
        }
        let dest = match self.stream_info[stream.0 as usize].fallback_dest {
            Some(d) => d,
            None => self.fallback_destination(stream),
        };
        self.contributions.insert((dest, stream.0));
        let info = &mut self.stream_info[stream.0 as usize];
        if error.is_some() {
            info.error = error;
        }
    }

    /// The part of a metadata-less stream that one address (one pod) received:
    /// in a log of many replicas, each is its own stream for attribution and coverage.
    pub fn substream(&mut self, parent: StreamId, local_address: &[u8]) -> StreamId {
        let key = &mut self.scratch;
        key.clear();
        key.extend_from_slice(self.streams.name(parent.0));
        key.extend_from_slice(b"\0local\0");
        key.extend_from_slice(local_address);
        let id = self.streams.intern(key);
        if id as usize == self.stream_info.len() {
            let parent = &self.stream_info[parent.0 as usize];
            let display = format!(
                "{} (pod IP {})",
                parent.display,
                String::from_utf8_lossy(local_address)
            );
            let input = parent.input;
            self.stream_info.push(StreamInfo {
                display,
                input,
                ..Default::default()
            });
        }
        StreamId(id)
    }

    /// When a request counts: its START_TIME (else its write time) — but a
    /// plaintext request counts when it *ended*, so a websocket or gRPC
    /// stream opened before the window and still talking in it blocks
    /// (review finding F1); with `--until`, one still open at the window's
    /// end counts at the end.
    fn request_time(&self, req: &Request<'_>, envelope_ms: Option<i64>) -> Option<i64> {
        let start = req.time_ms.or(envelope_ms);
        if !req.is_plaintext() {
            return start;
        }
        // Never after the line was written (the window's end is a write time).
        let end = match (
            req.time_ms
                .zip(req.duration_ms)
                .map(|(s, d)| s.saturating_add(d.min(i64::MAX as u64) as i64)),
            envelope_ms,
        ) {
            (Some(e), Some(w)) => Some(e.min(w)),
            (e, w) => e.or(w),
        }
        .or(start);
        match (self.config.known_window, start, end) {
            (Some(w), Some(s), Some(e)) if s <= w.end_ms && e > w.end_ms => Some(w.end_ms),
            _ => end,
        }
    }

    /// Returns an error if and only if an access entry's times cannot be
    /// true: START_TIME after the line was written, or either in the future.
    /// Such an entry is malformed, never evidence (issue 7 item 3).
    pub fn check_times(
        &self,
        req: &Request<'_>,
        envelope_ms: Option<i64>,
    ) -> Result<(), ImplausibleTime> {
        if let (Some(start), Some(written)) = (req.time_ms, envelope_ms)
            && start > written.saturating_add(START_AFTER_WRITE_SLACK_MS)
        {
            return Err(ImplausibleTime::StartsAfterWritten);
        }
        if let Some(latest) = self.config.latest_plausible_ms
            && (req.time_ms.is_some_and(|t| t > latest) || envelope_ms.is_some_and(|t| t > latest))
        {
            return Err(ImplausibleTime::InTheFuture);
        }
        Ok(())
    }

    /// Notes an access entry (inbound or not) of `stream`: its write time
    /// (the envelope's, else START_TIME + DURATION — never START_TIME alone:
    /// a long-lived request logged at its end starts long before the log
    /// does) is evidence of what the stream covers and of where the input ends.
    pub fn observe_entry(&mut self, stream: StreamId, req: &Request<'_>, envelope_ms: Option<i64>) {
        self.newest_start_ms = max_opt(self.newest_start_ms, req.time_ms);
        let written = match envelope_ms {
            // The envelope's time was observed with the line already.
            Some(t) => Some(t),
            None => {
                let derived = req
                    .time_ms
                    .zip(req.duration_ms)
                    .map(|(start, d)| start.saturating_add(d.min(i64::MAX as u64) as i64));
                if let Some(t) = derived {
                    self.observe(stream, t);
                }
                derived
            }
        };
        self.newest_write_ms = max_opt(self.newest_write_ms, written);
    }

    /// Notes a write timestamp seen in a stream (any line): evidence of what the input covers.
    pub fn observe(&mut self, stream: StreamId, t: i64) {
        let s = &mut self.stream_info[stream.0 as usize];
        s.first_ms = min_opt(s.first_ms, Some(t));
        s.last_ms = max_opt(s.last_ms, Some(t));
        s.activity.add(t);
    }

    /// Keeps a malformed line as an example if it is among the first few.
    pub fn malformed(&mut self, input: u32, line: u64, text: &[u8]) {
        self.input.malformed += 1;
        let ex = &mut self.input.malformed_examples;
        if ex.len() >= MALFORMED_EXAMPLES
            && ex
                .last()
                .is_some_and(|last| (last.input, last.line) < (input, line))
        {
            return;
        }
        let cut = &text[..text.len().min(EXAMPLE_BYTES)];
        let example = MalformedExample {
            input,
            line,
            text: String::from_utf8_lossy(cut).into_owned(),
        };
        let at = ex.partition_point(|e| (e.input, e.line) < (input, line));
        ex.insert(at, example);
        ex.truncate(MALFORMED_EXAMPLES);
    }

    /// Counts a malformed line of `stream` (when the line's stream is known)
    /// written at `t`: it keeps the stream's destination from `ready` while
    /// it lies in the window (review finding F3). A pod's stream counts
    /// against its own workload, which it joins even with no request of its
    /// own; any other against every destination of the run.
    pub fn malformed_at(
        &mut self,
        stream: Option<StreamId>,
        input: u32,
        line: u64,
        text: &[u8],
        t: Option<i64>,
    ) {
        self.malformed(input, line, text);
        match stream {
            Some(stream) if self.stream_info[stream.0 as usize].workload.is_some() => {
                let dest = match self.stream_info[stream.0 as usize].fallback_dest {
                    Some(d) => d,
                    None => self.fallback_destination(stream),
                };
                self.contributions.insert((dest, stream.0));
                self.stream_info[stream.0 as usize].malformed.add(t);
            }
            _ => self.malformed_unplaced.entry(input).or_default().add(t),
        }
    }

    /// Records one inbound request of `stream`; `envelope_ms` is the envelope's time.
    pub fn record(&mut self, stream: StreamId, req: &Request<'_>, envelope_ms: Option<i64>) {
        if req
            .ambient
            .is_some_and(|a| a.outcome == crate::request::ConnectionOutcome::EarlyDeny)
        {
            // No destination pod, no identity: evidence of coverage only.
            self.input.failed_connections += 1;
            self.observe_entry(stream, req, envelope_ms);
            return;
        }
        self.input.requests += 1;
        self.observe_entry(stream, req, envelope_ms);
        let t = self.request_time(req, envelope_ms);
        // Attribution does not depend on the window: a line outside it still
        // names its destination and namespace (issue 7 item 11).
        let dest = self.destination(stream, req);
        let info = &mut self.stream_info[stream.0 as usize];
        if let Some(local) = req.local_address
            && info.own_addresses.len() < rejected::MAX_OWN_ADDRESSES
            && !info.own_addresses.iter().any(|a| a == local)
        {
            info.own_addresses.push(local.to_vec());
        }
        if info.last_dest != Some(dest) {
            info.last_dest = Some(dest);
            self.contributions.insert((dest, stream.0));
        }
        if let (Some(w), Some(t)) = (self.config.known_window, t)
            && !w.contains(t)
        {
            // Outside the window (the report counts it as requests minus those
            // in the window); before it, it still says when plaintext was last seen.
            if req.is_plaintext() {
                let cell = self.target(dest, req, None);
                if t <= w.end_ms {
                    cell.last_plaintext_before = max_opt(cell.last_plaintext_before, Some(t));
                } else {
                    // After `--until`: not this window's, but the caller may
                    // still be plaintext today (review finding F6).
                    cell.plaintext_after = max_opt(cell.plaintext_after, Some(t));
                }
            }
            return;
        }
        // Second s holds ((s-1)·1000, s·1000]; the offset 1..=1000 places t inside it.
        let (second, off) = match t {
            Some(t) => {
                let second = (t + 999).div_euclid(1000);
                (second, (t - (second - 1) * 1000) as u16)
            }
            None => (UNTIMED, 0),
        };
        self.tally_outcome(dest, req, second);
        let cell = self.target(dest, req, Some(hour_of_second(second)));
        cell.buckets.entry(second).record(req, off);
        match req.transport {
            Transport::Mtls { .. } => cell.total_mtls += 1,
            Transport::Plaintext { .. } => cell.total_plaintext += 1,
        }
        // The greatest, not the last: the same whatever the order.
        cell.caller = cell.caller.max(req.caller);
        if let (Some(d), Some(t)) = (req.duration_ms, t) {
            let hour = t.div_euclid(3_600_000);
            cell.durations.record(hour, d);
        }
    }

    /// Spec §3: metadata, then `--destination`, then the line, then the stream.
    fn destination(&mut self, stream: StreamId, req: &Request<'_>) -> u32 {
        // A ztunnel line names its destination pod; its stream is the node's ztunnel.
        if let Some(a) = &req.ambient {
            return self.ambient_destination(a);
        }
        let info = &self.stream_info[stream.0 as usize];
        let metadata_decides =
            info.workload.is_some() && info.namespace.is_some() && !info.namespace_from_flag;
        if metadata_decides || self.config.destination.is_some() {
            // The line's own name cannot change the outcome: skip parsing it.
            return match info.fallback_dest {
                Some(d) => d,
                None => self.fallback_destination(stream),
            };
        }
        let named = req
            .named_destination
            .and_then(|n| self.named_destination(n));
        if let Some((id, ns_id)) = named {
            let info = &mut self.stream_info[stream.0 as usize];
            info.named.note(id);
            info.named_ns.note(ns_id);
        }
        let named = named.map(|(id, _)| id);
        let info = &self.stream_info[stream.0 as usize];
        let fallback = match info.fallback_dest {
            Some(d) => d,
            None => self.fallback_destination(stream),
        };
        let info = &self.stream_info[stream.0 as usize];
        if info.workload.is_some() || self.config.destination.is_some() {
            fallback
        } else {
            named.unwrap_or(fallback)
        }
    }

    /// The destination of a stream's lines when the line does not decide: its
    /// metadata's workload, `--destination`, or pending until the stream ends.
    /// Computed once per stream.
    fn fallback_destination(&mut self, stream: StreamId) -> u32 {
        let info = &self.stream_info[stream.0 as usize];
        let stream_key = self.streams.name(stream.0).to_owned();
        let id = match (&info.workload, &info.namespace, &self.config.destination) {
            // `-n` only fills in: the stream's own SANs may still name its namespace.
            (Some(_), Some(_), _) if info.namespace_from_flag => self.intern_dest(
                &[b"\0ns\0", &stream_key],
                DestKind::PendingNamespace(stream.0),
            ),
            (Some(workload), Some(ns), _) => {
                let key = format!("{ns}/{workload}");
                self.intern_dest(&[key.as_bytes()], DestKind::Named)
            }
            (Some(_), None, _) => self.intern_dest(
                &[b"\0ns\0", &stream_key],
                DestKind::PendingNamespace(stream.0),
            ),
            (None, _, Some(d)) => {
                let d = d.clone();
                self.intern_dest(&[d.as_bytes()], DestKind::Named)
            }
            (None, _, None) => self.intern_dest(
                &[b"\0stream\0", &stream_key],
                DestKind::PendingStream(stream.0),
            ),
        };
        self.stream_info[stream.0 as usize].fallback_dest = Some(id);
        id
    }

    /// The destination (and namespace) ids a line's own name stands for; the
    /// last one is remembered, since a stream's lines mostly name one destination.
    fn named_destination(&mut self, named: NamedDestination<'_>) -> Option<(u32, u32)> {
        if let Some(&ids) = self.named_cache.get(named.raw()) {
            return ids;
        }
        let ids = named.namespace_and_name().map(|(ns, name)| {
            let id = self.intern_dest(&[ns, b"/", name], DestKind::Named);
            (id, self.namespaces.intern(ns))
        });
        // A few destinations name themselves over and over; garbage must not grow it.
        if self.named_cache.len() >= 4096 {
            self.named_cache.clear();
        }
        self.named_cache.insert(named.raw().into(), ids);
        ids
    }

    /// Interns the destination whose key is the concatenation of `parts`.
    fn intern_dest(&mut self, parts: &[&[u8]], kind: DestKind) -> u32 {
        self.scratch.clear();
        for p in parts {
            self.scratch.extend_from_slice(p);
        }
        let id = self.dests.intern(&self.scratch);
        if id as usize == self.dest_kind.len() {
            self.dest_kind.push(kind);
        }
        id
    }

    /// The cell a request of `dest` is counted in: its source's own, or the
    /// destination's folded row. `hour` (of the request's bucket) notes a
    /// folded source in the distinct-count sketch; `None` when it had no request in the window.
    fn target(&mut self, dest: u32, req: &Request<'_>, hour: Option<i64>) -> &mut Cell {
        let key = &mut self.scratch;
        key.clear();
        match req.transport {
            Transport::Mtls { identity: Some(id) } => key.extend_from_slice(id),
            Transport::Mtls { identity: None } => key.extend_from_slice(b"mtls"),
            Transport::Plaintext { .. } => key.extend_from_slice(b"plaintext"),
        }
        if let Some(peer) = req.peer {
            key.push(0);
            key.extend_from_slice(peer);
        }
        let key = std::mem::take(&mut self.scratch);
        let live = self.live_source(dest, &key);
        if live.is_none()
            && let Some(hour) = hour
        {
            self.folded.entry(dest).or_default().saw(hour, &key);
        }
        self.scratch = key;
        match live {
            Some(source) => self.cells.entry((dest, source)).or_default(),
            None => &mut self.folded.entry(dest).or_default().cell,
        }
    }

    /// The id of `key`'s live cell under `dest` (created if new and within
    /// the bound), or `None` if the bound folds it.
    fn live_source(&mut self, dest: u32, key: &[u8]) -> Option<u32> {
        let class = class_of(key);
        let bounded = self.config.max_sources > 0;
        // One hash per line: the bound's and the interner's.
        let hash = source_hash(key);
        if bounded && !self.bounds.get(&dest).is_none_or(|b| b.keeps(class, hash)) {
            return None;
        }
        let source = self.sources.intern_hashed(key, hash);
        if self.cells.contains_key(&(dest, source)) {
            return Some(source);
        }
        self.cells.insert((dest, source), Cell::default());
        *self.cells_per_source.entry(source).or_default() += 1;
        let bound = self.bounds.entry(dest).or_default();
        bound.live[class] += 1;
        if bounded && bound.live[class] as usize > self.config.max_sources {
            self.tighten(dest, class);
        }
        self.cells.contains_key(&(dest, source)).then_some(source)
    }

    /// Halves `dest`'s threshold for `class` until at most the bound's worth
    /// of sources lie at or below it, folding those above.
    fn tighten(&mut self, dest: u32, class: usize) {
        loop {
            let bound = self.bounds.entry(dest).or_default();
            if bound.live[class] as usize <= self.config.max_sources {
                return;
            }
            let level = bound.level[class] + 1;
            self.raise(dest, class, level);
        }
    }

    /// Sets `dest`'s level for `class` to at least `level`, folding the live
    /// sources the new threshold leaves out.
    fn raise(&mut self, dest: u32, class: usize, level: u8) {
        let bound = self.bounds.entry(dest).or_default();
        if bound.level[class] >= level {
            return;
        }
        bound.level[class] = level;
        let threshold = Bound::threshold(level);
        let mut victims: Vec<u32> = self
            .cells
            .keys()
            .filter(|(d, s)| {
                let name = self.sources.name(*s);
                *d == dest && class_of(name) == class && source_hash(name) > threshold
            })
            .map(|&(_, s)| s)
            .collect();
        victims.sort_unstable();
        for source in victims {
            self.fold_cell(dest, source);
        }
    }

    /// Moves one live cell into its destination's folded row and releases the
    /// source's name once no cell uses it.
    fn fold_cell(&mut self, dest: u32, source: u32) {
        let Some(cell) = self.cells.remove(&(dest, source)) else {
            return;
        };
        let name = self.sources.name(source);
        let class = class_of(name);
        self.folded.entry(dest).or_default().absorb(name, cell);
        if let Some(bound) = self.bounds.get_mut(&dest) {
            bound.live[class] = bound.live[class].saturating_sub(1);
        }
        let refs = self.cells_per_source.entry(source).or_default();
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            self.cells_per_source.remove(&source);
            self.sources.release(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plaintext(t: i64, peer: &[u8]) -> Request<'_> {
        Request {
            inbound: true,
            time_ms: Some(t),
            transport: Transport::Plaintext { forged_xfcc: false },
            peer: Some(peer),
            named_destination: None,
            local_address: None,
            audited: false,
            duration_ms: Some(3),
            caller: None,
            ambient: None,
        }
    }

    fn mtls(t: i64) -> Request<'static> {
        Request {
            inbound: true,
            time_ms: Some(t),
            transport: Transport::Mtls {
                identity: Some(b"spiffe://td/ns/a/sa/caller"),
            },
            peer: None,
            named_destination: Some(NamedDestination::Spiffe(b"spiffe://td/ns/ns/sa/dest")),
            local_address: None,
            audited: false,
            duration_ms: Some(5),
            caller: None,
            ambient: None,
        }
    }

    fn window(end_ms: i64, len: i64) -> Window {
        Window {
            start_ms: end_ms - len,
            end_ms,
        }
    }

    #[test]
    fn buckets_answer_whole_second_windows_exactly() {
        let mut agg = Aggregator::new(AggregateConfig::default());
        let s = agg.stream(0, "in", &StreamMeta::default(), None);
        for t in [1_000, 1_001, 2_000, 2_001, 3_000] {
            agg.record(s, &mtls(t), None);
        }
        let r = agg.resolve();
        let cell = &r.destinations[0].sources[0].cell;
        assert_eq!(
            cell.counts_in(&window(2_000, 1_000)).mtls,
            2,
            "(1000, 2000]"
        );
        assert_eq!(
            cell.counts_in(&window(3_000, 1_000)).mtls,
            2,
            "(2000, 3000]"
        );
        assert_eq!(cell.counts_in(&window(3_000, 3_000)).mtls, 5);
        let c = cell.counts_in(&window(3_000, 2_000));
        assert_eq!((c.first_ms, c.last_ms), (Some(1_001), Some(3_000)));
    }

    #[test]
    fn merge_equals_one_aggregator_over_everything() {
        let lines: Vec<(i64, bool)> = (0..200).map(|i| (i * 997, i % 7 == 0)).collect();
        let record = |agg: &mut Aggregator, part: &[(i64, bool)]| {
            let s = agg.stream(0, "in", &StreamMeta::default(), None);
            for &(t, pt) in part {
                let req = if pt {
                    plaintext(t, b"10.0.0.1")
                } else {
                    mtls(t)
                };
                agg.record(s, &req, None);
            }
        };
        let mut whole = Aggregator::new(AggregateConfig::default());
        record(&mut whole, &lines);
        let mut a = Aggregator::new(AggregateConfig::default());
        let mut b = Aggregator::new(AggregateConfig::default());
        record(&mut b, &lines[..77]);
        record(&mut a, &lines[77..]);
        a.merge(b);
        let (w, m) = (whole.resolve(), a.resolve());
        assert_eq!(w.destinations.len(), 1);
        assert_eq!(m.destinations.len(), 1);
        let win = window(200_000, 200_000);
        for (x, y) in w.destinations[0]
            .sources
            .iter()
            .zip(&m.destinations[0].sources)
        {
            assert_eq!((&x.source, &x.peer), (&y.source, &y.peer));
            assert_eq!(x.cell.counts_in(&win), y.cell.counts_in(&win));
        }
    }

    /// Issue 3: hundreds of thousands of distinct plaintext peers keep memory
    /// bounded (at most `max_sources` live cells per destination) and counts exact.
    #[test]
    fn issue_3_high_cardinality_sources_are_bounded_and_exact() {
        let config = AggregateConfig {
            destination: Some("ns/dest".into()),
            max_sources: 100,
            ..Default::default()
        };
        let mut agg = Aggregator::new(config);
        let s = agg.stream(0, "in", &StreamMeta::default(), None);
        let n = 200_000u32;
        let mut peer = Vec::new();
        for i in 0..n {
            peer.clear();
            peer.extend_from_slice(
                format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255).as_bytes(),
            );
            agg.record(s, &plaintext(1_000 + i as i64, &peer), None);
            assert!(agg.cells.len() <= 101, "cells stay bounded");
        }
        assert!(
            agg.sources.live() <= 101,
            "source names are released: {}",
            agg.sources.live()
        );
        let r = agg.resolve();
        let d = &r.destinations[0];
        let win = window(1_000_000, 1_000_000);
        let live: u64 = d
            .sources
            .iter()
            .map(|s| s.cell.counts_in(&win).plaintext)
            .sum();
        let folded = d.folded.as_ref().expect("folded row");
        assert_eq!(live + folded.cell.counts_in(&win).plaintext, n as u64);
        let est = folded.distinct_in(0, 1_000_000) as f64;
        let exact = (n as usize - d.sources.len()) as f64;
        assert!(
            (est - exact).abs() / exact < 0.1,
            "estimate {est} vs {exact}"
        );
    }
}
