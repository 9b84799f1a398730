//! Issue 10 items 3 and 4: ambient mode read from the cluster. A generated
//! ambient mesh behind the fake API server (tests/support): three nodes, a
//! ztunnel per node in istio-system, ambient and sidecar workloads in one
//! namespace, an out-of-mesh plaintext caller, another namespace's traffic in
//! the same ztunnel logs, and a ztunnel replaced inside the window.

mod support;

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;
use support::FakeCluster;
use support::fake_apiserver::{FakeContainer, FakePod, Scenario};

const NOW: &str = "2026-11-20T12:00:00Z";

/// One inbound (or outbound) ztunnel line, as 1.23+ writes it, behind kubelet's timestamp.
fn zt(
    at: &str,
    src: &str,
    identity: Option<&str>,
    pod: &str,
    ns: &str,
    ip: &str,
    inbound: bool,
) -> String {
    let mut l = format!("{at}Z {at}Z\tinfo\taccess\tconnection complete\tsrc.addr={src}:41234");
    if let Some(id) = identity {
        l.push_str(&format!(
            " src.identity=\"{id}\" dst.addr={ip}:15008 dst.hbone_addr={ip}:8080"
        ));
    } else {
        l.push_str(&format!(" dst.addr={ip}:8080"));
    }
    l.push_str(&format!(" dst.workload=\"{pod}\" dst.namespace=\"{ns}\""));
    if identity.is_some() {
        let sa = pod.split('-').next().unwrap();
        l.push_str(&format!(
            " dst.identity=\"spiffe://cluster.local/ns/{ns}/sa/{sa}\""
        ));
    }
    let dir = if inbound { "inbound" } else { "outbound" };
    l.push_str(&format!(
        " direction=\"{dir}\" bytes_sent=175 bytes_recv=80 duration=\"2ms\""
    ));
    l
}

const SLEEP: &str = "spiffe://cluster.local/ns/shop/sa/sleep";

fn ambient_pod(ns: &str, name: &str, ip: &str, node: &str) -> FakePod {
    let app = name.split('-').next().unwrap();
    let mut pod = FakePod::new(ns, name)
        .label("app", app)
        .pod_ip(ip)
        .node_name(node)
        .container(FakeContainer::new(app).started_at("2026-11-19T00:00:00Z"));
    // istio-cni's mark on every pod it captured (the namespace carries the label).
    pod.annotations
        .insert("ambient.istio.io/redirection".into(), "enabled".into());
    pod
}

fn ztunnel(node: usize, started: &str, lines: &[String]) -> FakePod {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    FakePod::new("istio-system", &format!("ztunnel-node{node}"))
        .label("app", "ztunnel")
        .owner("DaemonSet", "ztunnel")
        .pod_ip(&format!("10.128.0.{node}"))
        .node_name(&format!("node-{node}"))
        .container(
            FakeContainer::new("istio-proxy")
                .started_at(started)
                .log_lines(&lines),
        )
}

/// The generated mesh; `node2_started` is when node-2's ztunnel started.
fn mesh(node2_started: &str) -> FakeCluster {
    let (mut n1, mut n2, mut n3) = (Vec::new(), Vec::new(), Vec::new());
    for m in 0..60 {
        let at = format!("2026-11-20T11:{m:02}:00.000000");
        // cart-1 on node-1, cart-2 on node-2; each connection logged inbound at
        // the destination's node and outbound at the caller's (node-3).
        let (pod, ip, log) = if m % 2 == 0 {
            ("cart-5d8f7c6b9-x2x4z", "10.44.1.20", &mut n1)
        } else {
            ("cart-5d8f7c6b9-q9w8z", "10.44.2.20", &mut n2)
        };
        if m < 30 && m % 2 == 1 && node2_started > "2026-11-20T11:00:00Z" {
            // node-2's ztunnel of then is gone: its lines are not in the log.
        } else {
            log.push(zt(&at, "10.44.3.12", Some(SLEEP), pod, "shop", ip, true));
        }
        n3.push(zt(&at, "10.44.3.12", Some(SLEEP), pod, "shop", ip, false));
        n3.push(zt(
            &at,
            "10.44.3.12",
            Some(SLEEP),
            "orders-6c8f5b9d7-x2k4p",
            "shop",
            "10.44.3.30",
            true,
        ));
        // Another namespace's ambient traffic in the same ztunnel log.
        n1.push(zt(
            &at,
            "10.44.3.12",
            Some("spiffe://cluster.local/ns/payments/sa/api"),
            "ledger-7c9d8b6f5-b2c4d",
            "payments",
            "10.44.1.40",
            true,
        ));
    }
    // An out-of-mesh caller reaches orders in plaintext.
    n3.push(zt(
        "2026-11-20T11:45:30.000000",
        "10.9.0.5",
        None,
        "orders-6c8f5b9d7-x2k4p",
        "shop",
        "10.44.3.30",
        true,
    ));
    let early = "2026-11-20T09:00:00.000000";
    let hello = |lines: &mut Vec<String>, at: &str| {
        lines.insert(0, format!("{at}Z {at}Z\tinfo\tztunnel\tproxy started"));
    };
    hello(&mut n1, early);
    hello(&mut n3, early);
    hello(&mut n2, &node2_started.replace('Z', ".000000"));
    let sidecar_log: Vec<String> = (0..30)
        .map(|m| {
            format!(
                "2026-11-20T11:{m:02}:10.000000Z [2026-11-20T11:{m:02}:10.000Z] \"GET /api HTTP/1.1\" 200 - via_upstream - \"-\" 0 11 3 2 \"-\" \"curl/8.0\" \"3c5e0d3a\" \"web-api:8080\" \"10.44.1.9:8080\" inbound|8080|| 127.0.0.6:51234 10.44.1.9:8080 10.44.3.12:52344 outbound_.8080_._.web-api.shop.svc.cluster.local default"
            )
        })
        .chain(std::iter::once(format!("{early}Z {early}Z\tinfo\txdsproxy\tconnected")))
        .collect();
    let mut sidecar_log = sidecar_log;
    sidecar_log.rotate_right(1);
    let sidecar_lines: Vec<&str> = sidecar_log.iter().map(String::as_str).collect();
    let pods = vec![
        ambient_pod("shop", "cart-5d8f7c6b9-x2x4z", "10.44.1.20", "node-1")
            .owner("ReplicaSet", "cart-5d8f7c6b9"),
        ambient_pod("shop", "cart-5d8f7c6b9-q9w8z", "10.44.2.20", "node-2")
            .owner("ReplicaSet", "cart-5d8f7c6b9"),
        ambient_pod("shop", "orders-6c8f5b9d7-x2k4p", "10.44.3.30", "node-3")
            .owner("ReplicaSet", "orders-6c8f5b9d7"),
        // No connection at all yet: judged by its node's ztunnel all the same.
        ambient_pod("shop", "catalog-0", "10.44.2.50", "node-2").owner("StatefulSet", "catalog"),
        ambient_pod("payments", "ledger-7c9d8b6f5-b2c4d", "10.44.1.40", "node-1")
            .owner("ReplicaSet", "ledger-7c9d8b6f5"),
        FakePod::new("shop", "web-api-7d9f8c6b5-x2x4z")
            .label("app", "web-api")
            .owner("ReplicaSet", "web-api-7d9f8c6b5")
            .pod_ip("10.44.1.9")
            .node_name("node-1")
            .container(FakeContainer::new("web-api").started_at("2026-11-19T00:00:00Z"))
            .container(
                FakeContainer::new("istio-proxy")
                    .started_at("2026-11-19T00:00:00Z")
                    .log_lines(&sidecar_lines),
            ),
        FakePod::new("shop", "sleep-6c8f5b9d7-q2x4z")
            .label("app", "sleep")
            .pod_ip("10.44.3.12")
            .node_name("node-3")
            .container(FakeContainer::new("sleep").started_at("2026-11-19T00:00:00Z")),
        // Outside the mesh: no sidecar, not ambient.
        FakePod::new("default", "legacy-client")
            .pod_ip("10.9.0.5")
            .node_name("node-3")
            .container(FakeContainer::new("client").started_at("2026-11-19T00:00:00Z")),
        ztunnel(1, "2026-11-19T00:00:00Z", &n1),
        ztunnel(2, node2_started, &n2),
        ztunnel(3, "2026-11-19T00:00:00Z", &n3),
    ];
    FakeCluster::with_scenario(Scenario {
        now: Some(NOW.into()),
        pods,
    })
}

fn report(cluster: &FakeCluster, dir: &Path, extra: &[&str]) -> std::process::Output {
    let kubeconfig = cluster.kubeconfig(dir);
    Command::cargo_bin("strictly")
        .unwrap()
        .args([
            "report",
            "-o",
            "json",
            "--until",
            NOW,
            "--window",
            "1h",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(extra)
        .output()
        .unwrap()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\nstderr: {}",
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

#[test]
fn issue_10_3_an_ambient_mesh_gives_one_report_from_ztunnel_and_sidecar_logs() {
    let cluster = mesh("2026-11-19T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let out = report(&cluster, dir.path(), &["-n", "shop"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&out);
    let names: Vec<&str> = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    // payments/ledger's connections are in the same ztunnel logs: not this report's.
    assert_eq!(
        names,
        ["shop/orders", "shop/catalog", "shop/cart", "shop/web-api"],
        "{r:#}"
    );
    let web = destination(&r, "shop/web-api");
    assert_eq!(
        (web["dataplane"].as_str(), web["verdict"].as_str()),
        (Some("sidecar"), Some("ready"))
    );
    let cart = destination(&r, "shop/cart");
    assert_eq!(
        (cart["dataplane"].as_str(), cart["unit"].as_str()),
        (Some("ambient"), Some("connections"))
    );
    // 60 connections; the one logged at 11:00:00 after 2 ms began before the window.
    assert_eq!(
        (cart["verdict"].as_str(), cart["mtls"].as_u64()),
        (Some("ready"), Some(59)),
        "{cart:#}"
    );
    let orders = destination(&r, "shop/orders");
    assert_eq!(
        (orders["verdict"].as_str(), orders["plaintext"].as_u64()),
        (Some("blocked"), Some(1))
    );
    let caller = &orders["sources"][0];
    assert_eq!(
        (caller["peer"].as_str(), caller["peer_pod"].as_str()),
        (Some("10.9.0.5"), Some("default/legacy-client"))
    );
    assert_eq!(caller["peer_sidecar"], false);
    // No connection yet: not ready on no evidence, but judged.
    let catalog = destination(&r, "shop/catalog");
    assert_eq!(
        (catalog["verdict"].as_str(), catalog["requests"].as_u64()),
        (Some("insufficient"), Some(0))
    );
    assert_eq!(catalog["dataplane"], "ambient");
    // The ztunnels were read, each once, besides the sidecar.
    let logs: Vec<String> = cluster
        .requests()
        .iter()
        .filter(|q| q.is_log())
        .map(|q| q.path.clone())
        .collect();
    for node in 1..=3 {
        let path = format!("/api/v1/namespaces/istio-system/pods/ztunnel-node{node}/log");
        assert_eq!(logs.iter().filter(|p| **p == path).count(), 1, "{logs:?}");
    }
}

#[test]
fn issue_10_3_a_ztunnel_replaced_inside_the_window_leaves_its_nodes_workloads_insufficient() {
    let cluster = mesh("2026-11-20T11:30:00Z");
    let dir = tempfile::tempdir().unwrap();
    let r = json(&report(&cluster, dir.path(), &["-n", "shop"]));
    for name in ["shop/cart", "shop/catalog"] {
        let d = destination(&r, name);
        assert_eq!(d["verdict"], "insufficient", "{d:#}");
        let short: Vec<&str> = d["coverage"]["short"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stream"].as_str().unwrap())
            .collect();
        assert_eq!(
            short,
            ["istio-system/pod/ztunnel-node2/istio-proxy"],
            "{d:#}"
        );
        assert!(
            d["reason"].as_str().unwrap().contains("ztunnel-node2"),
            "{d:#}"
        );
    }
    // node-1 and node-3 are whole: orders still blocks, web-api still ready.
    assert_eq!(destination(&r, "shop/orders")["verdict"], "blocked");
    assert_eq!(destination(&r, "shop/web-api")["verdict"], "ready");
}

#[test]
fn issue_10_4_a_403_on_ztunnel_logs_names_the_istio_system_role() {
    for (verb, resource) in [("list", "pods"), ("get", "pods/log")] {
        let cluster = mesh("2026-11-19T00:00:00Z");
        cluster.forbid(verb, resource, Some("istio-system"));
        let dir = tempfile::tempdir().unwrap();
        let out = report(&cluster, dir.path(), &["-n", "shop"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb} {resource}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("strictly: error: forbidden")
                && stderr.contains("deploy/rbac-ztunnel.yaml"),
            "{verb} {resource}: {stderr}"
        );
    }
}

#[test]
fn issue_10_3_watch_on_an_ambient_only_namespace_says_it_reads_sidecars_only() {
    let cluster = mesh("2026-11-19T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let out = Command::cargo_bin("strictly")
        .unwrap()
        .args(["watch", "-n", "payments", "--kubeconfig"])
        .arg(&kubeconfig)
        .timeout(std::time::Duration::from_secs(5))
        .output()
        .unwrap();
    // watch waits for pods to appear (killed here): the warning says why nothing is read.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 pod is in ambient mode") && stderr.contains("strictly report"),
        "{stderr}"
    );
}
