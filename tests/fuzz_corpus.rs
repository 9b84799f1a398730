//! Issue 7 item 30: replays every fuzz corpus and regression file on stable.
//!
//! Each fuzz target under `fuzz/` calls one function of
//! `fuzz/src/checks.rs`; this test includes that file and runs the same
//! function on every file of `fuzz/corpus/<target>/` (the seeds and what the
//! fuzzer kept) and `fuzz/regressions/<target>/` (every crash, timeout and
//! out-of-memory input found so far), so a finding stays fixed without a
//! nightly toolchain. A check asserts its target's invariants; a panic names
//! the file. Inputs the fuzzer found too slow must now finish in a bounded time.

#[path = "../fuzz/src/checks.rs"]
#[allow(dead_code)]
mod checks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A regression that was a timeout must now finish well inside this, even unoptimised.
const REGRESSION_TIME_LIMIT: Duration = Duration::from_secs(20);

fn files(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `check` on every corpus and regression file of `target`; fails naming each file that panics or hangs.
fn replay(target: &str, check: fn(&[u8])) {
    let corpus = files("corpus", target);
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is empty: the seeds are missing"
    );
    let regressions = files("regressions", target);
    let mut failures = Vec::new();
    for (file, is_regression) in corpus
        .iter()
        .map(|f| (f, false))
        .chain(regressions.iter().map(|f| (f, true)))
    {
        let data = std::fs::read(file).unwrap();
        let started = Instant::now();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failures.push(format!("{}: panicked", file.display()));
        }
        let took = started.elapsed();
        if is_regression && took > REGRESSION_TIME_LIMIT {
            failures.push(format!("{}: took {took:?}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs failed:\n{}",
        failures.len(),
        corpus.len() + regressions.len(),
        failures.join("\n")
    );
}

#[test]
fn issue_7_30_format_compile_corpus_replays() {
    replay("format_compile", checks::format_compile);
}

#[test]
fn issue_7_30_format_file_corpus_replays() {
    replay("format_file", checks::format_file);
}

#[test]
fn issue_7_30_line_parser_corpus_replays() {
    replay("line_parser", checks::line_parser);
}

#[test]
fn issue_7_30_envelope_corpus_replays() {
    replay("envelope", checks::envelope);
}

#[test]
fn issue_7_30_state_corpus_replays() {
    replay("state", checks::state);
}
