//! Push-down for Elasticsearch (`report --elastic .. --pushdown`): the store
//! counts, strictly judges.
//!
//! One composite runtime field (`strictly`, Elasticsearch 8.x) reads each
//! document's `_source`: the namespace, pod and container by the same field
//! names as the line-by-line path, and the log line run through the Envoy
//! format compiled to grok ([`LogFormat::grok_pattern`]), which yields the
//! raw values strictly classifies by (peer SAN, upstream cluster, caller
//! address without its port, ..). A composite aggregation groups the window
//! by those and by hour (`date_histogram`), paged by `after_key`. Each bucket
//! — "N lines like this in this hour" — is classified here with
//! [`crate::request::classify`] and recorded as counted evidence, so
//! attribution, transport and verdict rules are strictly's, never the store's.

use serde_json::{Map, Value, json};

use super::http::Client;
use super::{ElasticConfig, ElasticError, query};
use crate::aggregate::{Aggregator, CountedRow, Window};
use crate::envelope::StreamMeta;
use crate::format::grok::group_name;
use crate::format::{AccessEntry, Field, LogFormat};
use crate::pipeline::PROXY_CONTAINER;
use crate::request::classify;

const HOUR_MS: i64 = 3_600_000;

/// The Painless source of the `strictly` runtime field: `_source` paths
/// (nested, dotted or mixed) read as the line-by-line path reads them, then grok.
pub fn script(pattern: &str) -> String {
    let literal = pattern.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        r#"String pick(def s, String path) {{
  if (!(s instanceof Map)) {{ return null; }}
  def v = s.get(path);
  if (v instanceof List) {{ v = v.isEmpty() ? null : v.get(0); }}
  if (v != null && !(v instanceof Map)) {{ return v.toString(); }}
  int i = path.indexOf('.');
  while (i > 0) {{
    String r = pick(s.get(path.substring(0, i)), path.substring(i + 1));
    if (r != null) {{ return r; }}
    i = path.indexOf('.', i + 1);
  }}
  return null;
}}
String first(def s, List paths) {{
  for (p in paths) {{ String v = pick(s, p); if (v != null) {{ return v; }} }}
  return null;
}}
Map out = new HashMap();
for (k in ['namespace', 'pod', 'container']) {{
  String v = first(params._source, params[k]);
  if (v != null) {{ out.put(k, v); }}
}}
String line = first(params._source, params.message);
Map g = line == null ? null : grok('{literal}').extract(line);
if (g == null) {{
  out.put('match', line == null ? 'nomessage' : 'no');
}} else {{
  out.put('match', 'yes');
  for (e in g.entrySet()) {{ if (e.getValue() != null) {{ out.put(e.getKey(), e.getValue()); }} }}
}}
emit(out);"#
    )
}

/// The search body of one page (`after` = the previous page's `after_key`).
pub fn request_body(
    config: &ElasticConfig,
    format: &LogFormat,
    after: Option<&Value>,
) -> Result<Value, String> {
    let (pattern, fields) = format.grok_pattern().ok_or_else(|| {
        format!(
            "--pushdown: the format {} is JSON; push-down compiles text formats only (use the line-by-line path)",
            format.name()
        )
    })?;
    let mut keys: Vec<String> = ["namespace", "pod", "container", "match"]
        .map(String::from)
        .to_vec();
    keys.extend(fields.iter().map(|f| group_name(*f)));
    let runtime_fields: Map<String, Value> = keys
        .iter()
        .map(|k| (k.clone(), json!({"type": "keyword"})))
        .collect();
    let mut sources = vec![json!({"hour": {"date_histogram": {
        "field": config.timestamp_field, "fixed_interval": "1h"}}})];
    for k in &keys {
        sources.push(json!({k.as_str(): {"terms": {
            "field": format!("strictly.{k}"), "missing_bucket": true}}}));
    }
    let f = &config.fields;
    let mut composite = json!({"size": config.page_size, "sources": sources});
    if let Some(after) = after {
        composite["after"] = after.clone();
    }
    Ok(json!({
        "size": 0,
        "track_total_hits": false,
        "query": query(config),
        "runtime_mappings": {"strictly": {
            "type": "composite",
            "script": {"source": script(&pattern), "params": {
                "message": f.message, "pod": f.pod, "namespace": f.namespace, "container": f.container}},
            "fields": runtime_fields,
        }},
        "aggs": {"strictly": {"composite": composite}},
    }))
}

/// What a push-down read counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PushdownStats {
    pub buckets: u64,
    pub pages: u64,
    /// Documents the store counted (every line, access entry or not).
    pub documents: u64,
}

/// Runs the aggregation page by page and records each bucket into `agg` as input 0 named `name`.
pub fn read(
    config: &ElasticConfig,
    format: &LogFormat,
    agg: &mut Aggregator,
    name: &str,
    progress: &dyn Fn(u64),
) -> Result<PushdownStats, ElasticError> {
    let client = Client::new(config).map_err(ElasticError::Setup)?;
    let path = format!("/{}/_search", config.index);
    let mut stats = PushdownStats::default();
    let mut after: Option<Value> = None;
    let fail = |stats: &PushdownStats, what: String| {
        if stats.pages == 0 {
            ElasticError::Setup(what)
        } else {
            ElasticError::Midway {
                what,
                entries: stats.documents,
                upto: format!(" in {} buckets", stats.buckets),
            }
        }
    };
    loop {
        let body = request_body(config, format, after.as_ref()).map_err(ElasticError::Setup)?;
        let answer = client
            .post(&path, Some(&body))
            .map_err(|e| fail(&stats, e.to_string()))?;
        let v: Value = serde_json::from_slice(&answer)
            .map_err(|e| fail(&stats, format!("not a search response: {e}")))?;
        if v.get("timed_out").and_then(Value::as_bool) == Some(true)
            || v.pointer("/_shards/failed")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                > 0
        {
            return Err(fail(
                &stats,
                "the store answered with partial results (timed out or failed shards)".into(),
            ));
        }
        let Some(buckets) = v
            .pointer("/aggregations/strictly/buckets")
            .and_then(Value::as_array)
        else {
            return Err(fail(
                &stats,
                "the answer holds no aggregations.strictly.buckets".into(),
            ));
        };
        if buckets.is_empty() {
            return Ok(stats);
        }
        for b in buckets {
            let n = b.get("doc_count").and_then(Value::as_u64).unwrap_or(0);
            record_bucket(agg, format, name, &b["key"], n).map_err(|what| fail(&stats, what))?;
            stats.buckets += 1;
            stats.documents += n;
        }
        stats.pages += 1;
        progress(buckets.len() as u64);
        match v.pointer("/aggregations/strictly/after_key") {
            Some(k) => after = Some(k.clone()),
            None => return Ok(stats),
        }
    }
}

/// Records one bucket: `n` lines of one stream, in one hour, alike in every field strictly reads.
fn record_bucket(
    agg: &mut Aggregator,
    format: &LogFormat,
    name: &str,
    key: &Value,
    n: u64,
) -> Result<(), String> {
    let text = |k: &str| key.get(k).and_then(Value::as_str);
    let hour = key
        .get("hour")
        .and_then(Value::as_i64)
        .ok_or("a bucket without its hour")?;
    agg.input.lines += n;
    let container = text("container");
    if container.is_some_and(|c| c != PROXY_CONTAINER) {
        agg.input.skipped += n;
        agg.input.other_containers += n;
        return Ok(());
    }
    let meta = StreamMeta {
        namespace: text("namespace").map(str::as_bytes),
        pod: text("pod").map(str::as_bytes),
        container: container.map(str::as_bytes),
    };
    let stream = agg.stream(0, name, &meta, None);
    let span = Window {
        start_ms: hour,
        end_ms: hour + HOUR_MS,
    };
    agg.observe_counted(stream, span);
    if text("match") != Some("yes") {
        // Not an access entry (or one the format does not fit): the store
        // cannot tell the two apart, so neither is counted as evidence.
        agg.input.skipped += n;
        return Ok(());
    }
    let mut entry = AccessEntry::default();
    for field in Field::ALL {
        if let Some(v) = text(&group_name(field)) {
            entry.set(field, v.as_bytes());
        }
    }
    let request = classify(&entry, format);
    if request.inbound {
        agg.record_counted(
            stream,
            &CountedRow {
                span,
                count: n,
                request,
            },
        );
    } else {
        agg.input.outbound += n;
    }
    Ok(())
}
