//! Weir's own HTTP API: `/metrics`, `/healthz`, `/readyz`, and the routes
//! components add (the rules' `/api/v1/rules`, `/api/v1/alerts`,
//! `/rules/NAME`; the store's `/api/v1/sql`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

#[derive(Clone)]
struct ApiState {
    metrics: PrometheusHandle,
    ready: Arc<AtomicBool>,
}

/// The API routes. `ready` is true while every component runs; `routes`
/// are those the components added.
pub fn router(
    metrics: PrometheusHandle,
    ready: Arc<AtomicBool>,
    routes: impl IntoIterator<Item = Router>,
) -> Router {
    let own = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ApiState { metrics, ready });
    routes.into_iter().fold(own, Router::merge)
}

async fn render_metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn readyz(State(state): State<ApiState>) -> impl IntoResponse {
    if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: starting, shutting down, or a component failed\n",
        )
    }
}
