//! `POST /api/v1/campaigns/{id}/claims`: the flash-sale path, straight into the engine.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::json::ApiJson;
use super::keyed_claims;
use super::AppState;
use crate::domain::campaign::ClaimRejection;
use crate::domain::consumer::ConsumerRef;
use crate::engine::{ClaimError, IssuedCoupon};
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::openapi::ErrorBody;

#[derive(Deserialize, ToSchema)]
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
        ClaimError::OutcomeUnknown(_) => {
            AppError::new(ErrorCode::OutcomeUnknown, e.to_string()).with_retry_after(1)
        }
        ClaimError::KeyInUse | ClaimError::KeyTaken => idempotency::in_use(),
    }
}

/// With an `Idempotency-Key` header the claim runs under it (see `web::keyed_claims`);
/// without one this costs a header lookup.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/claims", operation_id = "createClaim", tag = "claims",
    summary = "Claim a coupon for a consumer",
    params(("id" = Uuid, Path, description = "The campaign"), ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; the same key with the same body replays the first answer for 24 h")),
    request_body = ClaimRequest,
    responses(
        (status = 201, description = "Claimed", body = Claimed),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 409, description = "`not_started`, `ended`, `paused`, `not_active`, `sold_out`, \
            `consumer_limit_reached`, `lottery_lost`: the campaign refuses the claim; \
            `idempotency_key_in_use`: a request with this Idempotency-Key is in progress, or its answer was lost \
            and whether it was saved is not known yet", body = ErrorBody),
        (status = 422, description = "`invalid_consumer`: the consumer reference is empty, too long \
            or has control characters; `idempotency_key_reused`: the Idempotency-Key was used for another request; `invalid_idempotency_key`: the header is empty or longer than 255 characters", body = ErrorBody),
        (status = 503, description = "`outcome_unknown`: the database's answer was lost (a connection \
            broke, or it did not answer in time, after the claim was sent): it may have been saved. A retry with \
            the same Idempotency-Key gets the claim's own answer (201 with its coupon) if it was saved, and runs the claim \
            if it was not; or look it up with `GET /api/v1/campaigns/{id}/coupons?consumer=`", body = ErrorBody),
    ),
    security(("api_key" = ["claims:write"])))]
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    body: ApiJson<ClaimRequest>,
) -> AppResult<HttpResponse> {
    // Checked before the key is looked at: a refused request is not the key's answer.
    let key = idempotency::key(&req)?;
    auth.require_scope("claims:write")?;
    // The merchant's own namespace: never a device or a signed-in person.
    let consumer = ConsumerRef::merchant(&body.consumer)
        .map_err(|e| AppError::invalid("invalid_consumer", e.to_string()).field("consumer"))?;
    match key {
        None => {
            let result = state
                .engine
                .claim(auth.tenant_id, *campaign_id, consumer)
                .await;
            Ok(created(&result.map_err(claim_error)?))
        }
        Some(key) => {
            let fingerprint = body.consumer.as_bytes();
            keyed_claims::claim(
                &req,
                &auth,
                &state,
                *campaign_id,
                consumer,
                fingerprint,
                key,
            )
            .await
        }
    }
}

/// The 201 answer of a claim.
pub(super) fn created(coupon: &IssuedCoupon) -> HttpResponse {
    HttpResponse::Created().json(Claimed::of(
        coupon.id,
        &coupon.code,
        coupon.expires_at,
        coupon.uses_left,
    ))
}

/// A lottery loser's answer, for a replay (the engine's own goes through `claim_error`).
pub(super) fn lottery_lost() -> HttpResponse {
    let lost = ClaimRejection::LotteryLost;
    ResponseError::error_response(&AppError::conflict(lost.code(), lost.to_string()))
}

/// The 201 body. A struct rather than `json!`: no map is built per claim.
#[derive(Serialize, ToSchema)]
pub(super) struct Claimed<'a> {
    coupon: ClaimedCoupon<'a>,
}

impl<'a> Claimed<'a> {
    pub(super) fn of(
        id: Uuid,
        code: &'a str,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        uses_left: i32,
    ) -> Claimed<'a> {
        Claimed {
            coupon: ClaimedCoupon {
                id,
                code,
                expires_at,
                uses_left,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ClaimedCoupon<'a> {
    id: Uuid,
    code: &'a str,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    uses_left: i32,
}
