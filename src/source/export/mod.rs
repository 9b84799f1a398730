//! Exports from log stores and log tools: Loki (logcli, HTTP API), Elasticsearch
//! / OpenSearch (search responses, scroll pages, elasticdump, Filebeat, Fluent
//! Bit, Fluentd) and stern's `extjson`.
//!
//! Two shapes, two seams:
//! - **one entry per line** (logcli `-o jsonl` and `-o default`, elasticdump
//!   NDJSON, stern `-o extjson`): an envelope. [`crate::envelope`] recognises
//!   the line and calls [`decode_json_line`] or [`loki::decode_logcli_default`],
//!   on the worker threads like any other envelope.
//! - **whole documents** (a saved Loki `query_range` response, Loki `tail`
//!   messages, an Elasticsearch `_search` response, an array of scroll
//!   pages): [`document_kind`] recognises one from the first bytes of the
//!   input, and [`read_document`] turns it into *framed* lines — the entry's
//!   stream metadata and write time ahead of the line, see [`frame`] — which
//!   go through the one [`LineCutter`] into chunks marked `framed`. A document
//!   is read whole, up to [`MAX_DOCUMENT`] bytes: larger ones are refused
//!   with the advice to export NDJSON instead, which streams.
//!
//! Every entry's metadata (namespace, pod, container) is the stream metadata
//! of its line, and the store's timestamp is its write time.

use super::lines::LineCutter;
use super::{Chunk, SourceError};
use crate::envelope::{Enveloped, StreamMeta};

pub mod elastic;
pub mod kibana;
pub mod loki;
pub mod stern;

/// The largest whole JSON document read (a saved API response); NDJSON exports have no limit.
pub const MAX_DOCUMENT: usize = 512 << 20;

/// One log entry of an export, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    /// The store's timestamp (the write time), epoch ms.
    pub timestamp_ms: Option<i64>,
    pub line: String,
}

impl Entry {
    /// Borrows the entry as an envelope result, copying it into `scratch`.
    pub fn place(self, scratch: &mut Vec<u8>) -> Enveloped<'_> {
        scratch.clear();
        let mut ranges = [None, None, None];
        for (slot, value) in ranges
            .iter_mut()
            .zip([&self.namespace, &self.pod, &self.container])
        {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let start = scratch.len();
                scratch.extend_from_slice(v.as_bytes());
                *slot = Some(start..scratch.len());
            }
        }
        let start = scratch.len();
        scratch.extend_from_slice(trim_line_end(self.line.as_bytes()));
        let payload = start..scratch.len();
        let scratch: &[u8] = scratch;
        let get = |r: &Option<std::ops::Range<usize>>| r.clone().map(|r| &scratch[r]);
        Enveloped {
            meta: StreamMeta {
                namespace: get(&ranges[0]),
                pod: get(&ranges[1]),
                container: get(&ranges[2]),
            },
            timestamp_ms: self.timestamp_ms,
            payload: &scratch[payload],
        }
    }
}

/// Drops one trailing `\n` (Fluentd's `log` keeps it) and then a `\r`.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first key of a JSON object line (its raw bytes between the quotes), if the line starts one.
pub fn first_key(line: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    let skip = |i: &mut usize| {
        while line.get(*i).is_some_and(|b| b" \t\r\n".contains(b)) {
            *i += 1;
        }
    };
    skip(&mut i);
    if line.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    skip(&mut i);
    if line.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let end = start + memchr::memchr(b'"', &line[start..])?;
    Some(&line[start..end])
}

/// Decodes one NDJSON line of an export (logcli `-o jsonl`, elasticdump hits
/// or `--sourceOnly` documents, stern `-o extjson`), recognised by its first
/// key; None when it is none of them (an Envoy JSON access line).
pub fn decode_json_line<'a>(line: &[u8], scratch: &'a mut Vec<u8>) -> Option<Enveloped<'a>> {
    let key = first_key(line)?;
    let entry = if loki::is_logcli_key(key) {
        loki::decode_logcli_jsonl(line)
    } else if stern::is_extjson_key(key) {
        stern::decode_extjson(line)
    } else if elastic::is_document_key(key) {
        // A bare `{"message": ..}` says nothing an Envoy JSON line could not:
        // detection wants a pod or a time (`--input elastic` takes any).
        elastic::decode_line(line).filter(|e| e.pod.is_some() || e.timestamp_ms.is_some())
    } else {
        None
    }?;
    Some(entry.place(scratch))
}

/// A whole-document export, recognised by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentKind {
    /// A Loki `query_range` response or `tail` messages.
    Loki,
    /// An Elasticsearch/OpenSearch search or scroll response.
    Elastic,
    /// A JSON array (scroll pages, Loki responses, streams).
    Array,
    /// A Kibana / OpenSearch Dashboards CSV export (Discover's "Generate CSV").
    KibanaCsv,
}

/// Recognises a whole-document export from the input's first bytes; None for line-oriented input.
pub fn document_kind(head: &[u8]) -> Option<DocumentKind> {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head.iter().position(|b| !b" \t\r\n".contains(b))?;
    let head = &head[start..];
    if kibana::is_csv_header(head) {
        return Some(DocumentKind::KibanaCsv);
    }
    if head[0] == b'[' {
        // `[{` or `[]` is JSON; Envoy's text lines start `[2026-`.
        let next = head[1..].iter().find(|b| !b" \t\r\n".contains(b))?;
        return matches!(next, b'{' | b']').then_some(DocumentKind::Array);
    }
    let key = first_key(head)?;
    if loki::is_document_key(key) {
        Some(DocumentKind::Loki)
    } else if elastic::is_response_key(key) {
        Some(DocumentKind::Elastic)
    } else {
        None
    }
}

/// Walks one document (or a sequence of them, or an array of them) and calls `entry` for each log entry.
///
/// Returns the number of entries Loki said it dropped (`tail`'s `dropped_entries`).
pub fn parse_document(doc: &[u8], entry: &mut dyn FnMut(Entry) -> bool) -> Result<u64, String> {
    let mut dropped = 0;
    let mut values =
        serde_json::Deserializer::from_slice(doc).into_iter::<&serde_json::value::RawValue>();
    for value in &mut values {
        let value = value.map_err(|e| format!("not valid JSON: {e}"))?;
        if !parse_value(value.get().as_bytes(), entry, 0, &mut dropped)? {
            return Ok(dropped);
        }
    }
    Ok(dropped)
}

/// One top-level value: an array of documents, or a Loki or Elasticsearch document.
fn parse_value(
    value: &[u8],
    entry: &mut dyn FnMut(Entry) -> bool,
    depth: u8,
    dropped: &mut u64,
) -> Result<bool, String> {
    let first = value.iter().find(|b| !b" \t\r\n".contains(b)).copied();
    if first == Some(b'[') && depth < 2 {
        let items: Vec<&serde_json::value::RawValue> =
            serde_json::from_slice(value).map_err(|e| format!("not valid JSON: {e}"))?;
        for item in items {
            if !parse_value(item.get().as_bytes(), entry, depth + 1, dropped)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    let key = first_key(value).unwrap_or_default();
    if loki::is_document_key(key) || key == b"stream" {
        loki::parse_document(value, entry, dropped)
    } else if elastic::is_response_key(key) {
        elastic::parse_response(value, entry)
    } else if elastic::is_document_key(key) {
        // An array of hits (or of sources).
        match elastic::decode_line(value) {
            Some(e) => Ok(entry(e)),
            None => Err("an Elasticsearch document without a `message` or `log` field".into()),
        }
    } else {
        Err(format!(
            "neither a Loki response (status, data, streams) nor an Elasticsearch response (took, hits, _scroll_id): first key {:?}",
            String::from_utf8_lossy(key)
        ))
    }
}

/// Separates the fields of a framed line.
const SEP: u8 = 0x1f;

/// Writes one entry as a framed line: `NS␟POD␟CONTAINER␟MS␟LINE\n` (absent fields empty).
///
/// A line holding `\n` becomes several lines with the same frame, as the
/// container runtime would have written them.
pub fn frame(entry: &Entry, out: &mut Vec<u8>) {
    let line = trim_line_end(entry.line.as_bytes());
    for part in line.split(|&b| b == b'\n') {
        for value in [&entry.namespace, &entry.pod, &entry.container] {
            // A value that would break the frame is no metadata.
            if let Some(v) = value
                .as_deref()
                .filter(|v| !v.bytes().any(|b| b == SEP || b == b'\n'))
            {
                out.extend_from_slice(v.as_bytes());
            }
            out.push(SEP);
        }
        if let Some(ms) = entry.timestamp_ms {
            out.extend_from_slice(ms.to_string().as_bytes());
        }
        out.push(SEP);
        out.extend_from_slice(part);
        out.push(b'\n');
    }
}

/// Reads a framed line back (see [`frame`]); a line that is not framed is raw.
pub fn unframe(line: &[u8]) -> Enveloped<'_> {
    let mut fields = line.splitn(5, |&b| b == SEP);
    let (Some(ns), Some(pod), Some(container), Some(ts), Some(payload)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Enveloped {
            payload: line,
            ..Enveloped::default()
        };
    };
    fn some(s: &[u8]) -> Option<&[u8]> {
        (!s.is_empty()).then_some(s)
    }
    Enveloped {
        meta: StreamMeta {
            namespace: some(ns),
            pod: some(pod),
            container: some(container),
        },
        timestamp_ms: std::str::from_utf8(ts).ok().and_then(|t| t.parse().ok()),
        payload: trim_line_end(payload),
    }
}

/// What [`read_document`] read.
pub struct DocumentStats {
    pub lines: u64,
    pub cut_lines: u64,
    pub chunks: u64,
    pub stopped: bool,
    /// Entries Loki said it dropped (`tail` messages' `dropped_entries`).
    pub dropped_entries: u64,
}

/// Cuts a whole document's entries into framed chunks for input `input`.
pub fn read_document(
    name: &str,
    kind: DocumentKind,
    doc: &[u8],
    input: u32,
    chunk_size: usize,
    max_line: usize,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<DocumentStats, SourceError> {
    let mut cutter = LineCutter::new(input, chunk_size, max_line).framed();
    let mut stats = DocumentStats {
        lines: 0,
        cut_lines: 0,
        chunks: 0,
        stopped: false,
        dropped_entries: 0,
    };
    let mut framed = Vec::new();
    let mut on_entry = |entry: Entry| {
        framed.clear();
        frame(&entry, &mut framed);
        cutter.push(&framed);
        if cutter.whole_bytes() >= chunk_size
            && let Some(chunk) = cutter.take_chunk()
        {
            stats.chunks += 1;
            if !emit(chunk) {
                stats.stopped = true;
                return false;
            }
        }
        true
    };
    let result = match kind {
        DocumentKind::KibanaCsv => kibana::parse_csv(doc, &mut on_entry).map(|()| 0),
        _ => parse_document(doc, &mut on_entry),
    };
    stats.dropped_entries = result.map_err(|what| SourceError::Export {
        name: name.to_string(),
        what,
    })?;
    if !stats.stopped {
        cutter.finish();
        if let Some(chunk) = cutter.take_chunk() {
            stats.chunks += 1;
            stats.stopped = !emit(chunk);
        }
    }
    stats.lines = cutter.lines();
    stats.cut_lines = cutter.cut_lines();
    Ok(stats)
}

/// Stream metadata from labels or fields, by the names collectors give them.
#[derive(Default)]
pub struct LabelPick {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
}

impl LabelPick {
    /// Takes `key = value` if `key` names a namespace, pod or container (the first name wins).
    pub fn offer(&mut self, key: &str, value: &str) {
        let slot = match key {
            "namespace" | "k8s_namespace_name" | "kubernetes_namespace" | "namespace_name" => {
                &mut self.namespace
            }
            "pod" | "k8s_pod_name" | "kubernetes_pod_name" | "pod_name" => &mut self.pod,
            "container" | "k8s_container_name" | "kubernetes_container_name" | "container_name" => {
                &mut self.container
            }
            _ => return,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let entry = Entry {
            namespace: Some("ns".into()),
            pod: Some("web-1".into()),
            container: None,
            timestamp_ms: Some(1234),
            line: "[x] \"GET\"\n".into(),
        };
        let mut out = Vec::new();
        frame(&entry, &mut out);
        assert_eq!(out, b"ns\x1fweb-1\x1f\x1f1234\x1f[x] \"GET\"\n");
        let e = unframe(&out[..out.len() - 1]);
        assert_eq!(e.meta.namespace, Some(&b"ns"[..]));
        assert_eq!(e.meta.container, None);
        assert_eq!(e.timestamp_ms, Some(1234));
        assert_eq!(e.payload, b"[x] \"GET\"");
    }

    #[test]
    fn documents_are_told_from_lines() {
        assert_eq!(
            document_kind(b"{\"status\":\"success\""),
            Some(DocumentKind::Loki)
        );
        assert_eq!(
            document_kind(b"{\n  \"took\" : 5,"),
            Some(DocumentKind::Elastic)
        );
        assert_eq!(document_kind(b" [ {\"took\":1"), Some(DocumentKind::Array));
        assert_eq!(document_kind(b"[2026-11-20T11:43:14.559Z] \"GET"), None);
        assert_eq!(document_kind(b"{\"start_time\":\"x\"}"), None);
        assert_eq!(document_kind(b"{\"_index\":\"x\"}"), None);
    }
}
