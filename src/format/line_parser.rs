//! [`LineParser`]: one thread's matcher over a shared [`FormatSet`].
//!
//! It owns what matching mutates (regex caches, capture slots, the JSON
//! unescape buffer), so formats stay immutable and threads never contend.

use super::json::{ACCESS_KEYS, Value};
use super::log_format::Kind;
use super::text::{TextCache, rfc3339_end};
use super::{AccessEntry, Field, FormatSet, Parsed};

/// Per-thread matcher state over a shared [`FormatSet`].
pub struct LineParser {
    formats: FormatSet,
    /// Parallel to `formats`: `None` for JSON formats.
    caches: Vec<Option<TextCache>>,
    /// Indices into `formats`, most specific first (see [`LineParser::parse`]).
    order: Box<[usize]>,
    /// Escaped JSON strings, decoded; entries may borrow it until the next parse.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for LineParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineParser")
            .field("formats", &self.formats.len())
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

impl LineParser {
    /// A parser over `formats` with its own caches (one per thread; see [`LineParser::parse`]).
    pub fn new(formats: FormatSet) -> Self {
        let caches = formats
            .iter()
            .map(|f| match &f.kind {
                Kind::Text(t) => Some(t.new_cache()),
                Kind::Json(_) | Kind::Ztunnel => None,
            })
            .collect();
        let mut order: Vec<usize> = (0..formats.len()).collect();
        order.sort_by_key(|&i| {
            let f = &formats[i];
            (
                std::cmp::Reverse(f.logs(Field::PeerUriSan)),
                std::cmp::Reverse(f.specificity()),
                i,
            )
        });
        LineParser {
            formats,
            caches,
            order: order.into(),
            scratch: Vec::new(),
        }
    }

    /// Indices into the formats in the order they are tried (the first that reads a line wins).
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// The formats this parser tries.
    pub fn formats(&self) -> &FormatSet {
        &self.formats
    }

    /// Parses one line (envelope removed, no trailing newline).
    ///
    /// When several formats fit a line, the most specific wins: first one that
    /// logs the peer certificate's SAN (a line carrying that evidence is judged
    /// by it), then the one with the most literal bytes, then the first in the
    /// set. Formats are tried in that order and the first match is the
    /// answer, so it depends only on the line and the format set — never on
    /// the lines before it or on which thread reads it (issue 7 item 2).
    ///
    /// ```
    /// use strictly::format::{Field, LineParser, Parsed, load};
    ///
    /// let formats = load(None, None).unwrap();
    /// let mut parser = LineParser::new(formats.clone());
    /// let line = br#"[2021-06-14T10:29:53.284Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#;
    /// let Parsed::Access { entry, format } = parser.parse(line) else { panic!() };
    /// assert_eq!(formats[format].name(), "lab");
    /// assert_eq!(entry.get(Field::PeerUriSan), None); // `-`: no client certificate
    /// assert_eq!(entry.get(Field::AuditHint), Some(&b"true"[..]));
    /// assert_eq!(entry.start_time_ms, Some(1_623_666_593_284));
    ///
    /// assert!(matches!(parser.parse(&line[..80]), Parsed::Malformed));
    /// assert!(matches!(parser.parse(b"2026-11-20T11:43:14.559223Z\tinfo\txdsproxy\tconnected"), Parsed::NotAccess));
    /// ```
    pub fn parse<'a>(&'a mut self, line: &'a [u8]) -> Parsed<'a> {
        let mut looks_like = false;
        for k in 0..self.order.len() {
            let i = self.order[k];
            let format = &self.formats[i];
            let outcome = match (&format.kind, &mut self.caches[i]) {
                (Kind::Text(text), Some(cache)) => {
                    let mut entry = AccessEntry::default();
                    match text.attempt(cache, line, &mut entry) {
                        Outcome::Access => return Parsed::Access { entry, format: i },
                        // The most specific format that fits the line refused its
                        // values (a forged peer SAN, no real date): no looser
                        // format may read it instead.
                        Outcome::LooksLike => return Parsed::Malformed,
                        Outcome::No => Outcome::No,
                    }
                }
                (Kind::Json(json), _) => {
                    let mut values = [None; Field::COUNT];
                    let outcome = json.attempt(line, &mut self.scratch, &mut values);
                    // The time is read before the entry borrows the scratch for
                    // good: a START_TIME that is no real date is a damaged entry.
                    let start_time = values[Field::StartTime as usize].map(|v| match v {
                        Value::Line(v) => json.start_time().read(Some(v)),
                        Value::Scratch(a, b) => json.start_time().read(Some(&self.scratch[a..b])),
                    });
                    match (outcome, start_time.unwrap_or(Ok(None))) {
                        (Outcome::Access, Ok(ms)) => {
                            let mut entry = AccessEntry::default();
                            for (field, value) in Field::ALL.into_iter().zip(values) {
                                match value {
                                    Some(Value::Line(v)) => entry.set(field, v),
                                    Some(Value::Scratch(start, end)) => {
                                        entry.set(field, &self.scratch[start..end])
                                    }
                                    None => {}
                                }
                            }
                            entry.start_time_ms = ms;
                            return Parsed::Access { entry, format: i };
                        }
                        (Outcome::Access, Err(())) => Outcome::LooksLike,
                        (outcome, _) => outcome,
                    }
                }
                (Kind::Ztunnel, _) => {
                    let mut entry = AccessEntry::default();
                    match super::ztunnel::attempt(line, &mut entry) {
                        Outcome::Access => return Parsed::Access { entry, format: i },
                        outcome => outcome,
                    }
                }
                // `new` gives every text format a cache; without one there is nothing to match with.
                (Kind::Text(_), None) => Outcome::No,
            };
            looks_like |= outcome == Outcome::LooksLike;
        }
        // No format matched: is it a damaged entry of one (its probe), or
        // something else? Asked once per line, not once per format tried.
        let probe = |k: &usize| match (&self.formats[*k].kind, &mut self.caches[*k]) {
            (Kind::Text(t), Some(cache)) => t.probe_matches(cache, line),
            _ => false,
        };
        if looks_like
            || self.order.iter().any(probe)
            || looks_like_an_access_entry(line)
            || (self.formats.iter().any(|f| f.is_ztunnel()) && super::ztunnel::looks_like(line))
        {
            Parsed::Malformed
        } else {
            Parsed::NotAccess
        }
    }
}

/// Returns true if and only if the line opens like an Envoy access entry
/// whatever the configured formats: Envoy's and Istio's default text opening
/// (`[2026-11-20T11:43:14.559Z] "`) or a JSON object with an access key.
/// Such a line that fits no format is malformed, not skipped (issue 7 item
/// 26): a `--log-format` that fits nothing must show in the counts.
fn looks_like_an_access_entry(line: &[u8]) -> bool {
    if line.first() == Some(&b'[')
        && let Some(end) = rfc3339_end(line, 1)
    {
        return line[end..].starts_with(b"] \"");
    }
    let body = line.trim_ascii_start();
    body.first() == Some(&b'{')
        && ACCESS_KEYS.iter().any(|k| {
            memchr::memmem::find_iter(body, k.as_bytes())
                .any(|i| i > 0 && body[i - 1] == b'"' && body.get(i + k.len()) == Some(&b'"'))
        })
}

/// What trying one format made of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A complete entry of the format.
    Access,
    /// The format's probe matched but the whole format did not: a damaged entry.
    LooksLike,
    /// Not this format's.
    No,
}
