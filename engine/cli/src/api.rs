//! Weir's own HTTP API: `/metrics`, `/healthz`, `/readyz`, and the rules:
//! `/api/v1/rules` and `/api/v1/alerts` (Prometheus' JSON, with its `type`,
//! `rule_name[]` and `rule_group[]` filters) and `/rules/NAME`, the page an
//! alert's `generatorURL` points at (the groups holding rule NAME).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use weir_rules::status::{alerts_response, error_response, rules_response};
use weir_rules::{GroupStatus, RuleFilter, RulesStatus};

#[derive(Clone)]
struct ApiState {
    metrics: PrometheusHandle,
    ready: Arc<AtomicBool>,
    /// Each `rules` processor's status, by component name.
    rules: Arc<BTreeMap<String, RulesStatus>>,
}

impl ApiState {
    fn groups(&self) -> Vec<GroupStatus> {
        self.rules.values().map(RulesStatus::get).collect()
    }
}

/// The API routes. `ready` is true while every component runs; `rules` are
/// the `rules` processors' status, by name.
pub fn router(
    metrics: PrometheusHandle,
    ready: Arc<AtomicBool>,
    rules: BTreeMap<String, RulesStatus>,
) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/rules/{name}", get(one_rule))
        .with_state(ApiState {
            metrics,
            ready,
            rules: Arc::new(rules),
        })
}

async fn list_rules(State(state): State<ApiState>, RawQuery(query): RawQuery) -> Response {
    match RuleFilter::parse(query.as_deref().unwrap_or_default()) {
        Ok(filter) => Json(rules_response(&filter.apply(state.groups()))).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(error_response("bad_data", &message)),
        )
            .into_response(),
    }
}

async fn list_alerts(State(state): State<ApiState>) -> Response {
    Json(alerts_response(&state.groups())).into_response()
}

async fn one_rule(State(state): State<ApiState>, Path(name): Path<String>) -> Response {
    let filter = RuleFilter {
        names: vec![name.clone()],
        ..RuleFilter::default()
    };
    let groups = filter.apply(state.groups());
    if groups.is_empty() {
        let message = format!("no rule is named `{name}`; GET /api/v1/rules lists the rules");
        return (
            StatusCode::NOT_FOUND,
            Json(error_response("not_found", &message)),
        )
            .into_response();
    }
    Json(rules_response(&groups)).into_response()
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
