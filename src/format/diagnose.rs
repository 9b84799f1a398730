//! Why a line does not fit a format: the operator (and column) where matching stops.
//!
//! Only for reports, never per line: a format that fits none of the lines
//! (a `--log-format` copied from another mesh) must say which field failed
//! on a sample line, not only count malformed lines (issue 7 item 26). The
//! format's regex is rebuilt one operator longer at a time until it no
//! longer matches: the operator added last is the one the line breaks.

use super::json::JsonFormat;
use super::log_format::{Kind, LogFormat};
use super::operator::ValueClass;
use super::text::{TextFormat, build_regex, class_pattern, push_literal};
use super::{Field, LineParser, Parsed};
use regex_automata::{Anchored, Input};
use std::fmt::Write as _;

/// Where and why a line stops fitting one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Misfit {
    /// Byte offset in the line where matching stopped.
    pub(crate) at: usize,
    pub(crate) reason: String,
}

/// Explains why `line` (envelope removed) fits none of `formats`, naming the
/// format that matched furthest, the operator and the 1-based column; `None`
/// when it is a complete entry of one of them.
///
/// ```
/// let formats = strictly::format::load(Some("%START_TIME% %RESPONSE_CODE% %DOWNSTREAM_PEER_URI_SAN%"), None).unwrap();
/// let why = strictly::format::explain_misfit(&formats, b"2026-11-20T11:43:14.559Z OK -").unwrap();
/// assert!(why.contains("%RESPONSE_CODE%") && why.contains("column 26"), "{why}");
/// assert_eq!(strictly::format::explain_misfit(&formats, b"2026-11-20T11:43:14.559Z 200 -"), None);
/// ```
pub fn explain_misfit(formats: &super::FormatSet, line: &[u8]) -> Option<String> {
    let mut parser = LineParser::new(formats.clone());
    if let Parsed::Access { .. } = parser.parse(line) {
        return None;
    }
    let (format, misfit) = formats
        .iter()
        .map(|f| (f, misfit(f, line)))
        .max_by_key(|(f, m)| (m.at, f.specificity()))?;
    let column = String::from_utf8_lossy(&line[..misfit.at.min(line.len())])
        .chars()
        .count()
        + 1;
    Some(format!(
        "the line does not fit log format {:?}: at column {column}, {}",
        format.name(),
        misfit.reason
    ))
}

/// Why `line` is not a complete entry of `format` (it is assumed not to be one).
fn misfit(format: &LogFormat, line: &[u8]) -> Misfit {
    match &format.kind {
        Kind::Text(t) => text_misfit(t, line),
        Kind::Json(j) => json_misfit(j, line),
        Kind::Ztunnel => Misfit {
            at: 0,
            reason: "not a complete ztunnel access line (TIME LEVEL access connection complete key=value ..., with dst.addr, direction and a real date)".into(),
        },
    }
}

fn text_misfit(t: &TextFormat, line: &[u8]) -> Misfit {
    let head = t.head();
    if !line.starts_with(head) {
        let at = line.iter().zip(head).take_while(|(a, b)| a == b).count();
        return Misfit {
            at,
            reason: format!(
                "the line does not begin with the format's text {}: found {}",
                quoted(head),
                found(line, at)
            ),
        };
    }
    let mut pattern = String::from("(?s-u)");
    push_literal(&mut pattern, head);
    let mut reached = head.len();
    for (i, step) in t.steps().iter().enumerate() {
        // A last value with nothing after it is taken whole (greedy), so text
        // after the format's end shows as such.
        let class = if i + 1 == t.steps().len() && step.tail.is_empty() {
            greedy(step.class)
        } else {
            class_pattern(step.class)
        };
        let _ = write!(pattern, "({class})");
        push_literal(&mut pattern, &step.tail);
        let matched = build_regex(&pattern).ok().and_then(|re| {
            re.find(Input::new(line).anchored(Anchored::Yes))
                .map(|m| m.end())
        });
        let Some(end) = matched else {
            let then = if step.tail.is_empty() {
                String::new()
            } else {
                format!(" then {}", quoted(&step.tail))
            };
            return Misfit {
                at: reached,
                reason: format!(
                    "{} (operator {} of {}) does not fit: expected {}{then}, found {}",
                    step.name,
                    i + 1,
                    t.steps().len(),
                    shape(step.class),
                    found(line, reached)
                ),
            };
        };
        reached = end;
    }
    if reached < line.len() {
        return Misfit {
            at: reached,
            reason: format!(
                "the line goes on after the format's end: {}",
                found(line, reached)
            ),
        };
    }
    // The regex fits: the entry was refused for its values.
    let mut entry = super::AccessEntry::default();
    let mut cache = t.new_cache();
    t.regex_match(&mut cache, line, |i, a, b| {
        if let Some(field) = t.steps()[i].field {
            entry.set(field, &line[a..b]);
        }
    });
    if let Some(v) = entry.raw(Field::StartTime)
        && t.start_time().read(Some(v)).is_err()
    {
        let at = line.len() - line.len().min(v.len());
        let at = memchr::memmem::find(line, v).unwrap_or(at);
        return Misfit {
            at,
            reason: format!("%START_TIME% is no real date: {}", quoted(v)),
        };
    }
    Misfit {
        at: 0,
        reason: "the peer certificate's marker occurs twice in the line: a header may carry a forged copy, so the line is not trusted".into(),
    }
}

fn json_misfit(j: &JsonFormat, line: &[u8]) -> Misfit {
    match serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        Err(e) => Misfit {
            at: e.column().saturating_sub(1),
            reason: format!("not a JSON object: {e}"),
        },
        Ok(_) if !j.any_key_in(line) => Misfit {
            at: 0,
            reason: "a JSON object without any of the format's keys".into(),
        },
        Ok(_) => Misfit {
            at: line.len(),
            reason: "%START_TIME% is no real date".into(),
        },
    }
}

/// The greedy form of a class's pattern.
fn greedy(class: ValueClass) -> &'static str {
    match class {
        ValueClass::Any => ".*",
        ValueClass::Token => r"[^\x20\x22]*",
        other => class_pattern(other),
    }
}

/// What a value class accepts, in words.
fn shape(class: ValueClass) -> &'static str {
    match class {
        ValueClass::Any => "any text",
        ValueClass::Token => "text without spaces or quotes",
        ValueClass::Number => "a number or -",
        ValueClass::Rfc3339 => "an RFC 3339 time (2026-11-20T11:43:14.559Z)",
    }
}

/// A literal as the user wrote it, quoted.
fn quoted(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// The next few characters of the line at `at`, or "the end of the line".
fn found(line: &[u8], at: usize) -> String {
    let rest = &line[at.min(line.len())..];
    if rest.is_empty() {
        return "the end of the line".into();
    }
    let text: String = String::from_utf8_lossy(rest).chars().take(24).collect();
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(format: &str, line: &str) -> Option<String> {
        let formats = super::super::load(Some(format), None).unwrap();
        explain_misfit(&formats, line.as_bytes())
    }

    #[test]
    fn issue_7_26_names_the_operator_and_column() {
        let f = r#"[%START_TIME%] "%REQ(:METHOD)%" %RESPONSE_CODE% peer=%DOWNSTREAM_PEER_URI_SAN%"#;
        let why = explain(f, r#"[2026-11-20T11:43:14.559Z] "GET" abc peer=-"#).unwrap();
        assert!(
            why.contains("%RESPONSE_CODE% (operator 3 of 4)") && why.contains("column 34"),
            "{why}"
        );
        let why = explain(f, r#"2026-11-20T11:43:14.559Z "GET" 200 peer=-"#).unwrap();
        assert!(
            why.contains("does not begin with") && why.contains("column 1"),
            "{why}"
        );
        let line = r#"[2026-11-20T11:43:14.559Z] "GET" 200 peer=- extra"#;
        let why = explain(f, line).unwrap();
        let column = line.find(" extra").unwrap() + 1;
        assert!(
            why.contains("goes on after") && why.contains(&format!("column {column}")),
            "{why}"
        );
        let why = explain(f, r#"[2026-13-45T99:99:99.000Z] "GET" 200 peer=-"#).unwrap();
        assert!(why.contains("no real date"), "{why}");
        assert_eq!(
            explain(f, r#"[2026-11-20T11:43:14.559Z] "GET" 200 peer=-"#),
            None
        );
    }

    #[test]
    fn issue_7_26_the_format_that_got_furthest_is_named() {
        let formats = super::super::load(None, None).unwrap();
        let lab = r#"[2021-06-14T10:29:53.284Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag"#;
        let why = explain_misfit(&formats, lab.as_bytes()).unwrap();
        // `strictly` is the lab's format plus a tail: cut here, the line fits both equally far.
        assert!(
            (why.contains("\"lab\"") || why.contains("\"strictly\""))
                && why.contains("%REQ(X-FORWARDED-CLIENT-CERT)%"),
            "{why}"
        );
        let why = explain_misfit(&formats, b"{\"start_time\": ").unwrap();
        assert!(why.contains("istio-json") && why.contains("JSON"), "{why}");
    }
}
