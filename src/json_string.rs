//! JSON string bodies: unescaping into a caller's buffer without serde's
//! allocations (stern's JSON envelope and Istio's JSON access log share it).

use memchr::memchr;

/// Appends the unescaped form of a JSON string body to `out`; None on a bad escape.
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while let Some(found) = memchr(b'\\', &raw[i..]) {
        let at = i + found;
        out.extend_from_slice(&raw[i..at]);
        let escape = *raw.get(at + 1)?;
        i = at + 2;
        let byte = match escape {
            b'"' | b'\\' | b'/' => escape,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = hex4(raw.get(i..i + 4)?)?;
                i += 4;
                let code = if (0xd800..0xdc00).contains(&unit) {
                    // A high surrogate must pair with a following `\uDC00`–`\uDFFF`.
                    let low = raw
                        .get(i..i + 6)
                        .filter(|s| s.starts_with(b"\\u"))
                        .and_then(|s| hex4(&s[2..]))
                        .filter(|low| (0xdc00..0xe000).contains(low));
                    match low {
                        Some(low) => {
                            i += 6;
                            0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                        }
                        None => 0xfffd,
                    }
                } else {
                    unit
                };
                // Lone surrogates become U+FFFD, as serde_json and Go do.
                let ch = char::from_u32(code).unwrap_or('\u{fffd}');
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(byte);
    }
    out.extend_from_slice(&raw[i..]);
    Some(())
}

/// Parses four hex digits.
/// Four hex digits.
fn hex4(s: &[u8]) -> Option<u32> {
    s.iter()
        .try_fold(0u32, |acc, &b| Some(acc * 16 + (b as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> String {
        let mut out = Vec::new();
        unescape(s.as_bytes(), &mut out).expect("valid escapes");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unescapes_like_serde_json() {
        for s in [
            r#"plain"#,
            r#"By=spiffe://a;Subject=\"\";URI=spiffe://b"#,
            r#"tab\there\\ slash\/ \b\f\n\r"#,
            r#"\u00e9\u2603 \ud83d\ude00 lone \ud800 end"#,
            r#"\u0041\""#,
        ] {
            let want: String = serde_json::from_str(&format!("\"{s}\"")).unwrap_or_else(|_| {
                // serde_json rejects lone surrogates; we decode them to U+FFFD.
                serde_json::from_str(&format!("\"{}\"", s.replace(r"\ud800 ", r"\ufffd "))).unwrap()
            });
            assert_eq!(decode(s), want, "{s}");
        }
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert!(unescape(br"bad \q escape", &mut Vec::new()).is_none());
        assert!(unescape(br"cut \u12", &mut Vec::new()).is_none());
    }
}
