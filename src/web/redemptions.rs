//! Using coupons in store: `POST /api/v1/coupons/{code}/redemptions` and its undo,
//! `DELETE /api/v1/redemptions/{id}`.
//!
//! The body's optional `"check_code"` is the 6 digits on the consumer's live coupon screen:
//! the current or the previous step is accepted, anything else is 409 `wrong_check_code`
//! and uses nothing. A tenant with `require_check_code` gets 422 `check_code_required`
//! without one. `"store"` is free text, kept as given and matched onto one of the tenant's
//! stores by code (any case) or exact name.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::idempotency;
use super::AppState;
use crate::domain::coupon_code::CouponCode;
use crate::domain::verification::{CheckCode, CheckCodePolicy, CheckCodeRejection};
use crate::engine::{RedeemError, UndoError};
use crate::store::RedeemInput;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::openapi::ErrorBody;

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The store, free text matched onto one of the merchant's stores by code or name.
    store: Option<String>,
    staff: Option<String>,
    /// A string, so leading zeros survive.
    check_code: Option<String>,
}

fn short_text(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    match value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        Some(v) if v.chars().count() > 100 || v.chars().any(char::is_control) => {
            Err(AppError::invalid(
                "invalid_input",
                format!("{field} must be at most 100 characters of text"),
            )
            .field(field))
        }
        other => Ok(other),
    }
}

fn wrong_check_code() -> AppError {
    let r = CheckCodeRejection::Wrong;
    AppError::conflict(r.code(), r.to_string())
}

/// With an `Idempotency-Key` header the redemption runs under it (see `web::idempotency`).
#[utoipa::path(post, path = "/api/v1/coupons/{code}/redemptions", operation_id = "createRedemption", tag = "redemptions",
    summary = "Use a coupon",
    params(("code" = String, Path, description = "The coupon's code"), ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; the same key with the same body replays the first answer for 24 h")),
    request_body(content = Option<RedeemRequest>, description = "Optional: an empty body records no store or staff"),
    responses(
        (status = 201, description = "Redeemed", body = Redeemed),
        (status = 404, description = "`unknown_code`: no coupon of this merchant has that code", body = ErrorBody),
        (status = 409, description = "`already_used`, `expired`, `not_yet_valid`: the coupon cannot be used; \
            `wrong_check_code`: the check code is not the coupon screen's; \
            `idempotency_key_in_use`: a request with this Idempotency-Key is in progress", body = ErrorBody),
        (status = 422, description = "`check_code_required`: the merchant requires the check code; \
            `invalid_input`: store or staff is longer than 100 characters; `idempotency_key_reused`: the Idempotency-Key was used for another request; `invalid_idempotency_key`: the header is empty or longer than 255 characters", body = ErrorBody),
        (status = 429, description = "`too_many_check_code_attempts`: too many wrong check codes for this coupon", body = ErrorBody),
    ),
    security(("api_key" = ["redemptions:write"])))]
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    code: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    match idempotency::key(&req)? {
        None => redeem(auth, state, code, body).await,
        Some(key) => {
            let fingerprint = body.clone();
            let (a, s) = (auth.clone(), state.clone());
            let go = move || redeem(auth, state, code, body);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

async fn redeem(
    auth: ApiAuth,
    state: web::Data<AppState>,
    code: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    auth.require_scope("redemptions:write")?;
    // The body is optional: an empty one means no store or staff recorded.
    let request: RedeemRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RedeemRequest::default()
    } else {
        super::json::from_slice(&body)?
    };
    let store = short_text("store", request.store)?;
    let staff = short_text("staff", request.staff)?;
    // A code that cannot exist is as unknown as one that does not.
    let code = CouponCode::parse(&code)
        .map_err(|_| AppError::new(ErrorCode::UnknownCode, "no coupon has that code"))?;
    // An empty string is no code at all; anything else that is not 6 digits cannot match,
    // so it is the same wrong code (and uses nothing).
    let check_code = match request.check_code.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(given) => Some(CheckCode::parse(given).map_err(|_| wrong_check_code())?),
    };
    let input = RedeemInput {
        store_text: store.as_deref(),
        staff: staff.as_deref(),
        check_policy: CheckCodePolicy::IfTenantRequires,
        check_code: check_code.as_ref(),
        check_step_seconds: state.settings.pages.code_step.as_secs().max(1),
        ..RedeemInput::default()
    };
    let redemption = state
        .engine
        .redeem(auth.tenant_id, &code, &input)
        .await
        .map_err(|e| match e {
            RedeemError::Rejected(r) => AppError::conflict(r.code(), r.to_string()),
            RedeemError::CheckCode(CheckCodeRejection::Wrong) => wrong_check_code(),
            RedeemError::CheckCode(r @ CheckCodeRejection::Required) => {
                AppError::invalid(r.code(), r.to_string())
            }
            RedeemError::CheckCode(r @ CheckCodeRejection::TooManyAttempts) => {
                AppError::new(ErrorCode::Limited(r.code()), r.to_string()).with_retry_after(60)
            }
            RedeemError::UnknownCode => AppError::new(ErrorCode::UnknownCode, e.to_string()),
            // The API sends no confirm token, so these cannot happen here.
            RedeemError::TokenUsed | RedeemError::TokenInvalid => AppError::internal(e),
            RedeemError::Store(s) => s.into(),
        })?;
    Ok(HttpResponse::Created().json(Redeemed {
        redemption: RedemptionMade {
            id: redemption.id,
            coupon_id: redemption.coupon_id,
            redeemed_at: redemption.redeemed_at,
            uses_left: redemption.uses_left,
            store_id: redemption.store_id,
        },
    }))
}

#[derive(Serialize, ToSchema)]
struct Redeemed {
    redemption: RedemptionMade,
}

#[derive(Serialize, ToSchema)]
struct RedemptionMade {
    id: Uuid,
    coupon_id: Uuid,
    redeemed_at: chrono::DateTime<chrono::Utc>,
    uses_left: i32,
    /// The store matched from `store`, if any.
    store_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
struct Undone {
    redemption: UndoneRedemption,
}

#[derive(Serialize, ToSchema)]
struct UndoneRedemption {
    id: Uuid,
    undone: bool,
    uses_left: i32,
}

/// Undo a redemption (within the undo window).
#[utoipa::path(delete, path = "/api/v1/redemptions/{id}", operation_id = "undoRedemption", tag = "redemptions",
    params(("id" = Uuid, Path, description = "The redemption")),
    responses(
        (status = 200, description = "Undone; the use is given back", body = Undone),
        (status = 404, description = "`not_found`: no such redemption", body = ErrorBody),
        (status = 409, description = "`already_undone`: it was undone before; `undo_window_passed`: \
            too late to undo", body = ErrorBody),
    ),
    security(("api_key" = ["redemptions:write"])))]
pub async fn undo(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("redemptions:write")?;
    let uses_left = state
        .engine
        .undo_redemption(auth.tenant_id, *id)
        .await
        .map_err(|e| match e {
            UndoError::NotFound => AppError::not_found("redemption"),
            UndoError::AlreadyUndone => AppError::conflict("already_undone", e.to_string()),
            UndoError::WindowPassed => AppError::conflict("undo_window_passed", e.to_string()),
            UndoError::Store(s) => s.into(),
        })?;
    Ok(HttpResponse::Ok().json(Undone {
        redemption: UndoneRedemption {
            id: *id,
            undone: true,
            uses_left,
        },
    }))
}
