//! Loki's metric answer: a `query_range` matrix, as push-down reads it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One series of a matrix: its labels and (span end ms, count) points.
pub type Series = (BTreeMap<String, String>, Vec<(i64, u64)>);

/// Parses a `query_range` matrix response: series labels and (ms, count) points.
pub fn parse_matrix(doc: &[u8]) -> Result<Vec<Series>, String> {
    #[derive(Deserialize)]
    struct Page {
        status: String,
        #[serde(default)]
        error: Option<String>,
        data: Option<Data>,
    }
    #[derive(Deserialize)]
    struct Data {
        #[serde(rename = "resultType")]
        result_type: String,
        result: Vec<Sample>,
    }
    #[derive(Deserialize)]
    struct Sample {
        metric: BTreeMap<String, String>,
        values: Vec<(f64, String)>,
    }
    let page: Page =
        serde_json::from_slice(doc).map_err(|e| format!("not a Loki matrix response: {e}"))?;
    if page.status != "success" {
        return Err(format!(
            "status {}: {}",
            page.status,
            page.error.unwrap_or_default()
        ));
    }
    let data = page.data.ok_or("a response without data")?;
    if data.result_type != "matrix" {
        return Err(format!(
            "a `{}` result where a matrix was asked for",
            data.result_type
        ));
    }
    data.result
        .into_iter()
        .map(|s| {
            let points = s
                .values
                .into_iter()
                .map(|(t, v)| {
                    let n: f64 = v.parse().map_err(|_| format!("{v:?} is not a count"))?;
                    if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
                        return Err(format!("{v:?} is not a count"));
                    }
                    Ok(((t * 1000.0).round() as i64, n as u64))
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok((s.metric, points))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_parse_and_counts_must_be_whole() {
        let doc = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"pod":"a"},"values":[[1795132800,"3"],[1795136400.5,"1"]]}]}}"#;
        let m = parse_matrix(doc).unwrap();
        assert_eq!(m[0].1, [(1_795_132_800_000, 3), (1_795_136_400_500, 1)]);
        let bad = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"NaN"]]}]}}"#;
        assert!(parse_matrix(bad).is_err());
    }
}
