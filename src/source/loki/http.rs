//! Loki's HTTP API on the wire: one `GET` with tenant and credentials,
//! retried with backoff on what a busy Loki answers (429, 5xx, connection
//! resets), refused at once on what retrying cannot fix (401, 403, 400).
//!
//! The client is the hyper + rustls stack kube already builds, driven by a
//! one-thread tokio runtime: the page loop above it stays synchronous.

use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::LokiError;

/// The most bytes one response may hold (5,000 entries of 1 MiB lines would
/// be 5 GiB; real pages are a few MiB): past it the read fails, bounded.
const MAX_RESPONSE: usize = 512 << 20;
/// How long one request may take before it counts as failed (and is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts per request: the first and four retries, 0.2 s, 0.4 s, 0.8 s and
/// 1.6 s apart (a `Retry-After` of up to 30 s is honoured instead).
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How strictly authenticates to Loki.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// `LOKI_TOKEN` (or logcli's `LOKI_BEARER_TOKEN`).
    Bearer(String),
    /// `LOKI_USER` (or logcli's `LOKI_USERNAME`) and `LOKI_PASSWORD`.
    Basic { user: String, password: String },
}

impl Auth {
    /// Reads the credentials from the environment, as logcli does (with strictly's shorter names first).
    pub fn from_env() -> Auth {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        if let Some(token) = var(&["LOKI_TOKEN", "LOKI_BEARER_TOKEN"]) {
            return Auth::Bearer(token);
        }
        match (
            var(&["LOKI_USER", "LOKI_USERNAME"]),
            var(&["LOKI_PASSWORD"]),
        ) {
            (Some(user), password) => Auth::Basic {
                user,
                password: password.unwrap_or_default(),
            },
            _ => Auth::None,
        }
    }

    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A Loki endpoint: base URL, tenant, credentials, and the runtime that drives requests.
pub struct Client {
    base: String,
    org_id: Option<String>,
    auth: Auth,
    http: HyperClient<Connector, Empty<Bytes>>,
    runtime: tokio::runtime::Runtime,
    /// Requests retried so far (429, 5xx, resets).
    pub retries: u64,
}

impl Client {
    /// Checks the URL (`http://` or `https://`, no query) and builds the client.
    pub fn new(url: &str, org_id: Option<String>, auth: Auth) -> Result<Client, LokiError> {
        let base = url.trim_end_matches('/').to_string();
        let uri: Uri = base
            .parse()
            .map_err(|e| LokiError::Usage(format!("--loki: {url:?} is not a URL: {e}")))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.query().is_some() {
            return Err(LokiError::Usage(format!(
                "--loki: {url:?} is not an http:// or https:// base URL (e.g. http://loki-gateway.monitoring:3100)"
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| LokiError::Usage(format!("cannot start the async runtime: {e}")))?;
        let builder = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| LokiError::Usage(format!("TLS setup: {e}")))?;
        // No system CA store (a scratch container): plain http:// still works,
        // and https:// then fails on connect naming the certificate.
        let tls = match hyper_rustls::ConfigBuilderExt::with_native_roots(builder.clone()) {
            Ok(b) => b.with_no_client_auth(),
            Err(_) => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Ok(Client {
            base,
            org_id,
            auth,
            http,
            runtime,
            retries: 0,
        })
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET {base}{path}?{params}`: the body of a 200, after retries.
    pub fn get(&mut self, path: &str, params: &[(&str, String)]) -> Result<Bytes, LokiError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        let url = format!("{}{path}?{}", self.base, query.finish());
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let outcome = self.runtime.block_on(self.once(&url));
            let (why, wait) = match outcome {
                Ok(Attempt::Body(b)) => return Ok(b),
                Ok(Attempt::Refused(e)) => return Err(e),
                Ok(Attempt::Transient { why, retry_after }) => (why, retry_after),
                Err(why) => (why, None),
            };
            if attempt >= ATTEMPTS {
                return Err(LokiError::Unavailable(format!(
                    "{}: {why} ({attempt} attempts)",
                    self.base
                )));
            }
            self.retries += 1;
            std::thread::sleep(wait.unwrap_or(backoff).min(Duration::from_secs(30)));
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn once(&self, url: &str) -> Result<Attempt, String> {
        let mut req = Request::get(url);
        if let Some(org) = &self.org_id {
            req = req.header("X-Scope-OrgID", org);
        }
        if let Some(auth) = self.auth.header() {
            req = req.header(hyper::header::AUTHORIZATION, auth);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("bad request: {e}"))?;
        let fut = async {
            let resp = self.http.request(req).await.map_err(|e| describe(&e))?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| format!("reading the response: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, retry_after, body))
        };
        let (status, retry_after, body) = tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))??;
        Ok(judge(status, retry_after, body, self.org_id.is_some()))
    }
}

/// What one attempt came to.
enum Attempt {
    Body(Bytes),
    Refused(LokiError),
    Transient {
        why: String,
        retry_after: Option<Duration>,
    },
}

/// Sorts a response into success, worth retrying, or final.
fn judge(status: StatusCode, retry_after: Option<Duration>, body: Bytes, org: bool) -> Attempt {
    let text = String::from_utf8_lossy(&body);
    let said = text.lines().next().unwrap_or("").trim();
    let said: String = said.chars().take(300).collect();
    match status {
        s if s.is_success() => Attempt::Body(body),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => Attempt::Transient {
            why: format!("{status}: {said}"),
            retry_after,
        },
        s if s.is_server_error() => Attempt::Transient {
            why: format!("{status}: {said}"),
            retry_after,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let hint = if org || !said.contains("org") {
                "set LOKI_TOKEN, or LOKI_USER and LOKI_PASSWORD"
            } else {
                "a multi-tenant Loki needs the tenant: --loki-org-id or LOKI_ORG_ID"
            };
            Attempt::Refused(LokiError::Denied(format!("{status}: {said} ({hint})")))
        }
        _ => Attempt::Refused(LokiError::Refused(format!("{status}: {said}"))),
    }
}

/// A transport error in a few words (hyper's Display hides the cause).
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_into_retry_and_refusal() {
        let body = |s: &str| Bytes::from(s.to_string());
        assert!(matches!(
            judge(StatusCode::OK, None, body("{}"), false),
            Attempt::Body(_)
        ));
        for s in [429, 500, 502, 503, 504] {
            let s = StatusCode::from_u16(s).unwrap();
            assert!(matches!(
                judge(s, None, body("busy"), false),
                Attempt::Transient { .. }
            ));
        }
        match judge(StatusCode::UNAUTHORIZED, None, body("no org id\n"), false) {
            Attempt::Refused(LokiError::Denied(m)) => assert!(m.contains("--loki-org-id"), "{m}"),
            _ => panic!("401 is final"),
        }
        assert!(matches!(
            judge(StatusCode::BAD_REQUEST, None, body("parse error"), false),
            Attempt::Refused(LokiError::Refused(_))
        ));
    }

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        let a = Auth::Basic {
            user: "u".into(),
            password: "p".into(),
        };
        assert_eq!(a.header().as_deref(), Some("Basic dTpw"));
    }
}
