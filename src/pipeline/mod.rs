//! The driver: runs source → envelope → format → request → aggregate over many threads.
//!
//! One reader thread cuts inputs into line-aligned chunks; each worker owns
//! its envelope decoder, line parser (with its own regex caches) and
//! aggregator, so the per-line path takes no lock. Workers' aggregates merge
//! at the end; every aggregate is order-independent, so the report is the
//! same for any thread count and chunk size.
//!
//! Any [`Source`] runs here ([`run_source`]): files and stdin
//! ([`run_files`]), the Kubernetes API ([`run_cluster`]), log stores.
//!
//! With several inputs, the same lines must not count twice: the same file
//! named twice, or the same content under two names (`x.log`, `x.log.gz`),
//! is refused; and an access entry repeated across inputs (overlapping
//! exports) with the same pod, write timestamp and bytes counts once, as
//! logcli and stern do. Workers share one concurrent set of 64-bit hashes for
//! that; which copy is kept does not matter, because copies are
//! byte-identical and map to the same stream.

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use crate::aggregate::{AggregateConfig, Aggregator, StreamId};
use crate::envelope::{EnvelopeDecoder, InputKind, StreamMeta};
use crate::format::Field;
use crate::format::{FormatSet, LineParser, Parsed};
use crate::request::{classify, is_filter_chain_rejection};
use crate::source::file::Input;
use crate::source::inputs::Inputs;
use crate::source::kube::ClusterRead;
use crate::source::{Chunk, Source, SourceError, SourceMeta};

mod numbering;
mod repeats;

use numbering::{Ledger, Marks};
pub use repeats::{IdentityHasher, SeenEntries, namespace_flag_contradiction};
use repeats::{Notes, entry_hash};

/// What a run over files produced: the aggregate, and what to warn about on stderr.
pub struct FileRun {
    pub aggregator: Aggregator,
    /// One line each, without the `strictly: warning: ` prefix.
    pub warnings: Vec<String>,
}

/// How the pipeline runs.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Bytes per chunk handed to a worker.
    pub chunk_size: usize,
    /// Lines longer than this are cut (and then fail their format: malformed).
    pub max_line: usize,
    /// `--input`.
    pub input_kind: InputKind,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            // One worker per core. The reader no longer competes with them:
            // on 200k lab lines (callgrind, issue 11) it costs 2.4M
            // instructions (was 102M: newline walk and XXH3) of 1,790M, so
            // a third worker on two cores only adds a third aggregate to
            // merge serially (merge 0 / 49M / 65M instructions at 1 / 2 / 3
            // threads) and time slices against the others.
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            chunk_size: 1 << 20,
            max_line: 1 << 20,
            input_kind: InputKind::Auto,
        }
    }
}

/// Reads every input through the pipeline and returns the merged aggregate.
pub fn run(
    inputs: &[Input],
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Aggregator, SourceError> {
    run_files(inputs, formats, aggregate, config, progress).map(|r| r.aggregator)
}

/// Reads every input through the pipeline: the merged aggregate and the warnings.
///
/// Refuses (before reading) an input named twice, and (after reading it) an
/// input whose decoded content equals an earlier one's; drops access entries
/// repeated within or across inputs (`input.duplicates`, see [`Inputs`]).
pub fn run_files(
    inputs: &[Input],
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FileRun, SourceError> {
    let mut source = Inputs::new(
        inputs,
        config.input_kind,
        config.chunk_size,
        config.max_line,
        progress,
    )?;
    let (run, notes) = run_source_notes(&mut source, formats, aggregate, config)?;
    let mut warnings = run.warnings;
    if let (Some(flag), Some(c)) = (&aggregate.namespace, &notes.namespace_conflict) {
        let name = inputs
            .get(c.input as usize)
            .map_or("-".to_string(), Input::name);
        warnings.push(format!(
            "-n {flag} contradicts {} line{} whose own destination (SAN) is in another namespace \
             (first: {name}:{}, namespace {}): the namespace the pod's own SANs name is kept",
            c.count,
            if c.count == 1 { "" } else { "s" },
            c.line,
            c.namespace,
        ));
    }
    Ok(FileRun {
        aggregator: run.aggregator,
        warnings,
    })
}

/// What a run over one [`Source`] produced.
pub struct SourceRun {
    pub aggregator: Aggregator,
    /// Names of the inputs read, for malformed-line examples.
    pub names: Vec<String>,
    /// The source's warnings, one line each, without the `strictly: warning: ` prefix.
    pub warnings: Vec<String>,
    /// Streams that could not be read, `NAME: why` (their workload is then insufficient).
    pub failures: Vec<String>,
}

/// Runs the pipeline over everything `source` reads, then declares the
/// streams it meant to read (see the contract in [`crate::source`]).
pub fn run_source<S: Source>(
    source: &mut S,
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
) -> Result<SourceRun, S::Error> {
    run_source_notes(source, formats, aggregate, config).map(|(run, _)| run)
}

fn run_source_notes<S: Source>(
    source: &mut S,
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
) -> Result<(SourceRun, Notes), S::Error> {
    let names = source.inputs();
    // Only entries with pod metadata and a write timestamp are kept (~13
    // bytes each); a source whose entries cannot repeat keeps no set.
    let seen = source
        .may_repeat()
        .then(|| Arc::new(SeenEntries::default()));
    let (mut aggregator, notes) = run_workers(
        formats,
        aggregate,
        config,
        names.clone().into(),
        seen,
        |emit| source.read(emit),
    )?;
    // Every declared stream counts, read or not: a log that failed leaves its workload insufficient.
    let mut failures = Vec::new();
    for s in source.streams() {
        let name = names.get(s.input as usize).map_or("-", String::as_str);
        if let Some(e) = &s.failure {
            failures.push(format!("{name}: {e}"));
        }
        aggregator.declare(s.input, name, &s.meta, s.failure);
    }
    let run = SourceRun {
        aggregator,
        names,
        warnings: source.warnings(),
        failures,
    };
    Ok((run, notes))
}

/// Runs the pipeline over the chunks `produce` emits (on the calling thread)
/// and returns the merged aggregate. `names` names the inputs chunks refer to.
/// Prefer [`run_source`] for a source that implements [`Source`].
pub fn run_with<E>(
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
    names: Arc<[String]>,
    produce: impl FnOnce(&mut dyn FnMut(Chunk) -> bool) -> Result<(), E>,
) -> Result<Aggregator, E> {
    run_workers(formats, aggregate, config, names, None, produce).map(|(agg, _)| agg)
}

fn run_workers<E>(
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
    names: Arc<[String]>,
    seen: Option<Arc<SeenEntries>>,
    produce: impl FnOnce(&mut dyn FnMut(Chunk) -> bool) -> Result<(), E>,
) -> Result<(Aggregator, Notes), E> {
    let threads = config.threads.max(1);
    let (tx, rx) = sync_channel::<Chunk>(threads * 2);
    let rx = Arc::new(Mutex::new(rx));
    let ledger = Arc::new(Ledger::default());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                let mut worker =
                    Worker::new(formats, aggregate, config.input_kind, Arc::clone(&names));
                worker.seen = seen.clone();
                worker.ledger = Some(Arc::clone(&ledger));
                scope.spawn(move || {
                    while let Some(chunk) = next_chunk(&rx) {
                        worker.process(&chunk);
                    }
                    (worker.aggregator, worker.notes)
                })
            })
            .collect();
        let result = produce(&mut |chunk| tx.send(chunk).is_ok());
        drop(tx);
        // The first worker's aggregate is the base: merging into an empty one would copy it.
        let mut merged: Option<Aggregator> = None;
        let mut notes = Notes::default();
        for w in workers {
            let (agg, n) = w.join().expect("a pipeline worker panicked");
            notes.merge(n);
            match &mut merged {
                Some(m) => m.merge(agg),
                None => merged = Some(agg),
            }
        }
        result.map(|()| {
            let mut agg = merged.unwrap_or_else(|| Aggregator::new(aggregate.clone()));
            settle_numbers(&ledger, &mut agg, &mut notes);
            (agg, notes)
        })
    })
}

/// Turns the keys of lines the workers numbered (see [`numbering`]) into the
/// inputs' real line numbers, once every chunk has been counted.
fn settle_numbers(ledger: &Ledger, agg: &mut Aggregator, notes: &mut Notes) {
    for ex in &mut agg.input.malformed_examples {
        if ledger.numbers(ex.input) {
            let line = ledger.resolve(ex.input, ex.line);
            debug_assert!(line.is_some(), "example {}:{} unsettled", ex.input, ex.line);
            ex.line = line.unwrap_or(0);
        }
    }
    if let Some(c) = &mut notes.namespace_conflict
        && ledger.numbers(c.input)
    {
        c.line = ledger.resolve(c.input, c.line).unwrap_or(0);
    }
}

fn next_chunk(rx: &Mutex<Receiver<Chunk>>) -> Option<Chunk> {
    rx.lock().ok()?.recv().ok()
}

/// One thread's stages: decoder, parser and aggregator, and the last stream seen.
pub struct Worker {
    decoder: EnvelopeDecoder,
    parser: LineParser,
    formats: FormatSet,
    pub aggregator: Aggregator,
    names: Arc<[String]>,
    last_stream: Option<LastStream>,
    /// The last (stream, local address) → substream, for the same reason.
    last_substream: Option<(StreamId, Vec<u8>, StreamId)>,
    /// Entries counted so far across the run's inputs (several inputs only).
    seen: Option<Arc<SeenEntries>>,
    /// `-n`: the namespace of streams whose lines name a pod but no namespace.
    namespace_flag: Option<Arc<str>>,
    notes: Notes,
    scratch: Vec<u8>,
    /// Returns true while the chunk being processed holds framed lines (a whole document's entries).
    framed: bool,
    /// Settles the numbers of chunks the reader did not number ([`Chunk::seq`]).
    ledger: Option<Arc<Ledger>>,
}

/// The previous line's stream metadata (owned) and the stream it mapped to.
struct LastStream {
    input: u32,
    parts: [Vec<u8>; 3],
    present: [bool; 3],
    id: StreamId,
}

impl Worker {
    pub fn new(
        formats: &FormatSet,
        aggregate: &AggregateConfig,
        kind: InputKind,
        names: Arc<[String]>,
    ) -> Self {
        Worker {
            decoder: EnvelopeDecoder::new(kind),
            parser: LineParser::new(Arc::clone(formats)),
            formats: Arc::clone(formats),
            aggregator: Aggregator::new(aggregate.clone()),
            names,
            last_stream: None,
            last_substream: None,
            seen: None,
            namespace_flag: aggregate.namespace.as_deref().map(Arc::from),
            notes: Notes::default(),
            scratch: Vec::new(),
            framed: false,
            ledger: None,
        }
    }

    /// Runs every line of `chunk` through the stages.
    ///
    /// A line the source cut at the maximum length is malformed: what is
    /// left of it is not the entry Envoy wrote.
    ///
    /// A chunk the reader did not number ([`Chunk::seq`]) gets keys that
    /// order like its lines' numbers (see [`numbering`]); its line count
    /// goes to the ledger, which settles the real numbers in order.
    pub fn process(&mut self, chunk: &Chunk) {
        let source = chunk.meta.as_deref();
        let mut cut = chunk.cut_lines.iter().copied().peekable();
        self.framed = chunk.framed;
        let numbered = chunk.seq.zip(self.ledger.clone());
        let base = numbered
            .as_ref()
            .map_or(0, |(seq, _)| numbering::key(*seq, 0));
        let malformed = self.aggregator.input.malformed;
        let conflicts = self
            .notes
            .namespace_conflict
            .as_ref()
            .map_or(0, |c| c.count);
        let mut lines = 0;
        for (line_no, line) in (chunk.first_line..).zip(chunk.lines()) {
            let was_cut = cut.next_if_eq(&line_no).is_some();
            self.line_of(chunk.input, base | line_no, line, source, was_cut);
            lines += 1;
        }
        if let Some((seq, ledger)) = numbered {
            let marks = Marks {
                malformed: self.aggregator.input.malformed != malformed,
                conflict: self
                    .notes
                    .namespace_conflict
                    .as_ref()
                    .map_or(0, |c| c.count)
                    != conflicts,
            };
            ledger.settle(chunk.input, seq, lines, marks);
        }
    }

    /// Runs one line (without its `\n`) through the stages; `source` is what
    /// the source knows of its stream (it wins over the envelope's metadata).
    pub fn line(&mut self, input: u32, line_no: u64, line: &[u8], source: Option<&SourceMeta>) {
        self.line_of(input, line_no, line, source, false);
    }

    /// [`Worker::line`]; a line the source `cut` at the maximum length is
    /// malformed whatever it looks like, yet its envelope still says whose
    /// and when, so its doubt lands on its own stream.
    fn line_of(
        &mut self,
        input: u32,
        line_no: u64,
        line: &[u8],
        source: Option<&SourceMeta>,
        cut: bool,
    ) {
        let Worker {
            decoder,
            parser,
            formats,
            aggregator,
            names,
            last_stream,
            last_substream,
            seen,
            namespace_flag,
            notes,
            scratch,
            framed,
            ledger: _,
        } = self;
        aggregator.input.lines += 1;
        let (env, line) = if *framed {
            let env = crate::source::export::unframe(line);
            (env, env.payload)
        } else {
            (decoder.decode(line), line)
        };
        // An envelope or export that names another container than the proxy's:
        // that container's lines are no access log (kubectl --all-containers, a Loki namespace query).
        if source.is_none()
            && env.meta.container.is_some_and(|c| {
                c != PROXY_CONTAINER.as_bytes() && c != ZTUNNEL_CONTAINER.as_bytes()
            })
        {
            aggregator.input.skipped += 1;
            aggregator.input.other_containers += 1;
            return;
        }
        let meta = match source {
            Some(s) => StreamMeta {
                namespace: Some(s.namespace.as_bytes()),
                pod: Some(s.pod.as_bytes()),
                container: Some(s.container.as_bytes()),
            },
            None => env.meta,
        };
        let stream = stream_of(aggregator, last_stream, names, input, &meta, source);
        if let Some(t) = env.timestamp_ms {
            aggregator.observe(stream, t);
        }
        let parsed = if cut {
            Parsed::Malformed
        } else {
            parser.parse(env.payload)
        };
        match parsed {
            Parsed::NotAccess => aggregator.input.skipped += 1,
            Parsed::Malformed => {
                // The same damaged entry twice (overlapping exports) is one doubt.
                if let (Some(seen), Some(t)) = (seen.as_deref(), env.timestamp_ms)
                    && meta.pod.is_some()
                    && !seen.insert(entry_hash(scratch, &meta, t, env.payload))
                {
                    aggregator.input.duplicates += 1;
                    return;
                }
                let t = env
                    .timestamp_ms
                    .or_else(|| crate::aggregate::leading_time(env.payload));
                aggregator.malformed_at(Some(stream), input, line_no, line, t);
            }
            Parsed::Access { entry, format } => {
                if let (Some(seen), Some(t)) = (seen.as_deref(), env.timestamp_ms)
                    && meta.pod.is_some()
                    && !seen.insert(entry_hash(scratch, &meta, t, env.payload))
                {
                    aggregator.input.duplicates += 1;
                    return;
                }
                let req = classify(&entry, &formats[format]);
                if aggregator.check_times(&req, env.timestamp_ms).is_err() {
                    // Its own times are not to be trusted: only the envelope's dates it.
                    aggregator.malformed_at(Some(stream), input, line_no, line, env.timestamp_ms);
                    return;
                }
                // Attribution (which namespace wins) is the aggregate's, per
                // stream and order-independent; here the contradiction is only counted for a warning.
                if let Some(ns) =
                    namespace_flag_contradiction(namespace_flag.as_deref(), &meta, &req)
                {
                    notes.note_namespace_conflict(input, line_no, ns);
                }
                let stream = match (meta.pod, req.local_address) {
                    (None, Some(local)) => substream_of(aggregator, last_substream, stream, local),
                    _ => stream,
                };
                if is_filter_chain_rejection(&entry, &formats[format]) {
                    // Inbound for formats of the inbound listener only (the
                    // lab's); otherwise placed by its local address later.
                    let known_inbound = !formats[format].logs(Field::UpstreamCluster);
                    aggregator.reject(stream, &req, known_inbound, env.timestamp_ms);
                } else if req.inbound {
                    aggregator.record(stream, &req, env.timestamp_ms);
                } else {
                    aggregator.input.outbound += 1;
                    aggregator.observe_entry(stream, &req, env.timestamp_ms);
                }
            }
        }
    }
}

/// The container whose log holds the access log; lines an envelope attributes to another are skipped.
pub const PROXY_CONTAINER: &str = "istio-proxy";
/// What some ztunnel builds call their container (Istio's chart says istio-proxy): its log is an access log too.
pub const ZTUNNEL_CONTAINER: &str = "ztunnel";

/// The substream of a metadata-less line by the address that received it (see [`Aggregator::substream`]).
fn substream_of(
    agg: &mut Aggregator,
    last: &mut Option<(StreamId, Vec<u8>, StreamId)>,
    parent: StreamId,
    local: &[u8],
) -> StreamId {
    if let Some((p, addr, id)) = last.as_ref()
        && *p == parent
        && addr == local
    {
        return *id;
    }
    let id = agg.substream(parent, local);
    let entry = last.get_or_insert_with(|| (parent, Vec::new(), id));
    entry.0 = parent;
    entry.1.clear();
    entry.1.extend_from_slice(local);
    entry.2 = id;
    id
}

/// The stream of a line, remembering the last one so a run of lines from one
/// pod costs a comparison, not a hash.
fn stream_of(
    agg: &mut Aggregator,
    last: &mut Option<LastStream>,
    names: &[String],
    input: u32,
    meta: &StreamMeta<'_>,
    source: Option<&SourceMeta>,
) -> StreamId {
    let parts = [meta.namespace, meta.pod, meta.container];
    if let Some(l) = last.as_ref() {
        let same = l.input == input
            && parts
                .iter()
                .zip(l.parts.iter().zip(&l.present))
                .all(|(p, (b, &has))| p.is_some() == has && p.is_none_or(|p| p == b.as_slice()));
        if same {
            return l.id;
        }
    }
    let name = names.get(input as usize).map_or("-", String::as_str);
    let id = agg.stream(input, name, meta, source);
    let l = last.get_or_insert_with(|| LastStream {
        input,
        parts: Default::default(),
        present: [false; 3],
        id,
    });
    l.input = input;
    l.id = id;
    for (k, p) in parts.iter().enumerate() {
        l.parts[k].clear();
        l.parts[k].extend_from_slice(p.unwrap_or_default());
        l.present[k] = p.is_some();
    }
    id
}

/// What a one-shot report read from the cluster.
pub struct ClusterRun {
    pub aggregator: Aggregator,
    /// Names of the logs read (inputs), for malformed-line examples.
    pub names: Vec<String>,
    /// Who holds which address, for naming plaintext callers.
    pub peers: crate::source::kube::PeerIndex,
    /// Logs that could not be read (the replica then counts as not covered).
    pub failures: Vec<String>,
    /// The pods read, by stream name (`NS/pod/NAME/CONTAINER`): their labels make `policy`'s selectors.
    pub streams: std::collections::BTreeMap<String, Arc<crate::source::SourceMeta>>,
    /// With ambient pods: the destinations the report is about (ztunnel logs
    /// carry every namespace's connections of their node).
    pub ambient_scope: Option<Scope>,
}

pub use crate::source::kube::ztunnel::Scope;

/// `report` from the Kubernetes API: select the pods, read every log since
/// `since_seconds` ago concurrently ([`ClusterRead`]), run the same pipeline as
/// for files; ambient pods are declared against their node's ztunnel.
pub fn run_cluster(
    access: &crate::source::kube::KubeAccess,
    selection: &crate::source::kube::KubeSelection,
    since_seconds: Option<i64>,
    max_log_requests: usize,
    formats: &FormatSet,
    aggregate: &AggregateConfig,
    config: &PipelineConfig,
) -> Result<ClusterRun, crate::source::kube::KubeError> {
    let mut source = ClusterRead::connect(access, selection, since_seconds, max_log_requests)?;
    let mut run = run_source(&mut source, formats, aggregate, config)?;
    source.declare_ambient(&mut run.aggregator);
    Ok(ClusterRun {
        aggregator: run.aggregator,
        names: run.names,
        peers: std::mem::take(&mut source.peers),
        failures: run.failures,
        streams: source.pods(),
        ambient_scope: (!source.ambient.is_empty()).then(|| Scope {
            namespaces: crate::source::kube::namespaces(selection, &source.default_namespace),
            workloads: selection.workloads.iter().map(|w| w.name.clone()).collect(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_the_source_cut_is_malformed_whatever_it_looks_like() {
        let formats = crate::format::load(None, None).unwrap();
        let names: Arc<[String]> = vec!["cut.log".to_string()].into();
        let mut worker = Worker::new(
            &formats,
            &AggregateConfig::default(),
            InputKind::Auto,
            names,
        );
        // Cut, what is left is not an access line: without the mark it would be skipped.
        let chunk = Chunk {
            input: 0,
            first_line: 7,
            data: b"info starting\nxxxxxxxx\ninfo done\n".to_vec(),
            meta: None,
            cut_lines: vec![8],
            framed: false,
            seq: None,
        };
        worker.process(&chunk);
        let input = &worker.aggregator.input;
        assert_eq!((input.lines, input.skipped, input.malformed), (3, 2, 1));
        assert_eq!(input.malformed_examples[0].line, 8);
    }

    /// A source as the contract in `source/mod.rs` describes it, in memory:
    /// one stream with a line, one declared that sent none, one that failed.
    struct TwoPods {
        read: bool,
    }

    fn pod(name: &str) -> Arc<SourceMeta> {
        Arc::new(SourceMeta {
            namespace: "shop".into(),
            pod: name.into(),
            container: "istio-proxy".into(),
            workload: Some("web".into()),
            ..SourceMeta::default()
        })
    }

    impl Source for TwoPods {
        type Error = String;
        fn inputs(&self) -> Vec<String> {
            ["web-a", "web-b", "web-c"].map(String::from).to_vec()
        }
        fn read(&mut self, emit: &mut dyn FnMut(Chunk) -> bool) -> Result<(), String> {
            let mut cutter =
                crate::source::lines::LineCutter::new(0, 1024, 1024).with_meta(pod("web-a"));
            cutter.push(b"2026-11-20T11:00:00Z info starting\n");
            emit(cutter.take_chunk().unwrap());
            self.read = true;
            Ok(())
        }
        fn streams(&self) -> Vec<crate::source::DeclaredStream> {
            assert!(self.read, "streams are declared after the read");
            ["web-a", "web-b", "web-c"]
                .iter()
                .enumerate()
                .map(|(i, p)| crate::source::DeclaredStream {
                    input: i as u32,
                    meta: pod(p),
                    failure: (i == 2).then(|| "HTTP 500".to_string()),
                })
                .collect()
        }
    }

    #[test]
    fn issue_8_1_a_source_declares_every_stream_it_meant_to_read() {
        let formats = crate::format::load(None, None).unwrap();
        let config = PipelineConfig {
            threads: 2,
            ..PipelineConfig::default()
        };
        let mut source = TwoPods { read: false };
        let run = run_source(&mut source, &formats, &AggregateConfig::default(), &config).unwrap();
        assert_eq!(run.names, ["web-a", "web-b", "web-c"]);
        assert_eq!(run.failures, ["web-c: HTTP 500"]);
        assert_eq!(run.aggregator.input.lines, 1);
        let resolved = run.aggregator.into_resolved();
        let streams: Vec<(&str, Option<&str>)> = resolved
            .destinations
            .iter()
            .flat_map(|d| &d.streams)
            .map(|s| (s.display.as_str(), s.error.as_deref()))
            .collect();
        // The pod that sent nothing and the one that failed still count for coverage.
        assert_eq!(streams.len(), 3, "{streams:?}");
        assert_eq!(
            streams
                .iter()
                .filter(|(_, e)| *e == Some("HTTP 500"))
                .count(),
            1
        );
    }
}
