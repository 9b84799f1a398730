//! Envoy format strings → tokens: literal text and `%COMMAND(args):N%` operators.
//!
//! The grammar is Envoy's own (`%[A-Z0-9_]+(\([^)]*\))?(:[0-9]+)?%`), plus `%%`
//! for a literal percent. Errors carry a 1-based column so a user can find the
//! spot in the YAML they copied the format from.

use super::FormatError;
use super::known::{is_known, suggest};
use std::fmt;

/// One piece of a format string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// Text copied verbatim into every line (adjacent literal runs are merged).
    Literal(Vec<u8>),
    /// A command operator, replaced by a value in every line.
    Operator(Operator),
}

/// A command operator such as `%REQ(X-FORWARDED-FOR):64%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Operator {
    /// The command (`REQ`, `START_TIME`, `DOWNSTREAM_PEER_URI_SAN`, ...).
    pub(crate) name: String,
    /// The text between the parentheses, if any.
    pub(crate) arg: Option<String>,
    /// The `:N` length limit, if any.
    pub(crate) max_len: Option<usize>,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.name)?;
        if let Some(arg) = &self.arg {
            write!(f, "({arg})")?;
        }
        if let Some(n) = self.max_len {
            write!(f, ":{n}")?;
        }
        f.write_str("%")
    }
}

/// Removes the newline Envoy configs end their formats with: a real one (YAML
/// double-quoted strings decode `\n`) or the two characters `\n` (copied from YAML source).
pub(crate) fn strip_trailing_newline(format: &str) -> &str {
    if let Some(rest) = format.strip_suffix('\n') {
        rest.strip_suffix('\r').unwrap_or(rest)
    } else if let Some(rest) = format.strip_suffix("\\n") {
        rest
    } else {
        format
    }
}

/// Most operators one format may hold: Envoy's own formats have about 25, and
/// each costs a capture group in the matcher.
pub(crate) const MAX_OPERATORS: usize = 256;

/// Splits a text format string into tokens; the trailing newline is dropped first.
///
/// Refuses operators Envoy does not know and operators with no literal text
/// between them (no line can be split between them reliably).
pub(crate) fn tokenize(format: &str) -> Result<Vec<Token>, FormatError> {
    tokenize_with(format, false)
}

/// Tokenizes one value of a JSON format, where operators may be adjacent
/// (strictly reads only values that are a single operator).
pub(crate) fn tokenize_json_value(format: &str) -> Result<Vec<Token>, FormatError> {
    tokenize_with(format, true)
}

fn tokenize_with(format: &str, allow_adjacent: bool) -> Result<Vec<Token>, FormatError> {
    let format = strip_trailing_newline(format);
    let b = format.as_bytes();
    let mut tokens = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            literal.push(b[i]);
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            literal.push(b'%');
            i += 2;
            continue;
        }
        let start = i;
        let mut j = i + 1;
        while j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit() || b[j] == b'_') {
            j += 1;
        }
        if j == start + 1 {
            let message = if j >= b.len() {
                "unterminated %: write %% for a literal percent"
            } else {
                "empty operator: expected %UPPER_CASE_NAME% (or %% for a literal percent)"
            };
            return Err(syntax(format, start, start, message));
        }
        let name = format[start + 1..j].to_string();
        let mut arg = None;
        if b.get(j) == Some(&b'(') {
            // Envoy's arguments are `[^)]*`: the first `)` closes them, whatever they contain.
            let Some(close) = b[j + 1..].iter().position(|&c| c == b')') else {
                return Err(syntax(
                    format,
                    start,
                    j,
                    "unbalanced parentheses: ( is never closed",
                ));
            };
            arg = Some(format[j + 1..j + 1 + close].to_string());
            j += close + 2;
        }
        let mut max_len = None;
        if b.get(j) == Some(&b':') {
            let digits = b[j + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            let n = format[j + 1..j + 1 + digits].parse::<usize>();
            match n {
                Ok(n) if digits > 0 => max_len = Some(n),
                _ => {
                    return Err(syntax(
                        format,
                        start,
                        j,
                        "bad length limit: expected :N with N a number",
                    ));
                }
            }
            j += 1 + digits;
        }
        match b.get(j) {
            Some(b'%') => {}
            Some(b')') => {
                return Err(syntax(
                    format,
                    start,
                    j,
                    "unbalanced parentheses: ) without (",
                ));
            }
            Some(b'(') => {
                return Err(syntax(
                    format,
                    start,
                    j,
                    "unbalanced parentheses: nested or repeated (",
                ));
            }
            _ => {
                return Err(syntax(
                    format,
                    start,
                    start,
                    "unterminated operator: missing the closing %",
                ));
            }
        }
        if !is_known(&name) {
            let message = match suggest(&name) {
                Some(s) => format!("unknown operator %{name}%: did you mean %{s}%?"),
                None => format!("unknown operator %{name}%: Envoy has no such command operator"),
            };
            return Err(syntax(format, start, start, &message));
        }
        if literal.is_empty()
            && !allow_adjacent
            && let Some(Token::Operator(prev)) = tokens.last()
        {
            let message = format!(
                "operators {prev} and %{name}% follow each other with no text between them: \
                 strictly cannot tell where one value ends and the next begins; \
                 put a separator (such as a space) between them"
            );
            return Err(syntax(format, start, start, &message));
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        if tokens.len() >= 2 * MAX_OPERATORS {
            let message = format!("too many operators: strictly reads at most {MAX_OPERATORS}");
            return Err(syntax(format, start, start, &message));
        }
        tokens.push(Token::Operator(Operator { name, arg, max_len }));
        i = j + 1;
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// Builds a syntax error pointing at byte `at`, quoting the format from the operator at byte `from`.
fn syntax(format: &str, from: usize, at: usize, message: &str) -> FormatError {
    const SNIPPET_CHARS: usize = 40;
    let column = format[..at].chars().count() + 1;
    let rest = &format[from..];
    let mut snippet: String = rest.chars().take(SNIPPET_CHARS).collect();
    if rest.chars().nth(SNIPPET_CHARS).is_some() {
        snippet.push('…');
    }
    FormatError::Syntax {
        message: message.to_string(),
        column,
        snippet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, arg: Option<&str>, max_len: Option<usize>) -> Token {
        Token::Operator(Operator {
            name: name.into(),
            arg: arg.map(Into::into),
            max_len,
        })
    }

    fn lit(s: &str) -> Token {
        Token::Literal(s.as_bytes().to_vec())
    }

    #[test]
    fn literals_operators_args_and_limits() {
        let t =
            tokenize(r#"[%START_TIME%] "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" %REQ(X):10% 100%%\n"#)
                .unwrap();
        assert_eq!(
            t,
            vec![
                lit("["),
                op("START_TIME", None, None),
                lit("] \""),
                op("REQ", Some("X-ENVOY-ORIGINAL-PATH?:PATH"), None),
                lit("\" "),
                op("REQ", Some("X"), Some(10)),
                lit(" 100%"),
            ]
        );
    }

    #[test]
    fn strftime_arguments_may_contain_percent() {
        let t = tokenize("%START_TIME(%Y-%m-%dT%H:%M:%S%z)% x").unwrap();
        assert_eq!(
            t,
            vec![
                op("START_TIME", Some("%Y-%m-%dT%H:%M:%S%z"), None),
                lit(" x")
            ]
        );
    }

    #[test]
    fn trailing_newline_is_dropped_either_way() {
        assert_eq!(
            tokenize("%PROTOCOL%\n").unwrap(),
            vec![op("PROTOCOL", None, None)]
        );
        assert_eq!(
            tokenize("%PROTOCOL%\\n").unwrap(),
            vec![op("PROTOCOL", None, None)]
        );
        assert_eq!(
            tokenize("%PROTOCOL%\r\n").unwrap(),
            vec![op("PROTOCOL", None, None)]
        );
        // Only the last one: an inner newline is literal text.
        assert_eq!(
            tokenize("%PROTOCOL%\n\n").unwrap(),
            vec![op("PROTOCOL", None, None), lit("\n")]
        );
    }

    #[test]
    fn operator_round_trips_through_display() {
        for s in [
            "%REQ(X-FORWARDED-FOR):64%",
            "%START_TIME%",
            "%DYNAMIC_METADATA(envoy.common:access_log_hint)%",
        ] {
            let t = tokenize(s).unwrap();
            let [Token::Operator(o)] = t.as_slice() else {
                panic!("{t:?}")
            };
            assert_eq!(o.to_string(), s);
        }
    }

    fn err(format: &str) -> (String, usize, String) {
        match tokenize(format) {
            Err(FormatError::Syntax {
                message,
                column,
                snippet,
            }) => (message, column, snippet),
            other => panic!("{format:?}: {other:?}"),
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let (m, c, s) = err(r#"[%START_TIME%] "%REQ(:METHOD) x"#);
        assert!(m.contains("unterminated operator"), "{m}");
        assert_eq!((c, s.as_str()), (17, "%REQ(:METHOD) x"));

        let (m, c, _) = err("abc %REQ(X-FORWARDED-FOR %");
        assert!(m.contains("unbalanced parentheses"), "{m}");
        assert_eq!(c, 9);

        let (m, c, _) = err("%REQ(X)) %");
        assert!(m.contains("unbalanced parentheses"), "{m}");
        assert_eq!(c, 8);

        let (m, c, _) = err("%REQ(X):abc%");
        assert!(m.contains("bad length limit"), "{m}");
        assert_eq!(c, 8);

        let (m, c, _) = err("a % b");
        assert!(m.contains("empty operator"), "{m}");
        assert_eq!(c, 3);

        let (m, c, _) = err("%req(x)%");
        assert!(m.contains("empty operator"), "{m}");
        assert_eq!(c, 1);

        let (m, c, _) = err("ends with %");
        assert!(m.contains("unterminated %"), "{m}");
        assert_eq!(c, 11);

        let (m, c, _) = err("%START_TIME");
        assert!(m.contains("unterminated operator"), "{m}");
        assert_eq!(c, 1);
    }

    #[test]
    fn issue_7_5_unknown_operators_are_refused_with_a_suggestion() {
        let (m, c, _) = err(r#"[%START_TIME%] mTLS_Origin: "%DOWNSTREAM_PEER_URI_SAM%""#);
        assert!(
            m.contains("unknown operator %DOWNSTREAM_PEER_URI_SAM%")
                && m.contains("did you mean %DOWNSTREAM_PEER_URI_SAN%?"),
            "{m}"
        );
        assert_eq!(c, 30);
        let (m, c, _) = err("%START_TIME% %FOO_BAR%");
        assert!(
            m.contains("unknown operator %FOO_BAR%") && !m.contains("did you mean"),
            "{m}"
        );
        assert_eq!(c, 14);
    }

    #[test]
    fn issue_7_5_adjacent_operators_are_refused() {
        let (m, c, _) = err("%START_TIME% %PROTOCOL%%RESPONSE_CODE%");
        assert!(
            m.contains("%PROTOCOL% and %RESPONSE_CODE%") && m.contains("no text between"),
            "{m}"
        );
        assert_eq!(c, 24);
        // `%%` between them is literal text: a separator.
        assert!(tokenize("%PROTOCOL%%%%RESPONSE_CODE%").is_ok());
        // JSON values are read only when they are one operator: adjacency is harmless there.
        assert!(tokenize_json_value("%PROTOCOL%%RESPONSE_CODE%").is_ok());
    }

    #[test]
    fn issue_7_5_many_adjacent_operators_fail_fast() {
        let format = "%PROTOCOL%".repeat(2000);
        let t = std::time::Instant::now();
        assert!(tokenize(&format).is_err());
        let spaced = "%PROTOCOL% ".repeat(2000);
        let (m, _, _) = err(&spaced);
        assert!(m.contains("too many operators"), "{m}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn columns_count_characters_and_snippets_are_short() {
        let (_, c, s) = err(&format!("é %REQ(X {}", "y".repeat(100)));
        assert_eq!(c, 7);
        assert!(
            s.starts_with("%REQ(X yyy") && s.ends_with('…') && s.chars().count() == 41,
            "{s}"
        );
    }
}
