//! `POST /api/v1/campaigns/{id}/claims`: the flash-sale path, straight into the engine.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::AppState;
use crate::domain::consumer::ConsumerRef;
use crate::engine::ClaimError;
use crate::web::error::{AppError, AppResult, ErrorCode};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The merchant's own reference for the consumer.
    consumer: String,
}

pub(super) fn claim_error(e: ClaimError) -> AppError {
    match e {
        ClaimError::Rejected(r) => AppError::conflict(r.code(), r.to_string()),
        ClaimError::NotFound => AppError::not_found("campaign"),
        ClaimError::Busy => AppError::busy(1),
        ClaimError::Failed => AppError::new(ErrorCode::Busy, e.to_string()).with_retry_after(1),
        ClaimError::OutcomeUnknown => {
            AppError::new(ErrorCode::OutcomeUnknown, e.to_string()).with_retry_after(1)
        }
    }
}

/// With an `Idempotency-Key` header the claim runs under it (see `web::idempotency`);
/// without one this costs a header lookup.
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: web::Json<ClaimRequest>,
) -> AppResult<HttpResponse> {
    match idempotency::key(&req)? {
        None => claim(auth, state, campaign_id, body).await,
        Some(key) => {
            let fingerprint = body.consumer.as_bytes().to_vec();
            let (a, s) = (auth.clone(), state.clone());
            let go = move || claim(auth, state, campaign_id, body);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

async fn claim(
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: web::Json<ClaimRequest>,
) -> AppResult<HttpResponse> {
    auth.require_scope("claims:write")?;
    let consumer = ConsumerRef::parse(&body.consumer)
        .map_err(|e| AppError::invalid("invalid_consumer", e.to_string()))?;
    let coupon = state
        .engine
        .claim(auth.tenant_id, *campaign_id, consumer)
        .await
        .map_err(claim_error)?;
    Ok(HttpResponse::Created().json(Claimed {
        coupon: ClaimedCoupon {
            id: coupon.id,
            code: &coupon.code,
            expires_at: coupon.expires_at,
            uses_left: coupon.uses_left,
        },
    }))
}

/// The 201 body. A struct rather than `json!`: no map is built per claim.
#[derive(Serialize)]
struct Claimed<'a> {
    coupon: ClaimedCoupon<'a>,
}

#[derive(Serialize)]
struct ClaimedCoupon<'a> {
    id: Uuid,
    code: &'a str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    uses_left: i32,
}
