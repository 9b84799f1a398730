//! Envelopes: what wraps a log line before the access entry begins.
//!
//! `kubectl logs --timestamps` prepends an RFC 3339 time, `--prefix` prepends
//! `[pod/NAME/CONTAINER] `, stern prepends `POD CONTAINER ` (and a namespace
//! with `-A`, ANSI colours on a terminal) or writes JSON objects. The envelope
//! is detected per line (or forced with `--input`) and yields the stream
//! metadata, the receive time, and the payload the log format parses.
//!
//! Decoding borrows from the line; only stripping ANSI colours and unescaping
//! a stern JSON message write bytes, into the decoder's reusable scratch
//! buffer, so the hot path does not allocate.
//!
//! Detection (`InputKind::Auto`) must never take a raw access line for an
//! envelope, because a stolen first token would turn a request into a
//! malformed line. The rules, by the line's first byte:
//! - `[`: `[pod/NAME/CONTAINER] ` is kubectl `--prefix`; anything else (Envoy's
//!   `[%START_TIME%]`) is raw.
//! - `{`: a JSON object whose first key is one of stern's (`message`,
//!   `podName`, …) and that has a string `message` and `podName` is stern
//!   JSON; anything else (Envoy's JSON format) is raw.
//! - `{` (not stern's): a log store's NDJSON export recognised by its first
//!   key (logcli `-o jsonl`, elasticdump hits and documents, stern
//!   `-o extjson`; see [`crate::source::export`]); anything else stays raw.
//! - a digit: an RFC 3339 time followed by `{k="v", ..}` is logcli
//!   `-o default`. An RFC 3339 time followed by one space is kubectl
//!   `--timestamps`. pilot-agent's own lines (`2026-…Z\tinfo\t…`) put a tab
//!   after the time and stay raw.
//! - a lowercase letter, a digit or ESC: stern text, but only if the tokens
//!   are Kubernetes names (DNS-1123) and the message then starts like a log
//!   line (`[`, `{` or a digit).
//!
//! One ambiguity cannot be resolved from a single line: a custom Envoy format
//! that begins with a bare `%START_TIME% ` (no brackets) looks exactly like
//! kubectl `--timestamps`; force `--input raw` for such logs.

use std::ops::Range;

use clap::ValueEnum;
use memchr::{memchr, memchr2};

use crate::time::parse_rfc3339_ms;

/// Which envelope to expect (`--input`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum InputKind {
    /// Detect per input (a whole Loki or Elasticsearch JSON response) and per line.
    #[default]
    Auto,
    /// The access-log line as Envoy wrote it.
    Raw,
    /// `kubectl logs` with `--timestamps` and/or `--prefix`.
    Kubectl,
    /// stern's default text output (`[NAMESPACE] POD CONTAINER MESSAGE`, `--timestamps` allowed).
    Stern,
    /// stern `--output json`.
    SternJson,
    /// stern `--output extjson`.
    SternExtjson,
    /// logcli `query --output jsonl` or `--output default` (`-o raw` is `raw`).
    Logcli,
    /// Loki: a saved `query_range` response, `tail` messages, or logcli lines.
    Loki,
    /// Elasticsearch/OpenSearch: a saved `_search` response, scroll pages,
    /// elasticdump NDJSON (whole hits or `--sourceOnly`; Filebeat, Elastic Agent, Fluent Bit, Fluentd fields), or a Kibana CSV export.
    Elastic,
}

/// Metadata the envelope carried about the stream the line came from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamMeta<'a> {
    pub namespace: Option<&'a [u8]>,
    pub pod: Option<&'a [u8]>,
    pub container: Option<&'a [u8]>,
}

/// A line with its envelope taken off.
#[derive(Clone, Copy, Debug, Default)]
pub struct Enveloped<'a> {
    pub meta: StreamMeta<'a>,
    /// The envelope's receive timestamp (kubectl/stern `--timestamps`), epoch ms.
    pub timestamp_ms: Option<i64>,
    /// The log line itself.
    pub payload: &'a [u8],
}

/// Per-thread envelope decoder (owns scratch space for ANSI stripping and JSON unescaping).
pub struct EnvelopeDecoder {
    kind: InputKind,
    scratch: Vec<u8>,
}

/// The longest RFC 3339 time we look for (`2026-11-20T11:43:14.559123456+01:00` is 35 bytes).
const MAX_TIMESTAMP_LEN: usize = 40;

/// The longest `[pod/NAME/CONTAINER]` kubectl can write: a 253-byte pod and a 63-byte container.
const MAX_KUBECTL_PREFIX_LEN: usize = "[pod/".len() + 253 + 1 + 63 + 1;

impl EnvelopeDecoder {
    pub fn new(kind: InputKind) -> Self {
        EnvelopeDecoder {
            kind,
            scratch: Vec::new(),
        }
    }

    /// Takes the envelope off one line (no trailing `\n`; a trailing `\r` is dropped).
    ///
    /// A line that does not carry the expected envelope (or, with
    /// [`InputKind::Auto`], any recognisable one) comes back as raw: no
    /// metadata, the whole line as payload. Never panics, whatever the bytes.
    pub fn decode<'a>(&'a mut self, line: &'a [u8]) -> Enveloped<'a> {
        let line = trim_line_end(line);
        let decoded = match self.kind {
            InputKind::Raw => None,
            InputKind::Kubectl => try_kubectl(line),
            InputKind::Stern => self.try_stern(line, true),
            InputKind::SternJson => self.try_stern_json(line),
            InputKind::SternExtjson => {
                self.try_export(line, crate::source::export::stern::decode_extjson)
            }
            InputKind::Elastic => {
                self.try_export(line, crate::source::export::elastic::decode_line)
            }
            InputKind::Logcli | InputKind::Loki => match line.first() {
                Some(b'{') => {
                    self.try_export(line, crate::source::export::loki::decode_logcli_jsonl)
                }
                _ => self.try_logcli_default(line),
            },
            InputKind::Auto => self.detect(line),
        };
        decoded.unwrap_or_else(|| raw(line))
    }

    /// Picks the envelope from the line's first byte (see the module doc for the rules).
    fn detect<'a>(&'a mut self, line: &'a [u8]) -> Option<Enveloped<'a>> {
        match *line.first()? {
            b'[' => try_kubectl_prefix(line),
            b'{' => {
                if first_key_is_stern(line)
                    && scan_stern_json(line).is_some_and(|f| f.message.is_some() && f.pod.is_some())
                {
                    return self.try_stern_json(line);
                }
                crate::source::export::decode_json_line(line, &mut self.scratch)
            }
            b'0'..=b'9' => match split_timestamp(line) {
                // logcli `-o default`: `TS {labels} line`.
                Some((_, payload))
                    if payload.first() == Some(&b'{')
                        && crate::source::export::loki::decode_logcli_default(payload)
                            .is_some() =>
                {
                    self.try_logcli_default(line)
                }
                Some((ms, payload)) => Some(Enveloped {
                    meta: StreamMeta::default(),
                    timestamp_ms: Some(ms),
                    payload,
                }),
                // Pod names may start with a digit.
                None => self.try_stern(line, false),
            },
            b'a'..=b'z' | 0x1b => self.try_stern(line, false),
            _ => None,
        }
    }

    /// Decodes one line of a log store's NDJSON export (see [`crate::source::export`]).
    fn try_export<'a>(
        &'a mut self,
        line: &[u8],
        decode: fn(&[u8]) -> Option<crate::source::export::Entry>,
    ) -> Option<Enveloped<'a>> {
        Some(decode(line)?.place(&mut self.scratch))
    }

    /// Parses a logcli `-o default` line: `TS {k="v", ..}  line` (labels padded, colours stripped).
    fn try_logcli_default<'a>(&'a mut self, line: &'a [u8]) -> Option<Enveloped<'a>> {
        let stripped;
        let text: &[u8] = if memchr(0x1b, line).is_some() {
            let mut out = Vec::new();
            strip_ansi(line, &mut out);
            stripped = out;
            &stripped
        } else {
            line
        };
        let (ms, rest) = split_timestamp(text)?;
        let (pick, at) = crate::source::export::loki::decode_logcli_default(rest)?;
        let entry = crate::source::export::Entry {
            namespace: pick.namespace,
            pod: pick.pod,
            container: pick.container,
            timestamp_ms: Some(ms),
            line: String::from_utf8_lossy(&rest[at..]).into_owned(),
        };
        Some(entry.place(&mut self.scratch))
    }

    /// Parses stern's text output, stripping ANSI colours into `scratch` first when present.
    ///
    /// `forced` accepts a `POD CONTAINER MESSAGE` line whose message does not
    /// start like a log line (the user said it is stern).
    fn try_stern<'a>(&'a mut self, line: &'a [u8], forced: bool) -> Option<Enveloped<'a>> {
        // stern colours pod, container and `--highlight` matches anywhere in
        // the line, so strip the whole line rather than only the names.
        let text: &'a [u8] = if memchr(0x1b, line).is_some() {
            strip_ansi(line, &mut self.scratch);
            &self.scratch
        } else {
            line
        };
        parse_stern_text(text, forced)
    }

    /// Parses one stern `--output json` object, unescaping what needs it into `scratch`.
    fn try_stern_json<'a>(&'a mut self, line: &'a [u8]) -> Option<Enveloped<'a>> {
        let fields = scan_stern_json(line)?;
        let message = fields.message?;
        let pod = fields.pod?;
        self.scratch.clear();
        let message = message.place(&mut self.scratch)?;
        let pod = pod.place(&mut self.scratch)?;
        let namespace = match fields.namespace {
            Some(s) => Some(s.place(&mut self.scratch)?),
            None => None,
        };
        let container = match fields.container {
            Some(s) => Some(s.place(&mut self.scratch)?),
            None => None,
        };
        let scratch: &'a [u8] = &self.scratch;
        let non_empty = |s: &'a [u8]| (!s.is_empty()).then_some(s);
        let meta = StreamMeta {
            namespace: namespace.map(|p| p.resolve(scratch)).and_then(non_empty),
            pod: non_empty(pod.resolve(scratch)),
            container: container.map(|p| p.resolve(scratch)).and_then(non_empty),
        };
        // stern strips the `\n` itself; a CRLF log keeps its `\r` inside the message.
        let message = trim_line_end(message.resolve(scratch));
        let (timestamp_ms, payload) = split_stern_timestamp(message);
        Some(Enveloped {
            meta,
            timestamp_ms,
            payload,
        })
    }
}

/// The line as Envoy wrote it, no envelope.
fn raw(line: &[u8]) -> Enveloped<'_> {
    Enveloped {
        meta: StreamMeta::default(),
        timestamp_ms: None,
        payload: line,
    }
}

/// Drops a trailing `\n` and then a trailing `\r` (CRLF logs).
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits `RFC3339 payload` (one space) into the time in epoch ms and the payload.
///
/// Anything else after the time (pilot-agent's tab) is not a kubectl timestamp.
fn split_timestamp(line: &[u8]) -> Option<(i64, &[u8])> {
    // Cheap shape check first: most lines that start with a digit here are not timestamps.
    if line.len() < 21 || !line[0].is_ascii_digit() || line[4] != b'-' {
        return None;
    }
    let space = memchr(b' ', &line[..line.len().min(MAX_TIMESTAMP_LEN + 1)])?;
    let ms = parse_rfc3339_ms(&line[..space])?;
    Some((ms, &line[space + 1..]))
}

/// kubectl logs with `--prefix` and/or `--timestamps`; None if the line has neither.
fn try_kubectl(line: &[u8]) -> Option<Enveloped<'_>> {
    if let Some(decoded) = try_kubectl_prefix(line) {
        return Some(decoded);
    }
    let (ms, payload) = split_timestamp(line)?;
    Some(Enveloped {
        meta: StreamMeta::default(),
        timestamp_ms: Some(ms),
        payload,
    })
}

/// Parses `[pod/NAME/CONTAINER] [RFC3339 ]payload`.
fn try_kubectl_prefix(line: &[u8]) -> Option<Enveloped<'_>> {
    let rest = line.strip_prefix(b"[pod/")?;
    let close = memchr(b']', &rest[..rest.len().min(MAX_KUBECTL_PREFIX_LEN)])?;
    let (pod, container) = split_once(&rest[..close], b'/')?;
    if !is_dns_subdomain(pod) || !is_dns_label(container) {
        return None;
    }
    let payload = match &rest[close + 1..] {
        [] => &[][..],
        [b' ', payload @ ..] => payload,
        _ => return None,
    };
    let (timestamp_ms, payload) = match split_timestamp(payload) {
        Some((ms, payload)) => (Some(ms), payload),
        None => (None, payload),
    };
    let meta = StreamMeta {
        namespace: None,
        pod: Some(pod),
        container: Some(container),
    };
    Some(Enveloped {
        meta,
        timestamp_ms,
        payload,
    })
}

/// Parses `[NAMESPACE ]POD CONTAINER MESSAGE` (ANSI escapes already stripped).
fn parse_stern_text(text: &[u8], forced: bool) -> Option<Enveloped<'_>> {
    let (first, rest1) = split_once(text, b' ')?;
    let (second, rest2) = split_once(rest1, b' ')?;
    // Try the namespaced form first: its third token is a container name, which
    // no message of the short form starts with (a message starts with `[`, `{`
    // or an RFC 3339 time, none of which is a DNS label) — except the `MM-DD`
    // of `--timestamps=short`, hence the last check.
    // Cheapest checks first: in the short form, `third` is the message's first token.
    if let Some((third, message)) = split_once(rest2, b' ')
        && starts_like_log_line(message)
        && is_dns_label(third)
        && !is_short_stern_timestamp(rest2)
        && is_dns_label(first)
        && is_dns_subdomain(second)
    {
        return Some(stern_message(Some(first), second, third, message));
    }
    if is_dns_subdomain(first) && is_dns_label(second) && (forced || starts_like_log_line(rest2)) {
        return Some(stern_message(None, first, second, rest2));
    }
    None
}

/// Builds the result for one stern line, taking a `--timestamps` time off the message.
fn stern_message<'a>(
    namespace: Option<&'a [u8]>,
    pod: &'a [u8],
    container: &'a [u8],
    message: &'a [u8],
) -> Enveloped<'a> {
    let (timestamp_ms, payload) = split_stern_timestamp(message);
    let meta = StreamMeta {
        namespace,
        pod: Some(pod),
        container: Some(container),
    };
    Enveloped {
        meta,
        timestamp_ms,
        payload,
    }
}

/// Takes stern's `--timestamps` time off a message.
///
/// `--timestamps` (or `=default`) writes RFC 3339 with nanoseconds in the
/// `--timezone` (local by default, so possibly with an offset); `=short`
/// writes `MM-DD HH:MM:SS`, which has no year, so it is dropped without a time.
pub(crate) fn split_stern_timestamp(message: &[u8]) -> (Option<i64>, &[u8]) {
    if let Some((ms, payload)) = split_timestamp(message) {
        return (Some(ms), payload);
    }
    if is_short_stern_timestamp(message) {
        return (None, &message[15..]);
    }
    (None, message)
}

/// Returns true if and only if `message` starts with `MM-DD HH:MM:SS ` (stern `--timestamps=short`).
fn is_short_stern_timestamp(message: &[u8]) -> bool {
    const SHAPE: &[u8; 15] = b"00-00 00:00:00 ";
    message.len() >= SHAPE.len()
        && message.iter().zip(SHAPE).all(|(&b, &s)| {
            if s == b'0' {
                b.is_ascii_digit()
            } else {
                b == s
            }
        })
}

/// Returns true if and only if `message` starts like a log line istio-proxy
/// writes: `[` (Envoy text), `{` (Envoy JSON) or a digit (a timestamp).
fn starts_like_log_line(message: &[u8]) -> bool {
    matches!(message.first(), Some(b'[' | b'{' | b'0'..=b'9'))
}

/// Returns true if and only if `s` is a DNS-1123 label (container and namespace names).
fn is_dns_label(s: &[u8]) -> bool {
    // A table lookup per byte: these checks run on every stern line, twice.
    (1..=63).contains(&s.len())
        && s[0] != b'-'
        && s[s.len() - 1] != b'-'
        && s.iter().all(|&b| DNS_LABEL_BYTE[b as usize])
}

/// Bytes allowed in a DNS-1123 label: lowercase letters, digits and `-`.
static DNS_LABEL_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-';
        b += 1;
    }
    table
};

/// Returns true if and only if `s` is a DNS-1123 subdomain (pod names).
fn is_dns_subdomain(s: &[u8]) -> bool {
    s.len() <= 253 && s.split(|&b| b == b'.').all(is_dns_label)
}

/// Splits at the first `sep`.
fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let at = memchr(sep, s)?;
    Some((&s[..at], &s[at + 1..]))
}

/// Copies `line` into `out` without its ANSI CSI sequences (`ESC [ … m` colours and the like).
fn strip_ansi(line: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(found) = memchr(0x1b, &line[i..]) {
        let esc = i + found;
        out.extend_from_slice(&line[i..esc]);
        let mut j = esc + 1;
        if line.get(j) == Some(&b'[') {
            j += 1;
            // ECMA-48: parameter bytes, intermediate bytes, one final byte.
            while line.get(j).is_some_and(|b| (0x30..=0x3f).contains(b)) {
                j += 1;
            }
            while line.get(j).is_some_and(|b| (0x20..=0x2f).contains(b)) {
                j += 1;
            }
            if line.get(j).is_some_and(|b| (0x40..=0x7e).contains(b)) {
                j += 1;
            }
        }
        i = j;
    }
    out.extend_from_slice(&line[i..]);
}

/// Returns true if and only if the object's first key is one stern writes.
///
/// stern serialises a Go struct, so its keys come in a fixed order starting
/// with `message`; Envoy's JSON access logs start with other keys. Checking
/// only the first key keeps Envoy JSON lines from being scanned twice.
fn first_key_is_stern(line: &[u8]) -> bool {
    let mut scan = JsonScan { s: line, i: 0 };
    if scan.eat(b'{').is_none() {
        return false;
    }
    matches!(
        scan.string().map(|k| k.raw),
        Some(b"message" | b"nodeName" | b"namespace" | b"podName" | b"containerName")
    )
}

/// A JSON string as it appears in the line: its bytes between the quotes.
#[derive(Clone, Copy, Debug)]
struct JsonStr<'a> {
    raw: &'a [u8],
    /// Returns true if the string contains escapes and must be unescaped.
    escaped: bool,
}

/// Where a decoded JSON string lives: in the line itself, or in the decoder's scratch.
enum Placed<'a> {
    Line(&'a [u8]),
    Scratch(Range<usize>),
}

impl<'a> JsonStr<'a> {
    /// Borrows the string if it has no escapes, else unescapes it onto the end of `scratch`.
    fn place(self, scratch: &mut Vec<u8>) -> Option<Placed<'a>> {
        if !self.escaped {
            return Some(Placed::Line(self.raw));
        }
        let start = scratch.len();
        crate::json_string::unescape(self.raw, scratch)?;
        Some(Placed::Scratch(start..scratch.len()))
    }
}

impl<'a> Placed<'a> {
    fn resolve(self, scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Placed::Line(s) => s,
            Placed::Scratch(range) => &scratch[range],
        }
    }
}

/// The fields of a stern JSON object strictly reads.
#[derive(Default)]
struct SternJson<'a> {
    message: Option<JsonStr<'a>>,
    namespace: Option<JsonStr<'a>>,
    pod: Option<JsonStr<'a>>,
    container: Option<JsonStr<'a>>,
}

/// Scans one JSON object, keeping stern's string fields and skipping every other value.
///
/// Hand-written rather than serde_json because serde_json unescapes into a
/// fresh `String`: this borrows, and unescapes later into reused scratch.
fn scan_stern_json(line: &[u8]) -> Option<SternJson<'_>> {
    let mut scan = JsonScan { s: line, i: 0 };
    let mut fields = SternJson::default();
    scan.eat(b'{')?;
    scan.skip_ws();
    if scan.peek() == Some(b'}') {
        scan.i += 1;
    } else {
        loop {
            let key = scan.string()?;
            scan.eat(b':')?;
            let slot = match key.raw {
                b"message" => Some(&mut fields.message),
                b"namespace" => Some(&mut fields.namespace),
                b"podName" => Some(&mut fields.pod),
                b"containerName" => Some(&mut fields.container),
                _ => None,
            };
            match slot {
                Some(slot) => *slot = Some(scan.string()?),
                None => scan.skip_value()?,
            }
            scan.skip_ws();
            match scan.peek()? {
                b',' => scan.i += 1,
                b'}' => {
                    scan.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    scan.skip_ws();
    (scan.i == line.len()).then_some(fields)
}

/// A cursor over JSON text; every method returns None on malformed input.
struct JsonScan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> JsonScan<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.i += 1)
    }

    /// Reads a string, leaving escapes in place.
    fn string(&mut self) -> Option<JsonStr<'a>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let at = self.i + memchr2(b'"', b'\\', self.s.get(self.i..)?)?;
            if self.s[at] == b'"' {
                self.i = at + 1;
                return Some(JsonStr {
                    raw: &self.s[start..at],
                    escaped,
                });
            }
            escaped = true;
            self.i = at + 2;
        }
    }

    /// Skips one value of any type (stern may add fields strictly does not read).
    fn skip_value(&mut self) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                // A number, true, false or null.
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &[u8] = br#"[2021-06-14T10:27:59.758Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#;
    const JSON_ACCESS: &[u8] = br#"{"start_time":"2026-11-20T11:43:14.559Z","method":"GET","upstream_cluster":"inbound|8080||"}"#;
    const PILOT: &[u8] =
        b"2026-11-20T11:43:14.559223Z\tinfo\txdsproxy\tconnected to upstream XDS server";
    const TS: &str = "2026-11-20T11:43:14.559123456Z";

    fn ms(s: &str) -> i64 {
        parse_rfc3339_ms(s.as_bytes()).unwrap()
    }

    /// An owned [`Enveloped`]: namespace, pod, container, timestamp, payload.
    type Parts = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Vec<u8>,
    );

    fn decode(kind: InputKind, line: &[u8]) -> Parts {
        let mut decoder = EnvelopeDecoder::new(kind);
        let e = decoder.decode(line);
        let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        (
            s(e.meta.namespace),
            s(e.meta.pod),
            s(e.meta.container),
            e.timestamp_ms,
            e.payload.to_vec(),
        )
    }

    fn assert_raw(kind: InputKind, line: &[u8]) {
        let (ns, pod, container, ts, payload) = decode(kind, line);
        assert_eq!(
            (ns, pod, container, ts),
            (None, None, None, None),
            "{}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(payload, trim_line_end(line));
    }

    #[test]
    fn raw_lines_stay_raw_in_auto() {
        for line in [
            ACCESS,
            JSON_ACCESS,
            PILOT,
            b"",
            b"Envoy proxy is ready",
            b"gc 1 @0.011s 2%: 0.013+0.3 ms",
        ] {
            assert_raw(InputKind::Auto, line);
        }
    }

    #[test]
    fn raw_forced_keeps_any_envelope() {
        let line = format!("{TS} {}", String::from_utf8_lossy(ACCESS));
        assert_raw(InputKind::Raw, line.as_bytes());
    }

    #[test]
    fn kubectl_timestamps() {
        let line = [TS.as_bytes(), b" ", ACCESS].concat();
        for kind in [InputKind::Auto, InputKind::Kubectl] {
            assert_eq!(
                decode(kind, &line),
                (None, None, None, Some(ms(TS)), ACCESS.to_vec())
            );
        }
    }

    #[test]
    fn kubectl_timestamps_around_pilot_agent_line() {
        let line = [TS.as_bytes(), b" ", PILOT].concat();
        assert_eq!(
            decode(InputKind::Auto, &line),
            (None, None, None, Some(ms(TS)), PILOT.to_vec())
        );
    }

    #[test]
    fn kubectl_prefix() {
        let line = [b"[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] ", ACCESS].concat();
        let pod = Some("web-api-7d9f8c6b5-x2x4z".to_string());
        let container = Some("istio-proxy".to_string());
        for kind in [InputKind::Auto, InputKind::Kubectl] {
            assert_eq!(
                decode(kind, &line),
                (None, pod.clone(), container.clone(), None, ACCESS.to_vec())
            );
        }
    }

    #[test]
    fn kubectl_prefix_and_timestamps() {
        let line = [
            b"[pod/web-api-7d9f8c6b5-x2x4z/istio-proxy] ",
            TS.as_bytes(),
            b" ",
            ACCESS,
            b"\r",
        ]
        .concat();
        let (ns, pod, container, ts, payload) = decode(InputKind::Auto, &line);
        assert_eq!(ns, None);
        assert_eq!(pod.as_deref(), Some("web-api-7d9f8c6b5-x2x4z"));
        assert_eq!(container.as_deref(), Some("istio-proxy"));
        assert_eq!(ts, Some(ms(TS)));
        assert_eq!(payload, ACCESS);
    }

    #[test]
    fn kubectl_prefix_with_bad_names_is_raw() {
        for line in [
            &b"[pod/Web-API/istio-proxy] [2021-06-14T10:27:59.758Z] x"[..],
            b"[pod/web-api/istio.proxy] [2021-06-14T10:27:59.758Z] x",
            b"[pod/web-api] x",
            b"[pod/web-api/istio-proxy]x",
        ] {
            assert_raw(InputKind::Auto, line);
        }
    }

    #[test]
    fn kubectl_forced_without_envelope_is_raw() {
        assert_raw(InputKind::Kubectl, ACCESS);
        assert_raw(InputKind::Kubectl, PILOT);
    }

    #[test]
    fn stern_text() {
        let line = [b"web-api-7d9f8c6b5-x2x4z istio-proxy ", ACCESS].concat();
        for kind in [InputKind::Auto, InputKind::Stern] {
            let (ns, pod, container, ts, payload) = decode(kind, &line);
            assert_eq!((ns, ts), (None, None));
            assert_eq!(pod.as_deref(), Some("web-api-7d9f8c6b5-x2x4z"));
            assert_eq!(container.as_deref(), Some("istio-proxy"));
            assert_eq!(payload, ACCESS);
        }
    }

    #[test]
    fn stern_text_with_namespace_and_timestamps() {
        let line = [
            b"istioinaction web-api-7d9f8c6b5-x2x4z istio-proxy ",
            TS.as_bytes(),
            b" ",
            ACCESS,
        ]
        .concat();
        let (ns, pod, container, ts, payload) = decode(InputKind::Auto, &line);
        assert_eq!(ns.as_deref(), Some("istioinaction"));
        assert_eq!(pod.as_deref(), Some("web-api-7d9f8c6b5-x2x4z"));
        assert_eq!(container.as_deref(), Some("istio-proxy"));
        assert_eq!(ts, Some(ms(TS)));
        assert_eq!(payload, ACCESS);
    }

    #[test]
    fn stern_timestamps_in_local_time_and_short() {
        let line = [
            b"web-api-1 istio-proxy 2026-11-20T12:43:14.559123456+01:00 ",
            ACCESS,
        ]
        .concat();
        let (_, _, _, ts, payload) = decode(InputKind::Auto, &line);
        assert_eq!(ts, Some(ms("2026-11-20T11:43:14.559Z")));
        assert_eq!(payload, ACCESS);
        let line = [b"web-api-1 istio-proxy 11-20 11:43:14 ", ACCESS].concat();
        let (_, pod, _, ts, payload) = decode(InputKind::Auto, &line);
        assert_eq!((pod.as_deref(), ts), (Some("web-api-1"), None));
        assert_eq!(payload, ACCESS);
    }

    #[test]
    fn stern_colours_are_stripped() {
        let line = [
            b"\x1b[32mweb-api-7d9f8c6b5-x2x4z\x1b[0m \x1b[1;33mistio-proxy\x1b[0m ".as_slice(),
            TS.as_bytes(),
            b" ",
            ACCESS,
        ]
        .concat();
        for kind in [InputKind::Auto, InputKind::Stern] {
            let (ns, pod, container, ts, payload) = decode(kind, &line);
            assert_eq!(ns, None);
            assert_eq!(pod.as_deref(), Some("web-api-7d9f8c6b5-x2x4z"));
            assert_eq!(container.as_deref(), Some("istio-proxy"));
            assert_eq!(ts, Some(ms(TS)));
            assert_eq!(payload, ACCESS);
        }
    }

    #[test]
    fn stern_pod_starting_with_a_digit() {
        let line = [b"3scale-7d9f8c6b5-x2x4z istio-proxy ", ACCESS].concat();
        let (_, pod, _, _, payload) = decode(InputKind::Auto, &line);
        assert_eq!(pod.as_deref(), Some("3scale-7d9f8c6b5-x2x4z"));
        assert_eq!(payload, ACCESS);
    }

    #[test]
    fn stern_requires_a_log_line_in_auto_only() {
        let line = b"web-api-1 istio-proxy Envoy proxy is ready";
        assert_raw(InputKind::Auto, line);
        let (_, pod, _, _, payload) = decode(InputKind::Stern, line);
        assert_eq!(pod.as_deref(), Some("web-api-1"));
        assert_eq!(payload, b"Envoy proxy is ready");
    }

    #[test]
    fn stern_lookalikes_stay_raw() {
        for line in [
            // Uppercase, `|`, `:` or `_` are not in Kubernetes names.
            &b"GET /health 200 [2021-06-14T10:27:59.758Z]"[..],
            b"inbound|8080|| 10.0.0.1:80 [x]",
            b"web_api istio-proxy [2021-06-14T10:27:59.758Z]",
            b"web-api istio-proxy: [2021-06-14T10:27:59.758Z]",
            b"web-api- istio-proxy [2021-06-14T10:27:59.758Z]",
            b"web-api istio.proxy [2021-06-14T10:27:59.758Z]",
            b"web-api",
            b"web-api istio-proxy",
        ] {
            assert_raw(InputKind::Auto, line);
        }
        let long_container = format!("web-api {} [2021-06-14T10:27:59.758Z]", "c".repeat(64));
        assert_raw(InputKind::Auto, long_container.as_bytes());
        let long_pod = format!("{} istio-proxy [2021-06-14T10:27:59.758Z]", "p".repeat(254));
        assert_raw(InputKind::Auto, long_pod.as_bytes());
    }

    #[test]
    fn stern_json() {
        let message = serde_json::to_string(std::str::from_utf8(ACCESS).unwrap()).unwrap();
        let line = format!(
            r#"{{"message":{message},"nodeName":"node-1","namespace":"istioinaction","podName":"web-api-7d9f8c6b5-x2x4z","containerName":"istio-proxy"}}"#
        );
        for kind in [InputKind::Auto, InputKind::SternJson] {
            let (ns, pod, container, ts, payload) = decode(kind, line.as_bytes());
            assert_eq!(ns.as_deref(), Some("istioinaction"));
            assert_eq!(pod.as_deref(), Some("web-api-7d9f8c6b5-x2x4z"));
            assert_eq!(container.as_deref(), Some("istio-proxy"));
            assert_eq!(ts, None);
            assert_eq!(payload, ACCESS);
        }
    }

    #[test]
    fn stern_json_with_timestamp_and_envoy_json_message() {
        let message = format!("{TS} {}", String::from_utf8_lossy(JSON_ACCESS));
        let line = serde_json::json!({
            "message": message, "nodeName": "n", "namespace": "", "podName": "p-1",
            "containerName": "istio-proxy", "labels": {"app": "web-api", "x": [1, {"y": "}"}]}
        })
        .to_string();
        let (ns, pod, _, ts, payload) = decode(InputKind::Auto, line.as_bytes());
        assert_eq!((ns, pod.as_deref(), ts), (None, Some("p-1"), Some(ms(TS))));
        assert_eq!(payload, JSON_ACCESS);
    }

    #[test]
    fn stern_json_unescapes_like_serde() {
        for text in [
            "plain",
            "quote \" slash \\ / tab \t nl \n",
            "é ü 日本 😀 \u{1}",
            "",
        ] {
            let line = serde_json::json!({"message": text, "podName": "p"}).to_string();
            let (_, _, _, _, payload) = decode(InputKind::SternJson, line.as_bytes());
            assert_eq!(payload, text.trim_end_matches('\n').as_bytes(), "{line}");
        }
        let line = br#"{"message":"\ud83d\ude00 \u00e9 \ud800 x","podName":"p"}"#;
        assert_eq!(
            decode(InputKind::SternJson, line).4,
            "😀 é \u{fffd} x".as_bytes()
        );
    }

    #[test]
    fn broken_stern_json_is_raw() {
        for line in [
            &br#"{"message":"x","podName":"p""#[..],
            br#"{"message":"x"}"#,
            br#"{"message":"bad \q escape","podName":"p"}"#,
            br#"{"message":"x","podName":"p"} trailing"#,
            br#"{"message":"x\"#,
            br#"{"message":1,"podName":"p"}"#,
            br#"{"message""#,
            b"{",
        ] {
            assert_raw(InputKind::Auto, line);
            assert_raw(InputKind::SternJson, line);
        }
    }

    #[test]
    fn log_store_lines_in_auto() {
        let access = String::from_utf8_lossy(ACCESS);
        let logcli = format!(
            "2026-11-20T11:43:14Z {{container=\"istio-proxy\", pod=\"web-api-1\"}}   {access}"
        );
        let (ns, pod, container, ts, payload) = decode(InputKind::Auto, logcli.as_bytes());
        assert_eq!(ns, None);
        assert_eq!(pod.as_deref(), Some("web-api-1"));
        assert_eq!(container.as_deref(), Some("istio-proxy"));
        assert_eq!(ts, Some(ms("2026-11-20T11:43:14Z")));
        assert_eq!(payload, ACCESS);
        // kubectl --timestamps before an Envoy JSON line, spaced or not, stays kubectl.
        for json in [&b"{ \"a\": 1}"[..], JSON_ACCESS] {
            let line = [TS.as_bytes(), b" ", json].concat();
            assert_eq!(decode(InputKind::Auto, &line).4, json);
        }
        let jsonl =
            serde_json::json!({"labels": {"pod": "web-api-1"}, "line": access, "timestamp": TS})
                .to_string();
        let (_, pod, _, ts, payload) = decode(InputKind::Auto, jsonl.as_bytes());
        assert_eq!((pod.as_deref(), ts), (Some("web-api-1"), Some(ms(TS))));
        assert_eq!(payload, ACCESS);
        // Envoy's own JSON stays raw.
        assert_raw(InputKind::Auto, JSON_ACCESS);
    }

    #[test]
    fn crlf_is_dropped() {
        let line = [ACCESS, b"\r\n"].concat();
        assert_eq!(decode(InputKind::Auto, &line).4, ACCESS);
        let line = [TS.as_bytes(), b" ", ACCESS, b"\r"].concat();
        assert_eq!(decode(InputKind::Auto, &line).4, ACCESS);
        assert_eq!(decode(InputKind::Auto, b"\r").4, b"");
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let lines: [&[u8]; 6] = [
            b"\xff\xfe[2021-06-14T10:27:59.758Z]",
            b"web-api istio-proxy [\xff\xff]",
            b"[pod/web-api/istio-proxy] \xc3",
            b"2026-11-20T11:43:14.559\xffZ x",
            b"{\"message\":\"\xff\",\"podName\":\"p\"}",
            b"\x1b[\xff",
        ];
        for kind in [
            InputKind::Auto,
            InputKind::Raw,
            InputKind::Kubectl,
            InputKind::Stern,
            InputKind::SternJson,
        ] {
            for line in lines {
                let _ = decode(kind, line);
            }
        }
        assert_eq!(decode(InputKind::Auto, lines[1]).4, b"[\xff\xff]");
        assert_eq!(decode(InputKind::Auto, lines[4]).4, b"\xff");
    }

    #[test]
    fn decoder_is_reusable_across_envelopes() {
        let mut decoder = EnvelopeDecoder::new(InputKind::Auto);
        let coloured = [
            b"\x1b[31mweb-api-1\x1b[0m \x1b[32mistio-proxy\x1b[0m ".as_slice(),
            ACCESS,
        ]
        .concat();
        let json = br#"{"message":"[x] \"q\"","podName":"p"}"#;
        for _ in 0..3 {
            assert_eq!(decoder.decode(&coloured).payload, ACCESS);
            assert_eq!(decoder.decode(json).payload, b"[x] \"q\"");
            assert_eq!(decoder.decode(ACCESS).payload, ACCESS);
        }
    }

    mod cases {
        //! File-driven cases: every `fixtures/envelopes/*.json` is a list of cases.

        use super::super::*;

        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Case {
            name: String,
            /// `--input` value; default `auto`.
            #[serde(default)]
            kind: Option<String>,
            line: String,
            namespace: Option<String>,
            pod: Option<String>,
            container: Option<String>,
            /// RFC 3339.
            timestamp: Option<String>,
            payload: String,
        }

        #[test]
        fn fixture_cases() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/envelopes");
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            assert!(!files.is_empty(), "no case files in {}", dir.display());
            let mut failures = Vec::new();
            let mut count = 0;
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                let cases: Vec<Case> = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                for case in cases {
                    count += 1;
                    let kind =
                        InputKind::from_str(case.kind.as_deref().unwrap_or("auto"), true).unwrap();
                    let mut decoder = EnvelopeDecoder::new(kind);
                    let got = decoder.decode(case.line.as_bytes());
                    let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
                    let got = (
                        s(got.meta.namespace),
                        s(got.meta.pod),
                        s(got.meta.container),
                        got.timestamp_ms,
                        String::from_utf8_lossy(got.payload).into_owned(),
                    );
                    let want = (
                        case.namespace,
                        case.pod,
                        case.container,
                        case.timestamp.map(|t| {
                            parse_rfc3339_ms(t.as_bytes()).expect("bad timestamp in case")
                        }),
                        case.payload,
                    );
                    if got != want {
                        failures.push(format!(
                            "{} / {}:\n   got {got:?}\n  want {want:?}",
                            file.file_name().unwrap().to_string_lossy(),
                            case.name
                        ));
                    }
                }
            }
            assert!(
                failures.is_empty(),
                "{} of {count} cases failed:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    }
}
