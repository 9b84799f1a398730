//! A fake Grafana Loki on 127.0.0.1 speaking the real `query_range` API,
//! answering from fixture entries, for the `strictly` binary run by `assert_cmd`.
//!
//! Log queries (`{sel}`) return `resultType: streams` with nanosecond string
//! timestamps, `direction=forward`, `limit` honoured (above 5,000: 400, as
//! `max_entries_limit_per_query`), `start` inclusive and `end` exclusive.
//! Entries sharing a nanosecond come back in a different order on every
//! request, as Loki's merge gives no order among them.
//!
//! Metric queries are *evaluated*, not canned: the subset of LogQL that
//! `--pushdown` generates — `sum by (labels) (count_over_time({sel} !~ `re`
//! |~ `re` | regexp `re` [1h]))` — runs over the fixture lines with the regex
//! crate's engine (RE2 syntax is a subset), with Loki's semantics: each step
//! `T` counts entries in `(T - range, T]`, a regexp group that does not
//! match adds no label, a result over `max_series` series is a 400.
//!
//! Controls: `require_org(id)` (401 `no org id` without the header),
//! `require_token(t)` / `require_basic(user, pass)` (401), `fail_next(status, n)`
//! (the next n requests), `fail_after(ok, status)` (every request after `ok`
//! answered ones), `requests()` (params and headers of each).

// Each test binary uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use regex_automata::meta::Regex;

/// One log entry held by the fake.
#[derive(Clone, Debug)]
pub struct FakeEntry {
    pub labels: BTreeMap<String, String>,
    pub ts_ns: i128,
    pub line: String,
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub params: HashMap<String, String>,
    pub org_id: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
    /// Bytes of the response body.
    pub bytes: usize,
}

#[derive(Default)]
struct Shared {
    entries: Vec<FakeEntry>,
    org: Option<String>,
    authorization: Option<String>,
    fail_next: Vec<u16>,
    fail_after: Option<(usize, u16)>,
    answered: usize,
    requests: Vec<Recorded>,
    max_series: usize,
}

/// The fake; stops with the test process.
pub struct FakeLoki {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeLoki {
    pub fn start(entries: Vec<FakeEntry>) -> FakeLoki {
        let shared = Arc::new(Mutex::new(Shared {
            entries,
            max_series: 500,
            ..Shared::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::clone(&shared);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = Router::new()
                    .route("/loki/api/v1/query_range", axum::routing::get(query_range))
                    .route(
                        "/loki/api/v1/label/{name}/values",
                        axum::routing::get(label_values),
                    )
                    .with_state(state);
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeLoki { url, shared }
    }

    /// Entries from `kubectl logs --prefix --timestamps` lines (`[pod/P/C] TS line`) of namespace `ns`.
    pub fn entries_from_prefixed(text: &str, ns: &str) -> Vec<FakeEntry> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let rest = l.strip_prefix("[pod/").expect("a [pod/..] prefix");
                let (pc, rest) = rest.split_once("] ").unwrap();
                let (pod, container) = pc.split_once('/').unwrap();
                let (ts, line) = rest.split_once(' ').unwrap();
                let t = chrono::DateTime::parse_from_rfc3339(ts).expect("RFC 3339");
                let ts_ns =
                    t.timestamp() as i128 * 1_000_000_000 + t.timestamp_subsec_nanos() as i128;
                let labels = [("namespace", ns), ("pod", pod), ("container", container)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                FakeEntry {
                    labels,
                    ts_ns,
                    line: line.to_string(),
                }
            })
            .collect()
    }

    pub fn require_org(&self, org: &str) {
        self.shared.lock().unwrap().org = Some(org.into());
    }
    pub fn require_token(&self, token: &str) {
        self.shared.lock().unwrap().authorization = Some(format!("Bearer {token}"));
    }
    pub fn require_basic(&self, user: &str, password: &str) {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.shared.lock().unwrap().authorization = Some(format!("Basic {b}"));
    }
    pub fn fail_next(&self, status: u16, n: usize) {
        self.shared
            .lock()
            .unwrap()
            .fail_next
            .extend(std::iter::repeat_n(status, n));
    }
    pub fn fail_after(&self, ok: usize, status: u16) {
        self.shared.lock().unwrap().fail_after = Some((ok, status));
    }
    pub fn set_max_series(&self, n: usize) {
        self.shared.lock().unwrap().max_series = n;
    }
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().requests.clone()
    }
}

/// A 200 with a JSON body, its length in `Content-Length` (read back for [`Recorded::bytes`]).
fn ok_json(body: serde_json::Value) -> Response {
    let body = body.to_string();
    let len = body.len();
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(axum::http::header::CONTENT_LENGTH, len.into());
    r
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, format!("{body}\n")).into_response()
}

async fn query_range(
    State(shared): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let mut s = shared.lock().unwrap();
    let header = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let mut rec = Recorded {
        params: params.clone(),
        org_id: header("x-scope-orgid"),
        authorization: header("authorization"),
        status: 200,
        bytes: 0,
    };
    let resp = answer(&mut s, &rec, &params);
    rec.status = resp.status().as_u16();
    rec.bytes = resp
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    s.requests.push(rec);
    resp
}

/// `/loki/api/v1/label/{name}/values?query=..&start=..&end=..`: the values among matching entries.
async fn label_values(
    State(shared): State<Arc<Mutex<Shared>>>,
    axum::extract::Path(name): axum::extract::Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let s = shared.lock().unwrap();
    let num = |k: &str| params.get(k).and_then(|v| v.parse::<i128>().ok());
    let (start, end) = (
        num("start").unwrap_or(i128::MIN),
        num("end").unwrap_or(i128::MAX),
    );
    let sel = match selector(params.get("query").map_or("{}", String::as_str)) {
        Ok((m, _)) => m,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    let values: std::collections::BTreeSet<&String> = s
        .entries
        .iter()
        .filter(|e| e.ts_ns >= start && e.ts_ns <= end && matches(&e.labels, &sel))
        .filter_map(|e| e.labels.get(&name))
        .collect();
    let body = serde_json::json!({"status": "success", "data": values});
    (StatusCode::OK, body.to_string()).into_response()
}

fn answer(s: &mut Shared, rec: &Recorded, params: &HashMap<String, String>) -> Response {
    if let Some(want) = &s.authorization
        && rec.authorization.as_ref() != Some(want)
    {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    if let Some(org) = &s.org
        && rec.org_id.as_ref() != Some(org)
    {
        return text(StatusCode::UNAUTHORIZED, "no org id");
    }
    if !s.fail_next.is_empty() {
        let st = s.fail_next.remove(0);
        return text(
            StatusCode::from_u16(st).unwrap(),
            "too many outstanding requests",
        );
    }
    if let Some((ok, st)) = s.fail_after
        && s.answered >= ok
    {
        return text(StatusCode::from_u16(st).unwrap(), "internal error");
    }
    let num = |k: &str| params.get(k).and_then(|v| v.parse::<i128>().ok());
    let (Some(start), Some(end)) = (num("start"), num("end")) else {
        return text(StatusCode::BAD_REQUEST, "start and end (ns) are required");
    };
    let query = params.get("query").cloned().unwrap_or_default();
    let resp = if let Some(step) = params.get("step") {
        let step: i128 = match step.parse::<i128>() {
            Ok(v) => v * 1_000_000_000,
            Err(_) => return text(StatusCode::BAD_REQUEST, "step: seconds expected"),
        };
        metric(s, &query, start, end, step)
    } else {
        let limit = num("limit").unwrap_or(100);
        if limit > 5000 {
            return text(
                StatusCode::BAD_REQUEST,
                &format!(
                    "max entries limit per query exceeded, limit > max_entries_limit ({limit} > 5000)"
                ),
            );
        }
        if params.get("direction").map(String::as_str) != Some("forward") {
            return text(
                StatusCode::BAD_REQUEST,
                "this fake serves direction=forward only",
            );
        }
        streams(s, &query, start, end, limit as usize)
    };
    if resp.status().is_success() {
        s.answered += 1;
    }
    resp
}

/// `{k="v", k2=~"re", k3!="v"}` → matchers.
/// A label matcher: label, operator (`=`, `!=`, `=~`, `!~`), value.
type Matcher = (String, String, String);

fn selector(q: &str) -> Result<(Vec<Matcher>, &str), String> {
    let q = q.trim_start();
    let rest = q.strip_prefix('{').ok_or("a selector starts with {")?;
    let close = rest.find('}').ok_or("an unclosed selector")?;
    let mut out = Vec::new();
    for part in rest[..close]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let op_at = part
            .find(['=', '!'])
            .ok_or("a matcher without an operator")?;
        let key = part[..op_at].trim().to_string();
        let rest = &part[op_at..];
        let (op, value) = ["=~", "!~", "!=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op).map(|v| (op.to_string(), v)))
            .ok_or("an unknown matcher")?;
        let value: String = serde_json::from_str(value.trim()).map_err(|e| e.to_string())?;
        out.push((key, op, value));
    }
    Ok((out, &rest[close + 1..]))
}

fn matches(labels: &BTreeMap<String, String>, m: &[Matcher]) -> bool {
    m.iter().all(|(k, op, v)| {
        let have = labels.get(k).map(String::as_str).unwrap_or("");
        let re = || Regex::new(&format!("^(?:{v})$")).unwrap();
        match op.as_str() {
            "=" => have == v,
            "!=" => have != v,
            "=~" => re().is_match(have),
            _ => !re().is_match(have),
        }
    })
}

fn streams(s: &Shared, query: &str, start: i128, end: i128, limit: usize) -> Response {
    let (sel, rest) = match selector(query) {
        Ok(v) => v,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("parse error: {e}")),
    };
    if !rest.trim().is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "this fake serves bare selectors only",
        );
    }
    let mut hits: Vec<&FakeEntry> = s
        .entries
        .iter()
        .filter(|e| e.ts_ns >= start && e.ts_ns < end && matches(&e.labels, &sel))
        .collect();
    // Forward by time; among one nanosecond, an order that changes per request.
    let flip = s.requests.len() % 2 == 1;
    hits.sort_by(|a, b| {
        let tie = (&a.labels, &a.line).cmp(&(&b.labels, &b.line));
        a.ts_ns
            .cmp(&b.ts_ns)
            .then(if flip { tie.reverse() } else { tie })
    });
    hits.truncate(limit);
    let mut by_stream: BTreeMap<&BTreeMap<String, String>, Vec<[String; 2]>> = BTreeMap::new();
    for e in hits {
        by_stream
            .entry(&e.labels)
            .or_default()
            .push([e.ts_ns.to_string(), e.line.clone()]);
    }
    let result: Vec<_> = by_stream
        .into_iter()
        .map(|(labels, values)| serde_json::json!({"stream": labels, "values": values}))
        .collect();
    let body = serde_json::json!({"status": "success", "data": {"resultType": "streams", "result": result, "stats": {}}});
    ok_json(body)
}

/// The pipeline stages the fake evaluates.
enum Stage {
    Keep(Regex),
    Drop(Regex),
    Extract(Regex),
}

/// `` `re` `` at the start of `s`: the pattern and the rest.
fn backticked(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start().strip_prefix('`')?;
    let end = s.find('`')?;
    Some((&s[..end], &s[end + 1..]))
}

fn metric(s: &Shared, query: &str, start: i128, end: i128, step: i128) -> Response {
    let bad = |e: &str| text(StatusCode::BAD_REQUEST, &format!("parse error: {e}"));
    let Some(rest) = query.strip_prefix("sum by (") else {
        return bad("this fake serves sum by (..) (count_over_time(..)) only");
    };
    let Some((by, rest)) = rest.split_once(')') else {
        return bad("unclosed by");
    };
    let by: Vec<&str> = by.split(',').map(str::trim).collect();
    let Some(rest) = rest.trim_start().strip_prefix("(count_over_time(") else {
        return bad("count_over_time expected");
    };
    let (sel, mut rest) = match selector(rest) {
        Ok(v) => v,
        Err(e) => return bad(&e),
    };
    let mut stages = Vec::new();
    loop {
        let r = rest.trim_start();
        let (kind, after) = if let Some(a) = r.strip_prefix("|~") {
            (0, a)
        } else if let Some(a) = r.strip_prefix("!~") {
            (1, a)
        } else if let Some(a) = r.strip_prefix("| regexp") {
            (2, a)
        } else {
            rest = r;
            break;
        };
        let Some((pattern, after)) = backticked(after) else {
            return bad("a backticked regex expected");
        };
        let Ok(re) = Regex::new(pattern) else {
            return bad(&format!("invalid regex {pattern}"));
        };
        stages.push(match kind {
            0 => Stage::Keep(re),
            1 => Stage::Drop(re),
            _ => Stage::Extract(re),
        });
        rest = after;
    }
    let Some(range) = rest.strip_prefix("[1h]))") else {
        return bad("[1h])) expected");
    };
    if !range.trim().is_empty() {
        return bad("trailing text");
    }
    let range = 3_600 * 1_000_000_000i128;
    let mut series: BTreeMap<BTreeMap<String, String>, BTreeMap<i128, u64>> = BTreeMap::new();
    for e in s.entries.iter().filter(|e| matches(&e.labels, &sel)) {
        let mut labels = e.labels.clone();
        let mut keep = true;
        for st in &stages {
            match st {
                Stage::Keep(re) => keep &= re.is_match(&e.line),
                Stage::Drop(re) => keep &= !re.is_match(&e.line),
                Stage::Extract(re) => {
                    let mut caps = re.create_captures();
                    re.captures(&e.line, &mut caps);
                    if caps.is_match() {
                        for name in re
                            .group_info()
                            .pattern_names(regex_automata::PatternID::ZERO)
                            .flatten()
                        {
                            if let Some(span) = caps.get_group_by_name(name)
                                && span.start < span.end
                            {
                                labels.insert(name.to_string(), e.line[span.range()].to_string());
                            }
                        }
                    }
                }
            }
        }
        if !keep {
            continue;
        }
        let key: BTreeMap<String, String> = labels
            .into_iter()
            .filter(|(k, _)| by.contains(&k.as_str()))
            .collect();
        // Every step T with T - range < ts <= T.
        let mut t = start;
        while t <= end {
            if e.ts_ns > t - range && e.ts_ns <= t {
                *series.entry(key.clone()).or_default().entry(t).or_default() += 1;
            }
            t += step;
        }
    }
    if series.len() > s.max_series {
        return text(
            StatusCode::BAD_REQUEST,
            &format!(
                "maximum of series ({}) reached for a single query",
                s.max_series
            ),
        );
    }
    let result: Vec<_> = series
        .into_iter()
        .map(|(metric, points)| {
            let values: Vec<_> = points
                .into_iter()
                .map(|(t, n)| serde_json::json!([(t / 1_000_000_000) as i64, n.to_string()]))
                .collect();
            serde_json::json!({"metric": metric, "values": values})
        })
        .collect();
    let body = serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result, "stats": {}}});
    ok_json(body)
}
