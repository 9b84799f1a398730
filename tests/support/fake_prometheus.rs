//! A fake Prometheus on 127.0.0.1 that answers `POST /api/v1/query_range`
//! by evaluating the query shape strictly sends —
//! `sum by (LABELS) (increase(METRIC{MATCHERS}[1h]))` — honestly over raw
//! counter samples: per series and step, Prometheus's `increase` (counter
//! resets, and the extrapolation of `extrapolatedRate` in
//! `promql/functions.go`), then summed per group; steps where no series of
//! a group has two samples in the range are absent, as in Prometheus. Any
//! other query is a 400 `bad_data` error, as Prometheus answers a parse error.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

/// One raw counter series: labels (with `__name__`) and (epoch s, value) samples.
#[derive(Clone, Debug)]
pub struct RawSeries {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<(i64, f64)>,
}

/// The running fake.
pub struct FakePrometheus {
    pub addr: SocketAddr,
    /// The `query` parameter of every request received.
    pub queries: Arc<Mutex<Vec<String>>>,
}

impl FakePrometheus {
    pub fn start(series: Vec<RawSeries>) -> FakePrometheus {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = queries.clone();
        let series = Arc::new(series);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let series = series.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let (status, body) = match read_form(&mut conn) {
                        Some(form) => {
                            let q = form.get("query").cloned().unwrap_or_default();
                            seen.lock().unwrap().push(q.clone());
                            answer(&series, &form)
                        }
                        None => (400, error("bad request")),
                    };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        FakePrometheus { addr, queries }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn error(msg: &str) -> String {
    serde_json::json!({"status": "error", "errorType": "bad_data", "error": msg}).to_string()
}

/// Reads one request; returns its form (body and query string) for a POST or GET to query_range.
fn read_form(conn: &mut std::net::TcpStream) -> Option<BTreeMap<String, String>> {
    let mut reader = BufReader::new(conn.try_clone().ok()?);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let target = first.split_whitespace().nth(1)?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let (path, qs) = target.split_once('?').unwrap_or((&target, ""));
    if path != "/api/v1/query_range" {
        return None;
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let mut form = BTreeMap::new();
    for part in qs
        .split('&')
        .chain(std::str::from_utf8(&body).ok()?.split('&'))
    {
        if let Some((k, v)) = part.split_once('=') {
            form.insert(decode(k), decode(v));
        }
    }
    Some(form)
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of `sum by (L) (increase(M{K}[1h]))`.
struct Parsed {
    by: Vec<String>,
    metric: String,
    matchers: Vec<(String, bool, String)>,
    range_s: i64,
}

fn parse(q: &str) -> Option<Parsed> {
    let rest = q.strip_prefix("sum by (")?;
    let (by, rest) = rest.split_once(") (increase(")?;
    let (metric, rest) = rest.split_once('{')?;
    let (matchers, rest) = rest.split_once("}[")?;
    let (range, rest) = rest.split_once(']')?;
    if rest != "))" {
        return None;
    }
    let range_s = match range {
        "1h" => 3600,
        _ => return None,
    };
    let mut ms = Vec::new();
    for m in matchers.split(", ") {
        let (k, regex, v) = if let Some((k, v)) = m.split_once("=~") {
            (k, true, v)
        } else {
            let (k, v) = m.split_once('=')?;
            (k, false, v)
        };
        let v = v
            .strip_prefix('"')?
            .strip_suffix('"')?
            .replace("\\\\", "\\");
        ms.push((k.to_string(), regex, v));
    }
    Some(Parsed {
        by: by.split(", ").map(str::to_string).collect(),
        metric: metric.to_string(),
        matchers: ms,
        range_s,
    })
}

/// A regex matcher of alternatives of literals (what strictly sends): anchored, `\.` a dot.
fn regex_matches(re: &str, v: &str) -> bool {
    re.split('|').any(|alt| alt.replace("\\.", ".") == v)
}

fn answer(series: &[RawSeries], form: &BTreeMap<String, String>) -> (u16, String) {
    let q = form.get("query").map(String::as_str).unwrap_or("");
    let Some(p) = parse(q) else {
        return (400, error(&format!("parse error: unsupported query {q:?}")));
    };
    let num = |k: &str| form.get(k).and_then(|v| v.parse::<f64>().ok());
    let (Some(start), Some(end), Some(step)) = (num("start"), num("end"), num("step")) else {
        return (400, error("start, end and step are required"));
    };
    let (start, end, step) = (start as i64, end as i64, step as i64);
    let mut groups: BTreeMap<BTreeMap<String, String>, BTreeMap<i64, f64>> = BTreeMap::new();
    for s in series {
        if s.labels.get("__name__") != Some(&p.metric) {
            continue;
        }
        let ok = p.matchers.iter().all(|(k, regex, v)| {
            let have = s.labels.get(k).map(String::as_str).unwrap_or("");
            if *regex {
                regex_matches(v, have)
            } else {
                have == v
            }
        });
        if !ok {
            continue;
        }
        let key: BTreeMap<String, String> =
            p.by.iter()
                .filter_map(|l| s.labels.get(l).map(|v| (l.clone(), v.clone())))
                .collect();
        let mut t = start;
        while t <= end {
            if let Some(v) = increase(&s.samples, t - p.range_s, t) {
                *groups
                    .entry(key.clone())
                    .or_default()
                    .entry(t)
                    .or_insert(0.0) += v;
            }
            t += step;
        }
    }
    let result: Vec<serde_json::Value> = groups
        .into_iter()
        .map(|(metric, points)| {
            let values: Vec<serde_json::Value> = points
                .into_iter()
                .map(|(t, v)| serde_json::json!([t, format!("{v}")]))
                .collect();
            serde_json::json!({"metric": metric, "values": values})
        })
        .collect();
    (
        200,
        serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}})
            .to_string(),
    )
}

/// Prometheus's `increase` over `(from, to]`: counter resets, then `extrapolatedRate`.
fn increase(samples: &[(i64, f64)], from: i64, to: i64) -> Option<f64> {
    let inside: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(t, _)| *t > from && *t <= to)
        .map(|&(t, v)| (t as f64, v))
        .collect();
    if inside.len() < 2 {
        return None;
    }
    let mut result = inside[inside.len() - 1].1 - inside[0].1;
    let mut prev = inside[0].1;
    for &(_, v) in &inside[1..] {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let (first_t, first_v) = inside[0];
    let last_t = inside[inside.len() - 1].0;
    let sampled = last_t - first_t;
    let mut to_start = first_t - from as f64;
    let to_end = to as f64 - last_t;
    let average = sampled / (inside.len() - 1) as f64;
    let threshold = average * 1.1;
    if result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(result * (interval / sampled))
}
