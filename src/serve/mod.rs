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

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

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
        .route("/healthz", get(healthz))
        .route("/report", get(report))
        .route("/metrics", get(metrics))
        .with_state(snapshots)
}

/// Serves until `shutdown` resolves (graceful).
///
/// On shutdown it stops accepting, closes idle keep-alive connections and
/// returns once the requests in flight are answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    snapshots: Snapshots,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(snapshots))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The latest snapshot, if a tick has run. The borrow is released at once so
/// the watch never waits on a request to publish.
fn latest(snapshots: &Snapshots) -> Option<Arc<Snapshot>> {
    snapshots.borrow().clone()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn report(State(snapshots): State<Snapshots>) -> Response {
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

async fn metrics(State(snapshots): State<Snapshots>) -> Response {
    let body = match latest(&snapshots) {
        Some(snapshot) => render_metrics(&snapshot),
        None => metrics::render_metrics_before_first_tick(),
    };
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response()
}
