//! What an Envoy command operator means to strictly: which [`Field`] it fills,
//! and what its values look like (so the matcher knows where a value can end).

use super::Field;
use super::token::Operator;

/// The shape of an operator's values in a text line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueClass {
    /// Anything, quotes and spaces included: the value ends where the next literal matches.
    Any,
    /// `-` or decimal digits (`-|[0-9]+`).
    Number,
    /// Envoy-generated text without spaces or quotes (`[^ "]*`): SANs, addresses,
    /// cluster names, flags. A value can then never swallow the literal text
    /// after it, so an extra trailing field or a forged `" mTLS_Origin: "`
    /// inside a header cannot be absorbed into it.
    Token,
    /// Envoy's default `%START_TIME%`: `2026-11-20T11:43:14.559Z`.
    Rfc3339,
}

/// Operators Envoy renders without spaces or `"`: URIs, host names, `ip:port`,
/// cluster and route names, comma-joined flags, details (Envoy replaces their
/// whitespace with `_`).
const TOKEN: &[&str] = &[
    "DOWNSTREAM_PEER_URI_SAN",
    "DOWNSTREAM_LOCAL_URI_SAN",
    "UPSTREAM_CLUSTER",
    "UPSTREAM_CLUSTER_RAW",
    "REQUESTED_SERVER_NAME",
    "DOWNSTREAM_REMOTE_ADDRESS",
    "DOWNSTREAM_LOCAL_ADDRESS",
    "DOWNSTREAM_DIRECT_REMOTE_ADDRESS",
    "UPSTREAM_LOCAL_ADDRESS",
    "UPSTREAM_REMOTE_ADDRESS",
    "UPSTREAM_HOST",
    "PROTOCOL",
    "RESPONSE_FLAGS",
    "RESPONSE_CODE_DETAILS",
    "ROUTE_NAME",
];

/// Operators whose values are always `-` or a non-negative integer.
const NUMERIC: &[&str] = &[
    "RESPONSE_CODE",
    "BYTES_RECEIVED",
    "BYTES_SENT",
    "DURATION",
    "REQUEST_DURATION",
    "REQUEST_TX_DURATION",
    "RESPONSE_DURATION",
    "RESPONSE_TX_DURATION",
    "UPSTREAM_REQUEST_ATTEMPT_COUNT",
    "DOWNSTREAM_WIRE_BYTES_SENT",
    "DOWNSTREAM_WIRE_BYTES_RECEIVED",
    "UPSTREAM_WIRE_BYTES_SENT",
    "UPSTREAM_WIRE_BYTES_RECEIVED",
    "DOWNSTREAM_HEADER_BYTES_SENT",
    "DOWNSTREAM_HEADER_BYTES_RECEIVED",
    "UPSTREAM_HEADER_BYTES_SENT",
    "UPSTREAM_HEADER_BYTES_RECEIVED",
    "CONNECTION_ID",
    "UPSTREAM_CONNECTION_ID",
    "GRPC_STATUS_NUMBER",
];

impl Operator {
    /// The field this operator fills, if strictly reads it.
    pub(crate) fn field(&self) -> Option<Field> {
        let arg = self.arg.as_deref().map(str::to_ascii_uppercase);
        let field = match (self.name.as_str(), arg.as_deref()) {
            ("START_TIME", _) => Field::StartTime,
            ("DOWNSTREAM_PEER_URI_SAN", None) => Field::PeerUriSan,
            ("DOWNSTREAM_LOCAL_URI_SAN", None) => Field::LocalUriSan,
            ("UPSTREAM_CLUSTER" | "UPSTREAM_CLUSTER_RAW", None) => Field::UpstreamCluster,
            ("REQUESTED_SERVER_NAME", None) => Field::RequestedServerName,
            ("DOWNSTREAM_REMOTE_ADDRESS", None) => Field::DownstreamRemoteAddress,
            ("DOWNSTREAM_LOCAL_ADDRESS", None) => Field::DownstreamLocalAddress,
            ("DURATION", None) => Field::Duration,
            ("RESPONSE_CODE", None) => Field::ResponseCode,
            ("RESPONSE_FLAGS", None) => Field::ResponseFlags,
            ("RESPONSE_CODE_DETAILS", None) => Field::ResponseCodeDetails,
            // The `envoy.common` namespace is Envoy's; keys are case-sensitive there.
            ("DYNAMIC_METADATA", Some(_))
                if self.arg.as_deref() == Some("envoy.common:access_log_hint") =>
            {
                Field::AuditHint
            }
            // Header names are case-insensitive.
            ("REQ", Some(h)) => match h {
                "X-FORWARDED-CLIENT-CERT" => Field::Xfcc,
                "X-FORWARDED-FOR" => Field::ForwardedFor,
                "USER-AGENT" => Field::UserAgent,
                ":METHOD" => Field::Method,
                ":PATH" | "X-ENVOY-ORIGINAL-PATH?:PATH" => Field::Path,
                ":AUTHORITY" | "HOST" => Field::Authority,
                _ => return None,
            },
            // Istio's `envoy.formatter.req_without_query` extension: the path without its query.
            ("REQ_WITHOUT_QUERY", Some(":PATH" | "X-ENVOY-ORIGINAL-PATH?:PATH")) => Field::Path,
            _ => return None,
        };
        Some(field)
    }

    /// The shape of this operator's values.
    pub(crate) fn class(&self) -> ValueClass {
        let name = self.name.as_str();
        if name == "START_TIME" && self.arg.as_deref().is_none_or(str::is_empty) {
            return ValueClass::Rfc3339;
        }
        if self.arg.is_none() && NUMERIC.contains(&name) {
            return ValueClass::Number;
        }
        if self.arg.is_none() && TOKEN.contains(&name) {
            return ValueClass::Token;
        }
        // The AUDIT hint is a JSON boolean: `true`, `false` or `-`.
        if self.field() == Some(Field::AuditHint) {
            return ValueClass::Token;
        }
        if name == "RESP"
            && self
                .arg
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case("X-ENVOY-UPSTREAM-SERVICE-TIME"))
        {
            return ValueClass::Number;
        }
        ValueClass::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(s: &str) -> Operator {
        match super::super::token::tokenize(s).unwrap().pop() {
            Some(super::super::token::Token::Operator(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn known_operators_map_to_fields() {
        let cases = [
            ("%START_TIME%", Some(Field::StartTime)),
            ("%START_TIME(%s)%", Some(Field::StartTime)),
            ("%DOWNSTREAM_PEER_URI_SAN%", Some(Field::PeerUriSan)),
            ("%DOWNSTREAM_LOCAL_URI_SAN%", Some(Field::LocalUriSan)),
            ("%REQ(X-FORWARDED-CLIENT-CERT)%", Some(Field::Xfcc)),
            ("%REQ(x-forwarded-client-cert)%", Some(Field::Xfcc)),
            ("%REQ(X-FORWARDED-FOR)%", Some(Field::ForwardedFor)),
            (
                "%DYNAMIC_METADATA(envoy.common:access_log_hint)%",
                Some(Field::AuditHint),
            ),
            ("%DYNAMIC_METADATA(istio.mixer:status)%", None),
            ("%UPSTREAM_CLUSTER%", Some(Field::UpstreamCluster)),
            ("%UPSTREAM_CLUSTER_RAW%", Some(Field::UpstreamCluster)),
            ("%REQUESTED_SERVER_NAME%", Some(Field::RequestedServerName)),
            (
                "%DOWNSTREAM_REMOTE_ADDRESS%",
                Some(Field::DownstreamRemoteAddress),
            ),
            ("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", None),
            ("%DURATION%", Some(Field::Duration)),
            ("%REQ(USER-AGENT)%", Some(Field::UserAgent)),
            ("%RESPONSE_CODE%", Some(Field::ResponseCode)),
            ("%REQ(:METHOD)%", Some(Field::Method)),
            ("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%", Some(Field::Path)),
            ("%REQ(:PATH)%", Some(Field::Path)),
            (
                "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                Some(Field::Path),
            ),
            ("%REQ(:AUTHORITY)%", Some(Field::Authority)),
            ("%REQ(X-REQUEST-ID)%", None),
            ("%RESP(X-FORWARDED-FOR)%", None),
            ("%PROTOCOL%", None),
        ];
        for (s, want) in cases {
            assert_eq!(op(s).field(), want, "{s}");
        }
    }

    #[test]
    fn value_classes() {
        assert_eq!(op("%START_TIME%").class(), ValueClass::Rfc3339);
        assert_eq!(op("%START_TIME(%s)%").class(), ValueClass::Any);
        assert_eq!(op("%RESPONSE_CODE%").class(), ValueClass::Number);
        assert_eq!(op("%BYTES_SENT%").class(), ValueClass::Number);
        assert_eq!(
            op("%RESP(x-envoy-upstream-service-time)%").class(),
            ValueClass::Number
        );
        assert_eq!(
            op("%REQ(X-FORWARDED-CLIENT-CERT)%").class(),
            ValueClass::Any
        );
        assert_eq!(op("%RESPONSE_FLAGS%").class(), ValueClass::Token);
        assert_eq!(op("%DOWNSTREAM_PEER_URI_SAN%").class(), ValueClass::Token);
        assert_eq!(
            op("%DYNAMIC_METADATA(envoy.common:access_log_hint)%").class(),
            ValueClass::Token
        );
        assert_eq!(op("%REQ(X-FORWARDED-FOR)%").class(), ValueClass::Any);
        assert_eq!(
            op("%UPSTREAM_TRANSPORT_FAILURE_REASON%").class(),
            ValueClass::Any
        );
    }
}
