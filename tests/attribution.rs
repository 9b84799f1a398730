//! Issue 7 items 8 and 11: what cannot be attributed keeps its input's
//! destinations from `ready`, and a window after the input is said to be so.

mod common;

use common::{destination, fixture};

use assert_cmd::Command;
use serde_json::Value;

fn report(args: &[&str]) -> (i32, Value) {
    let out = Command::cargo_bin("strictly")
        .unwrap()
        .args(["report", "-o", "json"])
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

/// Istio's default format, raw (no pod metadata): one line to `local`.
fn istio(minute: u32, local: &str, peer: &str, sni: &str) -> String {
    format!(
        "[2026-11-20T11:{minute:02}:00.000Z] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 1131 5 5 \"-\" \"curl/8.5.0\" \"id\" \"web-api:8080\" \"{local}:8080\" inbound|8080|| 127.0.0.6:41423 {local}:8080 {peer}:32787 {sni} default\n"
    )
}

#[test]
fn issue_7_8_unattributed_plaintext_keeps_the_inputs_destinations_from_ready() {
    // Replica 10.44.1.23 names web-api through mTLS SNIs; replica 10.44.1.24
    // only ever received plaintext, which names nothing.
    let sni = "outbound_.8080_._.web-api.istioinaction.svc.cluster.local";
    let mut log = String::new();
    for m in 0..20 {
        log.push_str(&istio(m, "10.44.1.23", "10.44.2.9", sni));
    }
    log.push_str(&istio(30, "10.44.1.24", "10.99.0.1", "-"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.log");
    std::fs::write(&path, &log).unwrap();
    let p = path.to_str().unwrap();
    let (code, r) = report(&[p, "--window", "1h", "--until", "2026-11-20T12:00:00Z"]);
    assert_eq!(code, 1);
    let web = destination(&r, "istioinaction/web-api");
    assert_eq!(web["verdict"], "insufficient", "{web}");
    let reason = web["reason"].as_str().unwrap();
    assert!(reason.contains("1 plaintext request"), "{reason}");
    assert!(reason.contains("could not be attributed"), "{reason}");
    assert!(reason.contains("--destination"), "{reason}");
    assert_eq!(destination(&r, "unattributed")["verdict"], "blocked");
    let hints = r["hints"].as_array().unwrap();
    assert!(
        hints
            .iter()
            .any(|h| h.as_str().unwrap().contains("could not be attributed")),
        "{hints:?}"
    );
    // Attributed with --destination, the same lines block web-api.
    let (_, r) = report(&[
        p,
        "--window",
        "1h",
        "--until",
        "2026-11-20T12:00:00Z",
        "--destination",
        "istioinaction/web-api",
    ]);
    assert_eq!(
        destination(&r, "istioinaction/web-api")["verdict"],
        "blocked"
    );
    // Without the plaintext line the replica that names web-api is ready.
    let clean: String = log.lines().take(20).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, clean).unwrap();
    let (code, r) = report(&[
        p,
        "--window",
        "30m",
        "--until",
        "2026-11-20T12:00:00Z",
        "--min-requests",
        "5",
    ]);
    assert_eq!(
        destination(&r, "istioinaction/web-api")["verdict"],
        "insufficient",
        "{r}"
    );
    assert_eq!(code, 1, "lines end at 11:19: a 30m window is not covered");
}

#[test]
fn issue_7_11_until_after_the_input_keeps_names_and_says_why() {
    let path = fixture("cases/prefix-timestamps.log");
    let p = path.to_str().unwrap();
    let (code, r) = report(&[p, "--window", "1h", "--until", "2026-11-23T12:00:00Z"]);
    assert_eq!(code, 1);
    let names = |r: &Value| -> Vec<String> {
        r["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["destination"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, whole) = report(&[p, "--window", "1h"]);
    let mut want = names(&whole);
    let mut got = names(&r);
    want.sort();
    got.sort();
    assert_eq!(got, want, "names do not depend on the window");
    assert!(
        got.contains(&"istioinaction/web-api".to_string()),
        "{got:?}"
    );
    for d in r["destinations"].as_array().unwrap() {
        assert_eq!(d["verdict"], "insufficient", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.contains("lies after the input"), "{reason}");
        assert!(!reason.contains("no timestamps"), "{reason}");
    }
}
