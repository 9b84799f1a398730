//! Elasticsearch / OpenSearch: saved search responses, scroll pages, elasticdump NDJSON.
//!
//! - A `_search` (or scroll) response: `{"took":..,"hits":{"total":..,"hits":[{"_index":..,
//!   "_source":{..}},..]}}`; `hits.total` is an integer before ES 7 and
//!   `{"value":..,"relation":..}` since (neither is read). Scroll pages saved as
//!   a JSON array of responses, or one after another, are read alike.
//! - elasticdump NDJSON (elasticsearch-dump `lib/transports/base.js`,
//!   `__handleData`): one whole hit per line, or its `_source` alone with `--sourceOnly`.
//! - The documents: Filebeat / Elastic Agent (`kubernetes.pod.name`,
//!   `kubernetes.namespace`, `kubernetes.container.name`, `message`,
//!   `@timestamp`), Fluent Bit's `kubernetes` filter and Fluentd's
//!   `kubernetes_metadata` (`kubernetes.pod_name`, `namespace_name`,
//!   `container_name`, `log` — Docker's JSON keeps the trailing `\n`), keys
//!   nested or dotted (`"kubernetes.pod.name": ..` is legal in a source). A
//!   hit without `_source` is read from its `fields` (values are arrays).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::Entry;

/// Returns true if the first key of a document is one of a search response's.
pub fn is_response_key(key: &[u8]) -> bool {
    matches!(
        key,
        b"took"
            | b"timed_out"
            | b"_shards"
            | b"hits"
            | b"_scroll_id"
            | b"pit_id"
            | b"terminated_early"
            | b"num_reduce_phases"
            | b"error"
    )
}

/// Returns true if the first key of a JSON line is one of a hit's or a log document's.
pub fn is_document_key(key: &[u8]) -> bool {
    key.starts_with(b"_")
        || key.starts_with(b"kubernetes")
        || matches!(
            key,
            b"@timestamp"
                | b"log"
                | b"message"
                | b"time"
                | b"timestamp"
                | b"stream"
                | b"date"
                | b"agent"
                | b"host"
                | b"ecs"
                | b"container"
                | b"input"
                | b"event"
                | b"docker"
                | b"data_stream"
                | b"cloud"
                | b"orchestrator"
        )
}

/// Where a document keeps the fields strictly reads: each a list of dotted
/// paths, the first present wins. The default takes Filebeat / Elastic
/// Agent's names and then Fluent Bit / Fluentd's; `--elastic-*-field` puts one
/// path in place of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNames {
    pub message: Vec<String>,
    pub pod: Vec<String>,
    pub namespace: Vec<String>,
    pub container: Vec<String>,
    pub timestamp: Vec<String>,
}

impl Default for FieldNames {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect();
        FieldNames {
            message: list(&["message", "log", "event.original"]),
            pod: list(&["kubernetes.pod.name", "kubernetes.pod_name"]),
            namespace: list(&[
                "kubernetes.namespace",
                "kubernetes.namespace.name",
                "kubernetes.namespace_name",
            ]),
            container: list(&["kubernetes.container.name", "kubernetes.container_name"]),
            timestamp: list(&["@timestamp", "time", "timestamp"]),
        }
    }
}

/// Decodes one hit or one log document (an elasticdump line); None if it holds no log line.
pub fn decode_line(line: &[u8]) -> Option<Entry> {
    let value: Map<String, Value> = serde_json::from_slice(line).ok()?;
    from_document(&value, &FieldNames::default())
}

/// The entry of a hit (its `_source`, else its `fields`) or of a bare document.
pub fn from_document(doc: &Map<String, Value>, names: &FieldNames) -> Option<Entry> {
    if let Some(Value::Object(source)) = doc.get("_source")
        && let Some(e) = from_source(source, false, names)
    {
        return Some(e);
    }
    if let Some(Value::Object(fields)) = doc.get("fields")
        && let Some(e) = from_source(fields, true, names)
    {
        return Some(e);
    }
    from_source(doc, false, names)
}

fn from_source(src: &Map<String, Value>, fields: bool, names: &FieldNames) -> Option<Entry> {
    // The first path whose value has the right type wins (Beats before 7
    // had `kubernetes.namespace` as an object holding `name`).
    fn first<T>(
        src: &Map<String, Value>,
        paths: &[String],
        read: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        paths.iter().find_map(|p| {
            let path: Vec<&str> = p.split('.').collect();
            lookup(src, &path).and_then(&read)
        })
    }
    let text = |paths: &[String]| first(src, paths, |v| as_text(v, fields));
    let line = text(&names.message)?;
    Some(Entry {
        namespace: text(&names.namespace),
        pod: text(&names.pod),
        container: text(&names.container),
        timestamp_ms: first(src, &names.timestamp, |v| time_ms(v, fields)),
        line,
    })
}

/// Finds `path` in `obj`, nested (`{"a":{"b":..}}`), dotted (`{"a.b":..}`) or any mix.
fn lookup<'v>(obj: &'v Map<String, Value>, path: &[&str]) -> Option<&'v Value> {
    for i in 1..=path.len() {
        let key = path[..i].join(".");
        if let Some(v) = obj.get(&key) {
            if i == path.len() {
                return Some(v);
            }
            if let Value::Object(inner) = v
                && let Some(found) = lookup(inner, &path[i..])
            {
                return Some(found);
            }
        }
    }
    None
}

/// A string value (in `fields`, the first of its array).
fn as_text(v: &Value, fields: bool) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) if fields => a.first().and_then(|v| as_text(v, false)),
        _ => None,
    }
}

/// An RFC 3339 string, or epoch milliseconds.
fn time_ms(v: &Value, fields: bool) -> Option<i64> {
    match v {
        Value::String(s) => crate::time::parse_rfc3339_ms(s.as_bytes()),
        Value::Number(n) => n.as_i64(),
        Value::Array(a) if fields => a.first().and_then(|v| time_ms(v, false)),
        _ => None,
    }
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    hits: Option<Hits<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Hits<'a> {
    #[serde(borrow, default)]
    hits: Vec<&'a RawValue>,
}

/// Walks a search or scroll response and calls `entry` per hit that holds a log line.
pub fn parse_response(doc: &[u8], entry: &mut dyn FnMut(Entry) -> bool) -> Result<bool, String> {
    let r: Response = serde_json::from_slice(doc)
        .map_err(|e| format!("not an Elasticsearch search response: {e}"))?;
    if let Some(error) = r.error {
        let reason = error
            .get("reason")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_string);
        return Err(format!("an Elasticsearch error response: {reason}"));
    }
    for (i, hit) in r
        .hits
        .map(|h| h.hits)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let doc: Map<String, Value> = serde_json::from_str(hit.get())
            .map_err(|e| format!("hit {}: not a JSON object: {e}", i + 1))?;
        let Some(e) = from_document(&doc, &FieldNames::default()) else {
            return Err(format!(
                "hit {} has no `message` or `log` field (nor `fields` holding one): is this a log index?",
                i + 1
            ));
        };
        if !entry(e) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filebeat_nested_and_dotted() {
        let nested = br#"{"@timestamp":"2026-11-20T11:43:14.559Z","kubernetes":{"pod":{"name":"web-1"},"namespace":"ns","container":{"name":"istio-proxy"}},"message":"[x]"}"#;
        let dotted = br#"{"@timestamp":"2026-11-20T11:43:14.559Z","kubernetes.pod.name":"web-1","kubernetes.namespace":"ns","kubernetes.container.name":"istio-proxy","message":"[x]"}"#;
        for line in [&nested[..], dotted] {
            let e = decode_line(line).unwrap();
            assert_eq!(e.pod.as_deref(), Some("web-1"));
            assert_eq!(e.namespace.as_deref(), Some("ns"));
            assert_eq!(e.container.as_deref(), Some("istio-proxy"));
            assert_eq!(e.line, "[x]");
            assert!(e.timestamp_ms.is_some());
        }
    }

    #[test]
    fn fluentd_hit_keeps_log_newline_for_the_envelope_to_drop() {
        let hit = br#"{"_index":"logstash-1","_id":"a","_source":{"log":"[x]\n","stream":"stdout","kubernetes":{"pod_name":"web-1","namespace_name":"ns","container_name":"istio-proxy"},"@timestamp":"2026-11-20T11:43:14.559123+00:00"}}"#;
        let e = decode_line(hit).unwrap();
        assert_eq!(
            (e.pod.as_deref(), e.line.as_str()),
            (Some("web-1"), "[x]\n")
        );
    }

    #[test]
    fn response_total_integer_or_object() {
        for total in ["5", r#"{"value":5,"relation":"eq"}"#] {
            let doc = format!(
                r#"{{"took":1,"hits":{{"total":{total},"hits":[{{"_source":{{"message":"a"}}}}]}}}}"#
            );
            let mut n = 0;
            parse_response(doc.as_bytes(), &mut |_| {
                n += 1;
                true
            })
            .unwrap();
            assert_eq!(n, 1);
        }
    }
}
