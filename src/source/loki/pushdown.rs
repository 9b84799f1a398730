//! Push-down (`--pushdown`): Loki counts, strictly judges.
//!
//! Each text format compiles to an RE2 pattern with a named group per field
//! a verdict needs ([`crate::format::PUSHDOWN_FIELDS`]). Per format, in the
//! order the line parser tries them (so a line counts for the first format
//! that reads it, as line by line):
//!
//! ```text
//! sum by (namespace, pod, container, x_peer_san, ..) (count_over_time(
//!     {SELECTOR} !~ `EARLIER` .. |~ `THIS` | regexp `THIS` [1h]))
//! ```
//!
//! stepped hourly over the window plus the coverage hour, through
//! `/loki/api/v1/query_range` (a matrix). A coverage query counts every line
//! per stream and hour (what each stream covers); a guard counts lines that
//! look like JSON, which no text pattern reads. Each row's labels are filled
//! into an access entry and classified by [`crate::request::classify`], then
//! recorded as counted evidence ([`crate::aggregate::CountedRow`]). Where
//! Loki's series limit (`max_query_series`, 500) refuses a query, it is run
//! again per namespace, then per pod.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::matrix::{Series, parse_matrix};
use super::{Client, LokiError};
use crate::aggregate::{Aggregator, CountedRow, Window};
use crate::envelope::StreamMeta;
use crate::format::{AccessEntry, FormatSet, PUSHDOWN_FIELDS};
use crate::request::classify;

const HOUR_MS: i64 = 3_600_000;
/// The stream labels every query groups by.
const STREAM_LABELS: [&str; 3] = ["namespace", "pod", "container"];

/// What push-down asks Loki.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The stream selector (`{namespace="a", container="istio-proxy"}`).
    pub selector: String,
    /// The window judged, on whole hours: `(start, end]`.
    pub window: Window,
    /// Counting queries, one per text format (the format's index in the set).
    pub formats: Vec<(usize, String)>,
}

/// The window ending at `end_ms` floored to the hour, its length rounded up to whole hours.
pub fn hour_window(end_ms: i64, window_ms: i64) -> Window {
    let end = end_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let hours = (window_ms + HOUR_MS - 1).div_euclid(HOUR_MS).max(1);
    Window {
        start_ms: end - hours * HOUR_MS,
        end_ms: end,
    }
}

/// Compiles the formats into the counting queries for `selector`.
pub fn plan(selector: &str, formats: &FormatSet, window: Window) -> Result<Plan, LokiError> {
    let selector = selector.trim();
    if !(selector.starts_with('{') && selector.ends_with('}')) || selector.contains('|') {
        return Err(LokiError::Usage(format!(
            "--pushdown needs --query to be a stream selector only ({{namespace=\"a\", container=\"istio-proxy\"}}), not {selector:?}"
        )));
    }
    // The line parser's order: formats that log the peer SAN, then the most literal bytes.
    let parser = crate::format::LineParser::new(formats.clone());
    let order = parser.order().to_vec();
    let mut earlier: Vec<String> = Vec::new();
    let mut queries = Vec::new();
    for i in order {
        let f = &formats[i];
        // JSON and ztunnel formats are not compiled (see the JSON guard; ztunnel
        // logs in its own container, which an istio-proxy selector does not reach).
        let re = match f.re2_pattern() {
            Ok(re) => re,
            Err(crate::format::PushdownError::Json(_)) => continue,
            Err(e) => return Err(LokiError::Usage(format!("--pushdown: {e}"))),
        };
        let mut by: Vec<&str> = STREAM_LABELS.to_vec();
        by.extend(
            PUSHDOWN_FIELDS
                .iter()
                .filter(|(field, _)| f.logs(*field))
                // X-Forwarded-For is client-written (one series per client
                // request chain); it names a plaintext caller only where no
                // peer address is logged.
                .filter(|(field, _)| {
                    *field != crate::format::Field::ForwardedFor
                        || !f.logs(crate::format::Field::DownstreamRemoteAddress)
                })
                .map(|(_, l)| *l),
        );
        let mut pipeline = String::new();
        for e in &earlier {
            pipeline.push_str(&format!(" !~ `{e}`"));
        }
        pipeline.push_str(&format!(" |~ `{re}` | regexp `{re}`"));
        queries.push((
            i,
            format!(
                "sum by ({}) (count_over_time(SELECTOR{pipeline} [1h]))",
                by.join(", ")
            ),
        ));
        earlier.push(re);
    }
    if queries.is_empty() {
        return Err(LokiError::Usage(
            "--pushdown: every format is JSON; push-down compiles text formats only (drop --pushdown)".into(),
        ));
    }
    Ok(Plan {
        selector: selector.to_string(),
        window,
        formats: queries,
    })
}

impl Plan {
    /// Every query with `selector` in place, for `--explain`.
    pub fn explain(&self) -> Vec<String> {
        let mut out = vec![coverage_query(&self.selector), json_guard(&self.selector)];
        out.extend(
            self.formats
                .iter()
                .map(|(_, q)| q.replace("SELECTOR", &self.selector)),
        );
        out
    }

    /// `start`, `end` (ns) and `step` of every query: the hour before the window, then its hours.
    fn range(&self) -> [(&'static str, String); 3] {
        let ns = |ms: i64| (ms as i128 * 1_000_000).to_string();
        [
            ("start", ns(self.window.start_ms)),
            ("end", ns(self.window.end_ms)),
            ("step", "3600".to_string()),
        ]
    }
}

fn coverage_query(selector: &str) -> String {
    format!("sum by (namespace, pod, container) (count_over_time({selector} [1h]))")
}

/// Lines that start like a JSON object: an Envoy JSON access log no text pattern reads.
fn json_guard(selector: &str) -> String {
    format!("sum by (namespace, pod, container) (count_over_time({selector} |~ `^\\s*\\{{` [1h]))")
}

/// Runs `query` (with `SELECTOR` replaced), splitting by namespace and then
/// by pod when Loki's series limit refuses it.
fn run_split(
    client: &mut Client,
    plan: &Plan,
    query: &str,
    selector: &str,
    streams: &[(String, String)],
    depth: u8,
) -> Result<Vec<Series>, LokiError> {
    let mut params = vec![("query", query.replace("SELECTOR", selector))];
    params.extend(plan.range());
    match client.get("/loki/api/v1/query_range", &params) {
        Ok(body) => parse_matrix(&body).map_err(LokiError::Garbled),
        Err(LokiError::Refused(why)) if why.contains("series") && depth < 2 => {
            let inner = selector.trim_start_matches('{');
            let mut parts: Vec<String> = streams
                .iter()
                .map(|(ns, pod)| match depth {
                    0 => format!("{{namespace={ns:?}, {inner}"),
                    _ => format!("{{namespace={ns:?}, pod={pod:?}, {inner}"),
                })
                .collect();
            parts.sort();
            parts.dedup();
            let mut out = Vec::new();
            for part in parts {
                out.extend(run_split(client, plan, query, &part, streams, depth + 1)?);
            }
            Ok(out)
        }
        Err(e) => Err(e),
    }
}

/// Runs the plan and records what Loki counted into `agg` (input 0, named `name`).
pub fn run(
    client: &mut Client,
    plan: &Plan,
    formats: &FormatSet,
    agg: &mut Aggregator,
    name: &str,
) -> Result<(), LokiError> {
    let coverage = match run_split(
        client,
        plan,
        &coverage_query("SELECTOR"),
        &plan.selector,
        &[],
        2,
    ) {
        Err(LokiError::Refused(why)) if why.contains("series") => {
            // Too many streams for one query: find the pods per namespace, then ask per pod.
            let pods = list_pods(client, plan)?;
            run_split(
                client,
                plan,
                &coverage_query("SELECTOR"),
                &plan.selector,
                &pods,
                1,
            )?
        }
        other => other?,
    };
    let streams: Vec<(String, String)> = coverage
        .iter()
        .map(|(l, _)| {
            let get = |k: &str| l.get(k).cloned().unwrap_or_default();
            (get("namespace"), get("pod"))
        })
        .collect();
    let span = |end: i64| Window {
        start_ms: end - HOUR_MS,
        end_ms: end,
    };
    let mut lines = 0;
    for (labels, points) in &coverage {
        let stream = stream_of(agg, name, labels);
        for &(t, n) in points {
            agg.observe_counted_lines(stream, span(t), n);
            lines += n;
        }
    }
    agg.input.lines += lines;
    let guard = run_split(
        client,
        plan,
        &json_guard("SELECTOR"),
        &plan.selector,
        &streams,
        0,
    )?;
    let json_lines: u64 = guard
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, n)| n))
        .sum();
    if json_lines > 0 && formats.iter().any(|f| f.is_json()) {
        return Err(LokiError::Usage(format!(
            "--pushdown: {json_lines} lines look like JSON access entries, which push-down cannot count (text formats only): drop --pushdown"
        )));
    }
    let mut matched = 0;
    for (i, query) in &plan.formats {
        let rows = run_split(client, plan, query, &plan.selector, &streams, 0)?;
        let format = &formats[*i];
        for (labels, points) in rows {
            let stream = stream_of(agg, name, &labels);
            let mut entry = AccessEntry::default();
            for (field, label) in PUSHDOWN_FIELDS {
                if let Some(v) = labels.get(label) {
                    entry.set(field, v.as_bytes());
                }
            }
            let request = classify(&entry, format);
            for (t, n) in points {
                matched += n;
                if request.inbound {
                    let row = CountedRow {
                        span: span(t),
                        count: n,
                        request,
                    };
                    agg.record_counted(stream, &row);
                } else {
                    agg.input.outbound += n;
                }
            }
        }
    }
    agg.input.skipped += lines.saturating_sub(matched);
    Ok(())
}

/// Every (namespace, pod) the selector reaches, from Loki's label-values API
/// (which the series limit does not bound), asked per namespace.
fn list_pods(client: &mut Client, plan: &Plan) -> Result<Vec<(String, String)>, LokiError> {
    let mut values = |label: &str, selector: &str| -> Result<Vec<String>, LokiError> {
        let mut params = vec![("query", selector.to_string())];
        params.extend(plan.range().into_iter().take(2));
        // The range read by the metric queries: the hour before the window's start too.
        params[1].1 = ((plan.window.start_ms - HOUR_MS) as i128 * 1_000_000).to_string();
        let body = client.get(&format!("/loki/api/v1/label/{label}/values"), &params)?;
        #[derive(Deserialize)]
        struct Values {
            #[serde(default)]
            data: Vec<String>,
        }
        let v: Values = serde_json::from_slice(&body)
            .map_err(|e| LokiError::Garbled(format!("label values: {e}")))?;
        Ok(v.data)
    };
    let mut pods = Vec::new();
    for ns in values("namespace", &plan.selector)? {
        let inner = plan.selector.trim_start_matches('{');
        let selector = format!("{{namespace={ns:?}, {inner}");
        for pod in values("pod", &selector)? {
            pods.push((ns.clone(), pod));
        }
    }
    Ok(pods)
}

fn stream_of(
    agg: &mut Aggregator,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> crate::aggregate::StreamId {
    let get = |k: &str| {
        labels
            .get(k)
            .map(String::as_bytes)
            .filter(|v| !v.is_empty())
    };
    let meta = StreamMeta {
        namespace: get("namespace"),
        pod: get("pod"),
        container: get("container"),
    };
    agg.stream(0, name, &meta, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_moves_to_whole_hours() {
        let w = hour_window(10 * HOUR_MS + 5, 90 * 60_000);
        assert_eq!((w.start_ms, w.end_ms), (8 * HOUR_MS, 10 * HOUR_MS));
    }

    #[test]
    fn formats_are_queried_in_the_parsers_order_each_excluding_the_earlier() {
        let formats = crate::format::load(None, None).unwrap();
        let p = plan(
            r#"{container="istio-proxy"}"#,
            &formats,
            hour_window(HOUR_MS * 10, HOUR_MS),
        )
        .unwrap();
        assert!(!p.formats.is_empty());
        assert_eq!(p.formats[0].1.matches("!~").count(), 0);
        assert_eq!(p.formats[1].1.matches("!~").count(), 1);
        assert!(p.explain()[2].contains(r#"count_over_time({container="istio-proxy"} |~ `(?s)^"#));
        assert!(plan(r#"{a="b"} |= "x""#, &formats, p.window).is_err());
    }
}
