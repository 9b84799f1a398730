//! `/metrics`: a snapshot as Prometheus text (exposition format 0.0.4).
//!
//! A scrape builds a fresh `prometheus-client` [`Registry`] from one snapshot
//! and encodes it: the values are the snapshot's, so nothing here keeps state
//! between scrapes and two scrapes of one tick read the same numbers.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::verdict::Verdict;
use crate::watch::snapshot::Snapshot;

/// The `Content-Type` of what [`render_metrics`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every family name starts with this (plus `_`).
const PREFIX: &str = "strictly";

/// The two transports, as label values.
const MTLS: &str = "mtls";
const PLAINTEXT: &str = "plaintext";

/// Every verdict, so each destination exposes all three series (1 for the
/// current verdict, 0 for the others) and `== 1` alerts never see a gap.
const VERDICTS: [Verdict; 3] = [Verdict::Ready, Verdict::Blocked, Verdict::Insufficient];

type U64Gauge = Gauge<u64, AtomicU64>;
type F64Gauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    destination: String,
    source: String,
    /// Empty when the caller's address was not logged.
    peer: String,
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    destination: String,
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    destination: String,
    verdict: &'static str,
}

/// The labelled families; registered even before the first tick so a scrape
/// then still names them (HELP and TYPE, no samples).
struct Families {
    requests: Family<RequestLabels, Counter>,
    window_requests: Family<WindowLabels, U64Gauge>,
    verdict: Family<VerdictLabels, U64Gauge>,
}

impl Families {
    fn register(registry: &mut Registry) -> Self {
        let families = Families {
            requests: Family::default(),
            window_requests: Family::default(),
            verdict: Family::default(),
        };
        registry.register(
            "requests",
            "Inbound requests recorded since the watch started, by destination, source, peer address and transport",
            families.requests.clone(),
        );
        registry.register(
            "window_requests",
            "Inbound requests inside the current verdict window, by destination and transport",
            families.window_requests.clone(),
        );
        registry.register(
            "destination_verdict",
            "1 for the destination's current verdict (ready, blocked, insufficient), 0 for the other two",
            families.verdict.clone(),
        );
        families
    }
}

/// Renders `snapshot` as Prometheus text; [`CONTENT_TYPE`] names the format.
pub fn render_metrics(snapshot: &Snapshot) -> String {
    encode(&registry(Some(snapshot)))
}

/// What `/metrics` answers before the first tick: the labelled families with
/// no samples. The snapshot's scalars (timestamp, stream and line counters)
/// are left out rather than reported as 0, so
/// `absent(strictly_snapshot_timestamp_seconds)` tells "no tick yet".
pub(super) fn render_metrics_before_first_tick() -> String {
    encode(&registry(None))
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail, and every label value is escaped by
    // the encoder, so an error here is a bug in the encoder.
    prometheus_text::encode(&mut out, registry)
        .expect("encoding Prometheus text into a String never fails");
    out
}

fn registry(snapshot: Option<&Snapshot>) -> Registry {
    let mut registry = Registry::with_prefix(PREFIX);
    let families = Families::register(&mut registry);
    let Some(snapshot) = snapshot else {
        return registry;
    };

    for total in &snapshot.totals {
        for (transport, count) in [(MTLS, total.mtls), (PLAINTEXT, total.plaintext)] {
            let labels = RequestLabels {
                destination: total.destination.clone(),
                source: total.source.clone(),
                peer: total.peer.clone().unwrap_or_default(),
                transport,
            };
            families.requests.get_or_create(&labels).inc_by(count);
        }
    }
    for dest in &snapshot.report.destinations {
        for (transport, count) in [(MTLS, dest.mtls), (PLAINTEXT, dest.plaintext)] {
            let labels = WindowLabels {
                destination: dest.destination.clone(),
                transport,
            };
            families.window_requests.get_or_create(&labels).set(count);
        }
        for verdict in VERDICTS {
            let labels = VerdictLabels {
                destination: dest.destination.clone(),
                verdict: verdict.as_str(),
            };
            let current = u64::from(verdict == dest.verdict);
            families.verdict.get_or_create(&labels).set(current);
        }
    }

    let health = &snapshot.health;
    register_gauge(
        &mut registry,
        "pods",
        "Pods currently selected by the watch",
        health.pods,
    );
    register_gauge(
        &mut registry,
        "streams_open",
        "Log streams open right now",
        health.streams_open,
    );
    register_counter(
        &mut registry,
        "stream_reconnects",
        "Log stream reconnects since the watch started (EOF, stall, transient error)",
        health.reconnects,
    );
    register_counter(
        &mut registry,
        "stream_errors",
        "Transient log stream errors since the watch started",
        health.errors,
    );
    register_counter(
        &mut registry,
        "duplicate_lines_skipped",
        "Lines skipped after a reconnect because they were already counted",
        health.duplicates_skipped,
    );

    let input = &snapshot.report.input;
    register_counter(&mut registry, "lines", "Log lines read", input.lines);
    register_counter(
        &mut registry,
        "malformed_lines",
        "Lines that look like access entries but match no access-log format",
        input.malformed,
    );
    register_counter(
        &mut registry,
        "skipped_lines",
        "Lines that are not access entries",
        input.skipped,
    );
    register_counter(
        &mut registry,
        "outbound_lines",
        "Access entries that are not inbound",
        input.outbound,
    );

    let taken_at = F64Gauge::default();
    // Epoch ms fit an f64 exactly for the next quarter-million years.
    taken_at.set(snapshot.taken_at_ms as f64 / 1000.0);
    registry.register_with_unit(
        "snapshot_timestamp",
        "Unix time when the snapshot behind these values was taken",
        Unit::Seconds,
        taken_at,
    );
    registry
}

fn register_gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let gauge = U64Gauge::default();
    gauge.set(value);
    registry.register(name, help, gauge);
}

/// Registers a counter; the encoder appends `_total` to `name`.
fn register_counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let counter = Counter::<u64>::default();
    counter.inc_by(value);
    registry.register(name, help, counter);
}
