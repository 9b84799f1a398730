//! stern `-o extjson` (stern/stern `cmd/cmd.go`, the `extjson` template
//! function): `{"pod": "<pod>", "container": "<ctr>", "message": <msg>}`,
//! with `"namespace": "<ns>", ` first under `--all-namespaces`; the message
//! is inserted raw when it is valid JSON (Envoy's JSON access log) and
//! JSON-quoted otherwise; pod and container may carry ANSI colours.
//!
//! stern's `-o json`, default text (with the namespace column under `-A`)
//! and `-o raw` (the message alone: a raw line) are in [`crate::envelope`].

use serde::Deserialize;
use serde_json::value::RawValue;

use super::Entry;

/// Returns true if the first key of a JSON line is extjson's.
pub fn is_extjson_key(key: &[u8]) -> bool {
    matches!(key, b"pod" | b"namespace")
}

#[derive(Deserialize)]
struct ExtJson<'a> {
    #[serde(default)]
    namespace: Option<String>,
    pod: String,
    #[serde(default)]
    container: Option<String>,
    #[serde(borrow)]
    message: &'a RawValue,
}

/// Decodes one extjson line; the message keeps a `--timestamps` time for the envelope to take off.
pub fn decode_extjson(line: &[u8]) -> Option<Entry> {
    let e: ExtJson = serde_json::from_slice(line).ok()?;
    let raw = e.message.get();
    let message = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()?
    } else {
        raw.to_string()
    };
    let (timestamp_ms, message) = match crate::envelope::split_stern_timestamp(message.as_bytes()) {
        (ts, rest) if rest.len() != message.len() => {
            (ts, String::from_utf8_lossy(rest).into_owned())
        }
        _ => (None, message),
    };
    let clean = |s: String| strip_ansi(&s);
    Some(Entry {
        namespace: e.namespace.map(clean),
        pod: Some(clean(e.pod)),
        container: e.container.map(clean),
        timestamp_ms,
        line: message,
    })
}

/// Drops ANSI SGR sequences (`ESC [ … m`) from a name.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extjson_string_and_raw_json_messages() {
        let e = decode_extjson(br#"{"namespace": "ns", "pod": "web-1", "container": "istio-proxy", "message": "[x] \"GET\""}"#).unwrap();
        assert_eq!(
            (e.namespace.as_deref(), e.line.as_str()),
            (Some("ns"), "[x] \"GET\"")
        );
        let e = decode_extjson(br#"{"pod": "\u001b[32mweb-1\u001b[0m", "container": "istio-proxy", "message": {"a":1}}"#).unwrap();
        assert_eq!(
            (e.pod.as_deref(), e.line.as_str()),
            (Some("web-1"), r#"{"a":1}"#)
        );
    }
}
