//! Issue 10: ambient mode from ztunnel's connection logs, through the binary
//! on files: the real lines, what they mean (only inbound, identity = mTLS,
//! connections as the unit, policy rejections), and a mixed sidecar +
//! ambient stream giving one report whatever the threads and line order.

mod common;

use common::{destination, fixture, strictly};
use serde_json::Value;

/// Runs `report -o json` on `log` piped in (so reports of different logs
/// name the same input); the exit code and the report.
fn report(log: &str, args: &[&str]) -> (i32, Value) {
    let out = strictly()
        .args(["report", "-o", "json"])
        .args(args)
        .write_stdin(log.to_string())
        .output()
        .unwrap();
    let r = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), r)
}

/// One ztunnel access line as 1.23+ writes it (src/proxy/metrics.rs field order).
struct Conn<'a> {
    time: &'a str,
    src: &'a str,
    identity: Option<&'a str>,
    pod: &'a str,
    dst_ns: &'a str,
    dst_ip: &'a str,
    inbound: bool,
    error: Option<&'a str>,
}

impl Conn<'_> {
    fn text(&self) -> String {
        let level = if self.error.is_some() {
            "error"
        } else {
            "info"
        };
        let mut l = format!(
            "{}\t{level}\taccess\tconnection complete\tsrc.addr={}:41234",
            self.time, self.src
        );
        if let Some(id) = self.identity {
            let ns = id.split("/ns/").nth(1).unwrap().split('/').next().unwrap();
            l.push_str(&format!(" src.workload=\"caller-5d8f7c6b9-x2k4p\" src.namespace=\"{ns}\" src.identity=\"{id}\""));
        }
        let service = self.pod.split('-').next().unwrap();
        let port = if self.identity.is_some() { 15008 } else { 8080 };
        l.push_str(&format!(" dst.addr={}:{port}", self.dst_ip));
        if self.identity.is_some() {
            l.push_str(&format!(" dst.hbone_addr={}:8080", self.dst_ip));
        }
        l.push_str(&format!(
            " dst.service=\"{service}.{}.svc.cluster.local\" dst.workload=\"{}\" dst.namespace=\"{}\"",
            self.dst_ns, self.pod, self.dst_ns
        ));
        if self.identity.is_some() {
            l.push_str(&format!(
                " dst.identity=\"spiffe://cluster.local/ns/{}/sa/{service}\"",
                self.dst_ns
            ));
        }
        let direction = if self.inbound { "inbound" } else { "outbound" };
        l.push_str(&format!(
            " direction=\"{direction}\" bytes_sent=175 bytes_recv=80 duration=\"3ms\""
        ));
        if let Some(e) = self.error {
            l.push_str(&format!(" error=\"{e}\""));
        }
        l
    }

    /// The same connection as ztunnel 1.22 writes it: names unquoted.
    fn text_1_22(&self) -> String {
        let mut l = self.text();
        for key in [
            "src.workload",
            "src.namespace",
            "dst.service",
            "dst.workload",
            "dst.namespace",
        ] {
            let start = format!("{key}=\"");
            if let Some(at) = l.find(&start) {
                let end = at + start.len() + l[at + start.len()..].find('"').unwrap();
                l.replace_range(end..end + 1, "");
                l.replace_range(at + key.len() + 1..at + key.len() + 2, "");
            }
        }
        l
    }

    /// The same connection with `LOG_FORMAT=json`.
    fn json(&self) -> String {
        let text = self.text();
        let mut fields = text.split('\t');
        let (time, level) = (fields.next().unwrap(), fields.next().unwrap());
        let mut obj = serde_json::Map::new();
        obj.insert("level".into(), level.into());
        obj.insert("time".into(), time.into());
        obj.insert("scope".into(), "access".into());
        obj.insert("message".into(), "connection complete".into());
        let pairs = fields.nth(2).unwrap();
        // Values here hold no spaces except the error, which comes last.
        let (pairs, error) = match pairs.find(" error=") {
            Some(at) => (&pairs[..at], Some(&pairs[at + 8..pairs.len() - 1])),
            None => (pairs, None),
        };
        for pair in pairs.split(' ') {
            let (k, v) = pair.split_once('=').unwrap();
            let v = v.trim_matches('"');
            let value: Value = v.parse::<u64>().map_or(v.into(), Value::from);
            obj.insert(k.into(), value);
        }
        if let Some(e) = error {
            obj.insert("error".into(), e.into());
        }
        Value::Object(obj).to_string()
    }
}

const SLEEP: &str = "spiffe://cluster.local/ns/shop/sa/sleep";

fn conn<'a>(time: &'a str, identity: Option<&'a str>, pod: &'a str, inbound: bool) -> Conn<'a> {
    Conn {
        time,
        src: if identity.is_some() {
            "10.44.1.12"
        } else {
            "10.9.0.5"
        },
        identity,
        pod,
        dst_ns: "shop",
        dst_ip: if pod.starts_with("cart") {
            "10.44.2.20"
        } else {
            "10.44.3.30"
        },
        inbound,
        error: None,
    }
}

#[test]
fn issue_10_1_istio_docs_lines_are_read_as_ztunnel_connections() {
    for args in [&[][..], &["--log-format", "ztunnel"][..]] {
        let out = strictly()
            .args(["report", "-o", "json", "--min-requests", "1"])
            .arg(fixture("ztunnel/istio-docs-troubleshoot.log"))
            .args(args)
            .output()
            .unwrap();
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["input"]["requests"], 1, "{r}");
        assert_eq!(
            r["input"]["outbound"], 1,
            "the source ztunnel's outbound line is not counted twice"
        );
        assert_eq!(r["input"]["malformed"], 0);
        assert_eq!(r["destinations"].as_array().unwrap().len(), 1, "{r}");
        // dst.namespace says "productpage" (a service's name, pre-1.22); dst.identity says default.
        let d = destination(&r, "default/productpage-v1");
        assert_eq!(d["dataplane"], "ambient");
        assert_eq!(d["unit"], "connections");
        assert_eq!(
            (d["mtls"].as_u64(), d["plaintext"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(
            d["sources"][0]["source"],
            "spiffe://cluster.local/ns/default/sa/sleep"
        );
    }
}

#[test]
fn issue_10_1_text_1_22_and_json_lines_give_the_same_report() {
    let conns = [
        conn(
            "2026-11-20T11:10:00.000000Z",
            Some(SLEEP),
            "cart-5d8f7c6b9-x2k4p",
            true,
        ),
        conn(
            "2026-11-20T11:20:00.000000Z",
            None,
            "orders-6c8f5b9d7-q2x4z",
            true,
        ),
        conn(
            "2026-11-20T11:30:00.000000Z",
            Some(SLEEP),
            "orders-6c8f5b9d7-q2x4z",
            true,
        ),
        conn(
            "2026-11-20T11:40:00.000000Z",
            Some(SLEEP),
            "cart-5d8f7c6b9-x2k4p",
            false,
        ),
    ];
    let write =
        |f: &dyn Fn(&Conn) -> String| -> String { conns.iter().map(|c| f(c) + "\n").collect() };
    let args = ["--until", "2026-11-20T12:00:00Z", "--min-requests", "1"];
    let (code, text) = report(&write(&|c| c.text()), &args);
    assert_eq!(code, 1);
    assert_eq!(text["input"]["requests"], 3);
    assert_eq!(destination(&text, "shop/orders")["verdict"], "blocked");
    for other in [write(&|c| c.text_1_22()), write(&|c| c.json())] {
        let (_, r) = report(&other, &args);
        assert_eq!(r["input"]["malformed"], 0, "{other}");
        assert_eq!(r["destinations"], text["destinations"], "{other}");
    }
}

#[test]
fn issue_10_2_after_strict_a_rejected_plaintext_caller_blocks_and_is_shown() {
    let (code, r) = report(
        &std::fs::read_to_string(fixture("ztunnel/cases/after-strict.log")).unwrap(),
        &["--min-requests", "1"],
    );
    assert_eq!(code, 1);
    let d = destination(&r, "default/productpage-v1");
    assert_eq!(d["verdict"], "blocked", "{d}");
    assert_eq!(
        (d["mtls"].as_u64(), d["plaintext"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        d["connection_outcomes"],
        serde_json::json!({"errors": 1, "rejected_plaintext": 1, "denied_mtls": 1})
    );
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("1 of them rejected by a policy"),
        "{d}"
    );
    assert_eq!(d["sources"][0]["peer"], "10.244.2.7");
    // The early deny names no workload: counted apart, and said.
    assert_eq!(r["input"]["failed_connections"], 1);
    assert_eq!(r["input"]["requests"], 3);
    assert!(
        r["hints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h.as_str().unwrap().contains("connection failed")),
        "{r}"
    );
}

#[test]
fn issue_10_2_a_plaintext_only_replica_takes_the_namespace_its_siblings_identity_names() {
    // Before 1.22 dst.namespace carried the service's name; only mTLS lines log dst.identity.
    let mut a = conn(
        "2026-11-20T11:10:00.000000Z",
        None,
        "productpage-v1-87d54dd59-x2x4z",
        true,
    );
    a.dst_ns = "productpage";
    let mut log = a.text() + "\n";
    for m in 10..22 {
        let t = format!("2026-11-20T11:{m}:00.000000Z");
        let mut b = conn(&t, Some(SLEEP), "productpage-v1-87d54dd59-q9w8z", true);
        b.dst_ns = "productpage";
        let line = b.text().replace(
            "dst.identity=\"spiffe://cluster.local/ns/productpage/",
            "dst.identity=\"spiffe://cluster.local/ns/default/",
        );
        log.push_str(&line);
        log.push('\n');
    }
    let (_, r) = report(&log, &["--until", "2026-11-20T12:00:00Z"]);
    assert_eq!(r["destinations"].as_array().unwrap().len(), 1, "{r}");
    let d = destination(&r, "default/productpage-v1");
    assert_eq!(d["verdict"], "blocked");
    assert_eq!(
        (d["mtls"].as_u64(), d["plaintext"].as_u64()),
        (Some(12), Some(1))
    );
}

/// A `kubectl logs --prefix --timestamps` line.
fn prefixed(pod: &str, time: &str, payload: &str) -> String {
    format!("[pod/{pod}/istio-proxy] {time} {payload}\n")
}

/// Istio's default access-log line of a sidecar (inbound; SNI `-` when plaintext).
fn sidecar(time: &str, mtls: bool, remote: &str) -> String {
    let sni = if mtls {
        "outbound_.8080_._.web-api.shop.svc.cluster.local"
    } else {
        "-"
    };
    format!(
        "[{time}] \"GET /api HTTP/1.1\" 200 - via_upstream - \"-\" 0 11 3 2 \"-\" \"curl/8.0\" \"3c5e0d3a-9b1e-4d7a\" \"web-api:8080\" \"10.44.0.9:8080\" inbound|8080|| 127.0.0.6:51234 10.44.0.9:8080 {remote}:52344 {sni} default"
    )
}

/// A mixed namespace read as one stream: a sidecar workload (web-api) and
/// two ambient ones (cart, orders) behind two nodes' ztunnels, each connection
/// logged by the source ztunnel (outbound) and the destination's (inbound).
fn mixed_mesh(late_ztunnel: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let early = "2026-11-20T10:30:00.000000000Z";
    let second = if late_ztunnel {
        "2026-11-20T11:30:00.000000000Z"
    } else {
        early
    };
    lines.push(prefixed(
        "web-api-7d9f8c6b5-x2x4z",
        early,
        "2026-11-20T10:30:00.000000Z\tinfo\txdsproxy\tconnected to upstream XDS server",
    ));
    lines.push(prefixed(
        "ztunnel-node1",
        early,
        "2026-11-20T10:30:00.000000Z\tinfo\txds::client\treceived response",
    ));
    lines.push(prefixed(
        "ztunnel-node2",
        second,
        "2026-11-20T10:30:00.000000Z\tinfo\txds::client\treceived response",
    ));
    for m in 0..50 {
        let t = format!(
            "2026-11-20T11:{:02}:{:02}.000000Z",
            31 + m / 6,
            (m % 6) * 10
        );
        let kt = format!(
            "2026-11-20T11:{:02}:{:02}.000000000Z",
            31 + m / 6,
            (m % 6) * 10
        );
        lines.push(prefixed(
            "web-api-7d9f8c6b5-x2x4z",
            &kt,
            &sidecar(&t, true, "10.44.1.12"),
        ));
        // cart on node1, orders on node2; the caller's node logs them outbound.
        let c = conn(&t, Some(SLEEP), "cart-5d8f7c6b9-x2k4p", true);
        lines.push(prefixed("ztunnel-node1", &kt, &c.text()));
        lines.push(prefixed(
            "ztunnel-node2",
            &kt,
            &Conn {
                inbound: false,
                ..c
            }
            .text(),
        ));
        let o = conn(&t, Some(SLEEP), "orders-6c8f5b9d7-q2x4z", true);
        lines.push(prefixed("ztunnel-node2", &kt, &o.text()));
        lines.push(prefixed(
            "ztunnel-node1",
            &kt,
            &Conn {
                inbound: false,
                ..o
            }
            .text(),
        ));
    }
    // An out-of-mesh caller reaches orders in plaintext: only the destination's ztunnel sees it.
    if !late_ztunnel {
        let p = conn(
            "2026-11-20T11:55:00.000000Z",
            None,
            "orders-6c8f5b9d7-q2x4z",
            true,
        );
        lines.push(prefixed(
            "ztunnel-node2",
            "2026-11-20T11:55:00.000000000Z",
            &p.text(),
        ));
    }
    lines
}

#[test]
fn issue_10_2_a_mixed_namespace_gives_one_report_for_any_threads_and_order() {
    let lines = mixed_mesh(false);
    let args = [
        "-n",
        "shop",
        "--until",
        "2026-11-20T12:00:00Z",
        "--window",
        "1h",
    ];
    let (code, first) = report(&lines.concat(), &[&args[..], &["--threads", "1"]].concat());
    assert_eq!(code, 1);
    assert_eq!(first["input"]["requests"], 151, "{}", first["input"]);
    assert_eq!(first["input"]["outbound"], 100);
    let web = destination(&first, "shop/web-api");
    assert_eq!(
        (web["dataplane"].as_str(), web["unit"].as_str()),
        (Some("sidecar"), Some("requests"))
    );
    assert_eq!(
        (web["verdict"].as_str(), web["mtls"].as_u64()),
        (Some("ready"), Some(50))
    );
    let cart = destination(&first, "shop/cart");
    assert_eq!(
        (cart["dataplane"].as_str(), cart["unit"].as_str()),
        (Some("ambient"), Some("connections"))
    );
    assert_eq!(
        (cart["verdict"].as_str(), cart["mtls"].as_u64()),
        (Some("ready"), Some(50)),
        "{cart}"
    );
    let orders = destination(&first, "shop/orders");
    assert_eq!(orders["verdict"], "blocked");
    assert_eq!(
        (orders["mtls"].as_u64(), orders["plaintext"].as_u64()),
        (Some(50), Some(1))
    );
    assert_eq!(orders["sources"][0]["peer"], "10.9.0.5");
    assert!(
        orders["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 plaintext connection in the window")
    );
    assert_eq!(
        first["destinations"].as_array().unwrap().len(),
        3,
        "{first}"
    );
    // Threads and line order change nothing.
    let mut reversed = lines.clone();
    reversed.reverse();
    let mut interleaved: Vec<String> = lines.iter().step_by(2).cloned().collect();
    interleaved.extend(lines.iter().skip(1).step_by(2).cloned());
    for (log, threads) in [
        (lines.concat(), "3"),
        (reversed.concat(), "2"),
        (interleaved.concat(), "4"),
    ] {
        let (_, r) = report(&log, &[&args[..], &["--threads", threads]].concat());
        assert_eq!(
            r["destinations"], first["destinations"],
            "--threads {threads}"
        );
        assert_eq!(r["input"], first["input"]);
    }
}

#[test]
fn issue_10_3_a_ztunnel_restarted_in_the_window_leaves_its_nodes_workloads_insufficient() {
    let (_, r) = report(
        &mixed_mesh(true).concat(),
        &[
            "-n",
            "shop",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "1h",
        ],
    );
    // node2's ztunnel log begins at 11:30, inside the window: orders, whose
    // connections node2 received, may have had plaintext before; cart (node1)
    // keeps its coverage, and node2's outbound lines for it change nothing.
    assert_eq!(destination(&r, "shop/cart")["verdict"], "ready");
    let orders = destination(&r, "shop/orders");
    assert_eq!(orders["verdict"], "insufficient", "{orders}");
    assert!(
        orders["reason"].as_str().unwrap().contains("ztunnel-node2"),
        "{orders}"
    );
    let short: Vec<&str> = orders["coverage"]["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(short, ["pod/ztunnel-node2/istio-proxy"], "{orders}");
    assert_eq!(destination(&r, "shop/web-api")["verdict"], "ready");
}

#[test]
fn issue_10_1_a_ztunnel_container_named_ztunnel_is_read_not_skipped() {
    let line = conn(
        "2026-11-20T11:10:00.000000Z",
        None,
        "orders-6c8f5b9d7-q2x4z",
        true,
    )
    .text();
    for container in ["istio-proxy", "ztunnel"] {
        let log =
            format!("[pod/ztunnel-node1/{container}] 2026-11-20T11:10:00.000000000Z {line}\n");
        let (_, r) = report(&log, &["-n", "shop"]);
        assert_eq!(r["input"]["requests"], 1, "{container}: {r}");
        assert_eq!(destination(&r, "shop/orders")["verdict"], "blocked");
    }
}

#[test]
fn issue_10_5_policy_writes_the_same_peer_authentication_and_says_ztunnel_enforces_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mixed.log");
    std::fs::write(&log, mixed_mesh(false).concat()).unwrap();
    let out = strictly()
        .args([
            "policy",
            "-n",
            "shop",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "1h",
        ])
        .arg(&log)
        .output()
        .unwrap();
    let yaml = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<&str> = yaml.split("\n---\n").skip(1).collect();
    let doc_of = |name: &str| {
        docs.iter()
            .find(|d| d.contains(&format!("name: {name}-strict")))
            .unwrap_or_else(|| panic!("no policy for {name}: {yaml}"))
    };
    // Ambient cart: the same PeerAuthentication, and a comment saying who enforces it.
    let cart = doc_of("cart");
    assert!(cart.contains("kind: PeerAuthentication") && cart.contains("mode: STRICT"));
    assert!(cart.contains("dataplane: ambient"), "{cart}");
    assert!(cart.contains("ztunnel"), "{cart}");
    // The sidecar workload's policy says nothing of ztunnel.
    assert!(!doc_of("web-api").contains("ztunnel"));
}
