//! Issue 7, the format compiler and line matching, through the binary: which
//! format reads a line, which format strings and files are refused, and what
//! a line that fits no format becomes.

use std::io::Write;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn strictly() -> Command {
    Command::cargo_bin("strictly").expect("the strictly binary is built")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Writes `lines` (one per entry, `\n`-terminated) to a temporary file.
fn log_file(lines: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f
}

/// Runs `strictly report ARGS -o json`; returns (exit code, JSON, stderr).
fn report(args: &[&str]) -> (i32, Value, String) {
    let out = strictly()
        .arg("report")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("strictly runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().expect("exit code"), json, stderr)
}

/// Runs `strictly ARGS` expecting a usage/input error; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = strictly().args(args).write_stdin("").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("strictly: error: "), "{err}");
    err
}

const SLEEP: &str = "spiffe://cluster.local/ns/istioinaction/sa/sleep";
const WEB_API: &str = "spiffe://cluster.local/ns/istioinaction/sa/web-api";

/// A `lab-cert` line at minute `m` whose XFCC is the sleep workload's (mTLS).
fn lab_cert_mtls(m: u32) -> String {
    format!(
        r#"[2026-11-20T11:{m:02}:00.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 5 10 "-" cert: "By={WEB_API};Hash=cd;Subject="";URI={SLEEP}" audit_flag: "false""#
    )
}

/// A `lab` plaintext line (no client certificate) whose client forged an XFCC header.
fn lab_plaintext_forged_xfcc(m: u32) -> String {
    format!(
        r#"[2026-11-20T11:{m:02}:30.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "10.44.0.9" mTLS_Origin: "-" mTLS_Destination: "-" cert: "By={WEB_API};Hash=ab;Subject="";URI={SLEEP}" audit_flag: "true""#
    )
}

fn only_destination(r: &Value) -> &Value {
    let d = r["destinations"].as_array().expect("destinations");
    assert_eq!(d.len(), 1, "{r:#}");
    &d[0]
}

#[test]
fn issue_7_2_a_looser_format_does_not_win_after_a_lab_cert_line() {
    // lab-cert lines first, then plaintext lab lines with a forged XFCC: each
    // stream's earlier lines used to make lab-cert read them (as mTLS).
    let mut lines: Vec<String> = (0..20).map(lab_cert_mtls).collect();
    lines.extend((20..25).map(lab_plaintext_forged_xfcc));
    let file = log_file(&lines);
    let path = file.path().to_str().unwrap();
    let base = [
        path,
        "--destination",
        "istioinaction/web-api",
        "--until",
        "2026-11-20T12:00:00Z",
        "--window",
        "2h",
    ];
    let mut outputs = Vec::new();
    for threads in ["1", "2", "4"] {
        let (code, r, _) = report(&[&base[..], &["--threads", threads]].concat());
        let d = only_destination(&r);
        assert_eq!(d["plaintext"], 5, "{threads} threads: {d:#}");
        assert_eq!(d["mtls"], 20, "{threads} threads: {d:#}");
        assert_eq!(d["verdict"], "blocked", "{threads} threads: {d:#}");
        assert_eq!(code, 1);
        outputs.push(r);
    }
    assert!(
        outputs.windows(2).all(|w| w[0] == w[1]),
        "same report for any thread count"
    );
    // The order of the lines does not matter either.
    lines.reverse();
    let reversed = log_file(&lines);
    let (_, r, _) = report(&[&[reversed.path().to_str().unwrap()][..], &base[1..]].concat());
    assert_eq!(only_destination(&r)["plaintext"], 5);
}

#[test]
fn issue_7_2_a_peer_san_forged_in_x_forwarded_for_is_not_mtls() {
    // The client put a whole mTLS tail in X-Forwarded-For; Envoy's own says `-`.
    let forged = format!(
        r#"[2026-11-20T11:30:00.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "-" mTLS_Origin: "{SLEEP}" mTLS_Destination: "{WEB_API}" cert: "x" audit_flag: "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "-""#
    );
    let file = log_file(&[forged]);
    let (_, r, _) = report(&[
        file.path().to_str().unwrap(),
        "--destination",
        "istioinaction/web-api",
    ]);
    assert_eq!(r["input"]["requests"], 0, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 1, "{:#}", r["input"]);
}

#[test]
fn issue_7_4_an_extra_trailing_field_is_not_absorbed_into_the_audit_hint() {
    // Envoy's hint is `true`, `false` or `-`: an extra field after it does not
    // become part of it (the line does not fit the format: malformed).
    let line = format!("{} extra: \"x\"", lab_plaintext_forged_xfcc(10));
    let cut = lab_plaintext_forged_xfcc(11).replace(r#"audit_flag: "true""#, r#"audit_flag: ""#);
    let ok = lab_plaintext_forged_xfcc(12);
    let file = log_file(&[line, cut, ok]);
    let (_, r, _) = report(&[file.path().to_str().unwrap(), "--log-format", "lab"]);
    assert_eq!(r["input"]["requests"], 1, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 2, "{:#}", r["input"]);
    assert_eq!(only_destination(&r)["audited"], 1);
}

#[test]
fn issue_7_4_a_line_cut_after_a_trailing_free_text_field_is_malformed() {
    let format = r#"[%START_TIME%] "%REQ(:METHOD)%" "%REQ(X-FORWARDED-FOR)%" peer: "%DOWNSTREAM_PEER_URI_SAN%""#;
    let full = format!(r#"[2026-11-20T11:30:00.000Z] "GET" "-" peer: "{SLEEP}""#);
    let cut = r#"[2026-11-20T11:30:00.000Z] "GET" "-" peer: ""#.to_string();
    let file = log_file(&[full, cut]);
    let (_, r, _) = report(&[
        file.path().to_str().unwrap(),
        "--log-format",
        format,
        "--destination",
        "istioinaction/web-api",
    ]);
    assert_eq!(r["input"]["requests"], 1, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 1, "{:#}", r["input"]);
}

#[test]
fn issue_7_5_unknown_operators_are_refused_with_a_suggestion() {
    let err = refused(&[
        "report",
        "--log-format",
        r#"[%START_TIME%] mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAM%""#,
        "-",
    ]);
    assert!(
        err.contains("%DOWNSTREAM_PEER_URI_SAM%")
            && err.contains("did you mean %DOWNSTREAM_PEER_URI_SAN%")
            && err.contains("column 30"),
        "{err}"
    );
    let err = refused(&[
        "report",
        "--log-format",
        "%START_TIME% %FOO_BAR% %DOWNSTREAM_PEER_URI_SAN%",
        "-",
    ]);
    assert!(
        err.contains("unknown operator %FOO_BAR%") && err.contains("column 14"),
        "{err}"
    );
}

#[test]
fn issue_7_5_adjacent_operators_are_refused_quickly() {
    let err = refused(&[
        "report",
        "--log-format",
        "%START_TIME% %DOWNSTREAM_PEER_URI_SAN%%REQ(X-FORWARDED-CLIENT-CERT)%",
        "-",
    ]);
    assert!(err.contains("no text between them"), "{err}");
    let many = format!("{}%DOWNSTREAM_PEER_URI_SAN%", "%PROTOCOL%".repeat(2000));
    let t = std::time::Instant::now();
    refused(&["report", "--log-format", &many, "-"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn issue_7_5_the_fixture_format_files_still_load() {
    let log = fixture("cases/lab-sample-lines.log");
    for file in [
        "lab-envoyfilter.yaml",
        "envoyfilter-v3.yaml",
        "extension-providers.yaml",
        "istio-configmap.yaml",
        "istio-operator.yaml",
        "mesh-config-json.yaml",
        "plain.txt",
        "quoted.txt",
    ] {
        let path = fixture(&format!("formats/files/{file}"));
        let out = strictly()
            .args(["report", "-o", "json", "--log-format-file"])
            .arg(&path)
            .arg(&log)
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(2),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn issue_7_14_non_ascii_after_percent_in_start_time_does_not_panic() {
    let format = "[%START_TIME(%é%Y)%] %DOWNSTREAM_PEER_URI_SAN%";
    let out = strictly()
        .args(["report", "-o", "json", "--log-format", format, "-"])
        .write_stdin("[x] y\n")
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0..=2)), "{out:?}");
    // The same from a format file and from a JSON format.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{format}").unwrap();
    let mut json = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        json,
        "accessLogEncoding: JSON\naccessLogFormat: '{{\"start_time\": \"%START_TIME(%\u{1F600}%s)%\", \"peer\": \"%DOWNSTREAM_PEER_URI_SAN%\"}}'"
    )
    .unwrap();
    for f in [file.path(), json.path()] {
        let out = strictly()
            .args(["report", "-o", "json", "--log-format-file"])
            .arg(f)
            .arg("-")
            .write_stdin("{\"start_time\": \"x\"}\n")
            .output()
            .unwrap();
        assert!(matches!(out.status.code(), Some(0..=2)), "{out:?}");
    }
}

#[test]
fn issue_7_10_an_invalid_start_time_is_malformed_not_a_request() {
    let good = lab_plaintext_forged_xfcc(10);
    let bad = good.replace("2026-11-20T11:10:30.000Z", "2026-13-45T99:99:99.000Z");
    let file = log_file(&[good, bad]);
    let (_, r, _) = report(&[file.path().to_str().unwrap(), "--log-format", "lab"]);
    assert_eq!(r["input"]["requests"], 1, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 1, "{:#}", r["input"]);
}

#[test]
fn issue_7_16_format_files_are_bounded_with_a_one_line_error() {
    // /dev/zero never ends: read at most a few MiB, then refuse naming the file.
    let t = std::time::Instant::now();
    let err = refused(&["report", "--log-format-file", "/dev/zero", "-"]);
    assert!(err.contains("/dev/zero") && err.contains("MiB"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(10));

    // Flow maps nested 100,000 deep.
    let mut deep = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        deep,
        "a: {}1{}",
        "{b: ".repeat(100_000),
        "}".repeat(100_000)
    )
    .unwrap();
    let t = std::time::Instant::now();
    let err = refused(&[
        "report",
        "--log-format-file",
        deep.path().to_str().unwrap(),
        "-",
    ]);
    assert!(
        err.contains("nested") && err.contains(deep.path().to_str().unwrap()),
        "{err}"
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(10));

    // Thousands of distinct formats: every line would be tried against each.
    let mut many = tempfile::NamedTempFile::new().unwrap();
    for i in 0..5000 {
        writeln!(many, "%START_TIME% {i} %DOWNSTREAM_PEER_URI_SAN%").unwrap();
    }
    let err = refused(&[
        "report",
        "--log-format-file",
        many.path().to_str().unwrap(),
        "-",
    ]);
    assert!(err.contains("at most 64"), "{err}");

    // `mesh: |` strings nested inside each other.
    let mut text = "accessLogFormat: '%START_TIME% %DOWNSTREAM_PEER_URI_SAN%'\n".to_string();
    for _ in 0..6 {
        let indented: String = text.lines().map(|l| format!("  {l}\n")).collect();
        text = format!("mesh: |\n{indented}");
    }
    let mut nested = tempfile::NamedTempFile::new().unwrap();
    write!(nested, "{text}").unwrap();
    let err = refused(&[
        "report",
        "--log-format-file",
        nested.path().to_str().unwrap(),
        "-",
    ]);
    assert!(err.contains("mesh"), "{err}");
}

#[test]
fn issue_7_26_a_format_that_fits_no_line_names_the_field_and_column() {
    // The lab's lines read with a user format that expects a number where the
    // lab logs `"GET / HTTP/1.1"`: every access line is malformed (not skipped)
    // and stderr says which operator breaks, and where.
    let format = r#"[%START_TIME%] %RESPONSE_CODE% "%REQ(X-FORWARDED-FOR)%" mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAN%""#;
    let log = fixture("cases/lab-sample-lines.log");
    let (_, r, err) = report(&[log.to_str().unwrap(), "--log-format", format]);
    assert_eq!(r["input"]["requests"], 0, "{:#}", r["input"]);
    assert_eq!(r["input"]["skipped"], 0, "{:#}", r["input"]);
    assert_eq!(r["input"]["malformed"], 2, "{:#}", r["input"]);
    let warning = err
        .lines()
        .find(|l| l.starts_with("strictly: warning:") && l.contains("does not fit"))
        .unwrap_or_else(|| panic!("no misfit warning: {err}"));
    assert!(
        warning.contains("%RESPONSE_CODE%")
            && warning.contains("column 28")
            && warning.contains("lab-sample-lines.log:1"),
        "{warning}"
    );

    // A format that does not even begin like the lines: still malformed, not skipped.
    let (_, r, err) = report(&[
        log.to_str().unwrap(),
        "--log-format",
        "%START_TIME% %DOWNSTREAM_PEER_URI_SAN%",
    ]);
    assert_eq!(r["input"]["malformed"], 2, "{:#}", r["input"]);
    assert_eq!(r["input"]["skipped"], 0, "{:#}", r["input"]);
    assert!(
        err.contains("%START_TIME%") && err.contains("column 1"),
        "{err}"
    );
}
