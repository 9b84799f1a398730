//! Repeated lines across inputs and what workers notice for a warning.
//!
//! [`SeenEntries`] is the one set the workers of a run over several inputs
//! share: an access entry whose stream, write time and payload hash is
//! already there is a repeat (overlapping exports) and counts once.
//! [`Notes`] carries what is worth a warning but not a report field (`-n`
//! contradicted by the lines' own SAN), merged so the warning names the
//! same first line whatever the threads.

use dashmap::DashSet;

use crate::envelope::StreamMeta;
use crate::request::{NamedDestination, Request};

/// Access entries already counted in a run over several inputs: XXH3-64
/// hashes of (stream, write time, payload). The first collision of 64-bit
/// hashes is expected around 2^32 (four billion) entries; it would drop one
/// entry, never a caller's only one.
pub type SeenEntries = DashSet<u64, std::hash::BuildHasherDefault<IdentityHasher>>;

/// The hashes are XXH3 already: hashing them again would only cost time.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What workers noticed besides the aggregate, merged order-independently.
#[derive(Debug, Default)]
pub(super) struct Notes {
    pub(super) namespace_conflict: Option<NamespaceConflict>,
}

/// Lines whose own destination names another namespace than `-n` gave their
/// stream: how many, and the first by (input, line) so the warning does not
/// depend on threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NamespaceConflict {
    pub(super) count: u64,
    pub(super) input: u32,
    pub(super) line: u64,
    pub(super) namespace: String,
}

impl Notes {
    pub(super) fn merge(&mut self, other: Notes) {
        if let Some(o) = other.namespace_conflict {
            match &mut self.namespace_conflict {
                Some(c) => {
                    let count = c.count + o.count;
                    if (o.input, o.line) < (c.input, c.line) {
                        *c = o;
                    }
                    c.count = count;
                }
                None => self.namespace_conflict = Some(o),
            }
        }
    }
}

/// The hash that identifies an access entry across inputs: its stream (the
/// pod and container the envelope or the cluster named), its write time and
/// its payload. Lines without a write time are never compared: a repeat of
/// them cannot be told from a legitimate one.
pub(super) fn entry_hash(
    scratch: &mut Vec<u8>,
    meta: &StreamMeta<'_>,
    t: i64,
    payload: &[u8],
) -> u64 {
    scratch.clear();
    for part in [meta.namespace, meta.pod, meta.container] {
        // Length-prefixed, so no choice of bytes makes two keys collide by concatenation.
        let part = part.unwrap_or(b"\xff");
        scratch.extend_from_slice(&(part.len() as u32).to_le_bytes());
        scratch.extend_from_slice(part);
    }
    scratch.extend_from_slice(&t.to_le_bytes());
    scratch.extend_from_slice(payload);
    xxhash_rust::xxh3::xxh3_64(scratch)
}

/// Returns the namespace a line's own destination names when it contradicts
/// the `-n` given for its stream, or None.
///
/// `kubectl logs --prefix` names the pod but not its namespace, so `-n`
/// supplies it; an inbound line whose SAN (or SNI) names another namespace
/// says where the request really arrived, and `-n` was wrong for it. Streams
/// whose namespace the envelope or the cluster gave are never contradicted.
pub fn namespace_flag_contradiction<'a>(
    flag: Option<&str>,
    meta: &StreamMeta<'_>,
    req: &Request<'a>,
) -> Option<&'a [u8]> {
    contradiction(flag, meta, req.inbound, req.named_destination)
}

fn contradiction<'a>(
    flag: Option<&str>,
    meta: &StreamMeta<'_>,
    inbound: bool,
    named: Option<NamedDestination<'a>>,
) -> Option<&'a [u8]> {
    let flag = flag?;
    if !inbound || meta.namespace.is_some() || meta.pod.is_none() {
        return None;
    }
    let (ns, _) = named?.namespace_and_name()?;
    (!ns.is_empty() && ns != flag.as_bytes()).then_some(ns)
}

impl Notes {
    pub(super) fn note_namespace_conflict(&mut self, input: u32, line: u64, namespace: &[u8]) {
        let c = self
            .namespace_conflict
            .get_or_insert_with(|| NamespaceConflict {
                count: 0,
                input,
                line,
                namespace: String::from_utf8_lossy(namespace).into_owned(),
            });
        c.count += 1;
        if (input, line) < (c.input, c.line) {
            c.input = input;
            c.line = line;
            c.namespace = String::from_utf8_lossy(namespace).into_owned();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta<'a>(ns: Option<&'a [u8]>, pod: Option<&'a [u8]>) -> StreamMeta<'a> {
        StreamMeta {
            namespace: ns,
            pod,
            container: Some(b"istio-proxy"),
        }
    }

    #[test]
    fn an_entry_is_its_stream_time_and_bytes() {
        let mut s = Vec::new();
        let web = meta(None, Some(b"web-0"));
        let h = entry_hash(&mut s, &web, 1000, b"GET /");
        assert_eq!(h, entry_hash(&mut s, &web, 1000, b"GET /"));
        assert_ne!(
            h,
            entry_hash(&mut s, &meta(None, Some(b"web-1")), 1000, b"GET /")
        );
        assert_ne!(h, entry_hash(&mut s, &web, 1001, b"GET /"));
        assert_ne!(h, entry_hash(&mut s, &web, 1000, b"GET /x"));
        // Parts are length-prefixed: moving bytes between them is another key.
        let a = entry_hash(&mut s, &meta(Some(b"ab"), Some(b"c")), 1, b"");
        let b = entry_hash(&mut s, &meta(Some(b"a"), Some(b"bc")), 1, b"");
        assert_ne!(a, b);
    }

    #[test]
    fn only_a_namespace_from_the_flag_can_be_contradicted() {
        let san = Some(NamedDestination::Spiffe(
            b"spiffe://cluster.local/ns/default/sa/httpbin",
        ));
        let prefixed = meta(None, Some(b"httpbin-0"));
        let check = |flag, meta: &StreamMeta<'_>, inbound| contradiction(flag, meta, inbound, san);
        assert_eq!(
            check(Some("istioinaction"), &prefixed, true),
            Some(&b"default"[..])
        );
        assert_eq!(check(Some("default"), &prefixed, true), None);
        assert_eq!(check(None, &prefixed, true), None);
        // The envelope named the namespace, or no pod: -n did not supply it.
        assert_eq!(
            check(Some("x"), &meta(Some(b"default"), Some(b"httpbin-0")), true),
            None
        );
        assert_eq!(check(Some("x"), &meta(None, None), true), None);
        // Outbound lines name someone else's destination; a line naming none says nothing.
        assert_eq!(check(Some("x"), &prefixed, false), None);
        assert_eq!(contradiction(Some("x"), &prefixed, true, None), None);
    }

    #[test]
    fn the_first_conflict_does_not_depend_on_merge_order() {
        let note = |input, line, ns: &[u8]| {
            let mut n = Notes::default();
            n.note_namespace_conflict(input, line, ns);
            n
        };
        let merged = |order: [(u32, u64, &[u8]); 3]| {
            let mut all = Notes::default();
            for (i, l, ns) in order {
                all.merge(note(i, l, ns));
            }
            all.namespace_conflict.unwrap()
        };
        let a = merged([(1, 5, b"a"), (0, 9, b"b"), (0, 7, b"c")]);
        let b = merged([(0, 7, b"c"), (1, 5, b"a"), (0, 9, b"b")]);
        assert_eq!(a, b);
        assert_eq!(
            (a.count, a.input, a.line, a.namespace.as_str()),
            (3, 0, 7, "c")
        );
    }
}
