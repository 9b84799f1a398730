//! `strictly report` as a user runs it: the binary on fixture files, its exit
//! codes and the JSON fields of the spec (§4, §5).

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn strictly() -> Command {
    Command::cargo_bin("strictly").expect("the strictly binary is built")
}

/// Runs `strictly report ARGS -o json`, returns (exit code, parsed JSON).
fn report_json(args: &[&str]) -> (i32, Value) {
    let out = strictly()
        .arg("report")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("strictly runs");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 JSON");
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), json)
}

/// `report_json` over `path` with the window `(12:00 - window, 12:00]` on 2026-11-20, plus `extra`.
fn report_until_noon(path: &Path, window: &str, extra: &[&str]) -> (i32, Value) {
    let base = [
        path.to_str().unwrap(),
        "--until",
        "2026-11-20T12:00:00Z",
        "--window",
        window,
    ];
    report_json(&[&base[..], extra].concat())
}

fn destination<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["destinations"]
        .as_array()
        .expect("destinations array")
        .iter()
        .find(|d| d["destination"] == name)
        .unwrap_or_else(|| panic!("no destination {name} in {report:#}"))
}

#[test]
fn the_labs_two_sample_lines_make_web_api_blocked() {
    let path = fixture("cases/lab-sample-lines.log");
    let (code, r) = report_json(&[path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(r["input"]["lines"], 2);
    assert_eq!(r["input"]["requests"], 2);
    assert_eq!(r["input"]["malformed"], 0);
    // The plaintext line names no destination; its stream names only web-api (rule 4).
    let d = destination(&r, "istioinaction/web-api");
    assert_eq!(d["verdict"], "blocked");
    assert_eq!(d["mtls"], 1);
    assert_eq!(d["plaintext"], 1);
    assert_eq!(d["audited"], 1);
    // A plaintext request counts when it ended: START_TIME 53.284 + DURATION 10 ms.
    assert_eq!(d["last_plaintext"], "2021-06-14T10:29:53.294Z");
    let sources = d["sources"].as_array().unwrap();
    assert!(sources.iter().any(|s| s["source"]
        == "spiffe://cluster.local/ns/istioinaction/sa/sleep"
        && s["requests"] == 1));
    assert!(
        sources
            .iter()
            .any(|s| s["source"] == "plaintext" && s["peer"].is_null() && s["plaintext"] == 1)
    );
}

#[test]
fn window_is_half_open_with_until() {
    let path = fixture("cases/window-edges.log");
    let (code, r) = report_until_noon(&path, "1h", &[]);
    assert_eq!(r["window"]["start"], "2026-11-20T11:00:00Z");
    assert_eq!(r["window"]["end"], "2026-11-20T12:00:00Z");
    assert_eq!(r["window"]["seconds"], 3600);
    let d = destination(&r, "istioinaction/web-api");
    // In: 11:00:00.001 … .010 and 12:00:00.000. Out: 10:59, 11:00:00.000 (start), 12:00:00.001.
    assert_eq!(d["mtls"], 11);
    assert_eq!(d["plaintext"], 0);
    assert_eq!(d["coverage"]["complete"], true);
    // The plaintext request that ended at the window's start (DURATION 0) does not block but is shown.
    assert_eq!(d["last_plaintext"], "2026-11-20T11:00:00Z");
    assert_eq!(r["input"]["outside_window"], 3);
    // The one started 1 ms after the end (ended at .008) is not this window's, but its caller may
    // still be plaintext: never ready (review F6).
    assert_eq!(d["plaintext_after_window"], "2026-11-20T12:00:00.008Z");
    assert_eq!(d["verdict"], "insufficient", "{d:#}");
    assert_eq!(code, 1);
}

#[test]
fn window_ends_at_the_newest_timestamp_without_until() {
    let path = fixture("cases/window-edges.log");
    let (code, r) = report_json(&[path.to_str().unwrap(), "--window", "1h"]);
    // Newest is 12:00:00.001, rounded up to the whole second.
    assert_eq!(r["window"]["end"], "2026-11-20T12:00:01Z");
    let d = destination(&r, "istioinaction/web-api");
    assert_eq!(d["verdict"], "blocked");
    assert_eq!(d["plaintext"], 1);
    assert_eq!(d["sources"][0]["peer"], "10.2.2.2");
    assert_eq!(code, 1);
}

#[test]
fn min_requests_makes_a_clean_destination_insufficient() {
    let path = fixture("cases/window-edges.log");
    let (code, r) = report_until_noon(&path, "1h", &["--min-requests", "12"]);
    let d = destination(&r, "istioinaction/web-api");
    assert_eq!(d["verdict"], "insufficient");
    assert!(
        d["reason"].as_str().unwrap().contains("11 mTLS"),
        "{}",
        d["reason"]
    );
    assert_eq!(code, 1);
}

#[test]
fn coverage_that_starts_inside_the_window_is_insufficient() {
    // 15 mTLS requests from 11:30 to 11:58: plenty, but a 1h window starts at 11:00.
    let path = fixture("cases/late-start.log");
    let (code, r) = report_until_noon(&path, "1h", &[]);
    let d = destination(&r, "istioinaction/web-api");
    assert_eq!(d["verdict"], "insufficient");
    assert_eq!(d["mtls"], 15);
    assert_eq!(d["coverage"]["complete"], false);
    // Coverage is a write time: START_TIME + DURATION (5 ms) of the first entry (issue 7 item 3).
    assert_eq!(d["coverage"]["start"], "2026-11-20T11:30:00.005Z");
    assert!(
        d["reason"].as_str().unwrap().contains("cover only 29m59s"),
        "{}",
        d["reason"]
    );
    assert_eq!(code, 1);
    // A 29m window is covered (the first entry was written at 11:30:00.005).
    let (code, r) = report_until_noon(&path, "29m", &[]);
    assert_eq!(destination(&r, "istioinaction/web-api")["verdict"], "ready");
    assert_eq!(code, 0);
}

#[test]
fn forged_xfcc_on_a_plaintext_connection_is_plaintext() {
    let path = fixture("cases/forged-xfcc.log");
    let (code, r) = report_json(&[path.to_str().unwrap()]);
    let d = destination(&r, "istioinaction/web-api");
    assert_eq!(d["verdict"], "blocked");
    assert_eq!(d["mtls"], 12);
    assert_eq!(d["plaintext"], 1);
    assert_eq!(d["xfcc_forged"], 1);
    let forged = d["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "plaintext")
        .unwrap();
    assert_eq!(forged["peer"], "10.44.0.9");
    assert_eq!(forged["xfcc_forged"], 1);
    assert_eq!(code, 1);
}

fn check_prefix_report(r: &Value, catalog: &str) {
    assert_eq!(r["input"]["lines"], 20);
    assert_eq!(r["input"]["skipped"], 3);
    assert_eq!(r["input"]["malformed"], 1);
    assert_eq!(r["input"]["requests"], 16);
    assert_eq!(
        r["input"]["malformed_examples"].as_array().unwrap().len(),
        1
    );
    let web = destination(r, "istioinaction/web-api");
    assert_eq!(web["verdict"], "blocked");
    assert_eq!(
        (web["mtls"].as_u64(), web["plaintext"].as_u64()),
        (Some(12), Some(1))
    );
    assert_eq!(web["last_plaintext"], "2026-11-20T11:40:00.123Z");
    let pt = &web["sources"][0];
    assert_eq!(
        (pt["source"].as_str(), pt["peer"].as_str()),
        (Some("plaintext"), Some("10.44.0.7"))
    );
    let cat = destination(r, catalog);
    assert_eq!(cat["verdict"], "blocked");
    assert_eq!(cat["plaintext"], 3);
    assert_eq!(cat["audited"], 3);
}

#[test]
fn kubectl_prefix_and_timestamps_attribute_per_pod() {
    let path = fixture("cases/prefix-timestamps.log");
    let (code, r) = report_until_noon(&path, "2h", &["-n", "istioinaction"]);
    check_prefix_report(&r, "istioinaction/catalog");
    let examples = r["input"]["malformed_examples"][0].as_str().unwrap();
    assert!(examples.contains("prefix-timestamps.log:"), "{examples}");
    assert_eq!(code, 1);
}

#[test]
fn prefix_without_namespace_learns_it_from_the_pods_own_mtls_lines() {
    let path = fixture("cases/prefix-timestamps.log");
    let (_, r) = report_until_noon(&path, "2h", &[]);
    check_prefix_report(&r, "unknown/catalog");
    assert!(
        destination(&r, "unknown/catalog")["hint"]
            .as_str()
            .unwrap()
            .contains("-n")
    );
}

#[test]
fn stern_output_reads_like_kubectl_prefix() {
    let path = fixture("cases/stern-timestamps.log");
    let (_, r) = report_until_noon(&path, "2h", &["-n", "istioinaction"]);
    check_prefix_report(&r, "istioinaction/catalog");
}

#[test]
fn gzip_is_detected_by_content_and_stdin_works() {
    let plain = std::fs::read(fixture("cases/prefix-timestamps.log")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("no-gz-suffix.log");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::default(),
    );
    enc.write_all(&plain).unwrap();
    enc.finish().unwrap();
    let args = [
        gz.to_str().unwrap(),
        "--until",
        "2026-11-20T12:00:00Z",
        "--window",
        "2h",
        "-n",
        "istioinaction",
    ];
    let (_, from_gz) = report_json(&args);
    check_prefix_report(&from_gz, "istioinaction/catalog");

    let out = strictly()
        .args([
            "report",
            "-o",
            "json",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "2h",
            "-n",
            "istioinaction",
        ])
        .write_stdin(plain)
        .output()
        .unwrap();
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin["destinations"], from_gz["destinations"]);
}

#[test]
fn thread_count_does_not_change_the_report() {
    let path = fixture("cases/prefix-timestamps.log");
    let base = [
        path.to_str().unwrap(),
        "--until",
        "2026-11-20T12:00:00Z",
        "--window",
        "2h",
    ];
    let (_, one) = report_json(&[&base[..], &["--threads", "1"]].concat());
    let (_, four) = report_json(&[&base[..], &["--threads", "4"]].concat());
    assert_eq!(one, four);
}

#[test]
fn table_output_names_verdicts_and_plaintext_callers() {
    let path = fixture("cases/prefix-timestamps.log");
    let out = strictly()
        .args([
            "report",
            "-o",
            "table",
            "-n",
            "istioinaction",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "2h",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("DESTINATION"), "{text}");
    assert!(text.contains("istioinaction/web-api"), "{text}");
    assert!(text.contains("← 10.44.0.7"), "{text}");
    assert!(text.contains("2 destinations: 2 blocked"), "{text}");
    assert!(!text.contains('\x1b'), "no colour off a terminal: {text}");
}

#[test]
fn usage_and_input_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&["report", "no/such/file.log"], "no/such/file.log"),
        (&["report", "--window", "soon", "-"], "--window"),
        (&["report", "--until", "yesterday", "-"], "--until"),
        (
            &["report", "--destination", "web-api", "-"],
            "--destination",
        ),
        (&["report", "--log-format", "[%START_TIME", "-"], "column"),
        (&["report", "--log-format", "nope", "-"], "nope"),
        (&["report", "--frobnicate"], "--frobnicate"),
    ];
    for (args, needle) in cases {
        let out = strictly().args(*args).write_stdin("").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        if !args.contains(&"--frobnicate") {
            assert_eq!(
                err.trim_end().lines().count(),
                1,
                "{args:?}: one line: {err}"
            );
        }
    }
}

#[test]
fn no_inbound_request_is_not_ready() {
    let (code, r) = report_json(&["-"]);
    assert_eq!(r["destinations"].as_array().unwrap().len(), 0);
    assert_eq!(code, 1);
}

#[test]
fn help_shows_examples() {
    let out = strictly().args(["report", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Examples:") && text.contains("kubectl logs"),
        "{text}"
    );
    assert!(text.contains("Exit status"), "{text}");
}

#[test]
fn every_built_in_format_reads_its_sample_completely() {
    // fixtures/bench/F.log: 1000 raw access lines of format F from strictly-sample,
    // and 3 more cut short mid-line (its default --malformed 3).
    for name in ["lab", "lab-v0", "lab-cert", "istio", "istio-json"] {
        let path = fixture(&format!("bench/{name}.log"));
        for chosen in ["auto", name] {
            let (_, r) = report_json(&[path.to_str().unwrap(), "--log-format", chosen]);
            let i = &r["input"];
            assert_eq!(i["lines"], 1003, "{name} as {chosen}: {i:#}");
            assert_eq!(i["malformed"], 3, "{name} as {chosen}: {i:#}");
            assert_eq!(i["skipped"], 0, "{name} as {chosen}: {i:#}");
            let entries = i["requests"].as_u64().unwrap() + i["outbound"].as_u64().unwrap();
            assert_eq!(entries, 1000, "{name} as {chosen}: {i:#}");
            assert!(
                !r["destinations"].as_array().unwrap().is_empty(),
                "{name} as {chosen}"
            );
        }
    }
}

#[test]
fn a_named_format_that_does_not_fit_makes_lines_malformed_not_requests() {
    let path = fixture("bench/lab.log");
    let (_, r) = report_json(&[path.to_str().unwrap(), "--log-format", "istio"]);
    assert_eq!(r["input"]["requests"], 0);
    assert_eq!(r["input"]["malformed"], 1003);
    assert_eq!(
        r["input"]["malformed_examples"].as_array().unwrap().len(),
        5
    );
}

#[test]
fn log_format_file_takes_the_format_from_the_labs_envoyfilter() {
    let filter = fixture("formats/files/lab-envoyfilter.yaml");
    let path = fixture("cases/lab-sample-lines.log");
    let (_, r) = report_json(&[
        path.to_str().unwrap(),
        "--log-format-file",
        filter.to_str().unwrap(),
    ]);
    // The lab's EnvoyFilter format is the second sample line's order: the first
    // line (the lab's older order) does not fit it and is malformed.
    assert_eq!(r["input"]["requests"], 1, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 1);
    let out = strictly()
        .args(["report", "--log-format-file", "no/such/filter.yaml", "-"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no/such/filter.yaml"));
}

#[test]
fn custom_format_string_on_the_command_line() {
    let format = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAN%" mTLS_Destination: "%DOWNSTREAM_LOCAL_URI_SAN%" cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" audit_flag: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%""#;
    let path = fixture("cases/forged-xfcc.log");
    let (code, r) = report_json(&[path.to_str().unwrap(), "--log-format", format]);
    assert_eq!(code, 1);
    assert_eq!(destination(&r, "istioinaction/web-api")["xfcc_forged"], 1);
    // A format that logs nothing about the connection cannot judge: exit 2.
    let out = strictly()
        .args([
            "report",
            "--log-format",
            "[%START_TIME%] %RESPONSE_CODE%",
            "-",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot tell mTLS from plaintext"));
}

#[test]
fn hostile_bytes_are_counted_not_fatal() {
    let good = std::fs::read(fixture("cases/late-start.log")).unwrap();
    let mut input = Vec::new();
    input.extend_from_slice(b"\xff\xfe not utf-8 at all \x80\n");
    input.extend_from_slice(b"\n\r\n");
    // CRLF line endings on real entries.
    for line in good.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        input.extend_from_slice(line);
        input.extend_from_slice(b"\r\n");
    }
    // A 10 MB line that starts like an access entry: malformed, memory bounded.
    input.extend_from_slice(b"[2026-11-20T11:59:00.000Z] \"GET /");
    input.extend(std::iter::repeat_n(b'a', 10 << 20));
    input.push(b'\n');
    // Invalid UTF-8 inside an access entry's free-text field still parses.
    let first = &good[..good.iter().position(|&b| b == b'\n').unwrap()];
    let at = first.windows(6).position(|w| w == b"GET / ").unwrap() + 5;
    input.extend_from_slice(&[&first[..at], b"\xff\xfe", &first[at..]].concat());
    // Read from a file, the hostile input gives the same report as from stdin.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostile.log");
    std::fs::write(&file, &input).unwrap();
    let out = strictly()
        .args([
            "report",
            "-o",
            "json",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "29m",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let from_file: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file_example = from_file["input"]["malformed_examples"][0]
        .as_str()
        .unwrap();
    assert!(file_example.contains("hostile.log:19: "), "{file_example}");
    let out = strictly()
        .args([
            "report",
            "-o",
            "json",
            "--until",
            "2026-11-20T12:00:00Z",
            "--window",
            "29m",
        ])
        .write_stdin(input)
        .output()
        .unwrap();
    // Counted, not fatal: the report is whole, and the damaged entry in the
    // window (it may be plaintext) keeps the destination from ready (F3).
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin["destinations"], from_file["destinations"]);
    let d = &from_stdin["destinations"][0];
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("malformed"), "{d}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["lines"], 15 + 3 + 1 + 1);
    assert_eq!(r["input"]["requests"], 16);
    assert_eq!(r["input"]["malformed"], 1);
    assert_eq!(r["input"]["skipped"], 3);
    let example = r["input"]["malformed_examples"][0].as_str().unwrap();
    assert!(
        example.starts_with("<stdin>:19: [2026-11-20T11:59:00.000Z]"),
        "{example}"
    );
    assert!(example.len() < 400, "examples are cut short");
    assert_eq!(r["destinations"], from_file["destinations"]);
    assert_eq!(r["input"]["lines"], from_file["input"]["lines"]);
}

#[test]
fn color_always_colours_the_verdicts() {
    let out = strictly()
        .args(["report", "-o", "table", "--color", "always"])
        .arg(fixture("cases/forged-xfcc.log"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\x1b["), "{text}");
}

#[test]
fn broken_pipe_on_stdout_exits_quietly() {
    use std::process::{Command as Std, Stdio};
    let mut child = Std::new(assert_cmd::cargo::cargo_bin("strictly"))
        .args(["report", "-o", "json"])
        .arg(fixture("sample/mesh.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{:?} {err}",
        out.status
    );
}
