//! One check per fuzz target: what the target does with an input, and the
//! invariants it asserts (a panic is a finding).
//!
//! This file is compiled twice: by the fuzz crate (nightly, libFuzzer) and by
//! `tests/fuzz_corpus.rs` (stable, `#[path]`), which replays every committed
//! corpus and regression file through the same function. It may therefore use
//! only `strictly` and `std`.
//!
//! Inputs that need a file (a `--log-format-file`, a `--state` file) are
//! written to a temporary file and loaded through the public loader, so the
//! fuzzer goes through what a user's file goes through (size caps included).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use strictly::envelope::{EnvelopeDecoder, InputKind};
use strictly::format::{FormatSet, LineParser, LogFormat, Parsed};

/// The format sets `line_parser` picks from with its first byte: each built-in alone, then all of them (auto).
pub fn format_sets() -> &'static [(String, FormatSet)] {
    static SETS: OnceLock<Vec<(String, FormatSet)>> = OnceLock::new();
    SETS.get_or_init(|| {
        let mut names: Vec<&str> = strictly::format::builtin_names().to_vec();
        names.push("auto");
        names
            .into_iter()
            .map(|n| {
                let set = strictly::format::load(Some(n), None).expect("built-in formats compile");
                (n.to_string(), set)
            })
            .collect()
    })
}

/// The envelope kinds `envelope` picks from with its first byte.
pub const INPUT_KINDS: [InputKind; 5] = [
    InputKind::Auto,
    InputKind::Raw,
    InputKind::Kubectl,
    InputKind::Stern,
    InputKind::SternJson,
];

/// Splits at the first NUL: what comes before, and what comes after (empty without one).
fn split_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A parse result as an owned string, to compare two parses of one line.
fn describe(parsed: &Parsed<'_>) -> String {
    format!("{parsed:?}")
}

/// Parses `line` twice with `parser` and asserts both parses agree.
fn parse_twice(parser: &mut LineParser, line: &[u8]) {
    let first = describe(&parser.parse(line));
    let again = describe(&parser.parse(line));
    assert_eq!(first, again, "parsing the same line twice disagrees");
}

/// `--log-format STRING`: compiles the format (bytes before the first NUL,
/// lossily UTF-8, as a command-line argument must be) and, if it compiles,
/// matches each line after the NUL against it.
///
/// Invariants: never panics; a line parses the same way twice in a row.
pub fn format_compile(data: &[u8]) {
    let (format, lines) = split_nul(data);
    let format = String::from_utf8_lossy(format);
    // What the CLI does with the argument (built-in name, transport-evidence check)...
    let _ = strictly::format::select(Some(&format), None);
    // ...and the compiler alone, so formats without transport evidence are matched too.
    let Ok(compiled) = LogFormat::compile("custom", &format) else {
        return;
    };
    let _ = (
        compiled.name(),
        compiled.source(),
        compiled.has_transport_evidence(),
    );
    let set: FormatSet = Arc::from(vec![compiled]);
    let mut parser = LineParser::new(set);
    for line in lines.split(|&b| b == b'\n') {
        parse_twice(&mut parser, line);
    }
}

/// `--log-format-file FILE`: loads the bytes as a format file (EnvoyFilter,
/// mesh config, ConfigMap, JSON format, plain format strings) through the
/// public loader; what loads is handed to a line parser.
///
/// Invariants: never panics; whatever loads is a non-empty set of formats.
pub fn format_file(data: &[u8]) {
    let file = TempFile::new(data);
    let Ok(formats) = strictly::format::select(None, Some(&file.path)) else {
        return;
    };
    assert!(!formats.is_empty(), "a format file loaded with no format");
    let set: FormatSet = formats.into();
    let mut parser = LineParser::new(set);
    parse_twice(&mut parser, b"");
}

/// The per-line parser: the first byte picks the format set (each built-in,
/// then the default set of all built-ins, modulo their count); every
/// `\n`-separated line that follows goes through one parser, as a stream does.
///
/// Invariants: never panics; a line parses the same way twice in a row;
/// the result does not depend on the lines before it (a fresh parser agrees).
pub fn line_parser(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let sets = format_sets();
    let (_, set) = &sets[selector as usize % sets.len()];
    let mut parser = LineParser::new(Arc::clone(set));
    let mut fresh = LineParser::new(Arc::clone(set));
    for line in rest.split(|&b| b == b'\n') {
        parse_twice(&mut parser, line);
        // Issue 7 item 2: whatever the set, no line's result depends on the lines before it.
        let streamed = describe(&parser.parse(line));
        let alone = describe(&fresh.parse(line));
        assert_eq!(streamed, alone, "the result depends on earlier lines");
    }
}

/// Envelope detection and decoding: the first byte picks `--input` (modulo
/// the number of kinds); every `\n`-terminated line that follows goes
/// through one decoder, as a chunk does.
///
/// Invariants: never panics; decoding only removes bytes (the payload is
/// never longer than the line); metadata it reports is never empty; `raw`
/// returns the line itself (minus its line end); decoding the same line
/// again with the same decoder gives the same result.
pub fn envelope(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let kind = INPUT_KINDS[selector as usize % INPUT_KINDS.len()];
    let mut decoder = EnvelopeDecoder::new(kind);
    for line in rest.split_inclusive(|&b| b == b'\n') {
        let first = {
            let d = decoder.decode(line);
            assert!(
                d.payload.len() <= line.len(),
                "the payload is longer than the line"
            );
            for part in [d.meta.namespace, d.meta.pod, d.meta.container]
                .into_iter()
                .flatten()
            {
                assert!(!part.is_empty(), "empty stream metadata: {:?}", d.meta);
            }
            if kind == InputKind::Raw {
                let end = line.strip_suffix(b"\n").unwrap_or(line);
                let end = end.strip_suffix(b"\r").unwrap_or(end);
                assert_eq!(d.payload, end, "raw changed the line");
                assert!(d.timestamp_ms.is_none() && d.meta == Default::default());
            }
            format!("{d:?}")
        };
        let again = format!("{:?}", decoder.decode(line));
        assert_eq!(first, again, "decoding the same line twice disagrees");
    }
}

/// `watch --state FILE`: loads the bytes as a state file and, if it loads,
/// does what a resumed watch does with it: reads a few more lines into the
/// restored aggregate, slides the window, resolves, judges and renders
/// JSON and the table (`/metrics` is private to `serve`).
///
/// Invariant: never panics (a state file that loads must be usable; one
/// that is not must be refused by the loader).
pub fn state(data: &[u8]) {
    use strictly::aggregate::AggregateConfig;
    use strictly::pipeline::Worker;
    use strictly::verdict::{self, VerdictConfig};

    let file = TempFile::new(data);
    let Ok(Some(saved)) = strictly::watch::state::load(&file.path) else {
        return;
    };
    drop(file);
    let formats = &format_sets().last().expect("the default set").1;
    let names: Arc<[String]> = saved.names.iter().cloned().collect();
    let config: AggregateConfig = saved.aggregator.config().clone();
    let mut worker = Worker::new(formats, &config, InputKind::Auto, Arc::clone(&names));
    worker.aggregator = saved.aggregator;
    let _ = saved.cursors.len();
    for (i, line) in RESUMED_LINES.iter().enumerate() {
        let input = (i as u32) % (names.len() as u32 + 1);
        worker.line(input, i as u64 + 1, line, None);
    }
    // A watch prunes to its window before every snapshot.
    const NOW_MS: i64 = 1_795_000_000_000;
    worker.aggregator.prune(NOW_MS - 3_600_000);
    let resolved = worker.aggregator.resolve();
    let verdict_config = VerdictConfig {
        window_ms: 3_600_000,
        until_ms: Some(NOW_MS),
        min_requests: 1,
        max_sources: 20,
    };
    let report = verdict::report(&resolved, &verdict_config, &names);
    let _ = verdict::exit_code(&report);
    let mut out = Vec::new();
    strictly::render::json::render(&report, &mut out).expect("JSON renders into memory");
    strictly::render::table::render(&report, Default::default(), &mut out)
        .expect("the table renders into memory");
}

/// Lines a resumed watch reads after loading a state: an mTLS and a
/// plaintext request of a known pod, and a metadata-less one.
const RESUMED_LINES: [&[u8]; 3] = [
    br#"[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] 2026-11-20T11:43:14.559123456Z [2026-11-20T11:43:14.558Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "spiffe://cluster.local/ns/istioinaction/sa/sleep" mTLS_Destination: "spiffe://cluster.local/ns/istioinaction/sa/web-api" cert: "-" audit_flag: "-""#,
    br#"[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] 2026-11-20T11:43:15.559123456Z [2026-11-20T11:43:15.558Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "10.44.0.7" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#,
    br#"[2026-11-20T11:43:16.558Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#,
];

/// A temporary file holding one input, removed when dropped. Named by
/// process and a counter, so parallel test threads never share one.
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    fn new(data: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("strictly-fuzz-{}-{n}", std::process::id()));
        std::fs::write(&path, data).expect("the temporary directory is writable");
        TempFile { path }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
