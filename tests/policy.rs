//! Issue 9 items 1 and 6: `strictly policy` as a user runs it — on the sample
//! mesh's logs, on a saved report (`--from`), and on the fake cluster whose
//! pod labels become selectors. The YAML is parsed back as a multi-document
//! stream and every field checked against Istio's published CRD schema
//! (`fixtures/istio/crd-*.yaml`); `kubectl` is not installed here, so the
//! schema is the judge.

mod common;
mod schema;
mod support;

use std::collections::BTreeMap;

use common::{fixture, strictly};
use serde::Deserialize as _;
use serde_yaml_ng::Value;
use support::{FakeCluster, FakeContainer, FakePod};

const UNTIL: &str = "2026-11-20T12:00:00Z";

/// The YAML documents of a stream (comment-only and empty ones dropped).
fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}")))
        .filter(|d| !d.is_null())
        .collect()
}

fn run(args: &[&str]) -> (String, String, Option<i32>) {
    let out = strictly().args(args).output().unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code(),
    )
}

fn report_json(args: &[&str]) -> serde_json::Value {
    let out = strictly()
        .args(["report", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// `namespace/name` of each PeerAuthentication with a selector, and its matchLabels.
fn workload_policies(docs: &[Value]) -> BTreeMap<String, BTreeMap<String, String>> {
    docs.iter()
        .filter(|d| d["kind"] == "PeerAuthentication" && !d["spec"]["selector"].is_null())
        .map(|d| {
            let ns = d["metadata"]["namespace"].as_str().unwrap();
            let name = d["metadata"]["name"].as_str().unwrap();
            let labels = d["spec"]["selector"]["matchLabels"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
                .collect();
            (format!("{ns}/{name}"), labels)
        })
        .collect()
}

fn namespace_defaults(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .filter(|d| d["kind"] == "PeerAuthentication" && d["spec"]["selector"].is_null())
        .map(|d| {
            assert_eq!(d["metadata"]["name"], "default");
            d["metadata"]["namespace"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn issue_9_1_sample_mesh_policies_for_the_ready_workloads_only() {
    let log = fixture("sample/mesh.log");
    let log = log.to_str().unwrap();
    let report = report_json(&[log]);
    let (yaml, stderr, code) = run(&["policy", log]);
    assert_eq!(code, Some(1), "some workloads are not ready: {stderr}");
    let docs = documents(&yaml);
    schema::check_all(&docs);
    for d in &docs {
        assert_eq!(d["apiVersion"], "security.istio.io/v1");
        assert_eq!(d["spec"]["mtls"]["mode"], "STRICT");
        assert_eq!(
            d["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "strictly"
        );
    }
    let policies = workload_policies(&docs);
    for d in report["destinations"].as_array().unwrap() {
        let name = d["destination"].as_str().unwrap();
        let (ns, workload) = name.split_once('/').unwrap();
        let key = format!("{ns}/{workload}-strict");
        if d["verdict"] == "ready" {
            // No pod labels in a file: the `app` convention, and the comment says so.
            assert_eq!(
                policies.get(&key),
                Some(&BTreeMap::from([("app".into(), workload.into())])),
                "{yaml}"
            );
            assert!(
                yaml.contains(&format!("the `app: {workload}` convention")),
                "{yaml}"
            );
        } else {
            assert!(!policies.contains_key(&key), "{name} is {}", d["verdict"]);
            let comment = yaml
                .lines()
                .find(|l| l.starts_with(&format!("# {name}: ")))
                .unwrap_or_else(|| panic!("no comment for {name}:\n{yaml}"));
            assert!(comment.contains("no policy"), "{comment}");
            assert!(comment.contains(d["reason"].as_str().unwrap()), "{comment}");
        }
    }
    // The VM's proxy is named by its address among httpbin's plaintext callers.
    let httpbin = yaml
        .lines()
        .find(|l| l.starts_with("# default/httpbin: blocked"))
        .unwrap();
    assert!(httpbin.contains("10.128.0.42 (13 plaintext)"), "{httpbin}");
    // A blocked or insufficient workload in a namespace: no namespace-wide default.
    assert!(namespace_defaults(&docs).is_empty(), "{yaml}");
}

#[test]
fn issue_9_1_namespace_default_when_every_workload_seen_is_ready() {
    // The sample's logs of the two ready workloads only, as `kubectl logs --prefix` wrote them.
    let text = std::fs::read_to_string(fixture("sample/mesh.log")).unwrap();
    let only_ready: String = text
        .lines()
        .filter(|l| {
            l.starts_with("[pod/purchase-history-") || l.starts_with("[pod/recommendation-")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ready.log");
    std::fs::write(&path, only_ready).unwrap();
    let path = path.to_str().unwrap();
    let (yaml, stderr, code) = run(&["policy", "-n", "istioinaction", "--until", UNTIL, path]);
    assert_eq!(
        code,
        Some(0),
        "every workload got a policy: {stderr}\n{yaml}"
    );
    let docs = documents(&yaml);
    schema::check_all(&docs);
    assert_eq!(namespace_defaults(&docs), ["istioinaction"]);
    assert_eq!(workload_policies(&docs).len(), 2);
    assert!(
        yaml.contains("also covers workloads of istioinaction that had no traffic"),
        "{yaml}"
    );
}

#[test]
fn issue_9_1_from_a_saved_report_writes_what_the_logs_do() {
    let log = fixture("sample/mesh.log");
    let (direct, _, direct_code) = run(&["policy", log.to_str().unwrap()]);
    let saved = fixture("reports/sample-mesh.json");
    let (from, stderr, code) = run(&["policy", "--from", saved.to_str().unwrap()]);
    assert_eq!(code, direct_code, "{stderr}");
    assert_eq!(from, direct);
    // And from stdin.
    let out = strictly()
        .args(["policy", "--from", "-"])
        .pipe_stdin(&saved)
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), direct);
}

#[test]
fn issue_9_1_flags_that_would_do_nothing_are_refused() {
    let saved = fixture("reports/sample-mesh.json");
    let saved = saved.to_str().unwrap();
    let log = fixture("sample/mesh.log");
    let log = log.to_str().unwrap();
    for (args, names) in [
        (vec!["policy", "--from", saved, log], "FILE|WORKLOAD"),
        (
            vec!["policy", "--from", saved, "--window", "1h"],
            "--window",
        ),
        (vec!["policy", "-o", "json", log], "--output"),
        (
            vec!["policy", "--from", "/nonexistent/report.json"],
            "--from",
        ),
        (vec!["policy", "--from", log], "not a strictly JSON report"),
    ] {
        let (stdout, stderr, code) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("strictly: error: ") && stderr.contains(names),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn issue_9_1_port_exceptions_say_the_report_has_no_ports() {
    let log = fixture("sample/mesh.log");
    let (yaml, stderr, code) = run(&["policy", "--port-exceptions", log.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        documents(&yaml)
            .iter()
            .all(|d| d["spec"]["portLevelMtls"].is_null()),
        "{yaml}"
    );
    assert!(
        yaml.contains("--port-exceptions: the report does not say which port"),
        "{yaml}"
    );
    assert!(stderr.contains("--port-exceptions"), "{stderr}");
}

/// One lab-format mTLS line at `at` from `from` (a service account in `shop`) to `to`.
fn mtls(at: &str, from: &str, to: &str) -> String {
    let (src, dst) = (
        format!("spiffe://cluster.local/ns/shop/sa/{from}"),
        format!("spiffe://cluster.local/ns/shop/sa/{to}"),
    );
    format!(
        r#"{at}.000000001Z [{at}.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 4 3 "-" mTLS_Origin: "{src}" mTLS_Destination: "{dst}" cert: "By={dst};Hash=ab;Subject="";URI={src}" audit_flag: "-""#
    )
}

/// A running replica in `shop` whose istio-proxy received `n` mTLS requests from `web`.
fn replica(name: &str, workload: &str, ip: &str, labels: &[(&str, &str)], n: usize) -> FakePod {
    let lines: Vec<String> = std::iter::once(
        "2026-11-20T09:00:00.1Z 2026-11-20T09:00:00.1Z\tinfo\tFLAG: --concurrency=\"2\""
            .to_string(),
    )
    .chain((0..n).map(|i| mtls(&format!("2026-11-20T11:{:02}:00", 10 + i), "web", workload)))
    .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let replica_set = name.rsplit_once('-').unwrap().0;
    let mut pod = FakePod::new("shop", name)
        .owner("ReplicaSet", replica_set)
        .pod_ip(ip)
        .label("pod-template-hash", replica_set.rsplit('-').next().unwrap())
        .container(
            FakeContainer::new("istio-proxy")
                .started_at("2026-11-20T09:00:00Z")
                .log_lines(&lines),
        );
    for (k, v) in labels {
        pod = pod.label(k, v);
    }
    pod
}

#[test]
fn issue_9_1_pod_labels_from_the_cluster_become_selectors() {
    let cluster = FakeCluster::empty();
    cluster.set_now(UNTIL);
    let cart = [("app", "cart"), ("version", "v1")];
    cluster.add_pod(replica(
        "cart-5f7c9bd8f4-7wqkz",
        "cart",
        "10.44.1.2",
        &cart,
        6,
    ));
    cluster.add_pod(replica(
        "cart-5f7c9bd8f4-2x4zq",
        "cart",
        "10.44.1.3",
        &cart,
        6,
    ));
    // billing's only label also sits on invoices' pods: not a selector for billing alone.
    cluster.add_pod(replica(
        "billing-6c8f5b9d7-q2x4z",
        "billing",
        "10.44.1.4",
        &[("app", "shop-api")],
        12,
    ));
    cluster.add_pod(replica(
        "invoices-7d9f8c6b5-x2x4z",
        "invoices",
        "10.44.1.5",
        &[("app", "shop-api"), ("tier", "backend")],
        12,
    ));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let common = [
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-n",
        "shop",
        "--until",
        UNTIL,
        "--window",
        "2h",
    ];

    let report = report_json(&common);
    let cart_labels = &common::destination(&report, "shop/cart")["pod_labels"];
    assert_eq!(cart_labels["pods"], 2, "{report:#}");
    assert_eq!(
        cart_labels["labels"],
        serde_json::json!({"app": "cart", "version": "v1"})
    );
    assert_eq!(
        common::destination(&report, "shop/billing")["pod_labels"]["also_selects"],
        serde_json::json!(["shop/invoices"])
    );

    let mut args = vec!["policy"];
    args.extend(common);
    let (yaml, stderr, code) = run(&args);
    assert_eq!(
        code,
        Some(1),
        "billing has no safe selector: {stderr}\n{yaml}"
    );
    let docs = documents(&yaml);
    schema::check_all(&docs);
    let policies = workload_policies(&docs);
    assert_eq!(
        policies.get("shop/cart-strict"),
        Some(&BTreeMap::from([
            ("app".into(), "cart".into()),
            ("version".into(), "v1".into())
        ]))
    );
    assert_eq!(
        policies.get("shop/invoices-strict"),
        Some(&BTreeMap::from([
            ("app".into(), "shop-api".into()),
            ("tier".into(), "backend".into())
        ]))
    );
    assert!(!policies.contains_key("shop/billing-strict"), "{yaml}");
    assert!(
        yaml.contains("the labels all 2 of its pods carry (Kubernetes API)"),
        "{yaml}"
    );
    assert!(
        yaml.lines()
            .any(|l| l.starts_with("# shop/billing: ready, no policy")
                && l.contains("shop/invoices")),
        "{yaml}"
    );
    // Every workload seen in `shop` is ready: the namespace default too.
    assert_eq!(namespace_defaults(&docs), ["shop"]);
}

#[test]
fn issue_9_6_schema_check_catches_a_misspelled_field() {
    let docs = documents(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: y}\nspec:\n  mtls: {mdoe: STRICT}\n",
    );
    let err = schema::check(&docs[0]).unwrap_err();
    assert!(err.contains("spec.mtls.mdoe"), "{err}");
    let docs = documents(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: y}\nspec:\n  mtls: {mode: STRICTER}\n",
    );
    assert!(schema::check(&docs[0]).unwrap_err().contains("STRICTER"));
}

#[test]
fn issue_9_1_a_sidecar_without_traffic_keeps_the_namespace_default_off() {
    // Read from the cluster, a workload whose pods logged no request is seen, not ready:
    // a namespace-wide STRICT would flip it unjudged.
    let cluster = FakeCluster::empty();
    cluster.set_now(UNTIL);
    let cart = [("app", "cart")];
    cluster.add_pod(replica(
        "cart-5f7c9bd8f4-7wqkz",
        "cart",
        "10.44.1.2",
        &cart,
        12,
    ));
    cluster.add_pod(replica(
        "idle-6c8f5b9d7-q2x4z",
        "idle",
        "10.44.1.6",
        &[("app", "idle")],
        0,
    ));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let (yaml, stderr, code) = run(&[
        "policy",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "-n",
        "shop",
        "--until",
        UNTIL,
        "--window",
        "2h",
    ]);
    let docs = documents(&yaml);
    schema::check_all(&docs);
    assert!(
        workload_policies(&docs).contains_key("shop/cart-strict"),
        "{yaml}"
    );
    assert!(namespace_defaults(&docs).is_empty(), "{stderr}\n{yaml}");
    assert_eq!(code, Some(1), "idle has no policy: {yaml}");
    assert!(
        yaml.contains("# shop/idle: insufficient, no policy"),
        "{yaml}"
    );
}
