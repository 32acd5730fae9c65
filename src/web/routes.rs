//! Every URL the service answers, in one table. Find a URL here, then follow the handler.

use actix_web::web::{self, delete, get, patch, post};
use actix_web::Resource;

use super::{campaigns, claims, health, metrics_endpoint, redemptions, signin, tenant};
use crate::error::{AppError, ErrorCode};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg
        // Operations
        .service(at("/livez").route(get().to(health::livez)))
        .service(at("/readyz").route(get().to(health::readyz)))
        .service(at("/metrics").route(get().to(metrics_endpoint::render)))
        // Merchant API (API-key auth)
        .service(at("/api/v1/tenant").route(get().to(tenant::show)))
        .service(at("/api/v1/campaigns").route(post().to(campaigns::create)))
        .service(
            at("/api/v1/campaigns/{id}")
                .route(get().to(campaigns::show))
                .route(patch().to(campaigns::update)),
        )
        .service(at("/api/v1/campaigns/{id}/claims").route(post().to(claims::create)))
        .service(at("/api/v1/coupons/{code}/redemptions").route(post().to(redemptions::create)))
        .service(at("/api/v1/redemptions/{id}").route(delete().to(redemptions::undo)))
        // Consumer sign-in (OpenID Connect); see web/signin/mod.rs for the flow
        .service(at("/auth/signin").route(get().to(signin::page)))
        .service(at("/auth/complete").route(get().to(signin::complete)))
        .service(at("/auth/me").route(get().to(signin::me)))
        .service(at("/auth/{provider}/start").route(get().to(signin::start)))
        .service(
            at("/auth/{provider}/callback")
                .route(get().to(signin::callback_get))
                .route(post().to(signin::callback_post)),
        );
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
