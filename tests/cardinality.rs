//! Issue 7 items 1 and 3: the report at high cardinality — thousands of
//! callers per destination, mixed formats in one stream, outliers — is the
//! same for any thread count and line order, exact in its totals, honest in
//! what it folds, and never `ready` for a destination that is not.

mod common;

use common::destination;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

const HOUR: i64 = 3_600_000;
/// 2026-11-20T12:00:00Z: the end of every window below.
const END: i64 = 1_795_176_000_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn rfc3339_nanos(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A tiny deterministic generator (an LCG): the test needs no seed file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the generator knows about one destination's requests in the window.
#[derive(Default)]
struct Truth {
    mtls: u64,
    plaintext: u64,
    plaintext_peers: BTreeSet<String>,
    sources: BTreeSet<String>,
}

struct Mesh {
    lines: Vec<String>,
    truth: BTreeMap<String, Truth>,
}

/// One access entry in the lab's format.
fn lab_line(start: i64, dur: i64, peer: &str, origin: Option<&str>, dest_sa: &str) -> String {
    let (origin, dest, cert) = match origin {
        Some(o) => (
            o.to_string(),
            format!("spiffe://cluster.local/ns/mesh/sa/{dest_sa}"),
            format!("By=spiffe://cluster.local/ns/mesh/sa/{dest_sa};Hash=00;Subject=\"\";URI={o}"),
        ),
        None => ("-".into(), "-".into(), "-".into()),
    };
    format!(
        "[{}] \"GET / HTTP/1.1\" 200 - \"-\" 0 1100 {dur} {dur} \"{peer}\" mTLS_Origin: \"{origin}\" mTLS_Destination: \"{dest}\" cert: \"{cert}\" audit_flag: \"false\"",
        rfc3339(start)
    )
}

/// One access entry in Istio's default format (mTLS known by SNI, caller by address).
fn istio_line(start: i64, dur: i64, peer: &str, mtls: bool, service: &str) -> String {
    let sni = if mtls {
        format!("outbound_.8080_._.{service}.mesh.svc.cluster.local")
    } else {
        "-".into()
    };
    format!(
        "[{}] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 1131 {dur} {dur} \"-\" \"curl/8.5.0\" \"id\" \"{service}.mesh:8080\" \"10.44.1.23:8080\" inbound|8080|| 127.0.0.6:41423 10.44.1.23:8080 {peer}:32787 {sni} default",
        rfc3339(start)
    )
}

/// Four destinations, two replicas each, `callers` distinct callers each;
/// lab and Istio lines mixed in every stream, all under kubectl --prefix --timestamps.
fn mesh(callers: u32, seed: u64) -> Mesh {
    let mut rng = Rng(seed);
    let mut lines = Vec::new();
    let mut truth: BTreeMap<String, Truth> = BTreeMap::new();
    let window_start = END - 24 * HOUR;
    let pods = |w: &str| {
        [
            format!("{w}-7d9f8c6b5-x2x4z"),
            format!("{w}-7d9f8c6b5-q9w8z"),
        ]
    };
    for w in ["web-a", "web-b", "web-c", "web-d"] {
        let dest = format!("mesh/{w}");
        let t = truth.entry(dest.clone()).or_default();
        // Every replica's log begins before the window (web-d's only an hour before its end).
        let log_start = if w == "web-d" {
            END - HOUR
        } else {
            END - 30 * HOUR
        };
        for pod in pods(w) {
            lines.push(format!(
                "[pod/{pod}/istio-proxy] {} {}\tinfo\txdsproxy\tconnected",
                rfc3339_nanos(log_start),
                rfc3339(log_start)
            ));
        }
        let (from, span) = if w == "web-d" {
            (END - HOUR + 1_000, HOUR - 2_000)
        } else {
            (END - 30 * HOUR, 30 * HOUR - 1_000)
        };
        for i in 0..callers {
            let start = from + rng.below(span as u64) as i64;
            let dur = 1 + rng.below(50) as i64;
            let pod = &pods(w)[rng.below(2) as usize];
            let in_window = start > window_start && start <= END;
            let (line, source) = if i % 2 == 0 {
                let id = format!("spiffe://cluster.local/ns/callers/sa/c{i}");
                (lab_line(start, dur, "-", Some(&id), w), id)
            } else {
                let peer = format!("10.{}.{}.{}", 100 + (i >> 16), (i >> 8) & 255, i & 255);
                (
                    istio_line(start, dur, &peer, true, w),
                    format!("mtls {peer}"),
                )
            };
            if in_window {
                t.mtls += 1;
                t.sources.insert(source);
            }
            lines.push(format!(
                "[pod/{pod}/istio-proxy] {} {line}",
                rfc3339_nanos(start + dur)
            ));
        }
        // web-a: two plaintext callers in the window, one in each format;
        // web-c: one plaintext caller before the window only.
        let plaintext: &[(i64, &str, bool)] = match w {
            "web-a" => &[
                (END - 5 * HOUR, "10.9.9.1", true),
                (END - 2 * HOUR, "10.9.9.2", false),
            ],
            "web-c" => &[(END - 27 * HOUR, "10.9.9.3", true)],
            _ => &[],
        };
        for &(start, peer, lab) in plaintext {
            let line = if lab {
                lab_line(start, 3, peer, None, w)
            } else {
                istio_line(start, 3, peer, false, w)
            };
            if start > window_start {
                t.plaintext += 1;
                t.plaintext_peers.insert(peer.to_string());
                t.sources.insert(format!("plaintext {peer}"));
            }
            lines.push(format!(
                "[pod/{}/istio-proxy] {} {line}",
                pods(w)[0],
                rfc3339_nanos(start + 3)
            ));
        }
        if w == "web-d" {
            // A websocket logged at its end: START_TIME 30 h before, written a minute ago.
            let start = END - 30 * HOUR;
            let line = lab_line(
                start,
                30 * HOUR - 60_000,
                "-",
                Some("spiffe://cluster.local/ns/callers/sa/websocket"),
                w,
            );
            lines.push(format!(
                "[pod/{}/istio-proxy] {} {line}",
                pods(w)[1],
                rfc3339_nanos(END - 60_000)
            ));
        }
    }
    Mesh { lines, truth }
}

fn write(lines: &[String], path: &Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

fn shuffled(lines: &[String], seed: u64) -> Vec<String> {
    let mut out = lines.to_vec();
    let mut rng = Rng(seed | 1);
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

fn report(path: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("strictly")
        .unwrap()
        .args(["report", "-o", "json", "-n", "mesh", "--no-progress"])
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn issue_7_1_thousands_of_callers_same_report_for_any_threads_and_order() {
    let m = mesh(6_000, 7);
    let dir = tempfile::tempdir().unwrap();
    let base_path = dir.path().join("mesh.log");
    write(&m.lines, &base_path);
    let until = ["--until", "2026-11-20T12:00:00Z", "--max-sources", "20"];
    let (code, base) = report(&base_path, &until);
    assert_eq!(code, 1);
    for threads in ["1", "3", "4"] {
        let args = [&until[..], &["--threads", threads]].concat();
        let (_, other) = report(&base_path, &args);
        assert_eq!(other, base, "--threads {threads}");
    }
    for seed in [1, 2] {
        let path = dir.path().join(format!("shuffled-{seed}.log"));
        write(&shuffled(&m.lines, seed), &path);
        let args = [&until[..], &["--threads", "2"]].concat();
        let (_, other) = report(&path, &args);
        let (mut a, mut b): (Value, Value) = (
            serde_json::from_str(&other).unwrap(),
            serde_json::from_str(&base).unwrap(),
        );
        // Which line is "line 1" changes with the order; nothing else may.
        a["input"]["malformed_examples"] = Value::Null;
        b["input"]["malformed_examples"] = Value::Null;
        assert_eq!(a, b, "shuffled with seed {seed}");
    }
    // Without --until the window ends at the newest write time: the same for any order.
    let (_, a) = report(&base_path, &["--threads", "1"]);
    let path = dir.path().join("shuffled-3.log");
    write(&shuffled(&m.lines, 3), &path);
    let (_, b) = report(&path, &["--threads", "4"]);
    assert_eq!(a, b, "derived window end");

    let r: Value = serde_json::from_str(&base).unwrap();
    for (name, t) in &m.truth {
        let d = destination(&r, name);
        assert_eq!(d["mtls"], t.mtls, "{name}: exact mTLS count");
        assert_eq!(d["plaintext"], t.plaintext, "{name}: exact plaintext count");
        let rows = d["sources"].as_array().unwrap();
        assert!(rows.len() <= 21, "{name}: --max-sources rows plus other");
        // Every plaintext caller in the window is named (fewer than --max-sources).
        let named: BTreeSet<String> = rows
            .iter()
            .filter(|s| s["source"] == "plaintext")
            .map(|s| s["peer"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(named, t.plaintext_peers, "{name}: plaintext callers named");
        let other = rows.iter().find(|s| s["source"] == "other");
        if t.sources.len() > 20 {
            let other = other.unwrap_or_else(|| panic!("{name}: an other row"));
            assert_eq!(other["folded_estimated"], true);
            let per_row: u64 = rows.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
            assert_eq!(
                per_row,
                t.mtls + t.plaintext,
                "{name}: rows sum to the totals"
            );
            let named_rows = rows.len() as u64 - 1;
            let exact = t.sources.len() as u64 - named_rows;
            let est = other["folded_sources"].as_u64().unwrap();
            // Hour-granular at the window's start edge, ~3% from the sketch.
            let err = est.abs_diff(exact) as f64 / exact as f64;
            assert!(
                err < 0.1,
                "{name}: folded_sources {est} vs {exact} in the window"
            );
            assert_eq!(other["peer"], Value::Null);
        }
        for s in rows.iter().filter(|s| s["source"] != "other") {
            assert_ne!(s["source"], "", "{name}: a row without a name");
        }
    }
    assert_eq!(destination(&r, "mesh/web-a")["verdict"], "blocked");
    // Plaintext before the window does not block, but it shows.
    let c = destination(&r, "mesh/web-c");
    assert_eq!(c["verdict"], "ready", "{c}");
    assert!(
        c["last_plaintext"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-19T09:00:00")
    );
    // web-d's logs begin an hour before the end; one long-lived request started
    // 30 h earlier must not make them look complete (issue 7 item 3).
    let d = destination(&r, "mesh/web-d");
    assert_eq!(d["verdict"], "insufficient", "{d}");
    assert_eq!(d["coverage"]["complete"], false);
}

#[test]
fn issue_7_3_a_line_dated_far_in_the_future_does_not_move_the_window() {
    let m = mesh(200, 11);
    let mut lines = m.lines.clone();
    // Written now, START_TIME in 2096: a corrupt entry, not evidence.
    lines.push(format!(
        "[pod/web-b-7d9f8c6b5-x2x4z/istio-proxy] {} {}",
        rfc3339_nanos(END - 1_000),
        lab_line(
            3_980_000_000_000,
            3,
            "-",
            Some("spiffe://cluster.local/ns/callers/sa/x"),
            "web-b"
        )
    ));
    // No envelope at all, dated 2096: implausible against the clock.
    lines.push(lab_line(3_980_000_000_000, 3, "10.1.1.1", None, "web-b"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.log");
    write(&lines, &path);
    let (_, out) = report(&path, &[]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let end = r["window"]["end"].as_str().unwrap();
    assert!(end.starts_with("2026-11-20T11:59"), "{}", r["window"]);
    assert_eq!(r["input"]["malformed"], 2);
    // Not evidence, but doubt: corrupt lines may hide plaintext (review F3).
    let web_b = destination(&r, "mesh/web-b");
    assert_eq!(web_b["verdict"], "insufficient", "{web_b}");
    assert_eq!(web_b["malformed"], 2, "{web_b}");
    assert!(
        web_b["reason"]
            .as_str()
            .unwrap()
            .contains("2 malformed lines")
    );
}
