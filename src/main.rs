//! The `strictly` binary: parse the command line, read, judge, render.

mod cli;
mod elastic_args;
mod policy_cmd;
mod report_elastic;
mod report_loki;
mod stats_cmd;

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::time::Duration;

use cli::{Cli, ColorChoice, Command, JudgeArgs, ReportArgs, WatchArgs};
use strictly::aggregate::{AggregateConfig, Window};
use strictly::pipeline::{self, PipelineConfig};
use strictly::render::{self, OutputKind, RenderOptions};
use strictly::source::file::Input;
use strictly::source::kube::{KubeAccess, KubeSelection, WorkloadRef};
use strictly::verdict::{self, VerdictConfig};
use strictly::watch::WatchConfig;
use strictly::watch::live::LiveView;
use strictly::{format, time};

/// Exit status for usage and input errors (spec §4).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return usage_error(e),
    };
    match run(cli, &matches) {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "strictly: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `--help` and `--version` print as clap writes them; a usage error is one
/// line in strictly's words (clap's own adds usage and tips, some of them wrong
/// for us, such as `-- -1h` for a negative duration), exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::from(EXIT_ERROR)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    let first = first.trim().strip_prefix("error: ").unwrap_or(first.trim());
    let _ = writeln!(io::stderr(), "strictly: error: {first} (see --help)");
    ExitCode::from(EXIT_ERROR)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<u8> {
    match cli.command {
        Command::Report(args) => report(args),
        Command::Watch(args) => watch(args),
        Command::Policy(args) => policy_cmd::run(args, matches.subcommand_matches("policy")),
        Command::Instrument(args) => policy_cmd::instrument(args),
        Command::Stats(args) => stats_cmd::stats(args),
    }
}

/// `strictly report`: validate → read → judge → render.
/// What `report` and `watch` both validate: the window, `--destination`, the formats.
struct Judge {
    window_ms: i64,
    formats: strictly::format::FormatSet,
}

fn judge(args: &JudgeArgs) -> Result<Judge> {
    let window_ms =
        time::parse_window_ms(&args.window).map_err(|e| anyhow::anyhow!("--window: {e}"))?;
    if let Some(d) = &args.destination {
        let valid = d
            .split_once('/')
            .is_some_and(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'));
        if !valid {
            bail!("--destination: {d:?} is not NAMESPACE/NAME");
        }
    }
    let formats = format::load(args.log_format.as_deref(), args.log_format_file.as_deref())?;
    Ok(Judge { window_ms, formats })
}

/// `--until`: an RFC 3339 time from 1970 to 9999.
fn parse_until(u: &str) -> Result<i64> {
    let ms = time::parse_rfc3339_ms(u.as_bytes()).with_context(|| {
        format!("--until: {u:?} is not an RFC 3339 time between 1970 and 9999 (e.g. 2026-11-20T12:00:00Z)")
    })?;
    if ms < 0 {
        bail!("--until: {u:?} is before 1970");
    }
    Ok(ms)
}

fn duration_flag(flag: &str, text: &str) -> Result<i64> {
    time::parse_duration_ms(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// `--color` against the terminal and `NO_COLOR`.
fn use_color(choice: ColorChoice, tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            tty && std::env::var_os("NO_COLOR").is_none()
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}

/// `strictly report`: validate → read → judge → render.
fn report(args: ReportArgs) -> Result<u8> {
    // None: `--explain` printed what it would send, nothing was judged.
    let Some(report) = judged_report(&args)? else {
        return Ok(0);
    };
    render_report(&report, &args.judge)
}

/// `report` up to the verdicts: validate → read → judge (`policy` shares it).
pub(crate) fn judged_report(args: &ReportArgs) -> Result<Option<verdict::Report>> {
    let Judge {
        mut window_ms,
        formats,
    } = judge(&args.judge)?;
    if let Some(since) = &args.since {
        window_ms = time::parse_window_ms(since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    }
    let until_ms = args.until.as_deref().map(parse_until).transpose()?;
    let threads = args.threads.map(threads_flag).transpose()?;
    let source = match &args.prometheus {
        Some(_) if !args.files.is_empty() => {
            bail!("--prometheus: reads metrics, not files or workloads; drop the arguments")
        }
        Some(_) => None,
        None => {
            let source = match report_loki::source(args)? {
                Some(l) => ReportSource::Loki(l),
                None => report_source(args)?,
            };
            check_source_flags(args, &source)?;
            Some(source)
        }
    };

    let aggregate = AggregateConfig {
        namespace: args.kube.namespaces.first().cloned(),
        destination: args.judge.destination.clone(),
        known_window: until_ms.map(|end| Window {
            start_ms: end - window_ms,
            end_ms: end,
        }),
        max_sources: ingest_bound(args.judge.max_sources),
        latest_plausible_ms: Some(latest_plausible_ms()),
    };
    let mut pipeline = PipelineConfig {
        input_kind: args.input.unwrap_or_default(),
        ..PipelineConfig::default()
    };
    if let Some(n) = threads {
        pipeline.threads = n;
    }
    let mut verdict_config = VerdictConfig {
        window_ms,
        until_ms,
        min_requests: args.judge.min_requests,
        max_sources: args.judge.max_sources.max(1),
    };

    let mut store_hints = Vec::new();
    let mut pushdown_hint = None;
    let mut scope: Option<pipeline::Scope> = None;
    let (aggregator, names, peers, streams) = match source {
        None => {
            // Prometheus answers per hour: the window is hour-aligned (end floored).
            let url = args.prometheus.clone().unwrap_or_default();
            let end = until_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
            let window = strictly::source::prometheus::aligned_window(end, window_ms);
            verdict_config.until_ms = Some(window.end_ms);
            verdict_config.window_ms = window.end_ms - window.start_ms;
            let namespaces = &args.kube.namespaces;
            if args.elastic.explain {
                let mut err = io::stderr().lock();
                for q in strictly::source::prometheus::queries(namespaces) {
                    let _ = writeln!(
                        err,
                        "strictly: query_range {} to {} step 1h: {q}",
                        strictly::time::format_ms(window.start_ms),
                        strictly::time::format_ms(window.end_ms)
                    );
                }
                // As for the log stores: print what would be sent, send nothing.
                return Ok(None);
            }
            let mut aggregator = strictly::aggregate::Aggregator::new(AggregateConfig {
                known_window: Some(window),
                namespace: None,
                ..aggregate
            });
            strictly::source::prometheus::read(&url, namespaces, window, &mut aggregator, 0)?;
            (aggregator, vec![url], None, None)
        }
        Some(ReportSource::Loki(src)) => {
            if args.elastic.explain {
                report_loki::explain(&src, &formats, window_ms, until_ms)?;
                return Ok(None);
            }
            let run = report_loki::run(
                &src,
                &formats,
                aggregate,
                &pipeline,
                window_ms,
                until_ms,
                args.no_progress,
            )?;
            verdict_config.until_ms = Some(run.window.end_ms);
            verdict_config.window_ms = run.window.end_ms - run.window.start_ms;
            store_hints = run.hints;
            (run.aggregator, run.names, None, None)
        }
        Some(ReportSource::Files(inputs)) => {
            let bar = progress_bar(&inputs, args.no_progress);
            let progress = |n: u64| bar.inc(n);
            let run = pipeline::run_files(&inputs, &formats, &aggregate, &pipeline, &progress)?;
            bar.finish_and_clear();
            for w in &run.warnings {
                let _ = writeln!(io::stderr(), "strictly: warning: {w}");
            }
            let aggregator = run.aggregator;
            let names: Vec<String> = inputs.iter().map(Input::name).collect();
            (aggregator, names, None, None)
        }
        Some(ReportSource::Cluster(selection)) => {
            // The cluster is read as of now unless --until says otherwise; a
            // margin before the window shows whether each replica's log reaches back.
            let now = chrono::Utc::now().timestamp_millis();
            let end = until_ms.unwrap_or(now);
            verdict_config.until_ms = Some(end);
            let aggregate = AggregateConfig {
                known_window: Some(Window {
                    start_ms: end - window_ms,
                    end_ms: end,
                }),
                ..aggregate
            };
            let since = (now - (end - window_ms)).max(0) / 1000 + COVERAGE_MARGIN_S;
            let access = KubeAccess {
                kubeconfig: args.kube.kubeconfig.clone(),
                context: args.kube.context.clone(),
            };
            let run = pipeline::run_cluster(
                &access,
                &selection,
                Some(since),
                args.max_log_requests.unwrap_or(50),
                &formats,
                &aggregate,
                &pipeline,
            )?;
            for f in &run.failures {
                let _ = writeln!(io::stderr(), "strictly: warning: {f}");
            }
            scope = run.ambient_scope;
            (
                run.aggregator,
                run.names,
                Some(run.peers),
                Some(run.streams),
            )
        }
        Some(ReportSource::Elastic) => {
            let Some(read) = report_elastic::elastic_report(
                args, &formats, aggregate, &pipeline, window_ms, until_ms,
            )?
            else {
                return Ok(None);
            };
            verdict_config.until_ms = Some(read.end_ms);
            verdict_config.window_ms = read.window_ms;
            pushdown_hint = read.hint;
            (read.aggregator, vec![read.name], None, None)
        }
    };
    let misfit = misfit_warning(&formats, pipeline.input_kind, &aggregator.input, &names);
    if let Some(why) = &misfit {
        let _ = writeln!(io::stderr(), "strictly: warning: {why}");
    }
    let resolved = aggregator.into_resolved();
    let mut report = verdict::report(&resolved, &verdict_config, &names);
    if let Some(streams) = &streams {
        let labels = strictly::source::kube_labels::selectors(&resolved, streams);
        verdict::attach_pod_labels(&mut report, &labels);
    }
    // ztunnel logs carry other namespaces' connections too: keep the selected ones.
    if let Some(scope) = &scope {
        report
            .destinations
            .retain(|d| d.dataplane == "sidecar" || scope.keeps(&d.destination));
    }
    report.hints.extend(misfit);
    report.hints.extend(store_hints);
    report.hints.extend(pushdown_hint);
    if args.prometheus.is_some() {
        report.hints.push(format!(
            "--prometheus: the window is hour-aligned ({} to {}) and counts are Prometheus's increase() per hour (extrapolated; a caller's first requests are invisible to it, so a plaintext series that appears in the window counts at least 1)",
            report.window.start, report.window.end
        ));
    }
    for f in formats.iter().filter(|f| f.start_time_lacks_date()) {
        report.hints.push(format!(
            "the format {} logs START_TIME without a date: each request is dated by when it was written (use kubectl logs --timestamps)",
            f.name()
        ));
    }
    if let Some(peers) = &peers {
        let lookup = |ip: &str| {
            peers
                .get(ip)
                .map(|p| (p.pod.clone(), p.workload.clone(), p.sidecar))
        };
        verdict::name_peers(&mut report, &lookup);
    }
    Ok(Some(report))
}

/// Writes the report as `--output` says; the exit code follows the verdicts.
fn render_report(report: &verdict::Report, args: &JudgeArgs) -> Result<u8> {
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let kind = args.output.unwrap_or(if tty {
        OutputKind::Table
    } else {
        OutputKind::Json
    });
    let color = use_color(args.color, tty);
    let mut out = io::BufWriter::new(stdout.lock());
    // Like ls and kubectl: $COLUMNS wins, else the terminal's width; off a terminal, no limit.
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|&w| w >= 40)
        .or_else(|| {
            tty.then(|| terminal_size::terminal_size().map(|(w, _)| w.0))
                .flatten()
        });
    let opts = RenderOptions {
        color,
        width,
        wide: false,
    };
    render::render(report, kind, opts, &mut out)?;
    out.flush()?;
    Ok(verdict::exit_code(report) as u8)
}

/// Entries dated more than a day after now are corrupt, not evidence: one
/// line dated 2096 must not move the window (issue 7 item 3).
fn latest_plausible_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() + 86_400_000
}

/// The most parser threads `--threads` takes: 4 × the cores, and never fewer than this.
const THREADS_FLOOR: usize = 64;

/// Checks `--threads`: at least 1, at most 4 × the cores (or [`THREADS_FLOOR`]).
///
/// Parsing is CPU-bound: threads past the cores only cost memory (each owns
/// an aggregate), and tens of thousands exhaust the process.
fn threads_flag(n: usize) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let max = cores.saturating_mul(4).max(THREADS_FLOOR);
    if n == 0 {
        bail!("--threads: must be at least 1");
    }
    if n > max {
        bail!(
            "--threads: {n} is more than {max} (4 × the {cores} cores here, at least {THREADS_FLOOR}); parsing is CPU-bound, more threads only cost memory"
        );
    }
    Ok(n)
}

/// Refuses flags that would do nothing with the source `report` reads:
/// cluster-only flags with files or stdin, `--input` with the cluster, and
/// several `-n` with files (`-n` then names the one namespace of pods in
/// `kubectl logs --prefix` lines; run once per namespace instead).
fn check_source_flags(args: &ReportArgs, source: &ReportSource) -> Result<()> {
    match source {
        ReportSource::Files(_) => {
            let flag = args.kube.cluster_only_flag().or(args
                .max_log_requests
                .is_some()
                .then_some("--max-log-requests"));
            if let Some(flag) = flag {
                bail!(
                    "{flag} applies to reading the cluster, not to files or stdin: drop it, or drop the files to read the cluster"
                );
            }
            if args.kube.namespaces.len() > 1 {
                bail!(
                    "-n/--namespace: given {} times; with files it names the one namespace of pods in `kubectl logs --prefix` lines: run once per namespace",
                    args.kube.namespaces.len()
                );
            }
        }
        // report_loki::source checked its own.
        ReportSource::Loki(_) => {}
        ReportSource::Elastic => {
            let flag = [
                (!args.files.is_empty(), "files"),
                (args.input.is_some(), "--input"),
                (args.max_log_requests.is_some(), "--max-log-requests"),
            ]
            .into_iter()
            .find_map(|(given, flag)| given.then_some(flag))
            .or(args.kube.cluster_only_flag());
            if let Some(flag) = flag {
                bail!(
                    "{flag} cannot be combined with --elastic: it reads the store, not files or the cluster (filter the store with --elastic-query)"
                );
            }
            if args.kube.namespaces.len() > 1 {
                bail!(
                    "-n/--namespace: given {} times; with --elastic it names the namespace of documents that name none: filter with --elastic-query instead",
                    args.kube.namespaces.len()
                );
            }
        }
        ReportSource::Cluster(_) => {
            if args.input.is_some() {
                bail!(
                    "--input applies to files and stdin; the cluster's logs are read without an envelope: drop it"
                );
            }
        }
    }
    Ok(())
}

/// When no line fit the formats but some looked like access entries: which
/// operator of which format the first of them breaks, and where (issue 7 item 26).
fn misfit_warning(
    formats: &format::FormatSet,
    kind: strictly::envelope::InputKind,
    input: &strictly::aggregate::InputCounts,
    names: &[String],
) -> Option<String> {
    if input.requests + input.outbound > 0 {
        return None;
    }
    let example = input.malformed_examples.first()?;
    let mut decoder = strictly::envelope::EnvelopeDecoder::new(kind);
    let payload = decoder.decode(example.text.as_bytes()).payload;
    let why = format::explain_misfit(formats, payload)?;
    let name = names
        .get(example.input as usize)
        .map_or("-", String::as_str);
    Some(format!(
        "{name}:{}: no line fits the log format; {why}",
        example.line
    ))
}

/// Source cells kept per destination while reading: generous above the rows
/// shown, so the rows shown are the true heaviest unless a destination has
/// thousands of callers; memory stays bounded by it either way.
fn ingest_bound(rows: usize) -> usize {
    rows.saturating_mul(20).max(1000)
}

/// `strictly watch`: validate → follow until a signal → final report.
fn watch(args: WatchArgs) -> Result<u8> {
    let Judge {
        mut window_ms,
        formats,
    } = judge(&args.judge)?;
    // One meaning in both commands: --since is the span judged (issue 7 item 22).
    if let Some(since) = &args.since {
        window_ms = duration_flag("--since", since)?;
    }
    let backfill_ms = args
        .backfill
        .as_deref()
        .map(|s| duration_flag("--backfill", s))
        .transpose()?;
    // Reading less than is judged would blame the logs for a span the flags cut off.
    if let Some(b) = backfill_ms
        && b < window_ms
    {
        bail!(
            "--backfill {} is shorter than the {} window judged: the verdict would miss history it never read (judge less with --window, or read more)",
            args.backfill.as_deref().unwrap_or_default(),
            args.since.as_deref().unwrap_or(&args.judge.window)
        );
    }
    let tick_ms = duration_flag("--interval", &args.interval)?;
    let stall_ms = duration_flag("--stall-timeout", &args.stall_timeout)?;
    let exit_after = args
        .exit_after
        .as_deref()
        .map(|s| duration_flag("--exit-after", s))
        .transpose()?;
    let workloads = args
        .workloads
        .iter()
        .map(|w| {
            WorkloadRef::parse(w).with_context(|| {
                format!("{w:?} is not a workload (deploy/NAME, statefulset/NAME, NS/deploy/NAME)")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let tty = io::stdout().is_terminal();
    let config = WatchConfig {
        access: KubeAccess {
            kubeconfig: args.kube.kubeconfig.clone(),
            context: args.kube.context.clone(),
        },
        selection: KubeSelection {
            namespaces: args.kube.namespaces.clone(),
            all_namespaces: args.kube.all_namespaces,
            selector: args.kube.selector.clone(),
            workloads,
            container: args.kube.container(),
        },
        formats,
        aggregate: AggregateConfig {
            namespace: None,
            destination: args.judge.destination.clone(),
            known_window: None,
            max_sources: ingest_bound(args.judge.max_sources),
            latest_plausible_ms: Some(latest_plausible_ms()),
        },
        window_ms,
        backfill_ms,
        min_requests: args.judge.min_requests,
        max_sources: args.judge.max_sources.max(1),
        tick: Duration::from_millis(tick_ms as u64),
        stall: Duration::from_millis(stall_ms as u64),
        listen: args.listen,
        state: args.state.clone(),
        output: args.judge.output.unwrap_or(if tty {
            OutputKind::Table
        } else {
            OutputKind::Json
        }),
        // Off a terminal the live view is JSON lines; `-o table` there prints
        // only the final table (no cursor codes into a file or pipe).
        live: match (tty, args.judge.output) {
            (true, _) => LiveView::Table,
            (false, Some(OutputKind::Table)) => LiveView::Off,
            (false, _) => LiveView::JsonLines,
        },
        color: use_color(args.judge.color, tty),
        duration: exit_after.map(|ms| Duration::from_millis(ms as u64)),
    };
    Ok(strictly::watch::run(config)? as u8)
}
/// Workload arguments (`deploy/NAME` that is not an existing file) and
/// whether to read the cluster: workloads given, or no files and a cluster
/// flag (or `-n` with nothing piped in). Files and workloads do not mix.
fn cluster_choice(
    files: &[std::path::PathBuf],
    kube: &cli::KubeArgs,
) -> Result<(Vec<WorkloadRef>, bool)> {
    let as_workload = |f: &std::path::PathBuf| {
        let text = f.to_str()?;
        (!f.exists()).then(|| WorkloadRef::parse(text)).flatten()
    };
    let workloads: Vec<WorkloadRef> = files.iter().filter_map(as_workload).collect();
    if !workloads.is_empty() && workloads.len() != files.len() {
        bail!(
            "arguments mix files and workloads (deploy/NAME): read files or the cluster, not both"
        );
    }
    let cluster = !workloads.is_empty()
        || (files.is_empty()
            && (kube.wants_cluster() || (!kube.namespaces.is_empty() && !stdin_has_data())));
    Ok((workloads, cluster))
}

/// Returns true if and only if stdin is a pipe or a file (something was piped
/// in). A terminal, `/dev/null` or a closed stdin — what a CI step gets — is not.
fn stdin_has_data() -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata("/dev/stdin")
            .map(|m| {
                m.file_type().is_fifo() || m.file_type().is_file() || m.file_type().is_socket()
            })
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        !io::stdin().is_terminal()
    }
}

/// How far before the window a cluster report reads, to see whether each
/// replica's log reaches back past the window's start (kubelet rotates logs).
const COVERAGE_MARGIN_S: i64 = 3600;

/// Where `report` reads from.
enum ReportSource {
    Files(Vec<Input>),
    Cluster(KubeSelection),
    Loki(report_loki::LokiRequest),
    /// `--elastic URL --index PATTERN`.
    Elastic,
}

/// Files when given; the cluster when a flag or argument says so (or `-n`
/// with nothing piped in); else stdin (see `report --help`).
fn report_source(args: &ReportArgs) -> Result<ReportSource> {
    if args.elastic.elastic.is_some() {
        return Ok(ReportSource::Elastic);
    }
    let (workloads, cluster) = cluster_choice(&args.files, &args.kube)?;
    if cluster {
        return Ok(ReportSource::Cluster(KubeSelection {
            namespaces: args.kube.namespaces.clone(),
            all_namespaces: args.kube.all_namespaces,
            selector: args.kube.selector.clone(),
            workloads,
            container: args.kube.container(),
        }));
    }
    if args.files.is_empty() {
        if io::stdin().is_terminal() {
            bail!(
                "no input: pass log files, pipe logs in (kubectl logs ... -c istio-proxy | strictly report), or name a namespace (-n NS) to read the cluster"
            );
        }
        return Ok(ReportSource::Files(vec![Input::stdin()]));
    }
    Ok(ReportSource::Files(
        args.files
            .iter()
            .map(|f| {
                if f == Path::new("-") {
                    Input::stdin()
                } else {
                    Input::path(f)
                }
            })
            .collect(),
    ))
}

/// A spinner in entries/s on stderr for reads from a store, only when stderr is a terminal.
fn entries_bar(disabled: bool) -> ProgressBar {
    if disabled || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} read {human_pos} entries ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A progress bar on stderr for long file reads, only when stderr is a terminal.
fn progress_bar(inputs: &[Input], disabled: bool) -> ProgressBar {
    let total: Option<u64> = inputs.iter().map(Input::len_hint).sum();
    let show = !disabled && io::stderr().is_terminal() && total.is_some_and(|t| t > 8 << 20);
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} reading {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {wide_bar}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
