//! The HTTP endpoint of a running watch: `/metrics`, `/report`, `/healthz`.
//!
//! The endpoint only reads: every request takes the latest
//! [`Snapshot`] from the watch channel and renders it. It never touches the
//! aggregate, so a slow scrape cannot hold up a tick.
//!
//! | path       | answer                                                        |
//! |------------|---------------------------------------------------------------|
//! | `/healthz` | 200 `ok` while the process serves                             |
//! | `/report`  | 200 the spec's §5 JSON report; 503 before the first tick      |
//! | `/metrics` | 200 Prometheus text ([`render_metrics`]); families only before the first tick |
//!
//! Other paths answer 404, other methods 405.

mod metrics;

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::oneshot;

pub use self::metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, render_metrics};
use crate::watch::snapshot::Snapshot;

/// The snapshot channel: `None` until the first tick.
pub type Snapshots = tokio::sync::watch::Receiver<Option<Arc<Snapshot>>>;

/// What `/report` answers before the first tick, one line of JSON.
const NO_REPORT_YET: &str = "{\"error\":\"no report yet: the first tick has not run\"}\n";

const JSON: &str = "application/json";

/// The routes, reading snapshots from `snapshots`.
pub fn router(snapshots: Snapshots) -> Router {
    Router::new()
        .route("/healthz", get(get_healthz))
        .route("/report", get(get_report))
        .route("/metrics", get(get_metrics))
        .with_state(snapshots)
}

/// How long [`serve`] waits, once `shutdown` resolves, for connections to
/// finish before it returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Serves until `shutdown` resolves (graceful).
///
/// On shutdown it stops accepting, closes idle keep-alive connections and
/// waits for the requests in flight, at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_grace(listener, snapshots, shutdown, SHUTDOWN_GRACE).await
}

/// [`serve`], waiting at most `grace` for connections after `shutdown`.
///
/// The bound is there because a graceful shutdown alone waits for every
/// connection, and a client that sent half a request (or a byte) holds its
/// connection open for as long as it likes: the watch must still exit and
/// write its final report. Connections left after `grace` are abandoned to
/// the runtime, which closes them when it shuts down.
pub async fn serve_with_grace(
    listener: tokio::net::TcpListener,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (signalled, on_signal) = oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = signalled.send(());
    };
    let server = axum::serve(listener, router(snapshots))
        .with_graceful_shutdown(signal)
        .into_future();
    let deadline = async move {
        match on_signal.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The signal never fired: only the server can end this select.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => Ok(()),
    }
}

/// The latest snapshot, if a tick has run. The borrow is released at once so
/// the watch never waits on a request to publish.
fn latest(snapshots: &Snapshots) -> Option<Arc<Snapshot>> {
    snapshots.borrow().clone()
}

async fn get_healthz() -> &'static str {
    "ok"
}

async fn get_report(State(snapshots): State<Snapshots>) -> Response {
    let Some(snapshot) = latest(&snapshots) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, JSON)],
            NO_REPORT_YET,
        )
            .into_response();
    };
    // The same bytes as `report --output json`: one renderer for §5.
    let mut body = Vec::new();
    match crate::render::json::render(&snapshot.report, &mut body) {
        Ok(()) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, JSON)],
            format!("{}\n", serde_json::json!({ "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn get_metrics(State(snapshots): State<Snapshots>) -> Response {
    let body = match latest(&snapshots) {
        Some(snapshot) => render_metrics(&snapshot),
        None => metrics::render_metrics_before_first_tick(),
    };
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
}
