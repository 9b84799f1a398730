//! Issue 9 item 4: after a flip to STRICT, a sidecar refuses plaintext
//! callers (`NR filter_chain_not_found`, istio/istio#56084). `report` calls
//! such a destination `regressed` (exit 3) with the refused callers named,
//! and `watch` emits the change within one tick and exposes it on `/metrics`.

mod common;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{destination, fixture, strictly};
use serde_json::Value;
use support::{FakeCluster, FakeContainer, FakePod, wait_until};

fn report_json(args: &[&str], stdin: Option<Vec<u8>>) -> (Option<i32>, Value) {
    let mut cmd = strictly();
    cmd.args(["report", "-o", "json"]).args(args);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes);
    }
    let out = cmd.output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

#[test]
fn issue_9_4_refused_plaintext_after_the_flip_is_regressed_with_exit_3() {
    let log = fixture("regressed/prefix-timestamps.log");
    let (code, r) = report_json(&["-n", "shop", log.to_str().unwrap()], None);
    assert_eq!(code, Some(3), "{r:#}");
    let web = destination(&r, "shop/web-api");
    assert_eq!(web["verdict"], "regressed", "{web:#}");
    assert_eq!(web["rejected"], 2);
    assert_eq!(web["last_rejected"], "2026-11-20T09:10:00Z");
    assert_eq!(web["rejected_callers"][0]["peer"], "10.44.0.7");
    assert_eq!(web["rejected_callers"][0]["connections"], 2);
    let reason = web["reason"].as_str().unwrap();
    assert!(
        reason.contains("10.44.0.7") && reason.contains("STRICT"),
        "{reason}"
    );
    // Refused connections are no requests: web-api's plaintext stays 0.
    assert_eq!(web["plaintext"], 0);
    // Refused, then accepted plaintext again: blocked, the refusal in the reason.
    let catalog = destination(&r, "shop/catalog");
    assert_eq!(catalog["verdict"], "blocked", "{catalog:#}");
    assert_eq!(catalog["rejected"], 1);
    assert!(
        catalog["reason"]
            .as_str()
            .unwrap()
            .contains("refused in the window before"),
        "{catalog:#}"
    );
    // A refusal at an address that is not the pod's own is not placed on it.
    let orders = destination(&r, "shop/orders");
    assert_eq!(orders["verdict"], "ready", "{orders:#}");
    assert!(orders.get("rejected").is_none(), "{orders:#}");
    assert_eq!(r["input"]["rejected"], 3);
    assert_eq!(r["input"]["outbound"], 1, "the unplaced refusal");
    assert!(
        r["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("10.44.9.9")),
        "{:#}",
        r["hints"]
    );
}

#[test]
fn issue_9_4_regressed_is_the_same_for_any_line_order_and_without_metadata() {
    let text = std::fs::read_to_string(fixture("regressed/prefix-timestamps.log")).unwrap();
    let (_, forward) = report_json(&["-n", "shop"], Some(text.clone().into_bytes()));
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    let reversed = lines.join("\n") + "\n";
    let (_, backward) = report_json(&["-n", "shop", "--threads", "3"], Some(reversed.into()));
    assert_eq!(forward, backward);
    // Threads split the input: a refusal read by one thread and its pod's
    // inbound lines by another are still placed (a merged aggregate).
    for threads in ["1", "2", "4"] {
        for _ in 0..3 {
            let (_, r) = report_json(
                &["-n", "shop", "--threads", threads],
                Some(text.clone().into_bytes()),
            );
            assert_eq!(r, forward, "--threads {threads}");
        }
    }

    // The raw lines of web-api alone, no envelope: the refusing address is
    // the one its inbound lines name, and its SNI names the destination.
    let raw: String = text
        .lines()
        .filter(|l| l.starts_with("[pod/web-api-"))
        .filter_map(|l| l.splitn(3, ' ').nth(2))
        .filter(|l| l.starts_with('['))
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, r) = report_json(&[], Some(raw.into_bytes()));
    assert_eq!(code, Some(3), "{r:#}");
    let web = destination(&r, "shop/web-api");
    assert_eq!(web["verdict"], "regressed");
    assert_eq!(web["rejected_callers"][0]["peer"], "10.44.0.7");
}

/// The same NR line at an address no inbound request of the log used
/// cannot be placed: counted outbound as before, never `regressed`.
#[test]
fn issue_9_4_refusal_at_a_foreign_address_is_not_placed() {
    let text = std::fs::read_to_string(fixture("regressed/prefix-timestamps.log")).unwrap();
    let moved = text.replace("10.44.1.23:8080 10.44.0.7:", "10.44.7.7:8080 10.44.0.7:");
    let (code, r) = report_json(&["-n", "shop"], Some(moved.into_bytes()));
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(destination(&r, "shop/web-api")["verdict"], "ready");
    assert_eq!(r["input"]["outbound"], 3);
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// kubelet's timestamp and an Istio TEXT access line at `t`.
fn mtls_line(t: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{} [{}] "GET / HTTP/1.1" 200 - via_upstream - "-" 0 1131 8 8 "-" "curl/8.5.0" "791d2d45-ef0c-4076-8406-e79a01882a37" "web-api.shop:8080" "10.44.1.23:8080" inbound|8080|| 127.0.0.6:41423 10.44.1.23:8080 10.44.2.9:32787 outbound_.8080_._.web-api.shop.svc.cluster.local default"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

fn refused_line(t: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{} [{}] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.44.1.23:8080 10.44.0.7:49002 - -"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

#[test]
fn issue_9_4_watch_emits_ready_to_regressed_within_one_tick() {
    let now = chrono::Utc::now();
    let cluster = FakeCluster::empty();
    let history: Vec<String> = (0..12)
        .map(|i| mtls_line(now - chrono::Duration::minutes(58 - i * 4)))
        .collect();
    let history: Vec<&str> = history.iter().map(String::as_str).collect();
    // The sidecar started inside the window and logged from its start: complete coverage.
    let started = (now - chrono::Duration::seconds(58 * 60 + 20))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    cluster.add_pod(
        FakePod::new("shop", "web-api-7d9f8c6b5-x2x4z")
            .label("app", "web-api")
            .owner("ReplicaSet", "web-api-7d9f8c6b5")
            .pod_ip("10.44.1.23")
            .container(
                FakeContainer::new("istio-proxy")
                    .started_at(&started)
                    .log_lines(&history),
            ),
    );
    // The caller: a pod without a sidecar, named in the change's reason.
    cluster.add_pod(
        FakePod::new("shop", "legacy-batch-5c7d9-abcde")
            .label("app", "legacy-batch")
            .owner("ReplicaSet", "legacy-batch-5c7d9")
            .pod_ip("10.44.0.7")
            .container(FakeContainer::new("batch").started_at(&started)),
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let listen = free_port();
    let tick = Duration::from_millis(300);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("strictly"))
        .args([
            "watch",
            "-n",
            "shop",
            "--window",
            "1h",
            "--interval",
            "300ms",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--listen", &listen.to_string(), "--exit-after", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send((Instant::now(), v));
            }
        }
    });
    let next_change = |timeout: Duration| -> Value {
        let (_, v) = rx.recv_timeout(timeout).expect("a verdict change");
        v
    };
    let first = next_change(Duration::from_secs(10));
    assert_eq!(first["destination"], "shop/web-api", "{first}");
    assert_eq!(first["to"], "ready", "{first}");
    assert!(wait_until(Duration::from_secs(5), || cluster
        .open_follows("shop", "web-api-7d9f8c6b5-x2x4z")
        == 1));

    let refused_at = chrono::Utc::now();
    cluster.append_log(
        "shop",
        "web-api-7d9f8c6b5-x2x4z",
        "istio-proxy",
        &[&refused_line(refused_at)],
    );
    let appended = Instant::now();
    let (seen, change) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the regressed change");
    assert_eq!(change["from"], "ready", "{change}");
    assert_eq!(change["to"], "regressed", "{change}");
    let reason = change["reason"].as_str().unwrap();
    assert!(
        reason.contains("10.44.0.7 (shop/legacy-batch-5c7d9-abcde, no sidecar)"),
        "{reason}"
    );
    // Within one tick of the line reaching the follow (plus the follow's own delivery).
    let took = seen - appended;
    assert!(took <= tick * 2 + Duration::from_millis(700), "{took:?}");

    let metrics = http_get(listen, "/metrics");
    assert!(
        metrics.contains(
            r#"strictly_destination_verdict{destination="shop/web-api",verdict="regressed"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"strictly_window_rejected_connections{destination="shop/web-api",peer="10.44.0.7"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("strictly_rejected_connections_total 1"),
        "{metrics}"
    );
    let _ = child.kill();
    let _ = child.wait();
}
