//! Settling the aggregate: final destination names (spec §3 rules 1, 4 and 5),
//! one row per source, the streams behind each destination, and what could
//! not be attributed, per input.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;

use super::bound::{Bound, Folded, class_of, source_hash};
use super::cell::Cell;
use super::names::OneOf;
use super::{Aggregator, DestKind, InputCounts};

/// The destination of lines nothing attributes (spec §3 rule 5).
pub const UNATTRIBUTED: &str = "unattributed";
/// The namespace written when a stream's namespace cannot be learnt.
pub const UNKNOWN_NAMESPACE: &str = "unknown";

/// The aggregate with attribution settled, ready for a verdict.
#[derive(Debug)]
pub struct Resolved {
    pub input: InputCounts,
    /// Where a window without `--until` ends: the newest write time of an
    /// access entry (else of any line, else the newest START_TIME).
    pub newest_ms: Option<i64>,
    pub destinations: Vec<ResolvedDestination>,
    /// Per input: the unattributed requests of its metadata-less streams
    /// (any destination of that input may have received them).
    pub unattributed: BTreeMap<u32, Cell>,
    /// The bound on live sources per destination and class while reading.
    pub source_bound: usize,
    /// Malformed lines no pod is known for, per input: any destination's (F3).
    pub malformed_unplaced: BTreeMap<u32, super::MalformedTimes>,
}

/// One destination's cells and the streams that carried them.
#[derive(Debug, Default)]
pub struct ResolvedDestination {
    pub name: String,
    pub hint: Option<String>,
    pub sources: Vec<ResolvedSource>,
    pub streams: Vec<StreamCoverage>,
    /// Sources the bound folded away while reading.
    pub folded: Option<Folded>,
    /// Returns true if and only if the bound folded sources while reading
    /// (their rows are then estimated, not named).
    pub folded_while_reading: bool,
    /// Inputs whose metadata-less streams carried this destination's requests.
    pub inputs: BTreeSet<u32>,
    source_index: HashMap<u32, usize>,
    /// The strictest bound levels of the aggregate destinations merged here.
    levels: [u8; 2],
    /// Returns true if and only if ztunnel lines (ambient mode) carried its connections.
    pub ambient: bool,
    /// Returns true if and only if sidecar lines carried its requests.
    pub sidecar: bool,
    /// Ambient connections' outcomes per second (errors, policy rejections).
    pub outcomes: super::Outcomes,
}

/// When one stream's evidence begins and ends (write times).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamCoverage {
    pub display: String,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// When its container started (Kubernetes source): a log that begins
    /// there is complete even if that is inside the window.
    pub started_ms: Option<i64>,
    /// Why its log could not be read, if it could not.
    pub error: Option<String>,
    /// Its malformed lines (they may be plaintext requests to it).
    pub malformed: super::MalformedTimes,
    /// Its lines per five minutes (holes inside the log).
    pub activity: super::Activity,
}

/// One destination × source.
#[derive(Debug)]
pub struct ResolvedSource {
    pub source: String,
    pub peer: Option<String>,
    pub cell: Cell,
    key: Box<[u8]>,
}

impl Aggregator {
    /// Settles attribution that needed whole streams and returns the final aggregate.
    ///
    /// Borrows (and so copies the counters): for a long-running watch that
    /// keeps aggregating. A one-shot report calls [`Aggregator::into_resolved`].
    pub fn resolve(&self) -> Resolved {
        self.clone().into_resolved()
    }

    /// The final name of each destination id, with a hint where it could not be settled.
    fn final_names(&self) -> Vec<(String, Option<String>)> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        // Per workload name: the one namespace its replicas' own SANs name
        // (None when they name several). A replica that received only
        // plaintext names none itself, yet is its siblings' workload: it must
        // not split off as `unknown/NAME` and leave them `ready` (review F10).
        let mut sibling_ns: std::collections::HashMap<&str, Option<u32>> =
            std::collections::HashMap::new();
        for info in &self.stream_info {
            if let (Some(w), OneOf::One(ns)) = (&info.workload, info.named_ns) {
                sibling_ns
                    .entry(w.as_str())
                    .and_modify(|seen| {
                        if *seen != Some(ns) {
                            *seen = None;
                        }
                    })
                    .or_insert(Some(ns));
            }
        }
        self.dest_kind
            .iter()
            .enumerate()
            .map(|(id, kind)| match kind {
                DestKind::Named => (text(self.dests.name(id as u32)), None),
                DestKind::Ambient { identity_ns } => self.ambient_name(id as u32, *identity_ns),
                DestKind::PendingStream(s) => {
                    let info = &self.stream_info[*s as usize];
                    match info.named {
                        OneOf::One(d) => (text(self.dests.name(d)), None),
                        OneOf::Many => (
                            UNATTRIBUTED.to_string(),
                            Some(format!(
                                "{} names several destinations and some lines name none: pass --destination NS/NAME, or read pods one at a time (kubectl logs --prefix)",
                                info.display
                            )),
                        ),
                        OneOf::None => (
                            UNATTRIBUTED.to_string(),
                            Some(format!(
                                "nothing in {} names the destination: pass --destination NS/NAME or use kubectl logs --prefix -n NS",
                                info.display
                            )),
                        ),
                    }
                }
                DestKind::PendingNamespace(s) => {
                    let info = &self.stream_info[*s as usize];
                    let workload = info.workload.clone().unwrap_or_default();
                    match (info.named_ns, &info.namespace) {
                        // The pod's own SANs name its namespace: they win over -n.
                        (OneOf::One(ns), _) => (
                            format!("{}/{workload}", text(self.namespaces.name(ns))),
                            None,
                        ),
                        (OneOf::None, Some(flag)) => (format!("{flag}/{workload}"), None),
                        (OneOf::None, None)
                            if sibling_ns.get(workload.as_str()).is_some_and(Option::is_some) =>
                        {
                            let ns = sibling_ns[workload.as_str()].unwrap_or_default();
                            (
                                format!("{}/{workload}", text(self.namespaces.name(ns))),
                                Some(format!(
                                    "{}: the namespace is taken from its sibling replicas' lines (pass -n to be explicit)",
                                    info.display
                                )),
                            )
                        }
                        (OneOf::Many, Some(flag)) => (
                            format!("{flag}/{workload}"),
                            Some(format!(
                                "{}: its lines name several namespaces; -n {flag} was used",
                                info.display
                            )),
                        ),
                        _ => (
                            format!("{UNKNOWN_NAMESPACE}/{workload}"),
                            Some(format!(
                                "{}: the log names no namespace: pass -n NAMESPACE",
                                info.display
                            )),
                        ),
                    }
                }
            })
            .collect()
    }

    /// [`Aggregator::resolve`], consuming the aggregate instead of copying it.
    pub fn into_resolved(mut self) -> Resolved {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let final_name = self.final_names();
        // The input of each unattributed destination id (its stream's).
        let unattributed_input = |agg: &Aggregator, d: u32| -> Option<u32> {
            match agg.dest_kind[d as usize] {
                DestKind::PendingStream(s) if final_name[d as usize].0 == UNATTRIBUTED => {
                    agg.stream_info[s as usize].input
                }
                _ => None,
            }
        };
        let mut unattributed: BTreeMap<u32, Cell> = BTreeMap::new();
        let mut destinations: BTreeMap<String, ResolvedDestination> = BTreeMap::new();
        let mut cells: Vec<_> = self.cells.drain().collect();
        cells.sort_unstable_by_key(|&(key, _)| key);
        for ((d, s), cell) in cells {
            if let Some(input) = unattributed_input(&self, d) {
                unattributed.entry(input).or_default().merge(cell.clone());
            }
            let dest = destination_entry(&mut destinations, &final_name, d);
            let bound = self.bounds.get(&d).copied().unwrap_or_default();
            for (mine, theirs) in dest.levels.iter_mut().zip(bound.level) {
                *mine = (*mine).max(theirs);
            }
            dest.folded_while_reading |= bound.folded_any();
            // Several pending destinations may settle on one name: merge their cells.
            match dest.source_index.get(&s) {
                Some(&i) => dest.sources[i].cell.merge(cell),
                None => {
                    let key = self.sources.name(s);
                    let mut parts = key.splitn(2, |&b| b == 0);
                    let source = text(parts.next().unwrap_or_default());
                    let peer = parts.next().map(text);
                    dest.source_index.insert(s, dest.sources.len());
                    dest.sources.push(ResolvedSource {
                        source,
                        peer,
                        cell,
                        key: key.into(),
                    });
                }
            }
        }
        let mut folded: Vec<_> = self.folded.drain().collect();
        folded.sort_unstable_by_key(|&(d, _)| d);
        for (d, f) in folded {
            if let Some(input) = unattributed_input(&self, d) {
                unattributed.entry(input).or_default().merge(f.cell.clone());
            }
            let dest = destination_entry(&mut destinations, &final_name, d);
            let bound = self.bounds.get(&d).copied().unwrap_or_default();
            for (mine, theirs) in dest.levels.iter_mut().zip(bound.level) {
                *mine = (*mine).max(theirs);
            }
            dest.folded_while_reading |= bound.folded_any();
            match &mut dest.folded {
                Some(mine) => mine.merge(f),
                None => dest.folded = Some(f),
            }
        }
        let mut contributions: Vec<_> = self.contributions.iter().copied().collect();
        contributions.sort_unstable();
        for (d, s) in contributions {
            let (name, hint) = &final_name[d as usize];
            let info = &self.stream_info[s as usize];
            // Every destination that received a request is judged, inside the
            // window or not (the same set with or without --until), and so is
            // one of a declared replica with no request yet.
            if !destinations.contains_key(name) {
                destinations.insert(
                    name.clone(),
                    ResolvedDestination {
                        name: name.clone(),
                        hint: hint.clone(),
                        ..Default::default()
                    },
                );
            }
            if let Some(dest) = destinations.get_mut(name) {
                match self.dest_kind[d as usize] {
                    DestKind::Ambient { .. } => dest.ambient = true,
                    _ => dest.sidecar = true,
                }
                if let Some(input) = info.input {
                    dest.inputs.insert(input);
                }
                if !dest.streams.iter().any(|x| x.display == info.display) {
                    dest.streams.push(StreamCoverage {
                        display: info.display.clone(),
                        first_ms: info.first_ms,
                        last_ms: info.last_ms,
                        started_ms: info.started_ms,
                        error: info.error.clone(),
                        malformed: info.malformed.clone(),
                        activity: info.activity.clone(),
                    });
                }
            }
        }
        let mut outcomes: Vec<_> = self.outcomes.drain().collect();
        outcomes.sort_unstable_by_key(|&(d, _)| d);
        for (d, o) in outcomes {
            let dest = destination_entry(&mut destinations, &final_name, d);
            for (second, v) in o {
                let mine = dest.outcomes.entry(second).or_default();
                for (m, t) in mine.iter_mut().zip(v) {
                    *m = m.saturating_add(t);
                }
            }
        }
        for dest in destinations.values_mut() {
            dest.apply_levels();
            dest.streams.sort_by(|a, b| a.display.cmp(&b.display));
            dest.sources
                .sort_by(|a, b| (&a.source, &a.peer).cmp(&(&b.source, &b.peer)));
        }
        let newest_ms = self
            .newest_write_ms
            .or_else(|| self.stream_info.iter().filter_map(|s| s.last_ms).max())
            .or(self.newest_start_ms);
        Resolved {
            input: std::mem::take(&mut self.input),
            newest_ms,
            destinations: destinations.into_values().collect(),
            unattributed,
            source_bound: self.config.max_sources,
            malformed_unplaced: std::mem::take(&mut self.malformed_unplaced),
        }
    }
}

/// The resolved destination id `d` settles on, created if new.
fn destination_entry<'a>(
    destinations: &'a mut BTreeMap<String, ResolvedDestination>,
    final_name: &[(String, Option<String>)],
    d: u32,
) -> &'a mut ResolvedDestination {
    let (name, hint) = &final_name[d as usize];
    let dest = destinations
        .entry(name.clone())
        .or_insert_with(|| ResolvedDestination {
            name: name.clone(),
            ..Default::default()
        });
    if dest.hint.is_none() {
        dest.hint.clone_from(hint);
    }
    dest
}

impl ResolvedDestination {
    /// Destinations merged under one name may have folded at different
    /// levels: fold every row the strictest level leaves out, so a source is
    /// either a row of its own or wholly in `other`, never split.
    fn apply_levels(&mut self) {
        if self.levels == [0, 0] {
            return;
        }
        let bound = Bound {
            level: self.levels,
            live: [0, 0],
        };
        let (kept, out): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sources)
            .into_iter()
            .partition(|s| bound.keeps(class_of(&s.key), source_hash(&s.key)));
        self.sources = kept;
        if !out.is_empty() {
            let folded = self.folded.get_or_insert_with(Folded::default);
            for s in out {
                folded.absorb(&s.key, s.cell);
            }
        }
        self.source_index.clear();
    }
}
