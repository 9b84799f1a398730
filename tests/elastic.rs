//! Issue 8, Elasticsearch / OpenSearch: Kibana CSV exports (item 2), direct
//! queries against a fake Elasticsearch on loopback (items 3, 5) and push-down
//! (item 4). Each path must give the verdicts and counts of the same entries
//! read raw (`fixtures/exports/raw-kubectl.log`).

mod common;
#[path = "support/fake_elastic.rs"]
mod fake_elastic;

use std::process::Output;

use serde_json::Value;

use common::{
    essence, fixture, istioinaction_report as report, istioinaction_run as run, strictly, verdicts,
};
use fake_elastic::FakeElastic;

fn export(name: &str) -> String {
    fixture(&format!("exports/{name}"))
        .to_string_lossy()
        .into_owned()
}

fn raw() -> Value {
    report(&[&export("raw-kubectl.log")])
}

#[test]
fn issue_8_2_kibana_csv_with_zoned_dates_gives_the_raw_lines_verdicts_and_counts() {
    let raw = essence(&raw());
    assert_eq!(raw["input"]["requests"], 16, "{raw}");
    for args in [
        vec![export("kibana-discover-iso.csv")],
        vec![
            "--input".into(),
            "elastic".into(),
            export("kibana-discover-iso.csv"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(essence(&report(&args)), raw, "{args:?}");
    }
}

#[test]
fn issue_8_2_kibana_csv_default_dates_give_the_same_verdicts_and_counts() {
    // Kibana's default date has no zone: requests are dated by their own START_TIME.
    let got = verdicts(&report(&[&export("kibana-discover.csv")]));
    assert_eq!(got, verdicts(&raw()));
    let destinations = got["destinations"].as_array().unwrap();
    assert!(destinations.iter().any(|d| d[1] == "blocked"), "{got}");
}

#[test]
fn issue_8_2_kibana_csv_rows_in_any_order_give_the_same_report() {
    let text = std::fs::read_to_string(export("kibana-discover-iso.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    lines.reverse();
    lines.rotate_left(5);
    let dir = tempfile::tempdir().unwrap();
    let shuffled = dir.path().join("shuffled.csv");
    std::fs::write(&shuffled, format!("{header}\n{}\n", lines.join("\n"))).unwrap();
    assert_eq!(
        essence(&report(&[&shuffled.to_string_lossy()])),
        essence(&report(&[&export("kibana-discover-iso.csv")]))
    );
}

#[test]
fn issue_8_2_kibana_csv_without_the_message_column_value_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-message.csv");
    std::fs::write(
        &file,
        "\"@timestamp\",\"kubernetes.pod.name\",message\n\"Nov 20, 2026 @ 10:00:00.000\",\"web-1\",-\n",
    )
    .unwrap();
    let out = run(&[&file.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-message.csv: line 2"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

const UNTIL: &str = "2026-11-20T12:00:00Z";

/// The raw lines judged over the window a direct query reads.
fn raw_until() -> Value {
    essence(&report(&[&export("raw-kubectl.log"), "--until", UNTIL]))
}

fn elastic_run(es: &FakeElastic, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let url = es.url();
    let mut cmd = strictly();
    cmd.arg("report")
        .args(["-n", "istioinaction", "-o", "json", "--threads", "2"])
        .args(["--elastic", &url, "--index", "logs-*", "--until", UNTIL])
        .args(extra)
        .env_remove("ELASTIC_API_KEY")
        .env_remove("ELASTIC_USER")
        .env_remove("ELASTIC_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("strictly runs")
}

fn elastic_report(es: &FakeElastic, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let out = elastic_run(es, extra, env);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no report over partial data");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

fn es_search() -> FakeElastic {
    FakeElastic::from_hits_file(&fixture("exports/es-search.json"))
}

#[test]
fn issue_8_3_point_in_time_pages_give_the_raw_lines_verdicts_and_counts() {
    let raw = raw_until();
    let es = es_search();
    // Pages of 1, 2 and 5: boundaries fall inside runs of equal timestamps.
    for size in ["1", "2", "5", "5000"] {
        let got = essence(&elastic_report(&es, &["--elastic-page-size", size], &[]));
        assert_eq!(got, raw, "page size {size}");
    }
    assert_eq!(es.open_contexts(), 0, "every point in time closed");
    let requests = es.requests();
    assert!(
        requests[0].0 == "POST" && requests[0].1.starts_with("/logs-*/_pit?keep_alive="),
        "{requests:?}"
    );
    let search = requests
        .iter()
        .find(|r| r.1.starts_with("/_search?"))
        .unwrap();
    let body: Value = serde_json::from_str(&search.2).unwrap();
    // The window (24 h) and an hour's margin before it, to judge coverage.
    let range = &body["query"]["bool"]["filter"][0]["range"]["@timestamp"];
    assert_eq!(
        range["gte"],
        1_795_176_000_000_i64 - 86_400_000 - 3_600_000,
        "{body}"
    );
    assert_eq!(range["lte"], 1_795_176_000_000_i64, "{body}");
    assert_eq!(body["sort"][1], serde_json::json!({"_shard_doc": "asc"}));
    assert!(
        requests
            .iter()
            .any(|r| r.0 == "DELETE" && r.1.starts_with("/_pit"))
    );
}

#[test]
fn issue_8_3_without_point_in_time_a_scroll_reads_the_same() {
    let es = es_search();
    es.set_pit_supported(false);
    let got = essence(&elastic_report(&es, &["--elastic-page-size", "4"], &[]));
    assert_eq!(got, raw_until());
    let requests = es.requests();
    assert!(
        requests.iter().any(|r| r.1.contains("_search?scroll=")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.0 == "DELETE" && r.1.starts_with("/_search/scroll"))
    );
    assert_eq!(es.open_contexts(), 0);
}

#[test]
fn issue_8_3_fluent_bit_documents_are_detected() {
    let es = FakeElastic::from_sources_file(&fixture("exports/elasticdump-source-only.ndjson"));
    assert_eq!(essence(&elastic_report(&es, &[], &[])), raw_until());
}

#[test]
fn issue_8_3_field_names_can_be_given() {
    // Only the container named by a custom field: the documents' Filebeat field is ignored.
    let es = es_search();
    let got = elastic_report(&es, &["--elastic-container-field", "stream"], &[]);
    // `stream` is `stdout` for every document: no line is the istio-proxy's.
    assert_eq!(got["input"]["requests"], 0, "{got}");
    assert_eq!(got["input"]["other_containers"], 22, "{got}");
}

#[test]
fn issue_8_3_api_key_and_basic_auth() {
    let es = es_search();
    es.require_api_key("a2V5OnNlY3JldA==");
    let err = one_line_error(&elastic_run(&es, &[], &[]));
    assert!(
        err.contains("401") && err.contains("ELASTIC_API_KEY"),
        "{err}"
    );
    let got = elastic_report(&es, &[], &[("ELASTIC_API_KEY", "a2V5OnNlY3JldA==")]);
    assert_eq!(essence(&got), raw_until());

    let es = es_search();
    es.require_basic("elastic", "changeme");
    let err = one_line_error(&elastic_run(
        &es,
        &[],
        &[("ELASTIC_USER", "elastic"), ("ELASTIC_PASSWORD", "wrong")],
    ));
    assert!(err.contains("401 Unauthorized"), "{err}");
    let got = elastic_report(
        &es,
        &[],
        &[
            ("ELASTIC_USER", "elastic"),
            ("ELASTIC_PASSWORD", "changeme"),
        ],
    );
    assert_eq!(essence(&got), raw_until());
}

#[test]
fn issue_8_3_429_then_success_is_retried() {
    let es = es_search();
    es.fail("/_search", 429, 1, 2);
    let got = essence(&elastic_report(&es, &["--elastic-page-size", "5"], &[]));
    assert_eq!(got, raw_until());
}

#[test]
fn issue_8_3_a_5xx_midway_is_exit_2_saying_how_far_it_read() {
    let es = es_search();
    es.fail("/_search", 503, 2, u32::MAX);
    let err = one_line_error(&elastic_run(&es, &["--elastic-page-size", "3"], &[]));
    assert!(err.contains("503 Service Unavailable"), "{err}");
    assert!(
        err.contains("read 6 entries (up to 2026-11-20T10:31:00.500Z)"),
        "{err}"
    );
    assert!(err.contains("no verdict"), "{err}");
}

#[test]
fn issue_8_3_a_store_that_is_down_is_one_line() {
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = strictly()
        .args([
            "report",
            "--elastic",
            &url,
            "--index",
            "logs-*",
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let err = one_line_error(&out);
    assert!(err.contains(&url) && err.contains("tries"), "{err}");
}

#[test]
fn issue_8_3_flags_that_do_not_apply_are_refused() {
    for args in [
        vec![
            "--elastic",
            "http://127.0.0.1:1",
            "--index",
            "x",
            "--input",
            "raw",
        ],
        vec!["--elastic", "http://127.0.0.1:1", "--index", "x", "-A"],
        vec![
            "--elastic",
            "http://127.0.0.1:1",
            "--index",
            "x",
            "--elastic-page-size",
            "10001",
        ],
        vec!["--elastic", "http://127.0.0.1:1"],
    ] {
        let out = strictly().arg("report").args(&args).output().unwrap();
        let err = one_line_error(&out);
        assert!(err.starts_with("strictly: error: "), "{err}");
    }
}

#[test]
fn issue_8_3_the_fake_refuses_from_size_past_the_result_window() {
    // The limit a from/size reader would hit: strictly pages with a point in time instead.
    let es = es_search();
    // strictly's reqwest has no crypto provider of its own (see src/source/elastic/http.rs).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/logs-*/_search", es.url()))
        .header("Content-Type", "application/json")
        .body(r#"{"from":9995,"size":10}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap().contains("Result window is too large"));
}

/// Destinations with their verdicts and request counts.
fn judged(r: &Value) -> Value {
    let d: Vec<Value> = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            serde_json::json!([
                d["destination"],
                d["verdict"],
                d["requests"],
                d["mtls"],
                d["plaintext"],
                d["audited"]
            ])
        })
        .collect();
    serde_json::json!({"requests": r["input"]["requests"], "destinations": d})
}

#[test]
fn issue_8_4_pushdown_gives_the_line_by_line_verdicts() {
    let es = es_search();
    let lines = elastic_report(&es, &["--log-format", "lab"], &[]);
    let lines_judged = judged(&lines);
    assert_eq!(lines["input"]["requests"], 16, "{lines}");
    // Pages of 2, 3 and 1000 buckets: after_key paging over every page boundary.
    for size in ["2", "3", "1000"] {
        let pushed = elastic_report(
            &es,
            &[
                "--log-format",
                "lab",
                "--pushdown",
                "--elastic-page-size",
                size,
            ],
            &[],
        );
        assert_eq!(judged(&pushed), lines_judged, "page size {size}: {pushed}");
        let hints = pushed["hints"].to_string();
        assert!(
            hints.contains("push-down") && hints.contains("whole hours"),
            "{hints}"
        );
        assert_eq!(pushed["input"]["other_containers"], 2, "{pushed}");
    }
    // No document was shipped: only aggregations were asked for.
    assert!(
        es.requests()
            .iter()
            .filter(|r| r.2.contains("composite"))
            .all(|r| r.2.contains("\"size\":0"))
    );
}

#[test]
fn issue_8_4_pushdown_fluent_bit_documents() {
    let es = FakeElastic::from_sources_file(&fixture("exports/elasticdump-source-only.ndjson"));
    let lines = judged(&elastic_report(&es, &["--log-format", "lab"], &[]));
    let pushed = judged(&elastic_report(
        &es,
        &["--log-format", "lab", "--pushdown"],
        &[],
    ));
    assert_eq!(pushed, lines);
}

#[test]
fn issue_8_4_explain_prints_the_request_and_sends_nothing() {
    let es = es_search();
    let out = elastic_run(
        &es,
        &["--log-format", "lab", "--pushdown", "--explain"],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (first, body) = text.split_once('\n').unwrap();
    assert_eq!(first, format!("POST {}/logs-*/_search", es.url()));
    let body: Value = serde_json::from_str(body).expect("the body is JSON");
    assert_eq!(body["runtime_mappings"]["strictly"]["type"], "composite");
    let script = body["runtime_mappings"]["strictly"]["script"]["source"]
        .as_str()
        .unwrap();
    assert!(script.contains("grok('\\\\A"), "{script}");
    let sources = body["aggs"]["strictly"]["composite"]["sources"].to_string();
    assert!(
        sources.contains("date_histogram") && sources.contains("strictly.PeerUriSan"),
        "{sources}"
    );
    assert!(es.requests().is_empty(), "--explain sends nothing");

    let out = elastic_run(&es, &["--explain"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("POST {}/_search\n", es.url())),
        "{text}"
    );
    assert!(text.contains("_shard_doc"), "{text}");
}

#[test]
fn issue_8_4_pushdown_needs_one_format() {
    let es = es_search();
    let err = one_line_error(&elastic_run(&es, &["--pushdown"], &[]));
    assert!(err.contains("--log-format"), "{err}");
}
