//! The built-in formats: the lab's, and Istio's defaults, by name.
//!
//! Istio's strings are copied from its source: `EnvoyTextLogFormat` (1.9 and
//! later: `pilot/pkg/networking/core/v1alpha3/accesslog.go`, since moved to
//! `pilot/pkg/model/telemetry_logging.go`), the pre-1.9 `EnvoyTextLogFormat`
//! that 1.9 still served to 1.8 proxies (without `%RESPONSE_CODE_DETAILS%` and
//! `%CONNECTION_TERMINATION_DETAILS%`), and `EnvoyJSONLogFormatIstio`. Later
//! Istio logs `%UPSTREAM_CLUSTER_RAW%` instead of `%UPSTREAM_CLUSTER%`: same
//! shape, same field.

/// The lab's EnvoyFilter format, as its YAML decodes.
pub(crate) const LAB: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "#,
    r#""%REQ(X-FORWARDED-FOR)%" mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAN%" mTLS_Destination: "%DOWNSTREAM_LOCAL_URI_SAN%" "#,
    r#"cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" audit_flag: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%""#,
    "\n"
);

/// What `strictly instrument` installs (and `deploy/istio/` ships): the lab's
/// format plus the caller's address, so a plaintext caller without an
/// identity is still named by its IP. A built-in, so the next report reads it
/// with no flags; being the lab's plus a literal tail it is the more specific
/// of the two, and the parser tries it first.
pub(crate) const STRICTLY: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "#,
    r#""%REQ(X-FORWARDED-FOR)%" mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAN%" mTLS_Destination: "%DOWNSTREAM_LOCAL_URI_SAN%" "#,
    r#"cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" audit_flag: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%" "#,
    r#"peer: "%DOWNSTREAM_REMOTE_ADDRESS%""#,
    "\n"
);

/// The lab's fields in the order of its first sample line: the upstream
/// service time and X-Forwarded-For come after mTLS_Destination.
pub(crate) const LAB_V0: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "#,
    r#"mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAN%" mTLS_Destination: "%DOWNSTREAM_LOCAL_URI_SAN%" "#,
    r#"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "#,
    r#"cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" audit_flag: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%""#,
    "\n"
);

/// The published variant of the lab's format with `cert:` and `audit_flag:` only.
pub(crate) const LAB_CERT: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "#,
    r#""%REQ(X-FORWARDED-FOR)%" cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" "#,
    r#"audit_flag: "%DYNAMIC_METADATA(envoy.common:access_log_hint)%""#,
    "\n"
);

/// Istio's default TEXT format, 1.9 and later.
pub(crate) const ISTIO: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#"%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% "#,
    r#"%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "#,
    r#""%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" "#,
    r#"%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% "#,
    r#"%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%"#,
    "\n"
);

/// Istio's default TEXT format before 1.9 (what 1.8 proxies log).
pub(crate) const ISTIO_1_8: &str = concat!(
    r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% "#,
    r#""%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% "#,
    r#"%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "#,
    r#""%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" "#,
    r#"%UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% "#,
    r#"%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%"#,
    "\n"
);

/// Istio's default format with `accessLogEncoding: JSON` (`EnvoyJSONLogFormatIstio`).
pub(crate) const ISTIO_JSON: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("route_name", "%ROUTE_NAME%"),
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("duration", "%DURATION%"),
    (
        "upstream_service_time",
        "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    ),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
    ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    (
        "upstream_transport_failure_reason",
        "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    ),
];

/// What `--log-format ztunnel` shows as its source: ztunnel's format is its
/// own (`src/telemetry.rs`), not an Envoy format string.
pub(crate) const ZTUNNEL: &str = "ztunnel access lines: TIME LEVEL access connection complete|failed key=value ... (text or JSON)";

/// A built-in format's definition.
pub(crate) enum Definition {
    Text(&'static str),
    Json(&'static [(&'static str, &'static str)]),
    /// ztunnel's connection lines, read by key (see `ztunnel`).
    Ztunnel,
}

/// The built-ins, in the order auto-detection tries them.
pub(crate) const BUILTINS: [(&str, Definition); 8] = [
    ("lab", Definition::Text(LAB)),
    ("lab-v0", Definition::Text(LAB_V0)),
    ("lab-cert", Definition::Text(LAB_CERT)),
    ("istio", Definition::Text(ISTIO)),
    ("istio-1.8", Definition::Text(ISTIO_1_8)),
    ("istio-json", Definition::Json(ISTIO_JSON)),
    ("strictly", Definition::Text(STRICTLY)),
    ("ztunnel", Definition::Ztunnel),
];

/// Names of the built-ins, in [`BUILTINS`] order.
pub(crate) const NAMES: [&str; 8] = [
    "lab",
    "lab-v0",
    "lab-cert",
    "istio",
    "istio-1.8",
    "istio-json",
    "strictly",
    "ztunnel",
];

/// Looks a built-in up by name.
pub(crate) fn definition(name: &str) -> Option<&'static Definition> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, d)| d)
}
