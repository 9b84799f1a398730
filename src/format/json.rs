//! JSON formats (`accessLogEncoding: JSON`, Envoy `json_format`): read by key.
//!
//! A JSON format is a dictionary `key → "%OPERATOR%"`. Lines are walked once
//! by the key scanner of [`super::json_scan`], keeping the raw value of the
//! keys strictly reads and skipping the rest, so nothing is allocated per
//! line; the lines it leaves aside (escaped keys, deep nesting) and the tests'
//! oracle take serde_json's path, which borrows a [`RawValue`] per key. Values may
//! be typed (`"response_code": 200`) or strings; `null` means absent. Strings
//! are borrowed from the line unless they contain escapes, which are decoded
//! into the parser's scratch buffer.

use super::json_scan::{KeyTable, Scan, scan};
use super::line_parser::Outcome;
use super::start_time::StartTime;
use super::token::{Token, tokenize_json_value};
use super::{Field, FormatError};
use memchr::memmem;
use serde::de::{self, DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// Keys whose presence makes a line that fails to parse malformed rather than
/// foreign, besides the format's own keys.
pub(crate) const ACCESS_KEYS: [&str; 4] = [
    "start_time",
    "upstream_cluster",
    "response_code",
    "downstream_remote_address",
];

/// A compiled JSON format.
#[derive(Debug)]
pub(crate) struct JsonFormat {
    /// The keys strictly reads, each with its field (first key wins per field).
    keys: Box<[(Box<str>, Field)]>,
    /// `keys` bucketed for the scanner's lookup.
    table: KeyTable,
    /// Fields (bit `1 << field`) whose key makes a JSON object an access entry.
    anchors: u32,
    /// Finds `"key"` of the access keys and the format's keys, for telling malformed from foreign lines.
    probes: Box<[memmem::Finder<'static>]>,
    start_time: StartTime,
}

/// Where a value lives: in the line, or decoded into the scratch buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Line(&'a [u8]),
    Scratch(usize, usize),
}

impl JsonFormat {
    /// Compiles a `key → format string` dictionary; values that are not one bare operator are ignored.
    pub(crate) fn compile<K: AsRef<str>, V: AsRef<str>>(
        entries: impl IntoIterator<Item = (K, V)>,
    ) -> Result<JsonFormat, FormatError> {
        let mut keys: Vec<(Box<str>, Field)> = Vec::new();
        let mut start_time = StartTime::Absent;
        let mut probe_keys: Vec<String> = ACCESS_KEYS.iter().map(|k| k.to_string()).collect();
        for (key, value) in entries {
            let (key, value) = (key.as_ref(), value.as_ref());
            if !probe_keys.iter().any(|k| k == key) {
                probe_keys.push(key.to_string());
            }
            let tokens = tokenize_json_value(value)?;
            let [Token::Operator(op)] = tokens.as_slice() else {
                continue;
            };
            let Some(field) = op.field() else { continue };
            if keys.iter().any(|(_, f)| *f == field) {
                continue;
            }
            if field == Field::StartTime {
                start_time = StartTime::for_operator(op);
            }
            keys.push((key.into(), field));
        }
        // Objects need a key typical of access entries, not just a `path` or `method`
        // that some other JSON log might carry too; formats without one take any key.
        let bit = |f: Field| 1u32 << f as u32;
        let logged = keys.iter().fold(0, |acc, (_, f)| acc | bit(*f));
        let typical = [
            Field::StartTime,
            Field::UpstreamCluster,
            Field::ResponseCode,
            Field::DownstreamRemoteAddress,
        ]
        .into_iter()
        .fold(0, |acc, f| acc | bit(f));
        let anchors = if logged & typical != 0 {
            logged & typical
        } else {
            logged
        };
        let probes = probe_keys
            .iter()
            .map(|k| memmem::Finder::new(format!("\"{k}\"").as_bytes()).into_owned())
            .collect();
        let table = KeyTable::new(keys.iter().map(|(k, f)| (&**k, *f)));
        Ok(JsonFormat {
            table,
            keys: keys.into(),
            anchors,
            probes,
            start_time,
        })
    }

    /// Returns true if and only if the format fills `field`.
    pub(crate) fn logs(&self, field: Field) -> bool {
        self.keys.iter().any(|(_, f)| *f == field)
    }

    /// Returns true if and only if `line` holds one of the format's keys (or a
    /// key typical of access entries), quoted.
    pub(crate) fn any_key_in(&self, line: &[u8]) -> bool {
        self.probes.iter().any(|p| p.find(line).is_some())
    }

    /// Bytes of the keys strictly reads, quotes and colon included.
    pub(crate) fn key_bytes(&self) -> usize {
        self.keys.iter().map(|(k, _)| k.len() + 3).sum()
    }

    fn lookup(&self, key: &str) -> Option<Field> {
        self.keys.iter().find(|(k, _)| &**k == key).map(|(_, f)| *f)
    }

    /// The scanner's key table (for tests).
    #[cfg(test)]
    pub(crate) fn table(&self) -> &KeyTable {
        &self.table
    }

    /// Fields whose key makes an object an access entry (for tests).
    #[cfg(test)]
    pub(crate) fn anchors(&self) -> u32 {
        self.anchors
    }

    /// How the format reads `%START_TIME%`.
    pub(crate) fn start_time(&self) -> &StartTime {
        &self.start_time
    }

    /// Tries the format on a line, decoding escaped strings into `scratch` (cleared first).
    ///
    /// On [`Outcome::Access`], `values` holds every field's value (`None` when absent).
    pub(crate) fn attempt<'a>(
        &self,
        line: &'a [u8],
        scratch: &mut Vec<u8>,
        values: &mut [Option<Value<'a>>; Field::COUNT],
    ) -> Outcome {
        let body = line.trim_ascii_start();
        if body.first() != Some(&b'{') {
            return Outcome::No;
        }
        let mut raw: [Option<&'a [u8]>; Field::COUNT] = [None; Field::COUNT];
        let valid = match scan(line, &self.table, self.anchors, &mut raw) {
            Scan::Object { seen } => Some(seen),
            Scan::Invalid => None,
            Scan::Unsure => return self.attempt_serde(line, scratch, values),
        };
        self.finish(line, valid, raw, scratch, values)
    }

    /// [`JsonFormat::attempt`] by serde_json: the path before the key scanner,
    /// kept for the lines the scanner leaves aside and as the tests' oracle.
    pub(crate) fn attempt_serde<'a>(
        &self,
        line: &'a [u8],
        scratch: &mut Vec<u8>,
        values: &mut [Option<Value<'a>>; Field::COUNT],
    ) -> Outcome {
        let body = line.trim_ascii_start();
        if body.first() != Some(&b'{') {
            return Outcome::No;
        }
        let mut raw: [Option<&'a RawValue>; Field::COUNT] = [None; Field::COUNT];
        let mut de = serde_json::Deserializer::from_slice(line);
        let parsed = de.deserialize_map(EntryVisitor {
            format: self,
            out: &mut raw,
        });
        let complete = parsed.is_ok() && de.end().is_ok();
        let raw = raw.map(|r| r.map(|r| r.get().as_bytes()));
        let valid = match parsed {
            Ok(seen) if complete => Some(seen),
            _ => None,
        };
        self.finish(line, valid, raw, scratch, values)
    }

    /// The outcome once the line is judged (`valid`: `Some(seen)` for one JSON
    /// object, `seen` whether it held an anchor key), values resolved from `raw`.
    fn finish<'a>(
        &self,
        line: &'a [u8],
        valid: Option<bool>,
        raw: [Option<&'a [u8]>; Field::COUNT],
        scratch: &mut Vec<u8>,
        values: &mut [Option<Value<'a>>; Field::COUNT],
    ) -> Outcome {
        match valid {
            Some(true) => {}
            // Valid JSON without any of our keys: pilot-agent's own JSON logs.
            Some(false) => return Outcome::No,
            None if self.any_key_in(line) => return Outcome::LooksLike,
            None => return Outcome::No,
        }
        scratch.clear();
        for (slot, raw) in values.iter_mut().zip(raw) {
            *slot = raw.and_then(|r| resolve(r, scratch));
        }
        Outcome::Access
    }
}

/// A raw JSON value as bytes: strings unquoted (and unescaped into `scratch`), `null` absent.
fn resolve<'a>(raw: &'a [u8], scratch: &mut Vec<u8>) -> Option<Value<'a>> {
    match raw.first()? {
        b'"' => {
            let inner = &raw[1..raw.len() - 1];
            if memchr::memchr(b'\\', inner).is_none() {
                return Some(Value::Line(inner));
            }
            let start = scratch.len();
            // The scanner (or serde_json) validated the string: a bad escape cannot occur here.
            let _ = crate::json_string::unescape(inner, scratch);
            Some(Value::Scratch(start, scratch.len()))
        }
        b'n' => None,
        _ => Some(Value::Line(raw)),
    }
}

/// Walks the top-level object, keeping raw values of known keys; returns
/// whether an anchor key was among them.
struct EntryVisitor<'f, 'o, 'a> {
    format: &'f JsonFormat,
    out: &'o mut [Option<&'a RawValue>; Field::COUNT],
}

impl<'a> Visitor<'a> for EntryVisitor<'_, '_, 'a> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON access-log object")
    }

    fn visit_map<M: MapAccess<'a>>(self, mut map: M) -> Result<bool, M::Error> {
        let mut seen = false;
        while let Some(field) = map.next_key_seed(KeySeed(self.format))? {
            match field {
                Some(field) => {
                    let value: &'a RawValue = map.next_value()?;
                    let slot = &mut self.out[field as usize];
                    slot.get_or_insert(value);
                    seen |= self.format.anchors & (1 << field as u32) != 0;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(seen)
    }
}

/// Reads a key without allocating and maps it to a field.
struct KeySeed<'f>(&'f JsonFormat);

impl<'a> DeserializeSeed<'a> for KeySeed<'_> {
    type Value = Option<Field>;

    fn deserialize<D: de::Deserializer<'a>>(self, d: D) -> Result<Option<Field>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for KeySeed<'_> {
    type Value = Option<Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<Field>, E> {
        Ok(self.0.lookup(key))
    }
}
