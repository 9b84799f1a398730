//! [`LineParser`]: one thread's matcher over a shared [`FormatSet`].
//!
//! It owns what matching mutates (regex caches, capture slots, the JSON
//! unescape buffer), so formats stay immutable and threads never contend.

use super::json::Value;
use super::log_format::Kind;
use super::text::TextCache;
use super::{AccessEntry, Field, FormatSet, Parsed};

/// Per-thread matcher state over a shared [`FormatSet`].
pub struct LineParser {
    formats: FormatSet,
    /// Parallel to `formats`: `None` for JSON formats.
    caches: Vec<Option<TextCache>>,
    /// Escaped JSON strings, decoded; entries may borrow it until the next parse.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for LineParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineParser")
            .field("formats", &self.formats.len())
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
                Kind::Json(_) => None,
            })
            .collect();
        LineParser {
            formats,
            caches,
            scratch: Vec::new(),
        }
    }

    /// The formats this parser tries.
    pub fn formats(&self) -> &FormatSet {
        &self.formats
    }

    /// Parses one line (envelope removed, no trailing newline). `preferred` is the
    /// stream's last matching format: tried first, updated on a match.
    ///
    /// ```
    /// use strictly::format::{Field, LineParser, Parsed, load};
    ///
    /// let mut parser = LineParser::new(load(None, None).unwrap());
    /// let mut preferred = 0;
    /// let line = br#"[2021-06-14T10:29:53.284Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#;
    /// let Parsed::Access { entry, format } = parser.parse(line, &mut preferred) else { panic!() };
    /// assert_eq!((format, preferred), (0, 0)); // `lab`
    /// assert_eq!(entry.get(Field::PeerUriSan), None); // `-`: no client certificate
    /// assert_eq!(entry.get(Field::AuditHint), Some(&b"true"[..]));
    /// assert_eq!(entry.start_time_ms, Some(1_623_666_593_284));
    ///
    /// assert!(matches!(parser.parse(&line[..80], &mut preferred), Parsed::Malformed));
    /// assert!(matches!(parser.parse(b"2026-11-20T11:43:14.559223Z\tinfo\txdsproxy\tconnected", &mut preferred), Parsed::NotAccess));
    /// ```
    pub fn parse<'a>(&'a mut self, line: &'a [u8], preferred: &mut usize) -> Parsed<'a> {
        let n = self.formats.len();
        let first = if *preferred < n { *preferred } else { 0 };
        let mut looks_like = false;
        for i in std::iter::once(first)
            .chain((0..n).filter(|&i| i != first))
            .take(n)
        {
            let format = &self.formats[i];
            let outcome = match (&format.kind, &mut self.caches[i]) {
                (Kind::Text(text), Some(cache)) => {
                    let mut entry = AccessEntry::default();
                    let outcome = text.attempt(cache, line, &mut entry);
                    if outcome == Outcome::Access {
                        *preferred = i;
                        return Parsed::Access { entry, format: i };
                    }
                    outcome
                }
                (Kind::Json(json), _) => {
                    let mut values = [None; Field::COUNT];
                    let outcome = json.attempt(line, &mut self.scratch, &mut values);
                    if outcome == Outcome::Access {
                        *preferred = i;
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
                        entry.start_time_ms = entry
                            .raw(Field::StartTime)
                            .and_then(|v| json.start_time_ms(v));
                        return Parsed::Access { entry, format: i };
                    }
                    outcome
                }
                // `new` gives every text format a cache; without one there is nothing to match with.
                (Kind::Text(_), None) => Outcome::No,
            };
            looks_like |= outcome == Outcome::LooksLike;
        }
        if looks_like {
            Parsed::Malformed
        } else {
            Parsed::NotAccess
        }
    }
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
