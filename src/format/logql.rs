//! A text format compiled for a log store to run (push-down): the same
//! anchored pattern the line parser uses, written in RE2 syntax (Go's regexp,
//! which LogQL's `|~` and `| regexp` run), with a named group for each field
//! strictly needs to classify a request — and no group for anything that
//! varies per request (times, durations, paths), so the store's counts group
//! by caller, not by request.

use std::fmt::Write as _;

use super::log_format::Kind;
use super::operator::ValueClass;
use super::text::class_pattern;
use super::{Field, LogFormat};

/// The fields a push-down groups by, each with the Loki label its group
/// creates (`x_` keeps them apart from stream labels such as `pod`).
pub const PUSHDOWN_FIELDS: [(Field, &str); 8] = [
    (Field::PeerUriSan, "x_peer_san"),
    (Field::LocalUriSan, "x_local_san"),
    (Field::Xfcc, "x_xfcc"),
    (Field::ForwardedFor, "x_forwarded_for"),
    (Field::AuditHint, "x_audit"),
    (Field::UpstreamCluster, "x_upstream_cluster"),
    (Field::RequestedServerName, "x_sni"),
    (Field::DownstreamRemoteAddress, "x_peer_ip"),
];

/// Why a format cannot be pushed down.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushdownError {
    #[error(
        "the format {0} is JSON: push-down compiles text formats only (drop --pushdown, or pass a text --log-format)"
    )]
    Json(String),
    #[error("the format {0} has literal text that is not UTF-8: a LogQL regexp cannot hold it")]
    NotUtf8(String),
}

impl LogFormat {
    /// The RE2 pattern matching exactly this format's lines, with a named
    /// group (see [`PUSHDOWN_FIELDS`]) per field push-down groups by; the
    /// remote address's group holds the IP without its port.
    ///
    /// ```
    /// use strictly::format::LogFormat;
    ///
    /// let f = LogFormat::compile("t", r#"[%START_TIME%] %DOWNSTREAM_PEER_URI_SAN% %DURATION%"#).unwrap();
    /// let re = f.re2_pattern().unwrap();
    /// assert!(re.starts_with(r"(?s)^\x5B"));
    /// assert!(re.contains("(?P<x_peer_san>"));
    /// ```
    pub fn re2_pattern(&self) -> Result<String, PushdownError> {
        let Kind::Text(text) = &self.kind else {
            return Err(PushdownError::Json(self.name().to_string()));
        };
        let mut out = String::from("(?s)^");
        let literal = |out: &mut String, bytes: &[u8]| {
            let s = std::str::from_utf8(bytes)
                .map_err(|_| PushdownError::NotUtf8(self.name().to_string()))?;
            for c in s.chars() {
                if c.is_ascii_alphanumeric() || !c.is_ascii() {
                    out.push(c);
                } else {
                    let _ = write!(out, "\\x{:02X}", c as u32);
                }
            }
            Ok(())
        };
        literal(&mut out, text.head())?;
        for step in text.steps() {
            let class = class_pattern(step.class);
            let label = step
                .field
                .and_then(|f| PUSHDOWN_FIELDS.iter().find(|(pf, _)| *pf == f))
                .map(|(_, l)| *l);
            match (label, step.field) {
                (Some(l), Some(Field::DownstreamRemoteAddress))
                    if matches!(step.class, ValueClass::Token | ValueClass::Any) =>
                {
                    // `ip:port` or `[v6]:port`: the IP alone, or (`-`, a pipe) no label.
                    let _ = write!(
                        out,
                        r"(?:(?P<{l}>[0-9.]+|\[[0-9A-Fa-f:.]+\]):[0-9]+|{class})"
                    );
                }
                (Some(l), _) => {
                    let _ = write!(out, "(?P<{l}>{class})");
                }
                (None, _) => {
                    let _ = write!(out, "(?:{class})");
                }
            }
            literal(&mut out, &step.tail)?;
        }
        out.push_str(r"\z");
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use regex_automata::meta::Regex;

    use super::*;
    use crate::format::{LineParser, Parsed, load};
    use crate::request::strip_port;

    /// The sample mesh's lines: each built-in text format's pattern matches
    /// a line if and only if the line parser reads it as that format, and
    /// captures what the parser reads.
    #[test]
    fn patterns_agree_with_the_line_parser() {
        let formats = load(None, None).unwrap();
        let mut parser = LineParser::new(formats.clone());
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/sample/mesh.log"
        ))
        .unwrap();
        let mut checked = 0;
        for (i, f) in formats.iter().enumerate() {
            let Ok(pattern) = f.re2_pattern() else {
                continue;
            };
            let re = Regex::new(&pattern).unwrap();
            for line in text.lines().filter(|l| l.contains("HTTP/")).take(4000) {
                // `[pod/P/C] TIMESTAMP payload`
                let Some(candidate) = line.splitn(3, ' ').nth(2) else {
                    continue;
                };
                {
                    let mut caps = re.create_captures();
                    re.captures(candidate, &mut caps);
                    let parsed = parser.parse(candidate.as_bytes());
                    let Parsed::Access { entry, format } = parsed else {
                        continue;
                    };
                    if format != i {
                        continue;
                    }
                    assert!(caps.is_match(), "{} misses {candidate}", f.name());
                    for (field, label) in PUSHDOWN_FIELDS {
                        let got = caps
                            .get_group_by_name(label)
                            .map(|s| candidate[s.range()].as_bytes());
                        let want = match field {
                            Field::DownstreamRemoteAddress => entry.raw(field).and_then(|v| {
                                (v != b"-").then(|| {
                                    let ip = strip_port(v);
                                    if v.starts_with(b"[") {
                                        &v[..ip.len() + 2]
                                    } else {
                                        ip
                                    }
                                })
                            }),
                            _ if f.logs(field) => entry.raw(field),
                            _ => None,
                        };
                        assert_eq!(got, want, "{} {label} in {candidate}", f.name());
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }
}
