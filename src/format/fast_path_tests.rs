//! Property: the structural fast path answers exactly as the anchored regex
//! (issue 11 item 1).
//!
//! Lines are built from a format's plan with hostile values: quotes, spaces,
//! the format's own literals and pieces of them (` mTLS_Origin: "`,
//! ` cert: "` inside X-Forwarded-For, XFCC, path, user agent), non-ASCII and
//! invalid UTF-8, `-`, empty values, damaged numbers and times, and cut or
//! overwritten lines. For each line: when the fast path matches, the regex
//! matches with the same spans; and [`TextFormat::attempt`] gives the same
//! outcome and entry as the regex alone.

use super::line_parser::Outcome;
use super::log_format::Kind;
use super::operator::ValueClass;
use super::text::TextFormat;
use super::{AccessEntry, Field, LogFormat, builtin};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::{Cell, RefCell};

/// Literal fragments that forge or confuse a split when they sit inside a value.
const FORGERIES: &[&[u8]] = &[
    b"\" mTLS_Origin: \"",
    b" mTLS_Origin: \"",
    b"\" cert: \"",
    b"\" peer: \"",
    b"\" \"",
    b"] \"",
];

/// Pieces values are made of (beside [`FORGERIES`] and the format's own literals).
const PIECES: &[&[u8]] = &[
    b"\"",
    b" ",
    b"-",
    b"",
    b"a",
    b"GET",
    b"0",
    b"42",
    "é".as_bytes(),
    "日本".as_bytes(),
    b"\xff",
    b"\xc3",
    b"Subject=\"\"",
    b"By=spiffe://cluster.local/ns/a/sa/b;Hash=ab12;Subject=\"\";URI=spiffe://x",
    b"spiffe://cluster.local/ns/a/sa/b",
    b"10.0.0.1:8080",
    b"inbound|8080||",
    b"2026-11-19T10:00:45.860Z",
    b"\t",
    b"\\",
];

/// A value for one step: mostly what Envoy writes for its class, often not.
fn value(class: ValueClass, literals: &[Vec<u8>]) -> BoxedStrategy<Vec<u8>> {
    let plain: Vec<Vec<u8>> = PIECES.iter().map(|p| p.to_vec()).collect();
    let mut pieces = plain.clone();
    pieces.extend(FORGERIES.iter().map(|p| p.to_vec()));
    for l in literals {
        pieces.push(l.clone());
        // Halves of a literal: a value ending with the start of its own separator.
        pieces.push(l[..l.len() / 2].to_vec());
        pieces.push(l[l.len() / 2..].to_vec());
    }
    let junk = prop::collection::vec(prop::sample::select(pieces), 0..6).prop_map(|p| p.concat());
    let plain = prop::collection::vec(prop::sample::select(plain), 0..6).prop_map(|p| p.concat());
    match class {
        // Values holding the format's literals mostly send the walk to the
        // regex; plain ones (quotes, spaces, XFCC) keep the walk answering.
        ValueClass::Any => prop_oneof![8 => plain, 1 => junk].boxed(),
        ValueClass::Token => prop_oneof![
            8 => prop_oneof![
                Just(b"-".to_vec()),
                "[a-z0-9.:|/_,-]{0,24}".prop_map(String::into_bytes),
                "spiffe://cluster\\.local/ns/[a-z]{1,8}/sa/[a-zé]{1,8}".prop_map(String::into_bytes),
            ],
            1 => junk,
        ]
        .boxed(),
        ValueClass::Number => prop_oneof![
            12 => prop_oneof![
                Just(b"-".to_vec()),
                (0u64..1 << 40).prop_map(|n| n.to_string().into_bytes()),
            ],
            1 => junk,
        ]
        .boxed(),
        ValueClass::Rfc3339 => prop_oneof![
            8 => prop::sample::select(vec![
                &b"2026-11-19T10:00:45.860Z"[..],
                b"2026-11-19T10:00:45Z",
                b"2026-11-19T10:00:45.123456+01:00",
                b"2026-11-19T10:00:45",
            ])
            .prop_map(<[u8]>::to_vec),
            // Month 13 (read, then refused), a cut fraction, a cut offset.
            1 => prop::sample::select(vec![
                &b"2026-13-19T10:00:45.860Z"[..],
                b"2026-11-19T10:00:45.",
                b"2026-11-19T10:00:45+01",
            ])
            .prop_map(<[u8]>::to_vec),
            1 => junk,
        ]
        .boxed(),
    }
}

/// How a rendered line is damaged before parsing.
#[derive(Clone, Debug)]
enum Damage {
    None,
    Cut(prop::sample::Index),
    Overwrite(prop::sample::Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<prop::sample::Index>().prop_map(Damage::Cut),
        1 => (any::<prop::sample::Index>(), prop::sample::select(b"\" x9-]".to_vec()))
            .prop_map(|(i, b)| Damage::Overwrite(i, b)),
    ]
}

fn entry_fields(entry: &AccessEntry<'_>) -> (Vec<Option<Vec<u8>>>, Option<i64>) {
    let values = Field::ALL
        .into_iter()
        .map(|f| entry.raw(f).map(<[u8]>::to_vec))
        .collect();
    (values, entry.start_time_ms)
}

/// Runs the property on one format; returns (lines the fast path took, lines the regex matched).
fn check(name: &str, source: &str) -> (usize, usize) {
    let format = LogFormat::compile(name, source).unwrap();
    let Kind::Text(t) = &format.kind else {
        panic!("{name} is no text format")
    };
    let t: &TextFormat = t;
    let literals: Vec<Vec<u8>> = std::iter::once(t.head())
        .chain(t.steps().iter().map(|s| &s.tail[..]))
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let strategy = (
        t.steps()
            .iter()
            .map(|s| value(s.class, &literals))
            .collect::<Vec<_>>(),
        damage(),
    );
    let cache = RefCell::new(t.new_cache());
    let (fast_hits, regex_hits) = (Cell::new(0), Cell::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 1500,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |(values, damage)| {
        let mut line = t.head().to_vec();
        for (step, v) in t.steps().iter().zip(&values) {
            line.extend_from_slice(v);
            line.extend_from_slice(&step.tail);
        }
        // The format's own trailing newline is not part of a line.
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match damage {
            Damage::None => {}
            Damage::Cut(i) if !line.is_empty() => line.truncate(i.index(line.len())),
            Damage::Overwrite(i, b) if !line.is_empty() => {
                let at = i.index(line.len());
                line[at] = b;
            }
            Damage::Cut(_) | Damage::Overwrite(..) => {}
        }
        let shown = String::from_utf8_lossy(&line).into_owned();
        let cache = &mut *cache.borrow_mut();
        let mut fast = Vec::new();
        let fast_ok = t.fast_match(&line, |i, a, b| fast.push((i, a, b)));
        let mut slow = Vec::new();
        let slow_ok = t.regex_match(cache, &line, |i, a, b| slow.push((i, a, b)));
        if fast_ok {
            fast_hits.set(fast_hits.get() + 1);
            prop_assert!(
                slow_ok,
                "{}: fast path matched, regex did not: {:?}",
                name,
                shown
            );
            prop_assert_eq!(&fast, &slow, "{}: {:?}", name, shown);
        }
        if slow_ok {
            regex_hits.set(regex_hits.get() + 1);
        }
        let (mut with_fast, mut regex_only) = (AccessEntry::default(), AccessEntry::default());
        let a = t.attempt(cache, &line, &mut with_fast);
        let b = t.attempt_regex_only(cache, &line, &mut regex_only);
        prop_assert_eq!(a, b, "{}: {:?}", name, shown);
        // Only an access entry is read; on any other outcome the caller drops it.
        if a == Outcome::Access {
            prop_assert_eq!(
                entry_fields(&with_fast),
                entry_fields(&regex_only),
                "{}: {:?}",
                name,
                shown
            );
        }
        Ok::<(), TestCaseError>(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    (fast_hits.get(), regex_hits.get())
}

#[test]
fn issue_11_1_tokenizer_equals_regex_on_builtin_formats() {
    let mut ran = 0;
    for (name, def) in &builtin::BUILTINS {
        if let builtin::Definition::Text(source) = def {
            let (fast, regex) = check(name, source);
            // The property means something only if both sides answer often.
            eprintln!("{name}: fast path {fast}, regex {regex} of 1500 lines");
            assert!(regex > 150, "{name}: the regex matched only {regex} lines");
            assert!(fast * 4 > regex, "{name}: fast path took {fast} of {regex}");
            ran += 1;
        }
    }
    assert!(ran >= 5, "only {ran} built-in text formats");
}

#[test]
fn issue_11_1_tokenizer_equals_regex_on_custom_formats() {
    for (name, source) in [
        (
            "numbers-next-to-digits",
            "%RESPONSE_CODE%.%BYTES_SENT%-%START_TIME%0%DURATION% %REQ(:PATH)%",
        ),
        (
            "free-text-next-to-its-separator",
            "%REQ(:METHOD)%/%REQ(:PATH)% %RESPONSE_CODE%",
        ),
        ("no-head-free-tail", "%REQ(:METHOD)% x%REQ(:PATH)%"),
        // More distinct literal starts than the vector compare takes: the table path.
        (
            "many-separators",
            "%REQ(:METHOD)%|%REQ(:PATH)%,%REQ(USER-AGENT)%;%REQ(X-FORWARDED-FOR)%#%DOWNSTREAM_PEER_URI_SAN%@%UPSTREAM_HOST%!%RESPONSE_CODE%",
        ),
        (
            "tokens-then-quoted",
            "%DOWNSTREAM_REMOTE_ADDRESS% %UPSTREAM_HOST% \"%REQ(X-FORWARDED-CLIENT-CERT)%\" peer=%DOWNSTREAM_PEER_URI_SAN% end",
        ),
    ] {
        let (fast, regex) = check(name, source);
        eprintln!("{name}: fast path {fast}, regex {regex} of 1500 lines");
        assert!(regex > 100, "{name}: the regex matched only {regex} lines");
        assert!(fast > 0, "{name}: the fast path never answered");
    }
}
