//! Health checks for load balancers and orchestrators.
//!
//! - `GET /healthz`: the process is alive and serving HTTP (200, always).
//! - `GET /readyz`: the store and the catalog both answer (200), or not
//!   (503, naming which; the reason goes to the log, not to the caller).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;

/// How long each backend may take to answer a readiness check.
const PATIENCE: Duration = Duration::from_secs(5);

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let found = state.service.readiness(PATIENCE).await;
    let word = |problem: &Option<String>| if problem.is_none() { "ok" } else { "failing" };
    for (part, problem) in [("store", &found.store), ("catalog", &found.catalog)] {
        if let Some(problem) = problem {
            tracing::warn!(part, problem = %problem, "not ready");
        }
    }
    let status = if found.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if found.is_ready() { "ready" } else { "not_ready" },
        "store": word(&found.store),
        "catalog": word(&found.catalog),
    });
    (status, Json(body))
}
