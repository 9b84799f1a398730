//! A fake Elasticsearch on 127.0.0.1 that speaks the real search API over
//! HTTP, answering from fixture documents, for the `strictly` binary.
//!
//! ```text
//! FakeElastic::start(docs) -> FakeElastic        // docs: `_source`s (their `@timestamp` is the sort key)
//! FakeElastic::from_hits_file(path) -> FakeElastic
//! url() -> String
//! set_pit_supported(bool)                         // false: `_pit` answers 400 as OpenSearch < 2.4 does
//! require_api_key(key) / require_basic(user, pw)  // else 401 security_exception
//! fail(path_part, status, skip, times)            // after `skip` matching requests, `times` of them get `status`
//! requests() -> Vec<(method, path, body)>
//! open_contexts() -> usize                        // PITs and scrolls not closed
//! ```
//!
//! What it implements as Elasticsearch does: `POST /INDEX/_pit?keep_alive`
//! (a snapshot of the documents), `DELETE /_pit`; `POST /_search` with `pit`,
//! `sort` on a date field and `_shard_doc`, `search_after`, answering
//! `pit_id` (it changes per page, as ES may); `POST /INDEX/_search?scroll=`,
//! `POST /_search/scroll`, `DELETE /_search/scroll`; `from`/`size` paging
//! refused past `index.max_result_window` (10,000); `query.bool.filter` with
//! `range` (epoch_millis `gte`/`lte`) and `query_string` of the form
//! `field:value`; `_source` filtering by top-level key; `hits.total` as an
//! object. Documents live on two shards, so `_shard_doc` order is not
//! arrival order, and many share a timestamp.

#![allow(dead_code)]

use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const MAX_RESULT_WINDOW: usize = 10_000;

struct Doc {
    id: String,
    source: Value,
    ts_ms: i64,
    shard_doc: i64,
}

struct Failure {
    path_part: String,
    status: u16,
    skip: u32,
    times: u32,
}

#[derive(Default)]
struct State {
    pit_unsupported: bool,
    api_key: Option<String>,
    basic: Option<String>,
    failures: Vec<Failure>,
    requests: Vec<(String, String, String)>,
    /// Open contexts: id → the documents' order (indices into `docs`), and the scroll's position.
    pits: std::collections::HashMap<String, Vec<usize>>,
    scrolls: std::collections::HashMap<String, (Vec<usize>, usize, usize, Value)>,
    next_id: u64,
}

struct Shared {
    docs: Vec<Doc>,
    state: Mutex<State>,
}

pub struct FakeElastic {
    shared: Arc<Shared>,
    url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

fn parse_ms(v: &Value) -> i64 {
    let s = v.as_str().expect("a @timestamp string");
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("@timestamp {s:?}: {e}"))
        .timestamp_millis()
}

impl FakeElastic {
    /// Serves `sources` (each a document's `_source`, with `@timestamp`).
    pub fn start(sources: Vec<Value>) -> FakeElastic {
        let docs = sources
            .into_iter()
            .enumerate()
            .map(|(i, source)| Doc {
                id: format!("doc{i:05}"),
                ts_ms: parse_ms(&source["@timestamp"]),
                // Two shards: even documents on shard 1, odd on shard 0.
                shard_doc: (((i + 1) % 2) as i64) << 32 | (i / 2) as i64,
                source,
            })
            .collect();
        let shared = Arc::new(Shared {
            docs,
            state: Mutex::new(State::default()),
        });
        let listener = StdTcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake Elasticsearch runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = Router::new().fallback(handle).with_state(s);
                tokio::select! {
                    _ = axum::serve(listener, app).into_future() => {}
                    _ = rx => {}
                }
            });
        });
        FakeElastic {
            shared,
            url,
            _shutdown: tx,
        }
    }

    /// Serves the `_source`s of a saved `_search` response.
    pub fn from_hits_file(path: &std::path::Path) -> FakeElastic {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let sources = v["hits"]["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["_source"].clone())
            .collect();
        FakeElastic::start(sources)
    }

    /// Serves the documents of an NDJSON file of `_source`s (elasticdump `--sourceOnly`).
    pub fn from_sources_file(path: &std::path::Path) -> FakeElastic {
        let text = std::fs::read_to_string(path).unwrap();
        FakeElastic::start(
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        )
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap()
    }

    pub fn set_pit_supported(&self, yes: bool) {
        self.state().pit_unsupported = !yes;
    }

    pub fn require_api_key(&self, key: &str) {
        self.state().api_key = Some(format!("ApiKey {key}"));
    }

    pub fn require_basic(&self, user: &str, password: &str) {
        self.state().basic = Some(format!(
            "Basic {}",
            base64(format!("{user}:{password}").as_bytes())
        ));
    }

    /// After `skip` requests whose path contains `path_part`, the next `times` get `status`.
    pub fn fail(&self, path_part: &str, status: u16, skip: u32, times: u32) {
        self.state().failures.push(Failure {
            path_part: path_part.into(),
            status,
            skip,
            times,
        });
    }

    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.state().requests.clone()
    }

    pub fn open_contexts(&self) -> usize {
        let s = self.state();
        s.pits.len() + s.scrolls.len()
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn error(status: u16, kind: &str, reason: &str) -> Response {
    let body = json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut st = shared.state.lock().unwrap();
    st.requests.push((
        method.to_string(),
        format!("{path}?{query}"),
        body.to_string(),
    ));
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    let needed: Vec<&String> = st.api_key.iter().chain(st.basic.iter()).collect();
    if !needed.is_empty() && !needed.iter().any(|n| Some(n.as_str()) == given) {
        let reason = if given.is_some() {
            "unable to authenticate user for REST request"
        } else {
            "missing authentication credentials for REST request"
        };
        return error(401, "security_exception", &format!("{reason} [{path}]"));
    }
    let target = format!("{path}?{query}");
    if let Some(f) = st
        .failures
        .iter_mut()
        .find(|f| target.contains(&f.path_part) && (f.skip > 0 || f.times > 0))
    {
        if f.skip > 0 {
            f.skip -= 1;
        } else {
            f.times -= 1;
            let status = f.status;
            return error(
                status,
                "es_rejected_execution_exception",
                "rejected execution (fake)",
            );
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("POST", [_index, "_pit"]) => {
            if st.pit_unsupported {
                return error(
                    400,
                    "illegal_argument_exception",
                    &format!("no handler found for uri [{path}] and method [POST]"),
                );
            }
            let id = new_id(&mut st, "pit");
            st.pits.insert(id.clone(), (0..shared.docs.len()).collect());
            axum::Json(json!({"id": id})).into_response()
        }
        ("DELETE", ["_pit"]) => {
            let id = body["id"].as_str().unwrap_or_default().to_string();
            let freed = st.pits.remove(&id).is_some() as u32;
            axum::Json(json!({"succeeded": true, "num_freed": freed})).into_response()
        }
        ("POST", ["_search"]) | ("POST", [_, "_search"]) if !query.contains("scroll=") => {
            search(&shared, &mut st, &body)
        }
        ("POST", [_index, "_search"]) => {
            // A scroll: the documents in `_doc` order.
            let matching: Vec<usize> = (0..shared.docs.len())
                .filter(|&i| matches(&shared.docs[i], &body["query"]))
                .collect();
            let size = body["size"].as_u64().unwrap_or(10) as usize;
            let id = new_id(&mut st, "scroll");
            st.scrolls.insert(id.clone(), (matching, 0, size, body));
            scroll_page(&shared, &mut st, &id)
        }
        ("POST", ["_search", "scroll"]) => {
            let id = body["scroll_id"].as_str().unwrap_or_default().to_string();
            if !st.scrolls.contains_key(&id) {
                return error(
                    404,
                    "search_context_missing_exception",
                    &format!("No search context found for id [{id}]"),
                );
            }
            scroll_page(&shared, &mut st, &id)
        }
        ("DELETE", ["_search", "scroll"]) => {
            let ids = body["scroll_id"].as_array().cloned().unwrap_or_default();
            let mut freed = 0;
            for id in ids {
                freed += st.scrolls.remove(id.as_str().unwrap_or_default()).is_some() as u32;
            }
            axum::Json(json!({"succeeded": true, "num_freed": freed})).into_response()
        }
        _ => error(
            400,
            "illegal_argument_exception",
            &format!("no handler found for uri [{path}] and method [{method}]"),
        ),
    }
}

fn new_id(st: &mut State, kind: &str) -> String {
    st.next_id += 1;
    format!("{kind}-{:08x}", st.next_id * 2_654_435_761 % 4_294_967_291)
}

/// `query.bool.filter`: `range` on `@timestamp` (epoch_millis) and `query_string` `field:value`.
fn matches(doc: &Doc, query: &Value) -> bool {
    let filters = query
        .pointer("/bool/filter")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    filters.iter().all(|f| {
        if let Some(range) = f.get("range").and_then(Value::as_object) {
            let (field, r) = range.iter().next().expect("a range field");
            assert_eq!(field, "@timestamp", "the fake ranges on @timestamp only");
            let ms = doc.ts_ms;
            r.get("gte").and_then(Value::as_i64).is_none_or(|g| ms >= g)
                && r.get("lte").and_then(Value::as_i64).is_none_or(|l| ms <= l)
                && r.get("lt").and_then(Value::as_i64).is_none_or(|l| ms < l)
        } else if let Some(q) = f.pointer("/query_string/query").and_then(Value::as_str) {
            let (field, value) = q
                .split_once(':')
                .expect("the fake takes field:value queries");
            let mut v = &doc.source;
            for part in field.split('.') {
                v = &v[part];
            }
            v.as_str() == Some(value)
        } else {
            panic!("the fake does not know the filter {f}")
        }
    })
}

fn hit(doc: &Doc, body: &Value, sort: Option<Value>) -> Value {
    let mut source = doc.source.clone();
    if let Some(wanted) = body["_source"].as_array() {
        let tops: Vec<&str> = wanted
            .iter()
            .filter_map(Value::as_str)
            .map(|p| p.split('.').next().unwrap())
            .collect();
        source
            .as_object_mut()
            .unwrap()
            .retain(|k, _| tops.contains(&k.split('.').next().unwrap()));
    }
    let mut h =
        json!({"_index": "logs-k8s-2026.11.20", "_id": doc.id, "_score": null, "_source": source});
    if let Some(sort) = sort {
        h["sort"] = sort;
    }
    h
}

fn response(hits: Vec<Value>, total: Option<usize>, extra: (&str, &str)) -> Response {
    let mut v = json!({"took": 1, "timed_out": false,
        "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
        "hits": {"max_score": null, "hits": hits}});
    if let Some(total) = total {
        v["hits"]["total"] = json!({"value": total, "relation": "eq"});
    }
    if !extra.0.is_empty() {
        v[extra.0] = extra.1.into();
    }
    axum::Json(v).into_response()
}

fn search(shared: &Shared, st: &mut State, body: &Value) -> Response {
    let size = body["size"].as_u64().unwrap_or(10) as usize;
    let from = body["from"].as_u64().unwrap_or(0) as usize;
    if body.pointer("/aggs/strictly/composite").is_some() {
        return composite(shared, body);
    }
    let Some(pit) = body.pointer("/pit/id").and_then(Value::as_str) else {
        // from/size paging, limited as ES limits it.
        if from + size > MAX_RESULT_WINDOW {
            return error(
                400,
                "illegal_argument_exception",
                &format!(
                    "Result window is too large, from + size must be less than or equal to: [{MAX_RESULT_WINDOW}] but was [{}]. See the scroll api for a more efficient way to request large data sets.",
                    from + size
                ),
            );
        }
        let mut all: Vec<&Doc> = shared
            .docs
            .iter()
            .filter(|d| matches(d, &body["query"]))
            .collect();
        all.sort_by_key(|d| (d.ts_ms, d.shard_doc));
        let total = all.len();
        let hits = all
            .into_iter()
            .skip(from)
            .take(size)
            .map(|d| hit(d, body, None))
            .collect();
        return response(hits, Some(total), ("", ""));
    };
    if size > MAX_RESULT_WINDOW {
        return error(
            400,
            "illegal_argument_exception",
            "Result window is too large",
        );
    }
    let Some(order) = st.pits.get(pit).cloned() else {
        return error(
            404,
            "search_context_missing_exception",
            &format!("No search context found for id [{pit}]"),
        );
    };
    let sort = body["sort"].as_array().cloned().unwrap_or_default();
    assert!(
        sort.len() == 2
            && sort[0].get("@timestamp").is_some()
            && sort[1] == json!({"_shard_doc": "asc"}),
        "the fake sorts by [@timestamp, _shard_doc] only: {body}"
    );
    let after = body["search_after"]
        .as_array()
        .map(|a| (a[0].as_i64().unwrap(), a[1].as_i64().unwrap()));
    let mut docs: Vec<&Doc> = order
        .iter()
        .map(|&i| &shared.docs[i])
        .filter(|d| matches(d, &body["query"]))
        .collect();
    docs.sort_by_key(|d| (d.ts_ms, d.shard_doc));
    let hits: Vec<Value> = docs
        .into_iter()
        .filter(|d| after.is_none_or(|a| (d.ts_ms, d.shard_doc) > a))
        .take(size)
        .map(|d| hit(d, body, Some(json!([d.ts_ms, d.shard_doc]))))
        .collect();
    // A new id per page, as Elasticsearch may answer: the client must use the newest.
    let new = new_id(st, "pit");
    st.pits.remove(pit);
    st.pits.insert(new.clone(), order);
    // track_total_hits: false, as strictly asks: no `total`.
    response(hits, None, ("pit_id", &new))
}

fn scroll_page(shared: &Shared, st: &mut State, id: &str) -> Response {
    let (order, pos, size, body) = st.scrolls.get(id).cloned().unwrap();
    let end = (pos + size).min(order.len());
    let hits = order[pos..end]
        .iter()
        .map(|&i| hit(&shared.docs[i], &body, None))
        .collect();
    st.scrolls.get_mut(id).unwrap().1 = end;
    response(hits, Some(order.len()), ("_scroll_id", id))
}

/// A `_source` value by a dotted path: nested, dotted or mixed (as the Painless `pick` reads it).
fn pick(v: &Value, path: &str) -> Option<String> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        let x = match x {
            Value::Array(a) => a.first()?,
            x => x,
        };
        match x {
            Value::String(s) => return Some(s.clone()),
            Value::Object(_) | Value::Null => {}
            other => return Some(other.to_string()),
        }
    }
    let mut from = 0;
    while let Some(i) = path[from..].find('.').map(|i| i + from) {
        if let Some(r) = obj
            .get(&path[..i])
            .and_then(|inner| pick(inner, &path[i + 1..]))
        {
            return Some(r);
        }
        from = i + 1;
    }
    None
}

/// The grok pattern of the runtime field's script: the string literal in `grok('..')`, unescaped.
fn grok_literal(source: &str) -> String {
    let start = source.find("grok('").expect("a grok('..') call") + "grok('".len();
    let mut out = String::new();
    let mut chars = source[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap()),
            '\'' => return out,
            c => out.push(c),
        }
    }
    panic!("an unterminated grok literal")
}

/// A composite aggregation over the `strictly` composite runtime field (its script's
/// grok run over each document's message) and an hourly date_histogram, paged by `after`.
fn composite(shared: &Shared, body: &Value) -> Response {
    let rt = &body["runtime_mappings"]["strictly"];
    assert_eq!(rt["type"], "composite", "{body}");
    let source = rt["script"]["source"].as_str().unwrap();
    let params = &rt["script"]["params"];
    let regex =
        regex_automata::meta::Regex::new(&grok_literal(source)).expect("a valid grok pattern");
    let names: Vec<String> = regex
        .group_info()
        .pattern_names(regex_automata::PatternID::ZERO)
        .flatten()
        .map(str::to_string)
        .collect();
    let comp = &body["aggs"]["strictly"]["composite"];
    let size = comp["size"].as_u64().unwrap() as usize;
    let sources: Vec<(String, Value)> = comp["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let (k, v) = s.as_object().unwrap().iter().next().unwrap();
            (k.clone(), v.clone())
        })
        .collect();
    let first = |doc: &Value, k: &str| {
        params[k]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|p| pick(doc, p.as_str().unwrap()))
    };
    let mut groups: std::collections::BTreeMap<Vec<Option<String>>, u64> = Default::default();
    for doc in shared.docs.iter().filter(|d| matches(d, &body["query"])) {
        let mut fields: std::collections::HashMap<String, String> = Default::default();
        for k in ["namespace", "pod", "container"] {
            if let Some(v) = first(&doc.source, k) {
                fields.insert(k.into(), v);
            }
        }
        match first(&doc.source, "message") {
            None => {
                fields.insert("match".into(), "nomessage".into());
            }
            Some(line) => {
                let mut caps = regex.create_captures();
                regex.search_captures(&regex_automata::Input::new(&line), &mut caps);
                if caps.is_match() {
                    fields.insert("match".into(), "yes".into());
                    for n in &names {
                        if let Some(span) = caps.get_group_by_name(n) {
                            fields.insert(n.clone(), line[span.range()].to_string());
                        }
                    }
                } else {
                    fields.insert("match".into(), "no".into());
                }
            }
        }
        let key: Vec<Option<String>> = sources
            .iter()
            .map(|(_k, def)| {
                if let Some(h) = def.get("date_histogram") {
                    assert_eq!(h["field"], "@timestamp");
                    assert_eq!(h["fixed_interval"], "1h");
                    // Zero-padded so the string order is the time order.
                    Some(format!(
                        "{:020}",
                        doc.ts_ms.div_euclid(3_600_000) * 3_600_000
                    ))
                } else {
                    let field = def["terms"]["field"].as_str().unwrap();
                    assert!(def["terms"]["missing_bucket"] == true, "{def}");
                    fields
                        .get(field.strip_prefix("strictly.").expect("a strictly.* field"))
                        .cloned()
                }
            })
            .collect();
        *groups.entry(key).or_default() += 1;
    }
    let to_json = |key: &[Option<String>]| -> Value {
        let mut m = serde_json::Map::new();
        for ((k, def), v) in sources.iter().zip(key) {
            let v = match v {
                Some(s) if def.get("date_histogram").is_some() => json!(s.parse::<i64>().unwrap()),
                Some(s) => json!(s),
                None => Value::Null,
            };
            m.insert(k.clone(), v);
        }
        Value::Object(m)
    };
    let after: Option<Vec<Option<String>>> = comp.get("after").map(|a| {
        sources
            .iter()
            .map(|(k, def)| match &a[k] {
                Value::Null => None,
                v if def.get("date_histogram").is_some() => {
                    Some(format!("{:020}", v.as_i64().unwrap()))
                }
                v => Some(v.as_str().unwrap().to_string()),
            })
            .collect()
    });
    // Missing values sort first, as Elasticsearch's missing_bucket does in ascending order.
    let page: Vec<(&Vec<Option<String>>, &u64)> = groups
        .iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
        .take(size)
        .collect();
    let buckets: Vec<Value> = page
        .iter()
        .map(|(k, n)| json!({"key": to_json(k), "doc_count": n}))
        .collect();
    let mut agg = json!({"buckets": buckets});
    if let Some((k, _)) = page.last() {
        agg["after_key"] = to_json(k);
    }
    axum::Json(json!({"took": 3, "timed_out": false,
        "_shards": {"total": 2, "successful": 2, "skipped": 0, "failed": 0},
        "hits": {"max_score": null, "hits": []}, "aggregations": {"strictly": agg}}))
    .into_response()
}
