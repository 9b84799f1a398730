//! Issue 7 item 32: `watch` for a long run. The fake API server (tests/support)
//! serves 200 pods and appends 200 access lines per second across them,
//! stamped with the real clock, and every 2 s it ends one pod's open follow
//! (a stream drop: the watch reconnects and must skip what it already
//! counted). The watch judges a 1-minute window, so what it must keep is
//! bounded: anything that still grows is a leak. Every 10 s the watch process
//! is sampled from /proc and `/metrics`: resident memory, threads, file
//! descriptors, open streams. The first minute once the window is full
//! (seconds 70–130) is compared with the last minute (limit: within 10%), and
//! at the end every line sent must be counted exactly once (`/report`'s
//! `input.requests`, which counts lines in and out of the window).
//!
//! Run: `cargo bench --bench watch_soak -- --minutes 10` (default 10; CI-sized: 2;
//! `--drop-every 0.25` drops a stream every 0.25 s instead of every 2 s).

#[path = "support/watch_load.rs"]
mod load;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use load::{access_line, metric, open_fds, proc_status, report_requests};
use support::wait_until;

const PODS: usize = 200;
const LINES_PER_SECOND: usize = 200;
const DROP_EVERY: Duration = Duration::from_secs(2);
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// First vs last minute: the largest drift allowed, as a share.
const DRIFT_LIMIT: f64 = 0.10;
/// The window judged; the comparison starts once it has filled.
const WINDOW_S: f64 = 60.0;

/// Now as kubelet writes it, strictly after `prev` (ns): each pod's lines
/// must have increasing timestamps for the reconnect's skip to be exact.
fn wall_time(prev: &mut i64) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    *prev = now.max(*prev + 1_000);
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_nanos(*prev);
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    at_s: f64,
    rss_kib: f64,
    threads: f64,
    fds: f64,
    streams: f64,
}

/// `--NAME VALUE` from the command line.
fn number_arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(default)
}

fn mean(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(&f).sum::<f64>() / samples.len().max(1) as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let minutes = number_arg("--minutes", 10.0);
    // More drops per minute tell a per-reconnect leak from steady allocation.
    let drop_every = Duration::from_secs_f64(number_arg("--drop-every", DROP_EVERY.as_secs_f64()));
    let (cluster, names) = load::cluster_of(PODS);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = cluster.kubeconfig(dir.path());
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strictly"))
        .args([
            "watch",
            "-n",
            "load",
            "--window",
            "1m",
            "--interval",
            "2s",
            "-o",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--listen", &listen.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let all_open = wait_until(Duration::from_secs(60), || {
        names.iter().all(|n| cluster.open_follows("load", n) == 1)
    });
    assert!(all_open, "watch did not open {PODS} follows");

    let started = Instant::now();
    let run_for = Duration::from_secs_f64(minutes * 60.0);
    let mut sent = 0usize;
    let mut last_ns = 0i64;
    let mut drops = 0usize;
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_drop = started + drop_every;
    let mut next_sample = started;
    let mut tick = Instant::now();
    while started.elapsed() < run_for {
        // 200 lines/s: every 10 ms, 2 lines to pods in turn.
        for _ in 0..LINES_PER_SECOND / 100 {
            let at = wall_time(&mut last_ns);
            let pod = &names[sent % PODS];
            cluster.append_log("load", pod, "istio-proxy", &[&access_line(&at, sent)]);
            sent += 1;
        }
        let now = Instant::now();
        if now >= next_drop {
            // A pod in the middle of its lines: the drop lands between appends.
            cluster.end_follows("load", &names[(drops * 37) % PODS]);
            drops += 1;
            next_drop += drop_every;
        }
        if now >= next_sample {
            samples.push(Sample {
                at_s: started.elapsed().as_secs_f64(),
                rss_kib: proc_status(pid, "VmRSS") as f64,
                threads: proc_status(pid, "Threads") as f64,
                fds: open_fds(pid) as f64,
                streams: metric(listen, "strictly_streams_open").unwrap_or(f64::NAN),
            });
            next_sample += SAMPLE_EVERY;
        }
        tick += Duration::from_millis(10);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut counted = 0;
    wait_until(Duration::from_secs(30), || {
        counted = report_requests(listen);
        counted == sent as u64
    });
    let reconnects = metric(listen, "strictly_stream_reconnects_total").unwrap_or(f64::NAN);
    let duplicates = metric(listen, "strictly_duplicate_lines_skipped_total").unwrap_or(f64::NAN);
    let _ = child.kill();
    let _ = child.wait();

    // The first minute begins once the window has filled (and start-up
    // allocations settled); a run under 4 minutes compares halves after that.
    let warm = WINDOW_S + SAMPLE_EVERY.as_secs_f64();
    let span = if elapsed >= warm + 180.0 {
        60.0
    } else {
        ((elapsed - warm) / 2.0).max(10.0)
    };
    let first: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at_s >= warm && s.at_s < warm + span)
        .collect();
    let last: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at_s >= elapsed - span)
        .collect();
    println!(
        "strictly watch soak: {PODS} pods, {:.1} min, {sent} lines sent ({:.0}/s), {drops} stream drops, {reconnects} reconnects, {duplicates} duplicate lines skipped, {counted} counted{}",
        elapsed / 60.0,
        sent as f64 / elapsed,
        if counted == sent as u64 {
            " (exact)"
        } else {
            " (MISMATCH)"
        }
    );
    println!("| measure | first minute (full window) | last minute | drift | limit |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut worst: f64 = 0.0;
    for (label, f) in [
        (
            "RSS, MiB",
            (|s: &Sample| s.rss_kib / 1024.0) as fn(&Sample) -> f64,
        ),
        ("threads", |s: &Sample| s.threads),
        ("file descriptors", |s: &Sample| s.fds),
        ("log streams open", |s: &Sample| s.streams),
    ] {
        let (a, b) = (mean(&first, f), mean(&last, f));
        let drift = (b - a) / a;
        worst = worst.max(drift.abs());
        println!(
            "| {label} | {a:.1} | {b:.1} | {:+.1}% | ±{:.0}% |",
            drift * 100.0,
            DRIFT_LIMIT * 100.0
        );
    }
    println!(
        "verdict: {}",
        if worst <= DRIFT_LIMIT && counted == sent as u64 {
            "flat and exact"
        } else {
            "FAILED"
        }
    );
    if std::env::var_os("STRICTLY_SOAK_SAMPLES").is_some() {
        for s in &samples {
            println!("{s:?}");
        }
    }
}
