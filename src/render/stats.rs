//! `strictly stats` output: a table per workload and replica, or JSON.

use std::io::{self, Write};

use comfy_table::{Table, presets};

use crate::stats::StatsReport;

/// Writes the report as a table (workload rows, their replicas indented), hints, next step.
pub fn table(r: &StatsReport, out: &mut dyn Write) -> io::Result<()> {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header([
        "WORKLOAD / REPLICA",
        "VERDICT",
        "INBOUND CX",
        "TLS HANDSHAKES",
        "PLAINTEXT CX",
        "TLS_NOT_FOUND",
        "REASON",
    ]);
    let n = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    for w in &r.workloads {
        let tls_not_found: Option<u64> = w.replicas.iter().map(|r| r.tls_not_found).sum();
        table.add_row([
            w.workload.clone(),
            w.verdict.as_str().to_string(),
            w.inbound_connections.to_string(),
            w.tls_handshakes.to_string(),
            w.plaintext_connections.to_string(),
            n(tls_not_found),
            w.reason.clone(),
        ]);
        if w.replicas.len() > 1 {
            for rep in &w.replicas {
                table.add_row([
                    format!("  {}", rep.replica),
                    rep.verdict.as_str().to_string(),
                    n(rep.inbound_connections),
                    n(rep.tls_handshakes),
                    n(rep.plaintext_connections),
                    n(rep.tls_not_found),
                    rep.reason.clone(),
                ]);
            }
        }
    }
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    for h in &r.hints {
        writeln!(out, "hint: {h}")?;
    }
    Ok(())
}

/// Writes the report as pretty JSON.
pub fn json(r: &StatsReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r)?;
    writeln!(out)
}
