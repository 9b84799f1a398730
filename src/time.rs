//! Timestamps: fast RFC 3339 parsing to epoch milliseconds, and formatting back.
//!
//! Every stage speaks epoch milliseconds (`i64`, UTC). Envoy's default
//! `%START_TIME%` and kubectl's `--timestamps` are both RFC 3339, so the hot
//! path parses them by hand; anything unusual falls back to chrono.

use chrono::{DateTime, SecondsFormat, Utc};

/// Parses an RFC 3339 timestamp (`2026-11-20T11:43:14.559Z`, any number of
/// fractional digits, `Z` or a `+hh:mm` offset) into epoch milliseconds.
///
/// ```
/// assert_eq!(strictly::time::parse_rfc3339_ms(b"1970-01-01T00:00:01.5Z"), Some(1500));
/// assert_eq!(strictly::time::parse_rfc3339_ms(b"not a time"), None);
/// ```
pub fn parse_rfc3339_ms(s: &[u8]) -> Option<i64> {
    if let Some(ms) = parse_fast(s) {
        return Some(ms);
    }
    let text = std::str::from_utf8(s).ok()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .filter(|ms| (0..=MAX_MS).contains(ms))
}

/// Parses the common shape `YYYY-MM-DDTHH:MM:SS[.fff…]Z` without allocating.
fn parse_fast(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || (s[10] != b'T' && s[10] != b't') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])? as i64;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])? as i64;
    let min = digits(&s[14..16])? as i64;
    let sec = digits(&s[17..19])? as i64;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if s[i] == b'.' {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + (s[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    if i + 1 != s.len() || (s[i] != b'Z' && s[i] != b'z') {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis)
}

/// Days in `month` of `year` (proleptic Gregorian): `2026-02-31` is no date.
fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The latest time strictly accepts anywhere (inputs, `--until`): the end of
/// year 9999, so every time it writes is a plain four-digit RFC 3339 year.
pub const MAX_MS: i64 = 253_402_300_799_999;
/// The earliest time strictly writes: 0000-01-01T00:00:00Z.
const MIN_MS: i64 = -62_167_219_200_000;

fn digits(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (b - b'0') as u32;
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch milliseconds as RFC 3339 UTC, with milliseconds only when non-zero.
///
/// ```
/// assert_eq!(strictly::time::format_ms(1500), "1970-01-01T00:00:01.500Z");
/// assert_eq!(strictly::time::format_ms(0), "1970-01-01T00:00:00Z");
/// ```
pub fn format_ms(ms: i64) -> String {
    // Years 0000–9999 only: RFC 3339 has no other (chrono would write `+10000-…`).
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let fmt = if ms.rem_euclid(1000) == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Millis
    };
    t.to_rfc3339_opts(fmt, true)
}

/// Parses a duration like `24h`, `30m`, `7d`, `1h30m`, `1.5h`, `90s`, `500ms` or `1w` into milliseconds.
///
/// ```
/// assert_eq!(strictly::time::parse_duration_ms("1h30m"), Ok(5_400_000));
/// assert_eq!(strictly::time::parse_duration_ms("1.5h"), Ok(5_400_000));
/// assert_eq!(strictly::time::parse_duration_ms("250ms"), Ok(250));
/// assert!(strictly::time::parse_duration_ms("soon").is_err());
/// assert!(strictly::time::parse_duration_ms("-1h").is_err());
/// ```
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err(format!(
            "invalid duration {text:?}: must be positive (e.g. 24h, 30m, 1.5h)"
        ));
    }
    let bytes = t.as_bytes();
    // Whole milliseconds, with a fraction kept in micro-units until the end so `0.1s` is exact.
    let mut total: i128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &t[start..i];
        if number.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {:?}",
                &t[start..]
            ));
        }
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 6 {
            return Err(format!(
                "invalid duration {text:?}: {number:?} is not a number (at most 6 decimals)"
            ));
        }
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse()
                .map_err(|_| format!("invalid duration {text:?}: number too large"))?
        };
        let micro_frac: i128 = format!("{frac:0<6}").parse().unwrap_or(0);
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit: i128 = match &t[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: a unit must follow {number} (ms, s, m, h, d or w)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h, d or w)"
                ));
            }
        };
        let micros = int
            .checked_mul(1_000_000)
            .and_then(|v| v.checked_add(micro_frac))
            .and_then(|v| v.checked_mul(unit))
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
        total = total
            .checked_add(micros)
            .filter(|&v| v <= i64::MAX as i128 * 1_000_000)
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    }
    if total % 1_000_000 != 0 {
        return Err(format!(
            "invalid duration {text:?}: finer than a millisecond"
        ));
    }
    let total = (total / 1_000_000) as i64;
    if total <= 0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    Ok(total)
}

/// The longest window strictly judges: ten years (nobody keeps access logs longer,
/// and the arithmetic on times stays far from overflow).
pub const MAX_WINDOW_MS: i64 = 10 * 366 * 86_400_000;

/// Parses a window length (`--window`, `--since`): a duration from 1 s to 10 years.
pub fn parse_window_ms(text: &str) -> Result<i64, String> {
    let ms = parse_duration_ms(text)?;
    if ms < 1_000 {
        return Err(format!(
            "{text:?} is shorter than a second: counts are kept per second"
        ));
    }
    if ms > MAX_WINDOW_MS {
        return Err(format!("{text:?} is longer than 10 years"));
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_chrono() {
        for s in [
            "2021-06-14T10:27:59.758Z",
            "2026-11-20T11:43:14.559123456Z",
            "2024-02-29T23:59:59Z",
            "1999-12-31T00:00:00.1Z",
        ] {
            let want = DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
            assert_eq!(parse_fast(s.as_bytes()), Some(want), "{s}");
        }
    }

    #[test]
    fn durations_with_fractions_and_bounds() {
        assert_eq!(parse_duration_ms("0.5s"), Ok(500));
        assert_eq!(parse_duration_ms("1.25m"), Ok(75_000));
        assert!(parse_duration_ms("1.2.3h").is_err());
        assert!(parse_duration_ms("0.0001s").is_err());
        assert!(parse_duration_ms("99999999999999999999w").is_err());
        assert!(parse_window_ms("500ms").is_err());
        assert!(parse_window_ms("11y").is_err());
        assert!(parse_window_ms("600w").is_err());
        assert_eq!(parse_window_ms("520w"), Ok(520 * 604_800_000));
    }

    #[test]
    fn offsets_fall_back_to_chrono() {
        assert_eq!(
            parse_rfc3339_ms(b"2026-11-20T12:43:14.559+01:00"),
            parse_rfc3339_ms(b"2026-11-20T11:43:14.559Z")
        );
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(parse_rfc3339_ms(b"2026-13-20T11:43:14Z"), None);
        // Issue 7 item 10: no silent roll-over into the next month or day.
        assert_eq!(parse_rfc3339_ms(b"2026-13-45T99:99:99.000Z"), None);
        assert_eq!(parse_rfc3339_ms(b"2026-02-31T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms(b"2026-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms(b"2026-04-31T00:00:00+01:00"), None);
        assert_eq!(parse_rfc3339_ms(b"2026-11-20T24:00:00Z"), None);
        assert!(parse_rfc3339_ms(b"2024-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339_ms(b"1969-12-31T23:59:59+00:00").is_none());
        assert_eq!(parse_rfc3339_ms(b"2026-11-20 11:43:14"), None);
        assert_eq!(parse_rfc3339_ms(b""), None);
    }
}
