//! Kubernetes names: pod name → owning workload, SPIFFE ID → namespace and service account.
//!
//! Stream metadata names a pod (`web-api-7d9f8c6b5-x2x4z`); verdicts are per
//! workload (`web-api`). Without the API's owner references, the workload is
//! the pod name with the ReplicaSet hash and the random suffix removed; both
//! are drawn from kube's safe alphabet, which is what makes this reliable.

/// kube's `rand.SafeEncodeString` alphabet: no vowels, no `0`, `1`, `3`.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn is_safe(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| SAFE_ALPHABET.contains(b))
}

/// Returns the workload name a pod most likely belongs to.
///
/// Deployment pods (`NAME-<hash>-<5>`) lose both suffixes, DaemonSet and Job
/// pods (`NAME-<5>`) and StatefulSet pods (`NAME-<ordinal>`) lose one.
///
/// ```
/// use strictly::workload::workload_of_pod;
/// assert_eq!(workload_of_pod(b"web-api-7d9f8c6b5-x2x4z"), b"web-api");
/// assert_eq!(workload_of_pod(b"catalog-0"), b"catalog");
/// assert_eq!(workload_of_pod(b"node-exporter-zq8wk"), b"node-exporter");
/// assert_eq!(workload_of_pod(b"standalone"), b"standalone");
/// ```
pub fn workload_of_pod(pod: &[u8]) -> &[u8] {
    let Some(last_dash) = pod.iter().rposition(|&b| b == b'-') else {
        return pod;
    };
    let (head, suffix) = (&pod[..last_dash], &pod[last_dash + 1..]);
    if head.is_empty() {
        return pod;
    }
    // The Deployment shape is checked before the StatefulSet one: the safe
    // alphabet has digits, so a ReplicaSet pod's random suffix can be all
    // digits (`web-api-tf2zqw4bjl-58287`), and it is then still a pod of
    // `web-api`, not ordinal 58287 of `web-api-tf2zqw4bjl` (issue 7 item 12).
    if suffix.len() == 5
        && is_safe(suffix)
        && let Some(dash) = head.iter().rposition(|&b| b == b'-')
    {
        // A ReplicaSet's pod-template hash: 6–10 safe characters (a
        // 32-bit FNV hash in the safe encoding).
        let hash = &head[dash + 1..];
        if dash > 0 && (6..=10).contains(&hash.len()) && is_safe(hash) {
            return &head[..dash];
        }
    }
    if !suffix.is_empty() && suffix.iter().all(u8::is_ascii_digit) {
        return head;
    }
    if suffix.len() != 5 || !is_safe(suffix) {
        return pod;
    }
    head
}

/// Splits a SPIFFE ID `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` into namespace and service account.
///
/// ```
/// use strictly::workload::spiffe_ns_sa;
/// let (ns, sa) = spiffe_ns_sa(b"spiffe://cluster.local/ns/istioinaction/sa/web-api").unwrap();
/// assert_eq!((ns, sa), (&b"istioinaction"[..], &b"web-api"[..]));
/// assert!(spiffe_ns_sa(b"-").is_none());
/// ```
pub fn spiffe_ns_sa(id: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = id.strip_prefix(b"spiffe://")?;
    let path = &rest[rest.iter().position(|&b| b == b'/')?..];
    let path = path.strip_prefix(b"/ns/")?;
    let slash = path.iter().position(|&b| b == b'/')?;
    let (ns, tail) = (&path[..slash], &path[slash..]);
    let sa = tail.strip_prefix(b"/sa/")?;
    let sa = sa.split(|&b| b == b'/').next().unwrap_or(sa);
    (!ns.is_empty() && !sa.is_empty()).then_some((ns, sa))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names() {
        let cases: &[(&str, &str)] = &[
            ("web-api-7d9f8c6b5-x2x4z", "web-api"),
            ("sleep-6c8f5b9d7-q2x4z", "sleep"),
            (
                "purchase-history-v1-5f7c9bd8f4-7wqkz",
                "purchase-history-v1",
            ),
            ("db-12", "db"),
            ("fluentd-xq2vz", "fluentd"),
            ("my-app", "my-app"),
            ("web-api-abcde", "web-api-abcde"),
            ("-x", "-x"),
            // Issue 7 item 12: a ReplicaSet pod whose random suffix is all digits.
            ("web-api-tf2zqw4bjl-58287", "web-api"),
            ("web-api-7d9f8c6b5-22222", "web-api"),
            // StatefulSet ordinals still lose only the ordinal.
            ("kafka-broker-10", "kafka-broker"),
            ("web-api-tf2zqw4bjl-0", "web-api-tf2zqw4bjl"),
            // A DaemonSet pod with an all-digit suffix.
            ("node-exporter-24567", "node-exporter"),
        ];
        for (pod, want) in cases {
            assert_eq!(workload_of_pod(pod.as_bytes()), want.as_bytes(), "{pod}");
        }
    }

    #[test]
    fn spiffe_ids() {
        assert_eq!(
            spiffe_ns_sa(b"spiffe://td/ns/a/sa/b/extra"),
            Some((&b"a"[..], &b"b"[..]))
        );
        assert!(spiffe_ns_sa(b"spiffe://td/ns//sa/b").is_none());
        assert!(spiffe_ns_sa(b"spiffe://td").is_none());
    }
}
