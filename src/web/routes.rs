//! Every URL the service answers, in one table. Find a URL here, then follow the handler.

use actix_web::web::{self, get};
use actix_web::Resource;

use super::{health, metrics_endpoint, tenant};
use crate::error::{AppError, ErrorCode};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg
        // Operations
        .service(at("/livez").route(get().to(health::livez)))
        .service(at("/readyz").route(get().to(health::readyz)))
        .service(at("/metrics").route(get().to(metrics_endpoint::render)))
        // Merchant API (API-key auth)
        .service(at("/api/v1/tenant").route(get().to(tenant::show)));
}

/// A resource that answers 405 (not the app-wide 404) to a method it does not route.
fn at(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::new(
        ErrorCode::MethodNotAllowed,
        "this URL does not accept that method",
    ))
}
