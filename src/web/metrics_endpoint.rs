//! `GET /metrics`: Prometheus text exposition.

use actix_web::{web, HttpResponse};

use super::AppState;

pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}
