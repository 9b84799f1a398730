//! `strictly instrument`: the Istio manifests that make a workload's sidecar
//! log what strictly judges by.
//!
//! Per workload, the lab's AUDIT AuthorizationPolicy (it marks plaintext and
//! out-of-namespace requests with `access_log_hint`, the `audit_flag`
//! column) and an inbound access log in the built-in `strictly` format, so
//! the next `report`/`watch` reads it with no flags. Two ways to install the
//! log: the lab's EnvoyFilter (`kubectl apply` alone), or the Telemetry API
//! (a Telemetry resource per workload, plus one MeshConfig extension provider
//! installed with istiod: `--mesh-config` prints it). Documents are built as
//! JSON values (sorted keys, so the output is deterministic) and serialized by
//! serde_yaml_ng.

use std::collections::BTreeMap;
use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::{Value, json};

use crate::format::LogFormat;

/// The extension provider's name (MeshConfig) that Telemetry resources turn on.
pub const PROVIDER: &str = "strictly-access-log";

/// The built-in format instrumented sidecars log in.
pub const FORMAT: &str = "strictly";

/// `--method`: how the access log is installed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum InstrumentMethod {
    /// An EnvoyFilter per workload (the lab's way; `kubectl apply` alone).
    #[default]
    Envoyfilter,
    /// A Telemetry resource per workload; the extension provider comes from `--mesh-config`.
    Telemetry,
}

/// One workload to instrument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentTarget {
    pub namespace: String,
    /// Names the resources (`audit-NAME-authpolicy`, `NAME-strictly-access-log`).
    pub name: String,
    /// The pods' labels to select.
    pub labels: BTreeMap<String, String>,
    /// Where the labels come from, for the comment.
    pub labels_from: String,
}

/// The format string the sidecars get (Istio appends the newline to a provider's text).
pub fn format_text() -> String {
    let source = LogFormat::builtin(FORMAT)
        .map(|f| f.source().to_string())
        .unwrap_or_default();
    source.strip_suffix('\n').unwrap_or(&source).to_string()
}

/// Writes the manifests for `targets`.
pub fn render(
    targets: &[InstrumentTarget],
    method: InstrumentMethod,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "# strictly instrument ({}): inbound access log in strictly's built-in `{FORMAT}` format and the lab's AUDIT policy.",
        match method {
            InstrumentMethod::Envoyfilter => "EnvoyFilter",
            InstrumentMethod::Telemetry => "Telemetry API",
        }
    )?;
    writeln!(
        out,
        "# Pick one logger per workload: with meshConfig.accessLogFile as well, every request is logged twice."
    )?;
    if method == InstrumentMethod::Telemetry {
        writeln!(
            out,
            "# Install the `{PROVIDER}` extension provider first: strictly instrument --mesh-config | helm upgrade istiod istio/istiod -n istio-system --reuse-values -f -"
        )?;
    }
    for t in targets {
        let log = match method {
            InstrumentMethod::Envoyfilter => envoy_filter(t),
            InstrumentMethod::Telemetry => telemetry(t),
        };
        for (i, doc) in [audit_policy(t), log].iter().enumerate() {
            writeln!(out, "---")?;
            if i == 0 {
                writeln!(out, "# {}/{}: {}", t.namespace, t.name, t.labels_from)?;
            }
            let yaml = serde_yaml_ng::to_string(doc).map_err(io::Error::other)?;
            out.write_all(yaml.as_bytes())?;
        }
    }
    Ok(())
}

/// The MeshConfig fragment with the extension provider (`--mesh-config`), for Helm values or an IstioOperator.
pub fn render_mesh_config(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "# MeshConfig extension provider `{PROVIDER}`: strictly's built-in `{FORMAT}` format on the sidecar's stdout."
    )?;
    writeln!(
        out,
        "# Helm: helm upgrade istiod istio/istiod -n istio-system --reuse-values -f THIS_FILE (lists replace: keep your other extensionProviders)."
    )?;
    writeln!(
        out,
        "# IstioOperator: the meshConfig block under spec; the `istio` ConfigMap: its contents under data.mesh."
    )?;
    let doc = json!({
        "meshConfig": {
            "extensionProviders": [{
                "name": PROVIDER,
                "envoyFileAccessLog": {
                    "path": "/dev/stdout",
                    "logFormat": {"text": format_text()},
                },
            }],
        },
    });
    let yaml = serde_yaml_ng::to_string(&doc).map_err(io::Error::other)?;
    out.write_all(yaml.as_bytes())
}

fn metadata(name: String, t: &InstrumentTarget) -> Value {
    json!({
        "name": name,
        "namespace": t.namespace,
        "labels": {"app.kubernetes.io/managed-by": "strictly"},
    })
}

/// The lab's AUDIT rule: GETs from outside the namespace, which includes every
/// plaintext GET (a plaintext request has no source namespace).
fn audit_policy(t: &InstrumentTarget) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": metadata(format!("audit-{}-authpolicy", t.name), t),
        "spec": {
            "selector": {"matchLabels": t.labels},
            "action": "AUDIT",
            "rules": [{
                "from": [{"source": {"notNamespaces": [t.namespace]}}],
                "to": [{"operation": {"methods": ["GET"], "paths": ["/*"]}}],
            }],
        },
    })
}

/// The lab's EnvoyFilter with the `strictly` format in Envoy's v3 spelling
/// (`log_format.text_format_source`; the lab's `format` is deprecated).
fn envoy_filter(t: &InstrumentTarget) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": metadata(format!("{}-strictly-access-log", t.name), t),
        "spec": {
            "workloadSelector": {"labels": t.labels},
            "configPatches": [{
                "applyTo": "NETWORK_FILTER",
                "match": {
                    "context": "SIDECAR_INBOUND",
                    "listener": {"filterChain": {"filter": {"name": "envoy.filters.network.http_connection_manager"}}},
                },
                "patch": {
                    "operation": "MERGE",
                    "value": {"typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "access_log": [{
                            "name": "envoy.access_loggers.file",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                                "path": "/dev/stdout",
                                "log_format": {"text_format_source": {"inline_string": format!("{}\n", format_text())}},
                            },
                        }],
                    }},
                },
            }],
        },
    })
}

/// A Telemetry turning the provider on for the workload's inbound requests
/// only (`mode: SERVER`): the format has no upstream cluster, so an outbound
/// line would read as inbound plaintext.
fn telemetry(t: &InstrumentTarget) -> Value {
    json!({
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": metadata(format!("{}-strictly-access-log", t.name), t),
        "spec": {
            "selector": {"matchLabels": t.labels},
            "accessLogging": [{
                "providers": [{"name": PROVIDER}],
                "match": {"mode": "SERVER"},
            }],
        },
    })
}
