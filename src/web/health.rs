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
    match state.store.readiness().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(reason) => Err(AppError::new(ErrorCode::NotReady, reason)),
    }
}
