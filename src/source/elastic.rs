//! Elasticsearch / OpenSearch, queried directly (`report --elastic URL --index PATTERN`).
//!
//! Reads every document of the window (plus the coverage margin) in
//! timestamp order, as Kibana's own CSV export pages (`SearchCursorPit`):
//! a point in time (`POST /INDEX/_pit`), then `_search` pages with `pit`,
//! `sort` [timestamp, `_shard_doc`] and `search_after` the last hit's sort
//! values, so documents sharing a timestamp are neither lost nor read twice
//! at a page boundary. Where the store has no point in time (OpenSearch
//! before 2.4, Elasticsearch before 7.10 answer 400/404/405), a scroll
//! (`?scroll=`, `_search/scroll`) reads the same documents.
//!
//! Each hit becomes an [`Entry`] through the same mapping as saved exports
//! ([`export::elastic`]); the caller frames entries into chunks. Requests
//! that fail for a reason that may pass (429, 5xx, a dropped connection) are
//! retried with backoff ([`http`]); a failure that stays ends the read with
//! how far it got: a verdict is never given over part of the window.

use serde_json::{Map, Value, json};

use super::export::Entry;
use super::export::elastic::{FieldNames, from_document};

pub mod http;
pub mod pushdown;

pub use http::{Auth, HttpFailure, Retry};

/// What `report --elastic` reads.
#[derive(Clone, Debug)]
pub struct ElasticConfig {
    /// The store's base URL (`https://es.example:9200`), without a trailing `/`.
    pub url: String,
    /// The index pattern (`logs-*`, `filebeat-*,logstash-*`).
    pub index: String,
    pub fields: FieldNames,
    /// The field the range query and the sort use (`@timestamp`).
    pub timestamp_field: String,
    /// An extra Lucene `query_string` filter (`kubernetes.container.name:istio-proxy`).
    pub query: Option<String>,
    /// The span read, epoch ms, both ends included.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Hits per page (at most 10,000, Elasticsearch's `index.max_result_window`).
    pub page_size: usize,
    pub auth: Auth,
    /// A PEM file of the CA that signed the store's certificate (Elasticsearch 8's own CA).
    pub ca_cert: Option<std::path::PathBuf>,
    pub retry: Retry,
}

/// A read that could not be completed; says how far it got.
#[derive(Debug, thiserror::Error)]
pub enum ElasticError {
    /// Nothing was read: the flags, the certificate or the first request.
    #[error("{0}")]
    Setup(String),
    /// A request failed for good after `entries` entries were read.
    #[error(
        "{what}; read {entries} entries{upto} before that: no verdict over part of the window (rerun, or narrow --window)"
    )]
    Midway {
        what: String,
        entries: u64,
        upto: String,
    },
}

/// What a read did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElasticStats {
    pub entries: u64,
    pub pages: u64,
    /// True if the store had no point in time and a scroll was used.
    pub scrolled: bool,
}

/// How long a point in time or scroll context lives between two pages.
const KEEP_ALIVE: &str = "5m";

/// The query both paging strategies run: the span read, and the user's filter.
pub fn query(config: &ElasticConfig) -> Value {
    let mut filter = vec![json!({"range": {config.timestamp_field.as_str(): {
        "gte": config.from_ms, "lte": config.to_ms, "format": "epoch_millis"}}})];
    if let Some(q) = &config.query {
        filter.push(json!({"query_string": {"query": q}}));
    }
    json!({"bool": {"filter": filter}})
}

/// The fields of `_source` worth sending: every path strictly may read.
fn source_fields(config: &ElasticConfig) -> Vec<&str> {
    let f = &config.fields;
    [&f.message, &f.pod, &f.namespace, &f.container, &f.timestamp]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

/// The first `_search` body of a point-in-time read (`search_after` added per page).
pub fn pit_search_body(config: &ElasticConfig, pit: &str) -> Value {
    json!({
        "size": config.page_size,
        "query": query(config),
        "_source": source_fields(config),
        "pit": {"id": pit, "keep_alive": KEEP_ALIVE},
        "sort": [{config.timestamp_field.as_str(): {"order": "asc"}}, {"_shard_doc": "asc"}],
        "track_total_hits": false,
    })
}

/// The first `_search?scroll=` body of a scroll read.
pub fn scroll_search_body(config: &ElasticConfig) -> Value {
    json!({
        "size": config.page_size,
        "query": query(config),
        "_source": source_fields(config),
        "sort": ["_doc"],
    })
}

/// Reads every document in the span and calls `entry` for each, in store order.
pub fn read(
    config: &ElasticConfig,
    entry: &mut dyn FnMut(Entry) -> bool,
    progress: &dyn Fn(u64),
) -> Result<ElasticStats, ElasticError> {
    let client = http::Client::new(config).map_err(ElasticError::Setup)?;
    let mut reader = PageReader {
        config,
        entry,
        progress,
        stats: ElasticStats::default(),
        last_ms: None,
    };
    let pit_path = format!("/{}/_pit?keep_alive={KEEP_ALIVE}", config.index);
    match client.post(&pit_path, None) {
        Ok(body) => {
            let id = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| {
                    ElasticError::Setup(format!(
                        "{}{pit_path}: the answer holds no point-in-time id",
                        config.url
                    ))
                })?;
            let result = reader.pit(&client, id.clone());
            // Close the newest id (ids may change per page); a failure here loses nothing.
            let last = result.as_ref().ok().cloned().flatten().unwrap_or(id);
            let _ = client.delete("/_pit", &json!({"id": last}));
            result?;
        }
        Err(HttpFailure::Status {
            status: 400 | 404 | 405,
            ..
        }) => {
            reader.stats.scrolled = true;
            reader.scroll(&client)?;
        }
        Err(e) => return Err(ElasticError::Setup(e.to_string())),
    }
    Ok(reader.stats)
}

struct PageReader<'a> {
    config: &'a ElasticConfig,
    entry: &'a mut dyn FnMut(Entry) -> bool,
    progress: &'a dyn Fn(u64),
    stats: ElasticStats,
    last_ms: Option<i64>,
}

/// The parts of a search response paging needs.
struct Page {
    hits: Vec<Map<String, Value>>,
    pit_id: Option<String>,
    scroll_id: Option<String>,
}

impl PageReader<'_> {
    /// Pages through a point in time; returns the newest PIT id (to close).
    fn pit(
        &mut self,
        client: &http::Client,
        mut pit: String,
    ) -> Result<Option<String>, ElasticError> {
        let mut body = pit_search_body(self.config, &pit);
        loop {
            let page = self.page(client.post("/_search", Some(&body)))?;
            if let Some(id) = page.pit_id.clone() {
                pit = id;
            }
            let Some(after) = page.hits.last().and_then(|h| h.get("sort")).cloned() else {
                return Ok(Some(pit));
            };
            if !self.take(page)? {
                return Ok(Some(pit));
            }
            body["pit"]["id"] = pit.clone().into();
            body["search_after"] = after;
        }
    }

    /// Pages through a scroll, then clears it.
    fn scroll(&mut self, client: &http::Client) -> Result<(), ElasticError> {
        let first = format!("/{}/_search?scroll={KEEP_ALIVE}", self.config.index);
        let mut page = self.page(client.post(&first, Some(&scroll_search_body(self.config))))?;
        let mut scroll_id = None;
        let result = loop {
            if page.scroll_id.is_some() {
                scroll_id = page.scroll_id.clone();
            }
            if page.hits.is_empty() {
                break Ok(());
            }
            match self.take(page) {
                Ok(true) => {}
                other => break other.map(|_| ()),
            }
            let Some(id) = &scroll_id else {
                break Err(self.midway("the scroll answer holds no _scroll_id".into()));
            };
            let body = json!({"scroll": KEEP_ALIVE, "scroll_id": id});
            page = match self.page(client.post("/_search/scroll", Some(&body))) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
        };
        if let Some(id) = scroll_id {
            let _ = client.delete("/_search/scroll", &json!({"scroll_id": [id]}));
        }
        result
    }

    /// Decodes a page, refusing one the store says is partial.
    fn page(&mut self, body: Result<Vec<u8>, HttpFailure>) -> Result<Page, ElasticError> {
        let body = body.map_err(|e| self.midway(e.to_string()))?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| self.midway(format!("not a search response: {e}")))?;
        if v.get("timed_out").and_then(Value::as_bool) == Some(true) {
            return Err(self.midway("the search timed out on the store (timed_out: true)".into()));
        }
        if let Some(failed) = v.pointer("/_shards/failed").and_then(Value::as_u64)
            && failed > 0
        {
            let reason = v
                .pointer("/_shards/failures/0/reason/reason")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(self.midway(format!("{failed} shard(s) failed: {reason}")));
        }
        let hits = match v.pointer("/hits/hits") {
            Some(Value::Array(hits)) => {
                hits.iter().filter_map(|h| h.as_object().cloned()).collect()
            }
            _ => return Err(self.midway("a search response without hits.hits".into())),
        };
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Page {
            hits,
            pit_id: text("pit_id"),
            scroll_id: text("_scroll_id"),
        })
    }

    /// Hands a page's entries on; false if the consumer stopped.
    fn take(&mut self, page: Page) -> Result<bool, ElasticError> {
        let n = page.hits.len() as u64;
        for hit in &page.hits {
            let Some(e) = from_document(hit, &self.config.fields) else {
                let id = hit.get("_id").and_then(Value::as_str).unwrap_or("?");
                return Err(self.midway(format!(
                    "document {id} has none of the message fields ({}): set --elastic-message-field, or filter with --elastic-query",
                    self.config.fields.message.join(", ")
                )));
            };
            self.stats.entries += 1;
            if e.timestamp_ms.is_some() {
                self.last_ms = e.timestamp_ms;
            }
            if !(self.entry)(e) {
                return Ok(false);
            }
        }
        self.stats.pages += 1;
        (self.progress)(n);
        Ok(true)
    }

    fn midway(&self, what: String) -> ElasticError {
        if self.stats.entries == 0 {
            return ElasticError::Setup(what);
        }
        ElasticError::Midway {
            what,
            entries: self.stats.entries,
            upto: self
                .last_ms
                .map(|ms| format!(" (up to {})", crate::time::format_ms(ms)))
                .unwrap_or_default(),
        }
    }
}

/// [`read`] cut into framed chunks of input `input`, as a saved export's entries are.
pub fn read_chunks(
    config: &ElasticConfig,
    input: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(super::Chunk) -> bool,
) -> Result<ElasticStats, ElasticError> {
    let mut cutter = super::lines::LineCutter::new(input, chunk_size, max_line).framed();
    let mut framed = Vec::new();
    let mut stopped = false;
    let stats = read(
        config,
        &mut |entry| {
            framed.clear();
            super::export::frame(&entry, &mut framed);
            cutter.push(&framed);
            if cutter.whole_bytes() >= chunk_size
                && let Some(chunk) = cutter.take_chunk()
                && !emit(chunk)
            {
                stopped = true;
                return false;
            }
            true
        },
        progress,
    )?;
    if !stopped {
        cutter.finish();
        if let Some(chunk) = cutter.take_chunk() {
            emit(chunk);
        }
    }
    Ok(stats)
}
