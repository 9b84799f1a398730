//! Issue 9 item 3: `strictly stats` judges a workload from two Envoy /stats
//! dumps (real /stats layout, the lab's counters), through the binary.

mod common;

use common::{fixture, strictly};
use serde_json::Value;

fn stats(args: &[&str], stdin: Option<Vec<u8>>) -> (Option<i32>, Value, String) {
    let mut cmd = strictly();
    cmd.arg("stats").args(args).args(["-o", "json"]);
    if let Some(b) = stdin {
        cmd.write_stdin(b);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), json, stderr)
}

fn path(name: &str) -> String {
    fixture(name).to_str().unwrap().to_string()
}

#[test]
fn issue_9_3_lab_plaintext_call_between_two_dumps_is_blocked() {
    let (code, r, err) = stats(
        &[
            "--destination",
            "istioinaction/web-api",
            &path("stats/lab-plaintext.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    let w = &r["workloads"][0];
    assert_eq!(w["workload"], "istioinaction/web-api");
    assert_eq!(w["verdict"], "blocked", "{r:#}");
    assert_eq!(w["plaintext_connections"], 1);
    assert_eq!(w["replicas"][0]["tls_not_found"], 2);
}

#[test]
fn issue_9_3_two_files_all_handshakes_are_ready_and_stdin_reads_the_same() {
    let (code, r, err) = stats(
        &[
            &path("stats/mtls-before.txt"),
            &path("stats/mtls-after.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(r["workloads"][0]["verdict"], "ready", "{r:#}");
    assert_eq!(r["workloads"][0]["tls_handshakes"], 30);
    let both = [
        std::fs::read(fixture("stats/mtls-before.txt")).unwrap(),
        std::fs::read(fixture("stats/mtls-after.txt")).unwrap(),
    ]
    .concat();
    let (code, piped, _) = stats(&[], Some(both));
    assert_eq!(code, Some(0));
    assert_eq!(piped["workloads"][0]["verdict"], "ready");
    assert_eq!(piped["workloads"][0]["tls_handshakes"], 30);
    // Too few handshakes for --min-requests: insufficient.
    let (code, r, _) = stats(
        &[
            "--min-requests",
            "31",
            &path("stats/mtls-before.txt"),
            &path("stats/mtls-after.txt"),
        ],
        None,
    );
    assert_eq!(code, Some(1));
    assert_eq!(r["workloads"][0]["verdict"], "insufficient");
}

#[test]
fn issue_9_3_stats_not_enabled_say_which_annotation_to_add() {
    let (code, r, _) = stats(&[&path("stats/not-enabled.txt")], None);
    assert_eq!(code, Some(1));
    assert_eq!(r["workloads"][0]["verdict"], "insufficient");
    let hint = r["hints"][0].as_str().unwrap();
    assert!(
        hint.contains(
            r#"sidecar.istio.io/statsInclusionPrefixes: "tls_inspector,listener.0.0.0.0_15006""#
        ),
        "{hint}"
    );
}

#[test]
fn issue_9_3_bad_input_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("access.log");
    std::fs::write(&bad, "[2026-11-20T10:00:00.000Z] \"GET / HTTP/1.1\" 200\n").unwrap();
    let (code, _, err) = stats(&[bad.to_str().unwrap()], None);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("strictly: error: "), "{err}");
    assert!(err.contains("access.log: line 1"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // One dump only: the interval needs two.
    let one = std::fs::read(fixture("stats/mtls-before.txt")).unwrap();
    let (code, _, err) = stats(&[], Some(one));
    assert_eq!(code, Some(2));
    assert!(err.contains("1 /stats dumps"), "{err}");
}
