//! Issue 7 item 27: the table a person reads — fits the terminal, says what
//! its numbers are, names what was folded, ends with the next step.

mod common;

use common::fixture;

use assert_cmd::Command;

fn table(args: &[&str], columns: &str) -> String {
    let out = Command::cargo_bin("strictly")
        .unwrap()
        .env("COLUMNS", columns)
        .env_remove("NO_COLOR")
        .args(["report"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().unwrap() < 2,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn issue_7_27_the_table_fits_the_terminal_and_wide_shows_everything() {
    let sample = fixture("sample/mesh.log");
    let s = sample.to_str().unwrap();
    let narrow = table(&[s, "-o", "table"], "90");
    let (rows, rest) = narrow.split_at(narrow.find("5 destinations").unwrap());
    for line in rows.lines() {
        assert!(
            line.chars().count() <= 90,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    assert!(rows.starts_with(" DESTINATION"), "{rows}");
    assert!(
        rows.contains("MTLS SHARE"),
        "the mTLS column says it is a share"
    );
    // Names are never cut to fit.
    assert!(rows.contains("istioinaction/purchase-history "), "{rows}");
    assert!(
        !rows.contains("LAST PLAINTEXT"),
        "narrow: the reason says when"
    );
    assert!(!rows.contains('\x1b'), "no colour off a terminal");
    // The summary ends with the next step.
    assert!(
        rest.contains(
            "STRICT is safe for: istioinaction/purchase-history, istioinaction/recommendation"
        ),
        "{rest}"
    );
    assert!(
        rest.contains("blocked by 10.128.0.42: default/httpbin"),
        "{rest}"
    );
    assert!(
        rest.contains("insufficient: istioinaction/catalog"),
        "{rest}"
    );

    let wide = table(&[s, "-o", "wide"], "90");
    let header = wide.lines().next().unwrap();
    for col in [
        "AUDITED",
        "XFCC FORGED",
        "LAST PLAINTEXT",
        "COVERAGE FROM",
        "REASON",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let httpbin = wide
        .lines()
        .find(|l| l.contains("default/httpbin"))
        .unwrap();
    assert!(httpbin.contains("2026-11-20T10:54:03.153Z"), "{httpbin}");
    assert_eq!(
        httpbin.matches("2026-11-20T10:54:03.153Z").count(),
        1,
        "the reason does not repeat it: {httpbin}"
    );
}

#[test]
fn issue_7_27_one_destination_and_the_folded_callers_row() {
    // One destination, 6 plaintext callers, 2 rows shown: the rest fold into a row that says so.
    let mut log = String::new();
    for (i, minute) in (10..16).enumerate() {
        log.push_str(&format!(
            "[2026-11-20T11:{minute}:00.000Z] \"GET / HTTP/1.1\" 200 - \"-\" 0 1100 5 4 \"10.0.0.{}\" mTLS_Origin: \"-\" mTLS_Destination: \"-\" cert: \"-\" audit_flag: \"-\"\n",
            [9, 10, 100, 11, 2, 20][i]
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pt.log");
    std::fs::write(&path, log).unwrap();
    let out = table(
        &[
            path.to_str().unwrap(),
            "-o",
            "table",
            "--destination",
            "ns/app",
            "--max-sources",
            "2",
        ],
        "200",
    );
    assert!(out.contains("1 destination:"), "{out}");
    // Numeric order among equal counts: 10.0.0.2 before 10.0.0.9.
    let a = out.find("← 10.0.0.2 ").expect(&out);
    let b = out.find("← 10.0.0.9 ").expect(&out);
    assert!(a < b, "{out}");
    assert!(
        out.contains("← 4 other callers (folded: raise --max-sources to name them)"),
        "{out}"
    );
    assert!(out.contains("blocked by 10.0.0.2: ns/app"), "{out}");
    assert!(out.contains("0 mTLS, 4 plaintext"), "{out}");
}
