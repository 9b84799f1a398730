//! `%START_TIME%` values → epoch milliseconds, with the format's own time format.
//!
//! The default format is RFC 3339 and takes the hand-written fast path in
//! [`crate::time`]; a custom `%START_TIME(strftime)%` is translated once into
//! chrono items (Envoy's `%E3S` / `%3f` / `%f` become chrono's spellings).

use super::token::Operator;
use chrono::format::{Fixed, Item, Numeric, Parsed, StrftimeItems};

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
    /// A strftime without a date (`%H:%M:%S`): values are kept, times are not
    /// parsed (a time of day would count in every window); entries take the
    /// envelope's write time instead.
    DateLess,
}

impl StartTime {
    /// The reader for a `%START_TIME(...)%` operator.
    pub(crate) fn for_operator(op: &Operator) -> StartTime {
        match op.arg.as_deref() {
            None | Some("") => StartTime::Rfc3339,
            Some(fmt) => match StrftimeItems::new(&envoy_to_chrono(fmt)).parse_to_owned() {
                Ok(items) if is_dated(&items) => StartTime::Strftime(items),
                Ok(_) => StartTime::DateLess,
                Err(_) => StartTime::Unsupported,
            },
        }
    }

    /// Returns true if and only if values carry a calendar date (or an epoch
    /// time): a time of day alone (`%H:%M:%S`) places no entry in a window.
    pub(crate) fn has_date(&self) -> bool {
        matches!(self, StartTime::Rfc3339 | StartTime::Strftime(_))
    }

    /// Reads a logged value: `Ok(None)` when there is no time to read (`-`,
    /// no START_TIME, a format without a date or one chrono cannot read),
    /// `Err(())` when the value is no real time (`2026-13-45T99:99:99Z`,
    /// February 31st): the entry is damaged.
    pub(crate) fn read(&self, value: Option<&[u8]>) -> Result<Option<i64>, ()> {
        let Some(value) = value.filter(|v| !v.is_empty() && *v != b"-") else {
            return Ok(None);
        };
        match self {
            StartTime::Absent | StartTime::Unsupported | StartTime::DateLess => Ok(None),
            _ => self.parse_ms(value).map(Some).ok_or(()),
        }
    }

    /// Parses a logged value; `None` for `-`, garbage, or an unsupported format.
    pub(crate) fn parse_ms(&self, value: &[u8]) -> Option<i64> {
        match self {
            StartTime::Absent | StartTime::Unsupported | StartTime::DateLess => None,
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

/// Returns true if and only if the items name a day of a year, or an epoch time.
fn is_dated(items: &[Item<'_>]) -> bool {
    let has = |want: fn(&Item<'_>) -> bool| items.iter().any(want);
    let epoch = has(|i| {
        matches!(
            i,
            Item::Numeric(Numeric::Timestamp, _) | Item::Fixed(Fixed::RFC2822 | Fixed::RFC3339)
        )
    });
    let year = has(|i| matches!(i, Item::Numeric(Numeric::Year | Numeric::IsoYear, _)));
    let day = has(|i| {
        matches!(
            i,
            Item::Numeric(
                Numeric::Ordinal
                    | Numeric::Day
                    | Numeric::IsoWeek
                    | Numeric::WeekFromSun
                    | Numeric::WeekFromMon,
                _
            )
        )
    });
    epoch || (year && day)
}

/// Rewrites Envoy's strftime extensions into chrono's.
///
/// Envoy adds `%E<n>S` (seconds with n fractional digits), `%<n>f` (n fractional
/// digits, no dot) and `%f` (9 digits); chrono spells them `%S%.f`, `%3f`/`%6f`/`%9f`.
fn envoy_to_chrono(fmt: &str) -> String {
    // Walks characters, not bytes: a non-ASCII character after `%` must be
    // copied whole (slicing by byte there panicked, issue 7 item 14).
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars[i + 1..] {
            ['E', d, 'S', ..] if d.is_ascii_digit() => {
                out.push_str("%S%.f");
                i += 4;
            }
            [d, 'f', ..] if d.is_ascii_digit() => {
                out.push_str(match d {
                    '1'..='3' => "%3f",
                    '4'..='6' => "%6f",
                    _ => "%9f",
                });
                i += 3;
            }
            ['f', ..] => {
                out.push_str("%9f");
                i += 2;
            }
            [next, ..] => {
                out.push('%');
                out.push(next);
                i += 2;
            }
            [] => {
                out.push('%');
                i += 1;
            }
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
        // Issue 7 item 14: a non-ASCII character right after `%` is copied whole.
        assert_eq!(envoy_to_chrono("%é%Y%\u{1F600}"), "%é%Y%\u{1F600}");
        assert_eq!(envoy_to_chrono("%"), "%");
    }

    #[test]
    fn issue_7_10_invalid_dates_are_errors_and_time_of_day_is_no_date() {
        let rfc = StartTime::Rfc3339;
        assert_eq!(rfc.read(Some(b"2026-13-45T99:99:99.000Z")), Err(()));
        assert_eq!(rfc.read(Some(b"-")), Ok(None));
        assert_eq!(rfc.read(None), Ok(None));
        let ymd = custom("%Y-%m-%dT%H:%M:%S");
        assert!(ymd.has_date());
        assert_eq!(ymd.read(Some(b"2026-02-31T10:00:00")), Err(()));
        assert_eq!(
            ymd.read(Some(b"2026-02-28T10:00:00")),
            Ok(Some(1_772_272_800_000))
        );
        let clock = custom("%H:%M:%S");
        assert!(!clock.has_date());
        assert_eq!(clock.read(Some(b"10:00:00")), Ok(None));
        assert!(custom("%s.%3f").has_date() && custom("%d/%b/%Y:%H:%M:%S").has_date());
        assert!(!custom("%d/%b %H:%M").has_date());
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
