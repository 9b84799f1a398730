//! Property: a record rendered with a format, as Envoy would write it, and
//! parsed back is the same record (issue 7 item 31).
//!
//! Values are arbitrary within what Envoy writes for each operator: free text
//! (headers, XFCC) with quotes, spaces, `Subject=""`, non-ASCII and `-`;
//! tokens (SANs, addresses, flags) without spaces or quotes; numbers; times.
//! A free-text value that contains one of the format's own separators (say an
//! X-Forwarded-For holding `" cert: "`) has more than one reading; which one
//! the matcher takes is a rule tested on its own (`issue_7_2_*`), so those
//! values are left out here.

use super::operator::ValueClass;
use super::token::{Token, tokenize};
use super::{Field, FormatSet, LineParser, LogFormat, Parsed, builtin};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::RefCell;

/// One value per operator of a format, in order, plus the start time.
#[derive(Clone, Debug)]
struct Record {
    values: Vec<String>,
    start_ms: i64,
}

/// Pieces free text is made of: quotes, spaces, XFCC parts, non-ASCII, `-`.
const PIECES: &[&str] = &[
    "\"",
    " ",
    "-",
    "a",
    "Z",
    "é",
    "日本",
    "=",
    ";",
    ",",
    "Subject=\"\"",
    "URI=spiffe://cluster.local/ns/a/sa/b",
    "By=spiffe://x",
    "10.0.0.1",
    "curl/8.0",
    "\\",
    "'",
    "%",
    "\t",
];

fn free_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..8).prop_map(|p| p.concat())
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-".to_string()),
        "[a-z0-9.:|/_,-]{1,24}",
        "spiffe://cluster\\.local/ns/[a-z]{1,8}/sa/[a-zé]{1,8}",
    ]
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-".to_string()),
        (0u64..1 << 40).prop_map(|n| n.to_string())
    ]
}

/// A strategy for one operator's value (the start time is rendered from `start_ms`).
fn value(class: ValueClass) -> BoxedStrategy<String> {
    match class {
        ValueClass::Any => free_text().boxed(),
        ValueClass::Token => token().boxed(),
        ValueClass::Number | ValueClass::Rfc3339 => number().boxed(),
    }
}

/// How one format writes START_TIME (the ones these tests use).
fn render_time(op_arg: Option<&str>, ms: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).expect("in range");
    match op_arg {
        None | Some("") => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Some("%s.%3f") => format!("{}.{:03}", ms / 1000, ms % 1000),
        Some(other) => panic!("no renderer for {other}"),
    }
}

fn check_text(name: &str, source: &str, set: &FormatSet) {
    let tokens = tokenize(source).expect("compiles");
    // The literal after each operator (empty when another operator or the end follows).
    let tails: Vec<Vec<u8>> = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(t, Token::Operator(_)))
        .map(|(i, _)| match tokens.get(i + 1) {
            Some(Token::Literal(l)) if i + 2 < tokens.len() => l.clone(),
            _ => Vec::new(),
        })
        .collect();
    let ops: Vec<_> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Operator(op) => Some(op.clone()),
            Token::Literal(_) => None,
        })
        .collect();
    let strategy = (
        ops.iter().map(|op| value(op.class())).collect::<Vec<_>>(),
        0i64..4_102_444_800_000, // 1970 .. 2100
    )
        .prop_map(|(values, start_ms)| Record { values, start_ms });
    // The runner takes a `Fn`: the parsers' caches are borrowed per case.
    let alone = RefCell::new(LineParser::new(
        vec![LogFormat::compile(name, source).unwrap()].into(),
    ));
    let in_set = RefCell::new(LineParser::new(set.clone()));
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        max_global_rejects: 1 << 20,
        ..Config::default()
    });
    let result = runner.run(&strategy, |rec| {
        // Render the line as Envoy would.
        let mut line = String::new();
        let mut i = 0;
        for t in &tokens {
            match t {
                Token::Literal(l) => line.push_str(std::str::from_utf8(l).unwrap()),
                Token::Operator(op) => {
                    if op.field() == Some(Field::StartTime) {
                        line.push_str(&render_time(op.arg.as_deref(), rec.start_ms));
                    } else {
                        line.push_str(&rec.values[i]);
                    }
                    i += 1;
                }
            }
        }
        // A value is split at the first occurrence of the literal after it:
        // a value holding that literal (or ending with its start) reads otherwise.
        let ambiguous = tails.iter().zip(&rec.values).any(|(tail, v)| {
            let mut joined = v.as_bytes().to_vec();
            joined.extend_from_slice(tail);
            !tail.is_empty() && memchr::memmem::find(&joined, tail) != Some(v.len())
        });
        prop_assume!(!ambiguous);
        for (who, parser) in [("alone", &alone), ("in its set", &in_set)] {
            let mut parser = parser.borrow_mut();
            let Parsed::Access { entry, .. } = parser.parse(line.as_bytes()) else {
                return Err(TestCaseError::fail(format!(
                    "{name} {who}: does not parse: {line}"
                )));
            };
            let mut seen = [false; Field::COUNT];
            for (op, v) in ops.iter().zip(&rec.values) {
                let Some(field) = op.field() else { continue };
                if std::mem::replace(&mut seen[field as usize], true) {
                    continue;
                }
                if field == Field::StartTime {
                    prop_assert_eq!(
                        entry.start_time_ms,
                        Some(rec.start_ms),
                        "{} {}: {}",
                        name,
                        who,
                        line
                    );
                } else {
                    prop_assert_eq!(
                        entry.raw(field),
                        Some(v.as_bytes()),
                        "{} {}: {:?} in {}",
                        name,
                        who,
                        field,
                        line
                    );
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

#[test]
fn issue_7_31_text_records_round_trip_through_every_builtin() {
    let set: FormatSet = super::load(None, None).unwrap();
    for (name, def) in &builtin::BUILTINS {
        if let builtin::Definition::Text(source) = def {
            check_text(name, source, &set);
        }
    }
}

#[test]
fn issue_7_31_text_records_round_trip_through_custom_formats() {
    for source in [
        r#"%START_TIME(%s.%3f)% peer=%DOWNSTREAM_PEER_URI_SAN% xfcc="%REQ(X-FORWARDED-CLIENT-CERT)%" code=%RESPONSE_CODE%"#,
        r#"%REQ(:METHOD)% %REQ(:PATH)% %DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_PEER_URI_SAN% "%REQ(USER-AGENT)%""#,
        r#"[%START_TIME%] "%REQ(X-FORWARDED-FOR)%" cert: "%REQ(X-FORWARDED-CLIENT-CERT)%" sni=%REQUESTED_SERVER_NAME%"#,
    ] {
        let set: FormatSet = vec![LogFormat::compile("custom", source).unwrap()].into();
        check_text("custom", source, &set);
    }
}

#[test]
fn issue_7_31_json_records_round_trip() {
    let set: FormatSet = super::load(Some("istio-json"), None).unwrap();
    let parser = RefCell::new(LineParser::new(set));
    let keys = builtin::ISTIO_JSON;
    let strategy = (
        prop::collection::vec(free_text(), keys.len()),
        0i64..4_102_444_800_000,
    );
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        max_global_rejects: 1 << 20,
        ..Config::default()
    });
    runner
        .run(&strategy, |(values, start_ms)| {
            let mut object = serde_json::Map::new();
            for ((key, op), v) in keys.iter().zip(&values) {
                let v = if *op == "%START_TIME%" {
                    render_time(None, start_ms)
                } else {
                    v.clone()
                };
                object.insert(key.to_string(), v.into());
            }
            let line = serde_json::Value::Object(object).to_string();
            let mut parser = parser.borrow_mut();
            let Parsed::Access { entry, .. } = parser.parse(line.as_bytes()) else {
                return Err(TestCaseError::fail(format!("does not parse: {line}")));
            };
            prop_assert_eq!(entry.start_time_ms, Some(start_ms));
            for ((_, op), v) in keys.iter().zip(&values) {
                let tokens = tokenize(op).unwrap();
                let [Token::Operator(o)] = tokens.as_slice() else {
                    continue;
                };
                match o.field() {
                    Some(Field::StartTime) | None => {}
                    Some(field) => {
                        prop_assert_eq!(entry.raw(field), Some(v.as_bytes()), "{}", line)
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}
