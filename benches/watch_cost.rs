//! Issue 4 item 13: what `watch` costs. The fake API server (tests/support)
//! serves 200 pods and appends 1,000 access lines per second in total across
//! them; the `strictly watch` process follows all 200 streams. Measured on the
//! watch process alone (/proc): CPU time over the load window as a share of
//! one core, and peak RSS — each printed as a ratio to its limit (10% of one
//! core, 100 MiB).
//!
//! Run: `cargo bench --bench watch_cost` (about 40 s; `STRICTLY_COST_SECS`
//! sets the load window, default 20).

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{FakeCluster, FakeContainer, FakePod, wait_until};

const PODS: usize = 200;
const LINES_PER_SECOND: usize = 1_000;
const CPU_LIMIT: f64 = 0.10;
const RSS_LIMIT_KIB: u64 = 100 * 1024;

fn access_line(at: &str, i: usize) -> String {
    let start = &at[..23];
    if i.is_multiple_of(50) {
        format!(
            r#"{at} [{start}Z] "GET / HTTP/1.1" 200 - "-" 0 1100 3 3 "10.44.0.{}" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#,
            i % 7
        )
    } else {
        format!(
            r#"{at} [{start}Z] "GET /api/items HTTP/1.1" 200 - "-" 0 2048 7 6 "-" mTLS_Origin: "spiffe://cluster.local/ns/load/sa/caller-{}" mTLS_Destination: "spiffe://cluster.local/ns/load/sa/svc-{}" cert: "By=spiffe://cluster.local/ns/load/sa/svc-{};Hash=cdd00c3f7a968b8a48d41d536839485fc8f3c049915794a7688dc595f114e18b;Subject="";URI=spiffe://cluster.local/ns/load/sa/caller-{}" audit_flag: "false""#,
            i % 5,
            i % 20,
            i % 20,
            i % 5
        )
    }
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

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
    let cluster = FakeCluster::empty();
    cluster.set_now("2026-11-20T12:00:00Z");
    let names: Vec<String> = (0..PODS)
        .map(|i| format!("svc-{}-{i:03}", i % 20))
        .collect();
    for (i, name) in names.iter().enumerate() {
        cluster.add_pod(
            FakePod::new("load", name)
                .label("app", &format!("svc-{}", i % 20))
                .pod_ip(&format!("10.45.{}.{}", i / 250, i % 250))
                .container(FakeContainer::new("istio-proxy").started_at("2026-11-20T11:00:00Z")),
        );
    }
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

/// `input.requests` of the watch's `/report`.
fn report_requests(addr: std::net::SocketAddr) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = write!(
        s,
        "GET /report HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["input"]["requests"].as_u64())
        .unwrap_or(0)
}

/// Distinct, increasing timestamps after the scenario's start.
fn cluster_time(n: usize) -> String {
    let ms = 1_795_176_000_000i64 + n as i64; // 2026-11-20T12:00:00Z + n ms
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}
