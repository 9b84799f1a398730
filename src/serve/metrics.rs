//! `/metrics`: a snapshot as Prometheus text (exposition format 0.0.4).
//!
//! A scrape builds a fresh `prometheus-client` [`Registry`] from one snapshot
//! and encodes it: the values are the snapshot's, so nothing here keeps state
//! between scrapes and two scrapes of one tick read the same numbers.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::verdict::Verdict;
use crate::watch::snapshot::Snapshot;

/// The `Content-Type` of what [`render_metrics`] returns.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Every family name starts with this (plus `_`).
const PREFIX: &str = "strictly";

/// Every verdict, so each destination exposes all five series (1 for the
/// current verdict, 0 for the others) and `== 1` alerts never see a gap.
const VERDICTS: [Verdict; 5] = [
    Verdict::Ready,
    Verdict::Blocked,
    Verdict::Insufficient,
    Verdict::Pending,
    Verdict::Regressed,
];

/// The labelled families of one snapshot.
///
/// A collector rather than `Family`s: a `Family` is a hash map, so each
/// scrape would list the series in another order, and the registry leaves an
/// empty `Family` out, where this writes HELP and TYPE before the first tick.
#[derive(Debug, Default)]
struct LabelledFamilies {
    /// (destination, source, peer or "") → (mTLS, plaintext) since start;
    /// the map sorts the series and merges a key that comes twice.
    requests: BTreeMap<(String, String, String), (u64, u64)>,
    /// destination, verdict, in-window mTLS and plaintext, in report order.
    destinations: Vec<(String, Verdict, u64, u64)>,
    /// (destination, caller address or "") → plaintext connections refused in the window.
    rejected: BTreeMap<(String, String), u64>,
}

impl LabelledFamilies {
    fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut requests = BTreeMap::new();
        for total in &snapshot.totals {
            let key = (
                total.destination.clone(),
                total.source.clone(),
                total.peer.clone().unwrap_or_default(),
            );
            let (mtls, plaintext) = requests.entry(key).or_insert((0, 0));
            *mtls += total.mtls;
            *plaintext += total.plaintext;
        }
        let destinations = snapshot
            .report
            .destinations
            .iter()
            .map(|d| (d.destination.clone(), d.verdict, d.mtls, d.plaintext))
            .collect();
        let mut rejected = BTreeMap::new();
        for d in &snapshot.report.destinations {
            for c in &d.rejected_callers {
                let key = (d.destination.clone(), c.peer.clone().unwrap_or_default());
                *rejected.entry(key).or_insert(0) += c.connections;
            }
        }
        LabelledFamilies {
            requests,
            destinations,
            rejected,
        }
    }
}

impl Collector for LabelledFamilies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Help texts end in a period here: the registry adds one to those it
        // holds, not to a collector's.
        let mut family = encoder.encode_descriptor(
            "requests",
            "Inbound requests recorded since the watch started, by destination, source, peer address and transport.",
            None,
            MetricType::Counter,
        )?;
        for ((destination, source, peer), &(mtls, plaintext)) in &self.requests {
            for (transport, count) in [("mtls", mtls), ("plaintext", plaintext)] {
                let labels = [
                    ("destination", destination.as_str()),
                    ("source", source),
                    ("peer", peer),
                    ("transport", transport),
                ];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "window_requests",
            "Inbound requests inside the current verdict window, by destination and transport.",
            None,
            MetricType::Gauge,
        )?;
        for (destination, _, mtls, plaintext) in &self.destinations {
            for (transport, count) in [("mtls", *mtls), ("plaintext", *plaintext)] {
                let labels = [
                    ("destination", destination.as_str()),
                    ("transport", transport),
                ];
                ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "window_rejected_connections",
            "Plaintext connections a STRICT destination refused inside the current verdict window (NR filter_chain_not_found), by caller address.",
            None,
            MetricType::Gauge,
        )?;
        for ((destination, peer), &count) in &self.rejected {
            let labels = [("destination", destination.as_str()), ("peer", peer)];
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }

        let mut family = encoder.encode_descriptor(
            "destination_verdict",
            "1 for the destination's current verdict (ready, blocked, insufficient, pending, regressed), 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for (destination, current, _, _) in &self.destinations {
            for verdict in VERDICTS {
                let labels = [
                    ("destination", destination.as_str()),
                    ("verdict", verdict.as_str()),
                ];
                let value = u64::from(verdict == *current);
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
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
    let Some(snapshot) = snapshot else {
        registry.register_collector(Box::new(LabelledFamilies::default()));
        return registry;
    };
    registry.register_collector(Box::new(LabelledFamilies::from_snapshot(snapshot)));

    let health = &snapshot.health;
    let input = &snapshot.report.input;
    for (name, help, value) in [
        ("pods", "Pods currently selected by the watch", health.pods),
        (
            "streams_open",
            "Log streams open right now",
            health.streams_open,
        ),
        (
            "streams_reading_history",
            "Log streams still reading their history (their destinations are pending)",
            health.streams_reading_history,
        ),
    ] {
        registry.register(name, help, ConstGauge::new(value));
    }
    // The registry appends `_total` to a counter's name.
    for (name, help, value) in [
        (
            "stream_reconnects",
            "Log stream reconnects since the watch started (EOF, stall, transient error)",
            health.reconnects,
        ),
        (
            "stream_errors",
            "Transient log stream errors since the watch started",
            health.errors,
        ),
        (
            "state_save_failures",
            "Failed saves of the --state file since the watch started (each is retried)",
            health.state_save_failures,
        ),
        (
            "duplicate_lines_skipped",
            "Lines skipped after a reconnect because they were already counted",
            health.duplicates_skipped,
        ),
        ("lines", "Log lines read", input.lines),
        (
            "malformed_lines",
            "Lines that look like access entries but match no access-log format",
            input.malformed,
        ),
        (
            "skipped_lines",
            "Lines that are not access entries",
            input.skipped,
        ),
        (
            "outbound_lines",
            "Access entries that are not inbound",
            input.outbound,
        ),
        (
            "rejected_connections",
            "Plaintext connections refused by a STRICT destination (NR filter_chain_not_found at its own address)",
            input.rejected,
        ),
    ] {
        registry.register(name, help, ConstCounter::new(value));
    }
    registry.register_with_unit(
        "snapshot_timestamp",
        "Unix time when the snapshot behind these values was taken",
        Unit::Seconds,
        // Epoch ms fit an f64 exactly for the next quarter-million years.
        ConstGauge::new(snapshot.taken_at_ms as f64 / 1000.0),
    );
    registry
}
