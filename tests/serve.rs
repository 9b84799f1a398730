//! The watch's HTTP endpoint over real HTTP/1.1 on 127.0.0.1: `/healthz`,
//! `/report` (spec §5) before and after the first tick, `/metrics` as
//! Prometheus text, 404/405, and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use strictly::serve::{self, Snapshots};
use strictly::verdict::{
    CoverageReport, DestinationReport, DurationReport, InputReport, Report, SourceReport,
    StreamShort, Verdict, WindowReport,
};
use strictly::watch::snapshot::{RequestTotal, Snapshot, StreamHealth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A running `serve` on an ephemeral port, with the ends the test drives.
struct Server {
    addr: SocketAddr,
    snapshots: watch::Sender<Option<Arc<Snapshot>>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (snapshots, rx): (_, Snapshots) = watch::channel(None);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve::serve(listener, rx, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        snapshots,
        stop,
        task,
    }
}

impl Server {
    fn publish(&self, snapshot: Snapshot) {
        self.snapshots.send_replace(Some(Arc::new(snapshot)));
    }

    async fn get(&self, path: &str) -> HttpResponse {
        request(self.addr, "GET", path).await
    }

    /// Triggers shutdown and waits for `serve` to return.
    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("serve ends after shutdown")
            .expect("serve does not panic")
            .expect("serve returns Ok");
    }
}

#[derive(Debug)]
struct HttpResponse {
    status: u16,
    /// Lowercased names.
    headers: BTreeMap<String, String>,
    body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or_else(|| panic!("no {name} header in {self:?}"), String::as_str)
    }
}

/// One request on a fresh connection (`Connection: close`), read to EOF.
async fn request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: strictly\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("the server answers");
    parse_response(&raw)
}

/// Parses an HTTP/1.1 response: status line, headers, then a body framed by
/// `Content-Length` or chunked, or read to EOF.
fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers: BTreeMap<String, String> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let body = if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut body = Vec::new();
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = std::str::from_utf8(&rest[..end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap(), 16).unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().unwrap();
        assert_eq!(rest.len(), len, "body length matches Content-Length");
        rest.to_vec()
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

fn source(
    source: &str,
    peer: Option<&str>,
    mtls: u64,
    plaintext: u64,
    audited: u64,
) -> SourceReport {
    SourceReport {
        source: source.to_string(),
        peer: peer.map(str::to_string),
        requests: mtls + plaintext,
        mtls,
        plaintext,
        audited,
        xfcc_forged: 0,
        first_seen: Some("2026-11-19T12:00:03.100Z".to_string()),
        last_seen: Some("2026-11-20T11:59:58.900Z".to_string()),
        duration_ms: Some(DurationReport {
            p50: 9,
            p99: 61,
            max: 140,
        }),
        peer_pod: None,
        peer_workload: None,
        peer_sidecar: None,
        caller: None,
        folded_sources: None,
        folded_estimated: None,
    }
}

fn destination(
    name: &str,
    verdict: Verdict,
    reason: &str,
    sources: Vec<SourceReport>,
) -> DestinationReport {
    let sum = |f: fn(&SourceReport) -> u64| sources.iter().map(f).sum::<u64>();
    let plaintext = sum(|s| s.plaintext);
    DestinationReport {
        destination: name.to_string(),
        verdict,
        reason: reason.to_string(),
        dataplane: "sidecar",
        unit: "requests",
        connection_outcomes: None,
        requests: sum(|s| s.requests),
        mtls: sum(|s| s.mtls),
        plaintext,
        audited: sum(|s| s.audited),
        xfcc_forged: 0,
        last_plaintext: (plaintext > 0).then(|| "2026-11-20T11:43:14.559Z".to_string()),
        plaintext_after_window: None,
        malformed: 0,
        coverage: CoverageReport {
            start: Some("2026-11-18T12:00:07Z".to_string()),
            complete: true,
            short: Vec::new(),
        },
        sources,
        hint: None,
        pod_labels: None,
    }
}

const SLEEP: &str = "spiffe://cluster.local/ns/istioinaction/sa/sleep";

/// One destination of each verdict, request totals and stream health.
fn snapshot() -> Snapshot {
    let web_api = destination(
        "istioinaction/web-api",
        Verdict::Blocked,
        "31 plaintext requests in the window, last at 2026-11-20T11:43:14.559Z",
        vec![
            SourceReport {
                peer_pod: Some("default/sleep-6c8f5b9d7-q2x4z".to_string()),
                peer_workload: Some("default/sleep".to_string()),
                peer_sidecar: Some(false),
                ..source("plaintext", Some("10.44.0.7"), 0, 31, 0)
            },
            source(SLEEP, None, 4508, 0, 2622),
        ],
    );
    let catalog = destination(
        "istioinaction/catalog",
        Verdict::Ready,
        "120 mTLS requests in the window, no plaintext",
        vec![source(SLEEP, None, 120, 0, 0)],
    );
    let mut billing = destination(
        "billing/ledger",
        Verdict::Insufficient,
        "only 3 mTLS requests in the window (--min-requests 10)",
        vec![source("mtls", None, 3, 0, 0)],
    );
    billing.coverage = CoverageReport {
        start: Some("2026-11-20T06:00:00Z".to_string()),
        complete: false,
        short: vec![StreamShort {
            stream: "billing/ledger-7d9f-abcde".to_string(),
            start: Some("2026-11-20T06:00:00Z".to_string()),
            end: Some("2026-11-20T12:00:00Z".to_string()),
            covered_seconds: 21_600,
            error: None,
            hole: None,
        }],
    };
    let report = Report {
        window: WindowReport {
            start: "2026-11-19T12:00:00Z".to_string(),
            end: "2026-11-20T12:00:00Z".to_string(),
            seconds: 86_400,
        },
        min_requests: 10,
        input: InputReport {
            lines: 5_000,
            requests: 4_700,
            outbound: 120,
            skipped: 170,
            malformed: 10,
            duplicates: 0,
            other_containers: 0,
            failed_connections: 0,
            outside_window: 38,
            malformed_examples: vec!["pod/web-api-1:7: GET / garbage".to_string()],
        },
        destinations: vec![web_api, billing, catalog],
        hints: Vec::new(),
    };
    Snapshot {
        report,
        taken_at_ms: 1_795_694_400_250,
        totals: vec![
            RequestTotal {
                destination: "istioinaction/web-api".to_string(),
                source: SLEEP.to_string(),
                peer: None,
                mtls: 9_000,
                plaintext: 0,
            },
            RequestTotal {
                destination: "istioinaction/web-api".to_string(),
                source: "plaintext".to_string(),
                peer: Some("10.44.0.7".to_string()),
                mtls: 0,
                plaintext: 45,
            },
            // Label values that need escaping still come out parseable.
            RequestTotal {
                destination: "istioinaction/catalog".to_string(),
                source: "spiffe://odd/\"quoted\"\\path".to_string(),
                peer: None,
                mtls: 7,
                plaintext: 1,
            },
        ],
        health: StreamHealth {
            pods: 6,
            streams_open: 5,
            reconnects: 4,
            errors: 2,
            duplicates_skipped: 17,
            streams_reading_history: 3,
            state_save_failures: 1,
        },
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = start().await;
    let res = server.get("/healthz").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "ok");
    server.shut_down().await;
}

#[tokio::test]
async fn report_is_503_until_the_first_tick_then_the_section_5_json() {
    let server = start().await;

    let res = server.get("/report").await;
    assert_eq!(res.status, 503);
    assert!(res.header("content-type").starts_with("application/json"));
    assert_eq!(res.body.trim_end().lines().count(), 1, "{}", res.body);
    let error: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(
        error,
        serde_json::json!({"error": "no report yet: the first tick has not run"})
    );

    server.publish(snapshot());
    let res = server.get("/report").await;
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").starts_with("application/json"));
    let json: Value = serde_json::from_str(&res.body).unwrap();

    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&json),
        ["destinations", "hints", "input", "min_requests", "window"]
    );
    assert_eq!(
        json["window"],
        serde_json::json!({"start": "2026-11-19T12:00:00Z", "end": "2026-11-20T12:00:00Z", "seconds": 86400})
    );
    assert_eq!(json["min_requests"], 10);
    assert_eq!(
        json["input"],
        serde_json::json!({
            "lines": 5000, "requests": 4700, "outbound": 120, "skipped": 170,
            "malformed": 10, "duplicates": 0, "outside_window": 38,
            "malformed_examples": ["pod/web-api-1:7: GET / garbage"],
        })
    );

    let destinations = json["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 3);
    let web_api = &destinations[0];
    for key in [
        "destination",
        "verdict",
        "reason",
        "requests",
        "mtls",
        "plaintext",
        "audited",
        "last_plaintext",
        "coverage",
        "sources",
    ] {
        assert!(web_api.get(key).is_some(), "destinations[].{key} missing");
    }
    assert_eq!(web_api["destination"], "istioinaction/web-api");
    assert_eq!(web_api["verdict"], "blocked");
    assert_eq!(
        web_api["reason"],
        "31 plaintext requests in the window, last at 2026-11-20T11:43:14.559Z"
    );
    assert_eq!(web_api["requests"], 4539);
    assert_eq!(web_api["mtls"], 4508);
    assert_eq!(web_api["plaintext"], 31);
    assert_eq!(web_api["audited"], 2622);
    assert_eq!(web_api["last_plaintext"], "2026-11-20T11:43:14.559Z");
    assert_eq!(web_api["coverage"]["start"], "2026-11-18T12:00:07Z");
    assert_eq!(web_api["coverage"]["complete"], true);
    assert!(web_api.get("hint").is_none(), "hint is left out when None");

    let plaintext_row = &web_api["sources"][0];
    assert_eq!(plaintext_row["source"], "plaintext");
    assert_eq!(plaintext_row["peer"], "10.44.0.7");
    assert_eq!(plaintext_row["requests"], 31);
    assert_eq!(plaintext_row["plaintext"], 31);
    assert_eq!(plaintext_row["peer_pod"], "default/sleep-6c8f5b9d7-q2x4z");
    assert_eq!(plaintext_row["peer_workload"], "default/sleep");
    assert_eq!(plaintext_row["peer_sidecar"], false);
    let sleep_row = &web_api["sources"][1];
    assert_eq!(sleep_row["source"], SLEEP);
    assert_eq!(sleep_row["peer"], Value::Null);
    assert_eq!(sleep_row["requests"], 4508);
    assert_eq!(sleep_row["audited"], 2622);
    assert_eq!(sleep_row["xfcc_forged"], 0);
    assert_eq!(sleep_row["first_seen"], "2026-11-19T12:00:03.100Z");
    assert_eq!(sleep_row["last_seen"], "2026-11-20T11:59:58.900Z");
    assert_eq!(
        sleep_row["duration_ms"],
        serde_json::json!({"p50": 9, "p99": 61, "max": 140})
    );

    let billing = &destinations[1];
    assert_eq!(billing["verdict"], "insufficient");
    assert_eq!(billing["last_plaintext"], Value::Null);
    assert_eq!(billing["coverage"]["complete"], false);
    assert_eq!(
        billing["coverage"]["short"][0],
        serde_json::json!({"stream": "billing/ledger-7d9f-abcde", "start": "2026-11-20T06:00:00Z", "end": "2026-11-20T12:00:00Z", "covered_seconds": 21600})
    );
    assert_eq!(destinations[2]["verdict"], "ready");

    // The body is the report itself, as `report --output json` writes it.
    let mut expected = Vec::new();
    strictly::render::json::render(&snapshot().report, &mut expected).unwrap();
    assert_eq!(res.body.as_bytes(), expected);

    // A later tick replaces the report.
    let mut next = snapshot();
    next.report.min_requests = 99;
    server.publish(next);
    let json: Value = serde_json::from_str(&server.get("/report").await.body).unwrap();
    assert_eq!(json["min_requests"], 99);

    server.shut_down().await;
}

/// One sample line of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The exposition parsed strictly: families declared by `# HELP` and
/// `# TYPE` (name → type), and every other line as `name{labels} value`.
struct Exposition {
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut types = BTreeMap::new();
        let mut helps = BTreeMap::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let (kind, rest) = comment.split_once(' ').unwrap();
                let (name, value) = rest.split_once(' ').unwrap();
                assert!(is_metric_name(name), "bad name in {line:?}");
                match kind {
                    "HELP" => helps.insert(name.to_string(), value.to_string()),
                    "TYPE" => {
                        assert!(
                            ["counter", "gauge", "histogram", "summary", "untyped"]
                                .contains(&value),
                            "{line:?}"
                        );
                        types.insert(name.to_string(), value.to_string())
                    }
                    _ => panic!("unknown comment {line:?}"),
                };
                continue;
            }
            assert!(!line.starts_with('#'), "{line:?}");
            samples.push(parse_sample(line));
        }
        for sample in &samples {
            assert!(
                types.contains_key(&sample.name),
                "sample of an undeclared family: {sample:?}"
            );
        }
        Exposition {
            types,
            helps,
            samples,
        }
    }

    /// The samples of `name` whose labels include every pair of `labels`.
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        let exact: Vec<_> = found
            .iter()
            .filter(|s| s.labels.len() == labels.len())
            .collect();
        assert_eq!(exact.len(), 1, "{name}{labels:?}: {found:?}");
        exact[0].value
    }

    /// Asserts `name` is declared with `kind` and a HELP text.
    fn assert_family(&self, name: &str, kind: &str) {
        assert_eq!(
            self.types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE {name}"
        );
        assert!(
            self.helps.get(name).is_some_and(|h| !h.is_empty()),
            "# HELP {name}"
        );
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{k="v",...} value` with the format's escapes (`\\`, `\"`, `\n`).
fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("{line:?}"));
    let name = &line[..name_end];
    assert!(is_metric_name(name), "bad name in {line:?}");
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = inner.find("=\"").unwrap_or_else(|| panic!("{line:?}"));
            let key = &inner[..eq];
            assert!(is_metric_name(key), "bad label name in {line:?}");
            let mut value = String::new();
            let mut chars = inner[eq + 2..].char_indices();
            let close = loop {
                match chars.next() {
                    Some((i, '"')) => break eq + 2 + i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated label value in {line:?}"),
                }
            };
            assert!(
                labels.insert(key.to_string(), value).is_none(),
                "duplicate label in {line:?}"
            );
            inner = &inner[close + 1..];
            inner = inner.strip_prefix(',').unwrap_or(inner);
        }
    }
    let value_text = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{line:?}"));
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        text => text
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    Sample {
        name: name.to_string(),
        labels: labels.into_iter().collect(),
        value,
    }
}

#[tokio::test]
async fn metrics_expose_every_family_with_its_labels_and_values() {
    let server = start().await;
    server.publish(snapshot());
    let res = server.get("/metrics").await;
    server.shut_down().await;

    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(res.body, serve::render_metrics(&snapshot()));
    let m = Exposition::parse(&res.body);

    m.assert_family("strictly_requests_total", "counter");
    let web_api = "istioinaction/web-api";
    let requests = |source: &str, peer: &str, transport: &str| {
        m.value(
            "strictly_requests_total",
            &[
                ("destination", web_api),
                ("source", source),
                ("peer", peer),
                ("transport", transport),
            ],
        )
    };
    assert_eq!(requests(SLEEP, "", "mtls"), 9_000.0);
    assert_eq!(requests(SLEEP, "", "plaintext"), 0.0);
    assert_eq!(requests("plaintext", "10.44.0.7", "plaintext"), 45.0);
    assert_eq!(requests("plaintext", "10.44.0.7", "mtls"), 0.0);
    let odd = [
        ("destination", "istioinaction/catalog"),
        ("source", "spiffe://odd/\"quoted\"\\path"),
        ("peer", ""),
        ("transport", "plaintext"),
    ];
    assert_eq!(m.value("strictly_requests_total", &odd), 1.0);
    assert_eq!(m.find("strictly_requests_total", &[]).len(), 6);

    m.assert_family("strictly_window_requests", "gauge");
    for (dest, mtls, plaintext) in [
        (web_api, 4508.0, 31.0),
        ("istioinaction/catalog", 120.0, 0.0),
        ("billing/ledger", 3.0, 0.0),
    ] {
        let window = |transport| {
            m.value(
                "strictly_window_requests",
                &[("destination", dest), ("transport", transport)],
            )
        };
        assert_eq!(window("mtls"), mtls, "{dest}");
        assert_eq!(window("plaintext"), plaintext, "{dest}");
    }

    m.assert_family("strictly_destination_verdict", "gauge");
    for (dest, current) in [
        (web_api, "blocked"),
        ("istioinaction/catalog", "ready"),
        ("billing/ledger", "insufficient"),
    ] {
        for verdict in ["ready", "blocked", "insufficient", "pending"] {
            let value = m.value(
                "strictly_destination_verdict",
                &[("destination", dest), ("verdict", verdict)],
            );
            let expected = if verdict == current { 1.0 } else { 0.0 };
            assert_eq!(value, expected, "{dest} {verdict}");
        }
    }
    let blocked: Vec<_> = m
        .find("strictly_destination_verdict", &[("verdict", "blocked")])
        .into_iter()
        .filter(|s| s.value == 1.0)
        .map(|s| s.labels["destination"].as_str())
        .collect();
    assert_eq!(blocked, [web_api]);

    for (name, kind, value) in [
        ("strictly_pods", "gauge", 6.0),
        ("strictly_streams_open", "gauge", 5.0),
        ("strictly_stream_reconnects_total", "counter", 4.0),
        ("strictly_stream_errors_total", "counter", 2.0),
        ("strictly_duplicate_lines_skipped_total", "counter", 17.0),
        ("strictly_streams_reading_history", "gauge", 3.0),
        ("strictly_state_save_failures_total", "counter", 1.0),
        ("strictly_lines_total", "counter", 5_000.0),
        ("strictly_malformed_lines_total", "counter", 10.0),
        ("strictly_skipped_lines_total", "counter", 170.0),
        ("strictly_outbound_lines_total", "counter", 120.0),
        (
            "strictly_snapshot_timestamp_seconds",
            "gauge",
            1_795_694_400.25,
        ),
    ] {
        m.assert_family(name, kind);
        assert_eq!(m.value(name, &[]), value, "{name}");
    }
}

#[tokio::test]
async fn metrics_before_the_first_tick_name_the_families_without_samples() {
    let server = start().await;
    let res = server.get("/metrics").await;
    server.shut_down().await;

    assert_eq!(res.status, 200);
    assert!(res.header("content-type").starts_with("text/plain"));
    let m = Exposition::parse(&res.body);
    assert!(m.samples.is_empty(), "{:?}", m.samples);
    m.assert_family("strictly_requests_total", "counter");
    m.assert_family("strictly_window_requests", "gauge");
    m.assert_family("strictly_destination_verdict", "gauge");
    assert!(!m.types.contains_key("strictly_snapshot_timestamp_seconds"));
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let server = start().await;
    assert_eq!(server.get("/nope").await.status, 404);
    assert_eq!(server.get("/").await.status, 404);
    for path in ["/healthz", "/report", "/metrics"] {
        assert_eq!(
            request(server.addr, "POST", path).await.status,
            405,
            "{path}"
        );
        assert_eq!(
            request(server.addr, "DELETE", path).await.status,
            405,
            "{path}"
        );
    }
    server.shut_down().await;
}

#[tokio::test]
async fn graceful_shutdown_ends_serve_with_an_idle_keep_alive_connection_open() {
    let server = start().await;
    // A scraper that keeps its connection open between scrapes.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: strictly\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut read = Vec::new();
    while !read.ends_with(b"ok") {
        let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
        read.extend_from_slice(&buf[..n]);
    }
    assert!(read.starts_with(b"HTTP/1.1 200"));

    let addr = server.addr;
    server.shut_down().await;

    // The idle connection was closed and nothing listens any more.
    let n = tokio::time::timeout(TIMEOUT, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the idle connection is closed");
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn shutdown_waits_at_most_the_grace_for_a_client_stuck_mid_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_snapshots, rx) = watch::channel(None);
    let (stop, stopped) = oneshot::channel::<()>();
    let grace = Duration::from_millis(200);
    let task = tokio::spawn(serve::serve_with_grace(
        listener,
        rx,
        async {
            let _ = stopped.await;
        },
        grace,
    ));
    // Half a request line, then silence: graceful shutdown alone would wait forever.
    let mut stuck = TcpStream::connect(addr).await.unwrap();
    stuck.write_all(b"GET /heal").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;

    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("serve ends after the grace")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took >= grace && took < grace * 10, "{took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
