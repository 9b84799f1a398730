//! Command-line interface: what the user types, parsed and validated into the library's configs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use strictly::envelope::InputKind;
use strictly::render::OutputKind;

const TOP_EXAMPLES: &str = "\
Examples:
  kubectl logs -n istioinaction deploy/web-api -c istio-proxy | strictly report
  strictly report -n istioinaction --since 24h          # every replica, from the cluster
  strictly watch -n istioinaction --listen 127.0.0.1:9090

See `strictly report --help`, `strictly watch --help`, `strictly policy --help`
and `strictly instrument --help`.";

const REPORT_EXAMPLES: &str = "\
Examples:
  # One pod's log, straight from kubectl
  kubectl logs -n istioinaction deploy/web-api -c istio-proxy | strictly report

  # Every replica, with pod names and timestamps, over the last day
  kubectl logs -n istioinaction -l app=web-api -c istio-proxy --prefix --timestamps --since=24h \\
    | strictly report -n istioinaction --window 24h

  # Saved logs (gzip is detected), JSON for scripts, a fixed window end for CI
  strictly report web-api-*.log.gz --output json --until 2026-11-20T12:00:00Z

  # Your own access-log format, taken from the EnvoyFilter that installs it
  strictly report --log-format-file labs/06/web-api-access-logging-audit.yaml dump.txt

  # Straight from the cluster: every replica's istio-proxy log, CI-gate style
  strictly report -n istioinaction --since 24h -o json
  strictly report -n istioinaction deploy/web-api deploy/recommendation
  strictly report -A -l app=web-api --context prod

  # Straight from Loki (tenant: LOKI_ORG_ID; credentials: LOKI_TOKEN, or LOKI_USER/LOKI_PASSWORD)
  strictly report --loki http://loki-gateway.monitoring -n istioinaction --since 7d
  strictly report --loki http://loki:3100 --query '{cluster=\"prod\",container=\"istio-proxy\"}'
  # Let Loki count (hour-granular); --explain prints the LogQL and runs nothing
  strictly report --loki http://loki-gateway.monitoring -n istioinaction --pushdown
  strictly report --loki http://loki-gateway.monitoring -n istioinaction --pushdown --explain

  # From Elasticsearch / OpenSearch (Filebeat or Fluent Bit documents), the last 7 days
  ELASTIC_API_KEY=... strictly report --elastic https://es.example:9200 --index 'logs-*' --window 7d

  # From Istio's standard metrics in Prometheus (no access log needed)
  strictly report --prometheus http://prometheus.istio-system:9090 -n istioinaction --explain

Input: --loki, --elastic or --prometheus when given; else files when given; else the cluster when -A, -l, --context, --kubeconfig or a
workload (deploy/NAME) is given, or -n with nothing piped in; else stdin.

Exit status: 0 every destination is ready; 1 some destination is blocked or
has insufficient evidence (or no inbound request was found); 2 usage or input error;
3 some destination is regressed (STRICT now refuses plaintext callers).";

/// Is it safe to switch this workload to STRICT mTLS yet? strictly reads
/// istio-proxy access logs and answers per workload: ready, blocked (with the
/// plaintext callers), or insufficient evidence.
#[derive(Debug, Parser)]
#[command(name = "strictly", version, propagate_version = true, after_help = TOP_EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read access logs once and print a verdict per destination workload.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
    /// Follow every selected pod's istio-proxy log and keep the verdicts current.
    #[command(
        after_help = WATCH_EXAMPLES,
        mut_arg("namespaces", |a| a.help("Namespace to follow (repeatable) [default: the context's namespace]"))
    )]
    Watch(WatchArgs),
    /// Write PeerAuthentication STRICT policies for the ready workloads (YAML for kubectl apply).
    #[command(after_help = POLICY_EXAMPLES)]
    Policy(PolicyArgs),
    /// Write the Istio manifests that make workloads' sidecars log what strictly needs.
    #[command(after_help = INSTRUMENT_EXAMPLES)]
    Instrument(InstrumentArgs),
    /// Judge a workload from Envoy's /stats counters (no access log needed).
    #[command(after_help = STATS_EXAMPLES)]
    Stats(StatsArgs),
}

const STATS_EXAMPLES: &str = "\
Examples:
  # Two dumps of one replica a minute apart, back to back in one file
  (kubectl exec -n istioinaction deploy/web-api -c istio-proxy -- curl -s localhost:15000/stats
   sleep 60
   kubectl exec -n istioinaction deploy/web-api -c istio-proxy -- curl -s localhost:15000/stats) \\
    | strictly stats --destination istioinaction/web-api

  # Or two files: before, after
  strictly stats before.txt after.txt --destination istioinaction/web-api -o json

  # Every replica through the API server's pod proxy (RBAC: get pods, get pods/proxy)
  strictly stats -n istioinaction deploy/web-api --interval 5m

Evidence: the rise of listener.0.0.0.0_15006.downstream_cx_total (inbound
connections) and of listener.0.0.0.0_15006.ssl.handshake (mTLS); inbound
connections without a handshake are plaintext. The sidecar keeps these stats
only with the pod annotation
  sidecar.istio.io/statsInclusionPrefixes: \"tls_inspector,listener.0.0.0.0_15006\"
(without it the verdict is insufficient and the hint says so).

Exit status: 0 ready; 1 blocked or insufficient; 2 usage or input error.";

/// `strictly stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One file (or stdin: none or `-`) holding two /stats dumps back to back (the second begins where a stat name repeats), or two files: before, after. Or workloads (deploy/NAME) to read from the cluster.
    #[arg(value_name = "FILE|WORKLOAD")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// From the cluster: time between the two /stats reads of every replica.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub interval: String,
    /// The workload the dumps were taken from, NAMESPACE/NAME [default: the first file's name, or stdin].
    #[arg(long, value_name = "NS/NAME")]
    pub destination: Option<String>,
    /// Fewer TLS handshakes than this in the interval is insufficient evidence.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub min_requests: u64,
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    pub output: Option<OutputKind>,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Where in the cluster to read (kubectl's flags).
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// Namespace to read (repeatable). For files (once): the namespace of pods named by `kubectl logs --prefix`.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Read every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,

    /// Label selector for pods (e.g. app=web-api).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// Container whose logs hold the access log [default: istio-proxy].
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,

    /// kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// kubeconfig file [default: $KUBECONFIG, ~/.kube/config, or in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

impl KubeArgs {
    /// The container whose log is read (`-c`, else `istio-proxy`).
    pub fn container(&self) -> String {
        self.container
            .clone()
            .unwrap_or_else(|| "istio-proxy".to_string())
    }

    /// The first flag given that only makes sense against a cluster (in
    /// help order), for refusing it with files.
    pub fn cluster_only_flag(&self) -> Option<&'static str> {
        [
            (self.all_namespaces, "-A/--all-namespaces"),
            (self.selector.is_some(), "-l/--selector"),
            (self.container.is_some(), "-c/--container"),
            (self.context.is_some(), "--context"),
            (self.kubeconfig.is_some(), "--kubeconfig"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    /// Returns true if and only if a flag only makes sense against a cluster.
    pub fn wants_cluster(&self) -> bool {
        self.all_namespaces
            || self.selector.is_some()
            || self.context.is_some()
            || self.kubeconfig.is_some()
    }
}

/// What a verdict is judged on, shared by `report` and `watch`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Output format [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    pub output: Option<OutputKind>,

    /// Length of the window judged (e.g. 24h, 30m, 7d, 1h30m).
    #[arg(
        long,
        default_value = "24h",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub window: String,

    /// mTLS requests a destination needs in the window to be judged ready.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = at_least_one, allow_negative_numbers = true)]
    pub min_requests: u64,

    /// Attribute lines that name no workload to this destination.
    #[arg(long, value_name = "NS/NAME")]
    pub destination: Option<String>,

    /// Access-log format: auto, a built-in (lab, lab-v0, lab-cert, istio, istio-1.8, istio-json, strictly, ztunnel) or an Envoy format string.
    #[arg(long, value_name = "NAME|FORMAT", conflicts_with = "log_format_file")]
    pub log_format: Option<String>,

    /// Read the format from FILE: a format string, an EnvoyFilter, Istio mesh config or a MeshConfig extension provider.
    #[arg(long, value_name = "FILE")]
    pub log_format_file: Option<PathBuf>,

    /// Source rows per destination; the rest fold into one `other` row (totals stay exact).
    #[arg(long, default_value_t = 50, value_name = "N", value_parser = at_least_one_usize, allow_negative_numbers = true)]
    pub max_sources: usize,

    /// Colour the table.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Log files (plain or gzip; `-` or none reads stdin), or workloads to read
    /// from the cluster (`deploy/web-api`, `statefulset/db`, `NS/deploy/web-api`).
    #[arg(value_name = "FILE|WORKLOAD")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub judge: JudgeArgs,

    /// kubectl-style: judge the last DURATION (the same as --window DURATION).
    #[arg(
        long,
        value_name = "DURATION",
        conflicts_with = "window",
        allow_hyphen_values = true
    )]
    pub since: Option<String>,

    /// End of the window (RFC 3339) [default: the newest timestamp in files; now for the cluster].
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// What wraps each line of files and stdin [default: auto] (not for cluster reads).
    #[arg(long, value_enum)]
    pub input: Option<InputKind>,

    /// Parser threads [default: all cores; at most 4 × the cores, or 64].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub threads: Option<usize>,

    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,

    /// Log reads in flight at once when reading the cluster (like stern's) [default: 50].
    #[arg(long, value_name = "N", value_parser = at_least_one_usize, allow_negative_numbers = true)]
    pub max_log_requests: Option<usize>,

    #[command(flatten)]
    pub loki: LokiArgs,

    #[command(flatten)]
    pub elastic: crate::elastic_args::ElasticArgs,
    /// Judge from Istio's standard metrics in Prometheus (or Thanos, Mimir) at URL instead of
    /// access logs: istio_requests_total and istio_tcp_connections_opened_total, reporter=destination,
    /// increase per hour over the window (hour-aligned). -n restricts the destination namespaces.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
}

/// Reading Grafana Loki directly (`report --loki`).
#[derive(Debug, Args)]
pub struct LokiArgs {
    /// Query this Loki (base URL, e.g. http://loki-gateway.monitoring) instead of files or the cluster.
    /// Credentials: LOKI_TOKEN (bearer), or LOKI_USER and LOKI_PASSWORD (basic).
    #[arg(long, value_name = "URL")]
    pub loki: Option<String>,

    /// LogQL log query selecting istio-proxy logs [default: {container="istio-proxy"}, with namespace from -n].
    #[arg(long, value_name = "LOGQL", requires = "loki")]
    pub query: Option<String>,

    /// Loki tenant (X-Scope-OrgID) [default: $LOKI_ORG_ID].
    #[arg(long, value_name = "ID", requires = "loki")]
    pub loki_org_id: Option<String>,

    /// Entries per query_range request (Loki's max_entries_limit_per_query is 5000).
    #[arg(long, value_name = "N", default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=5000), requires = "loki")]
    pub loki_batch: u32,
}

const WATCH_EXAMPLES: &str = "\
Examples:
  # Follow every replica in a namespace; the table redraws in place
  strictly watch -n istioinaction

  # Metrics for Prometheus, a state file that survives restarts
  strictly watch -A --listen :9090 --state /var/lib/strictly/state

  # Off a terminal: verdict-change JSON lines, then the final report on Ctrl-C
  strictly watch -n istioinaction deploy/web-api | tee verdicts.jsonl

Output: on a terminal, a table redrawn every --interval. Off a terminal,
stdout carries verdict-change JSON lines, one object per change
({\"time\", \"destination\", \"from\", \"to\", \"reason\"}), then the final
report as one more JSON line; with -o table, only the final table. A
destination whose pods are still reading their history is `pending` and
makes no change line until its backlog is counted.

Endpoints with --listen: /metrics (Prometheus text), /report (the JSON report
as of now), /healthz.

Exit status (after SIGINT/SIGTERM, from the final report): 0 every destination
is ready; 1 some is blocked or insufficient; 2 usage, cluster or state-file error.";

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Workloads to follow (`deploy/web-api`, `NS/statefulset/db`) [default: every pod selected by -n/-A/-l].
    #[arg(value_name = "WORKLOAD")]
    pub workloads: Vec<String>,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub judge: JudgeArgs,

    /// kubectl-style: judge the last DURATION (the same as --window DURATION).
    #[arg(long, value_name = "DURATION", conflicts_with = "window")]
    pub since: Option<String>,

    /// How far back each pod's log is read when first followed [default: the window, plus an hour to check coverage].
    #[arg(long, value_name = "DURATION")]
    pub backfill: Option<String>,

    /// Serve /metrics, /report and /healthz on this address (`:9090` every interface, `localhost:9090`, `127.0.0.1:9090`).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<std::net::SocketAddr>,

    /// Save the aggregate to this file (strictly's own binary format) periodically and on exit, and resume from it.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// How often verdicts are recomputed.
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub interval: String,

    /// Reconnect a log stream that sent nothing for this long.
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub stall_timeout: String,

    /// Stop by itself after this long, as on SIGTERM.
    #[arg(long, value_name = "DURATION")]
    pub exit_after: Option<String>,
}

const POLICY_EXAMPLES: &str = "\
Examples:
  # From a saved report
  strictly report -n istioinaction --since 24h -o json > report.json
  strictly policy --from report.json | kubectl apply -f -

  # Judge and write in one go: the same input flags as `report`
  strictly policy fixtures/sample/mesh.log
  strictly policy -n istioinaction --since 24h | kubectl apply --dry-run=server -f -

Each ready workload gets a security.istio.io/v1 PeerAuthentication with
mtls.mode STRICT, selecting its pods by the labels they share (read from the
Kubernetes API), else by the `app: NAME` convention (a comment says which). A
namespace whose every workload seen is ready also gets a `default` without a
selector. Blocked and insufficient workloads get no policy, only a comment
saying why. Every policy carries app.kubernetes.io/managed-by=strictly.

Exit status: 0 every workload got a policy; 1 some got only a comment (or
there was none); 2 usage or input error.";

/// `strictly policy`: a report's input flags, or a saved report.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Read a saved JSON report (`strictly report -o json`) instead of logs.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,

    /// Where only one port is blocked, STRICT with that port PERMISSIVE. Reports have no per-port counts yet: no exception is written, a comment says so.
    #[arg(long)]
    pub port_exceptions: bool,

    #[command(flatten)]
    pub report: ReportArgs,
}

const INSTRUMENT_EXAMPLES: &str = "\
Examples:
  # The lab's way: an EnvoyFilter and the AUDIT policy, kubectl alone
  strictly instrument -n istioinaction deploy/web-api | kubectl apply -f -

  # The Telemetry API (Istio 1.22+): the provider once, then a Telemetry per workload
  strictly instrument --mesh-config > strictly-provider.yaml
  helm upgrade istiod istio/istiod -n istio-system --reuse-values -f strictly-provider.yaml
  strictly instrument --method telemetry -n istioinaction deploy/web-api sts/catalog | kubectl apply -f -

  # Pods selected by labels rather than a workload name
  strictly instrument -n istioinaction -l app=web-api,version=v1

The sidecars then log inbound requests in strictly's built-in `strictly`
format: `strictly report` and `watch` read it with no flags.";

/// `strictly instrument`.
#[derive(Debug, Args)]
pub struct InstrumentArgs {
    /// Workloads to instrument (`deploy/web-api`, `sts/db`, `NS/deploy/web-api`); selected by `app: NAME`.
    #[arg(value_name = "WORKLOAD")]
    pub workloads: Vec<String>,

    /// Namespace of the workloads.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,

    /// Select the pods by these labels instead (`key=value[,key=value]`).
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,

    /// How the access log is installed.
    #[arg(long, value_enum, default_value_t = strictly::render::instrument::InstrumentMethod::Envoyfilter)]
    pub method: strictly::render::instrument::InstrumentMethod,

    /// Print only the MeshConfig extension provider the Telemetry method needs (for Helm or an IstioOperator).
    #[arg(long, conflicts_with_all = ["workloads", "selector", "namespace"])]
    pub mesh_config: bool,
}

/// A count that must be at least 1 (`--max-sources`, `--max-log-requests`).
fn at_least_one_usize(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// `--min-requests`: zero evidence is never enough to call a workload ready.
fn at_least_one(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1: zero mTLS requests prove nothing".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// `--listen`: `HOST:PORT`, `:PORT` (every interface, as Prometheus writes
/// it) or `localhost:PORT` (the first address the name resolves to).
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Some(port) = text.strip_prefix(':') {
        return port
            .parse::<u16>()
            .map(|p| std::net::SocketAddr::from(([0, 0, 0, 0], p)))
            .map_err(|_| format!("{port:?} is not a port number"));
    }
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    if !text.contains(':') {
        return Err("expected HOST:PORT or :PORT (e.g. 127.0.0.1:9090, :9090)".into());
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve {text:?}: expected HOST:PORT or :PORT"))
}

#[cfg(test)]
mod tests {
    use super::parse_listen;

    #[test]
    fn listen_accepts_port_only_and_host_names() {
        assert_eq!(parse_listen(":9090").unwrap().to_string(), "0.0.0.0:9090");
        assert_eq!(parse_listen("localhost:9090").unwrap().port(), 9090);
        assert!(parse_listen("localhost:9090").unwrap().ip().is_loopback());
        assert_eq!(
            parse_listen("127.0.0.1:9090").unwrap().to_string(),
            "127.0.0.1:9090"
        );
        assert!(parse_listen("9090").is_err());
        assert!(parse_listen(":http").is_err());
    }
}
