//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::AppState;
use crate::web::error::{AppError, ErrorCode};

/// The process is up and serving HTTP; nothing else is checked, so a slow database never
/// gets a healthy process restarted.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready to take traffic: the database answers and the schema is current. The answer is
/// public, so it names the kind of problem only; the database's own words (host names,
/// user names, server messages) go to the log.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    // A database that went silent (a partition) is not ready either, and must not hold the
    // probe.
    let deadline = state.settings.engine.batch_timeout;
    let answer = tokio::time::timeout(deadline, state.store.readiness())
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "database unavailable: no answer within {deadline:?}"
            ))
        });
    match answer {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(reason) => {
            tracing::warn!(reason = %reason, "not ready");
            Err(AppError::new(ErrorCode::NotReady, public_reason(&reason)))
        }
    }
}

/// The part of a readiness failure fit for anyone to read.
fn public_reason(reason: &str) -> &'static str {
    if reason.starts_with("migrations") {
        "database migrations are pending"
    } else {
        "the database is unavailable"
    }
}
