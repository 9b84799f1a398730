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

/// One replica read through the API server's pod proxy.
#[derive(Debug)]
pub struct ReplicaDumps {
    /// `NS/NAME` of the workload.
    pub workload: String,
    /// The pod's name.
    pub replica: String,
    /// Both dumps, or why they could not be read.
    pub dumps: Result<(StatsDump, StatsDump), String>,
}

/// The path of a pod's Envoy admin `/stats` through the API server
/// (`pods/proxy` get: least privilege, no exec).
pub fn proxy_path(namespace: &str, pod: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods/{pod}:15000/proxy/stats")
}

async fn fetch(client: &kube::Client, namespace: &str, pod: &str) -> Result<StatsDump, String> {
    let request = http::Request::get(proxy_path(namespace, pod))
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = client.request_text(request).await.map_err(|e| {
        crate::source::kube_error::KubeError::from_kube(
            format!("get pods/proxy of {namespace}/{pod} (Envoy /stats)"),
            e,
        )
        .to_string()
    })?;
    let mut dumps = parse_dumps(&text).map_err(|e| format!("{namespace}/{pod} /stats: {e}"))?;
    match dumps.len() {
        1 => Ok(dumps.pop().unwrap_or_default()),
        n => Err(format!("{namespace}/{pod} /stats: {n} dumps in one answer")),
    }
}

/// Reads every selected replica's `/stats` twice, `interval` apart (all
/// replicas at once, so the interval is the same for each).
pub fn read_cluster(
    access: &crate::source::kube::KubeAccess,
    selection: &crate::source::kube::KubeSelection,
    interval: std::time::Duration,
) -> Result<Vec<ReplicaDumps>, crate::source::kube_error::KubeError> {
    use crate::source::kube_error::KubeError;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KubeError::Config(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let (client, default_ns) = crate::source::kube::client(access).await?;
        let (targets, _) = crate::source::kube::select(&client, selection, &default_ns).await?;
        let first = futures::future::join_all(
            targets
                .iter()
                .map(|t| fetch(&client, &t.meta.namespace, &t.meta.pod)),
        )
        .await;
        tokio::time::sleep(interval).await;
        let second = futures::future::join_all(
            targets
                .iter()
                .map(|t| fetch(&client, &t.meta.namespace, &t.meta.pod)),
        )
        .await;
        Ok(targets
            .iter()
            .zip(first.into_iter().zip(second))
            .map(|(t, (a, b))| ReplicaDumps {
                workload: format!(
                    "{}/{}",
                    t.meta.namespace,
                    t.meta
                        .workload
                        .clone()
                        .unwrap_or_else(|| t.meta.pod.clone())
                ),
                replica: t.meta.pod.clone(),
                dumps: a.and_then(|a| b.map(|b| (a, b))),
            })
            .collect())
    })
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
