//! What a running `watch` publishes on every tick: the report as of now and
//! the health of its streams. The renderer, the HTTP endpoint and the final
//! report all read snapshots; none of them touches the aggregate.

use serde::Serialize;

use crate::verdict::Report;

/// Requests recorded since the process started, per destination × source × transport
/// (Prometheus counters: they only grow).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestTotal {
    pub destination: String,
    pub source: String,
    pub peer: Option<String>,
    pub mtls: u64,
    pub plaintext: u64,
}

/// Counters of the streams (Prometheus counters and gauges).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamHealth {
    /// Pods currently selected (with the container running or waiting).
    pub pods: u64,
    /// Log streams open right now.
    pub streams_open: u64,
    /// Reconnects since start (EOF, stall, transient error).
    pub reconnects: u64,
    /// Transient errors since start (4xx/5xx, resets), by kind.
    pub errors: u64,
    /// Lines skipped as already counted after a reconnect.
    pub duplicates_skipped: u64,
    /// Streams that have not yet read their history (issue 7 item 21).
    pub streams_reading_history: u64,
    /// Failed saves of the state file (each is retried on the next tick).
    pub state_save_failures: u64,
}

/// One tick's view of a running watch.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// The spec's §5 report, window ending now.
    pub report: Report,
    /// Epoch ms when the snapshot was taken.
    pub taken_at_ms: i64,
    pub totals: Vec<RequestTotal>,
    pub health: StreamHealth,
}
