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

/// Ready to take traffic: the database answers and the schema is current.
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
        Err(reason) => Err(AppError::new(ErrorCode::NotReady, reason)),
    }
}
