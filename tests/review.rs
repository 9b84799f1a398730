//! Wrong `ready`s a fresh pair of eyes found after issue 7's items were in
//! (review findings F1, F2): each must block.

mod common;

use common::{destination, strictly};
use serde_json::Value;

fn report(log: &str, args: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.log");
    std::fs::write(&path, log).unwrap();
    let out = strictly()
        .args(["report", "-o", "json"])
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let r = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), r)
}

fn lab(start: &str, dur: u64, origin: &str, peer: &str) -> String {
    let dest = if origin == "-" {
        "-".to_string()
    } else {
        "spiffe://cluster.local/ns/shop/sa/api".to_string()
    };
    format!(
        "[{start}] \"GET / HTTP/1.1\" 200 - \"-\" 0 1100 {dur} {dur} \"{peer}\" mTLS_Origin: \"{origin}\" mTLS_Destination: \"{dest}\" cert: \"-\" audit_flag: \"-\"\n"
    )
}

#[test]
fn f1_a_plaintext_stream_open_into_the_window_blocks() {
    let mut log = lab(
        "2026-11-18T00:00:00.000Z",
        5,
        "spiffe://cluster.local/ns/shop/sa/web",
        "-",
    );
    for h in 10..22 {
        log.push_str(&lab(
            &format!("2026-11-20T{h}:00:00.000Z"),
            5,
            "spiffe://cluster.local/ns/shop/sa/web",
            "-",
        ));
    }
    // A websocket opened 30 h before the end, closed (and logged) 2 h before it.
    log.push_str(&lab(
        "2026-11-19T16:00:00.000Z",
        28 * 3_600_000,
        "-",
        "10.9.9.9",
    ));
    for until in [
        None,
        Some("2026-11-20T22:00:00Z"),
        Some("2026-11-20T17:00:00Z"),
    ] {
        let mut args = vec!["--destination", "shop/api"];
        if let Some(u) = until {
            args.extend(["--until", u]);
        }
        let (code, r) = report(&log, &args);
        let d = destination(&r, "shop/api");
        assert_eq!(d["verdict"], "blocked", "--until {until:?}: {d}");
        assert_eq!(code, 1);
    }
}

#[test]
fn f2_plaintext_to_an_undeclared_port_is_inbound() {
    let line = |minute: u32, cluster: &str, peer: &str, sni: &str| {
        format!(
            "[2026-11-20T11:{minute:02}:00.000Z] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 1131 5 5 \"-\" \"curl/8.5.0\" \"id\" \"api:8080\" \"10.44.1.23:9000\" {cluster} 127.0.0.6:41423 10.44.1.23:9000 {peer}:32787 {sni} default\n"
        )
    };
    let sni = "outbound_.8080_._.api.shop.svc.cluster.local";
    let mut log = String::new();
    for m in 0..20 {
        log.push_str(&line(m, "inbound|8080||", "10.44.2.9", sni));
    }
    log.push_str(&line(30, "InboundPassthroughClusterIpv4", "10.99.0.1", "-"));
    let (code, r) = report(
        &log,
        &[
            "--window",
            "1h",
            "--destination",
            "shop/api",
            "--min-requests",
            "5",
        ],
    );
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "blocked", "{d}");
    assert_eq!(d["plaintext"], 1);
    assert_eq!(r["input"]["outbound"], 0);
    assert_eq!(code, 1);
}

#[test]
fn f7_the_same_export_twice_in_one_stream_counts_once() {
    let sample = common::fixture("sample/mesh.log");
    let text = std::fs::read_to_string(&sample).unwrap();
    let twice = format!("{text}{text}");
    let (_, once) = report(&text, &[]);
    let (code, r) = report(&twice, &[]);
    assert_eq!(r["input"]["duplicates"], once["input"]["requests"]);
    assert_eq!(r["destinations"], once["destinations"]);
    assert_eq!(
        destination(&r, "istioinaction/catalog")["verdict"],
        "insufficient"
    );
    assert_eq!(code, 1);
}

#[test]
fn f10_a_plaintext_only_replica_is_not_split_from_its_deployment() {
    let mut log = String::new();
    for m in 0..12 {
        log.push_str(&format!(
            "[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] 2026-11-20T11:{m:02}:00.010000000Z {}",
            lab(
                &format!("2026-11-20T11:{m:02}:00.000Z"),
                5,
                "spiffe://cluster.local/ns/shop/sa/web",
                "-"
            )
        ));
    }
    // The sibling replica only ever received plaintext: no SAN names its namespace.
    log.push_str(&format!(
        "[pod/web-api-7d9f8c6b5-q9w8z/istio-proxy] 2026-11-20T11:30:00.010000000Z {}",
        lab("2026-11-20T11:30:00.000Z", 5, "-", "10.9.9.9")
    ));
    let (code, r) = report(&log, &["--window", "1h"]);
    let names: Vec<&str> = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop/web-api"], "{r}");
    assert_eq!(destination(&r, "shop/web-api")["verdict"], "blocked");
    assert_eq!(code, 1);
}
