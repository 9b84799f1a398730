//! The shipped samples against the generator's own ground truth: `strictly
//! report` must agree on every input total and every destination's verdict
//! and counts, in every envelope the samples use (kubectl --prefix
//! --timestamps, raw gzip in Istio's format, stern).

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

/// `view` is the truth's `destinations` (what a spec reader must say) or
/// `workloads` (the real per-workload answer, which strictly reaches for
/// Istio's format by telling replicas apart by `%DOWNSTREAM_LOCAL_ADDRESS%`
/// and naming the service from the mTLS client's SNI).
fn check(sample: &str, truth: &str, view: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample");
    let truth: Value = serde_json::from_slice(&std::fs::read(dir.join(truth)).unwrap()).unwrap();
    let out = Command::cargo_bin("strictly")
        .unwrap()
        .args(["report", "-o", "json"])
        .arg(dir.join(sample))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{sample}: exit code (blocked destinations)"
    );
    assert_eq!(report["window"], truth["window"], "{sample}: window");
    for key in [
        "lines",
        "requests",
        "outbound",
        "skipped",
        "malformed",
        "outside_window",
    ] {
        assert_eq!(
            report["input"][key], truth["input"][key],
            "{sample}: input.{key}"
        );
    }
    let want = truth[view].as_array().unwrap();
    let got = report["destinations"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{sample}: destinations {got:#?}");
    for w in want {
        let name = &w["destination"];
        let g = got
            .iter()
            .find(|g| &g["destination"] == name)
            .unwrap_or_else(|| panic!("{sample}: missing {name}"));
        for key in [
            "verdict",
            "requests",
            "mtls",
            "plaintext",
            "audited",
            "xfcc_forged",
            "last_plaintext",
        ] {
            assert_eq!(g[key], w[key], "{sample}: {name}.{key}");
        }
        assert_eq!(
            g["coverage"]["complete"], w["coverage_complete"],
            "{sample}: {name} coverage"
        );
        // Every plaintext peer of the truth appears as a source with its count.
        for peer in w["plaintext_peers"].as_array().into_iter().flatten() {
            let found = g["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["peer"] == peer["peer"] && s["plaintext"] == peer["requests"]);
            assert!(
                found,
                "{sample}: {name} lacks plaintext peer {peer} in {:#}",
                g["sources"]
            );
        }
    }
}

#[test]
fn kubectl_prefix_timestamps_sample_matches_its_truth() {
    check("mesh.log", "mesh.truth.json", "destinations");
}

#[test]
fn istio_format_gzip_sample_matches_its_truth() {
    check("mesh-istio.log.gz", "mesh-istio.truth.json", "workloads");
}

#[test]
fn stern_sample_matches_its_truth() {
    check("mesh-stern.log", "mesh-stern.truth.json", "destinations");
}
