//! The `policy` and `instrument` subcommands: flags checked, data gathered,
//! then the renderers in `strictly::render::{policy, instrument}` write YAML.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;

use crate::cli::{InstrumentArgs, PolicyArgs};
use strictly::render::instrument::{self, InstrumentTarget};
use strictly::render::policy::{self, PolicyOptions};
use strictly::render::policy_input::PolicyReport;
use strictly::source::kube::{WorkloadKind, WorkloadRef};

/// `strictly policy`: a saved report (`--from`) or a fresh one → PeerAuthentication YAML.
pub fn run(args: PolicyArgs, matches: Option<&clap::ArgMatches>) -> Result<u8> {
    let given = given_flags(matches);
    // `-o` and `--color` shape a report's rendering; `policy` always writes YAML.
    if let Some(flag) = given
        .iter()
        .find(|f| matches!(f.as_str(), "--output" | "--color"))
    {
        bail!("{flag}: `policy` always writes YAML: drop it");
    }
    let report = match &args.from {
        Some(path) => {
            if let Some(flag) = given
                .iter()
                .find(|f| !matches!(f.as_str(), "--from" | "--port-exceptions"))
            {
                bail!(
                    "{flag} reads logs, but --from {} reads a saved report: drop one",
                    path.display()
                );
            }
            let bytes = read_capped(path)?;
            PolicyReport::from_json(&bytes).with_context(|| {
                format!(
                    "--from {}: not a strictly JSON report (strictly report -o json)",
                    path.display()
                )
            })?
        }
        None => match crate::judged_report(&args.report)? {
            Some(report) => PolicyReport::from_report(&report),
            // `--explain` printed the queries: nothing to write policies for.
            None => return Ok(0),
        },
    };
    let opts = PolicyOptions {
        port_exceptions: args.port_exceptions,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let summary = policy::render(&report, opts, &mut out)?;
    out.flush()?;
    if args.port_exceptions && report.destinations.iter().any(|d| d.verdict == "blocked") {
        let _ = writeln!(
            io::stderr(),
            "strictly: warning: --port-exceptions: the report counts plaintext per workload and caller, not per port: no exception written"
        );
    }
    let complete = summary.workloads_without_policy == 0 && summary.workloads_with_policy > 0;
    Ok(if complete { 0 } else { 1 })
}

/// The largest saved report `--from` reads: a report is a few KiB per
/// destination, so this is tens of thousands of workloads, and a wrong file
/// (a log, a disk image) is refused instead of read whole into memory.
const MAX_REPORT_BYTES: u64 = 256 << 20;

/// Reads `--from` (a file, or `-` for stdin) up to [`MAX_REPORT_BYTES`].
fn read_capped(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let shown = path.display();
    let reader: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("--from {shown}"))?)
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--from {shown}"))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        bail!(
            "--from {shown}: larger than {} MiB: not a strictly report",
            MAX_REPORT_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// The flags given on the command line (`--long`, or the value name of a positional).
fn given_flags(matches: Option<&clap::ArgMatches>) -> Vec<String> {
    use clap::CommandFactory;
    let Some(m) = matches else {
        return Vec::new();
    };
    let command = crate::cli::Cli::command();
    let Some(sub) = command.find_subcommand("policy") else {
        return Vec::new();
    };
    m.ids()
        .filter(|id| m.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|id| sub.get_arguments().find(|a| a.get_id() == id))
        .map(|a| match (a.get_long(), a.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => a
                .get_value_names()
                .and_then(|v| v.first())
                .map_or_else(|| a.get_id().to_string(), |v| v.to_string()),
        })
        .collect()
}

/// `strictly instrument`: workloads → AuthorizationPolicy + EnvoyFilter or Telemetry.
pub fn instrument(args: InstrumentArgs) -> Result<u8> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if args.mesh_config {
        instrument::render_mesh_config(&mut out)?;
        out.flush()?;
        return Ok(0);
    }
    let targets = instrument_targets(&args)?;
    instrument::render(&targets, args.method, &mut out)?;
    out.flush()?;
    Ok(0)
}

fn instrument_targets(args: &InstrumentArgs) -> Result<Vec<InstrumentTarget>> {
    if args.workloads.is_empty() && args.selector.is_none() {
        bail!(
            "name the workloads to instrument (deploy/NAME, sts/NAME) or select pods with -l KEY=VALUE"
        );
    }
    if !args.workloads.is_empty() && args.selector.is_some() {
        bail!("-l/--selector: give workloads or a selector, not both");
    }
    let namespace_of = |own: Option<&str>| -> Result<String> {
        match (own, args.namespace.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                bail!(
                    "-n {b} and a workload in namespace {a}: the policies name one namespace each"
                )
            }
            (Some(ns), _) | (None, Some(ns)) => Ok(ns.to_string()),
            (None, None) => bail!(
                "-n/--namespace: needed (the AUDIT policy names the workload's own namespace), or write NS/deploy/NAME"
            ),
        }
    };
    if let Some(selector) = &args.selector {
        let labels = parse_selector(selector)?;
        let name = resource_name(labels.values());
        return Ok(vec![InstrumentTarget {
            namespace: namespace_of(None)?,
            name,
            labels_from: format!("pods selected by -l {selector}"),
            labels,
        }]);
    }
    let mut targets = Vec::new();
    for w in &args.workloads {
        let r = WorkloadRef::parse(w).with_context(|| {
            format!("{w:?} is not a workload (deploy/NAME, statefulset/NAME, NS/deploy/NAME)")
        })?;
        if r.kind == WorkloadKind::Pod {
            bail!(
                "{w}: instrument selects a workload's pods by label: name its deploy/sts/ds, or use -l"
            );
        }
        let namespace = namespace_of(r.namespace.as_deref())?;
        targets.push(InstrumentTarget {
            labels_from: format!(
                "selected by the `app: {0}` convention: check that `kubectl get pods -n {namespace} -l app={0}` lists its pods, or use -l",
                r.name
            ),
            labels: BTreeMap::from([("app".to_string(), r.name.clone())]),
            name: r.name,
            namespace,
        });
    }
    targets.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    targets.dedup();
    Ok(targets)
}

/// A DNS-1123 name for the resources from label values (`app=Cart_V2` → `cart-v2`).
fn resource_name<'a>(values: impl Iterator<Item = &'a String>) -> String {
    let joined: String = values
        .map(|v| v.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("-")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let short: String = joined.trim_matches('-').chars().take(40).collect();
    match short.trim_end_matches('-') {
        "" => "workload".to_string(),
        name => name.to_string(),
    }
}

/// `-l key=value[,key=value]`: equality only, as a PeerAuthentication's matchLabels takes.
fn parse_selector(text: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for part in text.split(',') {
        // Kubernetes label syntax: `[prefix/]name` keys, values of at most 63 characters.
        let key_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        };
        let value_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match part.split_once('=') {
            Some((k, v)) if key_ok(k.trim()) && value_ok(v.trim()) => {
                labels.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => bail!(
                "-l/--selector: {part:?} is not KEY=VALUE with a label's characters (matchLabels takes equality only)"
            ),
        }
    }
    Ok(labels)
}
