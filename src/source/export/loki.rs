//! Grafana Loki: logcli's output modes and the HTTP API's responses.
//!
//! - logcli `query -o jsonl` (grafana/loki `pkg/logcli/output/jsonl.go`):
//!   `{"labels":{..},"line":"..","timestamp":".."}`, keys sorted, `labels`
//!   absent with `--no-labels`; one line per entry.
//! - logcli `-o default` (`output/default.go`): `TS {labels} line`, TS RFC
//!   3339 at second precision in `--timezone`, labels `{k="v", k2="v2"}`
//!   (`strconv.Quote`d values) padded with spaces to the widest, the line
//!   trimmed. logcli prints the labels every stream shares on stderr only
//!   (`Common labels: ...`): the namespace may be missing, `-n` supplies it.
//! - logcli `-o raw` is the line alone: read as raw.
//! - `/loki/api/v1/query_range` saved to a file (`pkg/util/marshal/query.go`):
//!   `{"status":"success","data":{"resultType":"streams","result":[{"stream":
//!   {..},"values":[["<ns>","<line>"],..]}]}}`; with `categorize-labels` each
//!   value is `["<ns>","<line>",{"structuredMetadata":{..},"parsed":{..}}]`
//!   and the pod may sit in the structured metadata.
//! - `/loki/api/v1/tail` messages: `{"streams":[..],"dropped_entries":[..]}`,
//!   one after another.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Entry, LabelPick};

/// Returns true if the first key of a JSON line is logcli jsonl's (Go sorts map keys).
pub fn is_logcli_key(key: &[u8]) -> bool {
    matches!(key, b"labels" | b"line")
}

/// Returns true if the first key of a document is one of a Loki response's.
pub fn is_document_key(key: &[u8]) -> bool {
    matches!(
        key,
        b"status" | b"data" | b"warnings" | b"streams" | b"resultType" | b"dropped_entries"
    )
}

#[derive(Deserialize)]
struct Jsonl {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    line: String,
    #[serde(default)]
    timestamp: Option<String>,
}

/// Decodes one logcli `-o jsonl` line.
pub fn decode_logcli_jsonl(line: &[u8]) -> Option<Entry> {
    let j: Jsonl = serde_json::from_slice(line).ok()?;
    let mut pick = LabelPick::default();
    for (k, v) in &j.labels {
        pick.offer(k, v);
    }
    let timestamp_ms = match &j.timestamp {
        Some(t) => Some(crate::time::parse_rfc3339_ms(t.as_bytes())?),
        None => None,
    };
    Some(Entry {
        namespace: pick.namespace,
        pod: pick.pod,
        container: pick.container,
        timestamp_ms,
        line: j.line,
    })
}

/// Parses the `{k="v", k2="v2"}   ` that follows the time in a logcli `-o default`
/// line: the labels and where the log line starts. None if `rest` does not start so.
pub fn decode_logcli_default(rest: &[u8]) -> Option<(LabelPick, usize)> {
    let mut i = 1;
    if rest.first() != Some(&b'{') {
        return None;
    }
    // `{"` is Envoy's JSON; labels start with a name or close at once.
    let mut pick = LabelPick::default();
    if rest.get(1) != Some(&b'}') {
        loop {
            let start = i;
            while rest
                .get(i)
                .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
            {
                i += 1;
            }
            if i == start || rest[start].is_ascii_digit() || rest.get(i) != Some(&b'=') {
                return None;
            }
            let key = &rest[start..i];
            i += 1;
            let (value, next) = go_unquote(rest, i)?;
            i = next;
            pick.offer(std::str::from_utf8(key).ok()?, &value);
            match rest.get(i)? {
                b',' if rest.get(i + 1) == Some(&b' ') => i += 2,
                b'}' => break,
                _ => return None,
            }
        }
    }
    i = if rest.get(1) == Some(&b'}') { 2 } else { i + 1 };
    // One space after the labels, then the padding.
    if rest.get(i) != Some(&b' ') {
        return (i == rest.len()).then_some((pick, i));
    }
    while rest.get(i) == Some(&b' ') {
        i += 1;
    }
    Some((pick, i))
}

/// Reads a Go `strconv.Quote`d string starting at `s[at]`; the value and the index after it.
fn go_unquote(s: &[u8], at: usize) -> Option<(String, usize)> {
    if s.get(at) != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = at + 1;
    loop {
        match *s.get(i)? {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let c = *s.get(i + 1)?;
                out.push(match c {
                    b'n' => b'\n',
                    b't' => b'\t',
                    b'r' => b'\r',
                    other => other,
                });
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// A Loki response, a `data` object, a tail message or a stream: whichever keys are present.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(rename = "resultType", default)]
    result_type: Option<String>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    streams: Option<&'a RawValue>,
    #[serde(default)]
    stream: Option<BTreeMap<String, String>>,
    #[serde(borrow, default)]
    values: Option<&'a RawValue>,
    #[serde(default)]
    dropped_entries: Vec<de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Stream {
    #[serde(default)]
    stream: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<Value>,
}

/// One `[ts, line]` or `[ts, line, {structuredMetadata, parsed}]`.
struct Value {
    ts_ns: String,
    line: String,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Categorized {
    #[serde(rename = "structuredMetadata", default)]
    structured_metadata: BTreeMap<String, String>,
    #[serde(default)]
    parsed: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a [\"<ns>\", \"<line>\"] or [\"<ns>\", \"<line>\", {..}] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let ts_ns: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let line: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let cat: Option<Categorized> = seq.next_element()?;
                let cat = cat.unwrap_or_default();
                let mut labels = cat.structured_metadata;
                for (k, v) in cat.parsed {
                    labels.entry(k).or_insert(v);
                }
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Value {
                    ts_ns,
                    line,
                    labels,
                })
            }
        }
        d.deserialize_seq(V)
    }
}

/// Walks a Loki response, tail message, `data` object or stream and calls `entry` per log entry.
///
/// `dropped` counts the entries a `tail` message says Loki dropped (`dropped_entries`).
pub fn parse_document(
    doc: &[u8],
    entry: &mut dyn FnMut(Entry) -> bool,
    dropped: &mut u64,
) -> Result<bool, String> {
    let r: Response =
        serde_json::from_slice(doc).map_err(|e| format!("not a Loki response: {e}"))?;
    *dropped += r.dropped_entries.len() as u64;
    if r.status.as_deref() == Some("error") {
        return Err(format!(
            "a Loki error response: {}",
            r.error.as_deref().unwrap_or("(no message)")
        ));
    }
    if let Some(data) = r.data
        && !parse_document(data.get().as_bytes(), entry, dropped)?
    {
        return Ok(false);
    }
    if let Some(kind) = r.result_type.as_deref()
        && kind != "streams"
    {
        return Err(format!(
            "a Loki `{kind}` result (a metric query): strictly reads log lines, save a log query such as {{container=\"istio-proxy\"}}"
        ));
    }
    for list in [r.result, r.streams].into_iter().flatten() {
        let streams: Vec<Stream> = serde_json::from_str(list.get())
            .map_err(|e| format!("not a list of Loki streams: {e}"))?;
        for s in streams {
            if !emit_stream(s, entry)? {
                return Ok(false);
            }
        }
    }
    if let Some(values) = r.values {
        let values: Vec<Value> = serde_json::from_str(values.get())
            .map_err(|e| format!("not Loki stream values: {e}"))?;
        let s = Stream {
            stream: r.stream.unwrap_or_default(),
            values,
        };
        return emit_stream(s, entry);
    }
    Ok(true)
}

fn emit_stream(s: Stream, entry: &mut dyn FnMut(Entry) -> bool) -> Result<bool, String> {
    for v in s.values {
        let (_, e) = entry_of(&s.stream, v)?;
        if !entry(e) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One value of a stream as an [`Entry`], with its timestamp in nanoseconds.
fn entry_of(stream: &BTreeMap<String, String>, v: Value) -> Result<(i128, Entry), String> {
    let mut pick = LabelPick::default();
    // An entry's structured metadata names its pod more precisely than the stream.
    for (k, val) in v.labels.iter().chain(stream) {
        pick.offer(k, val);
    }
    let ns: i128 = v
        .ts_ns
        .parse()
        .map_err(|_| format!("{:?} is not a Loki timestamp (nanoseconds)", v.ts_ns))?;
    let e = Entry {
        namespace: pick.namespace,
        pod: pick.pod,
        container: pick.container,
        timestamp_ms: Some(ns.div_euclid(1_000_000) as i64),
        line: v.line,
    };
    Ok((ns, e))
}

/// One entry of a `query_range` page, with what paging needs to tell it apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PagedEntry {
    /// The entry's timestamp, nanoseconds.
    pub ts_ns: i128,
    /// The stream's labels, rendered `{k="v", ..}` (keys sorted): which stream it is.
    pub stream: String,
    pub entry: Entry,
}

/// Parses one `/loki/api/v1/query_range` response of a log query: every entry of every stream.
pub fn query_range_page(doc: &[u8]) -> Result<Vec<PagedEntry>, String> {
    #[derive(Deserialize)]
    struct Page<'a> {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        error: Option<String>,
        #[serde(borrow)]
        data: Option<Data<'a>>,
    }
    #[derive(Deserialize)]
    struct Data<'a> {
        #[serde(rename = "resultType")]
        result_type: String,
        #[serde(borrow)]
        result: &'a RawValue,
    }
    let page: Page =
        serde_json::from_slice(doc).map_err(|e| format!("not a Loki query_range response: {e}"))?;
    if page.status.as_deref() != Some("success") {
        return Err(format!(
            "Loki answered status {:?}: {}",
            page.status.as_deref().unwrap_or("(none)"),
            page.error.as_deref().unwrap_or("(no message)")
        ));
    }
    let data = page.data.ok_or("a Loki response without `data`")?;
    if data.result_type != "streams" {
        return Err(format!(
            "a Loki `{}` result: --query must be a log query such as {{container=\"istio-proxy\"}}, not a metric query",
            data.result_type
        ));
    }
    let streams: Vec<Stream> = serde_json::from_str(data.result.get())
        .map_err(|e| format!("not a list of Loki streams: {e}"))?;
    let mut out = Vec::new();
    for s in streams {
        let key = render_labels(&s.stream);
        for v in s.values {
            let (ts_ns, entry) = entry_of(&s.stream, v)?;
            out.push(PagedEntry {
                ts_ns,
                stream: key.clone(),
                entry,
            });
        }
    }
    Ok(out)
}

/// `{k="v", k2="v2"}` with keys sorted, as logcli prints a stream's labels.
pub fn render_labels(labels: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(&serde_json::to_string(v).unwrap_or_default());
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logcli_default_labels() {
        let rest = br#"{container="istio-proxy", pod="web-1"}   [x] y"#;
        let (pick, at) = decode_logcli_default(rest).unwrap();
        assert_eq!(pick.pod.as_deref(), Some("web-1"));
        assert_eq!(pick.container.as_deref(), Some("istio-proxy"));
        assert_eq!(&rest[at..], b"[x] y");
        assert!(decode_logcli_default(br#"{"start_time":"x"}"#).is_none());
        let (_, at) = decode_logcli_default(b"{} [x]").unwrap();
        assert_eq!(at, 3);
    }

    #[test]
    fn query_range_two_and_three_element_values() {
        let doc = br#"{"status":"success","data":{"resultType":"streams","encodingFlags":["categorize-labels"],"result":[
          {"stream":{"namespace":"ns","container":"istio-proxy"},"values":[
            ["1763639000123456789","a",{"structuredMetadata":{"pod":"web-1"}}],
            ["1763639000000000000","b",{}],["1763639000000000001","c"]]}]}}"#;
        let mut got = Vec::new();
        parse_document(
            doc,
            &mut |e| {
                got.push(e);
                true
            },
            &mut 0,
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].pod.as_deref(), Some("web-1"));
        assert_eq!(got[0].timestamp_ms, Some(1763639000123));
        assert_eq!(got[1].pod, None);
        assert_eq!(got[2].namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn metric_results_are_refused() {
        let doc = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let err = parse_document(doc, &mut |_| true, &mut 0).unwrap_err();
        assert!(err.contains("metric"), "{err}");
    }
}
