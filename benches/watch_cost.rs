//! Issue 4 item 13: what `watch` costs. The fake API server (tests/support)
//! serves 200 pods and appends 1,000 access lines per second in total across
//! them; the `strictly watch` process follows all 200 streams. Measured on the
//! watch process alone (/proc): CPU time over the load window as a share of
//! one core, and peak RSS — each printed as a ratio to its limit (10% of one
//! core, 100 MiB).
//!
//! Run: `cargo bench --bench watch_cost` (about 40 s; `STRICTLY_COST_SECS`
//! sets the load window, default 20).

#[path = "support/watch_load.rs"]
mod load;
#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use load::{access_line, cluster_time, cpu_seconds, report_requests};
use support::wait_until;

const PODS: usize = 200;
const LINES_PER_SECOND: usize = 1_000;
const CPU_LIMIT: f64 = 0.10;
const RSS_LIMIT_KIB: u64 = 100 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: u64 = std::env::var("STRICTLY_COST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
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
            "30d",
            "--interval",
            "2s",
            "-o",
            "json",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .args(["--listen", &listen.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let all_open = wait_until(Duration::from_secs(30), || {
        names.iter().all(|n| cluster.open_follows("load", n) == 1)
    });
    assert!(all_open, "watch did not open {PODS} follows");
    std::thread::sleep(Duration::from_secs(2));

    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut sent = 0usize;
    // 1,000 lines/s: every 10 ms, 10 lines to 10 pods in turn.
    let mut tick = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        for _ in 0..LINES_PER_SECOND / 100 {
            let at = cluster_time(sent);
            let pod = &names[sent % PODS];
            cluster.append_log("load", pod, "istio-proxy", &[&access_line(&at, sent)]);
            sent += 1;
        }
        tick += Duration::from_millis(10);
        if let Some(wait) = tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss = peak_rss_kib(pid);
    // The cost only counts if the lines were counted: every one, once.
    let mut counted = 0;
    wait_until(Duration::from_secs(10), || {
        counted = report_requests(listen);
        counted == sent as u64
    });
    let _ = child.kill();
    let _ = child.wait();

    let share = cpu / elapsed;
    println!(
        "strictly watch cost: {PODS} pods, {:.0} lines/s for {elapsed:.1} s ({sent} lines sent, {counted} counted)",
        sent as f64 / elapsed
    );
    println!("| measure | value | limit | ratio to limit |");
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| CPU, share of one core | {:.2}% | {:.0}% | {:.2} |",
        share * 100.0,
        CPU_LIMIT * 100.0,
        share / CPU_LIMIT
    );
    println!(
        "| peak RSS | {:.1} MiB | {} MiB | {:.2} |",
        rss as f64 / 1024.0,
        RSS_LIMIT_KIB / 1024,
        rss as f64 / RSS_LIMIT_KIB as f64
    );
}
