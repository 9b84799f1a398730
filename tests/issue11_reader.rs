//! Issue 11 item 4: the reader cuts plain files at block ends and the
//! workers number the lines. What a user sees must not move: malformed
//! examples name the same `file:line`, lines and cut lines count the same,
//! whatever the threads and block sizes.

mod common;

use std::io::{Read, Write};
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use strictly::aggregate::AggregateConfig;
use strictly::pipeline::{self, PipelineConfig};
use strictly::source::file::Input;

/// A raw Istio access line from the sample (no envelope: a cut copy of it
/// has no write time, so it is never taken for a repeat).
fn access_line() -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(common::fixture("sample/mesh-istio.log.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    text.lines()
        .find(|l| l.contains("HTTP/1.1\" 200"))
        .expect("an access line in the sample")
        .to_string()
}

/// `lines` lines of noise; the lines numbered in `malformed` (1-based) are
/// access lines cut short, and line `long` (if any) is `long_len` bytes.
fn write_log(path: &Path, lines: u64, malformed: &[u64], long: Option<(u64, usize)>) -> Vec<u64> {
    let access = access_line();
    let cut_short = &access[..access.len() * 2 / 3];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for n in 1..=lines {
        if malformed.contains(&n) {
            writeln!(out, "{cut_short}").unwrap();
        } else if let Some((_, len)) = long.filter(|(at, _)| *at == n) {
            writeln!(out, "{}", "y".repeat(len)).unwrap();
        } else {
            writeln!(out, "2026-11-20T10:00:00.000000Z\tinfo\tnoise line {n}").unwrap();
        }
    }
    out.flush().unwrap();
    let mut want: Vec<u64> = malformed.to_vec();
    want.extend(long.map(|(at, _)| at));
    want.sort_unstable();
    want
}

fn run(path: &Path, threads: usize, chunk_size: usize, max_line: usize) -> (u64, u64, Vec<u64>) {
    let formats = strictly::format::load(None, None).unwrap();
    let config = PipelineConfig {
        threads,
        chunk_size,
        max_line,
        ..PipelineConfig::default()
    };
    let agg = pipeline::run(
        &[Input::path(path)],
        &formats,
        &AggregateConfig::default(),
        &config,
        &|_| {},
    )
    .unwrap();
    let examples = agg
        .input
        .malformed_examples
        .iter()
        .map(|e| e.line)
        .collect();
    (agg.input.lines, agg.input.malformed, examples)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn issue_11_4_malformed_examples_name_the_same_lines_whatever_the_blocks(
        threads in 1usize..4,
        chunk_size in 64usize..6000,
        mut malformed in proptest::collection::vec(1u64..3000, 1..9),
        long_at in 1u64..3000,
    ) {
        malformed.sort_unstable();
        malformed.dedup();
        malformed.retain(|&m| m != long_at);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        // One line over `max_line`: cut, counted malformed, named by its number.
        let max_line = 6000;
        let want = write_log(&path, 3000, &malformed, Some((long_at, 9000)));
        let (lines, count, examples) = run(&path, threads, chunk_size, max_line);
        prop_assert_eq!(lines, 3000);
        prop_assert_eq!(count, want.len() as u64);
        prop_assert_eq!(&examples[..], &want[..want.len().min(5)]);
    }
}

/// The binary with its default 1 MiB blocks: examples past the first block
/// name their lines on 1 and 3 threads alike.
#[test]
fn issue_11_4_the_binary_names_malformed_lines_past_the_first_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    // ~50 bytes a line: 80,000 lines are about four blocks.
    let malformed = [20_000, 20_001, 41_234, 79_999];
    let want = write_log(&path, 80_000, &malformed, None);
    assert!(std::fs::metadata(&path).unwrap().len() > 3 << 20);
    let name = path.display().to_string();
    let mut reports = Vec::new();
    for threads in ["1", "3"] {
        let out = common::strictly()
            .args(["report", "-o", "json", "--threads", threads])
            .arg(&path)
            .output()
            .unwrap();
        let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The window ends now: the only field that moves between the two runs.
        report.as_object_mut().unwrap().remove("window");
        let input = &report["input"];
        assert_eq!(input["lines"], 80_000, "{input}");
        assert_eq!(input["malformed"], malformed.len(), "{input}");
        let lines: Vec<String> = input["malformed_examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let e = e.as_str().unwrap();
                let rest = e.strip_prefix(&format!("{name}:")).expect(e);
                rest.split(':').next().unwrap().to_string()
            })
            .collect();
        let want: Vec<String> = want.iter().map(u64::to_string).collect();
        assert_eq!(lines, want);
        reports.push(report);
    }
    assert_eq!(reports[0], reports[1]);
}
