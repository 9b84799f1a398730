//! Benchmarks of the per-line path: parser per built-in format, aggregation
//! alone, and the whole worker path (envelope → format → request →
//! aggregate) on 100k lab lines.
//!
//! Peer / limit, measured in the same run: counting newlines with memchr over
//! the same bytes (what `wc -l` does), the floor for anything that reads
//! lines. After criterion's own output, the bench prints each path's time as
//! a multiple of that floor, and the allocations per line of the hot path in
//! steady state (the target is zero).
//!
//! Inputs: `fixtures/bench/<format>.log` (1000 lines each, made by
//! `strictly-sample --lines 1000 --format F --envelope raw --seed 7
//! --noise-ratio 0`), repeated to 100k lines.
//!
//! Run: `cargo bench --bench pipeline` (add `-- --quick` for a short run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use strictly::aggregate::{AggregateConfig, Aggregator};
use strictly::envelope::InputKind;
use strictly::envelope::StreamMeta;
use strictly::format::{self, LineParser, Parsed};
use strictly::pipeline::Worker;
use strictly::request::{NamedDestination, Request, Transport};
use strictly::source::Chunk;

/// Counts allocations, to show the hot path makes none.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const LINES: usize = 100_000;
const FORMATS: [&str; 5] = ["lab", "lab-v0", "lab-cert", "istio", "istio-json"];

/// `fixtures/bench/NAME.log` repeated to `LINES` lines.
fn input(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/bench/{name}.log"));
    let one = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let per = one.iter().filter(|&&b| b == b'\n').count();
    let mut out = Vec::with_capacity(one.len() * LINES / per + one.len());
    while out.iter().filter(|&&b| b == b'\n').count() < LINES {
        out.extend_from_slice(&one);
    }
    out
}

fn count_newlines(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count()
}

fn parse_all(parser: &mut LineParser, data: &[u8]) -> usize {
    let mut access = 0;
    for line in data.split(|&b| b == b'\n') {
        if let Parsed::Access { .. } = parser.parse(line) {
            access += 1;
        }
    }
    access
}

fn worker(formats: &format::FormatSet) -> Worker {
    let names: Arc<[String]> = vec!["bench".to_string()].into();
    Worker::new(formats, &AggregateConfig::default(), InputKind::Auto, names)
}

fn chunk(data: &[u8]) -> Chunk {
    Chunk {
        input: 0,
        first_line: 1,
        data: data.to_vec(),
        meta: None,
        cut_lines: Vec::new(),
        framed: false,
        seq: None,
    }
}

fn benches(c: &mut Criterion) {
    let auto = format::load(None, None).expect("built-in formats compile");
    let mut group = c.benchmark_group("parse");
    for name in FORMATS {
        let data = input(name);
        group.throughput(Throughput::Bytes(data.len() as u64));
        let mut parser = LineParser::new(auto.clone());
        group.bench_function(name, |b| {
            b.iter(|| parse_all(&mut parser, black_box(&data)))
        });
    }
    group.finish();

    let lab = input("lab");
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("lab-100k-lines", |b| {
        let chunk = chunk(&lab);
        b.iter_batched(
            || worker(&auto),
            |mut w| w.process(black_box(&chunk)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.throughput(Throughput::Bytes(lab.len() as u64));
    group.bench_function("newline-floor", |b| {
        b.iter(|| count_newlines(black_box(&lab)))
    });
    group.finish();

    // Aggregation alone: classified requests into the aggregate.
    let requests = synthetic_requests();
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(requests.len() as u64));
    group.bench_function("record-100k", |b| {
        b.iter_batched(
            || Aggregator::new(AggregateConfig::default()),
            |mut agg| record_all(&mut agg, black_box(&requests)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A classified request, owned by the bench: (time, transport, peer, named destination).
type Synthetic = (
    i64,
    Transport<'static>,
    Option<&'static [u8]>,
    NamedDestination<'static>,
);

/// 100k requests over 24h: 4 destinations, 4 callers, 1 in 50 plaintext from 4 peers.
fn synthetic_requests() -> Vec<Synthetic> {
    const DESTS: [&[u8]; 4] = [
        b"spiffe://cluster.local/ns/istioinaction/sa/web-api",
        b"spiffe://cluster.local/ns/istioinaction/sa/recommendation",
        b"spiffe://cluster.local/ns/istioinaction/sa/purchase-history",
        b"spiffe://cluster.local/ns/default/sa/httpbin",
    ];
    const CALLERS: [&[u8]; 4] = [
        b"spiffe://cluster.local/ns/istioinaction/sa/sleep",
        b"spiffe://cluster.local/ns/istioinaction/sa/web-api",
        b"spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        b"spiffe://cluster.local/ns/istioinaction/sa/recommendation",
    ];
    const PEERS: [&[u8]; 4] = [b"10.44.0.7", b"10.44.3.21", b"10.128.0.42", b"10.44.9.9"];
    (0..LINES)
        .map(|i| {
            let t = 1_795_089_600_000 + (i as i64) * 864;
            let plaintext = i.is_multiple_of(50);
            let transport = if plaintext {
                Transport::Plaintext { forged_xfcc: false }
            } else {
                Transport::Mtls {
                    identity: Some(CALLERS[i % 4]),
                }
            };
            let peer = plaintext.then_some(PEERS[(i / 50) % 4]);
            (
                t,
                transport,
                peer,
                NamedDestination::Spiffe(DESTS[(i / 3) % 4]),
            )
        })
        .collect()
}

fn record_all(agg: &mut Aggregator, requests: &[Synthetic]) {
    let stream = agg.stream(0, "bench", &StreamMeta::default(), None);
    for &(t, transport, peer, named) in requests {
        let req = Request {
            inbound: true,
            time_ms: Some(t),
            transport,
            peer,
            named_destination: Some(named),
            local_address: None,
            audited: false,
            duration_ms: Some(7),
            caller: None,
            ambient: None,
        };
        agg.record(stream, &req, None);
    }
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// The ratios against the floor, and the allocations per line.
fn ratios() {
    let auto = format::load(None, None).expect("built-in formats compile");
    println!(
        "\nstrictly bench summary ({LINES} lines per input; floor = memchr newline count over the same bytes)"
    );
    println!("| path | lines/s | MB/s | × floor |");
    println!("| --- | ---: | ---: | ---: |");
    let row = |name: &str, data: &[u8], t: Duration| {
        let floor = median(
            || {
                black_box(count_newlines(black_box(data)));
            },
            9,
        );
        let secs = t.as_secs_f64();
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} |",
            LINES as f64 / secs,
            data.len() as f64 / secs / 1e6,
            secs / floor.as_secs_f64()
        );
    };
    for name in FORMATS {
        let data = input(name);
        let mut parser = LineParser::new(auto.clone());
        let t = median(
            || {
                black_box(parse_all(&mut parser, &data));
            },
            5,
        );
        row(&format!("parse {name}"), &data, t);
    }
    let lab = input("lab");
    let chunk = chunk(&lab);
    let t = median(|| worker(&auto).process(&chunk), 5);
    row("pipeline lab (envelope → aggregate)", &lab, t);
    let requests = synthetic_requests();
    let t = median(
        || record_all(&mut Aggregator::new(AggregateConfig::default()), &requests),
        5,
    );
    println!(
        "| aggregate only (classified requests) | {:.0} | - | - |",
        LINES as f64 / t.as_secs_f64()
    );

    // Steady state: the same worker sees the same lines again (every name,
    // second and hour already known), so any allocation left is per line.
    let mut w = worker(&auto);
    w.process(&chunk);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    w.process(&chunk);
    let per_line = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / LINES as f64;
    println!("\nallocations per line on the hot path, steady state: {per_line:.4} (target 0)");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
    ratios();
}
