//! `%START_TIME%` values → epoch milliseconds, with the format's own time format.
//!
//! The default format is RFC 3339 and takes the hand-written fast path in
//! [`crate::time`]; a custom `%START_TIME(strftime)%` is translated once into
//! chrono items (Envoy's `%E3S` / `%3f` / `%f` become chrono's spellings).

use super::token::Operator;
use chrono::format::{Item, Parsed, StrftimeItems};

/// How to read one format's `%START_TIME%` values.
#[derive(Clone, Debug)]
pub(crate) enum StartTime {
    /// The format logs no start time.
    Absent,
    /// Envoy's default, `2026-11-20T11:43:14.559Z`.
    Rfc3339,
    /// A custom strftime, compiled once.
    Strftime(Vec<Item<'static>>),
    /// A strftime chrono cannot read: values are kept, times are not parsed.
    Unsupported,
}

impl StartTime {
    /// The reader for a `%START_TIME(...)%` operator.
    pub(crate) fn for_operator(op: &Operator) -> StartTime {
        match op.arg.as_deref() {
            None | Some("") => StartTime::Rfc3339,
            Some(fmt) => match StrftimeItems::new(&envoy_to_chrono(fmt)).parse_to_owned() {
                Ok(items) => StartTime::Strftime(items),
                Err(_) => StartTime::Unsupported,
            },
        }
    }

    /// Parses a logged value; `None` for `-`, garbage, or an unsupported format.
    pub(crate) fn parse_ms(&self, value: &[u8]) -> Option<i64> {
        match self {
            StartTime::Absent | StartTime::Unsupported => None,
            StartTime::Rfc3339 => crate::time::parse_rfc3339_ms(value),
            StartTime::Strftime(items) => {
                let text = std::str::from_utf8(value).ok()?;
                let mut parsed = Parsed::new();
                chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
                if let Ok(t) = parsed.to_datetime() {
                    return Some(t.timestamp_millis());
                }
                // Envoy formats times in UTC; a format without `%z` means UTC.
                parsed
                    .to_naive_datetime_with_offset(0)
                    .ok()
                    .map(|t| t.and_utc().timestamp_millis())
            }
        }
    }
}

/// Rewrites Envoy's strftime extensions into chrono's.
///
/// Envoy adds `%E<n>S` (seconds with n fractional digits), `%<n>f` (n fractional
/// digits, no dot) and `%f` (9 digits); chrono spells them `%S%.f`, `%3f`/`%6f`/`%9f`.
fn envoy_to_chrono(fmt: &str) -> String {
    let b = fmt.as_bytes();
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' || i + 1 >= b.len() {
            // Copy one whole UTF-8 character.
            let ch = fmt[i..].chars().next().unwrap_or('%');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let next = b[i + 1];
        if next == b'E' && i + 3 < b.len() && b[i + 2].is_ascii_digit() && b[i + 3] == b'S' {
            out.push_str("%S%.f");
            i += 4;
        } else if next.is_ascii_digit() && b.get(i + 2) == Some(&b'f') {
            out.push_str(match next {
                b'1'..=b'3' => "%3f",
                b'4'..=b'6' => "%6f",
                _ => "%9f",
            });
            i += 3;
        } else if next == b'f' {
            out.push_str("%9f");
            i += 2;
        } else {
            out.push('%');
            out.push(next as char);
            i += 2;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(fmt: &str) -> StartTime {
        StartTime::for_operator(&Operator {
            name: "START_TIME".into(),
            arg: Some(fmt.into()),
            max_len: None,
        })
    }

    #[test]
    fn default_is_rfc3339() {
        let t = StartTime::for_operator(&Operator {
            name: "START_TIME".into(),
            arg: None,
            max_len: None,
        });
        assert_eq!(t.parse_ms(b"1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(t.parse_ms(b"-"), None);
    }

    #[test]
    fn envoy_specifiers_are_translated() {
        assert_eq!(
            envoy_to_chrono("%Y-%m-%dT%H:%M:%E3SZ"),
            "%Y-%m-%dT%H:%M:%S%.fZ"
        );
        assert_eq!(envoy_to_chrono("%s.%3f"), "%s.%3f");
        assert_eq!(envoy_to_chrono("%s%f"), "%s%9f");
        assert_eq!(envoy_to_chrono("%%é%"), "%%é%");
    }

    #[test]
    fn custom_formats_parse() {
        let want = 1_779_277_394_559; // 2026-05-20T11:43:14.559Z
        assert_eq!(
            custom("%Y-%m-%dT%H:%M:%E3SZ").parse_ms(b"2026-05-20T11:43:14.559Z"),
            Some(want)
        );
        assert_eq!(
            custom("%Y/%m/%d %H:%M:%S%z").parse_ms(b"2026/05/20 12:43:14+0100"),
            Some(want - 559)
        );
        assert_eq!(custom("%s.%3f").parse_ms(b"1779277394.559"), Some(want));
        assert_eq!(custom("%s").parse_ms(b"1779277394"), Some(want - 559));
        assert_eq!(
            custom("%d/%b/%Y:%H:%M:%S").parse_ms(b"20/May/2026:11:43:14"),
            Some(want - 559)
        );
        assert_eq!(custom("%s").parse_ms(b"-"), None);
        assert_eq!(custom("%s").parse_ms(b"\xff"), None);
    }
}
