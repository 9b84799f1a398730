//! The key scanner against the serde_json path it replaced (issue 11 item 2):
//! same [`Outcome`], same values, on random Istio JSON entries and random
//! damage to them. serde_json's path ([`JsonFormat::attempt_serde`]) is the oracle.

use super::Field;
use super::builtin::ISTIO_JSON;
use super::json::{JsonFormat, Value};
use super::json_scan::{KeyTable, Scan, scan};
use super::line_parser::Outcome;
use proptest::prelude::*;
use proptest::sample::{Index, select};

type Judged = (Outcome, Vec<Option<Vec<u8>>>);

fn istio_json() -> JsonFormat {
    JsonFormat::compile(ISTIO_JSON.iter().copied()).unwrap()
}

/// What a path makes of a line: the outcome, and each field's value as bytes.
fn judge(format: &JsonFormat, line: &[u8], serde: bool) -> Judged {
    let mut scratch = Vec::new();
    let mut values = [None; Field::COUNT];
    let outcome = if serde {
        format.attempt_serde(line, &mut scratch, &mut values)
    } else {
        format.attempt(line, &mut scratch, &mut values)
    };
    let values = values
        .iter()
        .map(|v| match *v {
            Some(Value::Line(v)) => Some(v.to_vec()),
            Some(Value::Scratch(a, b)) => Some(scratch[a..b].to_vec()),
            None => None,
        })
        .collect();
    (outcome, values)
}

fn assert_same(format: &JsonFormat, line: &[u8]) -> Result<(), TestCaseError> {
    let scanned = judge(format, line, false);
    let oracle = judge(format, line, true);
    prop_assert_eq!(
        &scanned,
        &oracle,
        "line {:?}",
        String::from_utf8_lossy(line)
    );
    Ok(())
}

/// A tiny deterministic generator for whitespace between tokens.
struct Ws(u64);

impl Ws {
    fn next(&mut self) -> &'static str {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match self.0 >> 60 {
            0 => " ",
            1 => "\t",
            2 => "\r\n ",
            3 => "  ",
            _ => "",
        }
    }
}

/// A JSON value as a tree, written out with random whitespace.
#[derive(Clone, Debug)]
enum J {
    Raw(String),
    Array(Vec<J>),
    Object(Vec<(String, J)>),
}

impl J {
    fn write(&self, ws: &mut Ws, out: &mut String) {
        match self {
            J::Raw(s) => out.push_str(s),
            J::Array(items) => {
                out.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(ws.next());
                        out.push(',');
                    }
                    out.push_str(ws.next());
                    item.write(ws, out);
                }
                out.push_str(ws.next());
                out.push(']');
            }
            J::Object(members) => {
                out.push('{');
                for (n, (key, value)) in members.iter().enumerate() {
                    if n > 0 {
                        out.push_str(ws.next());
                        out.push(',');
                    }
                    out.push_str(ws.next());
                    out.push_str(key);
                    out.push_str(ws.next());
                    out.push(':');
                    out.push_str(ws.next());
                    value.write(ws, out);
                }
                out.push_str(ws.next());
                out.push('}');
            }
        }
    }
}

/// String bodies: plain text, every escape (surrogate pairs, lone and
/// reversed surrogates), raw non-ASCII, the values Istio writes.
fn string() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        4 => "[a-zA-Z0-9 :/.|_=;-]{1,10}",
        1 => select(vec![
            r#"\""#, r"\\", r"\/", r"\n", r"\t", r"\b\f\r", r"\u00e9", r"\u0041",
            r"\ud83d\ude00", r"\uD83D\uDE00", r"\ud800", r"\udc00", r"\ud800\u0041",
            r"\ud800\ud800\udc00", r"\ud800\n", "é", "☃", "😀", "\u{7f}",
            "spiffe://cluster.local/ns/default/sa/sleep",
            "By=spiffe://cluster.local/ns/a/sa/b;Hash=1;Subject=\\\"\\\";URI=spiffe://x",
            "outbound_.8080_._.web.default.svc.cluster.local",
            "inbound|8080||", "2026-11-20T11:43:14.559Z",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec(part, 0..5).prop_map(|p| format!("\"{}\"", p.concat()))
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        select(vec![
            "0", "-0", "1e5", "1.5E-3", "0.0", "2E+10", "200", "-1"
        ])
        .prop_map(str::to_string),
    ]
}

/// Keys without escapes: the scanner decides on them alone.
fn plain_key() -> impl Strategy<Value = String> {
    let known: Vec<String> = ISTIO_JSON.iter().map(|(k, _)| format!("\"{k}\"")).collect();
    prop_oneof![
        6 => select(known),
        2 => "[a-z_]{1,12}".prop_map(|k| format!("\"{k}\"")),
        1 => select(vec![r#""ключ""#, r#""""#, r#""response_code ""#, r#""level""#, r#""msg""#])
        .prop_map(str::to_string),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => plain_key(),
        1 => select(vec![
            r#""start\u005ftime""#, r#""upstream_cluster\n""#, r#""ключ""#,
            r#""\ud800""#, r#""\udc00x""#, r#""\ud83d\ude00""#, r#""""#,
            r#""response_code ""#, r#""level""#, r#""msg""#,
        ])
        .prop_map(str::to_string),
    ]
}

fn value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        4 => string(),
        2 => number(),
        1 => select(vec!["null", "true", "false"]).prop_map(str::to_string),
    ]
    .prop_map(J::Raw);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Array),
            prop::collection::vec((key(), inner), 0..4).prop_map(J::Object),
        ]
    })
}

/// An Istio JSON entry: known keys in random order, extra and duplicate keys,
/// typed and nested values, with random whitespace.
fn entry() -> impl Strategy<Value = Vec<u8>> {
    entry_of(key().boxed())
}

fn entry_of(keys: BoxedStrategy<String>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((keys, value()), 0..30),
        any::<u64>(),
        select(vec!["", " ", "\t", "\r", " \r\n"]),
    )
        .prop_map(|(members, seed, edge)| {
            let mut out = String::from(edge);
            J::Object(members).write(&mut Ws(seed), &mut out);
            out.push_str(edge);
            out.into_bytes()
        })
}

#[derive(Clone, Debug)]
enum Damage {
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
    Delete(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    let byte = prop_oneof![
        any::<u8>(),
        select(b"\"\\{}[],: \x00\x0b\x0c\x1f\xff\xc3\x80\xed\xa0e.-+0nu".to_vec()),
    ];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Damage::Set(i, b)),
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), byte).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<Index>().prop_map(Damage::Delete),
    ]
}

fn apply(line: &mut Vec<u8>, damage: &Damage) {
    if line.is_empty() {
        return;
    }
    match damage {
        Damage::Set(i, b) => {
            let i = i.index(line.len());
            line[i] = *b;
        }
        Damage::Truncate(i) => line.truncate(i.index(line.len())),
        Damage::Insert(i, b) => line.insert(i.index(line.len() + 1), *b),
        Damage::Delete(i) => {
            line.remove(i.index(line.len()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn issue_11_2_scanner_equals_serde_json_on_entries(line in entry()) {
        assert_same(&istio_json(), &line)?;
    }

    #[test]
    fn issue_11_2_scanner_equals_serde_json_on_damaged_entries(
        line in entry(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let mut line = line;
        for d in &damages {
            apply(&mut line, d);
        }
        assert_same(&istio_json(), &line)?;
    }

    /// The scanner itself decides entries whose keys have no escapes: the
    /// comparisons above test it, not the serde_json fallback.
    #[test]
    fn issue_11_2_scanner_decides_unescaped_entries(line in entry_of(plain_key().boxed())) {
        let format = istio_json();
        let mut out = [None; Field::COUNT];
        let scanned = scan(&line, format.table(), format.anchors(), &mut out);
        prop_assert!(matches!(scanned, Scan::Object { .. }), "{:?}", String::from_utf8_lossy(&line));
    }

    /// Bucketed lookup finds what a linear search finds, first key winning.
    #[test]
    fn issue_11_2_key_table_equals_linear_search(
        keys in prop::collection::vec(("[ab]{0,3}|[a-z]{40,60}", 0..Field::COUNT), 0..12),
        probe in "[ab]{0,3}|[a-z]{40,60}",
    ) {
        let keys: Vec<(String, Field)> = keys.into_iter().map(|(k, f)| (k, Field::ALL[f])).collect();
        let table = KeyTable::new(keys.iter().map(|(k, f)| (k.as_str(), *f)));
        let linear = keys.iter().find(|(k, _)| *k == probe).map(|(_, f)| *f);
        prop_assert_eq!(table.lookup(probe.as_bytes()), linear);
        for (k, _) in &keys {
            let linear = keys.iter().find(|(l, _)| l == k).map(|(_, f)| *f);
            prop_assert_eq!(table.lookup(k.as_bytes()), linear);
        }
    }
}

/// Each rule of serde_json's grammar the scanner copies, on a line that hits it.
#[test]
#[allow(clippy::useless_format)] // every case written the same way, with or without `ok`
fn issue_11_2_edge_cases_equal_serde_json() {
    let format = istio_json();
    let ok = r#""upstream_cluster":"inbound|80||","response_code":200"#;
    let cases: Vec<Vec<u8>> = [
        format!("{{{ok}}}"),
        format!("{{{ok},}}"),
        format!("{{{ok}}} x"),
        format!("{{{ok}}}\r\n\t "),
        format!("\x0c{{{ok}}}"),
        format!("{{{ok}}}\x0c"),
        format!("{{{ok},\"x\":01}}"),
        format!("{{{ok},\"x\":-}}"),
        format!("{{{ok},\"x\":1.}}"),
        format!("{{{ok},\"x\":1e+}}"),
        format!("{{{ok},\"x\":-0.5e-3}}"),
        format!("{{{ok},\"x\":nul}}"),
        format!("{{{ok},\"x\":[1,]}}"),
        format!("{{{ok},\"x\":[,1]}}"),
        format!("{{{ok},\"x\":{{\"a\":1,}}}}"),
        format!("{{{ok},\"x\":{{1:2}}}}"),
        format!("{{{ok},\"x\":[1 2]}}"),
        format!("{{{ok},\"x\":\"tab\there\"}}"),
        format!("{{{ok},\"x\":\"bad \\q\"}}"),
        format!("{{{ok},\"x\":\"cut \\u12\"}}"),
        format!("{{{ok},\"x\":\"\\ud800 lone\"}}"),
        format!("{{{ok},\"path\":\"\\ud800 lone\"}}"),
        format!("{{{ok},\"path\":\"\\udc00\\ud83d\\ude00\"}}"),
        format!("{{{ok},\"start\\u005ftime\":\"2026-11-20T11:43:14.559Z\"}}"),
        format!("{{{ok},\"\\ud800\":1}}"),
        format!("{{\"upstream_cluster\":\"first\",\"upstream_cluster\":\"second\"}}"),
        format!("{{\"upstream_cluster\":null,\"upstream_cluster\":\"second\"}}"),
        format!("{{\"path\":\"/a\"}}"),
        format!("{{\"level\":\"info\",\"msg\":\"pilot-agent\"}}"),
        format!("{{}}"),
        format!("[{ok}]"),
        format!("{{{ok},\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200)),
        format!("{{{ok},\"x\":{}1{}}}", "[".repeat(128), "]".repeat(128)),
        format!("{{{ok},\"x\":{}1{}}}", "[".repeat(129), "]".repeat(129)),
        format!("{{{ok}"),
        format!("{{{ok},\"duration\":{{\"a\":[1,\"b\",null]}}}}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([
        // Invalid UTF-8: refused in a key or a known key's value, not in an ignored value.
        format!("{{{ok},\"x\":\"\u{e9}\"}}")
            .replace('\u{e9}', "\u{1}")
            .into_bytes(),
        [format!("{{{ok},\"x\":\"").as_bytes(), b"\xff\"}"].concat(),
        [format!("{{{ok},\"path\":\"").as_bytes(), b"\xff\"}"].concat(),
        [format!("{{{ok},\"path\":[\"").as_bytes(), b"\xc3\"]}"].concat(),
        [format!("{{{ok},\"").as_bytes(), b"\xff\":1}"].concat(),
        [format!("{{{ok},\"x\":{{\"").as_bytes(), b"\xff\":1}}"].concat(),
    ])
    .collect();
    let mut scanned_alone = 0;
    for line in &cases {
        assert_same(&format, line).unwrap();
        let mut out = [None; Field::COUNT];
        scanned_alone +=
            (scan(line, format.table(), format.anchors(), &mut out) != Scan::Unsure) as usize;
    }
    // Only the escaped keys and the nesting past 128 levels go to serde_json.
    assert_eq!(scanned_alone, cases.len() - 4);
    let judged = |l: &str| judge(&format, l.as_bytes(), false).0;
    assert_eq!(judged(&format!("{{{ok}}}")), Outcome::Access);
    assert_eq!(judged(&format!("{{{ok},}}")), Outcome::LooksLike);
    assert_eq!(
        judged(r#"{"level":"info","msg":"pilot-agent"}"#),
        Outcome::No
    );
    assert_eq!(judged(r#"{"path":"/a"}"#), Outcome::No);
    assert_eq!(judged(&format!("\x0c{{{ok}}}")), Outcome::LooksLike);
}
