//! `report --prometheus URL`: Istio's standard metrics as counted evidence
//! (issue 9 item 3). Prometheus (or Thanos, Mimir) counts; strictly judges.
//!
//! Two range queries, stepped hourly over the window (a sample at `t` is the
//! increase over `(t - 1h, t]`), grouped by destination workload, source
//! principal, source workload and `connection_security_policy`, with
//! `reporter="destination"` (what the called sidecar saw):
//! `istio_requests_total` (HTTP, gRPC) and `istio_tcp_connections_opened_total`
//! (TCP). `connection_security_policy="none"` is plaintext,
//! `source_principal="unknown"` a caller outside the mesh. Each sample
//! becomes an [`CountedRow`] of the destination's stream, so attribution,
//! the window and coverage follow the same rules as log lines: a
//! destination's coverage starts at its series' first sample.
//!
//! `increase()` cannot see the first requests of a series that appears (a
//! new caller's counter starts at its first request's value): a plaintext
//! series whose first sample lies inside the window therefore counts at
//! least one request there, never zero.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::aggregate::{Aggregator, CountedRow, Window};
use crate::envelope::StreamMeta;
use crate::request::{Request, Transport};
use crate::source::SourceMeta;

/// One hour, the step and the `increase` range: spans are hour-aligned.
pub const STEP_MS: i64 = 3_600_000;

/// The grouping labels.
const BY: &str = "destination_workload, destination_workload_namespace, source_principal, source_workload, source_workload_namespace, connection_security_policy";

/// Why Prometheus could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("--prometheus {url}: {message}")]
    Http { url: String, message: String },
    #[error("--prometheus {url}: the answer is not a Prometheus query_range response: {message}")]
    Response { url: String, message: String },
    #[error("--prometheus {url}: the query failed: {message}")]
    Query { url: String, message: String },
}

/// The PromQL strictly sends for `metric`, restricted to `namespaces` when given.
pub fn query(metric: &str, namespaces: &[String]) -> String {
    let mut matchers = String::from(r#"reporter="destination""#);
    if !namespaces.is_empty() {
        let alternatives: Vec<String> = namespaces.iter().map(|n| regex_quote(n)).collect();
        matchers.push_str(&format!(
            r#", destination_workload_namespace=~"{}""#,
            alternatives.join("|")
        ));
    }
    format!("sum by ({BY}) (increase({metric}{{{matchers}}}[1h]))")
}

/// The two queries, in the order they are sent.
pub fn queries(namespaces: &[String]) -> Vec<String> {
    ["istio_requests_total", "istio_tcp_connections_opened_total"]
        .iter()
        .map(|m| query(m, namespaces))
        .collect()
}

/// Escapes a namespace for a PromQL regex inside double quotes.
fn regex_quote(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        } else if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The hour-aligned window a Prometheus report judges: the end floored to the hour.
pub fn aligned_window(end_ms: i64, window_ms: i64) -> Window {
    let end = end_ms.div_euclid(STEP_MS) * STEP_MS;
    let len = ((window_ms + STEP_MS - 1) / STEP_MS).max(1) * STEP_MS;
    Window {
        start_ms: end - len,
        end_ms: end,
    }
}

#[derive(Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// Reads both queries over `window` into `agg`; `input` numbers the source.
pub fn read(
    url: &str,
    namespaces: &[String],
    window: Window,
    agg: &mut Aggregator,
    input: u32,
) -> Result<(), PrometheusError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| PrometheusError::Http {
            url: url.to_string(),
            message: e.to_string(),
        })?;
    let endpoint = format!("{}/api/v1/query_range", url.trim_end_matches('/'));
    for q in queries(namespaces) {
        let start = (window.start_ms / 1000).to_string();
        let end = (window.end_ms / 1000).to_string();
        let step = (STEP_MS / 1000).to_string();
        let resp = http
            .post(&endpoint)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("query", q.as_str()),
                ("start", &start),
                ("end", &end),
                ("step", &step),
            ]))
            .send()
            .map_err(|e| PrometheusError::Http {
                url: url.to_string(),
                message: plain(&e),
            })?;
        let status = resp.status();
        let body = resp.bytes().map_err(|e| PrometheusError::Http {
            url: url.to_string(),
            message: plain(&e),
        })?;
        let parsed: Response =
            serde_json::from_slice(&body).map_err(|e| PrometheusError::Response {
                url: url.to_string(),
                message: if status.is_success() {
                    e.to_string()
                } else {
                    format!("HTTP {status}")
                },
            })?;
        if parsed.status != "success" {
            return Err(PrometheusError::Query {
                url: url.to_string(),
                message: parsed.error.unwrap_or_else(|| format!("HTTP {status}")),
            });
        }
        let data = parsed.data.ok_or_else(|| PrometheusError::Response {
            url: url.to_string(),
            message: "no data".into(),
        })?;
        if data.result_type != "matrix" {
            return Err(PrometheusError::Response {
                url: url.to_string(),
                message: format!("resultType {:?}, not matrix", data.result_type),
            });
        }
        for series in &data.result {
            record_series(agg, input, url, series, window);
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded`: unreserved bytes as they are, the rest `%XX`.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn plain(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// One series' samples as counted rows of its destination's stream.
fn record_series(agg: &mut Aggregator, input: u32, url: &str, series: &Series, window: Window) {
    let label = |k: &str| series.metric.get(k).map(String::as_str).unwrap_or("");
    let (ns, workload) = (
        label("destination_workload_namespace"),
        label("destination_workload"),
    );
    if ns.is_empty() || workload.is_empty() || ns == "unknown" || workload == "unknown" {
        agg.input.skipped += series.values.len() as u64;
        return;
    }
    let meta = SourceMeta {
        namespace: ns.to_string(),
        pod: workload.to_string(),
        container: "istio-proxy".to_string(),
        workload: Some(workload.to_string()),
        container_started_ms: None,
        labels: Default::default(),
    };
    let stream_meta = StreamMeta {
        namespace: Some(ns.as_bytes()),
        pod: Some(workload.as_bytes()),
        container: Some(b"istio-proxy"),
    };
    let stream = agg.stream(input, url, &stream_meta, Some(&meta));
    let principal = label("source_principal");
    let plaintext = label("connection_security_policy") != "mutual_tls";
    let source_name = match (label("source_workload_namespace"), label("source_workload")) {
        (_, "" | "unknown") => None,
        (sns, sw) => Some(format!("{sns}/{sw}")),
    };
    let transport = if plaintext {
        Transport::Plaintext { forged_xfcc: false }
    } else {
        Transport::Mtls {
            identity: (!principal.is_empty() && principal != "unknown")
                .then_some(principal.as_bytes()),
        }
    };
    let request = Request {
        inbound: true,
        time_ms: None,
        transport,
        // Prometheus knows the caller's workload, not its address: the workload names the row.
        peer: match transport {
            Transport::Plaintext { .. } | Transport::Mtls { identity: None } => {
                source_name.as_deref().map(str::as_bytes)
            }
            Transport::Mtls { .. } => None,
        },
        named_destination: None,
        local_address: None,
        audited: false,
        duration_ms: None,
        caller: None,
        ambient: None,
    };
    for (i, (t, v)) in series.values.iter().enumerate() {
        agg.input.lines += 1;
        let end_ms = (*t * 1000.0).round() as i64;
        let span = Window {
            start_ms: end_ms - STEP_MS,
            end_ms,
        };
        agg.observe_counted(stream, span);
        let value: f64 = v.parse().unwrap_or(0.0);
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        // increase() extrapolates to fractions: plaintext rounds up (any is
        // evidence), mTLS down (never more evidence than there was).
        let mut count = if plaintext {
            value.ceil() as u64
        } else {
            value.floor() as u64
        };
        if plaintext && i == 0 && end_ms > window.start_ms {
            // A series that appears inside the window: its first requests
            // are invisible to increase(), but there was at least one.
            count = count.max(1);
        }
        agg.record_counted(
            stream,
            &CountedRow {
                span,
                count,
                request,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_group_by_the_labels_strictly_judges_on() {
        let q = query("istio_requests_total", &["shop".into(), "a.b".into()]);
        assert_eq!(
            q,
            r#"sum by (destination_workload, destination_workload_namespace, source_principal, source_workload, source_workload_namespace, connection_security_policy) (increase(istio_requests_total{reporter="destination", destination_workload_namespace=~"shop|a\\.b"}[1h]))"#
        );
    }

    #[test]
    fn windows_align_to_hours() {
        let w = aligned_window(10 * STEP_MS + 5, 2 * STEP_MS + 1);
        assert_eq!((w.start_ms, w.end_ms), (7 * STEP_MS, 10 * STEP_MS));
    }
}
