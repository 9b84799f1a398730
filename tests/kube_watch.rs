//! Issue 4: `watch` against the fake API server, through the faults a real
//! cluster throws at it — EOF and reconnect, a stalled follow, replicas added
//! and removed mid-watch, a container restart, an expired pod watch — with
//! every line counted exactly once; plus its live JSON lines, `/metrics`,
//! `/report` and the state file.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{FakeCluster, FakeContainer, FakePod, kube_fixture, wait_until};

const NS: &str = "istioinaction";
const X: &str = "web-api-7d9f8c6b5-x2x4z";
const Q: &str = "web-api-7d9f8c6b5-q9w8z";

/// Access lines per pod in the scenario (current and previous logs).
fn scenario_access_lines(pod_prefix: &str) -> u64 {
    let text = std::fs::read_to_string(kube_fixture("istioinaction.yaml")).unwrap();
    let scenario: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut n = 0;
    for pod in scenario["pods"].as_sequence().unwrap() {
        if !pod["name"].as_str().unwrap().starts_with(pod_prefix) {
            continue;
        }
        for c in pod["containers"].as_sequence().unwrap() {
            if c["name"].as_str() != Some("istio-proxy") {
                continue;
            }
            for key in ["log", "previous"] {
                n += c[key]
                    .as_str()
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("mTLS_Origin:"))
                    .count() as u64;
            }
        }
    }
    n
}

fn access_line(at: &str, plaintext: bool) -> String {
    let start = &at[..23];
    if plaintext {
        format!(
            r#"{at} [{start}Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "10.44.0.7" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#
        )
    } else {
        format!(
            r#"{at} [{start}Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "-" mTLS_Origin: "spiffe://cluster.local/ns/istioinaction/sa/sleep" mTLS_Destination: "spiffe://cluster.local/ns/istioinaction/sa/web-api" cert: "-" audit_flag: "false""#
        )
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

fn spawn_watch(kubeconfig: &std::path::Path, extra: &[&str]) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("strictly"))
        .args([
            "watch",
            "-n",
            NS,
            "--window",
            "30d",
            "--interval",
            "200ms",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn destination<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r:#}"))
}

/// Collects the watch's stdout lines: JSON verdict changes, then the final report.
fn finish(child: Child) -> (Option<i32>, Vec<Value>, String) {
    let out = child.wait_with_output().unwrap();
    let lines = BufReader::new(&out.stdout[..])
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every stdout line is JSON"))
        .collect();
    (
        out.status.code(),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn watch_counts_every_line_once_through_reconnects_churn_and_restarts() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let listen = free_port();
    let child = spawn_watch(
        &kubeconfig,
        &[
            "--stall-timeout",
            "1s",
            "--exit-after",
            "12s",
            "--listen",
            &listen.to_string(),
        ],
    );
    let long = Duration::from_secs(8);
    assert!(wait_until(long, || cluster.open_follows(NS, X) == 1
        && cluster.open_follows(NS, Q) == 1
        && cluster.open_follows(NS, "catalog-0") == 1));
    let mut added_web = 0;

    // Live lines, then EOF: the reconnect asks from the last line's second and skips what it saw.
    cluster.append_log(
        NS,
        X,
        "istio-proxy",
        &[
            &access_line("2026-11-20T12:00:01.100000000Z", false),
            &access_line("2026-11-20T12:00:01.200000000Z", true),
        ],
    );
    added_web += 2;
    std::thread::sleep(Duration::from_millis(400));
    cluster.end_follows(NS, X);
    assert!(wait_until(long, || cluster
        .requests()
        .iter()
        .filter(|r| r.is_log() && r.path.contains(X))
        .count()
        >= 2));
    assert!(wait_until(long, || cluster.open_follows(NS, X) == 1));
    let reconnect = cluster
        .requests()
        .into_iter()
        .rfind(|r| r.is_log() && r.path.contains(X))
        .unwrap();
    assert_eq!(
        reconnect.param("sinceTime"),
        Some("2026-11-20T12:00:01Z"),
        "{reconnect:?}"
    );
    // Same second as what was already counted: only the new one counts.
    cluster.append_log(
        NS,
        X,
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:01.300000000Z", false)],
    );
    added_web += 1;

    // A stalled follow is abandoned after --stall-timeout and what it missed is read on reconnect.
    cluster.stall_follows(NS, Q);
    cluster.append_log(
        NS,
        Q,
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:02.000000000Z", false)],
    );
    added_web += 1;
    assert!(wait_until(long, || cluster
        .requests()
        .iter()
        .filter(|r| r.is_log() && r.path.contains(Q))
        .count()
        >= 2));

    // A replica added mid-watch is followed from its first line.
    cluster.add_pod(
        FakePod::new(NS, "web-api-7d9f8c6b5-n7m2p")
            .label("app", "web-api")
            .label("pod-template-hash", "7d9f8c6b5")
            .owner("ReplicaSet", "web-api-7d9f8c6b5")
            .pod_ip("10.44.3.3")
            .container(
                FakeContainer::new("istio-proxy")
                    .started_at("2026-11-20T12:00:00Z")
                    .log_lines(&[&access_line("2026-11-20T12:00:03.000000000Z", false)]),
            ),
    );
    added_web += 1;
    assert!(wait_until(long, || cluster
        .open_follows(NS, "web-api-7d9f8c6b5-n7m2p")
        == 1));

    // A replica whose sidecar is still starting: its log requests get 400
    // ("waiting to start") and are retried until it runs.
    let w = "web-api-7d9f8c6b5-w8t4k";
    cluster.add_pod(
        FakePod::new(NS, w)
            .label("app", "web-api")
            .label("pod-template-hash", "7d9f8c6b5")
            .owner("ReplicaSet", "web-api-7d9f8c6b5")
            .pod_ip("10.44.3.4")
            .container(FakeContainer::new("istio-proxy").waiting("PodInitializing")),
    );
    assert!(wait_until(long, || cluster
        .requests()
        .iter()
        .any(|r| r.is_log() && r.path.contains(w))));
    cluster.restart_container(NS, w, "istio-proxy");
    cluster.append_log(
        NS,
        w,
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:03.500000000Z", false)],
    );
    added_web += 1;
    assert!(wait_until(long, || cluster.open_follows(NS, w) == 1));

    // Bytes that are not UTF-8 do not end a stream: the next line still counts.
    cluster.append_log_bytes(
        NS,
        X,
        "istio-proxy",
        "2026-11-20T12:00:05Z",
        b"\xff\xfe not utf-8 \x80",
    );
    cluster.append_log(
        NS,
        X,
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:06.000000000Z", false)],
    );
    added_web += 1;

    // The pod watch expires (410): the watcher re-lists, nothing is lost or doubled.
    cluster.expire_watches();

    // A container restart ends the follow; the new container's lines are read.
    cluster.restart_container(NS, "catalog-0", "istio-proxy");
    assert!(wait_until(long, || cluster.open_follows(NS, "catalog-0") == 1));
    cluster.append_log(
        NS,
        "catalog-0",
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:04.000000000Z", false)
            .replace("sa/web-api", "sa/catalog")],
    );

    // A replica removed mid-watch: its follow stops, its counted lines stay.
    cluster.delete_pod(NS, Q);
    assert!(wait_until(long, || cluster.open_follows(NS, Q) == 0));

    // The endpoint serves the report as of now and Prometheus metrics.
    assert!(wait_until(long, || http_get(listen, "/healthz").0 == 200));
    let (code, report) = http_get(listen, "/report");
    assert_eq!(code, 200);
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(report["destinations"].is_array());
    let (code, metrics) = http_get(listen, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("strictly_destination_verdict{"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strictly_stream_reconnects_total"),
        "{metrics}"
    );

    let (code, lines, stderr) = finish(child);
    assert_eq!(code, Some(1), "blocked: {stderr}");
    let final_report = lines.last().expect("a final report");
    let web = destination(final_report, "istioinaction/web-api");
    assert_eq!(
        web["requests"].as_u64().unwrap(),
        scenario_access_lines("web-api") + added_web,
        "{web:#}"
    );
    assert_eq!(web["verdict"], "blocked");
    let catalog = destination(final_report, "istioinaction/catalog");
    assert_eq!(
        catalog["requests"].as_u64().unwrap(),
        scenario_access_lines("catalog") + 1,
        "{catalog:#}"
    );
    // Off a terminal: one JSON line per verdict change before the final report.
    let changes = &lines[..lines.len() - 1];
    // The first tick may come before the first lines do: web-api's first
    // line has no `from`, and some change takes it to blocked.
    let web_changes: Vec<&Value> = changes
        .iter()
        .filter(|c| c["destination"] == "istioinaction/web-api")
        .collect();
    assert!(web_changes[0]["from"].is_null(), "{changes:#?}");
    assert!(
        web_changes.iter().any(|c| c["to"] == "blocked"),
        "{changes:#?}"
    );
    for pair in web_changes.windows(2) {
        assert_eq!(
            pair[1]["from"], pair[0]["to"],
            "changes chain: {changes:#?}"
        );
    }
    assert!(
        changes
            .iter()
            .all(|c| c["time"].is_string() && c["reason"].is_string())
    );
}

#[test]
fn state_file_resumes_without_counting_twice() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let state = dir.path().join("state.bin");
    let state_arg = state.to_str().unwrap();
    let first = spawn_watch(
        &kubeconfig,
        &["--exit-after", "3s", "--state", state_arg, "-o", "json"],
    );
    let (code, lines, stderr) = finish(first);
    assert_eq!(code, Some(1), "{stderr}");
    let before = destination(lines.last().unwrap(), "istioinaction/web-api")["requests"]
        .as_u64()
        .unwrap();
    assert_eq!(before, scenario_access_lines("web-api"));
    assert!(state.exists());

    // While strictly was down, one more line; the restarted watch reads only it.
    cluster.append_log(
        NS,
        X,
        "istio-proxy",
        &[&access_line("2026-11-20T12:00:09.000000000Z", true)],
    );
    let second = spawn_watch(
        &kubeconfig,
        &["--exit-after", "3s", "--state", state_arg, "-o", "json"],
    );
    let (code, lines, stderr) = finish(second);
    assert_eq!(code, Some(1), "{stderr}");
    let after = destination(lines.last().unwrap(), "istioinaction/web-api")["requests"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);

    // A corrupt state file is refused, not overwritten.
    std::fs::write(&state, b"garbage").unwrap();
    let third = spawn_watch(&kubeconfig, &["--exit-after", "1s", "--state", state_arg]);
    let (code, _, stderr) = finish(third);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--state") && stderr.contains("not a strictly state file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&state).unwrap(), b"garbage");
}

#[test]
fn watch_without_permission_says_which() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    cluster.forbid("list", "pods", Some(NS));
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = finish(spawn_watch(
        &cluster.kubeconfig(dir.path()),
        &["--exit-after", "1s"],
    ));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("forbidden") && stderr.contains("pods"),
        "{stderr}"
    );
}
