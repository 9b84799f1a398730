//! Writes the seed corpora (`fuzz/corpus/<target>/seed-*`) from `fixtures/`.
//!
//! Run from `fuzz/`: `cargo +nightly run --example seed` (or on stable with
//! `CARGO_TARGET_DIR=../target cargo run --example seed`, which reuses the
//! main crate's build). Seeds are small: a case line each, so the corpus
//! stays a few hundred KB and every seed reaches a different path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use strictly::aggregate::AggregateConfig;
use strictly::envelope::InputKind;
use strictly::pipeline::Worker;
use strictly::watch::follow::Cursor;
use strictly_fuzz::checks::{INPUT_KINDS, format_sets};

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = fuzz.join("../fixtures");
    let corpus = fuzz.join("corpus");
    let cases = format_cases(&fixtures.join("formats"));

    // format_compile: each text format with its case lines, then every plain-file line.
    let out = dir(&corpus, "format_compile");
    for (name, _) in format_sets() {
        let Some(f) = strictly::format::LogFormat::builtin(name) else {
            continue;
        };
        if f.is_json() {
            continue;
        }
        let lines = cases.get(name.as_str()).cloned().unwrap_or_default();
        let mut seed = f.source().as_bytes().to_vec();
        seed.push(0);
        seed.extend_from_slice(
            lines
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
                .as_bytes(),
        );
        write(&out, &format!("builtin-{name}"), &seed);
    }
    let custom: Value = read_json(&fixtures.join("formats/custom.json"));
    let mut seed = custom["format"].as_str().unwrap().as_bytes().to_vec();
    seed.push(0);
    seed.extend_from_slice(case_lines(&custom).join("\n").as_bytes());
    write(&out, "custom", &seed);
    let plain = std::fs::read_to_string(fixtures.join("formats/files/plain.txt")).unwrap();
    for (i, line) in plain.lines().filter(|l| l.contains('%')).enumerate() {
        write(&out, &format!("plain-{i}"), line.as_bytes());
    }

    // format_file: every format file verbatim.
    let out = dir(&corpus, "format_file");
    for entry in std::fs::read_dir(fixtures.join("formats/files")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        write(&out, &name, &std::fs::read(&path).unwrap());
    }

    // line_parser: each case line, with the selector of its format's set (auto for the rest).
    let out = dir(&corpus, "line_parser");
    let sets = format_sets();
    for (format, lines) in &cases {
        let selector = sets
            .iter()
            .position(|(n, _)| n == format)
            .unwrap_or(sets.len() - 1);
        for (i, line) in lines.iter().enumerate() {
            let mut seed = vec![selector as u8];
            seed.extend_from_slice(line.as_bytes());
            write(&out, &format!("{format}-{i}"), &seed);
        }
    }

    // envelope: each envelope case with its --input kind, and the first lines of the case logs.
    let out = dir(&corpus, "envelope");
    for file in ["kubectl", "stern"] {
        let list = read_json(&fixtures.join(format!("envelopes/{file}.json")));
        for (i, case) in list.as_array().unwrap().iter().enumerate() {
            let kind = match case["kind"].as_str().unwrap_or("auto") {
                "auto" => InputKind::Auto,
                "raw" => InputKind::Raw,
                "kubectl" => InputKind::Kubectl,
                "stern" => InputKind::Stern,
                "stern-json" => InputKind::SternJson,
                other => panic!("unknown kind {other}"),
            };
            let selector = INPUT_KINDS.iter().position(|&k| k == kind).unwrap();
            let mut seed = vec![selector as u8];
            seed.extend_from_slice(case["line"].as_str().unwrap().as_bytes());
            write(&out, &format!("{file}-{i}"), &seed);
        }
    }
    for log in ["prefix-timestamps", "stern-timestamps"] {
        let text = std::fs::read_to_string(fixtures.join(format!("cases/{log}.log"))).unwrap();
        let mut seed = vec![0u8];
        for line in text.lines().take(6) {
            seed.extend_from_slice(line.as_bytes());
            seed.push(b'\n');
        }
        write(&out, log, &seed);
    }

    // state: state files a watch would save after reading these logs.
    let out = dir(&corpus, "state");
    let formats = &sets.last().unwrap().1;
    for (log, max_sources) in [
        ("", 0),
        ("lab-sample-lines", 0),
        ("prefix-timestamps", 0),
        ("stern-timestamps", 2),
        ("window-edges", 1),
    ] {
        let names: Vec<String> = if log.is_empty() {
            Vec::new()
        } else {
            vec![format!("{log}.log")]
        };
        let config = AggregateConfig {
            max_sources,
            ..Default::default()
        };
        let mut worker = Worker::new(formats, &config, InputKind::Auto, Arc::from(names.clone()));
        let mut cursors = HashMap::new();
        if !log.is_empty() {
            let text = std::fs::read(fixtures.join(format!("cases/{log}.log"))).unwrap();
            for (i, line) in text.split(|&b| b == b'\n').take(40).enumerate() {
                worker.line(0, i as u64 + 1, line, None);
            }
            cursors.insert(
                format!("ns/{log}/p/istio-proxy"),
                Cursor {
                    last_ns: 1_795_000_000_000_000_000,
                    count_at_last: 3,
                },
            );
        }
        let path = out.join(format!(
            "seed-{}",
            if log.is_empty() { "empty" } else { log }
        ));
        strictly::watch::state::save(&path, &worker.aggregator, &names, &cursors).unwrap();
    }
}

/// Case lines per format name, from `fixtures/formats/*.json` (custom and file formats excluded).
fn format_cases(dir: &Path) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v = read_json(&path);
        let Some(format) = v["format"].as_str() else {
            continue;
        };
        if format.contains('%') {
            continue;
        }
        out.entry(format.to_string())
            .or_default()
            .extend(case_lines(&v));
    }
    out
}

fn case_lines(v: &Value) -> Vec<String> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["line"].as_str().map(String::from))
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn dir(corpus: &Path, target: &str) -> PathBuf {
    let d = corpus.join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}
