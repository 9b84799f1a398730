//! strictly: is it safe to switch this workload to STRICT mTLS yet?
//!
//! The crate is one pipeline, one module per arrow (source → envelope → format → request → aggregate → verdict → render):
//!
//! ```text
//! source ──► envelope ──► format ──► request ──► aggregate ──► verdict ──► render
//! ```
//!
//! - [`source`]: where bytes come from (files, stdin, exports, the Kubernetes API), cut into line-aligned chunks; the contract of a source ([`source::Source`]).
//! - [`envelope`]: what wraps each log line (kubectl `--timestamps`/`--prefix`, stern).
//! - [`format`]: the Envoy access-log format, compiled once into a matcher.
//! - [`request`]: what one access entry means: inbound?, mTLS or plaintext, who called whom.
//! - [`aggregate`]: counters per destination × source in time buckets.
//! - [`verdict`]: ready / blocked / insufficient, and the JSON report data.
//! - [`render`]: report data to bytes (table, JSON).
//! - [`json_string`], [`time`], [`workload`]: small shared helpers (JSON unescaping, timestamps, Kubernetes names).
//! - [`pipeline`]: the driver that runs the stages over any source's chunks on many threads.
//! - [`watch`]: the long-running driver: a sync core in a `select!` over the followed pods, publishing [`watch::snapshot::Snapshot`]s.
//! - [`serve`]: the HTTP endpoint of a watch (`/metrics`, `/report`, `/healthz`).

pub mod aggregate;
pub mod envelope;
pub mod format;
pub mod json_string;
pub mod pipeline;
pub mod render;
pub mod request;
pub mod serve;
pub mod source;
pub mod stats;
pub mod time;
pub mod verdict;
pub mod watch;
pub mod workload;
