//! Issue 4 item 10: how `watch` shares its aggregate — measured, then chosen.
//!
//! Two designs ingest the same 1M classified requests from 4 producer
//! threads (as followers would), and the bench prints requests/s for each and
//! their ratio:
//! - **owner** (what `watch` does): producers send batches over a channel to
//!   one thread that owns the `Aggregator` (no lock on the per-request path);
//! - **dashmap**: producers update a shared `DashMap<(destination, source),
//!   cell>` directly, each cell keeping the same one-second buckets and
//!   histogram (a shard lock, an owned key and a hash per request).
//!
//! Run: `cargo bench --bench shared_state`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use hdrhistogram::Histogram;
use strictly::aggregate::{AggregateConfig, Aggregator};
use strictly::envelope::StreamMeta;
use strictly::request::{NamedDestination, Request, Transport};

const REQUESTS: usize = 1_000_000;
const PRODUCERS: usize = 4;
const BATCH: usize = 256;

const DESTS: [&[u8]; 8] = [
    b"spiffe://cluster.local/ns/a/sa/web-api",
    b"spiffe://cluster.local/ns/a/sa/recommendation",
    b"spiffe://cluster.local/ns/a/sa/purchase-history",
    b"spiffe://cluster.local/ns/a/sa/catalog",
    b"spiffe://cluster.local/ns/b/sa/httpbin",
    b"spiffe://cluster.local/ns/b/sa/orders",
    b"spiffe://cluster.local/ns/b/sa/payments",
    b"spiffe://cluster.local/ns/b/sa/users",
];
const CALLERS: [&[u8]; 4] = [
    b"spiffe://cluster.local/ns/a/sa/sleep",
    b"spiffe://cluster.local/ns/a/sa/web-api",
    b"spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
    b"spiffe://cluster.local/ns/a/sa/recommendation",
];

/// (time, destination index, caller index, plaintext)
type Item = (i64, usize, usize, bool);

fn items(producer: usize) -> Vec<Item> {
    (0..REQUESTS / PRODUCERS)
        .map(|i| {
            let n = i * PRODUCERS + producer;
            (
                1_795_089_600_000 + n as i64 * 86,
                n % 8,
                (n / 8) % 4,
                n.is_multiple_of(97),
            )
        })
        .collect()
}

fn request(&(t, d, c, plaintext): &Item) -> Request<'static> {
    Request {
        inbound: true,
        time_ms: Some(t),
        transport: if plaintext {
            Transport::Plaintext { forged_xfcc: false }
        } else {
            Transport::Mtls {
                identity: Some(CALLERS[c]),
            }
        },
        peer: plaintext.then_some(&b"10.44.0.7"[..]),
        named_destination: Some(NamedDestination::Spiffe(DESTS[d])),
        local_address: None,
        audited: false,
        duration_ms: Some(5),
        caller: None,
        ambient: None,
    }
}

/// The design `watch` uses: one owner, batches over a channel.
fn owner() -> (f64, u64) {
    let inputs: Vec<Vec<Item>> = (0..PRODUCERS).map(items).collect();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(64);
    let total = std::thread::scope(|scope| {
        for input in &inputs {
            let tx = tx.clone();
            scope.spawn(move || {
                for batch in input.chunks(BATCH) {
                    tx.send(batch.to_vec()).unwrap();
                }
            });
        }
        drop(tx);
        let mut agg = Aggregator::new(AggregateConfig::default());
        let stream = agg.stream(0, "bench", &StreamMeta::default(), None);
        let mut n = 0u64;
        for batch in rx {
            for item in &batch {
                agg.record(stream, &request(item), None);
                n += 1;
            }
        }
        std::hint::black_box(&agg);
        n
    });
    (start.elapsed().as_secs_f64(), total)
}

/// The alternative: every producer updates a shared DashMap whose cells keep
/// the same state the aggregate keeps (one-second buckets, a duration histogram).
fn shared_dashmap() -> (f64, u64) {
    struct Cell {
        buckets: BTreeMap<i64, (u32, u32)>,
        durations: Histogram<u32>,
    }
    impl Default for Cell {
        fn default() -> Self {
            Cell {
                buckets: BTreeMap::new(),
                durations: Histogram::new(2).unwrap(),
            }
        }
    }
    let inputs: Vec<Vec<Item>> = (0..PRODUCERS).map(items).collect();
    type Shared = DashMap<(Box<[u8]>, Box<[u8]>), Cell>;
    let map: Arc<Shared> = Arc::new(DashMap::new());
    let start = Instant::now();
    std::thread::scope(|scope| {
        for input in &inputs {
            let map = Arc::clone(&map);
            scope.spawn(move || {
                for item in input {
                    let req = request(item);
                    let dest: &[u8] = match req.named_destination {
                        Some(n) => n.raw(),
                        None => b"",
                    };
                    let source: &[u8] = match req.transport {
                        Transport::Mtls { identity } => identity.unwrap_or(b"mtls"),
                        Transport::Plaintext { .. } => req.peer.unwrap_or(b"plaintext"),
                    };
                    // The key must be owned to look it up: a DashMap of borrowed
                    // bytes cannot outlive the line.
                    let key = (Box::<[u8]>::from(dest), Box::<[u8]>::from(source));
                    let mut cell = map.entry(key).or_default();
                    let t = req.time_ms.unwrap_or(0);
                    let bucket = cell.buckets.entry((t + 999).div_euclid(1000)).or_default();
                    if req.is_plaintext() {
                        bucket.1 += 1;
                    } else {
                        bucket.0 += 1;
                    }
                    cell.durations
                        .saturating_record(req.duration_ms.unwrap_or(0));
                }
            });
        }
    });
    let total = map
        .iter()
        .map(|e| {
            e.buckets
                .values()
                .map(|&(m, p)| (m + p) as u64)
                .sum::<u64>()
        })
        .sum();
    (start.elapsed().as_secs_f64(), total)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let median = |f: fn() -> (f64, u64)| {
        let mut runs: Vec<(f64, u64)> = (0..5).map(|_| f()).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[2]
    };
    let (owner_s, owner_n) = median(owner);
    let (dash_s, dash_n) = median(shared_dashmap);
    assert_eq!(owner_n, REQUESTS as u64);
    assert_eq!(dash_n, REQUESTS as u64);
    println!(
        "shared state for watch: {REQUESTS} requests from {PRODUCERS} producer threads, medians of 5"
    );
    println!("| design | requests/s |");
    println!("| --- | ---: |");
    println!(
        "| one owner, batches over a channel (watch) | {:.0} |",
        REQUESTS as f64 / owner_s
    );
    println!(
        "| shared DashMap of the same cells | {:.0} |",
        REQUESTS as f64 / dash_s
    );
    println!("owner / dashmap throughput: {:.2}", dash_s / owner_s);
}
