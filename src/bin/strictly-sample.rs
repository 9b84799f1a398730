//! `strictly-sample`: writes realistic istio-proxy output of a small mesh, and its ground truth.
//!
//! The mesh is the Istio mTLS-rollout lab's (`istioinaction` with web-api,
//! recommendation, purchase-history and catalog; httpbin in `default`), with
//! each verdict of `docs/verdict.md` designed in over the last 24h:
//! web-api and httpbin are `blocked` (plaintext from a pod without a sidecar
//! and from a VM), recommendation is `ready`, purchase-history is `ready` but
//! had plaintext from a legacy cron job 25h ago (`last_plaintext`), catalog is
//! `insufficient` (7 mTLS requests). One plaintext request carries a forged
//! `X-Forwarded-Client-Cert`.
//!
//! The output is deterministic for a `--seed`: same flags, same bytes. The
//! newest request starts at `--end` exactly, so a reader's default window
//! (ending at the newest timestamp) is the truth's window.
//!
//! ```text
//! strictly-sample --envelope kubectl-prefix --out mesh.log --truth mesh.truth.json
//! strictly-sample --format istio --lines 1000000 --out big.log.gz
//! ```
//!
//! Exit status: 0 on success (also when stdout is closed early), 2 on a usage
//! error, 1 when the output cannot be written.
//!
//! The binary is self-contained: it does not use the `strictly` library, so
//! the data it makes cannot share a bug with the reader it tests.

#[path = "strictly_sample/clock.rs"]
mod clock;
#[path = "strictly_sample/mesh.rs"]
mod mesh;
#[path = "strictly_sample/render.rs"]
mod render;
#[path = "strictly_sample/rng.rs"]
mod rng;
#[path = "strictly_sample/traffic.rs"]
mod traffic;
#[path = "strictly_sample/truth.rs"]
mod truth;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use crate::render::{EnvelopeKind, FormatKind};
use crate::traffic::{Traffic, TrafficConfig};

/// The fewest access lines that still show every verdict of the design.
const MIN_LINES: usize = 200;

/// Write realistic istio-proxy (Envoy) access logs of a small mesh, deterministic for a seed.
///
/// The mesh is the Istio mTLS-rollout lab's. Over the last 24h before --end,
/// istioinaction/web-api and default/httpbin are blocked (plaintext callers),
/// istioinaction/recommendation is ready, istioinaction/purchase-history is
/// ready but had plaintext 25h ago, and istioinaction/catalog is insufficient.
/// --truth writes what a correct reader must report, as JSON.
#[derive(Debug, Parser)]
#[command(name = "strictly-sample", version, max_term_width = 100)]
struct Cli {
    /// Complete access lines to write (inbound, plus outbound for the istio formats).
    #[arg(long, default_value_t = 3000, value_name = "N")]
    lines: usize,

    /// The sidecars' access-log format.
    #[arg(long, value_enum, default_value_t = FormatKind::Lab)]
    format: FormatKind,

    /// What wraps each line: none, kubectl logs --timestamps, kubectl logs --prefix --timestamps, stern.
    #[arg(long, value_enum, default_value_t = EnvelopeKind::Raw)]
    envelope: EnvelopeKind,

    /// The newest request's %START_TIME% (RFC 3339).
    #[arg(long, default_value = "2026-11-20T12:00:00Z", value_name = "TIME")]
    end: String,

    /// How far back the log reaches from --end (e.g. 26h, 90m, 2d).
    #[arg(long, default_value = "26h", value_name = "DURATION")]
    span: String,

    /// Seeds pod names, timing and every field; same seed, same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Where to write the log: a file (`.gz`: gzip), or `-` for stdout.
    #[arg(long, short, default_value = "-", value_name = "FILE")]
    out: PathBuf,

    /// Also write the ground truth (JSON) for the window ending at --end.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,

    /// The truth's window (the mesh is designed for the default).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    window: String,

    /// The truth's --min-requests: fewer mTLS requests in the window is insufficient.
    #[arg(long, default_value_t = 10, value_name = "N")]
    min_requests: u64,

    /// pilot-agent and Envoy diagnostic lines per access line.
    #[arg(long, default_value_t = 0.05, value_name = "RATIO")]
    noise_ratio: f64,

    /// Access lines cut short mid-line (not counted as requests), on top of --lines.
    #[arg(long, default_value_t = 3, value_name = "N")]
    malformed: usize,

    /// Inbound mTLS requests come from N caller addresses (istio formats
    /// group mTLS callers by address: a busy mesh has thousands per
    /// destination); 0: each caller pod's own address.
    #[arg(long, default_value_t = 0, value_name = "N")]
    callers: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("strictly-sample: {error:#}");
            ExitCode::from(if error.is::<UsageError>() { 2 } else { 1 })
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn run(cli: &Cli) -> Result<()> {
    // Validate.
    let end_ms = clock::parse_rfc3339(&cli.end).map_err(|e| usage(format!("--end: {e}")))?;
    let span_ms = clock::parse_duration(&cli.span).map_err(|e| usage(format!("--span: {e}")))?;
    let window_ms =
        clock::parse_duration(&cli.window).map_err(|e| usage(format!("--window: {e}")))?;
    if span_ms < 10 * clock::MINUTE_MS {
        return Err(usage(format!("--span {}: at least 10m", cli.span)));
    }
    if cli.lines < MIN_LINES {
        return Err(usage(format!(
            "--lines {}: at least {MIN_LINES}, so that every verdict shows",
            cli.lines
        )));
    }
    if !(0.0..=10.0).contains(&cli.noise_ratio) {
        return Err(usage(format!(
            "--noise-ratio {}: expected 0 to 10",
            cli.noise_ratio
        )));
    }
    let stdout = cli.out == Path::new("-");
    if stdout && cli.truth.as_deref() == Some(Path::new("-")) {
        return Err(usage("--truth -: stdout already carries the log (--out -)"));
    }

    // Generate.
    if cli.callers > 64_000 {
        return Err(usage(format!("--callers {}: at most 64000", cli.callers)));
    }
    let mut mesh = mesh::Mesh::new(cli.seed);
    mesh.callers = cli.callers;
    let config = TrafficConfig {
        lines: cli.lines,
        end_ms,
        span_ms,
        seed: cli.seed,
        noise_ratio: cli.noise_ratio,
        malformed: cli.malformed,
        outbound: cli.format.is_istio(),
    };
    let traffic = Traffic::generate(&mesh, &config);

    // Write.
    let lines = write_output(&cli.out, |out| {
        render::write_log(out, &mesh, &traffic, cli.format, cli.envelope)
    })?;
    if let Some(path) = &cli.truth {
        let truth_config = truth::TruthConfig {
            format: cli.format,
            envelope: cli.envelope,
            end_ms,
            window_ms,
            min_requests: cli.min_requests,
            generator: json!({
                "name": "strictly-sample",
                "version": env!("CARGO_PKG_VERSION"),
                "command": command_line(cli),
                "seed": cli.seed,
                "format": cli.format.name(),
                "envelope": cli.envelope.name(),
                "lines": cli.lines,
                "end": clock::rfc3339(end_ms),
                "span_seconds": span_ms / 1000,
                "noise_ratio": cli.noise_ratio,
                "malformed": cli.malformed,
            }),
        };
        let value = truth::truth(&mesh, &traffic, lines, &truth_config);
        write_output(path, |out| {
            serde_json::to_writer_pretty(&mut *out, &value)?;
            out.write_all(b"\n")
        })?;
    }
    Ok(())
}

/// The flags that reproduce this run (without the output paths).
fn command_line(cli: &Cli) -> String {
    format!(
        "strictly-sample --lines {} --format {} --envelope {} --end {} --span {} --seed {} --noise-ratio {} --malformed {}",
        cli.lines,
        cli.format.name(),
        cli.envelope.name(),
        cli.end,
        cli.span,
        cli.seed,
        cli.noise_ratio,
        cli.malformed
    )
}

/// Opens `path` (`-`: stdout; `.gz`: gzip), lets `write` fill it, and flushes
/// (finishing the gzip stream) so that every write error surfaces.
fn write_output<T>(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<T>) -> Result<T> {
    let name = path.display();
    if path == Path::new("-") {
        let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
        let value = write(&mut out).context("writing stdout")?;
        out.flush().context("writing stdout")?;
        return Ok(value);
    }
    let file = File::create(path).with_context(|| format!("creating {name}"))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out =
            BufWriter::with_capacity(1 << 16, GzEncoder::new(file, Compression::default()));
        let value = write(&mut out).with_context(|| format!("writing {name}"))?;
        let encoder = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {name}"))?;
        encoder
            .finish()
            .with_context(|| format!("writing {name}"))?;
        Ok(value)
    } else {
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let value = write(&mut out).with_context(|| format!("writing {name}"))?;
        out.flush().with_context(|| format!("writing {name}"))?;
        Ok(value)
    }
}
