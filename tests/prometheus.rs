//! Issue 9 item 3: `strictly report --prometheus URL` judges from Istio's
//! standard metrics. One fixture mesh is written twice from the same
//! requests — as sidecar access logs and as the `istio_requests_total`
//! counters Prometheus scrapes every minute — and both give the same verdicts.

mod common;
#[path = "support/fake_prometheus.rs"]
mod fake_prometheus;

use std::collections::BTreeMap;

use common::{destination, strictly};
use fake_prometheus::{FakePrometheus, RawSeries};
use serde_json::Value;

/// The window's end (hour-aligned) and start, epoch seconds.
const END: i64 = 1_795_694_400; // 2026-11-20T12:00:00Z
const START: i64 = END - 86_400;

/// One request of the mesh: destination pod, its IP, the caller (None: plaintext from outside the mesh), when.
struct Req {
    pod: &'static str,
    ip: &'static str,
    workload: &'static str,
    caller: Option<&'static str>,
    t: i64,
}

/// The mesh: web-api called over mTLS all day (ready); catalog too, plus one
/// plaintext request from outside the mesh at 03:20 (blocked); orders
/// started at 02:00 today (insufficient: its evidence does not cover the window).
fn mesh() -> (Vec<Req>, BTreeMap<&'static str, i64>) {
    let mut reqs = Vec::new();
    let mut first_line = BTreeMap::new();
    let pods = [
        (
            "web-api-7d9f8c6b5-x2x4z",
            "10.44.1.23",
            "web-api",
            START - 7200,
        ),
        (
            "catalog-6b5d8c7f9-p4q7r",
            "10.44.2.5",
            "catalog",
            START - 7200,
        ),
        (
            "orders-5f6d7c8b9-k8m2p",
            "10.44.3.3",
            "orders",
            END - 10 * 3600,
        ),
    ];
    for (pod, ip, workload, from) in pods {
        first_line.insert(pod, from);
        let mut t = from + 600;
        while t < END {
            reqs.push(Req {
                pod,
                ip,
                workload,
                caller: Some("sleep"),
                t,
            });
            t += 1800;
        }
    }
    reqs.push(Req {
        pod: "catalog-6b5d8c7f9-p4q7r",
        ip: "10.44.2.5",
        workload: "catalog",
        caller: None,
        t: END - 8 * 3600 - 40 * 60,
    });
    reqs.sort_by_key(|r| r.t);
    (reqs, first_line)
}

fn rfc3339(t: i64, nanos: bool) -> String {
    let d = chrono::DateTime::from_timestamp(t, 0).unwrap();
    if nanos {
        d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    } else {
        d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// `kubectl logs --prefix --timestamps -n shop` of the mesh, Istio's default TEXT format.
fn logs(reqs: &[Req], first_line: &BTreeMap<&str, i64>) -> String {
    let mut out = String::new();
    for (pod, t) in first_line {
        out.push_str(&format!(
            "[pod/{pod}/istio-proxy] {} {}\tinfo\tEnvoy proxy is ready\n",
            rfc3339(*t, true),
            rfc3339(*t, false).replace('Z', "000Z")
        ));
    }
    for r in reqs {
        let (sni, remote) = match r.caller {
            Some(_) => (
                format!("outbound_.8080_._.{}.shop.svc.cluster.local", r.workload),
                "10.44.0.9:41000",
            ),
            None => ("-".to_string(), "192.0.2.10:52000"),
        };
        out.push_str(&format!(
            "[pod/{}/istio-proxy] {} [{}] \"GET / HTTP/1.1\" 200 - via_upstream - \"-\" 0 1131 8 8 \"-\" \"curl/8.5.0\" \"791d2d45-ef0c-4076-8406-e79a01882a37\" \"{w}.shop:8080\" \"{ip}:8080\" inbound|8080|| 127.0.0.6:41423 {ip}:8080 {remote} {sni} default\n",
            r.pod,
            rfc3339(r.t, true),
            rfc3339(r.t, false),
            w = r.workload,
            ip = r.ip,
        ));
    }
    out
}

/// The counters Prometheus would scrape each minute from the destinations' sidecars.
fn series(reqs: &[Req], first_line: &BTreeMap<&str, i64>) -> Vec<RawSeries> {
    let mut by_series: BTreeMap<BTreeMap<String, String>, Vec<i64>> = BTreeMap::new();
    let mut pod_start: BTreeMap<BTreeMap<String, String>, i64> = BTreeMap::new();
    for r in reqs {
        let mut l = BTreeMap::new();
        let mut set = |k: &str, v: &str| {
            l.insert(k.to_string(), v.to_string());
        };
        set("__name__", "istio_requests_total");
        set("reporter", "destination");
        set("destination_workload", r.workload);
        set("destination_workload_namespace", "shop");
        set("response_code", "200");
        match r.caller {
            Some(c) => {
                set("source_workload", c);
                set("source_workload_namespace", "shop");
                set(
                    "source_principal",
                    &format!("spiffe://cluster.local/ns/shop/sa/{c}"),
                );
                set("connection_security_policy", "mutual_tls");
            }
            None => {
                set("source_workload", "unknown");
                set("source_workload_namespace", "unknown");
                set("source_principal", "unknown");
                set("connection_security_policy", "none");
            }
        }
        pod_start.insert(l.clone(), first_line[r.pod]);
        by_series.entry(l).or_default().push(r.t);
    }
    by_series
        .into_iter()
        .map(|(labels, times)| {
            // A counter series exists from its first request on; scraped every minute.
            let first = times[0];
            let mut samples = Vec::new();
            let mut t = (first / 60 + 1) * 60;
            while t <= END + 60 {
                let v = times.iter().filter(|&&x| x <= t).count() as f64;
                samples.push((t, v));
                t += 60;
            }
            let _ = pod_start[&labels];
            RawSeries { labels, samples }
        })
        .collect()
}

fn run(args: &[&str], stdin: Option<String>) -> (Option<i32>, Value, String) {
    let mut cmd = strictly();
    cmd.arg("report").args(args).args(["-o", "json"]);
    if let Some(s) = stdin {
        cmd.write_stdin(s);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code(), json, stderr)
}

#[test]
fn issue_9_3_prometheus_counters_give_the_same_verdicts_as_the_logs() {
    let (reqs, first_line) = mesh();
    let until = rfc3339(END, false);
    let (log_code, from_logs, _) = run(
        &["-n", "shop", "--until", &until, "--window", "24h"],
        Some(logs(&reqs, &first_line)),
    );
    let prom = FakePrometheus::start(series(&reqs, &first_line));
    let prom_args = [
        "--prometheus",
        &prom.url(),
        "-n",
        "shop",
        "--until",
        &until,
        "--window",
        "24h",
    ];
    let (prom_code, from_prom, _) = run(&prom_args, None);
    assert_eq!(prom_code, log_code, "{from_prom:#}");
    for (name, verdict) in [
        ("shop/web-api", "ready"),
        ("shop/catalog", "blocked"),
        ("shop/orders", "insufficient"),
    ] {
        assert_eq!(
            destination(&from_logs, name)["verdict"],
            verdict,
            "logs: {from_logs:#}"
        );
        assert_eq!(
            destination(&from_prom, name)["verdict"],
            verdict,
            "prometheus: {from_prom:#}"
        );
    }
    assert_eq!(
        from_prom["destinations"].as_array().unwrap().len(),
        from_logs["destinations"].as_array().unwrap().len()
    );
    // The plaintext caller is named as Prometheus knows it; its one request was seen.
    let catalog = destination(&from_prom, "shop/catalog");
    assert!(catalog["plaintext"].as_u64().unwrap() >= 1, "{catalog:#}");
    // web-api's mTLS count: Prometheus extrapolates, so close to the logs', never zero.
    let (a, b) = (
        destination(&from_logs, "shop/web-api")["mtls"]
            .as_u64()
            .unwrap() as f64,
        destination(&from_prom, "shop/web-api")["mtls"]
            .as_u64()
            .unwrap() as f64,
    );
    assert!((a - b).abs() / a < 0.1, "logs {a}, prometheus {b}");
    // --explain prints the PromQL the read sends (what the fake received) and sends nothing.
    let queries = prom.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 2);
    let out = strictly()
        .arg("report")
        .args(prom_args)
        .arg("--explain")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty());
    for q in &queries {
        assert!(stderr.contains(q.as_str()), "{stderr}");
        assert!(q.contains(r#"reporter="destination""#), "{q}");
    }
    assert_eq!(
        prom.queries.lock().unwrap().len(),
        2,
        "--explain sent a query"
    );
}

#[test]
fn issue_9_3_prometheus_errors_are_one_line() {
    // A query Prometheus refuses: the fake answers 400 bad_data for an unknown shape.
    let prom = FakePrometheus::start(Vec::new());
    let (reqs, first_line) = mesh();
    drop((reqs, first_line));
    let out = strictly()
        .args([
            "report",
            "--prometheus",
            &format!("{}/nothing-here", prom.url()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("strictly: error: --prometheus "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // Nothing listening.
    let out = strictly()
        .args(["report", "--prometheus", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("strictly: error: --prometheus http://127.0.0.1:9"),
        "{err}"
    );
    // Files and --prometheus together.
    let out = strictly()
        .args(["report", "--prometheus", &prom.url(), "some.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
