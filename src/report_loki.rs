//! `report --loki`: the flags checked, the range fixed (the window plus the
//! coverage margin, as for the cluster), and Loki read line by line through
//! the pipeline — or, with `--pushdown`, counted by Loki.

use std::io::{self, IsTerminal};

use anyhow::{Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ReportArgs;
use strictly::aggregate::{AggregateConfig, Aggregator, Window};
use strictly::format::FormatSet;
use strictly::pipeline::{self, PipelineConfig};
use strictly::source::loki::{self, Auth, Client, LokiQuery, pushdown};

/// How far before the window Loki is read, to see whether each stream reaches back past its start.
const COVERAGE_MARGIN_MS: i64 = 3_600_000;

/// What `--loki` and its flags ask for.
pub struct LokiRequest {
    url: String,
    query: String,
    org_id: Option<String>,
    batch: u32,
    pushdown: bool,
}

/// What a Loki read produced.
pub struct LokiRun {
    pub aggregator: Aggregator,
    pub names: Vec<String>,
    /// Said in the report (push-down's hour granularity).
    pub hints: Vec<String>,
    /// The window judged (push-down moves it to whole hours).
    pub window: Window,
}

/// `--loki` and the flags that go with it; None without `--loki`.
pub fn source(args: &ReportArgs) -> Result<Option<LokiRequest>> {
    let Some(url) = args.loki.loki.clone() else {
        let store = args.elastic.elastic.is_some();
        if !store && args.elastic.pushdown {
            bail!("--pushdown needs a log store to count: add --loki URL or --elastic URL");
        }
        if !store && args.elastic.explain {
            bail!(
                "--explain shows what would be sent: add --loki URL, --elastic URL or --prometheus URL"
            );
        }
        return Ok(None);
    };
    if !args.files.is_empty() {
        bail!("--loki reads Loki, not files: drop the file arguments, or drop --loki");
    }
    if args.elastic.elastic.is_some() {
        bail!("--loki and --elastic: read one store at a time");
    }
    if args.elastic.explain && !args.elastic.pushdown {
        bail!("--explain with --loki prints the --pushdown queries: add --pushdown");
    }
    let refused = args
        .kube
        .cluster_only_flag()
        .filter(|f| *f != "-c/--container")
        .or(args.input.is_some().then_some("--input"))
        .or(args
            .max_log_requests
            .is_some()
            .then_some("--max-log-requests"));
    if let Some(flag) = refused {
        bail!("{flag} does not apply to --loki: select streams with --query (LogQL)");
    }
    let query = match &args.loki.query {
        Some(q) => q.clone(),
        None => default_query(&args.kube.namespaces, &args.kube.container()),
    };
    if args.loki.query.is_some()
        && (!args.kube.namespaces.is_empty() || args.kube.container.is_some())
    {
        bail!(
            "-n and -c build the default --query; with your own --query, put the namespace and container in it"
        );
    }
    let org_id = args
        .loki
        .loki_org_id
        .clone()
        .or_else(|| std::env::var("LOKI_ORG_ID").ok().filter(|v| !v.is_empty()));
    Ok(Some(LokiRequest {
        url,
        query,
        org_id,
        batch: args.loki.loki_batch,
        pushdown: args.elastic.pushdown,
    }))
}

/// `{container="istio-proxy"}`, with the namespaces of `-n`.
fn default_query(namespaces: &[String], container: &str) -> String {
    let ns = match namespaces {
        [] => String::new(),
        [one] => format!("namespace={one:?}, "),
        many => format!("namespace=~{:?}, ", many.join("|")),
    };
    format!("{{{ns}container={container:?}}}")
}

/// Reads Loki for the window ending at `until_ms` (else now) and returns the aggregate.
pub fn run(
    src: &LokiRequest,
    formats: &FormatSet,
    aggregate: AggregateConfig,
    config: &PipelineConfig,
    window_ms: i64,
    until_ms: Option<i64>,
    no_progress: bool,
) -> Result<LokiRun> {
    let end = until_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    if src.pushdown {
        return loki_pushdown(src, formats, aggregate, window_ms, end);
    }
    let window = Window {
        start_ms: end - window_ms,
        end_ms: end,
    };
    let aggregate = AggregateConfig {
        known_window: Some(window),
        ..aggregate
    };
    let q = LokiQuery {
        query: src.query.clone(),
        start_ns: (window.start_ms - COVERAGE_MARGIN_MS) as i128 * 1_000_000,
        // Loki's end is exclusive; the window's end is inclusive.
        end_ns: (window.end_ms as i128 + 1) * 1_000_000,
        batch: src.batch,
    };
    let client = Client::new(&src.url, src.org_id.clone(), Auth::from_env())?;
    let bar = progress(no_progress);
    let count = |n: u64| bar.inc(n);
    let mut source = loki::LokiSource::new(client, q, config.chunk_size, config.max_line, &count);
    let run = pipeline::run_source(&mut source, formats, &aggregate, config)?;
    bar.finish_and_clear();
    for w in &run.warnings {
        eprintln!("strictly: warning: {w}");
    }
    let (aggregator, names) = (run.aggregator, run.names);
    Ok(LokiRun {
        aggregator,
        names,
        hints: Vec::new(),
        window,
    })
}

/// `--pushdown --explain`: the queries push-down would run, on stdout.
pub fn explain(
    src: &LokiRequest,
    formats: &FormatSet,
    window_ms: i64,
    until_ms: Option<i64>,
) -> Result<()> {
    let end = until_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let window = pushdown::hour_window(end, window_ms);
    let plan = pushdown::plan(&src.query, formats, window)?;
    let ns = |ms: i64| ms as i128 * 1_000_000;
    println!(
        "# GET {}/loki/api/v1/query_range start={} end={} step=3600 (each query below)",
        src.url.trim_end_matches('/'),
        ns(window.start_ms),
        ns(window.end_ms)
    );
    for q in plan.explain() {
        println!("{q}");
    }
    Ok(())
}

/// `--pushdown`: Loki counts per hour, pod, caller and transport.
fn loki_pushdown(
    src: &LokiRequest,
    formats: &FormatSet,
    aggregate: AggregateConfig,
    window_ms: i64,
    end: i64,
) -> Result<LokiRun> {
    let window = pushdown::hour_window(end, window_ms);
    let plan = pushdown::plan(&src.query, formats, window)?;
    let aggregate = AggregateConfig {
        known_window: Some(window),
        ..aggregate
    };
    let mut agg = Aggregator::new(aggregate);
    let name = format!("loki {}", src.query);
    let mut client = Client::new(&src.url, src.org_id.clone(), Auth::from_env())?;
    pushdown::run(&mut client, &plan, formats, &mut agg, &name)?;
    let hint = format!(
        "push-down: Loki counted requests per hour, so the window is whole hours ({} to {}), requests are dated by when Loki received their line (not START_TIME), and coverage is judged to the hour",
        strictly::time::format_ms(window.start_ms),
        strictly::time::format_ms(window.end_ms)
    );
    Ok(LokiRun {
        aggregator: agg,
        names: vec![name],
        hints: vec![hint],
        window,
    })
}

/// A spinner in entries/s on stderr, only on a terminal.
fn progress(disabled: bool) -> ProgressBar {
    if disabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} Loki: {human_pos} entries ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::default_query;

    #[test]
    fn the_default_query_selects_the_proxy_container() {
        assert_eq!(
            default_query(&[], "istio-proxy"),
            r#"{container="istio-proxy"}"#
        );
        assert_eq!(
            default_query(&["a".into(), "b".into()], "istio-proxy"),
            r#"{namespace=~"a|b", container="istio-proxy"}"#
        );
    }
}
