//! Following one container's log (`watch`): reconnect on EOF, stall or
//! error, and never count a line twice.
//!
//! kubelet's `sinceTime` has whole-second precision, so a reconnect asks for
//! the second of the last line counted and skips what it already saw, as
//! stern does: lines older than the cursor, and at the cursor's timestamp as
//! many as were already counted. Logs are opened and cut by the one log
//! reader ([`super::log`]), as `report`'s are.
//!
//! The live form of the source contract (see [`crate::source`]): a follower
//! sends chunks on [`Follow::out`]; the driver declares the stream when it
//! starts one; what cannot heal (a 403) goes to [`Follow::fatal`], the rest
//! is retried and counted in [`Health`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;

use super::KubeError;
use super::log::{self, LogRead, OpenFailure, Since};
use crate::source::lines::{DEFAULT_MAX_LINE, LineCutter};
use crate::source::{Chunk, SourceMeta};

/// Where a container's log was last read to: the newest timestamp counted
/// (ns since the epoch) and how many lines carried exactly it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    pub last_ns: i64,
    pub count_at_last: u32,
}

/// Health counters shared by every follower (see the snapshot's `StreamHealth`).
#[derive(Debug, Default)]
pub struct Health {
    pub streams_open: AtomicU64,
    pub reconnects: AtomicU64,
    pub errors: AtomicU64,
    pub duplicates_skipped: AtomicU64,
}

/// What the driver reads to tell when a follower has read its history
/// (issue 7 item 21): the follower only records facts, the driver decides,
/// after it has processed the chunks sent so far.
#[derive(Debug, Default)]
pub struct Progress {
    /// Wall-clock ms when the first connection opened (0: not yet).
    pub connected_at_ms: AtomicI64,
    /// Wall-clock ms when bytes last arrived.
    pub last_read_ms: AtomicI64,
    /// The log is not there to read (a 4xx: the container waits or is gone).
    pub nothing_to_read: AtomicBool,
}

impl Progress {
    fn connected(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        let _ = self
            .connected_at_ms
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_read_ms.store(now, Ordering::Relaxed);
    }

    fn read_bytes(&self) {
        let now = chrono::Utc::now().timestamp_millis();
        self.last_read_ms.store(now, Ordering::Relaxed);
    }
}

/// What one follower needs.
pub struct Follow {
    pub client: Client,
    pub meta: Arc<SourceMeta>,
    pub input: u32,
    /// How far back the first connection reads, seconds.
    pub since_seconds: i64,
    /// No bytes for this long while connected: reconnect.
    pub stall: Duration,
    pub cursor: Arc<Mutex<Cursor>>,
    pub health: Arc<Health>,
    pub out: tokio::sync::mpsc::Sender<Chunk>,
    /// The container restarted before the watch began: its previous log is read first.
    pub read_previous: bool,
    /// Where a problem retrying cannot fix (a 403 on pods/log) goes: it ends the watch.
    pub fatal: tokio::sync::mpsc::Sender<KubeError>,
    pub progress: Arc<Progress>,
}

/// Parses the RFC 3339 timestamp kubelet puts before each line, to nanoseconds.
pub fn line_timestamp_ns(line: &[u8]) -> Option<i64> {
    let end = memchr::memchr(b' ', line)?;
    let ts = &line[..end];
    let ms = crate::time::parse_rfc3339_ms(ts)?;
    // Sub-millisecond digits: kubelet writes up to nine fractional digits.
    let frac = ts
        .iter()
        .position(|&b| b == b'.')
        .map(|dot| &ts[dot + 1..])
        .map(|f| {
            f.iter()
                .take_while(|b| b.is_ascii_digit())
                .copied()
                .collect::<Vec<u8>>()
        })
        .unwrap_or_default();
    let mut sub = 0i64;
    for i in 3..9 {
        sub = sub * 10 + frac.get(i).map_or(0, |d| (d - b'0') as i64);
    }
    Some(ms * 1_000_000 + sub)
}

/// Decides, line by line after a (re)connect, which lines were already counted.
#[derive(Debug)]
pub struct Dedupe {
    from: Cursor,
    seen_at_last: u32,
    done: bool,
}

impl Dedupe {
    pub fn new(from: Cursor) -> Self {
        Dedupe {
            from,
            seen_at_last: 0,
            done: from.last_ns == 0,
        }
    }

    /// Returns true if and only if the line with timestamp `ts` is new.
    pub fn is_new(&mut self, ts: Option<i64>) -> bool {
        if self.done {
            return true;
        }
        let Some(ts) = ts else { return true };
        if ts < self.from.last_ns {
            return false;
        }
        if ts == self.from.last_ns && self.seen_at_last < self.from.count_at_last {
            self.seen_at_last += 1;
            return false;
        }
        self.done = true;
        true
    }
}

impl Cursor {
    /// Moves the cursor past a counted line.
    pub fn advance(&mut self, ts: Option<i64>) {
        let Some(ts) = ts else { return };
        if ts > self.last_ns {
            self.last_ns = ts;
            self.count_at_last = 1;
        } else if ts == self.last_ns {
            self.count_at_last += 1;
        }
    }
}

/// Follows the log until the task is aborted (the pod was deleted) or the receiver closes.
pub async fn follow(f: Follow) {
    let mut backoff = Duration::from_millis(500);
    // One chunker across reconnects: line numbers keep counting.
    let mut chunker = line_cutter(&f).with_meta(Arc::clone(&f.meta));
    let mut first_connect = true;
    if f.read_previous {
        // Lines of the container that ran before: kubelet keeps one such log.
        let read = LogRead {
            previous: true,
            follow: false,
            since: Since::Seconds(f.since_seconds.max(1)),
        };
        if let Ok(mut body) = log::open(&f.client, &f.meta, read, line_cutter(&f)).await {
            let from = *f.cursor.lock().expect("cursor lock");
            let mut dedupe = Dedupe::new(from);
            // Streamed through the bounded cutter, not read whole: a previous log can be large.
            loop {
                let to_end = !matches!(body.fill().await, Ok(n) if n > 0);
                if let Some(chunk) =
                    take_new_lines(&f, &mut body.cutter, &mut dedupe, &mut chunker, to_end)
                    && f.out.send(chunk).await.is_err()
                {
                    return;
                }
                if to_end {
                    break;
                }
            }
        }
    }
    loop {
        let from = *f.cursor.lock().expect("cursor lock");
        let read = LogRead {
            previous: false,
            follow: true,
            since: if from.last_ns > 0 {
                Since::SecondOf(from.last_ns)
            } else {
                Since::Seconds(f.since_seconds.max(1))
            },
        };
        if !first_connect {
            f.health.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        first_connect = false;
        let mut body = match log::open(&f.client, &f.meta, read, line_cutter(&f)).await {
            Ok(body) => body,
            Err(e) => {
                f.health.errors.fetch_add(1, Ordering::Relaxed);
                let failure = OpenFailure::of(&e);
                if failure == OpenFailure::Forbidden {
                    let what = format!(
                        "read logs of {}/pod/{}/{}",
                        f.meta.namespace, f.meta.pod, f.meta.container
                    );
                    let _ = f.fatal.send(KubeError::from_kube(what, e)).await;
                    return;
                }
                if matches!(failure, OpenFailure::NoLog | OpenFailure::Gone) {
                    // No log to read yet (waiting) or any more (gone): no history to wait for.
                    f.progress.nothing_to_read.store(true, Ordering::Relaxed);
                }
                if failure == OpenFailure::Gone {
                    // The pod watcher will notice too; nothing more to read.
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        f.health.streams_open.fetch_add(1, Ordering::Relaxed);
        f.progress.connected();
        let mut dedupe = Dedupe::new(from);
        let mut got_bytes = false;
        loop {
            match tokio::time::timeout(f.stall, body.fill()).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => {
                    f.health.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
            got_bytes = true;
            if let Some(chunk) =
                take_new_lines(&f, &mut body.cutter, &mut dedupe, &mut chunker, false)
                && f.out.send(chunk).await.is_err()
            {
                f.health.streams_open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
        f.health.streams_open.fetch_sub(1, Ordering::Relaxed);
        // A partial last line is read again after the reconnect (the cursor did not pass it).
        if got_bytes {
            backoff = Duration::from_millis(500);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// The bounded line cutter for this stream (see [`LineCutter`]): a
/// container that never writes a newline costs `DEFAULT_MAX_LINE`, and its
/// cut line counts malformed.
fn line_cutter(f: &Follow) -> LineCutter {
    LineCutter::for_stream(f.input, DEFAULT_MAX_LINE)
}

/// Takes the whole lines out of `carry` (all of it when `to_end`), keeps
/// those not counted before, advances the cursor past them, and chunks them.
fn take_new_lines(
    f: &Follow,
    carry: &mut LineCutter,
    dedupe: &mut Dedupe,
    chunker: &mut LineCutter,
    to_end: bool,
) -> Option<Chunk> {
    if to_end {
        carry.finish();
    }
    let raw = carry.take_chunk()?;
    f.progress.read_bytes();
    let mut cut = raw.cut_lines.iter().copied().peekable();
    {
        let mut cursor = f.cursor.lock().expect("cursor lock");
        for (line_no, line) in (raw.first_line..).zip(raw.lines()) {
            let was_cut = cut.next_if_eq(&line_no).is_some();
            let ts = line_timestamp_ns(line);
            if dedupe.is_new(ts) {
                cursor.advance(ts);
                chunker.push_line(line, was_cut);
            } else {
                f.health.duplicates_skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    chunker.take_chunk()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_nanoseconds() {
        let a = line_timestamp_ns(b"2026-11-20T11:00:00.123456789Z x").unwrap();
        let b = line_timestamp_ns(b"2026-11-20T11:00:00.123456790Z x").unwrap();
        assert_eq!(b - a, 1);
        assert_eq!(
            line_timestamp_ns(b"2026-11-20T11:00:00Z x").unwrap() % 1_000_000_000,
            0
        );
        assert_eq!(line_timestamp_ns(b"no timestamp"), None);
    }

    #[test]
    fn reconnect_skips_exactly_what_was_counted() {
        // Counted: t1, t2, t2. The reconnect (since t2's second) replays t1?, t2, t2, then new t2, t3.
        let mut cursor = Cursor::default();
        for ts in [1, 2, 2] {
            cursor.advance(Some(ts));
        }
        assert_eq!(
            cursor,
            Cursor {
                last_ns: 2,
                count_at_last: 2
            }
        );
        let mut d = Dedupe::new(cursor);
        let replay = [1, 2, 2, 2, 3];
        let fresh: Vec<i64> = replay.into_iter().filter(|&t| d.is_new(Some(t))).collect();
        assert_eq!(fresh, [2, 3]);
    }
}
