//! Rendering: an [`Event`] or a noise line as istio-proxy prints it, inside an envelope.
//!
//! [`Details`] is everything a line says beyond the event itself (ids, sizes,
//! headers); `truth` reads it too, so the two cannot disagree.

use std::fmt::Write as _;
use std::io::{self, Write};

use clap::ValueEnum;

use crate::clock;
use crate::mesh::{
    AUDIT_ALLOWED_NAMESPACE, Caller, FLOWS, Mesh, PLAIN_CALLERS, TRUST_DOMAIN, WORKLOADS, Workload,
};
use crate::rng::Rng;
use crate::traffic::{Event, Item, Noise, Outcome, Side, Traffic};

/// The access-log format the sidecars are configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatKind {
    /// The lab's EnvoyFilter format (mTLS_Origin, mTLS_Destination, cert, audit_flag).
    Lab,
    /// The lab's first sample line: upstream service time and X-Forwarded-For after mTLS_Destination.
    #[value(name = "lab-v0")]
    LabV0,
    /// The published variant without mTLS_Origin/mTLS_Destination (cert and audit_flag only).
    LabCert,
    /// Istio's default TEXT access log (1.9+); logs outbound requests too.
    Istio,
    /// Istio's default access log with `accessLogEncoding: JSON`; logs outbound requests too.
    IstioJson,
}

impl FormatKind {
    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Lab => "lab",
            FormatKind::LabV0 => "lab-v0",
            FormatKind::LabCert => "lab-cert",
            FormatKind::Istio => "istio",
            FormatKind::IstioJson => "istio-json",
        }
    }

    /// Returns true if and only if the format logs X-Forwarded-Client-Cert and audit_flag.
    pub fn logs_xfcc(self) -> bool {
        matches!(
            self,
            FormatKind::Lab | FormatKind::LabV0 | FormatKind::LabCert
        )
    }

    /// Returns true if and only if it is one of Istio's formats (both directions, no SAN, no XFCC).
    pub fn is_istio(self) -> bool {
        matches!(self, FormatKind::Istio | FormatKind::IstioJson)
    }
}

/// What wraps each line in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnvelopeKind {
    /// The line as istio-proxy wrote it.
    Raw,
    /// `kubectl logs --timestamps`: `2026-11-20T11:43:14.559123456Z LINE`.
    Kubectl,
    /// `kubectl logs --prefix --timestamps`: `[pod/NAME/istio-proxy] 2026-11-20T11:43:14.559123456Z LINE`.
    KubectlPrefix,
    /// stern's default text output: `POD istio-proxy LINE`.
    Stern,
}

impl EnvelopeKind {
    pub fn name(self) -> &'static str {
        match self {
            EnvelopeKind::Raw => "raw",
            EnvelopeKind::Kubectl => "kubectl",
            EnvelopeKind::KubectlPrefix => "kubectl-prefix",
            EnvelopeKind::Stern => "stern",
        }
    }

    /// Returns true if and only if each line names the pod it came from.
    /// Returns true if and only if each line carries the time it was written (kubelet's).
    pub fn has_write_time(self) -> bool {
        matches!(self, EnvelopeKind::Kubectl | EnvelopeKind::KubectlPrefix)
    }

    pub fn names_pod(self) -> bool {
        matches!(self, EnvelopeKind::KubectlPrefix | EnvelopeKind::Stern)
    }
}

/// `%DYNAMIC_METADATA(envoy.common:access_log_hint)%`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audit {
    /// An AUDIT rule matched.
    True,
    /// The workload has an AUDIT policy; no rule matched.
    False,
    /// No AUDIT policy applies to the workload (`-`).
    Absent,
}

impl Audit {
    fn text(self) -> &'static str {
        match self {
            Audit::True => "true",
            Audit::False => "false",
            Audit::Absent => "-",
        }
    }
}

/// Everything one request's log line says that the [`Event`] does not store.
#[derive(Clone, Debug)]
pub struct Details {
    pub method: &'static str,
    pub path: &'static str,
    pub authority: &'static str,
    pub user_agent: &'static str,
    pub code: u16,
    pub flags: &'static str,
    pub code_details: &'static str,
    pub transport_failure: Option<&'static str>,
    pub received: u32,
    pub sent: u32,
    pub upstream_service_time: Option<u32>,
    /// `X-Forwarded-For` (None: `-`).
    pub xff: Option<String>,
    pub request_id: String,
    pub remote_port: u16,
    pub upstream_local_port: u16,
    pub audit: Audit,
    /// `X-Forwarded-Client-Cert` as the destination's sidecar logs it.
    pub xfcc: Option<String>,
}

impl Details {
    pub fn of(mesh: &Mesh, event: &Event) -> Details {
        let flow = &FLOWS[usize::from(event.flow)];
        let template = &flow.templates[usize::from(event.template)];
        let dest = &WORKLOADS[flow.dest];
        let mut rng = Rng::derive(event.seed, 3);
        let request_id = uuid(&mut rng);
        let user_agent = *rng.pick(flow.user_agents);
        let received = between(&mut rng, template.received);
        let ok_sent = between(&mut rng, template.sent);
        let (code, sent) = match (event.outcome, template.path) {
            (Outcome::Ok, "/status/418") => (418, ok_sent),
            (Outcome::Ok, "/favicon.ico") | (Outcome::NotFound, _) => (404, 19),
            (Outcome::Ok, _) => (200, ok_sent),
            (Outcome::UpstreamFailure, _) => (503, 91),
            (Outcome::DownstreamDisconnect, _) => (0, 0),
        };
        let (flags, code_details, transport_failure) = match event.outcome {
            Outcome::Ok | Outcome::NotFound => ("-", "via_upstream", None),
            Outcome::UpstreamFailure => (
                "UF",
                "upstream_reset_before_response_started{connection_failure}",
                Some("delayed_connect_error:_Connection_refused"),
            ),
            Outcome::DownstreamDisconnect => ("DC", "downstream_remote_disconnect", None),
        };
        let upstream_service_time =
            matches!(event.outcome, Outcome::Ok | Outcome::NotFound).then(|| {
                let overhead = rng.below(u64::from(event.duration_ms.min(2)) + 1) as u32;
                event.duration_ms - overhead
            });
        let xff = match event.caller {
            Caller::Pod(p) if mesh.pod(p).workload == crate::mesh::INGRESS_GATEWAY => {
                // The gateway appends the client's address; clients come from a few networks.
                let net = *rng.pick(&["203.0.113", "198.51.100", "192.0.2"]);
                Some(format!("{net}.{}", rng.range(2, 250)))
            }
            Caller::Plain(c) if PLAIN_CALLERS[usize::from(c)].sets_xff => {
                Some(PLAIN_CALLERS[usize::from(c)].ip.to_string())
            }
            _ => None,
        };
        let audit = if !dest.audit_policy {
            Audit::Absent
        } else {
            let outside = match event.caller {
                Caller::Pod(p) => mesh.workload_of(p).namespace != AUDIT_ALLOWED_NAMESPACE,
                Caller::Plain(_) => true,
            };
            if outside && template.method == "GET" {
                Audit::True
            } else {
                Audit::False
            }
        };
        let xfcc = match event.caller {
            Caller::Pod(p) => Some(format!(
                "By={};Hash={};Subject=\"\";URI={}",
                dest.spiffe(),
                cert_hash(mesh.pod(p).cert_seed, event.start_ms),
                mesh.workload_of(p).spiffe()
            )),
            // A proxy in front of the VM forwards a header it was given: no
            // client certificate backs it, so it proves nothing.
            Caller::Plain(_) if event.forged_xfcc => Some(format!(
                "By={};Hash={};Subject=\"\";URI=spiffe://{TRUST_DOMAIN}/ns/istioinaction/sa/sleep",
                dest.spiffe(),
                cert_hash(event.seed, event.start_ms)
            )),
            Caller::Plain(_) => None,
        };
        Details {
            method: template.method,
            path: template.path,
            authority: template.authority,
            user_agent,
            code,
            flags,
            code_details,
            transport_failure,
            received,
            sent,
            upstream_service_time,
            xff,
            request_id,
            remote_port: rng.range(32_768, 61_000) as u16,
            upstream_local_port: rng.range(32_768, 61_000) as u16,
            audit,
            xfcc,
        }
    }
}

fn between(rng: &mut Rng, (lo, hi): (u32, u32)) -> u32 {
    if hi <= lo {
        lo
    } else {
        rng.range(i64::from(lo), i64::from(hi) + 1) as u32
    }
}

fn uuid(rng: &mut Rng) -> String {
    let a = rng.next_u64();
    let b = rng.next_u64();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// The SHA-256 of a workload certificate, as XFCC's `Hash=`: istio-agent
/// rotates the certificate about every 12 hours.
fn cert_hash(cert_seed: u64, at_ms: i64) -> String {
    let mut rng = Rng::derive(cert_seed, at_ms.div_euclid(12 * clock::HOUR_MS) as u64);
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        let _ = write!(out, "{:016x}", rng.next_u64());
    }
    out
}

/// Writes every line of `traffic`, in the order kubelet received them; returns the number of lines.
pub fn write_log(
    out: &mut dyn Write,
    mesh: &Mesh,
    traffic: &Traffic,
    format: FormatKind,
    envelope: EnvelopeKind,
) -> io::Result<u64> {
    let mut line = String::with_capacity(1024);
    let mut content = String::with_capacity(1024);
    let mut written = 0;
    for item in traffic.schedule() {
        line.clear();
        content.clear();
        let (pod, emitted_ns) = match item {
            Item::Event(i) => {
                let event = &traffic.events[i as usize];
                access_line(&mut content, mesh, event, format);
                if event.side == Side::Malformed {
                    let keep = content.len() * usize::from(event.cut_permille) / 1000;
                    content.truncate(keep);
                }
                (event.log_pod(), event.emitted_ns())
            }
            Item::Noise(i) => {
                let noise = &traffic.noise[i as usize];
                noise_line(&mut content, mesh, noise);
                (noise.pod, noise.emitted_ns())
            }
        };
        let pod_name = &mesh.pod(pod).name;
        match envelope {
            EnvelopeKind::Raw => {}
            EnvelopeKind::Kubectl => {
                clock::push_kubelet(&mut line, emitted_ns);
                line.push(' ');
            }
            EnvelopeKind::KubectlPrefix => {
                let _ = write!(line, "[pod/{pod_name}/istio-proxy] ");
                clock::push_kubelet(&mut line, emitted_ns);
                line.push(' ');
            }
            EnvelopeKind::Stern => {
                let _ = write!(line, "{pod_name} istio-proxy ");
            }
        }
        line.push_str(&content);
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += 1;
    }
    Ok(written)
}

/// The access-log entry of `event` (without envelope or newline).
pub fn access_line(out: &mut String, mesh: &Mesh, event: &Event, format: FormatKind) {
    let d = Details::of(mesh, event);
    match format {
        FormatKind::Lab | FormatKind::LabV0 | FormatKind::LabCert => {
            lab_line(out, mesh, event, &d, format)
        }
        FormatKind::Istio => istio_line(out, mesh, event, &d),
        FormatKind::IstioJson => istio_json_line(out, mesh, event, &d),
    }
}

fn dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The lab's EnvoyFilter format and its two variants (inbound only).
fn lab_line(out: &mut String, mesh: &Mesh, event: &Event, d: &Details, format: FormatKind) {
    let (origin, destination) = match event.caller {
        Caller::Pod(p) => (
            mesh.workload_of(p).spiffe(),
            mesh.workload_of(event.dest_pod).spiffe(),
        ),
        Caller::Plain(_) => ("-".to_string(), "-".to_string()),
    };
    out.push('[');
    clock::push_envoy(out, event.start_ms);
    let _ = write!(
        out,
        "] \"{} {} HTTP/1.1\" {} {} \"{}\" {} {} {} ",
        d.method,
        d.path,
        d.code,
        d.flags,
        d.transport_failure.unwrap_or("-"),
        d.received,
        d.sent,
        event.duration_ms
    );
    let service_time = dash(d.upstream_service_time);
    let xff = d.xff.as_deref().unwrap_or("-");
    match format {
        FormatKind::Lab => {
            let _ = write!(
                out,
                "{service_time} \"{xff}\" mTLS_Origin: \"{origin}\" mTLS_Destination: \"{destination}\" "
            );
        }
        FormatKind::LabV0 => {
            let _ = write!(
                out,
                "mTLS_Origin: \"{origin}\" mTLS_Destination: \"{destination}\" {service_time} \"{xff}\" "
            );
        }
        _ => {
            let _ = write!(out, "{service_time} \"{xff}\" ");
        }
    }
    let _ = write!(
        out,
        "cert: \"{}\" audit_flag: \"{}\"",
        d.xfcc.as_deref().unwrap_or("-"),
        d.audit.text()
    );
}

/// The address fields of Istio's default format, for either side of the request.
struct Addresses {
    upstream_host: String,
    upstream_cluster: String,
    upstream_local: Option<String>,
    downstream_local: String,
    downstream_remote: String,
    server_name: Option<String>,
}

fn addresses(mesh: &Mesh, event: &Event, d: &Details) -> Addresses {
    let dest_pod = mesh.pod(event.dest_pod);
    let dest: &Workload = mesh.workload_of(event.dest_pod);
    let (mut caller_ip, mtls) = match event.caller {
        Caller::Pod(p) => (mesh.pod(p).ip.to_string(), true),
        Caller::Plain(c) => (PLAIN_CALLERS[usize::from(c)].ip.to_string(), false),
    };
    if mtls && mesh.callers > 0 && event.side == Side::Inbound {
        // One of `--callers` addresses, picked by the request's own fields (deterministic).
        let k =
            (event.start_ms as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(d.remote_port);
        let k = (k >> 17) % u64::from(mesh.callers);
        caller_ip = format!("10.128.{}.{}", k / 250, k % 250 + 1);
    }
    let upstream_host = format!("{}:{}", dest_pod.ip, dest.target_port);
    if event.side == Side::Outbound {
        Addresses {
            upstream_host,
            upstream_cluster: dest.outbound_cluster(),
            upstream_local: Some(format!("{caller_ip}:{}", d.upstream_local_port)),
            downstream_local: format!("{}:{}", dest.cluster_ip, dest.service_port),
            downstream_remote: format!("{caller_ip}:{}", d.remote_port),
            server_name: None,
        }
    } else {
        Addresses {
            upstream_host: upstream_host.clone(),
            upstream_cluster: format!("inbound|{}||", dest.target_port),
            upstream_local: (event.outcome != Outcome::UpstreamFailure)
                .then(|| format!("127.0.0.6:{}", d.upstream_local_port)),
            downstream_local: upstream_host,
            downstream_remote: format!("{caller_ip}:{}", d.remote_port),
            server_name: mtls.then(|| dest.sni()),
        }
    }
}

/// Istio's default TEXT format (1.9 and later).
fn istio_line(out: &mut String, mesh: &Mesh, event: &Event, d: &Details) {
    let a = addresses(mesh, event, d);
    out.push('[');
    clock::push_envoy(out, event.start_ms);
    let _ = write!(
        out,
        "] \"{} {} HTTP/1.1\" {} {} {} - \"{}\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} {} {} {} {} default",
        d.method,
        d.path,
        d.code,
        d.flags,
        d.code_details,
        d.transport_failure.unwrap_or("-"),
        d.received,
        d.sent,
        event.duration_ms,
        dash(d.upstream_service_time),
        d.xff.as_deref().unwrap_or("-"),
        d.user_agent,
        d.request_id,
        d.authority,
        a.upstream_host,
        a.upstream_cluster,
        a.upstream_local.as_deref().unwrap_or("-"),
        a.downstream_local,
        a.downstream_remote,
        a.server_name.as_deref().unwrap_or("-"),
    );
}

/// Istio's default format with `accessLogEncoding: JSON`: Envoy writes the
/// keys sorted and missing values as `null`.
fn istio_json_line(out: &mut String, mesh: &Mesh, event: &Event, d: &Details) {
    use serde_json::Value;
    let a = addresses(mesh, event, d);
    let text = |s: &str| Value::String(s.to_string());
    let maybe = |s: Option<String>| s.map_or(Value::Null, Value::String);
    let fields: std::collections::BTreeMap<&str, Value> = [
        ("authority", text(d.authority)),
        ("bytes_received", Value::from(d.received)),
        ("bytes_sent", Value::from(d.sent)),
        ("connection_termination_details", Value::Null),
        ("downstream_local_address", text(&a.downstream_local)),
        ("downstream_remote_address", text(&a.downstream_remote)),
        ("duration", Value::from(event.duration_ms)),
        ("method", text(d.method)),
        ("path", text(d.path)),
        ("protocol", text("HTTP/1.1")),
        ("request_id", text(&d.request_id)),
        ("requested_server_name", maybe(a.server_name)),
        ("response_code", Value::from(d.code)),
        ("response_code_details", text(d.code_details)),
        ("response_flags", text(d.flags)),
        ("route_name", text("default")),
        ("start_time", Value::String(clock::envoy(event.start_ms))),
        ("upstream_cluster", text(&a.upstream_cluster)),
        ("upstream_host", text(&a.upstream_host)),
        ("upstream_local_address", maybe(a.upstream_local)),
        (
            "upstream_service_time",
            maybe(d.upstream_service_time.map(|t| t.to_string())),
        ),
        (
            "upstream_transport_failure_reason",
            maybe(d.transport_failure.map(str::to_string)),
        ),
        ("user_agent", text(d.user_agent)),
        ("x_forwarded_for", maybe(d.xff.clone())),
    ]
    .into_iter()
    .collect();
    out.push_str(&serde_json::to_string(&fields).expect("a map of JSON values serializes"));
}

/// A pilot-agent or Envoy diagnostic line: what `istio-proxy` prints besides access entries.
fn noise_line(out: &mut String, mesh: &Mesh, noise: &Noise) {
    let pod = mesh.pod(noise.pod);
    let namespace = WORKLOADS[pod.workload].namespace;
    let mut rng = Rng::derive(noise.seed, 5);
    let ms = noise.at_us.div_euclid(1000);
    let agent = |out: &mut String| clock::push_agent(out, noise.at_us);
    let envoy = |out: &mut String, thread: i64, level: &str, logger: &str, file: &str| {
        out.push('[');
        clock::push_diag(out, ms);
        let _ = write!(out, "][{thread}][{level}][{logger}] [{file}] ");
    };
    match noise.startup {
        Some(0) => {
            agent(out);
            out.push_str("\tinfo\tFLAG: --concurrency=\"2\"");
        }
        Some(1) => {
            agent(out);
            out.push_str("\tinfo\tVersion 1.24.1-5c178358b2c5bd4e6b3e39b0f2e4e0d7b1f2c3a4-Clean");
        }
        Some(2) => {
            agent(out);
            let _ = write!(
                out,
                "\tinfo\tProxy role\tips=[{}] type=sidecar id={}.{namespace} domain={namespace}.svc.cluster.local",
                pod.ip, pod.name
            );
        }
        Some(3) => {
            agent(out);
            out.push_str(
                "\tinfo\txdsproxy\tInitializing with upstream address \"istiod.istio-system.svc:15012\" and cluster \"Kubernetes\"",
            );
        }
        Some(_) => {
            agent(out);
            let _ = write!(
                out,
                "\tinfo\tReadiness succeeded in {}.{:09}s",
                rng.range(0, 2),
                rng.below(1_000_000_000)
            );
        }
        None => match rng.weighted(&[25, 15, 10, 15, 20, 15]) {
            0 => {
                agent(out);
                out.push_str("\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012");
            }
            1 => {
                agent(out);
                out.push_str(
                    "\twarn\txdsproxy\tupstream terminated with unexpected error rpc error: code = Unavailable desc = error reading from server: EOF",
                );
            }
            2 => {
                agent(out);
                let _ = write!(
                    out,
                    "\tinfo\tcache\tgenerated new workload certificate\tlatency={}.{:03}ms ttl=23h59m59.{:09}s",
                    rng.range(40, 180),
                    rng.below(1000),
                    rng.below(1_000_000_000)
                );
            }
            3 => {
                agent(out);
                let _ = write!(
                    out,
                    "\tinfo\tads\tSDS: PUSH request for node:{}.{namespace} resources:1 size:4.0kB resource:default",
                    pod.name
                );
            }
            4 => {
                envoy(
                    out,
                    rng.range(14, 30),
                    "warning",
                    "config",
                    "external/envoy/source/extensions/config_subscription/grpc/grpc_stream.h:152",
                );
                let _ = write!(
                    out,
                    "StreamAggregatedResources gRPC config stream to xds-grpc closed since {}s ago: 14, upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                    rng.range(1200, 1900)
                );
            }
            _ => {
                envoy(
                    out,
                    rng.range(14, 30),
                    "warning",
                    "misc",
                    "external/envoy/source/common/protobuf/message_validator_impl.cc:21",
                );
                out.push_str(
                    "Deprecated field: type envoy.type.matcher.v3.RegexMatcher.GoogleRE2 Using deprecated option 'envoy.type.matcher.v3.RegexMatcher.google_re2' from file regex.proto. This configuration will be removed from Envoy soon.",
                );
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{HOUR_MS, parse_rfc3339};
    use crate::mesh::{LEGACY_SLEEP, WEB_API, WEB_API_TO_RECOMMENDATION};
    use crate::traffic::TrafficConfig;

    fn log(seed: u64, format: FormatKind, envelope: EnvelopeKind) -> String {
        let mesh = Mesh::new(seed);
        let config = TrafficConfig {
            lines: 300,
            end_ms: parse_rfc3339("2026-11-20T12:00:00Z").unwrap(),
            span_ms: 26 * HOUR_MS,
            seed,
            noise_ratio: 0.05,
            malformed: 4,
            outbound: format.is_istio(),
        };
        let traffic = Traffic::generate(&mesh, &config);
        let mut out = Vec::new();
        write_log(&mut out, &mesh, &traffic, format, envelope).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn event(mesh: &Mesh, flow: usize, caller: Caller, start: &str) -> Event {
        Event {
            start_ms: parse_rfc3339(start).unwrap(),
            seed: 7,
            duration_ms: 10,
            dest_pod: mesh.pods_of(FLOWS[flow].dest)[0],
            caller,
            flow: flow as u8,
            template: 0,
            outcome: Outcome::Ok,
            side: Side::Inbound,
            forged_xfcc: false,
            cut_permille: 0,
        }
    }

    #[test]
    fn lab_lines_look_like_the_labs_samples() {
        let mesh = Mesh::new(1);
        let plain = event(
            &mesh,
            2,
            Caller::Plain(LEGACY_SLEEP as u8),
            "2021-06-14T10:29:53.284Z",
        );
        let mut line = String::new();
        access_line(&mut line, &mesh, &plain, FormatKind::Lab);
        assert!(
            line.starts_with("[2021-06-14T10:29:53.284Z] \"GET / HTTP/1.1\" 200 - \"-\" 0 "),
            "{line}"
        );
        assert!(
            line.ends_with(
                " \"-\" mTLS_Origin: \"-\" mTLS_Destination: \"-\" cert: \"-\" audit_flag: \"true\""
            ),
            "{line}"
        );

        let web_api = mesh.pods_of(WEB_API)[0];
        let mtls = event(
            &mesh,
            WEB_API_TO_RECOMMENDATION,
            Caller::Pod(web_api),
            "2021-06-14T10:27:59.758Z",
        );
        line.clear();
        access_line(&mut line, &mesh, &mtls, FormatKind::LabV0);
        let tail = " mTLS_Origin: \"spiffe://cluster.local/ns/istioinaction/sa/web-api\" \
                    mTLS_Destination: \"spiffe://cluster.local/ns/istioinaction/sa/recommendation\" ";
        assert!(line.contains(tail), "{line}");
        assert!(
            line.contains(
                " cert: \"By=spiffe://cluster.local/ns/istioinaction/sa/recommendation;Hash="
            ),
            "{line}"
        );
        assert!(
            line.ends_with(";Subject=\"\";URI=spiffe://cluster.local/ns/istioinaction/sa/web-api\" audit_flag: \"-\""),
            "{line}"
        );
    }

    #[test]
    fn same_seed_same_bytes() {
        for format in [FormatKind::Lab, FormatKind::IstioJson] {
            assert_eq!(
                log(5, format, EnvelopeKind::Stern),
                log(5, format, EnvelopeKind::Stern)
            );
            assert_ne!(
                log(5, format, EnvelopeKind::Raw),
                log(6, format, EnvelopeKind::Raw)
            );
        }
    }

    #[test]
    fn envelopes_and_kubelet_order() {
        let mesh = Mesh::new(2);
        let text = log(2, FormatKind::Lab, EnvelopeKind::KubectlPrefix);
        let mut last = i64::MIN;
        for line in text.lines() {
            let rest = line.strip_prefix("[pod/").expect(line);
            let (pod, rest) = rest.split_once("/istio-proxy] ").expect(line);
            assert!(mesh.pods.iter().any(|p| p.name == pod), "{line}");
            let (time, _) = rest.split_once(' ').expect(line);
            let ms = parse_rfc3339(time).expect(line);
            assert!(ms >= last, "receive times go forward: {line}");
            last = ms;
        }
        let text = log(2, FormatKind::IstioJson, EnvelopeKind::Raw);
        let cut = text
            .lines()
            .filter(|l| l.starts_with('{') && serde_json::from_str::<serde_json::Value>(l).is_err())
            .count();
        assert_eq!(cut, 4, "exactly the --malformed lines are broken JSON");
    }
}
