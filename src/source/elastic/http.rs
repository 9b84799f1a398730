//! The HTTP side of the Elasticsearch source: auth, TLS, retries with backoff.
//!
//! reqwest's blocking client (rustls, the `ring` provider kube already
//! brings): the source runs on the pipeline's producer thread, which has no
//! async runtime, and pages are read one after another anyway.

use std::time::Duration;

use serde_json::Value;

use super::ElasticConfig;

/// How the store is authenticated (`ELASTIC_API_KEY`, else `ELASTIC_USER` / `ELASTIC_PASSWORD`).
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// The `encoded` value of Elasticsearch's create-API-key answer, sent as `Authorization: ApiKey ..`.
    ApiKey(String),
    Basic {
        user: String,
        password: String,
    },
}

// Never print a secret (a `{:?}` of the config in a panic or a log).
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::ApiKey(_) => f.write_str("ApiKey(..)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ..)"),
        }
    }
}

impl Auth {
    /// From the environment: an API key wins over a user and password.
    pub fn from_env() -> Result<Auth, String> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(key) = var("ELASTIC_API_KEY") {
            return Ok(Auth::ApiKey(key));
        }
        match (var("ELASTIC_USER"), var("ELASTIC_PASSWORD")) {
            (Some(user), Some(password)) => Ok(Auth::Basic { user, password }),
            (Some(_), None) => Err("ELASTIC_USER is set but ELASTIC_PASSWORD is not".into()),
            (None, Some(_)) => Err("ELASTIC_PASSWORD is set but ELASTIC_USER is not".into()),
            (None, None) => Ok(Auth::None),
        }
    }
}

/// Retries of requests that failed for a reason that may pass (429, 5xx, transport).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The wait before the second try; it doubles per try, up to 8 s (a `Retry-After` wins, up to 30 s).
    pub first_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_wait: Duration::from_millis(250),
        }
    }
}

/// A request that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum HttpFailure {
    /// The store answered with an error status.
    #[error("{url}: {status} {reason}")]
    Status {
        url: String,
        status: u16,
        reason: String,
    },
    /// No answer (connection refused or reset, timeout, TLS).
    #[error("{url}: {what}")]
    Transport { url: String, what: String },
}

impl HttpFailure {
    /// The same failure, saying it stayed over `tries` tries.
    fn after_tries(self, tries: u32) -> HttpFailure {
        match self {
            HttpFailure::Status {
                url,
                status,
                reason,
            } => HttpFailure::Status {
                url,
                status,
                reason: format!("{reason} (after {tries} tries)"),
            },
            HttpFailure::Transport { url, what } => HttpFailure::Transport {
                url,
                what: format!("{what} (after {tries} tries)"),
            },
        }
    }
}

pub(super) struct Client {
    http: reqwest::blocking::Client,
    base: String,
    index: String,
    auth: Auth,
    retry: Retry,
}

impl Client {
    pub(super) fn new(config: &ElasticConfig) -> Result<Client, String> {
        // reqwest is built without a crypto provider of its own: use ring, as kube does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("strictly/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("--elastic-ca-cert {}: {e}", path.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                format!(
                    "--elastic-ca-cert {}: not a PEM certificate: {e}",
                    path.display()
                )
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: config.url.trim_end_matches('/').to_string(),
            index: config.index.clone(),
            auth: config.auth.clone(),
            retry: config.retry,
        })
    }

    pub(super) fn post(&self, path: &str, body: Option<&Value>) -> Result<Vec<u8>, HttpFailure> {
        self.send(reqwest::Method::POST, path, body)
    }

    pub(super) fn delete(&self, path: &str, body: &Value) -> Result<Vec<u8>, HttpFailure> {
        self.send(reqwest::Method::DELETE, path, Some(body))
    }

    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, HttpFailure> {
        let url = format!("{}{path}", self.base);
        let mut wait = self.retry.first_wait;
        let mut attempt = 1;
        loop {
            let (failure, retry_after) = match self.once(method.clone(), &url, body) {
                Ok(body) => return Ok(body),
                Err(failed) => failed,
            };
            let transient = match &failure {
                HttpFailure::Status { status, .. } => *status == 429 || *status >= 500,
                HttpFailure::Transport { .. } => true,
            };
            if !transient {
                return Err(failure);
            }
            if attempt >= self.retry.attempts {
                return Err(failure.after_tries(attempt));
            }
            std::thread::sleep(retry_after.unwrap_or(wait));
            wait = (wait * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }

    /// One try: the body of a 2xx, or the failure and the store's `Retry-After`.
    fn once(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, (HttpFailure, Option<Duration>)> {
        let transport = |e: reqwest::Error| {
            // reqwest's Display stops at "error sending request": the cause says why.
            let mut what = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                what = format!("{what}: {s}");
                source = s.source();
            }
            (
                HttpFailure::Transport {
                    url: url.to_string(),
                    what,
                },
                None,
            )
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        request = match &self.auth {
            Auth::None => request,
            Auth::ApiKey(key) => request.header("Authorization", format!("ApiKey {key}")),
            Auth::Basic { user, password } => request.basic_auth(user, Some(password)),
        };
        let response = request.send().map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(30)));
        let bytes = response.bytes().map_err(transport)?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let reason = self.reason(status.as_u16(), &bytes);
        Err((
            HttpFailure::Status {
                url: url.to_string(),
                status: status.as_u16(),
                reason,
            },
            retry_after,
        ))
    }

    /// The status in words, the store's own reason, and what to do about 401/403.
    fn reason(&self, status: u16, body: &[u8]) -> String {
        let name = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error");
        let store = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let e = v.get("error")?;
            e.get("reason")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| e.as_str().map(str::to_string))
        });
        let advice = match status {
            401 => Some(
                "set ELASTIC_API_KEY (an API key's `encoded` value), or ELASTIC_USER and ELASTIC_PASSWORD"
                    .to_string(),
            ),
            403 => Some(format!(
                "the user needs the `read` privilege on {} (and `view_index_metadata` for a point in time)",
                self.index
            )),
            _ => None,
        };
        let mut out = name.to_string();
        for part in [store, advice].into_iter().flatten() {
            out.push_str(": ");
            out.push_str(&part);
        }
        out
    }
}
