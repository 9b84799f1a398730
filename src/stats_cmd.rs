//! `strictly stats`: Envoy /stats dumps (files, stdin, or every replica
//! through the API server's pod proxy) to a verdict per replica and workload.

use super::*;

/// `strictly stats`: read two /stats dumps → judge → render.
pub(crate) fn stats(args: cli::StatsArgs) -> Result<u8> {
    if args.min_requests == 0 {
        bail!("--min-requests: must be at least 1");
    }
    if args.files.len() > 2 {
        bail!(
            "stats: {} files given: give one file with two dumps, or two files (before, after)",
            args.files.len()
        );
    }
    let (workloads, cluster) = cluster_choice(&args.files, &args.kube)?;
    if cluster {
        let interval = duration_flag("--interval", &args.interval)?;
        if interval <= 0 {
            bail!("--interval: must be more than 0s");
        }
        let selection = KubeSelection {
            namespaces: args.kube.namespaces.clone(),
            all_namespaces: args.kube.all_namespaces,
            selector: args.kube.selector.clone(),
            workloads,
            container: args.kube.container(),
        };
        let access = KubeAccess {
            kubeconfig: args.kube.kubeconfig.clone(),
            context: args.kube.context.clone(),
        };
        let read = strictly::source::stats::read_cluster(
            &access,
            &selection,
            std::time::Duration::from_millis(interval as u64),
        )?;
        if let Some(first) = read.iter().find_map(|r| r.dumps.as_ref().err())
            && read.iter().all(|r| r.dumps.is_err())
        {
            bail!("{first}");
        }
        let mut by_workload: std::collections::BTreeMap<
            String,
            Vec<strictly::stats::ReplicaStats>,
        > = Default::default();
        for r in &read {
            let judged = match &r.dumps {
                Ok((before, after)) => {
                    strictly::stats::judge_replica(&r.replica, before, after, args.min_requests)
                }
                Err(why) => strictly::stats::unreadable(&r.replica, why),
            };
            by_workload
                .entry(r.workload.clone())
                .or_default()
                .push(judged);
        }
        let workloads = by_workload
            .into_iter()
            .map(|(w, replicas)| strictly::stats::judge_workload(&w, replicas))
            .collect();
        let report =
            strictly::stats::report(workloads, Some(interval as f64 / 1000.0), args.min_requests);
        return render_stats(&report, args.output);
    }
    if let Some(flag) = args.kube.cluster_only_flag() {
        bail!("{flag}: only with the cluster (workloads or -n), not with files");
    }
    let stdin = args.files.is_empty() || args.files.iter().any(|f| f.as_os_str() == "-");
    let mut texts = Vec::new();
    let mut names = Vec::new();
    for f in &args.files {
        if f.as_os_str() == "-" {
            continue;
        }
        let text =
            std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        strictly::source::stats::parse_dumps(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        names.push(f.display().to_string());
        texts.push(text);
    }
    if stdin {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| anyhow::anyhow!("stdin: {e}"))?;
        strictly::source::stats::parse_dumps(&text).map_err(|e| anyhow::anyhow!("stdin: {e}"))?;
        names.push("stdin".to_string());
        texts.push(text);
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let (before, after) = strictly::source::stats::snapshot_pair(&refs)
        .map_err(|e| anyhow::anyhow!("{}: {e}", names.join(", ")))?;
    let workload = args.destination.clone().unwrap_or_else(|| names[0].clone());
    let replica =
        strictly::stats::judge_replica(&names.join(" → "), &before, &after, args.min_requests);
    let report = strictly::stats::report(
        vec![strictly::stats::judge_workload(&workload, vec![replica])],
        None,
        args.min_requests,
    );
    render_stats(&report, args.output)
}

pub(crate) fn render_stats(
    report: &strictly::stats::StatsReport,
    output: Option<OutputKind>,
) -> Result<u8> {
    use std::io::IsTerminal;
    let json = match output {
        Some(OutputKind::Json) => true,
        Some(_) => false,
        None => !std::io::stdout().is_terminal(),
    };
    let mut out = std::io::stdout().lock();
    if json {
        strictly::render::stats::json(report, &mut out)?;
    } else {
        strictly::render::stats::table(report, &mut out)?;
    }
    Ok(strictly::stats::exit_code(report) as u8)
}
