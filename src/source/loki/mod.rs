//! Grafana Loki, queried directly: `report --loki URL --query LOGQL`.
//!
//! The range read (the window plus the coverage margin) is split into
//! intervals aligned as Loki's query frontend aligns them
//! (`split_queries_by_interval`, 30 m by default), and each interval is paged
//! forward through `/loki/api/v1/query_range` at most 5,000 entries a request
//! (`max_entries_limit_per_query`). As logcli does, the next page starts *at*
//! the last page's newest timestamp (Loki keeps many entries at one
//! nanosecond), and the entries of that nanosecond already read are dropped —
//! here by stream, timestamp and line, so two pods writing the same line at
//! the same nanosecond both count. Entries become framed lines (see
//! [`super::export::frame`]) in chunks, like a saved `query_range` response.
//!
//! Any failure midway (after retries) ends the read with an error saying how
//! far it got: a verdict is never made over part of the range.

mod http;
mod matrix;
pub mod pushdown;

use std::collections::HashSet;

use super::Chunk;
use super::export::{frame, loki::query_range_page};
use super::lines::LineCutter;
use crate::time::format_ms;

pub use http::{Auth, Client};

/// The most entries Loki returns per request (`max_entries_limit_per_query`).
pub const MAX_BATCH: u32 = 5000;
/// Loki's default `split_queries_by_interval`.
pub const SPLIT_NS: i128 = 30 * 60 * 1_000_000_000;

/// What `--loki`, `--query` and friends ask for.
#[derive(Clone, Debug)]
pub struct LokiQuery {
    /// The LogQL log query (`{namespace="istioinaction",container="istio-proxy"}`).
    pub query: String,
    /// The range read, nanoseconds: `[start, end)` as Loki takes it.
    pub start_ns: i128,
    pub end_ns: i128,
    /// Entries per request (≤ [`MAX_BATCH`]).
    pub batch: u32,
}

/// A Loki read that cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum LokiError {
    /// A flag or URL strictly cannot use.
    #[error("{0}")]
    Usage(String),
    /// 401 or 403: credentials or tenant.
    #[error("Loki refused access: {0}")]
    Denied(String),
    /// Loki rejected the request (400: a bad query, a limit).
    #[error("Loki rejected the query: {0}")]
    Refused(String),
    /// Still failing after the retries.
    #[error("Loki is unavailable: {0}")]
    Unavailable(String),
    /// The answer is not what the API documents.
    #[error("Loki's answer cannot be read: {0}")]
    Garbled(String),
    /// Any of the above, after part of the range was read.
    #[error(
        "{error}; stopped after {entries} entries ({pages} pages) read up to {reached} of {start} to {end}: no verdict over part of the range"
    )]
    Midway {
        error: Box<LokiError>,
        entries: u64,
        pages: u64,
        reached: String,
        start: String,
        end: String,
    },
}

/// What a read fetched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Entries counted (page-boundary repeats dropped).
    pub entries: u64,
    /// Requests answered.
    pub pages: u64,
    /// Entries a page repeated from the previous one (same stream, nanosecond and line).
    pub repeats: u64,
}

/// The `[start, end)` intervals a range is read in: boundaries on multiples
/// of `split_ns` since the epoch, as Loki's query frontend splits.
pub fn split_range(start_ns: i128, end_ns: i128, split_ns: i128) -> Vec<(i128, i128)> {
    let mut out = Vec::new();
    let mut a = start_ns;
    while a < end_ns {
        let b = ((a.div_euclid(split_ns) + 1) * split_ns).min(end_ns);
        out.push((a, b));
        a = b;
    }
    out
}

/// Reads the whole range as framed chunks of input `input`, calling `progress`
/// with the entries of each page; stops early (Ok) if `emit` returns false.
pub fn read(
    client: &mut Client,
    q: &LokiQuery,
    input: u32,
    chunk_size: usize,
    max_line: usize,
    progress: &dyn Fn(u64),
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> Result<ReadStats, LokiError> {
    let mut cutter = LineCutter::new(input, chunk_size, max_line).framed();
    let mut stats = ReadStats::default();
    let mut framed = Vec::new();
    let mut reached = q.start_ns;
    let midway = |error: LokiError, stats: &ReadStats, reached: i128| {
        if stats.pages == 0 {
            return error;
        }
        LokiError::Midway {
            error: Box::new(error),
            entries: stats.entries,
            pages: stats.pages,
            reached: format_ms(reached.div_euclid(1_000_000) as i64),
            start: format_ms(q.start_ns.div_euclid(1_000_000) as i64),
            end: format_ms(q.end_ns.div_euclid(1_000_000) as i64),
        }
    };
    for (a, b) in split_range(q.start_ns, q.end_ns, SPLIT_NS) {
        let mut start = a;
        // (stream, line) of the entries at `start` already counted.
        let mut at_start: HashSet<(String, String)> = HashSet::new();
        loop {
            let params = [
                ("query", q.query.clone()),
                ("start", start.to_string()),
                ("end", b.to_string()),
                ("limit", q.batch.to_string()),
                ("direction", "forward".to_string()),
            ];
            let body = client
                .get("/loki/api/v1/query_range", &params)
                .map_err(|e| midway(e, &stats, reached))?;
            stats.pages += 1;
            let mut page = query_range_page(&body)
                .map_err(|e| midway(LokiError::Garbled(e), &stats, reached))?;
            let full = page.len() >= q.batch as usize;
            if let Some(bad) = page.iter().find(|e| e.ts_ns < start || e.ts_ns >= b) {
                let e = LokiError::Garbled(format!(
                    "an entry at {} ns lies outside the requested [{start}, {b})",
                    bad.ts_ns
                ));
                return Err(midway(e, &stats, reached));
            }
            // The order among entries of one nanosecond is Loki's choice: sort it away.
            page.sort_unstable_by(|x, y| {
                (x.ts_ns, &x.stream, &x.entry.line).cmp(&(y.ts_ns, &y.stream, &y.entry.line))
            });
            let newest = page.last().map(|e| e.ts_ns);
            let mut fresh = 0;
            for e in &page {
                if e.ts_ns == start && !at_start.insert((e.stream.clone(), e.entry.line.clone())) {
                    stats.repeats += 1;
                    continue;
                }
                framed.clear();
                frame(&e.entry, &mut framed);
                cutter.push(&framed);
                fresh += 1;
                if cutter.whole_bytes() >= chunk_size
                    && let Some(chunk) = cutter.take_chunk()
                    && !emit(chunk)
                {
                    return Ok(stats);
                }
            }
            stats.entries += fresh;
            progress(fresh);
            let Some(newest) = newest else { break };
            reached = reached.max(newest);
            if !full {
                reached = b;
                break;
            }
            // A full page all of one nanosecond: more may share it than a page
            // holds, and Loki cannot page inside one (logcli stops here too).
            if newest == start {
                let e = LokiError::Refused(format!(
                    "{} or more entries share the nanosecond {newest}: a page cannot get past them (raise --loki-batch towards {MAX_BATCH})",
                    q.batch
                ));
                return Err(midway(e, &stats, reached));
            }
            at_start.clear();
            for e in page.iter().filter(|e| e.ts_ns == newest) {
                at_start.insert((e.stream.clone(), e.entry.line.clone()));
            }
            start = newest;
        }
    }
    cutter.finish();
    if let Some(chunk) = cutter.take_chunk() {
        emit(chunk);
    }
    Ok(stats)
}

/// `report --loki` as a [`super::Source`]: one input (the query), read to the end or not at all.
pub struct LokiSource<'a> {
    client: Client,
    query: LokiQuery,
    chunk_size: usize,
    max_line: usize,
    progress: &'a dyn Fn(u64),
    /// What the read fetched.
    pub stats: ReadStats,
}

impl<'a> LokiSource<'a> {
    pub fn new(
        client: Client,
        query: LokiQuery,
        chunk_size: usize,
        max_line: usize,
        progress: &'a dyn Fn(u64),
    ) -> Self {
        LokiSource {
            client,
            query,
            chunk_size,
            max_line,
            progress,
            stats: ReadStats::default(),
        }
    }
}

impl super::Source for LokiSource<'_> {
    type Error = LokiError;

    fn inputs(&self) -> Vec<String> {
        vec![format!("loki {}", self.query.query)]
    }

    fn read(&mut self, emit: &mut dyn FnMut(Chunk) -> bool) -> Result<(), LokiError> {
        self.stats = read(
            &mut self.client,
            &self.query,
            0,
            self.chunk_size,
            self.max_line,
            self.progress,
            emit,
        )?;
        Ok(())
    }

    fn warnings(&self) -> Vec<String> {
        let retries = self.client.retries;
        (retries > 0)
            .then(|| {
                format!(
                    "{}: {retries} requests retried (429, 5xx or connection errors)",
                    self.client.base()
                )
            })
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_on_interval_multiples() {
        let s = SPLIT_NS;
        assert_eq!(split_range(10, 10, s), []);
        assert_eq!(split_range(10, 20, s), [(10, 20)]);
        assert_eq!(
            split_range(s - 5, 2 * s + 7, s),
            [(s - 5, s), (s, 2 * s), (2 * s, 2 * s + 7)]
        );
    }
}
