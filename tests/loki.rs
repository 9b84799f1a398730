//! Issue 8 items 3 and 5: `report --loki` against a fake Loki on loopback
//! (tests/support/fake_loki.rs) speaking the real `query_range` API. The
//! direct query must give the verdicts and counts of the same lines read raw
//! from a file; paging must neither lose nor double entries that share a
//! nanosecond at a page boundary; tenant, credentials, 429 and 5xx behave as
//! a user needs.
mod common;

#[path = "support/fake_loki.rs"]
mod fake_loki;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use common::essence;
use fake_loki::{FakeEntry, FakeLoki};
use serde_json::Value;

const UNTIL: &str = "2026-11-20T12:00:00Z";
const NS: &str = "istioinaction";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn strictly() -> Command {
    let mut c = Command::cargo_bin("strictly").expect("the strictly binary is built");
    for v in [
        "LOKI_TOKEN",
        "LOKI_BEARER_TOKEN",
        "LOKI_USER",
        "LOKI_USERNAME",
        "LOKI_PASSWORD",
        "LOKI_ORG_ID",
    ] {
        c.env_remove(v);
    }
    c
}

/// `strictly report --loki URL ... -o json --until UNTIL ARGS`.
fn loki(url: &str, args: &[&str]) -> Output {
    strictly()
        .args([
            "report",
            "--loki",
            url,
            "-o",
            "json",
            "--until",
            UNTIL,
            "--threads",
            "2",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn raw(path: &Path) -> Output {
    strictly()
        .args([
            "report",
            "-n",
            NS,
            "-o",
            "json",
            "--until",
            UNTIL,
            "--threads",
            "2",
        ])
        .arg(path)
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn prefixed_fixture() -> String {
    std::fs::read_to_string(fixture("exports/raw-kubectl.log")).unwrap()
}

/// Lines of two replicas and a plaintext-called `catalog-0`, many of them
/// sharing a nanosecond (three at a time, across pods), in `kubectl logs
/// --prefix --timestamps` form; `late` replicas start inside the window.
fn tied_lines(late: bool) -> String {
    let lab = |t: &str, origin: &str, peer: &str| {
        format!(
            r#"[{t}] "GET / HTTP/1.1" 200 - "-" 0 1100 5 4 "{peer}" mTLS_Origin: "{origin}" mTLS_Destination: "-" cert: "-" audit_flag: "false""#
        )
    };
    let mut out = String::new();
    let first_hour = if late { 8 } else { 1 };
    for i in 0..60 {
        let h = first_hour + i / 6;
        let m = (i % 6) * 7;
        let ts = format!("2026-11-20T{h:02}:{m:02}:00.123456789Z");
        let start = format!("2026-11-20T{h:02}:{m:02}:00.100Z");
        let san = "spiffe://cluster.local/ns/istioinaction/sa/sleep";
        for pod in ["web-api-7d9f8c6b5-x2x4z", "web-api-7d9f8c6b5-q9w8z"] {
            out.push_str(&format!(
                "[pod/{pod}/istio-proxy] {ts} {}\n",
                lab(&start, san, "-")
            ));
        }
        let catalog = if i % 20 == 0 {
            lab(&start, "-", "10.44.0.9")
        } else {
            lab(&start, san, "-")
        };
        out.push_str(&format!("[pod/catalog-0/istio-proxy] {ts} {catalog}\n"));
    }
    // The coverage margin: each pod wrote before the window (unless late).
    if !late {
        for pod in [
            "web-api-7d9f8c6b5-x2x4z",
            "web-api-7d9f8c6b5-q9w8z",
            "catalog-0",
        ] {
            out.insert_str(
                0,
                &format!("[pod/{pod}/istio-proxy] 2026-11-19T11:30:00.000000000Z info starting\n"),
            );
        }
    }
    out
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn issue_8_3_loki_direct_query_equals_the_lines_read_raw() {
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS));
    let from_loki = json(&loki(
        &fake.url,
        &["--query", r#"{namespace="istioinaction"}"#],
    ));
    let from_file = json(&raw(&fixture("exports/raw-kubectl.log")));
    assert_eq!(essence(&from_loki), essence(&from_file));
    assert!(from_loki["input"]["requests"].as_u64().unwrap() > 0);
    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .all(|r| r.params["direction"] == "forward" && r.params["limit"] == "5000")
    );
    // The window plus the hour before it, in Loki's 30-minute splits, and
    // the window's last millisecond (its end is inclusive, Loki's exclusive).
    assert_eq!(reqs[0].params["start"], "1795086000000000000");
    assert_eq!(reqs[50].params["end"], "1795176000001000000");
    assert_eq!(
        reqs.len(),
        51,
        "{:?}",
        reqs.iter().map(|r| &r.params).collect::<Vec<_>>()
    );
}

#[test]
fn issue_8_3_loki_pages_ties_at_boundary() {
    let text = tied_lines(false);
    let file = write_temp(&text);
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&text, NS));
    let paged = json(&loki(&fake.url, &["-n", NS, "--loki-batch", "4"]));
    let from_file = json(&raw(file.path()));
    assert_eq!(essence(&paged), essence(&from_file));
    assert_eq!(
        paged["input"]["lines"], 183,
        "every entry once: {}",
        paged["input"]
    );
    let reqs = fake.requests();
    assert!(reqs.len() > 50, "pages of 4: {}", reqs.len());
    assert!(reqs.iter().all(|r| r.params["limit"] == "4"));
    assert_eq!(
        reqs[0].params["query"],
        r#"{namespace="istioinaction", container="istio-proxy"}"#
    );
    let verdict = |name: &str| {
        paged["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["destination"] == name)
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict("istioinaction/catalog"), "blocked");
    assert_eq!(verdict("istioinaction/web-api"), "ready");
}

#[test]
fn issue_8_3_loki_a_stream_that_starts_inside_the_window_is_named() {
    let text = tied_lines(true);
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&text, NS));
    let r = json(&loki(&fake.url, &["-n", NS]));
    let web = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "istioinaction/web-api")
        .unwrap();
    assert_eq!(web["verdict"], "insufficient", "{web}");
    let short: Vec<&str> = web["coverage"]["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert!(
        short.contains(&"istioinaction/pod/web-api-7d9f8c6b5-x2x4z/istio-proxy"),
        "{short:?}"
    );
}

#[test]
fn issue_8_3_loki_tenant_is_sent_and_required() {
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS));
    fake.require_org("team-a");
    let out = loki(&fake.url, &["--query", r#"{namespace="istioinaction"}"#]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("strictly: error: ") && err.contains("--loki-org-id"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    let by_flag = loki(
        &fake.url,
        &[
            "--query",
            r#"{namespace="istioinaction"}"#,
            "--loki-org-id",
            "team-a",
        ],
    );
    let by_env = strictly()
        .env("LOKI_ORG_ID", "team-a")
        .args([
            "report",
            "--loki",
            &fake.url,
            "-o",
            "json",
            "--until",
            UNTIL,
            "--query",
            r#"{namespace="istioinaction"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(essence(&json(&by_flag)), essence(&json(&by_env)));
    assert!(
        fake.requests()
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.org_id.as_deref() == Some("team-a"))
    );
}

#[test]
fn issue_8_3_loki_credentials_bearer_and_basic() {
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS));
    fake.require_token("s3cret");
    let q = ["--query", r#"{namespace="istioinaction"}"#];
    let wrong = strictly()
        .env("LOKI_TOKEN", "nope")
        .args([
            "report", "--loki", &fake.url, "-o", "json", "--until", UNTIL,
        ])
        .args(q)
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("401") && err.contains("LOKI_TOKEN"), "{err}");
    let right = strictly()
        .env("LOKI_TOKEN", "s3cret")
        .args([
            "report", "--loki", &fake.url, "-o", "json", "--until", UNTIL,
        ])
        .args(q)
        .output()
        .unwrap();
    let expected = essence(&json(&raw(&fixture("exports/raw-kubectl.log"))));
    assert_eq!(essence(&json(&right)), expected);

    fake.require_basic("grafana", "pa:ss");
    let basic = strictly()
        .env("LOKI_USER", "grafana")
        .env("LOKI_PASSWORD", "pa:ss")
        .args([
            "report", "--loki", &fake.url, "-o", "json", "--until", UNTIL,
        ])
        .args(q)
        .output()
        .unwrap();
    assert_eq!(essence(&json(&basic)), expected);
}

#[test]
fn issue_8_3_loki_429_then_success_is_retried() {
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS));
    fake.fail_next(429, 2);
    let out = loki(&fake.url, &["--query", r#"{namespace="istioinaction"}"#]);
    assert_eq!(
        essence(&json(&out)),
        essence(&json(&raw(&fixture("exports/raw-kubectl.log"))))
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], [429, 429, 200]);
}

#[test]
fn issue_8_3_loki_5xx_midway_is_an_error_saying_how_far_it_read() {
    let text = tied_lines(false);
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&text, NS));
    fake.fail_after(20, 503);
    let out = loki(&fake.url, &["-n", NS, "--loki-batch", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no verdict over part of the range");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("503") && err.contains("stopped after") && err.contains("entries"),
        "{err}"
    );
    // Retried before giving up.
    assert!(fake.requests().iter().filter(|r| r.status == 503).count() >= 5);
}

#[test]
fn issue_8_3_loki_batch_above_lokis_limit_is_refused() {
    let out = strictly()
        .args([
            "report",
            "--loki",
            "http://127.0.0.1:9",
            "--loki-batch",
            "5001",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--loki-batch") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn issue_8_3_loki_unreachable_is_one_line() {
    let out = strictly()
        .args(["report", "--loki", "http://127.0.0.1:9", "-n", NS])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("strictly: error: ") && err.lines().count() == 1,
        "{err}"
    );
    assert!(err.contains("unavailable"), "{err}");
}

/// Entries the fake holds must be what the test wrote.
#[test]
fn fake_entries_parse_prefixed_lines() {
    let e: Vec<FakeEntry> = FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS);
    assert_eq!(e.len(), 22);
    assert_eq!(e[0].labels["pod"], "web-api-7d9f8c6b5-x2x4z");
}

/// Per destination: name, verdict, mTLS and plaintext counts, and the streams short of the window.
fn verdicts(r: &Value) -> Vec<(String, String, u64, u64, Vec<String>)> {
    r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let short = d["coverage"]["short"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["stream"].as_str().unwrap().to_string())
                .collect();
            (
                d["destination"].as_str().unwrap().to_string(),
                d["verdict"].as_str().unwrap().to_string(),
                d["mtls"].as_u64().unwrap(),
                d["plaintext"].as_u64().unwrap(),
                short,
            )
        })
        .collect()
}

#[test]
fn issue_8_4_loki_pushdown_gives_the_line_by_line_verdicts() {
    for late in [false, true] {
        let text = tied_lines(late);
        let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&text, NS));
        let lines = json(&loki(&fake.url, &["-n", NS]));
        let before = fake.requests().len();
        let pushed = json(&loki(&fake.url, &["-n", NS, "--pushdown"]));
        assert_eq!(verdicts(&pushed), verdicts(&lines), "late={late}");
        for k in ["lines", "requests", "skipped"] {
            assert_eq!(pushed["input"][k], lines["input"][k], "{k}, late={late}");
        }
        assert!(
            pushed["hints"].to_string().contains("whole hours"),
            "{}",
            pushed["hints"]
        );
        // Push-down sent metric queries only, each stepped hourly.
        let metric = &fake.requests()[before..];
        assert!(
            metric
                .iter()
                .all(|r| r.params["step"] == "3600" && r.params["query"].starts_with("sum by"))
        );
        assert!(
            metric
                .iter()
                .any(|r| r.params["query"].contains("| regexp `"))
        );
    }
}

#[test]
fn issue_8_4_loki_pushdown_splits_when_the_series_limit_is_hit() {
    let text = tied_lines(false);
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&text, NS));
    let whole = json(&loki(&fake.url, &["-n", NS, "--pushdown"]));
    // Three streams, four series per format: whole and per-namespace queries are refused.
    fake.set_max_series(2);
    let split = json(&loki(&fake.url, &["-n", NS, "--pushdown"]));
    assert_eq!(verdicts(&split), verdicts(&whole));
    assert_eq!(split["input"], whole["input"]);
    let per_pod = fake
        .requests()
        .iter()
        .filter(|r| r.status == 200 && r.params["query"].contains(r#"pod="catalog-0""#))
        .count();
    assert!(per_pod > 0, "queries were split down to pods");
}

#[test]
fn issue_8_4_loki_pushdown_on_the_export_fixture_matches_the_line_by_line_read() {
    let fake = FakeLoki::start(FakeLoki::entries_from_prefixed(&prefixed_fixture(), NS));
    let lines = json(&loki(&fake.url, &["-n", NS]));
    let pushed = json(&loki(&fake.url, &["-n", NS, "--pushdown"]));
    assert_eq!(verdicts(&pushed), verdicts(&lines));
    assert!(verdicts(&lines).iter().any(|d| d.1 == "blocked"));
}

#[test]
fn issue_8_4_loki_explain_prints_the_queries_and_runs_nothing() {
    let fake = FakeLoki::start(Vec::new());
    let out = strictly()
        .args([
            "report",
            "--loki",
            &fake.url,
            "-n",
            NS,
            "--pushdown",
            "--explain",
            "--until",
            UNTIL,
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("step=3600"), "{text}");
    assert!(
        text.contains(
            r#"count_over_time({namespace="istioinaction", container="istio-proxy"} |~ `(?s)^"#
        ),
        "{text}"
    );
    assert!(text.contains("(?P<x_peer_san>"), "{text}");
    assert!(fake.requests().is_empty());
}

/// Measurement, not a check: `cargo test --test loki -- --ignored --nocapture`
/// prints entries/s of the direct query and of push-down over 60,000 entries.
#[test]
#[ignore]
fn measure_direct_query_and_pushdown() {
    let mut text = String::new();
    let base = tied_lines(false);
    let body: Vec<&str> = base.lines().filter(|l| l.contains("HTTP/1.1")).collect();
    for rep in 0..333 {
        for l in &body {
            // Shift each copy by `rep` ms so entries stay distinct.
            text.push_str(&l.replacen(".123456789Z", &format!(".{:03}456789Z", rep % 1000), 1));
            text.push('\n');
        }
    }
    let entries = FakeLoki::entries_from_prefixed(&text, NS);
    let n = entries.len();
    let fake = FakeLoki::start(entries);
    for args in [&["-n", NS][..], &["-n", NS, "--pushdown"][..]] {
        let before = fake.requests().len();
        let t = std::time::Instant::now();
        let r = json(&loki(&fake.url, args));
        let s = t.elapsed().as_secs_f64();
        let reqs = &fake.requests()[before..];
        let bytes: usize = reqs.iter().map(|r| r.bytes).sum();
        println!(
            "{args:?}: {n} entries, {} requests counted, {} HTTP requests, {bytes} bytes received, {:.2} s, {:.0} entries/s",
            r["input"]["requests"],
            reqs.len(),
            s,
            n as f64 / s
        );
    }
}
