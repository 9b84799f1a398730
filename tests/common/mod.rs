//! Small helpers the binary-level tests share; a test file includes them with `mod common;`.

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A file under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The `strictly` binary, as a user runs it.
pub fn strictly() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("strictly").expect("the strictly binary is built")
}

/// The destination named `name` in a JSON report (panics with the report if missing).
pub fn destination<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .find(|d| d["destination"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
}

/// A report's input counts (not the examples, which name the input) and its
/// destinations; a stream is named without the namespace, which kubectl's
/// prefix cannot name and exports and stores do. Equal essences: the same
/// evidence, read two ways.
pub fn essence(r: &Value) -> Value {
    let mut input = r["input"].clone();
    input.as_object_mut().unwrap().remove("malformed_examples");
    let mut destinations = r["destinations"].clone();
    for d in destinations.as_array_mut().unwrap() {
        for s in d["coverage"]["short"].as_array_mut().into_iter().flatten() {
            let name = s["stream"].as_str().unwrap();
            s["stream"] = name.trim_start_matches("istioinaction/").into();
        }
    }
    serde_json::json!({"window": r["window"], "input": input, "destinations": destinations})
}

/// Verdicts and counts only (for inputs whose write times are coarser or absent).
pub fn verdicts(r: &Value) -> Value {
    let mut input = r["input"].clone();
    input.as_object_mut().unwrap().remove("malformed_examples");
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
    serde_json::json!({"input": input, "destinations": d})
}

/// `strictly report -n istioinaction -o json --threads 2 ARGS`: the namespace
/// kubectl's prefix and logcli's common labels leave out.
pub fn istioinaction_run(args: &[&str]) -> std::process::Output {
    strictly()
        .arg("report")
        .args(["-n", "istioinaction", "-o", "json", "--threads", "2"])
        .args(args)
        .output()
        .expect("strictly runs")
}

/// [`istioinaction_run`]'s JSON report, which must exit 0 or 1.
pub fn istioinaction_report(args: &[&str]) -> Value {
    let out = istioinaction_run(args);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: exit {:?}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}
