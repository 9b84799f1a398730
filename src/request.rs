//! Requests: what one access entry means for STRICT mTLS (spec §2).
//!
//! Given the fields a format logged, decide whether the entry is inbound,
//! whether its connection carried a client certificate (mTLS) or not
//! (plaintext), who the caller is and which workload the line itself names.
//! Pure functions over borrowed bytes: nothing here allocates.

use crate::format::{AccessEntry, Field, LogFormat};
use crate::workload::spiffe_ns_sa;

/// How the request reached the sidecar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    /// The connection carried a client certificate; `identity` is its SPIFFE ID when logged.
    Mtls { identity: Option<&'a [u8]> },
    /// No client certificate. `forged_xfcc` is true if and only if the request
    /// nevertheless carried an XFCC header naming a `URI=` (spec: `xfcc_forged`).
    Plaintext { forged_xfcc: bool },
}

/// One classified access entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Returns true for entries a workload *received* (what STRICT would break).
    pub inbound: bool,
    /// `%START_TIME%`, epoch ms, when the format logs it.
    pub time_ms: Option<i64>,
    pub transport: Transport<'a>,
    /// The caller's address (IP, port dropped) where logged.
    pub peer: Option<&'a [u8]>,
    /// The destination the line names itself (spec §3 rule 3), parsed on demand.
    pub named_destination: Option<NamedDestination<'a>>,
    /// The address (IP) that received the request: tells replicas apart in a metadata-less log.
    pub local_address: Option<&'a [u8]>,
    /// Returns true if and only if an AUDIT AuthorizationPolicy rule matched.
    pub audited: bool,
    /// `%DURATION%` in milliseconds.
    pub duration_ms: Option<u64>,
    /// A well-known caller, recognised by its User-Agent where the format logs it.
    pub caller: Option<KnownCaller>,
    /// Ambient mode: the connection as ztunnel logged it (`None` for sidecar lines).
    pub ambient: Option<AmbientConnection<'a>>,
}

/// One connection ztunnel logged (ambient mode): it names its own destination pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmbientConnection<'a> {
    /// `dst.workload`: the destination pod (a canonical service name where ztunnel knew no pod).
    pub pod: Option<&'a [u8]>,
    /// `dst.namespace` as logged (a service's name before 1.22, see [`AmbientConnection::identity_namespace`]).
    pub namespace: Option<&'a [u8]>,
    /// The namespace of `dst.identity` (mTLS only): always the pod's own.
    pub identity_namespace: Option<&'a [u8]>,
    /// `dst.addr` without its port.
    pub address: &'a [u8],
    pub outcome: ConnectionOutcome,
}

/// How a connection ended, as ztunnel logged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionOutcome {
    /// `connection complete` without an error.
    Complete,
    /// `connection complete` with `error="..."` (not a policy's).
    Error,
    /// `error="connection closed due to policy rejection: ..."` or `... policy change`:
    /// after the flip to STRICT, a plaintext caller's connections end like this.
    PolicyRejected,
    /// `connection failed`: denied before ztunnel knew the workload (no
    /// identity, no destination pod): counted apart, never as a connection.
    EarlyDeny,
}

impl ConnectionOutcome {
    /// Classifies `connection complete|failed` and its `error`.
    ///
    /// ```
    /// use strictly::request::ConnectionOutcome;
    /// let e = b"connection closed due to policy rejection: explicitly denied by: istio-system/istio_converted_static_strict";
    /// assert_eq!(ConnectionOutcome::of(false, Some(e)), ConnectionOutcome::PolicyRejected);
    /// assert_eq!(ConnectionOutcome::of(false, Some(b"io error: connection reset")), ConnectionOutcome::Error);
    /// assert_eq!(ConnectionOutcome::of(true, None), ConnectionOutcome::EarlyDeny);
    /// ```
    pub fn of(early_deny: bool, error: Option<&[u8]>) -> ConnectionOutcome {
        match error {
            _ if early_deny => ConnectionOutcome::EarlyDeny,
            None => ConnectionOutcome::Complete,
            Some(e)
                if e.starts_with(b"connection closed due to policy rejection")
                    || e.starts_with(b"connection closed due to policy change") =>
            {
                ConnectionOutcome::PolicyRejected
            }
            Some(_) => ConnectionOutcome::Error,
        }
    }
}

/// Callers operators meet in plaintext and recognise by name.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum KnownCaller {
    KubeProbe,
    Prometheus,
    LoadBalancerHealthCheck,
}

impl KnownCaller {
    /// Recognises a User-Agent.
    ///
    /// ```
    /// use strictly::request::KnownCaller;
    /// assert_eq!(KnownCaller::from_user_agent(b"kube-probe/1.30"), Some(KnownCaller::KubeProbe));
    /// assert_eq!(KnownCaller::from_user_agent(b"curl/8.0"), None);
    /// ```
    pub fn from_user_agent(ua: &[u8]) -> Option<KnownCaller> {
        let has = |needle: &[u8]| memchr::memmem::find(ua, needle).is_some();
        if ua.starts_with(b"kube-probe/") {
            Some(KnownCaller::KubeProbe)
        } else if ua.starts_with(b"Prometheus/") || has(b"prometheus") {
            Some(KnownCaller::Prometheus)
        } else if has(b"GoogleHC/")
            || has(b"ELB-HealthChecker")
            || has(b"kube-proxy")
            || has(b"Azure Traffic Manager")
            || has(b"Load Balancer Agent")
            || ua.starts_with(b"HealthChecker")
        {
            Some(KnownCaller::LoadBalancerHealthCheck)
        } else {
            None
        }
    }

    /// How reports name it.
    pub fn describe(self) -> &'static str {
        match self {
            KnownCaller::KubeProbe => "kubelet probe (kube-probe)",
            KnownCaller::Prometheus => "Prometheus scrape",
            KnownCaller::LoadBalancerHealthCheck => "load-balancer health check",
        }
    }
}

/// Where a line names its own destination; parsed only when attribution needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedDestination<'a> {
    /// The sidecar's own SPIFFE ID (`%DOWNSTREAM_LOCAL_URI_SAN%` or XFCC `By=`).
    Spiffe(&'a [u8]),
    /// An Istio client's SNI naming the service.
    Sni(&'a [u8]),
}

impl<'a> NamedDestination<'a> {
    /// The raw value: equal raw values name the same destination.
    pub fn raw(&self) -> &'a [u8] {
        match *self {
            NamedDestination::Spiffe(v) | NamedDestination::Sni(v) => v,
        }
    }

    /// Namespace and name (service account or service), if the value parses.
    pub fn namespace_and_name(&self) -> Option<(&'a [u8], &'a [u8])> {
        match *self {
            NamedDestination::Spiffe(v) => spiffe_ns_sa(v),
            NamedDestination::Sni(v) => sni_service(v),
        }
    }
}

impl Request<'_> {
    /// Returns true if and only if the request was plaintext.
    pub fn is_plaintext(&self) -> bool {
        matches!(self.transport, Transport::Plaintext { .. })
    }
}

/// Returns true if and only if an upstream cluster is one a sidecar uses for
/// traffic it *receives*: `inbound|PORT||` for declared ports, and the
/// passthrough clusters for ports no Service declares — plaintext to an
/// undeclared port is exactly what STRICT breaks (review finding F2).
fn is_inbound_cluster(cluster: &[u8]) -> bool {
    cluster.starts_with(b"inbound|")
        || matches!(
            cluster,
            b"InboundPassthroughClusterIpv4"
                | b"InboundPassthroughClusterIpv6"
                | b"InboundPassthroughCluster"
        )
}

/// Classifies one access entry of `format` (spec §2 and §3 rule 3).
pub fn classify<'a>(entry: &AccessEntry<'a>, format: &LogFormat) -> Request<'a> {
    if format.is_ztunnel() {
        return classify_ambient(entry);
    }
    let inbound = if format.logs(Field::UpstreamCluster) {
        entry
            .get(Field::UpstreamCluster)
            .is_some_and(is_inbound_cluster)
    } else {
        // The lab's EnvoyFilter logs SIDECAR_INBOUND only.
        true
    };
    // XFCC is parsed only when it decides something: most lines never need it.
    let xfcc = entry.get(Field::Xfcc);
    let xfcc_uri = || {
        xfcc.and_then(xfcc_last_element)
            .and_then(|e| xfcc_value(e, b"URI"))
    };
    let remote = entry.get(Field::DownstreamRemoteAddress).map(strip_port);

    let transport = if format.logs(Field::PeerUriSan) {
        match entry.get(Field::PeerUriSan) {
            Some(san) => Transport::Mtls {
                identity: Some(san),
            },
            None => Transport::Plaintext {
                forged_xfcc: xfcc_uri().is_some(),
            },
        }
    } else if format.logs(Field::RequestedServerName) {
        // Istio's client sidecars send SNI `outbound_.PORT_._.HOST` with mTLS.
        if entry
            .get(Field::RequestedServerName)
            .is_some_and(|sni| sni.starts_with(b"outbound_"))
        {
            Transport::Mtls { identity: None }
        } else {
            Transport::Plaintext { forged_xfcc: false }
        }
    } else {
        // The sidecar strips XFCC from plaintext connections, so a URI= in
        // the element it added is the evidence of a client certificate.
        match xfcc_uri() {
            Some(uri) => Transport::Mtls {
                identity: Some(uri),
            },
            None => Transport::Plaintext { forged_xfcc: false },
        }
    };

    let peer = match transport {
        Transport::Mtls { identity: Some(_) } => None,
        Transport::Mtls { identity: None } => remote,
        Transport::Plaintext { .. } => {
            remote.or_else(|| entry.get(Field::ForwardedFor).and_then(first_forwarded_for))
        }
    };

    let named_destination = entry
        .get(Field::LocalUriSan)
        .map(NamedDestination::Spiffe)
        .or_else(|| match transport {
            // Only the sidecar's own element of a real mTLS request names it,
            // and only an mTLS client's SNI (Istio's formats log no SAN).
            Transport::Mtls { .. } => xfcc
                .and_then(xfcc_last_element)
                .and_then(|e| xfcc_value(e, b"By"))
                .map(NamedDestination::Spiffe)
                .or_else(|| {
                    entry
                        .get(Field::RequestedServerName)
                        .map(NamedDestination::Sni)
                }),
            Transport::Plaintext { .. } => None,
        });

    Request {
        inbound,
        time_ms: entry.start_time_ms,
        transport,
        peer,
        named_destination,
        local_address: entry.get(Field::DownstreamLocalAddress).map(strip_port),
        audited: entry.get(Field::AuditHint) == Some(b"true"),
        duration_ms: entry.get(Field::Duration).and_then(parse_u64),
        // Only plaintext callers need naming; mTLS ones carry an identity.
        caller: match transport {
            Transport::Plaintext { .. } => entry
                .get(Field::UserAgent)
                .and_then(KnownCaller::from_user_agent),
            Transport::Mtls { .. } => None,
        },
        ambient: None,
    }
}

/// Classifies one ztunnel connection (spec §2 for ambient): only inbound
/// counts; a `src.identity` means the connection came over HBONE (mTLS);
/// without one it reached the workload in plaintext, its caller named by `src.addr`.
fn classify_ambient<'a>(entry: &AccessEntry<'a>) -> Request<'a> {
    let transport = match entry.get(Field::PeerUriSan) {
        Some(id) => Transport::Mtls { identity: Some(id) },
        None => Transport::Plaintext { forged_xfcc: false },
    };
    let early_deny = entry.raw(Field::ConnectionEvent) == Some(crate::format::ztunnel::FAILED);
    let outcome = ConnectionOutcome::of(early_deny, entry.get(Field::ConnectionError));
    let peer = match transport {
        Transport::Plaintext { .. } => entry.get(Field::DownstreamRemoteAddress).map(strip_port),
        Transport::Mtls { .. } => None,
    };
    Request {
        inbound: entry.get(Field::Direction) == Some(b"inbound"),
        time_ms: entry.start_time_ms,
        transport,
        peer,
        named_destination: None,
        // Coverage is the ztunnel's (one log for its whole node), not per pod IP.
        local_address: None,
        audited: false,
        duration_ms: entry.get(Field::Duration).and_then(parse_u64),
        caller: None,
        ambient: Some(AmbientConnection {
            pod: entry.get(Field::DestinationWorkload),
            namespace: entry.get(Field::DestinationNamespace),
            identity_namespace: entry
                .get(Field::LocalUriSan)
                .and_then(spiffe_ns_sa)
                .map(|(ns, _)| ns),
            address: entry
                .get(Field::DownstreamLocalAddress)
                .map(strip_port)
                .unwrap_or_default(),
            outcome,
        }),
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u64)
    })
}

/// Drops the port of `ip:port` or `[v6]:port`.
///
/// ```
/// use strictly::request::strip_port;
/// assert_eq!(strip_port(b"10.44.0.7:52344"), b"10.44.0.7");
/// assert_eq!(strip_port(b"[fe80::1]:80"), b"fe80::1");
/// assert_eq!(strip_port(b"10.44.0.7"), b"10.44.0.7");
/// ```
pub fn strip_port(addr: &[u8]) -> &[u8] {
    if let Some(rest) = addr.strip_prefix(b"[") {
        if let Some(end) = rest.iter().position(|&b| b == b']') {
            return &rest[..end];
        }
        return addr;
    }
    let colons = addr.iter().filter(|&&b| b == b':').count();
    match colons {
        1 => &addr[..addr.iter().position(|&b| b == b':').unwrap_or(addr.len())],
        _ => addr,
    }
}

/// The Kubernetes service an Istio client's SNI names:
/// `outbound_.8080_._.web-api.istioinaction.svc.cluster.local` → (`istioinaction`, `web-api`).
///
/// ```
/// use strictly::request::sni_service;
/// let sni = b"outbound_.8080_.v1_.web-api.istioinaction.svc.cluster.local";
/// assert_eq!(sni_service(sni), Some((&b"istioinaction"[..], &b"web-api"[..])));
/// assert_eq!(sni_service(b"outbound_.443_._.example.com"), None);
/// ```
pub fn sni_service(sni: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = sni.strip_prefix(b"outbound_.")?;
    let after_port = &rest[memchr::memmem::find(rest, b"_.")? + 2..];
    let host = &after_port[memchr::memmem::find(after_port, b"_.")? + 2..];
    let mut labels = host.split(|&b| b == b'.');
    let (name, ns, svc) = (labels.next()?, labels.next()?, labels.next()?);
    (svc == b"svc" && !name.is_empty() && !ns.is_empty()).then_some((ns, name))
}

/// The first address of an `X-Forwarded-For` list.
fn first_forwarded_for(xff: &[u8]) -> Option<&[u8]> {
    let first = xff.split(|&b| b == b',').next()?.trim_ascii();
    (!first.is_empty()).then(|| strip_port(first))
}

/// Splits XFCC at top-level separators (outside double quotes).
fn split_unquoted(s: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut i = 0;
    std::iter::from_fn(move || {
        if start > s.len() {
            return None;
        }
        while i < s.len() {
            let b = s[i];
            i += 1;
            if escaped {
                escaped = false;
            } else if b == b'\\' && quoted {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == sep && !quoted {
                let part = &s[start..i - 1];
                start = i;
                return Some(part);
            }
        }
        let part = &s[start..];
        start = s.len() + 1;
        Some(part)
    })
}

/// The element the nearest proxy (our sidecar) appended: the last one.
fn xfcc_last_element(xfcc: &[u8]) -> Option<&[u8]> {
    // Without quotes no separator can hide inside a value: split from the end.
    if memchr::memchr(b'"', xfcc).is_none() {
        let start = memchr::memrchr(b',', xfcc).map_or(0, |i| i + 1);
        return Some(xfcc[start..].trim_ascii());
    }
    split_unquoted(xfcc, b',').last().map(<[u8]>::trim_ascii)
}

/// The value of `key` (case-insensitive) in one XFCC element, unquoted.
fn xfcc_value<'a>(element: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    split_unquoted(element, b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = (pair[..eq].trim_ascii(), &pair[eq + 1..]);
        if !k.eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        (!v.is_empty()).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB_XFCC: &[u8] = b"By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=cdd00c3f7a968b8a48d41d536839485fc8f3c049915794a7688dc595f114e18b;Subject=\"\";URI=spiffe://cluster.local/ns/istioinaction/sa/sleep";

    #[test]
    fn xfcc_uri_and_by_of_the_last_element() {
        let two = [
            &b"By=spiffe://a/ns/x/sa/gw;URI=spiffe://a/ns/y/sa/edge,"[..],
            LAB_XFCC,
        ]
        .concat();
        let last = xfcc_last_element(&two).unwrap();
        assert_eq!(
            xfcc_value(last, b"URI"),
            Some(&b"spiffe://cluster.local/ns/istioinaction/sa/sleep"[..])
        );
        assert_eq!(
            xfcc_value(last, b"By"),
            Some(&b"spiffe://cluster.local/ns/istioinaction/sa/web-api"[..])
        );
    }

    #[test]
    fn xfcc_quoted_subject_with_separators() {
        let v = b"Subject=\"CN=a,O=b;c\";URI=spiffe://td/ns/n/sa/s";
        assert_eq!(split_unquoted(v, b',').count(), 1);
        assert_eq!(xfcc_value(v, b"uri"), Some(&b"spiffe://td/ns/n/sa/s"[..]));
        assert_eq!(xfcc_value(b"Subject=\"\"", b"Subject"), None);
    }

    #[test]
    fn forwarded_for_first_address() {
        assert_eq!(
            first_forwarded_for(b" 10.1.2.3, 10.0.0.1"),
            Some(&b"10.1.2.3"[..])
        );
        assert_eq!(first_forwarded_for(b""), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"10"), Some(10));
        assert_eq!(parse_u64(b"-"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
    }
}
