//! Ambient mode in the aggregate: where a ztunnel connection goes, and the
//! connection outcomes counted beside mTLS and plaintext.
//!
//! A ztunnel line names its destination pod itself (`dst.workload`): its
//! stream is the node's ztunnel, never the destination, so the line decides
//! and the stream-level rules (spec §3 rules 1 and 4) do not apply. The
//! destination is keyed by the logged `dst.namespace` and the pod's workload;
//! its final namespace is the one `dst.identity` names (mTLS lines), since
//! before 1.22 `dst.namespace` could carry a service's name instead. Keying
//! by workload rather than pod lets a plaintext-only replica take the
//! namespace its siblings' mTLS lines name, as sidecar replicas do (review F10).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names::OneOf;
use super::{Aggregator, DestKind};
use crate::envelope::StreamMeta;
use crate::request::{AmbientConnection, ConnectionOutcome, Request, Transport};
use crate::source::SourceMeta;
use crate::workload::workload_of_pod;

/// Prefix of an ambient destination's key: `\0ambient\0NAMESPACE\0WORKLOAD`.
const KEY: &[u8] = b"\0ambient\0";

/// Per second: connection errors, plaintext connections a policy rejected,
/// mTLS connections a policy denied.
pub type Outcomes = BTreeMap<i64, [u32; 3]>;

/// Connection outcomes of one destination over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Connections that ended with an error other than a policy's.
    pub errors: u64,
    /// Plaintext connections a policy rejected (after the flip to STRICT:
    /// callers that STRICT now breaks). Counted as plaintext too.
    pub rejected_plaintext: u64,
    /// mTLS connections an authorization policy denied. Counted as mTLS too.
    pub denied_mtls: u64,
}

/// Sums `outcomes` over the seconds of `(start, end]`.
pub fn outcomes_in(outcomes: &Outcomes, start_ms: i64, end_ms: i64) -> OutcomeCounts {
    // Second s holds ((s-1)·1000, s·1000]: the window's seconds are (start/1000, end/1000].
    let from = start_ms.div_euclid(1000) + 1;
    let to = end_ms.div_euclid(1000);
    let mut c = OutcomeCounts::default();
    if from > to {
        return c;
    }
    for v in outcomes.range(from..=to).map(|(_, v)| v) {
        c.errors += v[0] as u64;
        c.rejected_plaintext += v[1] as u64;
        c.denied_mtls += v[2] as u64;
    }
    c
}

impl Aggregator {
    /// The destination a ztunnel connection names (see the module doc).
    pub(super) fn ambient_destination(&mut self, a: &AmbientConnection<'_>) -> u32 {
        let workload: &[u8] = match a.pod {
            Some(pod) => workload_of_pod(pod),
            None => a.address,
        };
        let ns = a.namespace.unwrap_or_default();
        let id = self.intern_dest(
            &[KEY, ns, b"\0", workload],
            DestKind::Ambient {
                identity_ns: OneOf::None,
            },
        );
        if let Some(ins) = a.identity_namespace {
            let ns_id = self.namespaces.intern(ins);
            if let DestKind::Ambient { identity_ns } = &mut self.dest_kind[id as usize] {
                identity_ns.note(ns_id);
            }
        }
        id
    }

    /// Declares an ambient pod (Kubernetes source) against its node's ztunnel
    /// stream: the pod's workload is judged by that log's coverage even
    /// before (or without) a connection, and its namespace is the API's.
    pub fn declare_ambient(
        &mut self,
        namespace: &str,
        pod: &str,
        input: u32,
        input_name: &str,
        ztunnel: &SourceMeta,
        error: Option<String>,
    ) {
        let meta = StreamMeta {
            namespace: Some(ztunnel.namespace.as_bytes()),
            pod: Some(ztunnel.pod.as_bytes()),
            container: Some(ztunnel.container.as_bytes()),
        };
        let stream = self.stream(input, input_name, &meta, Some(ztunnel));
        let id = self.intern_dest(
            &[
                KEY,
                namespace.as_bytes(),
                b"\0",
                workload_of_pod(pod.as_bytes()),
            ],
            DestKind::Ambient {
                identity_ns: OneOf::None,
            },
        );
        let ns_id = self.namespaces.intern(namespace.as_bytes());
        if let DestKind::Ambient { identity_ns } = &mut self.dest_kind[id as usize] {
            identity_ns.note(ns_id);
        }
        self.contributions.insert((id, stream.index() as u32));
        if error.is_some() {
            self.stream_info[stream.index()].error = error;
        }
    }

    /// Counts a connection's outcome in `second` (errors, policy rejections).
    pub(super) fn tally_outcome(&mut self, dest: u32, req: &Request<'_>, second: i64) {
        let Some(a) = req.ambient else { return };
        let slot = match (a.outcome, req.transport) {
            (ConnectionOutcome::Error, _) => 0,
            (ConnectionOutcome::PolicyRejected, Transport::Plaintext { .. }) => 1,
            (ConnectionOutcome::PolicyRejected, Transport::Mtls { .. }) => 2,
            _ => return,
        };
        let v = self
            .outcomes
            .entry(dest)
            .or_default()
            .entry(second)
            .or_default();
        v[slot] = v[slot].saturating_add(1);
    }

    /// The final name of an ambient destination, with a hint where the
    /// namespace is uncertain.
    pub(super) fn ambient_name(&self, id: u32, identity_ns: OneOf) -> (String, Option<String>) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let key = self.dests.name(id);
        let rest = key.strip_prefix(KEY).unwrap_or(key);
        let mut parts = rest.splitn(2, |&b| b == 0);
        let logged_ns = text(parts.next().unwrap_or_default());
        let workload = text(parts.next().unwrap_or_default());
        match identity_ns {
            OneOf::One(ns) => (
                format!("{}/{workload}", text(self.namespaces.name(ns))),
                None,
            ),
            OneOf::None if !logged_ns.is_empty() => (format!("{logged_ns}/{workload}"), None),
            OneOf::Many => (
                format!("{logged_ns}/{workload}"),
                Some(format!(
                    "ztunnel lines for {logged_ns}/{workload} name several destination identities' namespaces: the logged dst.namespace is used"
                )),
            ),
            OneOf::None => (
                format!("{}/{workload}", super::UNKNOWN_NAMESPACE),
                Some(format!(
                    "ztunnel lines for {workload} name no namespace (no dst.namespace, no dst.identity)"
                )),
            ),
        }
    }
}
