//! Tests for the format compiler: the lab's lines, every built-in, format
//! files, fast path against regex, damaged and foreign lines, and the case
//! files in `fixtures/formats/` (one test runs them all).

use super::log_format::Kind;
use super::text::TextFormat;
use super::token::{Token, tokenize};
use super::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The lab's first sample line (mTLS), byte for byte.
const LAB_SAMPLE_MTLS: &str = r#"[2021-06-14T10:27:59.758Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 mTLS_Origin: "spiffe://cluster.local/ns/istioinaction/sa/sleep" mTLS_Destination: "spiffe://cluster.local/ns/istioinaction/sa/web-api" 10 "-" cert: "By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=cdd00c3f7a968b8a48d41d536839485fc8f3c049915794a7688dc595f114e18b;Subject="";URI=spiffe://cluster.local/ns/istioinaction/sa/sleep" audit_flag: "false""#;

/// The lab's second sample line (plaintext), byte for byte.
const LAB_SAMPLE_PLAINTEXT: &str = r#"[2021-06-14T10:29:53.284Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "true""#;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats")
}

fn parser_for(log_format: Option<&str>) -> LineParser {
    LineParser::new(load(log_format, None).unwrap())
}

fn text(format: &LogFormat) -> &TextFormat {
    match &format.kind {
        Kind::Text(t) => t,
        Kind::Json(_) | Kind::Ztunnel => panic!("{} is no Envoy text format", format.name()),
    }
}

fn s(v: Option<&[u8]>) -> Option<&str> {
    v.map(|b| std::str::from_utf8(b).unwrap())
}

#[test]
fn lab_sample_lines_parse_each_with_its_own_format() {
    // Guard against the constants drifting from the lab, where the lab is at hand.
    let lab = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/seed/rollout-mtls-lab.md");
    if let Ok(doc) = std::fs::read_to_string(lab) {
        assert!(doc.lines().any(|l| l == LAB_SAMPLE_MTLS));
        assert!(doc.lines().any(|l| l == LAB_SAMPLE_PLAINTEXT));
    }
    let mut parser = parser_for(None);
    let formats = parser.formats().clone();

    let Parsed::Access { entry, format } = parser.parse(LAB_SAMPLE_MTLS.as_bytes()) else {
        panic!("sample 1 did not parse");
    };
    assert_eq!(formats[format].name(), "lab-v0");
    assert_eq!(
        s(entry.get(Field::PeerUriSan)),
        Some("spiffe://cluster.local/ns/istioinaction/sa/sleep")
    );
    assert_eq!(
        s(entry.get(Field::LocalUriSan)),
        Some("spiffe://cluster.local/ns/istioinaction/sa/web-api")
    );
    assert_eq!(
        s(entry.get(Field::Xfcc)),
        Some(
            r#"By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=cdd00c3f7a968b8a48d41d536839485fc8f3c049915794a7688dc595f114e18b;Subject="";URI=spiffe://cluster.local/ns/istioinaction/sa/sleep"#
        )
    );
    assert_eq!(s(entry.get(Field::AuditHint)), Some("false"));
    assert_eq!(s(entry.raw(Field::ForwardedFor)), Some("-"));
    assert_eq!(entry.get(Field::ForwardedFor), None);
    assert_eq!(entry.start_time_ms, Some(1_623_666_479_758));

    let Parsed::Access { entry, format } = parser.parse(LAB_SAMPLE_PLAINTEXT.as_bytes()) else {
        panic!("sample 2 did not parse");
    };
    assert_eq!(formats[format].name(), "lab");
    assert_eq!(entry.get(Field::PeerUriSan), None);
    assert_eq!(entry.get(Field::Xfcc), None);
    assert_eq!(s(entry.get(Field::AuditHint)), Some("true"));
    assert_eq!(s(entry.get(Field::Duration)), Some("10"));
    assert_eq!(entry.start_time_ms, Some(1_623_666_593_284));
}

#[test]
fn issue_7_2_the_most_specific_format_wins_whatever_came_before() {
    // A plaintext `lab` line whose client forged an XFCC header: `lab-cert`
    // also fits it (its free-text X-Forwarded-For swallows `mTLS_Origin: "-"`).
    let forged = concat!(
        r#"[2026-11-20T11:10:00.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 5 10 "-" mTLS_Origin: "-" mTLS_Destination: "-" "#,
        r#"cert: "By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=00;Subject="";URI=spiffe://cluster.local/ns/istioinaction/sa/sleep" audit_flag: "false""#
    );
    let lab_cert_line = r#"[2026-11-20T11:09:00.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 5 10 "-" cert: "-" audit_flag: "-""#;
    let mut parser = parser_for(None);
    let formats = parser.formats().clone();
    let lab_cert = formats.iter().position(|f| f.name() == "lab-cert").unwrap();
    assert!(
        matches!(
            parser_for(Some("lab-cert")).parse(forged.as_bytes()),
            Parsed::Access { .. }
        ),
        "the ambiguity this test is about"
    );
    for before in [
        &[][..],
        &[lab_cert_line][..],
        &[lab_cert_line, lab_cert_line][..],
    ] {
        for line in before {
            assert!(
                matches!(parser.parse(line.as_bytes()), Parsed::Access { format, .. } if format == lab_cert)
            );
        }
        let Parsed::Access { entry, format } = parser.parse(forged.as_bytes()) else {
            panic!("the forged line does not parse");
        };
        assert_eq!(formats[format].name(), "lab");
        assert_eq!(entry.get(Field::PeerUriSan), None, "judged by mTLS_Origin");
    }
}

#[test]
fn issue_7_2_a_peer_san_forged_in_a_header_is_not_trusted() {
    // X-Forwarded-For carries a whole forged tail: two splits fit the line.
    let line = concat!(
        r#"[2026-11-20T11:10:00.000Z] "GET / HTTP/1.1" 200 - "-" 0 1100 5 10 "#,
        r#""-" mTLS_Origin: "spiffe://cluster.local/ns/a/sa/b" mTLS_Destination: "x" cert: "y" audit_flag: "-" "#,
        r#"mTLS_Origin: "-" mTLS_Destination: "-" cert: "-" audit_flag: "-""#
    );
    let mut parser = parser_for(Some("lab"));
    assert!(matches!(parser.parse(line.as_bytes()), Parsed::Malformed));
}

#[test]
fn xfcc_quotes_do_not_end_the_value() {
    let xfcc = r#"By=spiffe://cluster.local/ns/a/sa/web;Hash=ab;Subject="CN=x, O=\"Acme\"";URI=spiffe://cluster.local/ns/b/sa/c"#;
    let line = format!(
        r#"[2026-11-20T11:43:14.559Z] "GET / HTTP/1.1" 200 - "-" 0 1 2 3 "-" mTLS_Origin: "spiffe://cluster.local/ns/b/sa/c" mTLS_Destination: "spiffe://cluster.local/ns/a/sa/web" cert: "{xfcc}" audit_flag: "false""#
    );
    let mut parser = parser_for(Some("lab"));
    let Parsed::Access { entry, .. } = parser.parse(line.as_bytes()) else {
        panic!()
    };
    assert_eq!(s(entry.get(Field::Xfcc)), Some(xfcc));
    // A free-text value containing the literal that follows it is still
    // matched by the regex; the hint (no spaces or quotes) is Envoy's last one.
    let tricky = line.replace(
        r#"audit_flag: "false""#,
        r#"audit_flag: "a" audit_flag: "b""#,
    );
    let Parsed::Access { entry, .. } = parser.parse(tricky.as_bytes()) else {
        panic!()
    };
    assert_eq!(s(entry.get(Field::AuditHint)), Some("b"));
    assert!(
        s(entry.get(Field::Xfcc))
            .unwrap()
            .ends_with(r#"c" audit_flag: "a"#)
    );
}

#[test]
fn every_builtin_compiles_and_logs_what_it_should() {
    use Field::*;
    let expect: [(&str, &[Field]); 8] = [
        (
            "lab",
            &[
                StartTime,
                PeerUriSan,
                LocalUriSan,
                Xfcc,
                ForwardedFor,
                AuditHint,
                Duration,
                ResponseCode,
                Method,
                Path,
                ResponseFlags,
            ],
        ),
        (
            "lab-v0",
            &[
                StartTime,
                PeerUriSan,
                LocalUriSan,
                Xfcc,
                ForwardedFor,
                AuditHint,
                Duration,
                ResponseCode,
                Method,
                Path,
                ResponseFlags,
            ],
        ),
        (
            "lab-cert",
            &[
                StartTime,
                Xfcc,
                ForwardedFor,
                AuditHint,
                Duration,
                ResponseCode,
                Method,
                Path,
                ResponseFlags,
            ],
        ),
        (
            "istio",
            &[
                StartTime,
                ForwardedFor,
                UpstreamCluster,
                RequestedServerName,
                DownstreamRemoteAddress,
                DownstreamLocalAddress,
                Duration,
                UserAgent,
                ResponseCode,
                Method,
                Path,
                Authority,
                ResponseFlags,
                ResponseCodeDetails,
            ],
        ),
        (
            "istio-1.8",
            &[
                StartTime,
                ForwardedFor,
                UpstreamCluster,
                RequestedServerName,
                DownstreamRemoteAddress,
                DownstreamLocalAddress,
                Duration,
                UserAgent,
                ResponseCode,
                Method,
                Path,
                Authority,
                ResponseFlags,
            ],
        ),
        (
            "istio-json",
            &[
                StartTime,
                ForwardedFor,
                UpstreamCluster,
                RequestedServerName,
                DownstreamRemoteAddress,
                DownstreamLocalAddress,
                Duration,
                UserAgent,
                ResponseCode,
                Method,
                Path,
                Authority,
                ResponseFlags,
                ResponseCodeDetails,
            ],
        ),
        (
            "strictly",
            &[
                StartTime,
                PeerUriSan,
                LocalUriSan,
                Xfcc,
                ForwardedFor,
                AuditHint,
                DownstreamRemoteAddress,
                Duration,
                ResponseCode,
                Method,
                Path,
                ResponseFlags,
            ],
        ),
        (
            "ztunnel",
            &[
                StartTime,
                PeerUriSan,
                LocalUriSan,
                DownstreamRemoteAddress,
                DownstreamLocalAddress,
                Duration,
                Direction,
                DestinationWorkload,
                DestinationNamespace,
                ConnectionError,
                ConnectionEvent,
            ],
        ),
    ];
    assert_eq!(builtin_names(), expect.map(|(n, _)| n));
    for (name, fields) in expect {
        let f = LogFormat::builtin(name).unwrap_or_else(|| panic!("{name} does not compile"));
        assert_eq!(f.name(), name);
        for field in Field::ALL {
            assert_eq!(
                f.logs(field),
                fields.contains(&field),
                "{name} logs {field:?}"
            );
        }
        assert!(f.has_transport_evidence(), "{name}");
        assert_eq!(f.is_json(), name == "istio-json");
    }
    assert_eq!(select(Some("auto"), None).unwrap().len(), 8);
}

#[test]
fn field_all_is_in_discriminant_order() {
    for (i, f) in Field::ALL.into_iter().enumerate() {
        assert_eq!(f as usize, i);
    }
}

#[test]
fn istio_1_8_and_1_9_lines_are_told_apart() {
    let v18 = r#"[2026-11-20T11:43:14.559Z] "GET /status/418 HTTP/1.1" 418 - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:40580 10.44.1.27:80 10.44.1.23:46520 outbound_.8000_._.httpbin.foo.svc.cluster.local default"#;
    let v19 = r#"[2026-11-20T11:43:14.559Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "127.0.0.1:80" inbound|8000|| 127.0.0.1:40580 10.44.1.27:80 10.44.1.23:46520 outbound_.8000_._.httpbin.foo.svc.cluster.local default"#;
    let mut parser = parser_for(None);
    let formats = parser.formats().clone();
    for (line, want) in [(v18, "istio-1.8"), (v19, "istio")] {
        let Parsed::Access { entry, format } = parser.parse(line.as_bytes()) else {
            panic!("{want}")
        };
        assert_eq!(formats[format].name(), want);
        assert_eq!(s(entry.get(Field::UpstreamCluster)), Some("inbound|8000||"));
        assert_eq!(
            s(entry.get(Field::RequestedServerName)),
            Some("outbound_.8000_._.httpbin.foo.svc.cluster.local")
        );
        assert_eq!(
            s(entry.get(Field::DownstreamRemoteAddress)),
            Some("10.44.1.23:46520")
        );
    }
    // Only the 1.8 format: a 1.9 line does not fit it (its flags hold no
    // spaces, so they cannot absorb the details): malformed, not misread.
    let mut only18 = parser_for(Some("istio-1.8"));
    assert!(matches!(only18.parse(v19.as_bytes()), Parsed::Malformed));
}

#[test]
fn truncated_lines_are_malformed_and_stubs_are_not_access() {
    let lines = [
        ("lab", LAB_SAMPLE_PLAINTEXT.to_string()),
        ("lab-v0", LAB_SAMPLE_MTLS.to_string()),
        (
            "lab-cert",
            r#"[2026-11-20T11:43:14.559Z] "GET / HTTP/1.1" 200 - "-" 0 1100 10 9 "-" cert: "By=spiffe://a;Subject="";URI=spiffe://b" audit_flag: "false""#.to_string(),
        ),
    ];
    // From `[<time>] "` on, a line opens like an Envoy access entry (issue 7 item 26).
    let probe_len = r#"[2021-06-14T10:29:53.284Z] ""#.len();
    let mut parser = parser_for(None);
    for (name, line) in lines {
        assert!(
            matches!(parser.parse(line.as_bytes()), Parsed::Access { .. }),
            "{name}"
        );
        for cut in 0..line.len() {
            let got = parser.parse(&line.as_bytes()[..cut]);
            if cut < probe_len {
                assert!(
                    matches!(got, Parsed::NotAccess),
                    "{name} cut at {cut}: {got:?}"
                );
            } else {
                assert!(
                    matches!(got, Parsed::Malformed),
                    "{name} cut at {cut}: {got:?}"
                );
            }
        }
    }
}

#[test]
fn foreign_lines_are_not_access() {
    let mut parser = parser_for(None);
    let lines: [&[u8]; 9] = [
        b"2026-11-20T11:43:14.559223Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012",
        b"2026-11-20T11:43:14.559223Z\twarn\tEnvoy proxy is NOT ready: config received from XDS server, but not yet applied",
        b"[2026-11-20 11:43:14.559][21][warning][config] [external/envoy/source/common/config/grpc_stream.h:163] StreamAggregatedResources gRPC config stream closed: 14, connection error",
        b"[2026-11-20 11:43:14.559][1][info][main] [external/envoy/source/server/server.cc:977] all clusters initialized. initializing init manager",
        br#"{"level":"info","time":"2026-11-20T11:43:14.559223Z","scope":"xdsproxy","msg":"connected"}"#,
        br#"{"level":"info","msg":"text with \"response_code\" escaped inside"}"#,
        b"",
        b"\x00\xff\xfe\x7f binary \xc3\x28 junk",
        b"Istio Proxy started",
    ];
    for line in lines {
        let got = parser.parse(line);
        assert!(
            matches!(got, Parsed::NotAccess),
            "{:?}: {got:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn invalid_utf8_inside_values_is_kept_as_bytes() {
    let line = LAB_SAMPLE_PLAINTEXT.replace(r#""-" mTLS_Origin"#, "\"10.0.0.1\u{0}X\" mTLS_Origin");
    let mut bytes = line.into_bytes();
    let x = bytes.iter().position(|&b| b == b'X').unwrap();
    bytes[x] = 0xff;
    let mut parser = parser_for(Some("lab"));
    let Parsed::Access { entry, .. } = parser.parse(&bytes) else {
        panic!()
    };
    assert_eq!(
        entry.get(Field::ForwardedFor),
        Some(&b"10.0.0.1\x00\xff"[..])
    );
}

#[test]
fn huge_lines_do_not_panic() {
    let mut parser = parser_for(None);
    let xfcc = "x".repeat(1 << 20);
    let big = LAB_SAMPLE_PLAINTEXT.replace(r#"cert: "-""#, &format!(r#"cert: "{xfcc}""#));
    let Parsed::Access { entry, .. } = parser.parse(big.as_bytes()) else {
        panic!()
    };
    assert_eq!(entry.get(Field::Xfcc).map(<[u8]>::len), Some(1 << 20));

    let junk = vec![b'a'; 1 << 20];
    assert!(matches!(parser.parse(&junk), Parsed::NotAccess));

    let started = std::time::Instant::now();
    let mut damaged = big.clone().into_bytes();
    damaged.truncate(damaged.len() - 40);
    assert!(matches!(parser.parse(&damaged), Parsed::Malformed));
    let json = format!(
        r#"{{"response_code":200,"user_agent":"{}""#,
        "y".repeat(1 << 20)
    );
    assert!(matches!(parser.parse(json.as_bytes()), Parsed::Malformed));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn json_values_typed_strings_and_escapes() {
    let mut parser = parser_for(Some("istio-json"));
    let typed = br#"{"response_code":200,"duration":7,"upstream_cluster":"inbound|8080||","requested_server_name":null,"start_time":"2026-11-20T11:43:14.559Z","user_agent":"a\"b\\c\u00e9"}"#;
    let Parsed::Access { entry, format } = parser.parse(typed) else {
        panic!()
    };
    assert_eq!(format, 0);
    assert_eq!(s(entry.get(Field::ResponseCode)), Some("200"));
    assert_eq!(s(entry.get(Field::Duration)), Some("7"));
    assert_eq!(entry.raw(Field::RequestedServerName), None);
    assert_eq!(s(entry.get(Field::UserAgent)), Some("a\"b\\cé"));
    assert_eq!(entry.start_time_ms, Some(1_795_174_994_559));

    let strings = br#"{"response_code":"503","upstream_cluster":"-","downstream_remote_address":"10.0.0.1:1234"}"#;
    let Parsed::Access { entry, .. } = parser.parse(strings) else {
        panic!()
    };
    assert_eq!(s(entry.get(Field::ResponseCode)), Some("503"));
    assert_eq!(entry.get(Field::UpstreamCluster), None);
    assert_eq!(s(entry.raw(Field::UpstreamCluster)), Some("-"));
    assert_eq!(entry.start_time_ms, None);

    assert!(matches!(parser.parse(&typed[..60]), Parsed::Malformed));
    assert!(matches!(parser.parse(b"[1,2,3]"), Parsed::NotAccess));
    assert!(matches!(
        parser.parse(br#"{"level":"info"}"#),
        Parsed::NotAccess
    ));
}

#[test]
fn custom_start_time_formats_are_parsed() {
    let formats = load(
        Some("[%START_TIME(%Y/%m/%d %H:%M:%E3S)%] %REQUESTED_SERVER_NAME%"),
        None,
    )
    .unwrap();
    let mut parser = LineParser::new(formats);
    let Parsed::Access { entry, .. } = parser.parse(b"[2026/11/20 11:43:14.559] outbound_.80_._.a")
    else {
        panic!()
    };
    assert_eq!(entry.start_time_ms, Some(1_795_174_994_559));
    assert_eq!(
        s(entry.get(Field::RequestedServerName)),
        Some("outbound_.80_._.a")
    );
}

#[test]
fn user_formats_need_transport_evidence() {
    let err = select(
        Some(r#"[%START_TIME%] "%REQ(:METHOD)%" %RESPONSE_CODE%"#),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, FormatError::NoTransportEvidence { name } if name == "custom"),
        "{err}"
    );
    for ok in [
        "%DOWNSTREAM_PEER_URI_SAN%",
        "%REQ(X-Forwarded-Client-Cert)%",
        "%REQUESTED_SERVER_NAME%",
    ] {
        assert!(select(Some(ok), None).is_ok(), "{ok}");
    }
}

#[test]
fn bad_format_strings_report_columns() {
    let cases = [
        (
            r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-FORWARDED-FOR"#,
            "unbalanced parentheses",
            36,
        ),
        (
            "%START_TIME% %DOWNSTREAM_PEER_URI_SAN",
            "unterminated operator",
            14,
        ),
        (
            "%REQ(X):x% %DOWNSTREAM_PEER_URI_SAN%",
            "bad length limit",
            8,
        ),
        ("50% %DOWNSTREAM_PEER_URI_SAN%", "empty operator", 3),
    ];
    for (format, message, column) in cases {
        match select(Some(format), None) {
            Err(FormatError::Syntax {
                message: m,
                column: c,
                snippet,
            }) => {
                assert!(m.contains(message), "{format}: {m}");
                assert_eq!(c, column, "{format}");
                assert!(!snippet.is_empty());
            }
            other => panic!("{format}: {other:?}"),
        }
    }
}

/// Loads a fixture format file.
fn load_file(name: &str) -> Result<Vec<LogFormat>, FormatError> {
    select(None, Some(&fixtures().join("files").join(name)))
}

#[test]
fn format_file_variants() {
    let names = |fs: &[LogFormat]| fs.iter().map(|f| f.name().to_string()).collect::<Vec<_>>();

    // The lab's EnvoyFilter, verbatim: exactly the `lab` built-in.
    let lab = load_file("lab-envoyfilter.yaml").unwrap();
    assert_eq!(names(&lab), ["custom"]);
    assert_eq!(lab[0].source(), builtin::LAB);

    let cm = load_file("istio-configmap.yaml").unwrap();
    assert_eq!(names(&cm), ["custom"]);
    assert_eq!(
        format!("{}\n", cm[0].source().trim_end()),
        builtin::LAB_CERT
    );

    let json = load_file("mesh-config-json.yaml").unwrap();
    assert!(
        json[0].is_json()
            && json[0].logs(Field::PeerUriSan)
            && json[0].logs(Field::UpstreamCluster)
    );
    assert!(!json[0].logs(Field::Xfcc));
    let mut parser = LineParser::new(json.into());
    let line = br#"{"code":200,"peer":"spiffe://cluster.local/ns/a/sa/b","upstream_cluster":"inbound|80||","note":"static text"}"#;
    let Parsed::Access { entry, .. } = parser.parse(line) else {
        panic!()
    };
    assert_eq!(
        s(entry.get(Field::PeerUriSan)),
        Some("spiffe://cluster.local/ns/a/sa/b")
    );
    assert_eq!(s(entry.get(Field::ResponseCode)), Some("200"));

    let op = load_file("istio-operator.yaml").unwrap();
    assert_eq!(names(&op), ["istio"]);

    let providers = load_file("extension-providers.yaml").unwrap();
    assert_eq!(names(&providers), ["custom", "custom-2", "istio"]);
    assert!(providers[0].logs(Field::PeerUriSan) && providers[1].is_json());

    let v3 = load_file("envoyfilter-v3.yaml").unwrap();
    assert_eq!(
        v3[0].source(),
        "%START_TIME% %REQ(:AUTHORITY)% %DOWNSTREAM_PEER_URI_SAN% %REQ(X-FORWARDED-CLIENT-CERT)%\n"
    );

    let plain = load_file("plain.txt").unwrap();
    assert_eq!(names(&plain), ["custom"]);
    assert!(plain[0].source().starts_with("[%START_TIME%]") && plain[0].logs(Field::PeerUriSan));

    let quoted = load_file("quoted.txt").unwrap();
    assert_eq!(
        quoted[0].source(),
        "[%START_TIME%] \"%REQ(:METHOD)%\" %DOWNSTREAM_PEER_URI_SAN%\n"
    );

    let path = |name: &str| fixtures().join("files").join(name).display().to_string();
    match load_file("no-transport-evidence.txt") {
        Err(FormatError::NoTransportEvidence { name }) => {
            assert!(name.contains(&path("no-transport-evidence.txt")))
        }
        other => panic!("{other:?}"),
    }
    match load_file("bad-syntax.yaml") {
        Err(FormatError::File { path: p, message }) => {
            assert_eq!(p, path("bad-syntax.yaml"));
            assert!(message.contains("column 20"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    for missing in ["no-format.yaml", "does-not-exist.yaml"] {
        match load_file(missing) {
            Err(FormatError::File { path: p, .. }) => assert_eq!(p, path(missing)),
            other => panic!("{missing}: {other:?}"),
        }
    }
}

/// A tiny deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Builds a line for `tokens`, with values that stress the matcher (quotes,
/// pieces of the format's own literals, empty values, junk bytes).
fn synth_line(rng: &mut Rng, tokens: &[Token]) -> Vec<u8> {
    let literals: Vec<&[u8]> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Literal(l) => Some(&l[..]),
            Token::Operator(_) => None,
        })
        .collect();
    let mut line = Vec::new();
    for t in tokens {
        match t {
            Token::Literal(l) => line.extend_from_slice(l),
            Token::Operator(op) => match op.class() {
                operator::ValueClass::Number => {
                    let v = *rng.pick(&["-", "0", "200", "1100", "12345678901234567890"]);
                    line.extend_from_slice(v.as_bytes());
                }
                operator::ValueClass::Rfc3339 => {
                    let v = *rng.pick(&[
                        "2026-11-20T11:43:14.559Z",
                        "2026-11-20T11:43:14Z",
                        "2026-11-20T11:43:14.559123456+01:00",
                        "2026-11-20T11:43:14",
                    ]);
                    line.extend_from_slice(v.as_bytes());
                }
                operator::ValueClass::Token => {
                    // Mostly Envoy's own shapes; now and then a space or quote it never writes.
                    let v = if rng.below(16) == 0 {
                        *rng.pick(&["a\"b", "a b"])
                    } else {
                        *rng.pick(&[
                            "-",
                            "",
                            "spiffe://cluster.local/ns/a/sa/b",
                            "inbound|8080||",
                            "10.0.0.1:8080",
                            "true",
                        ])
                    };
                    line.extend_from_slice(v.as_bytes());
                }
                operator::ValueClass::Any => {
                    for _ in 0..rng.below(3) {
                        match rng.below(4) {
                            0 => {
                                let l = rng.pick(&literals);
                                let a = rng.below(l.len() + 1);
                                let b = a + rng.below(l.len() - a + 1);
                                line.extend_from_slice(&l[a..b]);
                            }
                            1 => line.push(*rng.pick(b"\"' -:]|[0\xff")),
                            _ => {
                                let v = *rng.pick(&[
                                    "-",
                                    "GET",
                                    "spiffe://cluster.local/ns/a/sa/b",
                                    r#"By=spiffe://a;Subject="";URI=spiffe://b"#,
                                    "10.0.0.1:8080",
                                    "inbound|8080||",
                                    "a b c",
                                ]);
                                line.extend_from_slice(v.as_bytes());
                            }
                        }
                    }
                }
            },
        }
    }
    // Damage some lines: cut, or overwrite one byte.
    match rng.below(6) {
        0 if !line.is_empty() => {
            let cut = rng.below(line.len());
            line.truncate(cut);
        }
        1 if !line.is_empty() => {
            let i = rng.below(line.len());
            line[i] = *rng.pick(b"\" x9-");
        }
        _ => {}
    }
    line
}

#[test]
fn fast_path_agrees_with_the_regex() {
    let mut formats: Vec<(String, Vec<Token>, LogFormat)> = Vec::new();
    let mut add = |name: &str, source: &str| {
        let f = LogFormat::compile(name, source).unwrap();
        formats.push((name.to_string(), tokenize(source).unwrap(), f));
    };
    for (name, def) in &builtin::BUILTINS {
        if let builtin::Definition::Text(source) = def {
            add(name, source);
        }
    }
    add(
        "numbers-next-to-digits",
        "%RESPONSE_CODE%.%BYTES_SENT%-%START_TIME%0%DURATION% %REQ(:PATH)%",
    );
    add(
        "free-text-next-to-its-separator",
        "%REQ(:METHOD)%/%REQ(:PATH)% %RESPONSE_CODE%",
    );
    add("no-head-free-tail", "%REQ(:METHOD)% x%REQ(:PATH)%");
    add("literal-only-tail", "a%RESPONSE_CODE%b%DURATION%");

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (name, tokens, format) in &formats {
        let t = text(format);
        let mut cache = t.new_cache();
        let (mut fast_hits, mut regex_hits, mut total) = (0, 0, 0);
        for _ in 0..4000 {
            let line = synth_line(&mut rng, tokens);
            let mut fast = Vec::new();
            let fast_ok = t.fast_match(&line, |i, a, b| fast.push((i, a, b)));
            let mut slow = Vec::new();
            let slow_ok = t.regex_match(&mut cache, &line, |i, a, b| slow.push((i, a, b)));
            total += 1;
            if fast_ok {
                fast_hits += 1;
                assert!(
                    slow_ok,
                    "{name}: fast path matched, regex did not: {:?}",
                    String::from_utf8_lossy(&line)
                );
                assert_eq!(fast, slow, "{name}: {:?}", String::from_utf8_lossy(&line));
            }
            if slow_ok {
                regex_hits += 1;
                // A full match implies the probe matches.
                assert!(
                    t.probe_matches(&mut cache, &line),
                    "{name}: {:?}",
                    String::from_utf8_lossy(&line)
                );
            }
        }
        assert!(
            regex_hits > total / 4,
            "{name}: only {regex_hits}/{total} lines matched at all"
        );
        // Only the built-ins are held to a share: the others are contrived to make the walk give up.
        // (Values stuffed with the format's own literals often need the regex's
        // second choice since tokens cannot absorb them; real lines rarely do.)
        if builtin::definition(name).is_some() {
            assert!(
                fast_hits * 10 > regex_hits * 6,
                "{name}: fast path took only {fast_hits} of {regex_hits}"
            );
        }
    }
}

/// One test per case file in `fixtures/formats/*.json`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// A built-in name, `auto`, or an Envoy format string.
    #[serde(default)]
    format: Option<String>,
    /// A format file, relative to `fixtures/formats/`.
    #[serde(default)]
    format_file: Option<String>,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    line: String,
    /// `access`, `malformed` or `not_access`.
    expect: String,
    /// The name of the format that must match.
    #[serde(default)]
    format: Option<String>,
    /// Raw values by field name; `null` means not logged or absent.
    #[serde(default)]
    fields: BTreeMap<String, Option<String>>,
    /// Expected `start_time_ms`; `null` means none.
    #[serde(default)]
    start_time_ms: Option<serde_json::Value>,
}

#[test]
fn case_files() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "case files missing: {files:?}");
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in &files {
        let file: CaseFile = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let formats = match (&file.format, &file.format_file) {
            (_, Some(f)) => select(None, Some(&fixtures().join(f))),
            (f, None) => select(f.as_deref(), None),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut parser = LineParser::new(formats.into());
        for case in &file.cases {
            ran += 1;
            let label = format!(
                "{}: {}",
                path.file_name().unwrap().to_string_lossy(),
                case.name
            );
            if let Err(why) = check_case(&mut parser, case) {
                failures.push(format!("{label}: {why}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check_case(parser: &mut LineParser, case: &Case) -> Result<(), String> {
    let names: Vec<String> = parser
        .formats()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let got = parser.parse(case.line.as_bytes());
    match (case.expect.as_str(), got) {
        ("access", Parsed::Access { entry, format }) => {
            if let Some(want) = &case.format
                && names[format] != *want
            {
                return Err(format!("matched {} instead of {want}", names[format]));
            }
            for (name, want) in &case.fields {
                let field = Field::ALL
                    .into_iter()
                    .find(|f| format!("{f:?}") == *name)
                    .ok_or_else(|| format!("unknown field {name}"))?;
                let got = entry
                    .raw(field)
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                if got != *want {
                    return Err(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
            if let Some(want) = &case.start_time_ms
                && entry.start_time_ms != want.as_i64()
            {
                return Err(format!(
                    "start_time_ms: got {:?}, want {want}",
                    entry.start_time_ms
                ));
            }
            Ok(())
        }
        ("malformed", Parsed::Malformed) | ("not_access", Parsed::NotAccess) => Ok(()),
        (want, got) => Err(format!("want {want}, got {got:?}")),
    }
}

/// Counts this thread's allocations, to hold the per-line path to zero.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        pub static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    // SAFETY: forwards to the system allocator unchanged; only counts.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn count() -> usize {
        ALLOCATIONS.with(Cell::get)
    }
}

#[test]
fn parsing_allocates_nothing_per_line() {
    let lines: Vec<Vec<u8>> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .flat_map(|p| {
            let file: CaseFile =
                serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
            file.cases.into_iter().map(|c| c.line.into_bytes())
        })
        .collect();
    let mut parser = parser_for(None);
    // Warm up: the first searches size the regex caches.
    for _ in 0..2 {
        for line in &lines {
            let _ = parser.parse(line);
        }
    }
    let mut checked = 0;
    for line in &lines {
        let before = counting::count();
        let parsed = parser.parse(line);
        let allocations = counting::count() - before;
        // serde_json boxes its errors: a damaged JSON line may allocate; nothing else may.
        if matches!(parsed, Parsed::Malformed) && line.starts_with(b"{") {
            continue;
        }
        checked += 1;
        assert_eq!(allocations, 0, "{}", String::from_utf8_lossy(line));
    }
    assert!(checked > 50, "only {checked} lines checked");
}

/// Quick throughput check: `cargo test --release --lib format::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let xfcc = r#"By=spiffe://cluster.local/ns/istioinaction/sa/web-api;Hash=cdd00c3f7a968b8a48d41d536839485fc8f3c049915794a7688dc595f114e18b;Subject="";URI=spiffe://cluster.local/ns/istioinaction/sa/sleep"#;
    let lab: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"[2026-11-20T11:{:02}:{:02}.{:03}Z] "GET /api/catalog/items/{i}?page=2 HTTP/1.1" 200 - "-" 0 {} {} {} "10.44.0.{}" mTLS_Origin: "spiffe://cluster.local/ns/istioinaction/sa/sleep" mTLS_Destination: "spiffe://cluster.local/ns/istioinaction/sa/web-api" cert: "{xfcc}" audit_flag: "false""#,
                i % 60,
                (i * 7) % 60,
                i % 1000,
                1000 + i,
                i % 50,
                i % 40,
                i % 250
            )
        })
        .collect();
    let istio: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"[2026-11-20T11:43:{:02}.{:03}Z] "GET /api/catalog/{i} HTTP/1.1" 200 - via_upstream - "-" 0 {} 12 11 "-" "curl/8.5.0" "4b3d0c1e-8f7a-4d6b-a1c2-5e4f3d2c{i:04}" "web-api.istioinaction:8080" "10.44.0.12:8080" inbound|8080|| 127.0.0.6:46591 10.44.0.12:8080 10.44.0.{}:52044 outbound_.8080_._.web-api.istioinaction.svc.cluster.local default"#,
                i % 60,
                i % 1000,
                300 + i,
                i % 250
            )
        })
        .collect();
    let json: Vec<String> = istio
        .iter()
        .enumerate()
        .map(|(i, _)| {
            format!(
                r#"{{"authority":"web-api.istioinaction:8080","bytes_received":0,"bytes_sent":{},"downstream_local_address":"10.44.0.12:8080","downstream_remote_address":"10.44.0.{}:52044","duration":12,"method":"GET","path":"/api/catalog/{i}","protocol":"HTTP/1.1","request_id":"4b3d0c1e","requested_server_name":"outbound_.8080_._.web-api.istioinaction.svc.cluster.local","response_code":200,"response_flags":"-","route_name":"default","start_time":"2026-11-20T11:43:14.559Z","upstream_cluster":"inbound|8080||","upstream_host":"10.44.0.12:8080","upstream_service_time":"11","user_agent":"curl/8.5.0","x_forwarded_for":null}}"#,
                300 + i,
                i % 250
            )
        })
        .collect();
    let cut: Vec<String> = lab.iter().map(|l| l[..l.len() - 30].to_string()).collect();
    let pilot: Vec<String> = (0..1000)
        .map(|i| format!("2026-11-20T11:43:14.{i:06}Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012"))
        .collect();
    let diag: Vec<String> = (0..1000)
        .map(|i| format!("[2026-11-20 11:43:14.{i:03}][21][warning][config] [external/envoy/source/extensions/config_subscription/grpc/grpc_stream.h:193] StreamAggregatedResources gRPC config stream to xds-grpc closed: 14, connection error"))
        .collect();
    let runs: [(&str, &str, &[String], usize); 8] = [
        ("lab lines, --log-format lab", "lab", &lab, 2000),
        ("lab lines, auto", "auto", &lab, 2000),
        ("istio lines, auto", "auto", &istio, 2000),
        ("istio-json lines, auto", "auto", &json, 500),
        ("istio-json lines, istio-json", "istio-json", &json, 500),
        ("truncated lab lines (malformed), auto", "auto", &cut, 20),
        ("pilot-agent lines (skipped), auto", "auto", &pilot, 500),
        ("Envoy diagnostics (skipped), auto", "auto", &diag, 100),
    ];
    for (label, set, lines, rounds) in runs {
        let mut parser = parser_for(Some(set));
        let bytes: usize = lines.iter().map(String::len).sum();
        let started = std::time::Instant::now();
        let mut counts = [0usize; 3];
        for _ in 0..rounds {
            for line in lines {
                match parser.parse(line.as_bytes()) {
                    Parsed::Access { entry, .. } => {
                        counts[0] += entry.start_time_ms.is_some() as usize
                    }
                    Parsed::Malformed => counts[1] += 1,
                    Parsed::NotAccess => counts[2] += 1,
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let n = (rounds * lines.len()) as f64;
        assert_eq!(
            counts.iter().sum::<usize>(),
            rounds * lines.len(),
            "{label}: {counts:?}"
        );
        println!(
            "{label}: {:.2} M lines/s, {:.0} MB/s ({} B/line; access/malformed/skipped {counts:?})",
            n / secs / 1e6,
            (rounds * bytes) as f64 / secs / 1e6,
            bytes / lines.len()
        );
    }
}
