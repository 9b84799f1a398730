//! [`LogFormat`]: one compiled format, and [`select`], which turns
//! `--log-format` / `--log-format-file` into the formats to try.

use super::builtin::{self, Definition};
use super::json::JsonFormat;
use super::text::TextFormat;
use super::token::tokenize;
use super::{Field, FormatError, config_file};
use std::path::Path;

/// One compiled log format: immutable, shared by every [`LineParser`](super::LineParser).
#[derive(Debug)]
pub struct LogFormat {
    name: String,
    source: String,
    pub(crate) kind: Kind,
}

/// How a format's lines are read.
// A handful of formats per run, each read through a reference: boxing the
// text variant would only add an indirection on the per-line path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Kind {
    Text(TextFormat),
    Json(JsonFormat),
    /// ztunnel's connection lines (ambient mode), text or JSON: read by key.
    Ztunnel,
}

impl LogFormat {
    /// Compiles an Envoy text format string.
    ///
    /// ```
    /// use strictly::format::{Field, FormatError, LogFormat};
    ///
    /// let f = LogFormat::compile("custom", r#"[%START_TIME%] "%REQ(:METHOD)%" %DOWNSTREAM_PEER_URI_SAN%\n"#).unwrap();
    /// assert!(f.logs(Field::PeerUriSan));
    /// assert!(!f.logs(Field::Xfcc));
    ///
    /// let err = LogFormat::compile("custom", r#"[%START_TIME%] "%REQ(:METHOD)" %X%"#).unwrap_err();
    /// assert!(matches!(err, FormatError::Syntax { column: 17, .. }), "{err}");
    /// ```
    pub fn compile(name: &str, format: &str) -> Result<LogFormat, FormatError> {
        let tokens = tokenize(format)?;
        let text = TextFormat::compile(&tokens).map_err(|message| FormatError::Syntax {
            message,
            column: 1,
            snippet: snippet(format),
        })?;
        Ok(LogFormat {
            name: name.to_string(),
            source: format.to_string(),
            kind: Kind::Text(text),
        })
    }

    /// Compiles a JSON format from its `key → "%OPERATOR%"` dictionary.
    ///
    /// ```
    /// use strictly::format::{Field, LogFormat};
    ///
    /// let f = LogFormat::compile_json("custom", [("sni", "%REQUESTED_SERVER_NAME%"), ("code", "%RESPONSE_CODE%")]).unwrap();
    /// assert!(f.is_json() && f.logs(Field::RequestedServerName) && !f.logs(Field::StartTime));
    /// ```
    pub fn compile_json<K: AsRef<str>, V: AsRef<str>>(
        name: &str,
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<LogFormat, FormatError> {
        let entries: Vec<(K, V)> = entries.into_iter().collect();
        let source = serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().into()))
                .collect(),
        )
        .to_string();
        let json = JsonFormat::compile(entries)?;
        Ok(LogFormat {
            name: name.to_string(),
            source,
            kind: Kind::Json(json),
        })
    }

    /// Compiles a built-in format by name (see [`builtin_names`]).
    ///
    /// ```
    /// use strictly::format::{Field, LogFormat};
    ///
    /// let lab = LogFormat::builtin("lab").unwrap();
    /// assert!(lab.logs(Field::PeerUriSan) && lab.logs(Field::Xfcc) && !lab.logs(Field::UpstreamCluster));
    /// assert!(LogFormat::builtin("nginx").is_none());
    /// ```
    pub fn builtin(name: &str) -> Option<LogFormat> {
        let format = match builtin::definition(name)? {
            Definition::Text(s) => LogFormat::compile(name, s),
            Definition::Json(entries) => LogFormat::compile_json(name, entries.iter().copied()),
            Definition::Ztunnel => Ok(LogFormat {
                name: name.to_string(),
                source: builtin::ZTUNNEL.to_string(),
                kind: Kind::Ztunnel,
            }),
        };
        // The built-in definitions are constants covered by tests.
        format.ok()
    }

    /// The format's name (`lab`, `istio`, ... or `custom`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Envoy format string (or, for JSON, the key dictionary) it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Returns true if and only if lines are JSON objects read by key.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// Returns true if and only if this is ztunnel's connection log (ambient
    /// mode): its entries are connections, and name their own destination pod.
    pub fn is_ztunnel(&self) -> bool {
        matches!(self.kind, Kind::Ztunnel)
    }

    /// Returns true if and only if the format logs `field`.
    pub fn logs(&self, field: Field) -> bool {
        match &self.kind {
            Kind::Text(t) => t.logs(field),
            Kind::Json(j) => j.logs(field),
            Kind::Ztunnel => matches!(
                field,
                Field::StartTime
                    | Field::PeerUriSan
                    | Field::LocalUriSan
                    | Field::DownstreamRemoteAddress
                    | Field::DownstreamLocalAddress
                    | Field::Duration
                    | Field::Direction
                    | Field::DestinationWorkload
                    | Field::DestinationNamespace
                    | Field::ConnectionError
                    | Field::ConnectionEvent
            ),
        }
    }

    /// How specific a match of this format is: bytes of literal text (text
    /// formats) or of the keys read (JSON). Ranks formats that fit the same line.
    pub fn specificity(&self) -> usize {
        match &self.kind {
            Kind::Text(t) => t.literal_bytes(),
            Kind::Json(j) => j.key_bytes(),
            // Its lines fit no Envoy format and Envoy's fit not it: any rank will do.
            Kind::Ztunnel => 0,
        }
    }

    /// Returns true if and only if the format logs `%START_TIME%` without a
    /// calendar date (e.g. `%START_TIME(%H:%M:%S)%`): its entries carry no
    /// start time and take the envelope's write time instead.
    ///
    /// ```
    /// use strictly::format::LogFormat;
    ///
    /// let f = LogFormat::compile("custom", "%START_TIME(%H:%M:%S)% %DOWNSTREAM_PEER_URI_SAN%").unwrap();
    /// assert!(f.start_time_lacks_date());
    /// assert!(!LogFormat::builtin("lab").unwrap().start_time_lacks_date());
    /// ```
    pub fn start_time_lacks_date(&self) -> bool {
        let start_time = match &self.kind {
            Kind::Text(t) => t.start_time(),
            Kind::Json(j) => j.start_time(),
            Kind::Ztunnel => return false,
        };
        self.logs(Field::StartTime) && !start_time.has_date()
    }

    /// Returns true if and only if the format logs something that tells mTLS from plaintext.
    pub fn has_transport_evidence(&self) -> bool {
        [Field::PeerUriSan, Field::Xfcc, Field::RequestedServerName]
            .into_iter()
            .any(|f| self.logs(f))
    }

    /// Rejects a user-supplied format strictly could not judge; `label` names it in the error.
    pub(crate) fn require_transport_evidence(self, label: &str) -> Result<LogFormat, FormatError> {
        if self.has_transport_evidence() {
            Ok(self)
        } else {
            Err(FormatError::NoTransportEvidence {
                name: label.to_string(),
            })
        }
    }
}

/// The first characters of a format, for errors that concern the whole of it.
fn snippet(format: &str) -> String {
    let mut s: String = format.chars().take(40).collect();
    if format.chars().nth(40).is_some() {
        s.push('…');
    }
    s
}

/// Names of the built-in formats, in the order auto-detection tries them.
///
/// ```
/// assert_eq!(strictly::format::builtin_names()[0], "lab");
/// ```
pub fn builtin_names() -> &'static [&'static str] {
    &builtin::NAMES
}

/// Resolves `--log-format`/`--log-format-file` into formats (all built-ins when both are `None` or `auto`).
///
/// `log_format` is `auto`, a built-in name, or an Envoy format string (anything
/// with a `%`, named `custom`); `file` (which wins) holds a format string, an
/// EnvoyFilter, Istio mesh config or the `istio` ConfigMap.
///
/// ```
/// use strictly::format::{FormatError, select};
///
/// assert_eq!(select(None, None).unwrap().len(), 7);
/// assert_eq!(select(Some("istio-1.8"), None).unwrap()[0].name(), "istio-1.8");
/// let custom = select(Some("%START_TIME% %REQUESTED_SERVER_NAME%"), None).unwrap();
/// assert_eq!(custom[0].name(), "custom");
/// assert!(matches!(select(Some("nginx"), None), Err(FormatError::UnknownName(_))));
/// assert!(matches!(select(Some("%START_TIME% %RESPONSE_CODE%"), None), Err(FormatError::NoTransportEvidence { .. })));
/// ```
pub fn select(
    log_format: Option<&str>,
    file: Option<&Path>,
) -> Result<Vec<LogFormat>, FormatError> {
    if let Some(path) = file {
        return config_file::load(path);
    }
    match log_format {
        None | Some("auto") => Ok(builtin::NAMES
            .iter()
            .filter_map(|n| LogFormat::builtin(n))
            .collect()),
        Some(name) if builtin::definition(name).is_some() => {
            Ok(LogFormat::builtin(name).into_iter().collect())
        }
        Some(format) if format.contains('%') => LogFormat::compile("custom", format)?
            .require_transport_evidence("custom")
            .map(|f| vec![f]),
        Some(other) => Err(FormatError::UnknownName(other.to_string())),
    }
}
