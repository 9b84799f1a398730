//! Envoy `/stats` text dumps (`curl localhost:15000/stats`): `name: value`
//! per line, counters and gauges as integers, histograms as quantile lists
//! (skipped). Two dumps of one replica taken apart in time are the evidence
//! of `strictly stats` (issue 9 item 3).
//!
//! One input may hold both dumps back to back (`curl …/stats; sleep 60; curl
//! …/stats`): the second dump begins at the first stat name seen again.

use std::collections::BTreeMap;

/// One `/stats` dump: integer stats by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsDump {
    pub values: BTreeMap<String, u64>,
}

/// Why a dump could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatsError {
    #[error("line {line}: not an Envoy /stats line (NAME: VALUE): {text}")]
    NotStats { line: usize, text: String },
    #[error("no Envoy /stats lines")]
    Empty,
    #[error(
        "{0} /stats dumps (a dump begins where a stat name repeats): give two, taken --interval apart"
    )]
    DumpCount(usize),
}

/// How much of a bad line an error quotes.
const QUOTE: usize = 120;

/// Parses one or more dumps from `text`; each begins where a name repeats.
pub fn parse_dumps(text: &str) -> Result<Vec<StatsDump>, StatsError> {
    let mut dumps: Vec<StatsDump> = Vec::new();
    let mut current = StatsDump::default();
    let mut seen_any = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        // Envoy writes `name: value`; a name has no blanks and never starts
        // like a log line's timestamp or a JSON document.
        let Some((name, value)) = line.split_once(": ") else {
            return Err(StatsError::NotStats {
                line: i + 1,
                text: line.chars().take(QUOTE).collect(),
            });
        };
        let name = name.trim();
        if name.is_empty()
            || name.contains(char::is_whitespace)
            || name.starts_with(['[', '{', '"'])
        {
            return Err(StatsError::NotStats {
                line: i + 1,
                text: line.chars().take(QUOTE).collect(),
            });
        }
        seen_any = true;
        if current.values.contains_key(name) {
            dumps.push(std::mem::take(&mut current));
        }
        // Histograms (`P0(nan,0) …`, `No recorded values`) and text stats are not counters.
        if let Ok(v) = value.trim().parse::<u64>() {
            current.values.insert(name.to_string(), v);
        } else {
            // Still a name of this dump: a repeat of it starts the next one.
            current.values.insert(name.to_string(), u64::MAX);
        }
    }
    if !seen_any {
        return Err(StatsError::Empty);
    }
    dumps.push(current);
    for d in &mut dumps {
        d.values.retain(|_, v| *v != u64::MAX);
    }
    Ok(dumps)
}

/// Exactly two dumps (before, after) from one input, or one from each of two inputs.
pub fn snapshot_pair(texts: &[&str]) -> Result<(StatsDump, StatsDump), StatsError> {
    let mut dumps = Vec::new();
    for t in texts {
        dumps.extend(parse_dumps(t)?);
    }
    if dumps.len() != 2 {
        return Err(StatsError::DumpCount(dumps.len()));
    }
    let after = dumps.pop().unwrap_or_default();
    let before = dumps.pop().unwrap_or_default();
    Ok((before, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_dumps_back_to_back_split_where_a_name_repeats() {
        let text = "a.b: 1\nc: P0(nan,0) P25(nan,0)\nd: 2\na.b: 5\nc: No recorded values\nd: 7\n";
        let dumps = parse_dumps(text).unwrap();
        assert_eq!(dumps.len(), 2);
        assert_eq!(dumps[0].values["a.b"], 1);
        assert_eq!(dumps[1].values["d"], 7);
        assert!(!dumps[1].values.contains_key("c"));
    }

    #[test]
    fn bad_lines_and_counts_are_errors() {
        assert!(matches!(
            parse_dumps("hello world\n"),
            Err(StatsError::NotStats { line: 1, .. })
        ));
        assert_eq!(parse_dumps("\n\n"), Err(StatsError::Empty));
        assert_eq!(snapshot_pair(&["a: 1\n"]), Err(StatsError::DumpCount(1)));
        assert!(snapshot_pair(&["a: 1\n", "a: 2\n"]).is_ok());
    }
}
