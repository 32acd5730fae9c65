//! Using coupons in store: `POST /api/v1/coupons/{code}/redemptions`, its undo,
//! `DELETE /api/v1/redemptions/{id}`, and the list, `GET /api/v1/redemptions` (reading
//! it is `campaigns:read`: redemptions are campaign data, as on a coupon's lookup).
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
use super::pagination;
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this campaign's redemptions.
    #[param(value_type = Option<Uuid>)]
    campaign: Option<String>,
    /// Only those linked to this store (its id; see `GET /api/v1/stores`).
    #[param(value_type = Option<Uuid>)]
    store: Option<String>,
    /// Redeemed at or after this RFC 3339 time (write `+` as `%2B`, or use `Z`).
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    from: Option<String>,
    /// Redeemed before this RFC 3339 time.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    to: Option<String>,
    /// 1 to 200 (default 50).
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page (the same filters must be given again).
    cursor: Option<String>,
}

/// One redemption, undone ones included.
#[derive(Serialize, ToSchema)]
#[schema(as = RedemptionListItem)]
struct ListedRedemption<'a> {
    id: Uuid,
    coupon_id: Uuid,
    coupon_code: Option<&'a str>,
    campaign_id: Uuid,
    redeemed_at: chrono::DateTime<chrono::Utc>,
    /// The store as given: the API's free text, or the name of the store chosen on the
    /// staff screen.
    store: Option<&'a str>,
    /// The store it is linked to, with that store's current name and code (null if it
    /// matched none, or the store was deleted since).
    store_id: Option<Uuid>,
    store_name: Option<&'a str>,
    store_code: Option<&'a str>,
    staff: Option<&'a str>,
    /// When it was undone (its use given back), if it was.
    undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A page of redemptions, newest first.
#[derive(Serialize, ToSchema)]
struct RedemptionPage<'a> {
    redemptions: Vec<ListedRedemption<'a>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Parses the filters, naming every one that is wrong in `fields`.
fn filter(query: &ListQuery) -> AppResult<crate::store::RedemptionFilter> {
    let mut wrong: Vec<(&str, &str)> = Vec::new();
    let mut id = |name: &'static str, raw: &Option<String>| {
        raw.as_deref().and_then(|v| {
            let parsed = Uuid::parse_str(v.trim()).ok();
            if parsed.is_none() {
                wrong.push((name, "an id (UUID)"));
            }
            parsed
        })
    };
    let campaign_id = id("campaign", &query.campaign);
    let store_id = id("store", &query.store);
    let mut time = |name: &'static str, raw: &Option<String>| {
        raw.as_deref().and_then(|v| {
            let parsed = chrono::DateTime::parse_from_rfc3339(v.trim())
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc));
            if parsed.is_none() {
                wrong.push((name, "an RFC 3339 time such as 2026-11-27T09:00:00Z"));
            }
            parsed
        })
    };
    let from = time("from", &query.from);
    let to = time("to", &query.to);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            wrong.push(("to", "not before from"));
        }
    }
    if !wrong.is_empty() {
        let mut e = AppError::invalid(
            "invalid_filter",
            wrong
                .iter()
                .map(|(name, what)| format!("{name}: {what}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        e.fields = Some(
            wrong
                .into_iter()
                .map(|(name, what)| (name.to_string(), format!("{name}: {what}")))
                .collect(),
        );
        return Err(e);
    }
    Ok(crate::store::RedemptionFilter {
        campaign_id,
        store_id,
        from,
        to,
        after: pagination::after(query.cursor.as_deref())?,
    })
}

/// The merchant's redemptions, newest first, undone ones included.
#[utoipa::path(get, path = "/api/v1/redemptions", operation_id = "listRedemptions", tag = "redemptions",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of redemptions", body = RedemptionPage),
        (status = 422, description = "`invalid_filter`: `campaign` or `store` is not an id, `from` or `to` \
            is not an RFC 3339 time, or `to` is before `from` (`fields` names each); \
            `invalid_limit`: not 1 to 200; `invalid_cursor`: not one we gave; \
            `invalid_query`: the query string does not parse", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn list(
    auth: ApiAuth,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    let limit = match query.limit.as_deref().map(str::trim) {
        None => pagination::limit(None)?,
        Some(raw) => pagination::limit(Some(raw.parse().unwrap_or(0)))?,
    };
    let filter = filter(&query)?;
    let rows = state
        .store
        .redemptions_page(auth.tenant_id, &filter, limit)
        .await?;
    Ok(HttpResponse::Ok().json(RedemptionPage {
        next_cursor: pagination::next(&rows, limit, |r| (r.redeemed_at, r.id)),
        redemptions: rows
            .iter()
            .map(|r| ListedRedemption {
                id: r.id,
                coupon_id: r.coupon_id,
                coupon_code: r.code.as_deref(),
                campaign_id: r.campaign_id,
                redeemed_at: r.redeemed_at,
                store: r.store.as_deref(),
                store_id: r.store_id,
                store_name: r.store_name.as_deref(),
                store_code: r.store_code.as_deref(),
                staff: r.staff.as_deref(),
                undone_at: r.undone_at,
            })
            .collect(),
    }))
}
