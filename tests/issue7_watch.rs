//! Issue 7, watch and Kubernetes items: pod naming (12), RBAC during watch
//! (19), the state file (20, 28), pending until history is read (21),
//! `--since`/`--backfill` (22), `-o table` off a terminal (23), Kubernetes
//! errors in plain words (24) and `--listen` (25), each through the binary
//! against the fake API server.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{FakeCluster, FakeContainer, FakePod, kube_fixture, wait_until};

const NS: &str = "istioinaction";
const X: &str = "web-api-7d9f8c6b5-x2x4z";

fn strictly() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("strictly"))
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

fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn watch(kubeconfig: &Path, extra: &[&str]) -> Child {
    strictly()
        .args(["watch", "-n", NS, "--interval", "200ms", "--kubeconfig"])
        .arg(kubeconfig)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(stdout: &str) -> Vec<Value> {
    BufReader::new(stdout.as_bytes())
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("every stdout line is JSON"))
        .collect()
}

fn destination<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r:#}"))
}

/// The one error line of a failed run: exit 2, one line, `strictly: error:`.
fn one_error_line(out: &Output) -> String {
    let (code, _, err) = text(out);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("strictly: error: "), "{err}");
    err
}

#[test]
fn issue_7_12_a_replicaset_pod_whose_suffix_is_all_digits_is_named_by_its_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("prefixed.log");
    let mut body = String::new();
    for (i, pod) in ["web-api-tf2zqw4bjl-58287", "web-api-tf2zqw4bjl-x2x4z"]
        .iter()
        .enumerate()
    {
        for s in 0..12 {
            let at = format!("2026-11-20T11:{:02}:{s:02}.000000000Z", 10 + i);
            let line = access_line(&at, i == 0 && s == 0);
            body.push_str(&format!("[pod/{pod}/istio-proxy] {line}\n"));
        }
    }
    std::fs::write(&log, body).unwrap();
    let out = strictly()
        .args([
            "report",
            "-n",
            NS,
            "-o",
            "json",
            "--until",
            "2026-11-20T12:00:00Z",
        ])
        .arg(&log)
        .output()
        .unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(1), "{err}");
    let r: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["istioinaction/web-api"], "{r:#}");
    let web = destination(&r, "istioinaction/web-api");
    assert_eq!(web["verdict"], "blocked");
    assert_eq!(web["requests"], 24);
}

#[test]
fn issue_7_12_owner_references_name_the_workload_from_the_cluster() {
    let cluster = FakeCluster::empty();
    cluster.set_now("2026-11-20T12:00:00Z");
    let lines: Vec<String> = (0..12)
        .map(|s| access_line(&format!("2026-11-20T11:50:{s:02}.000000000Z"), false))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    cluster.add_pod(
        FakePod::new(NS, "web-api-tf2zqw4bjl-58287")
            .label("app", "web-api")
            .label("pod-template-hash", "tf2zqw4bjl")
            .owner("ReplicaSet", "web-api-tf2zqw4bjl")
            .pod_ip("10.44.3.9")
            .container(
                FakeContainer::new("istio-proxy")
                    .started_at("2026-11-20T11:00:00Z")
                    .log_lines(&lines),
            ),
    );
    let dir = tempfile::tempdir().unwrap();
    let out = strictly()
        .args(["report", "-n", NS, "-o", "json", "--kubeconfig"])
        .arg(cluster.kubeconfig(dir.path()))
        .output()
        .unwrap();
    let (_, stdout, err) = text(&out);
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{err}"));
    assert_eq!(r["destinations"][0]["destination"], "istioinaction/web-api");
}

#[test]
fn issue_7_19_a_403_on_pods_log_during_watch_ends_it_with_one_line() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    cluster.forbid("get", "pods/log", Some(NS));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = watch(&cluster.kubeconfig(dir.path()), &["--exit-after", "30s"])
        .wait_with_output()
        .unwrap();
    let err = one_error_line(&out);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not retried until --exit-after"
    );
    assert!(
        err.contains("forbidden") && err.contains("pods/log") && err.contains("get"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no report after a fatal error");
}

#[test]
fn issue_7_19_a_403_on_watching_pods_ends_the_watch_with_one_line() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    cluster.forbid("watch", "pods", Some(NS));
    let dir = tempfile::tempdir().unwrap();
    let out = watch(&cluster.kubeconfig(dir.path()), &["--exit-after", "30s"])
        .wait_with_output()
        .unwrap();
    let err = one_error_line(&out);
    assert!(
        err.contains("forbidden") && err.contains("watch") && err.contains("pods"),
        "{err}"
    );
}

#[test]
fn issue_7_20_state_is_checked_at_startup() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    // A directory that does not exist: refused before any watching.
    let missing = dir.path().join("no-such-dir").join("state");
    let out = watch(
        &kubeconfig,
        &["--exit-after", "5s", "--state", missing.to_str().unwrap()],
    )
    .wait_with_output()
    .unwrap();
    let err = one_error_line(&out);
    assert!(
        err.contains("--state") && err.contains("does not exist"),
        "{err}"
    );
    // A directory where a file was meant.
    let out = watch(
        &kubeconfig,
        &[
            "--exit-after",
            "5s",
            "--state",
            dir.path().to_str().unwrap(),
        ],
    )
    .wait_with_output()
    .unwrap();
    let err = one_error_line(&out);
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn issue_7_20_a_failed_save_is_reported_and_the_final_report_still_printed() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let state_dir = dir.path().join("state-dir");
    std::fs::create_dir(&state_dir).unwrap();
    let state = state_dir.join("state");
    let child = watch(
        &kubeconfig,
        &[
            "--window",
            "30d",
            "--exit-after",
            "3s",
            "--state",
            state.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    // The directory goes away under the running watch: its save at exit fails.
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_dir_all(&state_dir).unwrap();
    let out = child.wait_with_output().unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(1), "the report's exit code: {err}");
    assert!(
        err.contains("warning") && err.contains("--state") && err.contains("cannot save"),
        "{err}"
    );
    let lines = json_lines(&stdout);
    let last = lines.last().expect("the final report");
    assert_eq!(
        destination(last, "istioinaction/web-api")["verdict"],
        "blocked"
    );
}

#[test]
fn issue_7_21_destinations_are_pending_until_their_history_is_read() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    // x2x4z holds web-api's only plaintext; its log answers 500 three times
    // (about 3.5 s of backoff). Without x2x4z, web-api looks ready.
    cluster.fail_next_n(&format!("pods/{X}/log"), 500, 3);
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let child = watch(
        &cluster.kubeconfig(dir.path()),
        &[
            "--window",
            "30d",
            "--min-requests",
            "3",
            "--exit-after",
            "7s",
            "--listen",
            &listen.to_string(),
        ],
    );
    // While x2x4z's history is unread: web-api pending, catalog judged.
    let mut seen = None;
    assert!(wait_until(Duration::from_secs(3), || {
        seen = http_get(listen, "/report")
            .filter(|(code, _)| *code == 200)
            .and_then(|(_, b)| serde_json::from_str::<Value>(&b).ok());
        seen.as_ref().is_some_and(|r| {
            r["destinations"].as_array().is_some_and(|d| {
                d.iter().any(|d| {
                    d["destination"] == "istioinaction/catalog" && d["verdict"] != "pending"
                })
            })
        })
    }));
    let during = seen.unwrap();
    let web = destination(&during, "istioinaction/web-api");
    assert_eq!(web["verdict"], "pending", "{web:#}");
    assert!(
        web["reason"].as_str().unwrap().contains("reading history"),
        "{web:#}"
    );
    assert_ne!(
        destination(&during, "istioinaction/catalog")["verdict"],
        "pending"
    );
    let (_, metrics) = http_get(listen, "/metrics").unwrap();
    assert!(
        metrics.contains(
            "strictly_destination_verdict{destination=\"istioinaction/web-api\",verdict=\"pending\"} 1"
        ),
        "{metrics}"
    );

    let out = child.wait_with_output().unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(1), "{err}");
    let lines = json_lines(&stdout);
    let (last, changes) = lines.split_last().unwrap();
    assert_eq!(
        destination(last, "istioinaction/web-api")["verdict"],
        "blocked"
    );
    // No verdict event before the backlog is read: web-api's first change
    // is straight to blocked, and nothing is ever "pending" in the changes.
    let web: Vec<&Value> = changes
        .iter()
        .filter(|c| c["destination"] == "istioinaction/web-api")
        .collect();
    assert_eq!(web.len(), 1, "{changes:#?}");
    assert!(
        web[0]["from"].is_null() && web[0]["to"] == "blocked",
        "{web:#?}"
    );
    assert!(
        changes
            .iter()
            .all(|c| c["to"] != "pending" && c["from"] != "pending"),
        "{changes:#?}"
    );
}

#[test]
fn issue_7_22_since_is_the_window_and_backfill_says_how_far_streams_begin() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let first_since_seconds = |cluster: &FakeCluster| {
        cluster
            .requests()
            .into_iter()
            .find(|r| r.is_log() && r.path.contains(X) && r.param("follow").is_some())
            .and_then(|r| r.param("sinceSeconds").map(str::to_string))
    };

    // --since judges the span (as report does); streams read it plus the margin.
    let out = watch(
        &kubeconfig,
        &["--since", "2h", "--exit-after", "2s", "-o", "json"],
    )
    .wait_with_output()
    .unwrap();
    let (_, stdout, err) = text(&out);
    let lines = json_lines(&stdout);
    let last = lines.last().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(last["window"]["seconds"], 7200, "{last:#}");
    assert_eq!(first_since_seconds(&cluster).as_deref(), Some("10800"));

    // --backfill says how far back streams begin.
    cluster.clear_requests();
    let out = watch(
        &kubeconfig,
        &["--window", "1h", "--backfill", "1d", "--exit-after", "2s"],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).2);
    assert_eq!(first_since_seconds(&cluster).as_deref(), Some("86400"));

    // Reading less than is judged would blame the logs for what the flags cut off.
    let out = watch(
        &kubeconfig,
        &["--window", "24h", "--backfill", "1h", "--exit-after", "2s"],
    )
    .wait_with_output()
    .unwrap();
    let err = one_error_line(&out);
    assert!(err.contains("--backfill"), "{err}");
    // And --since with --window is a conflict, as in report.
    let out = watch(
        &kubeconfig,
        &["--window", "1h", "--since", "2h", "--exit-after", "2s"],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn issue_7_23_table_off_a_terminal_is_printed_without_cursor_codes() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let out = watch(
        &cluster.kubeconfig(dir.path()),
        &["--window", "30d", "-o", "table", "--exit-after", "2s"],
    )
    .wait_with_output()
    .unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(1), "{err}");
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(
        !stdout.lines().any(|l| l.starts_with('{')),
        "no JSON lines mixed into a table: {stdout}"
    );
    assert!(
        stdout.contains("istioinaction/web-api") && stdout.contains("blocked"),
        "{stdout}"
    );
    let help = strictly().args(["watch", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("verdict-change JSON lines"), "{help}");
}

#[test]
fn issue_7_24_kubernetes_errors_are_plain_words() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let kubeconfig_text = std::fs::read_to_string(&kubeconfig).unwrap();
    let no_debug = |err: &str| {
        for word in [
            "ServiceError",
            "ErrorResponse",
            "Status {",
            "ApiError",
            "\\\"",
        ] {
            assert!(!err.contains(word), "{word} in {err}");
        }
    };
    for command in ["report", "watch"] {
        let run = |args: &[&str]| {
            strictly()
                .arg(command)
                .args(args)
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(if command == "watch" {
                    &["--exit-after", "3s"][..]
                } else {
                    &[][..]
                })
                .output()
                .unwrap()
        };
        // A server that refuses: its address and why.
        let err = one_error_line(&run(&["-n", NS, "--context", "other"]));
        let closed = kubeconfig_text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server: "))
            .find(|s| !s.contains(&cluster.url()))
            .unwrap()
            .to_string();
        assert!(
            err.contains(&format!("cannot reach the cluster at {closed}"))
                && err.contains("connection refused"),
            "{err}"
        );
        no_debug(&err);
        // A context that does not exist: the ones that do.
        let err = one_error_line(&run(&["-n", NS, "--context", "nope"]));
        assert!(
            err.contains("--context nope") && err.contains("fake, other"),
            "{err}"
        );
        no_debug(&err);
    }
    // Nothing selected is said as such, naming the selection.
    let report = |args: &[&str]| {
        strictly()
            .arg("report")
            .args(args)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .output()
            .unwrap()
    };
    let err = one_error_line(&report(&["-n", "empty"]));
    assert!(err.contains("no pods selected (namespace empty)"), "{err}");
    let err = one_error_line(&report(&["-n", NS, "-l", "app=nothing"]));
    assert!(
        err.contains(&format!(
            "no pods selected (namespace {NS}, selector app=nothing)"
        )),
        "{err}"
    );
    // Pods there, but none with the sidecar: that is another problem.
    let err = one_error_line(&report(&["-n", "default"]));
    assert!(
        err.contains("1 pod selected (namespace default), none with a container named istio-proxy"),
        "{err}"
    );
    let err = one_error_line(&report(&["-n", NS, "deploy/nothing"]));
    assert!(err.contains("no pods of deploy/nothing"), "{err}");
}

#[test]
fn issue_7_25_listen_takes_a_port_alone_or_a_host_name_and_says_address_in_use_once() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    for form in [":{port}", "localhost:{port}"] {
        let port = free_port().port();
        let listen = form.replace("{port}", &port.to_string());
        let child = watch(&kubeconfig, &["--exit-after", "4s", "--listen", &listen]);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let up = wait_until(Duration::from_secs(4), || {
            http_get(addr, "/healthz").is_some_and(|(c, _)| c == 200)
        });
        let out = child.wait_with_output().unwrap();
        assert!(up, "--listen {listen}: {}", text(&out).2);
    }
    // Taken: said once, exit 2.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = watch(&kubeconfig, &["--exit-after", "4s", "--listen", &addr])
        .wait_with_output()
        .unwrap();
    let err = one_error_line(&out);
    assert_eq!(err.matches("address in use").count(), 1, "{err}");
    assert!(err.contains(&format!("--listen {addr}")), "{err}");
}

#[test]
fn issue_7_28_watch_help_is_about_watch_and_the_state_file_is_not_json() {
    let help = strictly().args(["watch", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for absent in ["For files", "--max-log-requests", "kubectl logs --prefix"] {
        assert!(!help.contains(absent), "{absent} in watch --help:\n{help}");
    }
    assert!(
        !help
            .lines()
            .any(|l| l.contains("--state") && l.contains(".json")),
        "{help}"
    );
    for present in ["--backfill", "--since", "--state"] {
        assert!(help.contains(present), "{present} missing:\n{help}");
    }
    let report_help = strictly().args(["report", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&report_help.stdout).contains("--max-log-requests"));
}

#[test]
fn issue_7_28_a_corrupt_state_file_is_refused_in_strictlys_words() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut bytes = b"STRICTLY-STATE\n".to_vec();
    bytes.extend_from_slice(&strictly::watch::state::VERSION.to_le_bytes());
    bytes.extend_from_slice(&[0xff; 9]);
    std::fs::write(&state, &bytes).unwrap();
    let out = watch(
        &cluster.kubeconfig(dir.path()),
        &["--exit-after", "2s", "--state", state.to_str().unwrap()],
    )
    .wait_with_output()
    .unwrap();
    let err = one_error_line(&out);
    assert!(
        err.contains("--state") && err.contains("corrupt state file"),
        "{err}"
    );
    // postcard's words describe its decoder, not the file.
    for word in ["Hit the end", "Deserialize", "Found a"] {
        assert!(!err.contains(word), "{err}");
    }
    assert_eq!(std::fs::read(&state).unwrap(), bytes, "left as it was");
}
