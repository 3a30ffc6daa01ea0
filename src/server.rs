//! The operator's HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process is alive) and
//! `/readyz`: the leader is ready once its AppStack cache has synced (body `ok`); a standby is
//! ready while it can read the Lease (body `standby`), so that a Deployment of two replicas rolls
//! out, and its readiness says it can take over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::leader::Leadership;
use crate::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    leadership: Arc<Leadership>,
}

/// `ready`: the AppStack cache has synced.
pub fn router(
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    leadership: Arc<Leadership>,
) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readiness))
        .with_state(Shared {
            metrics,
            ready,
            leadership,
        })
}

async fn metrics_text(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn readiness(State(shared): State<Shared>) -> (StatusCode, &'static str) {
    readiness_of(&shared.leadership, shared.ready.load(Ordering::Relaxed))
}

fn readiness_of(leadership: &Leadership, synced: bool) -> (StatusCode, &'static str) {
    match (leadership.is_leading(), synced, leadership.is_in_touch()) {
        (true, true, _) => (StatusCode::OK, "ok"),
        (true, false, _) => (StatusCode::SERVICE_UNAVAILABLE, "cache not synced yet"),
        (false, _, true) => (StatusCode::OK, "standby"),
        (false, _, false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "standby: cannot read the Lease",
        ),
    }
}

/// Serve until the process ends.
pub async fn serve(address: SocketAddr, app: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(%address, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synced_leader_and_a_standby_in_touch_are_ready() {
        let sole = Leadership::sole();
        assert_eq!(readiness_of(&sole, true), (StatusCode::OK, "ok"));
        assert_eq!(
            readiness_of(&sole, false).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let fresh = Leadership::default();
        assert_eq!(
            readiness_of(&fresh, false).0,
            StatusCode::SERVICE_UNAVAILABLE,
            "a standby that has not read the Lease yet"
        );
        fresh.set_in_touch(true);
        assert_eq!(readiness_of(&fresh, false), (StatusCode::OK, "standby"));
    }
}
