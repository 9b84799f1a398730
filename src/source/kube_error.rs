//! Problems talking to a cluster, said in plain words (issue 7 item 24).
//!
//! kube's own messages are for its developers (`ServiceError: client error
//! (Connect)`, `ApiError: … (ErrorResponse { … })`): a user needs the server
//! that could not be reached and why, the permission that is missing, the
//! contexts that do exist. Everything here is one line.

use std::sync::OnceLock;

/// The API server this process talks to, set once by [`remember_server`]:
/// errors name it without every call site carrying it (a run talks to one cluster).
static SERVER: OnceLock<String> = OnceLock::new();

/// Records the server URL errors will name.
pub fn remember_server(url: &str) {
    let _ = SERVER.set(url.trim_end_matches('/').to_string());
}

fn server() -> String {
    SERVER
        .get()
        .cloned()
        .unwrap_or_else(|| "the API server".to_string())
}

/// A problem talking to the cluster: one line, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{0}")]
    Config(String),
    #[error(
        "forbidden: {message} (strictly needs get/list/watch on pods and get on pods/log: see deploy/rbac-*.yaml)"
    )]
    Forbidden { message: String },
    #[error("{what}: cannot reach the cluster at {server}: {reason}")]
    Unreachable {
        what: String,
        server: String,
        reason: String,
    },
    /// The selection matched no container to read.
    #[error("{0}")]
    NothingSelected(String),
    #[error("{what}: {message}")]
    Api { what: String, message: String },
}

impl KubeError {
    /// Wraps a kube error for `what` (e.g. `list pods in istioinaction`).
    pub fn from_kube(what: impl Into<String>, e: kube::Error) -> KubeError {
        let what = what.into();
        match e {
            kube::Error::Api(status) if status.code == 403 => KubeError::Forbidden {
                message: if status.message.is_empty() {
                    format!("{what} (HTTP 403)")
                } else {
                    status.message.clone()
                },
            },
            kube::Error::Api(status) => {
                let message = if status.message.is_empty() {
                    // No Status body: likely not an API server at all (a proxy, a web server).
                    format!(
                        "{} answered HTTP {} with no Kubernetes status (is it an API server?)",
                        server(),
                        status.code
                    )
                } else {
                    format!("{} (HTTP {})", status.message, status.code)
                };
                KubeError::Api { what, message }
            }
            kube::Error::Auth(e) => KubeError::Api {
                what,
                message: format!("cannot authenticate: {}", plain(&e)),
            },
            other => match unreachable_reason(&other) {
                Some(reason) => KubeError::Unreachable {
                    what,
                    server: server(),
                    reason,
                },
                None => KubeError::Api {
                    what,
                    message: plain(&other),
                },
            },
        }
    }

    /// Returns true if and only if retrying later may help (not RBAC, not config).
    pub fn is_transient(&self) -> bool {
        !matches!(
            self,
            KubeError::Forbidden { .. } | KubeError::Config(_) | KubeError::NothingSelected(_)
        )
    }
}

/// Why a connection failed, in the words `curl` would use, if it did.
fn unreachable_reason(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut connect = false;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            return Some(match io.kind() {
                K::ConnectionRefused => "connection refused".into(),
                K::TimedOut => "connection timed out".into(),
                K::ConnectionReset => "connection reset".into(),
                K::HostUnreachable | K::NetworkUnreachable => "no route to host".into(),
                _ if io.to_string().contains("failed to lookup address") => {
                    "host name not resolved".into()
                }
                _ => io.to_string(),
            });
        }
        let text = s.to_string();
        if text.contains("elapsed") || text.contains("timed out") {
            return Some("connection timed out".into());
        }
        connect |= text.contains("Connect") || text.contains("connect");
        source = s.source();
    }
    connect.then(|| "cannot connect".to_string())
}

/// An error and its causes on one line, without kube's type-name prefixes.
pub fn plain(e: &dyn std::error::Error) -> String {
    let strip = |t: String| {
        let mut t = t;
        for prefix in [
            "ServiceError: ",
            "HyperError: ",
            "ApiError: ",
            "Failed to infer configuration: ",
        ] {
            if let Some(rest) = t.strip_prefix(prefix) {
                t = rest.to_string();
            }
        }
        t
    };
    let mut text = strip(e.to_string());
    let mut source = e.source();
    while let Some(s) = source {
        let more = strip(s.to_string());
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text.replace('\n', " ")
}

/// `--context NAME` when the kubeconfig has no such context: the ones it has.
pub fn unknown_context(name: &str, file: &str, contexts: &[String]) -> KubeError {
    let have = if contexts.is_empty() {
        "it has none".to_string()
    } else {
        format!("contexts there: {}", contexts.join(", "))
    };
    KubeError::Config(format!(
        "--context {name}: no such context in {file} ({have})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_timed_out_are_named() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            unreachable_reason(&refused).as_deref(),
            Some("connection refused")
        );
        let timed = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(
            unreachable_reason(&timed).as_deref(),
            Some("connection timed out")
        );
    }

    #[test]
    fn unknown_context_lists_the_others() {
        let e = unknown_context("nope", "/k", &["fake".into(), "other".into()]);
        assert_eq!(
            e.to_string(),
            "--context nope: no such context in /k (contexts there: fake, other)"
        );
    }
}
