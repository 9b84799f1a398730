//! Issue 7, inputs: the same lines never count twice (A6), input flags that
//! would do nothing are refused (A9, A13), `--threads` is bounded (B15),
//! compressed and binary input (B17), and one bounded line cutter for every
//! reader (B18). Each runs the binary as a user does.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;
use support::{FakeCluster, kube_fixture};

fn strictly() -> Command {
    Command::cargo_bin("strictly").expect("the strictly binary is built")
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sample")
        .join(name)
}

/// `strictly report -o json ARGS`.
fn report(args: &[&str]) -> Output {
    strictly()
        .arg("report")
        .args(args)
        .args(["-o", "json"])
        .output()
        .expect("strictly runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a usage or input error: exit 2, one line `strictly: error: …` containing every `needle`.
fn assert_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty(), "no report on error");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("strictly: error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from {err}");
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The report without what depends on how the lines were split into files.
fn verdicts_only(mut r: Value) -> Value {
    r["input"] = Value::Null;
    r
}

/// A workload with 6 mTLS requests in a kubectl `--prefix --timestamps` log:
/// insufficient under `--min-requests 10`, ready if counted twice.
fn six_requests(dir: &Path) -> PathBuf {
    let mut text = String::new();
    for i in 0..6 {
        text.push_str(&format!(
            "[pod/web-api-7d9f8c6b5-q9w8z/istio-proxy] 2026-11-20T11:0{i}:00.000000001Z \
             [2026-11-20T11:0{i}:00.000Z] \"GET / HTTP/1.1\" 200 - \"-\" 0 1100 4 3 \"-\" \
             mTLS_Origin: \"spiffe://cluster.local/ns/istioinaction/sa/sleep\" \
             mTLS_Destination: \"spiffe://cluster.local/ns/istioinaction/sa/web-api\" \
             cert: \"By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=cdd0;Subject=\"\";\
             URI=spiffe://cluster.local/ns/istioinaction/sa/sleep\" audit_flag: \"false\"\n"
        ));
    }
    let path = dir.join("web-api.log");
    std::fs::write(&path, text).unwrap();
    path
}

const WINDOW: [&str; 6] = [
    "--until",
    "2026-11-20T12:00:00Z",
    "--window",
    "2h",
    "--min-requests",
    "10",
];

#[test]
fn issue_7_6_the_same_file_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    let once = report(&[&[path_str(&log)][..], &WINDOW].concat());
    assert_eq!(once.status.code(), Some(1), "{}", stderr(&once));
    assert_eq!(json(&once)["destinations"][0]["verdict"], "insufficient");

    let twice = report(&[&[path_str(&log), path_str(&log)][..], &WINDOW].concat());
    assert_error(&twice, &["the same file as", "counted twice"]);

    // Another name for the same file (a hard link) and stdin redirected from it.
    let link = dir.path().join("link.log");
    std::fs::hard_link(&log, &link).unwrap();
    let linked = report(&[&[path_str(&log), path_str(&link)][..], &WINDOW].concat());
    assert_error(&linked, &[path_str(&link), path_str(&log)]);
    let stdin = strictly()
        .args(["report", path_str(&log), "-", "-o", "json"])
        .args(WINDOW)
        .pipe_stdin(&log)
        .unwrap()
        .output()
        .unwrap();
    assert_error(&stdin, &["<stdin>", path_str(&log)]);
}

#[test]
fn issue_7_6_the_same_lines_under_another_name_or_compressed_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    let bytes = std::fs::read(&log).unwrap();
    let copy = dir.path().join("copy.log");
    std::fs::write(&copy, &bytes).unwrap();
    let gz = dir.path().join("web-api.log.1");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    for other in [&copy, &gz] {
        let out = report(&[&[path_str(&log), path_str(other)][..], &WINDOW].concat());
        assert_error(
            &out,
            &[path_str(other), "the same lines as", path_str(&log)],
        );
    }
    // Two empty files are not "the same lines": there are none to count twice.
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    std::fs::write(&a, b"").unwrap();
    std::fs::write(&b, b"").unwrap();
    let out = report(&[path_str(&a), path_str(&b)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn issue_7_6_overlapping_exports_count_each_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Two exports of the same pod that overlap on four entries.
    let (first, second) = (dir.path().join("first.log"), dir.path().join("second.log"));
    std::fs::write(&first, lines[..5].join("\n") + "\n").unwrap();
    std::fs::write(&second, lines[1..].join("\n") + "\n").unwrap();
    let out = report(&[&[path_str(&second), path_str(&first)][..], &WINDOW].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["input"]["lines"], 10);
    assert_eq!(r["input"]["requests"], 6);
    assert_eq!(r["input"]["duplicates"], 4);
    let d = &r["destinations"][0];
    assert_eq!(
        (&d["verdict"], &d["mtls"]),
        (&"insufficient".into(), &6.into())
    );

    // A single input reports none.
    let once = json(&report(&[&[path_str(&log)][..], &WINDOW].concat()));
    assert_eq!(once["input"]["duplicates"], 0);
}

#[test]
fn issue_7_6_repeated_entries_across_real_exports_match_one_file() {
    // The sample mesh as two kubectl --prefix --timestamps exports overlapping by 700 lines.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(sample("mesh.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b, overlap) = (
        dir.path().join("a.log"),
        dir.path().join("b.log"),
        dir.path().join("overlap.log"),
    );
    std::fs::write(&a, lines[..1800].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[1100..].join("\n") + "\n").unwrap();
    std::fs::write(&overlap, lines[1100..1800].join("\n") + "\n").unwrap();
    let base = json(&report(&[path_str(&sample("mesh.log"))]));
    let split = json(&report(&[path_str(&b), path_str(&a)]));
    let twin = json(&report(&[path_str(&overlap)]));
    let access = |r: &Value| {
        r["input"]["requests"].as_u64().unwrap() + r["input"]["outbound"].as_u64().unwrap()
    };
    assert!(access(&twin) > 600, "the overlap holds access entries");
    assert_eq!(split["input"]["duplicates"], access(&twin));
    assert_eq!(split["input"]["requests"], base["input"]["requests"]);
    assert_eq!(
        split["input"]["lines"].as_u64(),
        Some(base["input"]["lines"].as_u64().unwrap() + 700)
    );
    assert_eq!(verdicts_only(split), verdicts_only(base));
}

#[test]
fn issue_7_9_input_is_refused_with_the_cluster() {
    for args in [
        &["-l", "app=web-api", "--input", "kubectl"][..],
        &["deploy/web-api", "--input", "raw"],
        &["-A", "--input", "auto"],
    ] {
        let out = report(args);
        assert_error(&out, &["--input", "files and stdin"]);
    }
}

#[test]
fn issue_7_13_cluster_only_flags_with_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    for (flag, args) in [
        ("-l/--selector", &["-l", "app=web-api"][..]),
        ("-A/--all-namespaces", &["-A"]),
        ("-c/--container", &["-c", "istio-proxy"]),
        ("--context", &["--context", "prod"]),
        ("--kubeconfig", &["--kubeconfig", "/nonexistent"]),
        ("--max-log-requests", &["--max-log-requests", "5"]),
    ] {
        let out = report(&[&[path_str(&log)][..], args].concat());
        assert_error(&out, &[flag, "not to files"]);
        // -A, -l, --context and --kubeconfig without files choose the cluster; the others stay refused on stdin.
        if !matches!(flag, "-c/--container" | "--max-log-requests") {
            continue;
        }
        let piped = strictly()
            .arg("report")
            .args(args)
            .pipe_stdin(&log)
            .unwrap()
            .output()
            .unwrap();
        assert_error(&piped, &[flag]);
    }
}

#[test]
fn issue_7_13_several_namespaces_with_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    let out = report(&[path_str(&log), "-n", "istioinaction", "-n", "default"]);
    assert_error(&out, &["-n/--namespace", "2 times"]);
    let one = report(&[path_str(&log), "-n", "istioinaction"]);
    assert_eq!(one.status.code(), Some(1), "{}", stderr(&one));
}

#[test]
fn issue_7_13_a_namespace_contradicting_the_lines_san_is_warned_once() {
    // The sample's httpbin pods are in `default`, and their lines' SAN says so.
    let mesh = sample("mesh.log");
    let out = report(&[path_str(&mesh), "-n", "istioinaction"]);
    let err = stderr(&out);
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("-n istioinaction"))
        .collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].starts_with("strictly: warning: "), "{err}");
    assert!(warnings[0].contains("namespace default"), "{err}");
    // The SAN is kept: the same destinations and verdicts as without -n,
    // httpbin whole under `default` (not split into a ready and a blocked half).
    let with_n: Value = serde_json::from_slice(&out.stdout).unwrap();
    let without: Value = serde_json::from_slice(&report(&[path_str(&mesh)]).stdout).unwrap();
    assert_eq!(verdicts_only(with_n.clone()), verdicts_only(without));
    let names: Vec<&str> = with_n["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destination"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"default/httpbin"), "{names:?}");
    assert!(!names.contains(&"istioinaction/httpbin"), "{names:?}");
    // Where -n agrees with every line, nothing is said.
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    let quiet = report(&[path_str(&log), "-n", "istioinaction"]);
    assert_eq!(stderr(&quiet), "");
}

#[test]
fn issue_7_15_threads_are_bounded_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = six_requests(dir.path());
    for n in ["20000", "9223372036854775807"] {
        let out = report(&[path_str(&log), "--threads", n]);
        assert_error(&out, &["--threads", n, "cores"]);
    }
    assert_error(
        &report(&[path_str(&log), "--threads", "0"]),
        &["at least 1"],
    );
    let ok = report(&[path_str(&log), "--threads", "64"]);
    assert_eq!(ok.status.code(), Some(1), "{}", stderr(&ok));
}

/// The first 800 lines of `mesh.log` (plenty of requests, quick to compress in a debug build).
fn plain(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(sample("mesh.log")).unwrap();
    let path = dir.join("mesh-800.log");
    std::fs::write(
        &path,
        text.lines().take(800).collect::<Vec<_>>().join("\n") + "\n",
    )
    .unwrap();
    path
}

/// [`plain`] compressed by each format's encoder.
fn compressed(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let bytes = std::fs::read(plain(dir)).unwrap();
    let half = bytes.len() / 2;
    let (one, two) = (&bytes[..half], &bytes[half..]);
    let zstd = [
        zstd::encode_all(one, 3).unwrap(),
        zstd::encode_all(two, 3).unwrap(),
    ]
    .concat();
    let bz = |part: &[u8]| {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(part).unwrap();
        e.finish().unwrap()
    };
    let xz = |part: &[u8]| {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(part).unwrap();
        e.finish().unwrap()
    };
    let gz = |part: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(part).unwrap();
        e.finish().unwrap()
    };
    // No telling extensions: the magic bytes decide.
    [
        ("zstd", zstd),
        ("bzip2", [bz(one), bz(two)].concat()),
        ("xz", [xz(one), xz(two)].concat()),
        ("gzip", [gz(one), gz(two)].concat()),
    ]
    .into_iter()
    .map(|(name, data)| {
        let path = dir.join(format!("mesh-{name}.log.1"));
        std::fs::write(&path, data).unwrap();
        (name, path)
    })
    .collect()
}

/// The report with the input's name taken out of the malformed examples.
fn without_names(mut r: Value, name: &str) -> Value {
    for e in r["input"]["malformed_examples"].as_array_mut().unwrap() {
        *e = e.as_str().unwrap().replacen(name, "INPUT", 1).into();
    }
    r
}

#[test]
fn issue_7_17_zstd_bzip2_and_xz_are_read_like_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let plain = plain(dir.path());
    let base = without_names(json(&report(&[path_str(&plain)])), path_str(&plain));
    assert!(base["input"]["requests"].as_u64().unwrap() > 500);
    for (name, path) in compressed(dir.path()) {
        let out = report(&[path_str(&path)]);
        assert_eq!(stderr(&out), "", "{name}");
        assert_eq!(
            without_names(json(&out), path_str(&path)),
            base,
            "{name} reads as the plain file"
        );
    }
}

#[test]
fn issue_7_17_gzip_with_padding_or_junk_is_read_as_zcat_does_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let plain = plain(dir.path());
    let base = without_names(json(&report(&[path_str(&plain)])), path_str(&plain));
    let (_, gz) = compressed(dir.path()).pop().unwrap();
    let good = std::fs::read(&gz).unwrap();
    for (tail, what) in [
        (vec![0u8; 8192], "NUL padding ignored (8192 bytes"),
        (
            b"\x00\x01junk".to_vec(),
            "trailing garbage ignored (6 bytes",
        ),
    ] {
        let path = dir.path().join("padded.log.gz");
        std::fs::write(&path, [good.clone(), tail].concat()).unwrap();
        let out = report(&[path_str(&path)]);
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("strictly: warning: "), "{err}");
        assert!(err.contains(path_str(&path)) && err.contains(what), "{err}");
        assert_eq!(without_names(json(&out), path_str(&path)), base);
    }
}

#[test]
fn issue_7_17_binary_input_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ls = Path::new("/bin/ls");
    if ls.exists() {
        assert_error(
            &report(&[path_str(ls)]),
            &["/bin/ls: not a text log", "ELF"],
        );
    }
    // Compressed in a format not read here (a 7z header), or any blob with NUL bytes.
    let blob = dir.path().join("archive.7z");
    std::fs::write(&blob, b"7z\xbc\xaf\x27\x1c\x00\x04 and more").unwrap();
    assert_error(
        &report(&[path_str(&blob)]),
        &[path_str(&blob), "NUL byte at offset 6"],
    );
    // A zstd file cut short is corrupt, not binary.
    let (_, zst) = compressed(dir.path()).remove(0);
    let bytes = std::fs::read(&zst).unwrap();
    std::fs::write(&zst, &bytes[..bytes.len() / 3]).unwrap();
    assert_error(
        &report(&[path_str(&zst)]),
        &[path_str(&zst), "corrupt zstd data"],
    );
}

#[test]
fn issue_7_18_a_10_mb_line_from_the_cluster_is_cut_and_counted_malformed() {
    let cluster = FakeCluster::start(&kube_fixture("istioinaction.yaml"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let run = || {
        strictly()
            .args(["report", "-o", "json", "--until", "2026-11-20T12:00:00Z"])
            .args(["--window", "2h", "-n", "istioinaction", "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap()
    };
    let before = json(&run());
    // 10 MB of one line in the middle of a replica's log (no newline until its end).
    cluster.append_log_bytes(
        "istioinaction",
        "web-api-7d9f8c6b5-q9w8z",
        "istio-proxy",
        "2026-11-20T11:58:00Z",
        &vec![b'x'; 10_000_000],
    );
    cluster.append_log(
        "istioinaction",
        "web-api-7d9f8c6b5-q9w8z",
        "istio-proxy",
        &["2026-11-20T11:58:01.000000001Z 2026-11-20T11:58:01.000000Z\tinfo\tafter the long line"],
    );
    let out = run();
    let after = json(&out);
    let n = |r: &Value, k: &str| r["input"][k].as_u64().unwrap();
    assert_eq!(n(&after, "lines"), n(&before, "lines") + 2);
    assert_eq!(n(&after, "malformed"), n(&before, "malformed") + 1);
    assert_eq!(
        n(&after, "skipped"),
        n(&before, "skipped") + 1,
        "the next line is read whole"
    );
    // The cut line is no request, but doubt on its own replica's workload
    // (review F3): the other destinations are untouched.
    let mut after_dests = after["destinations"].clone();
    let mut before_dests = before["destinations"].clone();
    for d in after_dests.as_array_mut().unwrap() {
        if d["destination"] == "istioinaction/web-api" {
            assert_eq!(d["malformed"], 1, "{d}");
            assert_ne!(d["verdict"], "ready", "{d}");
        } else {
            assert_eq!(d["malformed"], 0, "{d}");
        }
    }
    for r in [&mut after_dests, &mut before_dests] {
        for d in r.as_array_mut().unwrap() {
            for k in ["malformed", "verdict", "reason"] {
                d[k] = Value::Null;
            }
        }
    }
    assert_eq!(after_dests, before_dests);
    let example = after["input"]["malformed_examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|e| e.contains("web-api-7d9f8c6b5-q9w8z") && e.contains("xxxx"))
        .unwrap_or_else(|| panic!("no example of the cut line: {after:#}"));
    assert!(example.len() < 4096, "the example is cut for the report");

    // `watch` follows the same stream through the same cutter.
    let out = strictly()
        .args([
            "watch",
            "-n",
            "istioinaction",
            "--window",
            "30d",
            "--interval",
            "200ms",
        ])
        .args(["--exit-after", "3s", "-o", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output: {}", stderr(&out)));
    let watched: Value = serde_json::from_str(last).unwrap();
    let examples = watched["input"]["malformed_examples"].as_array().unwrap();
    assert!(
        examples
            .iter()
            .filter_map(Value::as_str)
            .any(|e| e.contains("web-api-7d9f8c6b5-q9w8z") && e.contains("xxxx")),
        "the followed stream's cut line is malformed: {watched:#}"
    );
    assert!(
        watched["input"]["skipped"].as_u64().unwrap() > 0,
        "the lines around it are read"
    );
}
