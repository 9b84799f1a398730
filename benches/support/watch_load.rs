#![allow(dead_code)]

//! The load both watch benches put on the fake API server: 200 pods in
//! namespace `load`, access lines (2% plaintext) with distinct increasing
//! timestamps, and the watch's `/report` and `/metrics` read back.

use super::support::{FakeCluster, FakeContainer, FakePod};

/// A cluster of `pods` pods with an istio-proxy sidecar each, and their names.
pub fn cluster_of(pods: usize) -> (FakeCluster, Vec<String>) {
    let cluster = FakeCluster::empty();
    cluster.set_now("2026-11-20T12:00:00Z");
    let names: Vec<String> = (0..pods)
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
    (cluster, names)
}

/// The `i`-th access line, at kubelet time `at`.
pub fn access_line(at: &str, i: usize) -> String {
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
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// `input.requests` of the watch's `/report`.
pub fn report_requests(addr: std::net::SocketAddr) -> u64 {
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
pub fn cluster_time(n: usize) -> String {
    let ms = 1_795_176_000_000i64 + n as i64; // 2026-11-20T12:00:00Z + n ms
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms).unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// One unlabelled sample of the watch's `/metrics` (e.g. `strictly_streams_open`).
pub fn metric(addr: std::net::SocketAddr, name: &str) -> Option<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A `/proc/PID/status` field in its own unit (kB for sizes).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}
