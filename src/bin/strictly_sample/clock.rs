//! Time: `--end`/`--span` parsing and the timestamp shapes istio-proxy and kubelet print.
//!
//! Everything is UTC epoch milliseconds (`i64`), or nanoseconds where kubelet's
//! receive time needs them. Formatting is by hand (civil-from-days): a million
//! lines would spend most of their time in a general-purpose formatter.

use std::fmt::Write;

pub const SECOND_MS: i64 = 1_000;
pub const MINUTE_MS: i64 = 60 * SECOND_MS;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Parses an RFC 3339 time (`2026-11-20T12:00:00Z`) into epoch milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("not an RFC 3339 time ({e}): {text:?}, expected e.g. 2026-11-20T12:00:00Z")
        })
}

/// Parses a duration such as `26h`, `90m`, `1h30m`, `2d` or `45s` into milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("not a duration: {text:?}, expected e.g. 26h, 90m, 1h30m, 2d");
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => DAY_MS,
            'h' => HOUR_MS,
            'm' => MINUTE_MS,
            's' => SECOND_MS,
            _ => return Err(bad()),
        };
        let value: i64 = number.parse().map_err(|_| bad())?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
        any = true;
    }
    if !any || !number.is_empty() || total <= 0 {
        return Err(bad());
    }
    Ok(total)
}

/// The UTC calendar fields of an epoch-millisecond time.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    milli: u32,
}

/// Howard Hinnant's `civil_from_days`, extended to a full timestamp.
fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (in_day / HOUR_MS) as u32,
        minute: (in_day % HOUR_MS / MINUTE_MS) as u32,
        second: (in_day % MINUTE_MS / SECOND_MS) as u32,
        milli: (in_day % SECOND_MS) as u32,
    }
}

fn push_date_time(out: &mut String, c: &Civil, separator: char) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}{separator}{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
}

/// Envoy's default `%START_TIME%`: `2026-11-20T11:43:14.559Z`.
pub fn push_envoy(out: &mut String, ms: i64) {
    let c = civil(ms);
    push_date_time(out, &c, 'T');
    let _ = write!(out, ".{:03}Z", c.milli);
}

/// [`push_envoy`] into a new string; also the truth file's timestamp shape.
pub fn envoy(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_envoy(&mut out, ms);
    out
}

/// RFC 3339 without a fraction when the time is a whole second (`2026-11-19T12:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    if ms % SECOND_MS == 0 {
        let mut out = String::with_capacity(20);
        push_date_time(&mut out, &civil(ms), 'T');
        out.push('Z');
        out
    } else {
        envoy(ms)
    }
}

/// pilot-agent's log time, microseconds: `2026-11-20T11:43:14.559223Z`.
pub fn push_agent(out: &mut String, us: i64) {
    let c = civil(us.div_euclid(1000));
    push_date_time(out, &c, 'T');
    let _ = write!(out, ".{:06}Z", us.rem_euclid(1_000_000));
}

/// Envoy's own diagnostic log time: `2026-11-20 11:43:14.559`.
pub fn push_diag(out: &mut String, ms: i64) {
    let c = civil(ms);
    push_date_time(out, &c, ' ');
    let _ = write!(out, ".{:03}", c.milli);
}

/// kubelet's receive time as `kubectl logs --timestamps` prints it: Go's
/// RFC3339Nano, whose trailing fractional zeros are dropped
/// (`…14.55912Z`, `…14Z`).
pub fn push_kubelet(out: &mut String, ns: i64) {
    let c = civil(ns.div_euclid(1_000_000));
    push_date_time(out, &c, 'T');
    let mut frac = ns.rem_euclid(1_000_000_000);
    if frac != 0 {
        let mut width = 9;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
    }
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_through_chrono() {
        let ms = parse_rfc3339("2026-11-20T11:43:14.559Z").unwrap();
        assert_eq!(envoy(ms), "2026-11-20T11:43:14.559Z");
        let mut s = String::new();
        push_diag(&mut s, ms);
        assert_eq!(s, "2026-11-20 11:43:14.559");
        s.clear();
        push_agent(&mut s, ms * 1000 + 223);
        assert_eq!(s, "2026-11-20T11:43:14.559223Z");
        s.clear();
        push_kubelet(&mut s, ms * 1_000_000 + 123_400);
        assert_eq!(s, "2026-11-20T11:43:14.5591234Z");
        s.clear();
        push_kubelet(&mut s, 1_000_000_000);
        assert_eq!(s, "1970-01-01T00:00:01Z");
        assert_eq!(
            rfc3339(parse_rfc3339("2024-02-29T00:00:00Z").unwrap()),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("26h"), Ok(26 * HOUR_MS));
        assert_eq!(parse_duration("1h30m"), Ok(90 * MINUTE_MS));
        assert_eq!(parse_duration("2d"), Ok(2 * DAY_MS));
        assert!(parse_duration("26").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
