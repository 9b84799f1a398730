//! ztunnel's connection access lines (ambient mode), text and JSON, read by key.
//!
//! ztunnel (`src/telemetry.rs`, `IstioFormat`) writes
//! `TIME\tLEVEL\taccess\tconnection complete\tkey=value key=value ...`:
//! values are Rust `Debug` output (strings quoted with `\"` escapes since
//! 1.23, unquoted in 1.22; addresses and numbers bare). With JSON logging
//! (`IstioJsonFormat`) the same keys sit next to `level`, `time`, `scope` and
//! `message`. Keys come in any order, may be absent, and unknown ones are
//! ignored; one bounded left-to-right scan finds them, no regex per key.
//!
//! The events (`src/proxy/metrics.rs`): `connection complete` (info; error
//! level with `error="..."` when it failed or a policy rejected it),
//! `connection failed` (warn, an early deny: addresses, direction and error
//! only) and `connection opened` (debug only, skipped: its `complete` follows).
//! Values are kept as written (escapes included): the fields strictly reads
//! are addresses, Kubernetes names and SPIFFE IDs, which hold no escapes.

use super::line_parser::Outcome;
use super::{AccessEntry, Field};
use memchr::memmem;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// What `Field::ConnectionEvent` holds for a completed connection.
pub const COMPLETE: &[u8] = b"complete";
/// What `Field::ConnectionEvent` holds for an early deny (`connection failed`).
pub const FAILED: &[u8] = b"failed";

/// The keys strictly reads and the field each fills.
const KEYS: [(&[u8], Field); 9] = [
    (b"src.addr", Field::DownstreamRemoteAddress),
    (b"src.identity", Field::PeerUriSan),
    (b"dst.addr", Field::DownstreamLocalAddress),
    (b"dst.workload", Field::DestinationWorkload),
    (b"dst.namespace", Field::DestinationNamespace),
    (b"dst.identity", Field::LocalUriSan),
    (b"direction", Field::Direction),
    (b"duration", Field::Duration),
    (b"error", Field::ConnectionError),
];

/// Keys a line cannot lack: without them it is a damaged entry.
const REQUIRED: [Field; 2] = [Field::DownstreamLocalAddress, Field::Direction];

fn field_of(key: &[u8]) -> Option<Field> {
    KEYS.iter().find(|(k, _)| *k == key).map(|&(_, f)| f)
}

/// Tries ztunnel's text or JSON output on one line.
pub(crate) fn attempt<'a>(line: &'a [u8], entry: &mut AccessEntry<'a>) -> Outcome {
    match line.first() {
        Some(b) if b.is_ascii_digit() || b.is_ascii_alphabetic() => attempt_text(line, entry),
        Some(b'{') => attempt_json(line, entry),
        _ => Outcome::No,
    }
}

/// Splits the next whitespace-delimited token off `rest`.
fn token(rest: &[u8]) -> (&[u8], &[u8]) {
    let rest = rest.trim_ascii_start();
    let end = rest
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(rest.len());
    (&rest[..end], &rest[end..])
}

fn attempt_text<'a>(line: &'a [u8], entry: &mut AccessEntry<'a>) -> Outcome {
    // Tabs separate time, level, target and message; docs pages print spaces.
    // A line copied with spaces reads like `kubectl logs --timestamps` output,
    // so the envelope may have taken the time already: it is then the write time.
    let (first, after) = token(line);
    let (time, rest) = if is_level(first) {
        (None, line)
    } else {
        (Some(first), after)
    };
    let (level, rest) = token(rest);
    let (target, rest) = token(rest);
    if target != b"access" || !is_level(level) {
        return Outcome::No;
    }
    let (word, rest) = token(rest);
    let (event, rest) = token(rest);
    if word != b"connection" {
        return Outcome::No;
    }
    let Some(event) = event_of(event) else {
        return Outcome::No;
    };
    if event == b"opened" {
        // Debug level only, and its `complete` line follows: not an entry.
        return Outcome::No;
    }
    entry.set(Field::ConnectionEvent, event);
    if pairs(rest, entry).is_none() || !finish(time, entry) {
        return Outcome::LooksLike;
    }
    Outcome::Access
}

fn is_level(level: &[u8]) -> bool {
    matches!(
        level,
        b"info" | b"warn" | b"error" | b"debug" | b"trace" | b"INFO" | b"WARN" | b"ERROR"
    )
}

/// The event word of `connection <event>`, as a static slice.
fn event_of(word: &[u8]) -> Option<&'static [u8]> {
    match word {
        b"complete" => Some(COMPLETE),
        b"failed" => Some(FAILED),
        b"opened" => Some(b"opened"),
        _ => None,
    }
}

/// Reads `key=value` pairs (values bare, or quoted with `\` escapes); `None` when the text is no such list.
fn pairs<'a>(mut rest: &'a [u8], entry: &mut AccessEntry<'a>) -> Option<()> {
    let mut seen = 0u32;
    loop {
        rest = rest.trim_ascii_start();
        if rest.is_empty() {
            return Some(());
        }
        let eq = rest
            .iter()
            .position(|&b| b == b'=' || b.is_ascii_whitespace())?;
        if rest[eq] != b'=' || eq == 0 {
            return None;
        }
        let key = &rest[..eq];
        let after = &rest[eq + 1..];
        let (value, next) = if after.first() == Some(&b'"') {
            let end = closing_quote(&after[1..])?;
            let next = &after[end + 2..];
            // A quoted value ends at whitespace or the line's end.
            if next.first().is_some_and(|b| !b.is_ascii_whitespace()) {
                return None;
            }
            (&after[1..end + 1], next)
        } else {
            token_bare(after)
        };
        if let Some(field) = field_of(key) {
            // The first occurrence wins, as in the JSON formats.
            let bit = 1u32 << field as u32;
            if seen & bit == 0 {
                seen |= bit;
                entry.set(field, value);
            }
        }
        rest = next;
    }
}

fn token_bare(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Index of the quote closing a quoted value (`s` starts after the opening one).
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(found) = memchr::memchr2(b'"', b'\\', &s[i..]) {
        let at = i + found;
        if s[at] == b'"' {
            return Some(at);
        }
        i = at + 2;
        if i > s.len() {
            return None;
        }
    }
    None
}

/// Checks what every entry needs and sets its times: ztunnel logs when the
/// connection *ended*, so START_TIME is that time minus the duration.
fn finish<'a>(time: Option<&'a [u8]>, entry: &mut AccessEntry<'a>) -> bool {
    if REQUIRED.iter().any(|&f| entry.get(f).is_none()) {
        return false;
    }
    if entry.raw(Field::ConnectionEvent) == Some(COMPLETE)
        && entry.get(Field::DownstreamRemoteAddress).is_none()
    {
        return false;
    }
    let end = match time {
        Some(time) => {
            let Some(end) = crate::time::parse_rfc3339_ms(time) else {
                return false;
            };
            entry.set(Field::StartTime, time);
            Some(end)
        }
        None => None,
    };
    // `duration="12ms"`: ztunnel writes whole milliseconds.
    let duration = match entry.get(Field::Duration) {
        Some(d) => {
            let Some(ms) = d.strip_suffix(b"ms").filter(|n| is_number(n)) else {
                return false;
            };
            entry.set(Field::Duration, ms);
            ms.iter()
                .try_fold(0i64, |acc, &b| {
                    acc.checked_mul(10)?.checked_add((b - b'0') as i64)
                })
                .unwrap_or(i64::MAX)
        }
        None => 0,
    };
    entry.start_time_ms = end.map(|end| end.saturating_sub(duration));
    true
}

fn is_number(s: &[u8]) -> bool {
    !s.is_empty() && s.len() <= 19 && s.iter().all(u8::is_ascii_digit)
}

/// The JSON output's marker: `scope` is the target, `access` for access lines.
const SCOPE_ACCESS: &[u8] = br#""scope":"access""#;

fn attempt_json<'a>(line: &'a [u8], entry: &mut AccessEntry<'a>) -> Outcome {
    if memmem::find(line, SCOPE_ACCESS).is_none() {
        return Outcome::No;
    }
    let mut found = JsonEntry::default();
    let mut de = serde_json::Deserializer::from_slice(line);
    let ok = de.deserialize_map(JsonVisitor(&mut found)).is_ok() && de.end().is_ok();
    if !ok {
        return Outcome::LooksLike;
    }
    if found.scope != Some(&b"access"[..]) {
        return Outcome::No;
    }
    let event = match found
        .message
        .and_then(|m| m.strip_prefix(b"connection "))
        .and_then(event_of)
    {
        Some(e) if e != b"opened" => e,
        _ => return Outcome::No,
    };
    entry.set(Field::ConnectionEvent, event);
    for (field, value) in Field::ALL.into_iter().zip(found.values) {
        if let Some(v) = value {
            entry.set(field, v);
        }
    }
    match found.time {
        Some(time) if finish(Some(time), entry) => Outcome::Access,
        _ => Outcome::LooksLike,
    }
}

/// What a JSON line holds, borrowed from it.
#[derive(Default)]
struct JsonEntry<'a> {
    time: Option<&'a [u8]>,
    scope: Option<&'a [u8]>,
    message: Option<&'a [u8]>,
    values: [Option<&'a [u8]>; Field::COUNT],
}

/// A JSON value as written: a string's body (escapes kept), a number's digits; `null` absent.
fn raw_value(raw: &RawValue) -> Option<&[u8]> {
    let raw = raw.get().as_bytes();
    match raw.first()? {
        b'"' => Some(&raw[1..raw.len() - 1]),
        b'n' => None,
        _ => Some(raw),
    }
}

struct JsonVisitor<'e, 'a>(&'e mut JsonEntry<'a>);

impl<'a> Visitor<'a> for JsonVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a ztunnel JSON log object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Time | Key::Scope | Key::Message => {
                    let value: &'a RawValue = map.next_value()?;
                    let slot = match key {
                        Key::Time => &mut self.0.time,
                        Key::Scope => &mut self.0.scope,
                        _ => &mut self.0.message,
                    };
                    if slot.is_none() {
                        *slot = raw_value(value);
                    }
                }
                Key::Field(field) => {
                    let value: &'a RawValue = map.next_value()?;
                    let slot = &mut self.0.values[field as usize];
                    if slot.is_none() {
                        *slot = raw_value(value);
                    }
                }
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Key {
    Time,
    Scope,
    Message,
    Field(Field),
    Other,
}

struct KeySeed;

impl<'a> DeserializeSeed<'a> for KeySeed {
    type Value = Key;

    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "time" => Key::Time,
            "scope" => Key::Scope,
            "message" => Key::Message,
            other => field_of(other.as_bytes()).map_or(Key::Other, Key::Field),
        })
    }
}

/// Returns true if and only if the line opens like a ztunnel access line
/// (time, level, `access`): one that fits no format is then malformed.
pub(crate) fn looks_like(line: &[u8]) -> bool {
    let (first, after) = token(line);
    let (time, rest) = if is_level(first) {
        (None, line)
    } else {
        (Some(first), after)
    };
    let (level, rest) = token(rest);
    let (target, rest) = token(rest);
    let (_, rest) = token(rest);
    let (event, _) = token(rest);
    let text = target == b"access"
        && is_level(level)
        && event != b"opened"
        && time.is_none_or(|t| crate::time::parse_rfc3339_ms(t).is_some());
    text || (line.first() == Some(&b'{')
        && memmem::find(line, SCOPE_ACCESS).is_some()
        && memmem::find(line, br#""message":"connection opened""#).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> (Outcome, AccessEntry<'_>) {
        let mut entry = AccessEntry::default();
        let outcome = attempt(line, &mut entry);
        (outcome, entry)
    }

    #[test]
    fn quoted_values_with_spaces_and_escaped_quotes() {
        let line = b"2024-05-04T09:59:05.028709Z\terror\taccess\tconnection complete\tsrc.addr=10.0.0.1:5 dst.addr=10.0.0.2:80 direction=\"inbound\" error=\"a \\\"b\\\" c\" duration=\"7ms\"";
        let (o, e) = parse(line);
        assert_eq!(o, Outcome::Access);
        assert_eq!(e.get(Field::ConnectionError), Some(&b"a \\\"b\\\" c"[..]));
        assert_eq!(e.get(Field::Duration), Some(&b"7"[..]));
        assert_eq!(e.start_time_ms, Some(1_714_816_745_028 - 7));
    }

    #[test]
    fn unterminated_quote_is_a_damaged_entry() {
        let line = b"2024-05-04T09:59:05.028709Z\tinfo\taccess\tconnection complete\tsrc.addr=10.0.0.1:5 dst.addr=10.0.0.2:80 direction=\"inbound";
        assert_eq!(parse(line).0, Outcome::LooksLike);
        assert!(looks_like(line));
    }

    #[test]
    fn other_targets_and_opened_are_not_entries() {
        let xds = b"2024-05-04T09:59:05.028709Z\tinfo\txds\tconnected to upstream";
        assert_eq!(parse(xds).0, Outcome::No);
        let opened = b"2024-05-04T09:59:05.028709Z\tdebug\taccess\tconnection opened\tsrc.addr=10.0.0.1:5 dst.addr=10.0.0.2:80 direction=\"inbound\"";
        assert_eq!(parse(opened).0, Outcome::No);
    }

    #[test]
    fn json_by_key_in_any_order() {
        let line = br#"{"level":"info","time":"2024-05-04T09:59:05.028709Z","scope":"access","message":"connection complete","direction":"inbound","dst.addr":"10.0.0.2:80","src.addr":"10.0.0.1:5","bytes_sent":16,"duration":"3ms","src.identity":"spiffe://td/ns/a/sa/b"}"#;
        let (o, e) = parse(line);
        assert_eq!(o, Outcome::Access);
        assert_eq!(
            e.get(Field::PeerUriSan),
            Some(&b"spiffe://td/ns/a/sa/b"[..])
        );
        assert_eq!(e.get(Field::Direction), Some(&b"inbound"[..]));
    }
}

/// The case files under `fixtures/ztunnel/cases/`: each `# expect: ...`
/// line states what the lines after it are, read with every built-in format
/// (auto-detection) and classified. Drop a file in to add cases.
#[cfg(test)]
mod cases {
    use crate::format::{LineParser, Parsed, load};
    use crate::request::{ConnectionOutcome, Transport, classify};

    fn check(expect: &str, line: &[u8], parser: &mut LineParser, at: &str) {
        let formats = parser.formats().clone();
        let mut words = expect.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let parsed = parser.parse(line);
        match (kind, parsed) {
            ("skipped", Parsed::NotAccess) | ("malformed", Parsed::Malformed) => {}
            ("access", Parsed::Access { entry, format }) => {
                assert_eq!(formats[format].name(), "ztunnel", "{at}");
                let req = classify(&entry, &formats[format]);
                let a = req.ambient.expect("an ambient connection");
                let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                for word in words {
                    let (k, v) = word.split_once('=').unwrap_or((word, ""));
                    let got = match k {
                        "inbound" => {
                            assert!(req.inbound, "{at}");
                            continue;
                        }
                        "outbound" => {
                            assert!(!req.inbound, "{at}");
                            continue;
                        }
                        "mtls" | "plaintext" => {
                            assert_eq!(req.is_plaintext(), k == "plaintext", "{at}");
                            continue;
                        }
                        "identity" => match req.transport {
                            Transport::Mtls { identity } => text(identity),
                            Transport::Plaintext { .. } => None,
                        },
                        "pod" => text(a.pod),
                        "namespace" => text(a.namespace),
                        "identity_ns" => text(a.identity_namespace),
                        "peer" => text(req.peer),
                        "start_ms" => req.time_ms.map(|t| t.to_string()),
                        "outcome" => Some(
                            match a.outcome {
                                ConnectionOutcome::Complete => "complete",
                                ConnectionOutcome::Error => "error",
                                ConnectionOutcome::PolicyRejected => "rejected",
                                ConnectionOutcome::EarlyDeny => "early-deny",
                            }
                            .to_string(),
                        ),
                        other => panic!("{at}: unknown expectation {other}"),
                    };
                    assert_eq!(got.as_deref(), Some(v), "{at}: {k}");
                }
            }
            (kind, parsed) => panic!("{at}: expected {kind}, got {parsed:?}"),
        }
    }

    #[test]
    fn ztunnel_case_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ztunnel/cases");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures/ztunnel/cases")
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        let mut parser = LineParser::new(load(None, None).expect("the built-ins"));
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).expect("a case file");
            let mut expect: Option<&str> = None;
            for (n, line) in text.lines().enumerate() {
                if let Some(e) = line.strip_prefix("# expect: ") {
                    expect = Some(e);
                } else if !line.starts_with('#') {
                    let at = format!("{}:{}", file.display(), n + 1);
                    let e = expect.unwrap_or_else(|| panic!("{at}: no # expect: before it"));
                    check(e, line.as_bytes(), &mut parser, &at);
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "only {checked} case lines");
    }
}
