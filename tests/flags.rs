//! Issue 7 items 7, 10 and 25: flags that would judge on no evidence, times
//! that cannot be, and usage errors in one line.

mod common;

use common::fixture;

use assert_cmd::Command;
use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("strictly")
        .unwrap()
        .arg("report")
        .args(args)
        .output()
        .unwrap()
}

/// Exit 2 and exactly one line on stderr, `strictly: error: …` with every needle.
fn assert_usage_error(args: &[&str], needles: &[&str]) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    assert!(err.starts_with("strictly: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} in {err}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn issue_7_7_min_requests_zero_is_refused() {
    let f = fixture("cases/window-edges.log");
    let f = f.to_str().unwrap();
    assert_usage_error(
        &[f, "--min-requests", "0"],
        &["--min-requests", "at least 1"],
    );
    assert_usage_error(&[f, "--min-requests", "-3"], &["--min-requests"]);
}

#[test]
fn issue_7_10_window_and_until_bounds() {
    let f = fixture("cases/window-edges.log");
    let f = f.to_str().unwrap();
    assert_usage_error(
        &[f, "--window", "500ms"],
        &["--window", "shorter than a second"],
    );
    assert_usage_error(
        &[f, "--window", "11000d"],
        &["--window", "longer than 10 years"],
    );
    assert_usage_error(&[f, "--since", "1.2.3h"], &["--since"]);
    assert_usage_error(
        &[f, "--until", "1969-12-31T00:00:00Z"],
        &["--until", "before 1970"],
    );
    assert_usage_error(&[f, "--until", "2026-02-31T00:00:00Z"], &["--until"]);
    // Fractions are accepted: 1.5h is 90 minutes.
    let out = run(&[f, "-o", "json", "--window", "1.5h"]);
    assert!(
        out.status.code().unwrap() < 2,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["window"]["seconds"], 5400);
}

#[test]
fn issue_7_10_impossible_dates_are_malformed_and_outputs_stay_rfc3339() {
    let good = std::fs::read_to_string(fixture("cases/late-start.log")).unwrap();
    let first = good.lines().next().unwrap();
    let mut log = good.clone();
    for bad in [
        "2026-13-45T99:99:99.000Z",
        "2026-02-31T10:00:00.000Z",
        "9999-12-31T23:59:59.000Z",
    ] {
        log.push_str(&first.replacen("2026-11-20T11:30:00.000Z", bad, 1));
        log.push('\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dates.log");
    std::fs::write(&path, log).unwrap();
    let out = run(&[path.to_str().unwrap(), "-o", "json"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["input"]["malformed"], 3, "{}", r["input"]);
    assert_eq!(r["input"]["requests"], 15);
    assert!(
        r["window"]["end"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-20T"),
        "{}",
        r["window"]
    );
    // --until at the end of 9999 still writes a plain RFC 3339 year.
    let out = run(&[
        path.to_str().unwrap(),
        "-o",
        "json",
        "--until",
        "9999-12-31T23:59:59Z",
        "--window",
        "3650d",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let end = r["window"]["end"].as_str().unwrap();
    assert_eq!(end, "9999-12-31T23:59:59Z");
}

#[test]
fn issue_7_10_a_start_time_without_a_date_takes_the_write_time() {
    // kubectl --timestamps gives the write time; the format logs only %H:%M:%S.
    let mut log = String::new();
    for m in 0..12 {
        log.push_str(&format!(
            "2026-11-20T11:{m:02}:00.500000000Z [11:{m:02}:00] peer=spiffe://cluster.local/ns/a/sa/caller\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timeonly.log");
    std::fs::write(&path, log).unwrap();
    let out = run(&[
        path.to_str().unwrap(),
        "-o",
        "json",
        "--log-format",
        "[%START_TIME(%H:%M:%S)%] peer=%DOWNSTREAM_PEER_URI_SAN%",
        "--destination",
        "a/app",
        "--window",
        "10m",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    // A date-less time would count in every window; the write time counts 10 of 12.
    assert_eq!(
        r["window"]["end"], "2026-11-20T11:11:01Z",
        "{}",
        r["window"]
    );
    assert_eq!(r["destinations"][0]["mtls"], 10, "{}", r["destinations"][0]);
    let hints = r["hints"].as_array().unwrap();
    assert!(
        hints
            .iter()
            .any(|h| h.as_str().unwrap().contains("without a date")),
        "{hints:?}"
    );
}

#[test]
fn issue_7_25_negative_and_unknown_flags_are_one_line() {
    let f = fixture("cases/window-edges.log");
    let f = f.to_str().unwrap();
    assert_usage_error(&[f, "--window", "-1h"], &["--window", "positive"]);
    assert_usage_error(&[f, "--since", "-2h"], &["--since", "positive"]);
    assert_usage_error(&[f, "--bogus"], &["--bogus"]);
    assert_usage_error(&[f, "-o", "yaml"], &["yaml"]);
}
