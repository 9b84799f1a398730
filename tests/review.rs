//! Wrong `ready`s a fresh pair of eyes found after issue 7's items were in
//! (review findings F1–F4, F7, F10): none may be `ready`.

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
    // Every entry of the second copy is a duplicate, damaged ones too.
    let entries =
        once["input"]["requests"].as_u64().unwrap() + once["input"]["malformed"].as_u64().unwrap();
    assert_eq!(r["input"]["duplicates"], entries);
    assert_eq!(r["input"]["malformed"], once["input"]["malformed"]);
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

fn report_files(files: &[(&str, &str)], args: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = strictly();
    cmd.args(["report", "-o", "json"]).args(args);
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        cmd.arg(&path);
    }
    let out = cmd.output().unwrap();
    let r = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), r)
}

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";

/// Twelve mTLS requests to shop/api, 11:00–11:55.
fn mtls_hour() -> String {
    (0..12)
        .map(|m| lab(&format!("2026-11-20T11:{:02}:00.000Z", m * 5), 5, WEB, "-"))
        .collect()
}

#[test]
fn f3_a_malformed_line_in_the_window_keeps_its_destination_from_ready() {
    let mut log = mtls_hour();
    // A plaintext request with one field more than the format (a newer EnvoyFilter).
    let extra =
        lab("2026-11-20T11:40:00.000Z", 5, "-", "10.9.9.9").replace('\n', " route: \"x\"\n");
    log.push_str(&extra);
    let args = ["--window", "30m", "--min-requests", "5"];
    let (code, r) = report(&log, &args);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert_eq!(d["malformed"], 1);
    assert!(
        d["reason"].as_str().unwrap().contains("1 malformed line"),
        "{d}"
    );
    assert_eq!(code, 1);
    // The same line dated before the window is no doubt on it.
    let mut log = mtls_hour();
    log.push_str(&extra.replace("2026-11-20T11:40", "2026-11-20T09:30"));
    let (code, r) = report(&log, &args);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "ready", "{d}");
    assert_eq!(d["malformed"], 0);
    assert_eq!(r["input"]["malformed"], 1);
    assert_eq!(code, 0);
}

#[test]
fn f3_a_pods_malformed_lines_count_against_its_own_workload_only() {
    let prefix = |pod: &str, m: u32, line: &str| {
        format!("[pod/{pod}/istio-proxy] 2026-11-20T11:{m:02}:00.010000000Z {line}")
    };
    let mut log = String::new();
    for m in 0..12 {
        let t = format!("2026-11-20T11:{:02}:00.000Z", m * 5);
        log.push_str(&prefix("api-7d9f8c6b5-x2x4z", m * 5, &lab(&t, 5, WEB, "-")));
        log.push_str(&prefix(
            "cart-5c8d7b9f4-k2m4n",
            m * 5,
            &lab(&t, 5, WEB, "-"),
        ));
    }
    // The api Deployment's second replica logs no access entry but one no format fits.
    let api2 = "api-7d9f8c6b5-q9w8z";
    log.push_str(&prefix(api2, 0, "info\tEnvoy proxy is ready\n"));
    log.push_str(&prefix(
        api2,
        40,
        "[2026-11-20T11:40:00.000Z] \"GET / HTTP/1.1\" 200 - mangled\n",
    ));
    let args = ["-n", "shop", "--window", "30m", "--min-requests", "5"];
    let (code, r) = report(&log, &args);
    let api = destination(&r, "shop/api");
    assert_eq!(api["verdict"], "insufficient", "{api}");
    assert_eq!(api["malformed"], 1);
    let cart = destination(&r, "shop/cart");
    assert_eq!(cart["verdict"], "ready", "{cart}");
    assert_eq!(cart["malformed"], 0);
    assert_eq!(code, 1);
}

#[test]
fn f4_plaintext_nobody_can_place_in_another_file_keeps_every_destination_from_ready() {
    let mtls = mtls_hour();
    // Replica 2's raw log: plaintext only, nothing names its destination.
    let plain: String = (0..12)
        .map(|m| {
            lab(
                &format!("2026-11-20T11:{:02}:00.000Z", m * 5),
                5,
                "-",
                "10.9.9.9",
            )
        })
        .collect();
    let (code, r) = report_files(&[("a.log", &mtls), ("b.log", &plain)], &["--window", "1h"]);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("b.log"), "{d}");
    assert_eq!(code, 1);
    // Concatenated, the same lines are one stream: blocked.
    let (code, r) = report(&format!("{mtls}{plain}"), &["--window", "1h"]);
    assert_eq!(destination(&r, "shop/api")["verdict"], "blocked");
    assert_eq!(code, 1);
}

#[test]
fn f6_plaintext_after_an_until_in_the_past_keeps_the_destination_from_ready() {
    let mut log = mtls_hour();
    log.push_str(&lab("2026-11-20T18:00:00.000Z", 5, "-", "10.9.9.9"));
    let args = [
        "--window",
        "30m",
        "--min-requests",
        "5",
        "--until",
        "2026-11-20T12:00:00Z",
    ];
    let (code, r) = report(&log, &args);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert_eq!(d["plaintext"], 0);
    assert_eq!(d["plaintext_after_window"], "2026-11-20T18:00:00.005Z");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("after the window's end"),
        "{d}"
    );
    assert_eq!(code, 1);
    // Without it the same window is ready, and the field is absent.
    let (code, r) = report(&mtls_hour(), &args);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "ready", "{d}");
    assert!(d.get("plaintext_after_window").is_none(), "{d}");
    assert_eq!(code, 0);
}

#[test]
fn f11_a_missing_piece_inside_the_window_is_no_coverage() {
    // One old line, then only the last hour: 23 of the 24 hours are missing.
    let mut log = lab("2026-11-19T06:00:00.000Z", 5, WEB, "-");
    for m in 0..60 {
        log.push_str(&lab(&format!("2026-11-20T11:{m:02}:00.000Z"), 5, WEB, "-"));
        log.push_str(&lab(&format!("2026-11-20T11:{m:02}:30.000Z"), 5, WEB, "-"));
    }
    let (code, r) = report(&log, &["--until", "2026-11-20T12:00:00Z"]);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert_eq!(d["coverage"]["complete"], false);
    let hole = &d["coverage"]["short"][0]["hole"];
    assert_eq!(hole["start"], "2026-11-19T12:00:00Z", "{d}");
    assert_eq!(hole["end"], "2026-11-20T11:00:00Z", "{d}");
    assert!(
        d["reason"].as_str().unwrap().contains("no line from"),
        "{d}"
    );
    assert_eq!(code, 1);
    // A stream that logs twice an hour all day is quiet, not holed.
    let mut log = lab("2026-11-19T06:00:00.000Z", 5, WEB, "-");
    for h in 0..24 {
        let day = if h < 12 { "19" } else { "20" };
        let hour = (h + 12) % 24;
        for m in [10, 40] {
            log.push_str(&lab(
                &format!("2026-11-{day}T{hour:02}:{m}:00.000Z"),
                5,
                WEB,
                "-",
            ));
        }
    }
    let (code, r) = report(&log, &["--until", "2026-11-20T12:00:00Z"]);
    let d = destination(&r, "shop/api");
    assert_eq!(d["verdict"], "ready", "{d}");
    assert_eq!(code, 0);
}
