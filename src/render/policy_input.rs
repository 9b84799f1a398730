//! What `strictly policy` reads of a report: the fields of the JSON report
//! (`strictly report -o json`) that decide and explain a policy.
//!
//! A report made in this run goes through the same JSON as a saved one
//! (`--from report.json`), so both paths read exactly the same fields and a
//! saved report can never be read differently from a fresh one.

use serde::Deserialize;

use crate::verdict::{PodLabels, Report};

/// A report as `policy` reads it.
#[derive(Clone, Debug, Deserialize)]
pub struct PolicyReport {
    pub window: PolicyWindow,
    pub min_requests: u64,
    pub destinations: Vec<PolicyDestination>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PolicyWindow {
    pub start: String,
    pub end: String,
}

/// One destination's verdict and the evidence a comment cites.
#[derive(Clone, Debug, Deserialize)]
pub struct PolicyDestination {
    /// `namespace/name`.
    pub destination: String,
    /// `ready`, `blocked`, `insufficient` (or `pending` in a `watch` report).
    pub verdict: String,
    pub reason: String,
    #[serde(default)]
    pub plaintext: u64,
    #[serde(default)]
    pub sources: Vec<PolicySource>,
    #[serde(default)]
    pub coverage: Option<PolicyCoverage>,
    #[serde(default)]
    pub pod_labels: Option<PodLabels>,
    /// `sidecar`, `ambient` or `sidecar+ambient` (absent in older reports: sidecar).
    #[serde(default)]
    pub dataplane: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PolicySource {
    pub source: String,
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub plaintext: u64,
    #[serde(default)]
    pub caller: Option<String>,
    #[serde(default)]
    pub peer_pod: Option<String>,
    #[serde(default)]
    pub peer_workload: Option<String>,
    #[serde(default)]
    pub peer_sidecar: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PolicyCoverage {
    #[serde(default)]
    pub short: Vec<PolicyShortStream>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PolicyShortStream {
    pub stream: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl PolicyReport {
    /// Reads a saved JSON report; the error says what is missing or malformed.
    pub fn from_json(bytes: &[u8]) -> Result<PolicyReport, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The same view of a report made in this run (through its JSON).
    pub fn from_report(report: &Report) -> PolicyReport {
        let value = serde_json::to_value(report).expect("a report serializes");
        serde_json::from_value(value).expect("a report reads back as the JSON it wrote")
    }
}

impl PolicySource {
    /// Who the caller is, as plainly as the report can say it: the
    /// well-known caller, the workload or pod that held the address, the
    /// identity, else the address (`plaintext` is a source, not a caller).
    pub fn describe(&self) -> String {
        let named = self
            .caller
            .clone()
            .or_else(|| self.peer_workload.clone())
            .or_else(|| self.peer_pod.clone())
            .or_else(|| (self.source != "plaintext").then(|| self.source.clone()));
        let mut who = match (named, &self.peer) {
            (Some(n), Some(p)) if !n.contains(p.as_str()) => format!("{n} {p}"),
            (Some(n), _) => n,
            (None, Some(p)) => p.clone(),
            (None, None) => "a caller whose address is not logged".to_string(),
        };
        if self.peer_sidecar == Some(false) {
            who.push_str(" (no sidecar)");
        }
        who
    }
}
