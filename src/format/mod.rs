//! Envoy access-log formats: compiled once, matched per line.
//!
//! A format string (`[%START_TIME%] "%REQ(:METHOD)% ..."`) is parsed into
//! tokens, then compiled into one anchored regex-automata pattern plus a plan
//! that maps captures to the typed [`Field`]s strictly reads. `istio-json`
//! lines are parsed by key with serde_json instead. A [`LineParser`] owns the
//! per-thread matching caches; [`LogFormat`]s are immutable and shared.
//!
//! - `token`: format string → literals and `%OPERATOR(arg):N%` tokens, with column errors.
//! - `operator`: which [`Field`] an operator fills and what its values look like.
//! - `text`: tokens → anchored regex, probe and the allocation-free fast path.
//! - `json`: JSON formats, read by key with serde_json.
//! - `start_time`: `%START_TIME%` values → epoch milliseconds (RFC 3339 or strftime).
//! - `builtin`: the lab's and Istio's formats; `config_file`: `--log-format-file`.
//! - `log_format`: [`LogFormat`] and [`select`]; `line_parser`: [`LineParser`].
//! - `known`: the operators Envoy knows; `diagnose`: why a line fits no format.
//! - `ztunnel`: ambient mode's ztunnel connection lines (text or JSON), read by key.

use std::path::Path;
use std::sync::Arc;

/// The access-log fields strictly reads; every other operator is matched but ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Field {
    /// `%START_TIME%` (any strftime argument).
    StartTime,
    /// `%DOWNSTREAM_PEER_URI_SAN%`: the lab's `mTLS_Origin`.
    PeerUriSan,
    /// `%DOWNSTREAM_LOCAL_URI_SAN%`: the lab's `mTLS_Destination`.
    LocalUriSan,
    /// `%REQ(X-FORWARDED-CLIENT-CERT)%`: the lab's `cert:`.
    Xfcc,
    /// `%REQ(X-FORWARDED-FOR)%`.
    ForwardedFor,
    /// `%DYNAMIC_METADATA(envoy.common:access_log_hint)%`: the lab's `audit_flag`.
    AuditHint,
    /// `%UPSTREAM_CLUSTER%` (`inbound|8080||` marks inbound).
    UpstreamCluster,
    /// `%REQUESTED_SERVER_NAME%` (`outbound_...` marks an Istio mTLS client).
    RequestedServerName,
    /// `%DOWNSTREAM_REMOTE_ADDRESS%` (`ip:port`).
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_LOCAL_ADDRESS%` (`ip:port`): which pod received the request.
    DownstreamLocalAddress,
    /// `%DURATION%` in milliseconds.
    Duration,
    /// `%REQ(USER-AGENT)%`.
    UserAgent,
    /// `%RESPONSE_CODE%`.
    ResponseCode,
    /// `%REQ(:METHOD)%`.
    Method,
    /// `%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%` or `%REQ(:PATH)%`.
    Path,
    /// `%REQ(:AUTHORITY)%`.
    Authority,
    /// ztunnel's `direction` (`inbound` / `outbound`).
    Direction,
    /// ztunnel's `dst.workload`: the destination pod's name.
    DestinationWorkload,
    /// ztunnel's `dst.namespace`.
    DestinationNamespace,
    /// ztunnel's `error`: why a connection ended badly.
    ConnectionError,
    /// ztunnel's event: `complete` or `failed` (an early deny).
    ConnectionEvent,
    /// `%RESPONSE_FLAGS%` (`NR`: no route, or no filter chain for the connection).
    ResponseFlags,
    /// `%RESPONSE_CODE_DETAILS%` (`filter_chain_not_found`: a listener refused the connection).
    ResponseCodeDetails,
}

impl Field {
    /// Number of variants; the size of [`AccessEntry`]'s value table.
    pub const COUNT: usize = 23;

    /// Every field, in declaration order (`ALL[f as usize] == f`).
    pub const ALL: [Field; Field::COUNT] = [
        Field::StartTime,
        Field::PeerUriSan,
        Field::LocalUriSan,
        Field::Xfcc,
        Field::ForwardedFor,
        Field::AuditHint,
        Field::UpstreamCluster,
        Field::RequestedServerName,
        Field::DownstreamRemoteAddress,
        Field::DownstreamLocalAddress,
        Field::Duration,
        Field::UserAgent,
        Field::ResponseCode,
        Field::Method,
        Field::Path,
        Field::Authority,
        Field::Direction,
        Field::DestinationWorkload,
        Field::DestinationNamespace,
        Field::ConnectionError,
        Field::ConnectionEvent,
        Field::ResponseFlags,
        Field::ResponseCodeDetails,
    ];
}

/// The fields of one access entry, borrowed from the line (or the parser's scratch).
#[derive(Clone, Debug, Default)]
pub struct AccessEntry<'a> {
    values: [Option<&'a [u8]>; Field::COUNT],
    /// `%START_TIME%` parsed with the format's own time format, if it logs one.
    pub start_time_ms: Option<i64>,
}

impl<'a> AccessEntry<'a> {
    /// Sets a field's raw value as it appears in the line.
    pub fn set(&mut self, field: Field, value: &'a [u8]) {
        self.values[field as usize] = Some(value);
    }

    /// Returns the field's value, or `None` when it is absent, empty or Envoy's `-`.
    pub fn get(&self, field: Field) -> Option<&'a [u8]> {
        match self.values[field as usize] {
            None | Some(b"") | Some(b"-") => None,
            v => v,
        }
    }

    /// Returns the raw value, `-` and empty included.
    pub fn raw(&self, field: Field) -> Option<&'a [u8]> {
        self.values[field as usize]
    }
}

/// What a line turned out to be.
// Returned by value once per line: boxing the entry would allocate per line.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed<'a> {
    /// A complete access entry of `formats[format]`.
    Access {
        entry: AccessEntry<'a>,
        format: usize,
    },
    /// Not an access entry (pilot-agent or Envoy diagnostics): skipped.
    NotAccess,
    /// Looks like an access entry but matches no format completely.
    Malformed,
}

/// A bad format string or format file.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("log format: {message} at column {column}: {snippet}")]
    Syntax {
        message: String,
        column: usize,
        snippet: String,
    },
    #[error(
        "unknown log format {0:?}: use lab, lab-v0, lab-cert, istio, istio-1.8, istio-json, strictly, ztunnel, auto, or an Envoy format string"
    )]
    UnknownName(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(
        "log format {name:?} logs neither %DOWNSTREAM_PEER_URI_SAN%, %REQ(X-FORWARDED-CLIENT-CERT)% nor %REQUESTED_SERVER_NAME%: strictly cannot tell mTLS from plaintext with it"
    )]
    NoTransportEvidence { name: String },
}

mod builtin;
mod config_file;
mod diagnose;
#[cfg(test)]
mod fast_path_tests;
pub mod grok;
mod json;
mod json_scan;
#[cfg(test)]
mod json_scan_tests;
mod known;
mod line_parser;
mod log_format;
mod logql;
mod operator;
#[cfg(test)]
mod roundtrip_tests;
mod scan;
mod start_time;
#[cfg(test)]
mod tests;
mod text;
mod token;
pub(crate) mod ztunnel;

pub use diagnose::explain_misfit;
pub use line_parser::LineParser;
pub use log_format::{LogFormat, builtin_names, select};
pub use logql::{PUSHDOWN_FIELDS, PushdownError};

/// The formats to try on each line: shared, immutable, compiled once.
pub type FormatSet = Arc<[LogFormat]>;

/// Loads the formats named by `--log-format` / `--log-format-file` (auto when neither).
///
/// ```
/// let formats = strictly::format::load(Some("lab"), None).unwrap();
/// assert_eq!(formats.len(), 1);
/// ```
pub fn load(log_format: Option<&str>, file: Option<&Path>) -> Result<FormatSet, FormatError> {
    Ok(select(log_format, file)?.into())
}
