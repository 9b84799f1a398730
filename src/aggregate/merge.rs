//! Merging per-thread aggregates: the same result whatever was split how.

use super::bound::{class_of, source_hash};
use super::cell::{max_opt, min_opt};
use super::names::OneOf;
use super::{Aggregator, DestKind, MALFORMED_EXAMPLES, StreamInfo};

impl Aggregator {
    /// Adds another aggregate (another thread's, over other chunks) into this one.
    pub fn merge(&mut self, other: Aggregator) {
        let Aggregator {
            input,
            dests,
            dest_kind,
            sources,
            namespaces,
            streams,
            stream_info,
            cells,
            contributions,
            bounds,
            folded,
            outcomes,
            newest_write_ms,
            newest_start_ms,
            malformed_unplaced,
            ..
        } = other;
        for (input, m) in &malformed_unplaced {
            self.malformed_unplaced.entry(*input).or_default().merge(m);
        }
        self.newest_write_ms = max_opt(self.newest_write_ms, newest_write_ms);
        self.newest_start_ms = max_opt(self.newest_start_ms, newest_start_ms);
        let ns_map: Vec<u32> = namespaces
            .names
            .iter()
            .map(|n| self.namespaces.intern(n))
            .collect();
        self.input.lines += input.lines;
        self.input.requests += input.requests;
        self.input.outbound += input.outbound;
        self.input.skipped += input.skipped;
        self.input.malformed += input.malformed;
        self.input.duplicates += input.duplicates;
        self.input.other_containers += input.other_containers;
        self.input.failed_connections += input.failed_connections;
        let ex = &mut self.input.malformed_examples;
        ex.extend(input.malformed_examples);
        ex.sort();
        ex.dedup();
        ex.truncate(MALFORMED_EXAMPLES);

        let stream_map: Vec<u32> = streams
            .names
            .iter()
            .zip(stream_info.iter())
            .map(|(name, info)| {
                let id = self.streams.intern(name);
                if id as usize == self.stream_info.len() {
                    self.stream_info.push(StreamInfo {
                        named: OneOf::None,
                        named_ns: OneOf::None,
                        first_ms: None,
                        last_ms: None,
                        last_dest: None,
                        fallback_dest: None,
                        error: None,
                        malformed: Default::default(),
                        activity: Default::default(),
                        ..info.clone()
                    });
                }
                id
            })
            .collect();
        let dest_map: Vec<u32> = dests
            .names
            .iter()
            .zip(dest_kind)
            .map(|(name, kind)| {
                let id = self.dests.intern(name);
                if let DestKind::Ambient { identity_ns } = kind {
                    let mut mapped = OneOf::None;
                    mapped.merge(identity_ns, |n| ns_map[n as usize]);
                    match self.dest_kind.get_mut(id as usize) {
                        Some(DestKind::Ambient { identity_ns: mine }) => mine.merge(mapped, |n| n),
                        Some(_) => {}
                        None => self.dest_kind.push(DestKind::Ambient {
                            identity_ns: mapped,
                        }),
                    }
                    return id;
                }
                if id as usize == self.dest_kind.len() {
                    self.dest_kind.push(match kind {
                        DestKind::Named => DestKind::Named,
                        DestKind::Ambient { .. } => unreachable!("handled above"),
                        DestKind::PendingStream(s) => {
                            DestKind::PendingStream(stream_map[s as usize])
                        }
                        DestKind::PendingNamespace(s) => {
                            DestKind::PendingNamespace(stream_map[s as usize])
                        }
                    });
                }
                id
            })
            .collect();
        for (old, info) in stream_info.into_iter().enumerate() {
            let mine = &mut self.stream_info[stream_map[old] as usize];
            mine.first_ms = min_opt(mine.first_ms, info.first_ms);
            mine.last_ms = max_opt(mine.last_ms, info.last_ms);
            mine.started_ms = min_opt(mine.started_ms, info.started_ms);
            // Either error will do; the smaller keeps the result order-free.
            mine.error = match (mine.error.take(), info.error) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            mine.malformed.merge(&info.malformed);
            mine.activity.merge(&info.activity);
            mine.named.merge(info.named, |d| dest_map[d as usize]);
            mine.named_ns.merge(info.named_ns, |n| ns_map[n as usize]);
        }
        // First the stricter of the two thresholds, so both sides fold alike.
        for (d, theirs) in &bounds {
            let dest = dest_map[*d as usize];
            for (class, &level) in theirs.level.iter().enumerate() {
                self.raise(dest, class, level);
            }
        }
        // Then each cell by name, interned just before its use: folding may
        // release names, so ids looked up ahead of time could go stale
        // (issue 7 item 1: requests landed on the wrong caller).
        let bounded = self.config.max_sources > 0;
        let mut cells: Vec<_> = cells.into_iter().collect();
        cells.sort_unstable_by_key(|&(key, _)| key);
        for ((d, s), cell) in cells {
            let dest = dest_map[d as usize];
            let key = sources.name(s);
            let kept = !bounded
                || self
                    .bounds
                    .get(&dest)
                    .is_none_or(|b| b.keeps(class_of(key), source_hash(key)));
            let live = if kept {
                self.live_source(dest, key)
            } else {
                None
            };
            match live {
                Some(source) => self
                    .cells
                    .get_mut(&(dest, source))
                    .expect("live_source returned a live cell")
                    .merge(cell),
                None => self.folded.entry(dest).or_default().absorb(key, cell),
            }
        }
        for (d, f) in folded {
            self.folded
                .entry(dest_map[d as usize])
                .or_default()
                .merge(f);
        }
        for (d, o) in outcomes {
            let mine = self.outcomes.entry(dest_map[d as usize]).or_default();
            for (second, v) in o {
                let m = mine.entry(second).or_default();
                for (a, b) in m.iter_mut().zip(v) {
                    *a = a.saturating_add(b);
                }
            }
        }
        for (d, s) in contributions {
            self.contributions
                .insert((dest_map[d as usize], stream_map[s as usize]));
        }
    }
}
