//! Issue 8 item 2: exports from log stores and log tools, auto-detected per
//! input (`--input KIND` to force). Every fixture under `fixtures/exports/`
//! holds the same entries as `raw-kubectl.log` (kubectl logs --all-containers
//! --prefix --timestamps), written as the tool writes them (see the README
//! there), and must give the same verdicts and counts.
mod common;

use std::path::{Path, PathBuf};

use common::{essence, istioinaction_report as report, istioinaction_run as run, verdicts};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/exports")
        .join(name)
}

fn path(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

/// Every export with millisecond (or finer) write times and full metadata.
const SAME_AS_RAW: &[&str] = &[
    "logcli.jsonl",
    "loki-query-range.json",
    "loki-query-range-categorized.json",
    "loki-tail.ndjson",
    "es-search.json",
    "es6-search-fluentd.json",
    "es-scroll-pages.json",
    "elasticdump.ndjson",
    "elasticdump-source-only.ndjson",
    "stern-extjson.log",
    "stern-all-namespaces.log",
];

#[test]
fn the_raw_lines_are_what_the_exports_are_compared_with() {
    let raw = report(&[&path("raw-kubectl.log")]);
    let input = &raw["input"];
    assert_eq!(input["lines"], 22);
    assert_eq!(input["requests"], 16);
    assert_eq!(input["other_containers"], 2, "{input}");
    assert_eq!(input["malformed"], 1);
    let verdicts: Vec<(&str, &str)> = raw["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["destination"].as_str().unwrap(),
                d["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("istioinaction/catalog", "blocked"),
            ("istioinaction/web-api", "blocked")
        ]
    );
}

#[test]
fn every_export_gives_the_verdicts_and_counts_of_the_raw_lines() {
    let raw = essence(&report(&[&path("raw-kubectl.log")]));
    for name in SAME_AS_RAW {
        let got = essence(&report(&[&path(name)]));
        assert_eq!(got, raw, "{name}");
    }
}

#[test]
fn logcli_default_at_second_precision_gives_the_same_verdicts_and_counts() {
    let raw = verdicts(&report(&[&path("raw-kubectl.log")]));
    assert_eq!(verdicts(&report(&[&path("logcli-default.log")])), raw);
}

#[test]
fn raw_exports_without_metadata_read_as_raw_lines() {
    // logcli -o raw and stern -o raw carry no pod: the same as each other, every line counted.
    let logcli = verdicts(&report(&[&path("logcli-raw.log")]));
    let stern = verdicts(&report(&[&path("stern-raw.log")]));
    assert_eq!(logcli, stern);
    assert_eq!(logcli["input"]["requests"], 16);
}

#[test]
fn forcing_the_kind_reads_the_same() {
    let raw = essence(&report(&[&path("raw-kubectl.log")]));
    for (kind, name) in [
        ("logcli", "logcli.jsonl"),
        ("loki", "logcli.jsonl"),
        ("loki", "loki-query-range.json"),
        ("loki", "loki-tail.ndjson"),
        ("elastic", "es-search.json"),
        ("elastic", "es-scroll-pages.json"),
        ("elastic", "elasticdump.ndjson"),
        ("elastic", "elasticdump-source-only.ndjson"),
        ("stern-extjson", "stern-extjson.log"),
        ("stern", "stern-all-namespaces.log"),
    ] {
        assert_eq!(
            essence(&report(&["--input", kind, &path(name)])),
            raw,
            "--input {kind} {name}"
        );
    }
    let default = verdicts(&report(&["--input", "logcli", &path("logcli-default.log")]));
    assert_eq!(default, verdicts(&report(&[&path("raw-kubectl.log")])));
}

#[test]
fn order_never_matters() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "logcli.jsonl",
        "elasticdump.ndjson",
        "loki-tail.ndjson",
        "stern-extjson.log",
    ] {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.reverse();
        lines.rotate_left(3);
        let shuffled = dir.path().join(name);
        std::fs::write(&shuffled, lines.join("\n") + "\n").unwrap();
        assert_eq!(
            essence(&report(&[&shuffled.to_string_lossy()])),
            essence(&report(&[&path(name)])),
            "{name}"
        );
    }
}

#[test]
fn overlapping_exports_count_each_entry_once() {
    let one = report(&[&path("es-search.json")]);
    let both = report(&[&path("es-search.json"), &path("elasticdump.ndjson")]);
    assert_eq!(both["destinations"], one["destinations"]);
    // Sixteen access entries and the damaged one (a duplicate too).
    assert_eq!(one["input"]["malformed"], 1);
    assert_eq!(both["input"]["malformed"], 1);
    assert_eq!(both["input"]["duplicates"], 17);
}

#[test]
fn compressed_exports_are_read_alike() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("query_range.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&std::fs::read(fixture("loki-query-range.json")).unwrap())
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    assert_eq!(
        essence(&report(&[&gz.to_string_lossy()])),
        essence(&report(&[&path("raw-kubectl.log")]))
    );
}

#[test]
fn unreadable_documents_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body, says) in [
        (
            "matrix.json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            "metric query",
        ),
        (
            "cut.json",
            r#"{"took":3,"hits":{"hits":[{"_source":"#,
            "not valid JSON",
        ),
        (
            "error.json",
            r#"{"error":{"type":"index_not_found_exception","reason":"no such index [logs]"},"status":404}"#,
            "no such index [logs]",
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, body).unwrap();
        let out = run(&[&file.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&*file.to_string_lossy()), "{stderr}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn loki_tail_says_how_many_entries_loki_dropped() {
    let out = run(&[&path("loki-tail.ndjson")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Loki dropped 1 entry from this tail"),
        "{stderr}"
    );
}

#[test]
fn a_forced_store_refuses_the_other_stores_response() {
    let out = run(&["--input", "loki", &path("es-search.json")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--input loki was given, but this is an Elasticsearch response"),
        "{stderr}"
    );
}
