//! Issue 9 item 3: `strictly stats` judges a workload from two Envoy /stats
//! dumps (real /stats layout, the lab's counters), through the binary: from
//! files, and per replica through the fake API server's pod proxy.

mod common;
mod support;

use common::{fixture, strictly};
use serde_json::Value;
use support::{FakeCluster, FakeContainer, FakePod};

fn stats(args: &[&str], stdin: Option<Vec<u8>>) -> (Option<i32>, Value, String) {
    let mut cmd = strictly();
    cmd.arg("stats").args(args).args(["-o", "json"]);
    if let Some(b) = stdin {
        cmd.write_stdin(b);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr)
}

fn path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

#[test]
fn issue_9_3_lab_plaintext_call_between_two_dumps_is_blocked() {
    let (code, r, err) = stats(
        &[
            "--destination",
            "istioinaction/web-api",
            &path("stats/lab-plaintext.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    let w = &r["workloads"][0];
    assert_eq!(w["workload"], "istioinaction/web-api");
    assert_eq!(w["verdict"], "blocked", "{r:#}");
    assert_eq!(w["plaintext_connections"], 1);
    assert_eq!(w["replicas"][0]["tls_not_found"], 2);
}

#[test]
fn issue_9_3_two_files_all_handshakes_are_ready_and_stdin_reads_the_same() {
    let (code, r, err) = stats(
        &[
            &path("stats/mtls-before.txt"),
            &path("stats/mtls-after.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r["workloads"][0]["verdict"], "ready", "{r:#}");
    assert_eq!(r["workloads"][0]["tls_handshakes"], 30);
    let both = [
        std::fs::read(fixture("stats/mtls-before.txt")).unwrap(),
        std::fs::read(fixture("stats/mtls-after.txt")).unwrap(),
    ]
    .concat();
    let (code, piped, _) = stats(&[], Some(both));
    assert_eq!(code, Some(0));
    assert_eq!(piped["workloads"][0]["verdict"], "ready");
    assert_eq!(piped["workloads"][0]["tls_handshakes"], 30);
    // Too few handshakes for --min-requests: insufficient.
    let (code, r, _) = stats(
        &[
            "--min-requests",
            "31",
            &path("stats/mtls-before.txt"),
            &path("stats/mtls-after.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert_eq!(r["workloads"][0]["verdict"], "insufficient");
}

#[test]
fn issue_9_3_stats_not_enabled_say_which_annotation_to_add() {
    let (code, r, _) = stats(&[&path("stats/not-enabled.txt")], None);
    assert_eq!(code, Some(1));
    assert_eq!(r["workloads"][0]["verdict"], "insufficient");
    let hint = r["hints"][0].as_str().unwrap();
    assert!(
        hint.contains(
            r#"sidecar.istio.io/statsInclusionPrefixes: "tls_inspector,listener.0.0.0.0_15006""#
        ),
        "{hint}"
    );
}

#[test]
fn issue_9_3_bad_input_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("access.log");
    std::fs::write(&bad, "[2026-11-20T10:00:00.000Z] \"GET / HTTP/1.1\" 200\n").unwrap();
    let (code, _, err) = stats(&[bad.to_str().unwrap()], None);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("strictly: error: "), "{err}");
    assert!(err.contains("access.log: line 1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // One dump only: the interval needs two.
    let one = std::fs::read(fixture("stats/mtls-before.txt")).unwrap();
    let (code, _, err) = stats(&[], Some(one));
    assert_eq!(code, Some(2));
    assert!(err.contains("1 /stats dumps"), "{err}");
}

fn web_api_replica(name: &str, ip: &str) -> FakePod {
    FakePod::new("istioinaction", name)
        .label("app", "web-api")
        .owner("ReplicaSet", "web-api-7d9f8c6b5")
        .pod_ip(ip)
        .container(FakeContainer::new("istio-proxy").started_at("2026-11-20T10:00:00Z"))
}

/// The two dumps of a fixture holding them back to back.
fn split_dumps(name: &str) -> (String, String) {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let at = text[1..].find(&format!("\n{first}\n")).unwrap() + 2;
    (text[..at].to_string(), text[at..].to_string())
}

#[test]
fn issue_9_3_stats_per_replica_through_the_pod_proxy() {
    let cluster = FakeCluster::empty();
    cluster.add_pod(web_api_replica("web-api-7d9f8c6b5-x2x4z", "10.44.1.23"));
    cluster.add_pod(web_api_replica("web-api-7d9f8c6b5-q9w8z", "10.44.1.24"));
    let before = std::fs::read_to_string(fixture("stats/mtls-before.txt")).unwrap();
    let after = std::fs::read_to_string(fixture("stats/mtls-after.txt")).unwrap();
    cluster.set_stats(
        "istioinaction",
        "web-api-7d9f8c6b5-x2x4z",
        &[&before, &after],
    );
    let (a, b) = split_dumps("stats/lab-plaintext.txt");
    cluster.set_stats("istioinaction", "web-api-7d9f8c6b5-q9w8z", &[&a, &b]);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let (code, r, err) = stats(
        &[
            "-n",
            "istioinaction",
            "deploy/web-api",
            "--interval",
            "200ms",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    let w = &r["workloads"][0];
    assert_eq!(w["workload"], "istioinaction/web-api", "{r:#}");
    assert_eq!(w["verdict"], "blocked", "{r:#}");
    assert_eq!(w["inbound_connections"], 31);
    assert_eq!(w["plaintext_connections"], 1);
    let replica = |name: &str| {
        w["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["replica"] == name)
            .unwrap_or_else(|| panic!("{name} in {r:#}"))
            .clone()
    };
    assert_eq!(replica("web-api-7d9f8c6b5-x2x4z")["verdict"], "ready");
    assert_eq!(replica("web-api-7d9f8c6b5-q9w8z")["verdict"], "blocked");
    assert_eq!(r["interval_seconds"], 0.2);
    // Both reads of each replica went through the pod proxy, nothing through exec.
    let proxied = cluster
        .requests()
        .iter()
        .filter(|q| q.path.ends_with(":15000/proxy/stats"))
        .count();
    assert_eq!(proxied, 4);
    assert!(!cluster.requests().iter().any(|q| q.path.contains("/exec")));
}

#[test]
fn issue_9_3_stats_pod_proxy_forbidden_is_one_line_naming_the_permission() {
    let cluster = FakeCluster::empty();
    cluster.add_pod(web_api_replica("web-api-7d9f8c6b5-x2x4z", "10.44.1.23"));
    cluster.set_stats("istioinaction", "web-api-7d9f8c6b5-x2x4z", &["a: 1\n"]);
    cluster.forbid("get", "pods/proxy", Some("istioinaction"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let (code, _, err) = stats(
        &[
            "-n",
            "istioinaction",
            "deploy/web-api",
            "--interval",
            "100ms",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("strictly: error: "), "{err}");
    assert!(err.contains("pods/proxy"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
