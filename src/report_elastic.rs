//! `report --elastic`: the Elasticsearch / OpenSearch read (point in time or
//! scroll, or push-down), wired to `report`'s flags.

use super::*;

/// What `report --elastic` read: the aggregate, the input's name, the window's end.
pub(crate) struct ElasticRead {
    pub(crate) aggregator: strictly::aggregate::Aggregator,
    pub(crate) name: String,
    pub(crate) end_ms: i64,
    /// The window judged (whole hours with --pushdown).
    pub(crate) window_ms: i64,
    pub(crate) hint: Option<String>,
}

/// `report --elastic`: like the cluster, read as of now unless --until says
/// otherwise, from a margin before the window so coverage is judged per
/// stream; line by line, or counted by the store (`--pushdown`, whole hours).
/// None when `--explain` printed the request instead.
pub(crate) fn elastic_report(
    args: &ReportArgs,
    formats: &strictly::format::FormatSet,
    aggregate: AggregateConfig,
    pipeline: &PipelineConfig,
    window_ms: i64,
    until_ms: Option<i64>,
) -> Result<Option<ElasticRead>> {
    use strictly::source::elastic::{self, pushdown};
    const HOUR_MS: i64 = 3_600_000;
    let mut end = until_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
    let mut start = end - window_ms;
    let mut hint = None;
    if args.elastic.pushdown {
        // Counts come per hour: judge whole hours, and say so.
        end = end.div_euclid(HOUR_MS) * HOUR_MS;
        start = end - (window_ms + HOUR_MS - 1).div_euclid(HOUR_MS) * HOUR_MS;
        hint = Some(format!(
            "push-down: the store counted per hour, so the window judged is whole hours, {} to {}",
            time::format_ms(start),
            time::format_ms(end)
        ));
    }
    let config = args
        .elastic
        .config(start - COVERAGE_MARGIN_S * 1000, end)?
        .context("--elastic")?;
    let aggregate = AggregateConfig {
        known_window: Some(Window {
            start_ms: start,
            end_ms: end,
        }),
        ..aggregate
    };
    let name = format!("{}/{}", config.url, config.index);
    let format = if args.elastic.pushdown {
        match &formats[..] {
            [one] => Some(one),
            _ => bail!(
                "--pushdown: the store runs one format; name it with --log-format (lab, istio, ..) or --log-format-file"
            ),
        }
    } else {
        None
    };
    if args.elastic.explain {
        let body = match format {
            Some(f) => pushdown::request_body(&config, f, None).map_err(anyhow::Error::msg)?,
            None => elastic::pit_search_body(&config, "<the id POST /INDEX/_pit answers>"),
        };
        let path = if format.is_some() {
            format!("/{}/_search", config.index)
        } else {
            "/_search".into()
        };
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "POST {}{path}\n{}",
            config.url,
            serde_json::to_string_pretty(&body)?
        )?;
        return Ok(None);
    }
    let bar = entries_bar(args.no_progress);
    let progress = |n: u64| bar.inc(n);
    let aggregator = match format {
        Some(f) => {
            let mut agg = strictly::aggregate::Aggregator::new(aggregate);
            pushdown::read(&config, f, &mut agg, &name, &progress)?;
            agg
        }
        None => pipeline::run_with(
            formats,
            &aggregate,
            pipeline,
            vec![name.clone()].into(),
            |emit| {
                elastic::read_chunks(
                    &config,
                    0,
                    pipeline.chunk_size,
                    pipeline.max_line,
                    &progress,
                    emit,
                )
                .map(|_| ())
            },
        )?,
    };
    bar.finish_and_clear();
    Ok(Some(ElasticRead {
        aggregator,
        name,
        end_ms: end,
        window_ms: end - start,
        hint,
    }))
}
