//! `report --elastic`: the flags that point `report` at Elasticsearch / OpenSearch, and their checks.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use strictly::source::elastic::{Auth, ElasticConfig, Retry};
use strictly::source::export::elastic::FieldNames;

/// Elasticsearch / OpenSearch (`--elastic URL --index PATTERN`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Elasticsearch / OpenSearch")]
pub struct ElasticArgs {
    /// Read the window from this Elasticsearch or OpenSearch (`https://es.example:9200`);
    /// auth from ELASTIC_API_KEY, or ELASTIC_USER and ELASTIC_PASSWORD.
    #[arg(long, value_name = "URL", requires = "index")]
    pub elastic: Option<String>,

    /// Index pattern to read (`logs-*`, `filebeat-*,logstash-*`).
    #[arg(long, value_name = "PATTERN", requires = "elastic")]
    pub index: Option<String>,

    /// Field holding the log line [default: message, else log, else event.original].
    #[arg(long, value_name = "FIELD", requires = "elastic")]
    pub elastic_message_field: Option<String>,

    /// Field holding the pod name [default: kubernetes.pod.name, else kubernetes.pod_name].
    #[arg(long, value_name = "FIELD", requires = "elastic")]
    pub elastic_pod_field: Option<String>,

    /// Field holding the namespace [default: kubernetes.namespace, else kubernetes.namespace_name].
    #[arg(long, value_name = "FIELD", requires = "elastic")]
    pub elastic_namespace_field: Option<String>,

    /// Field holding the container name [default: kubernetes.container.name, else kubernetes.container_name].
    #[arg(long, value_name = "FIELD", requires = "elastic")]
    pub elastic_container_field: Option<String>,

    /// Field holding the time the line was written; the query's range and sort use it.
    #[arg(long, value_name = "FIELD", default_value = "@timestamp")]
    pub elastic_timestamp_field: String,

    /// Only documents matching this Lucene query (`kubernetes.container.name:istio-proxy`).
    #[arg(long, value_name = "QUERY", requires = "elastic")]
    pub elastic_query: Option<String>,

    /// Hits (or, with --pushdown, buckets) per request (at most 10000, the store's index.max_result_window).
    #[arg(long, value_name = "N", default_value_t = 5000, requires = "elastic")]
    pub elastic_page_size: usize,

    /// Let the store count per hour (Loki: LogQL count_over_time over a regexp of
    /// the Envoy format; Elasticsearch: a composite aggregation over grok runtime
    /// fields); strictly judges the counts (windows at hour granularity).
    #[arg(long)]
    pub pushdown: bool,

    /// Print the queries (Loki, Prometheus) or search request body (Elasticsearch)
    /// --pushdown or the read would send, and exit without sending them.
    #[arg(long)]
    pub explain: bool,

    /// PEM file of the CA that signed the store's certificate (Elasticsearch 8 makes its own: http_ca.crt).
    #[arg(long, value_name = "FILE", requires = "elastic")]
    pub elastic_ca_cert: Option<PathBuf>,
}

impl ElasticArgs {
    /// The read `--elastic` asks for, over `from_ms..=to_ms`.
    pub fn config(&self, from_ms: i64, to_ms: i64) -> Result<Option<ElasticConfig>> {
        let Some(url) = &self.elastic else {
            return Ok(None);
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--elastic: {url:?} is not an http:// or https:// URL");
        }
        let index = self.index.clone().unwrap_or_default();
        if index.is_empty() || index.contains(['/', ' ', '?', '#']) {
            bail!("--index: {index:?} is not an index pattern (logs-*, filebeat-*,logstash-*)");
        }
        if !(1..=10_000).contains(&self.elastic_page_size) {
            bail!(
                "--elastic-page-size: {} is not between 1 and 10000 (the store's index.max_result_window)",
                self.elastic_page_size
            );
        }
        let mut fields = FieldNames::default();
        for (flag, given, slot) in [
            (
                "--elastic-message-field",
                &self.elastic_message_field,
                &mut fields.message,
            ),
            (
                "--elastic-pod-field",
                &self.elastic_pod_field,
                &mut fields.pod,
            ),
            (
                "--elastic-namespace-field",
                &self.elastic_namespace_field,
                &mut fields.namespace,
            ),
            (
                "--elastic-container-field",
                &self.elastic_container_field,
                &mut fields.container,
            ),
        ] {
            if let Some(name) = given {
                if name.is_empty() {
                    bail!("{flag}: empty field name");
                }
                *slot = vec![name.clone()];
            }
        }
        if self.elastic_timestamp_field.is_empty() {
            bail!("--elastic-timestamp-field: empty field name");
        }
        // The range and sort field is the write time first; the defaults stay as fallbacks.
        fields
            .timestamp
            .retain(|f| *f != self.elastic_timestamp_field);
        fields
            .timestamp
            .insert(0, self.elastic_timestamp_field.clone());
        let auth = Auth::from_env().map_err(|e| anyhow::anyhow!("--elastic: {e}"))?;
        Ok(Some(ElasticConfig {
            url: url.trim_end_matches('/').to_string(),
            index,
            fields,
            timestamp_field: self.elastic_timestamp_field.clone(),
            query: self.elastic_query.clone(),
            from_ms,
            to_ms,
            page_size: self.elastic_page_size,
            auth,
            ca_cert: self.elastic_ca_cert.clone(),
            retry: Retry::default(),
        }))
    }
}
