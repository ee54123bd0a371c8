//! The rules on Weir's API, in Prometheus' JSON: `/api/v1/rules` (with its
//! `type`, `rule_name[]` and `rule_group[]` filters), `/api/v1/alerts`, and
//! `/rules/NAME`, the page an alert's `generatorURL` points at (the groups
//! holding rule NAME).
//!
//! Every `rules` processor publishes its [`RulesStatus`] on one shared
//! [`StatusBoard`]; the first one built adds the routes, which read the
//! board at each request.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use weir_config::BuildContext;

use crate::status::{alerts_response, error_response, rules_response};
use crate::{GroupStatus, RuleFilter, RulesStatus};

/// The status of every `rules` processor of a running Weir, by name.
#[derive(Debug, Default)]
pub struct StatusBoard(RwLock<BTreeMap<String, RulesStatus>>);

impl StatusBoard {
    /// Adds (or replaces) processor `name`'s status.
    pub fn insert(&self, name: &str, status: RulesStatus) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), status);
    }

    /// Every group's status now, in processor-name order.
    pub fn groups(&self) -> Vec<GroupStatus> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(RulesStatus::get)
            .collect()
    }
}

/// Publishes processor `name`'s `status` on the board of `cx`'s engine,
/// adding the routes when it is the first.
pub fn publish(cx: &mut BuildContext<'_>, name: &str, status: RulesStatus) {
    let board = match cx.resources().get::<StatusBoard>() {
        Some(board) => board,
        None => {
            let board = Arc::new(StatusBoard::default());
            cx.resources().insert(board.clone());
            cx.add_api_routes(router(board.clone()));
            board
        }
    };
    board.insert(name, status);
}

/// The routes over `board`.
pub fn router(board: Arc<StatusBoard>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/rules/{name}", get(one_rule))
        .with_state(board)
}

async fn list_rules(State(board): State<Arc<StatusBoard>>, RawQuery(query): RawQuery) -> Response {
    match RuleFilter::parse(query.as_deref().unwrap_or_default()) {
        Ok(filter) => Json(rules_response(&filter.apply(board.groups()))).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(error_response("bad_data", &message)),
        )
            .into_response(),
    }
}

async fn list_alerts(State(board): State<Arc<StatusBoard>>) -> Response {
    Json(alerts_response(&board.groups())).into_response()
}

async fn one_rule(State(board): State<Arc<StatusBoard>>, Path(name): Path<String>) -> Response {
    let filter = RuleFilter {
        names: vec![name.clone()],
        ..RuleFilter::default()
    };
    let groups = filter.apply(board.groups());
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
