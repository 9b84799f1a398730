//! Kibana / OpenSearch Dashboards CSV exports (Discover → Share → "Generate CSV").
//!
//! Kibana's CSV writer (elastic/kibana `kbn-generate-csv` `generate_csv.ts`,
//! `kbn-csv-utils` `escape_value.ts`) writes a header row of the column names
//! (a field with a custom label as `Label (field)`), then one row per hit,
//! each line ending in `\n`: values are quoted when they hold anything but
//! letters and digits (`csv:quoteValues`, on by default) with inner quotes
//! doubled, a missing value is `-`, an array is joined with `, `, and with
//! `xpack.reporting.csv.escapeFormulaValues` a value starting `= + - @` gets
//! a `'` in front. The separator is `csv:separator` (`,` by default).
//!
//! Columns are found by header name, as Filebeat / Elastic Agent
//! (`kubernetes.pod.name`, `message`, ..) or Fluent Bit / Fluentd
//! (`kubernetes.pod_name`, `log`, ..) name the fields.
//!
//! Dates: Kibana formats them with `dateFormat` (`MMM D, YYYY @ HH:mm:ss.SSS`
//! by default) in the browser's time zone and writes no zone. A write time
//! read in the wrong zone would move the window by hours, so such a date is
//! not used: each request is dated by its own START_TIME. A date with a zone
//! (`dateFormat` set to ISO 8601 with `Z`) is the entry's write time.

use super::Entry;

/// Separators Kibana's `csv:separator` is commonly set to, in the order tried.
const SEPARATORS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Where the fields strictly reads sit in a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Columns {
    message: usize,
    pod: Option<usize>,
    namespace: Option<usize>,
    container: Option<usize>,
    time: Option<usize>,
}

/// A header cell's field name: Kibana's formula escape and custom label taken off.
fn field_name(cell: &str) -> &str {
    let cell = cell.trim();
    let cell = match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    };
    // `Custom label (field.name)`.
    if let Some(open) = cell.rfind(" (")
        && cell.ends_with(')')
    {
        return &cell[open + 2..cell.len() - 1];
    }
    cell
}

/// The columns of a header row, if it names a log line and a pod or a time.
fn columns(header: &csv::StringRecord) -> Option<Columns> {
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|c| field_name(c) == *n))
    };
    let c = Columns {
        message: find(&["message", "log", "event.original"])?,
        pod: find(&["kubernetes.pod.name", "kubernetes.pod_name"]),
        namespace: find(&[
            "kubernetes.namespace",
            "kubernetes.namespace_name",
            "kubernetes.namespace.name",
        ]),
        container: find(&["kubernetes.container.name", "kubernetes.container_name"]),
        time: find(&["@timestamp", "time", "timestamp"]),
    };
    (c.pod.is_some() || c.time.is_some()).then_some(c)
}

fn reader(data: &[u8], separator: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .has_headers(true)
        .from_reader(data)
}

/// The separator and columns of a Kibana CSV export, recognised by its header line.
fn recognise(data: &[u8]) -> Option<(u8, Columns)> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let line = &data[..memchr::memchr(b'\n', data).unwrap_or(data.len())];
    SEPARATORS.iter().find_map(|&sep| {
        let header = reader(line, sep).headers().ok()?.clone();
        (header.len() > 1)
            .then(|| columns(&header))
            .flatten()
            .map(|c| (sep, c))
    })
}

/// Returns true if and only if `head` (the input's first bytes) starts with a
/// Kibana CSV header naming a log-line column and a pod or time column.
pub fn is_csv_header(head: &[u8]) -> bool {
    recognise(head).is_some()
}

/// A cell's value: `-` is Kibana's "no value", a formula escape is taken off.
fn value(cell: &str) -> Option<&str> {
    if cell.is_empty() || cell == "-" {
        return None;
    }
    Some(match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    })
}

/// Walks a Kibana CSV export and calls `entry` per row.
pub fn parse_csv(doc: &[u8], entry: &mut dyn FnMut(Entry) -> bool) -> Result<(), String> {
    let (separator, cols) = recognise(doc).ok_or(
        "not a Kibana CSV export: the header names no `message` or `log` column with a pod or time column",
    )?;
    let doc = doc.strip_prefix(b"\xef\xbb\xbf").unwrap_or(doc);
    let mut rows = reader(doc, separator);
    let mut record = csv::StringRecord::new();
    loop {
        match rows.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(format!("not valid CSV: {e}")),
        }
        let row = record.position().map_or(0, |p| p.line());
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).and_then(value);
        let Some(line) = get(Some(cols.message)) else {
            return Err(format!(
                "line {row}: no value in the `{}` column: is this an export of a log index?",
                rows.headers()
                    .ok()
                    .and_then(|h| h.get(cols.message))
                    .map_or("message", field_name)
            ));
        };
        let timestamp_ms = get(cols.time).and_then(|t| {
            // Only a time that says its zone (see the module doc).
            let zoned = t.ends_with(['Z', 'z']) || t.rfind(['+', '-']).is_some_and(|i| i > 10);
            zoned
                .then(|| crate::time::parse_rfc3339_ms(t.as_bytes()))
                .flatten()
        });
        let e = Entry {
            namespace: get(cols.namespace).map(str::to_string),
            pod: get(cols.pod).map(str::to_string),
            container: get(cols.container).map(str::to_string),
            timestamp_ms,
            line: line.to_string(),
        };
        if !entry(e) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(doc: &str) -> Result<Vec<Entry>, String> {
        let mut out = Vec::new();
        parse_csv(doc.as_bytes(), &mut |e| {
            out.push(e);
            true
        })?;
        Ok(out)
    }

    #[test]
    fn columns_by_name_with_doubled_quotes() {
        let doc = "\"@timestamp\",\"kubernetes.pod.name\",message\n\
                   \"2026-11-20T10:00:01.250Z\",\"web-1\",\"[x] \"\"GET / HTTP/1.1\"\" 200\"\n";
        let e = entries(doc).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].pod.as_deref(), Some("web-1"));
        assert_eq!(e[0].line, "[x] \"GET / HTTP/1.1\" 200");
        assert_eq!(e[0].timestamp_ms, Some(1_795_168_801_250));
    }

    #[test]
    fn fluent_bit_names_custom_labels_semicolons_and_formula_escapes() {
        let doc = "'@timestamp;Pod (kubernetes.pod_name);kubernetes.namespace_name;log\n\
                   \"Nov 20, 2026 @ 10:00:01.250\";web-1;-;\"'-x\"\n";
        let e = entries(doc).unwrap();
        assert_eq!(e[0].pod.as_deref(), Some("web-1"));
        assert_eq!(e[0].namespace, None, "`-` is no value");
        assert_eq!(e[0].line, "-x");
        assert_eq!(
            e[0].timestamp_ms, None,
            "a date without a zone is not a write time"
        );
    }

    #[test]
    fn headers_are_told_from_log_lines() {
        assert!(is_csv_header(b"\"@timestamp\",message\n"));
        assert!(is_csv_header(b"\xef\xbb\xbfkubernetes.pod.name,log\n"));
        assert!(!is_csv_header(b"message,other\n"), "no pod, no time");
        assert!(!is_csv_header(
            b"[2026-11-20T10:00:00.000Z] \"GET / HTTP/1.1\" 200 message\n"
        ));
        assert!(!is_csv_header(b"message\n"));
    }

    #[test]
    fn a_row_without_the_message_names_its_line() {
        let err = entries("\"@timestamp\",message\n\"2026-11-20T10:00:01Z\",-\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("`message`"), "{err}");
    }
}
