//! Issue 4: `report` from the cluster, with the real kube client against the
//! fake API server (tests/support): the same verdicts as over the same lines
//! in a file, per-replica coverage, clear errors for RBAC and kubeconfig.

mod support;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use support::{FakeCluster, kube_fixture};

const UNTIL: &str = "2026-11-20T12:00:00Z";

fn strictly() -> Command {
    Command::cargo_bin("strictly").unwrap()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn destination<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r:#}"))
}

/// `strictly report -o json --until UNTIL --window WINDOW ARGS…` (files, or `--kubeconfig K`).
fn report_until(window: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    strictly()
        .args(["report", "-o", "json", "--until", UNTIL, "--window", window])
        .args(args)
        .output()
        .unwrap()
}

fn cluster_report(cluster: &FakeCluster, dir: &Path, extra: &[&str]) -> std::process::Output {
    let kubeconfig = cluster.kubeconfig(dir);
    let mut args: Vec<&std::ffi::OsStr> = vec!["--kubeconfig".as_ref(), kubeconfig.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    report_until("2h", &args)
}

/// The scenario's istio-proxy logs as `kubectl logs --prefix --timestamps` would print them.
fn as_prefixed_file(cluster: &FakeCluster, dir: &Path) -> std::path::PathBuf {
    let scenario: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(kube_fixture("istioinaction.yaml")).unwrap(),
    )
    .unwrap();
    let mut text = String::new();
    for pod in scenario["pods"].as_sequence_like() {
        for c in pod["containers"].as_array().into_iter().flatten() {
            if c["name"] != "istio-proxy" {
                continue;
            }
            for key in ["previous", "log"] {
                for line in c[key].as_str().unwrap_or_default().lines() {
                    text.push_str(&format!(
                        "[pod/{}/istio-proxy] {line}\n",
                        pod["name"].as_str().unwrap()
                    ));
                }
            }
        }
    }
    let _ = cluster;
    let path = dir.join("prefixed.log");
    std::fs::write(&path, text).unwrap();
    path
}

trait SequenceLike {
    fn as_sequence_like(&self) -> Vec<&Value>;
}

impl SequenceLike for Value {
    fn as_sequence_like(&self) -> Vec<&Value> {
        self.as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }
}

#[test]
fn cluster_report_reads_every_replica_and_agrees_with_the_same_lines_in_a_file() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let out = cluster_report(&cluster, dir.path(), &["-n", "istioinaction"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_cluster = json(&out);

    // Every replica's log was read with timestamps, and the restarted one's previous log too.
    let logs: Vec<_> = cluster
        .requests()
        .into_iter()
        .filter(|r| r.is_log())
        .collect();
    assert!(
        logs.iter().all(|r| r.param("timestamps") == Some("true")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|r| r.path.contains("catalog-0") && r.param("previous") == Some("true"))
    );
    assert!(
        logs.iter()
            .any(|r| r.path.contains("web-api-7d9f8c6b5-x2x4z"))
    );
    assert!(
        logs.iter()
            .any(|r| r.path.contains("web-api-7d9f8c6b5-q9w8z"))
    );
    assert!(
        !logs.iter().any(|r| r.path.contains("sleep")),
        "pods without istio-proxy are ignored"
    );

    let file = as_prefixed_file(&cluster, dir.path());
    let out = strictly()
        .args([
            "report",
            "-o",
            "json",
            "--until",
            UNTIL,
            "--window",
            "2h",
            "-n",
            "istioinaction",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let from_file = json(&out);
    for name in ["istioinaction/web-api", "istioinaction/catalog"] {
        let (c, f) = (
            destination(&from_cluster, name),
            destination(&from_file, name),
        );
        for key in ["requests", "mtls", "plaintext", "audited", "last_plaintext"] {
            assert_eq!(c[key], f[key], "{name}.{key}");
        }
    }
    let web = destination(&from_cluster, "istioinaction/web-api");
    assert_eq!(web["verdict"], "blocked");
    assert_eq!(
        destination(&from_file, "istioinaction/web-api")["verdict"],
        "blocked"
    );
    // Only the API knows catalog's container started inside the 2h window
    // (a file cannot tell a rotated log from a new replica): over 30m, where
    // every log reaches back, the two agree on every verdict.
    assert_eq!(
        destination(&from_cluster, "istioinaction/catalog")["verdict"],
        "ready"
    );
    let thirty = |extra: &[&std::ffi::OsStr]| {
        report_until(
            "30m",
            &[&["-n".as_ref(), "istioinaction".as_ref()], extra].concat(),
        )
    };
    let kubeconfig = cluster.kubeconfig(dir.path());
    let c = json(&thirty(&["--kubeconfig".as_ref(), kubeconfig.as_os_str()]));
    let f = json(&thirty(&[file.as_os_str()]));
    let verdicts = |r: &Value| -> Vec<(String, String)> {
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["destination"].to_string(), d["verdict"].to_string()))
            .collect()
    };
    assert_eq!(verdicts(&c), verdicts(&f));
    assert_eq!(c["input"]["requests"], f["input"]["requests"]);
}

#[test]
fn a_replica_whose_log_was_rotated_inside_the_window_is_named_in_coverage() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    // web-api-…-x2x4z's container started the day before; its log begins at 11:30.
    let out = cluster_report(
        &cluster,
        dir.path(),
        &["-n", "istioinaction", "deploy/web-api"],
    );
    let r = json(&out);
    let web = destination(&r, "istioinaction/web-api");
    assert_eq!(web["coverage"]["complete"], false, "{web:#}");
    let short: Vec<&str> = web["coverage"]["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(
        short,
        ["istioinaction/pod/web-api-7d9f8c6b5-x2x4z/istio-proxy"],
        "{web:#}"
    );
    // The replica that started inside the window logged from its start: complete.
    assert!(
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["destination"] != "istioinaction/catalog")
    );
}

#[test]
fn plaintext_peers_are_named_by_the_pod_that_holds_the_address() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    cluster.append_log(
        "istioinaction",
        "web-api-7d9f8c6b5-x2x4z",
        "istio-proxy",
        &[r#"2026-11-20T11:59:59.5Z [2026-11-20T11:59:59.400Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "10.44.0.7" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#],
    );
    let dir = tempfile::tempdir().unwrap();
    let r = json(&cluster_report(
        &cluster,
        dir.path(),
        &["-n", "istioinaction"],
    ));
    let web = destination(&r, "istioinaction/web-api");
    let peer = web["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["peer"] == "10.44.0.7")
        .unwrap_or_else(|| panic!("{web:#}"));
    assert_eq!(peer["peer_pod"], "default/sleep-6c8f5b9d7-q2x4z");
    assert_eq!(peer["peer_workload"], "default/sleep");
    assert_eq!(peer["peer_sidecar"], false);
}

#[test]
fn rbac_403_names_the_missing_permission() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    cluster.forbid("get", "pods/log", Some("istioinaction"));
    let dir = tempfile::tempdir().unwrap();
    let out = cluster_report(&cluster, dir.path(), &["-n", "istioinaction"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("pods/log") && err.contains("forbidden"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    cluster.allow_all();
    cluster.forbid("list", "pods", Some("istioinaction"));
    let out = cluster_report(&cluster, dir.path(), &["-n", "istioinaction"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("list") && err.contains("pods"), "{err}");
}

#[test]
fn a_bad_kubeconfig_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("kubeconfig");
    std::fs::write(&bad, "this: [is not a kubeconfig").unwrap();
    let out = strictly()
        .args(["report", "-n", "istioinaction", "--kubeconfig"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--kubeconfig") && err.contains(bad.to_str().unwrap()),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // A context that does not exist.
    let cluster = FakeCluster::empty();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let out = strictly()
        .args(["report", "-n", "x", "--context", "nope", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn no_matching_pods_is_an_error_not_a_pass() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let out = cluster_report(&cluster, dir.path(), &["-n", "default"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("istio-proxy"), "{err}");
}
