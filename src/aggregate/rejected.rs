//! Rejected plaintext: connections a sidecar refused for want of a filter
//! chain (`NR filter_chain_not_found`), the trace a STRICT workload leaves of
//! each plaintext caller it breaks (spec §4 `regressed`, istio/istio#56084).
//!
//! Such an entry names no upstream cluster, so `inbound|` cannot say which
//! way it went; its local address can: a refusal at an address the stream
//! itself received inbound requests on was the pod's own inbound listener.
//! That is only known once the whole stream has been read, so refusals are
//! kept per stream × local address and placed when the aggregate is resolved
//! — the outcome depends on the set of lines, never on their order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bound::source_hash;
use super::cell::{UNTIMED, max_opt};

/// Callers kept by address per stream × local address; past it, the callers
/// with the greatest hash of their address fold into one unnamed row (the
/// kept set is the same whatever the order).
pub(super) const MAX_CALLERS: usize = 1024;
/// Addresses a stream received inbound requests on, kept to place refusals
/// (a pod has one, two when dual-stack).
pub(super) const MAX_OWN_ADDRESSES: usize = 4;

/// Where refusals were logged: a stream and the address that refused.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct RefusalSite {
    pub(super) stream: u32,
    /// The refusing address (IP); empty when the format does not log it.
    pub(super) local: Vec<u8>,
    /// Returns true if and only if the format logs the inbound listener only
    /// (the lab's), so the refusal is inbound whatever its address.
    pub(super) known_inbound: bool,
}

/// Refused connections of one caller, per second.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusals {
    /// Second `s` (holding `((s-1)·1000, s·1000]`) → (count, newest offset 1..=1000 ms).
    seconds: BTreeMap<i64, (u32, u16)>,
    /// Refusals recorded since the start, pruned or not.
    pub total: u64,
}

impl Refusals {
    fn record(&mut self, t: Option<i64>) {
        let (second, off) = match t {
            Some(t) => {
                let second = (t + 999).div_euclid(1000);
                (second, (t - (second - 1) * 1000) as u16)
            }
            None => (UNTIMED, 0),
        };
        let b = self.seconds.entry(second).or_default();
        b.0 = b.0.saturating_add(1);
        b.1 = b.1.max(off);
        self.total += 1;
    }

    pub(super) fn merge(&mut self, other: &Refusals) {
        for (s, (n, off)) in &other.seconds {
            let b = self.seconds.entry(*s).or_default();
            b.0 = b.0.saturating_add(*n);
            b.1 = b.1.max(*off);
        }
        self.total += other.total;
    }

    /// The refusals inside `(start, end]` (untimed ones always count) and the newest time among them.
    pub fn in_window(&self, start_ms: i64, end_ms: i64) -> (u64, Option<i64>) {
        let mut n = self.seconds.get(&UNTIMED).map_or(0, |b| b.0 as u64);
        let mut last = None;
        let lo = start_ms.div_euclid(1000) + 1;
        let hi = (end_ms - 1).div_euclid(1000) + 1;
        if lo <= hi {
            for (&s, &(count, off)) in self.seconds.range(lo..=hi) {
                n += count as u64;
                last = max_opt(last, (off != 0).then(|| (s - 1) * 1000 + off as i64));
            }
        }
        (n, last)
    }
}

/// Every refusal read, by site and caller address (empty: not logged, or folded).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rejections {
    pub(super) sites: BTreeMap<RefusalSite, BTreeMap<Vec<u8>, Refusals>>,
}

impl Rejections {
    /// Notes one refusal at `site` from `peer` at `t` (epoch ms).
    pub(super) fn record(&mut self, site: RefusalSite, peer: Option<&[u8]>, t: Option<i64>) {
        let callers = self.sites.entry(site).or_default();
        let peer = peer.unwrap_or_default();
        if let Some(r) = callers.get_mut(peer) {
            r.record(t);
            return;
        }
        let mut fresh = Refusals::default();
        fresh.record(t);
        insert_bounded(callers, peer.to_vec(), fresh);
    }

    /// Adds another aggregate's refusals; `stream_map` maps its stream ids to ours.
    pub(super) fn merge(&mut self, other: Rejections, stream_map: &[u32]) {
        for (site, callers) in other.sites {
            let site = RefusalSite {
                stream: stream_map[site.stream as usize],
                ..site
            };
            let mine = self.sites.entry(site).or_default();
            for (peer, r) in callers {
                match mine.get_mut(&peer) {
                    Some(m) => m.merge(&r),
                    None => insert_bounded(mine, peer, r),
                }
            }
        }
    }

    /// Forgets seconds at or before `before_ms` (the totals stay).
    pub(super) fn prune(&mut self, before_ms: i64) {
        let keep_from = before_ms.div_euclid(1000) + 1;
        for callers in self.sites.values_mut() {
            for r in callers.values_mut() {
                let kept = r.seconds.split_off(&keep_from);
                let untimed = r.seconds.remove(&UNTIMED);
                r.seconds = kept;
                if let Some(u) = untimed {
                    r.seconds.insert(UNTIMED, u);
                }
            }
        }
    }

    /// Returns an error naming the first stream id out of `0..streams`.
    pub(super) fn check_streams(&self, streams: usize) -> Result<(), String> {
        match self.sites.keys().find(|s| s.stream as usize >= streams) {
            Some(s) => Err(format!(
                "refusal stream id {} out of range (0..{streams})",
                s.stream
            )),
            None => Ok(()),
        }
    }
}

/// Inserts a new caller; past [`MAX_CALLERS`] named callers, those with the
/// greatest hash fold into the unnamed row, so the named set depends only on
/// the set of callers seen.
fn insert_bounded(callers: &mut BTreeMap<Vec<u8>, Refusals>, peer: Vec<u8>, r: Refusals) {
    let named = callers.len() - usize::from(callers.contains_key(&b""[..]));
    if peer.is_empty() || named < MAX_CALLERS {
        callers.entry(peer).or_default().merge(&r);
        return;
    }
    let greatest = callers
        .keys()
        .filter(|p| !p.is_empty())
        .max_by_key(|p| (source_hash(p), (*p).clone()))
        .cloned();
    let fold = match greatest {
        Some(g) if (source_hash(&g), &g) > (source_hash(&peer), &peer) => {
            let old = callers.remove(&g).unwrap_or_default();
            callers.insert(peer, r);
            old
        }
        _ => r,
    };
    callers.entry(Vec::new()).or_default().merge(&fold);
}

/// One caller's refusals, settled on a destination.
#[derive(Clone, Debug)]
pub struct RejectedCaller {
    /// The caller's address; `None` when not logged or folded.
    pub peer: Option<String>,
    pub refusals: Refusals,
}

/// Refusals that could not be placed on a pod's own address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnplacedRefusals {
    pub stream: String,
    pub local: String,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> RefusalSite {
        RefusalSite {
            stream: 0,
            local: b"10.0.0.1".to_vec(),
            known_inbound: false,
        }
    }

    #[test]
    fn window_counts_and_newest_time() {
        let mut r = Rejections::default();
        for t in [1_500, 2_000, 2_001, 9_999] {
            r.record(site(), Some(b"10.9.9.9"), Some(t));
        }
        let refusals = &r.sites[&site()][&b"10.9.9.9"[..]];
        assert_eq!(refusals.in_window(1_000, 2_000), (2, Some(2_000)));
        assert_eq!(refusals.in_window(2_000, 10_000), (2, Some(9_999)));
        r.prune(2_000);
        let refusals = &r.sites[&site()][&b"10.9.9.9"[..]];
        assert_eq!(refusals.in_window(0, 10_000).0, 2);
        assert_eq!(refusals.total, 4);
    }

    #[test]
    fn callers_past_the_bound_fold_the_same_whatever_the_order() {
        let peers: Vec<Vec<u8>> = (0..MAX_CALLERS + 50)
            .map(|i| format!("10.1.{}.{}", i / 256, i % 256).into_bytes())
            .collect();
        let run = |order: &mut dyn Iterator<Item = &Vec<u8>>| {
            let mut r = Rejections::default();
            for p in order {
                r.record(site(), Some(p), Some(1_000));
            }
            r.sites[&site()]
                .iter()
                .map(|(p, x)| (p.clone(), x.total))
                .collect::<Vec<_>>()
        };
        let forward = run(&mut peers.iter());
        let backward = run(&mut peers.iter().rev());
        assert_eq!(forward, backward);
        assert_eq!(forward.len(), MAX_CALLERS + 1);
        assert_eq!(forward[0], (Vec::new(), 50));
    }
}
