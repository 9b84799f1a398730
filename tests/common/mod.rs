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
