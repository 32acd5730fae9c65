//! Coupon lookups: `GET /api/v1/coupons/{code}` and
//! `GET /api/v1/campaigns/{id}/coupons?consumer=REF`. The second is how a till that lost
//! the answer to a claim recovers the coupon instead of retrying into
//! `consumer_limit_reached`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::consumer::ConsumerRef;
use crate::domain::coupon_code::CouponCode;
use crate::store::{CouponLookup, CouponRedemption};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// A coupon by its code: status, uses left, expiry, campaign, consumer and redemptions.
#[utoipa::path(get, path = "/api/v1/coupons/{code}", operation_id = "getCoupon", tag = "coupons",
    params(("code" = String, Path, description = "The coupon's code")),
    responses(
        (status = 200, description = "The coupon", body = CouponBody),
        (status = 404, description = "`not_found`: no coupon of this merchant has that code", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn show(
    auth: ApiAuth,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    // A code that cannot exist is as unknown as one that does not, and another tenant's
    // code answers the same: the caller learns nothing about other merchants.
    let not_found = || AppError::not_found("coupon");
    let code = CouponCode::parse(&code).map_err(|_| not_found())?;
    let coupon = state
        .store
        .coupon_by_code(auth.tenant_id, code.as_str())
        .await?
        .ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(CouponBody {
        coupon: CouponView::from(&coupon),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsumerQuery {
    /// The consumer reference given to the claim.
    consumer: Option<String>,
}

/// A consumer's coupons in a campaign: how a till that lost a claim's answer recovers it.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/coupons", operation_id = "listConsumerCoupons", tag = "coupons",
    params(("id" = Uuid, Path, description = "The campaign"), ConsumerQuery),
    responses(
        (status = 200, description = "The consumer's coupons, oldest first", body = CouponList),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 422, description = "`invalid_consumer`: no or a malformed consumer reference; \
            `invalid_query`: the query string does not parse", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:read"])))]
pub async fn for_consumer(
    auth: ApiAuth,
    state: web::Data<AppState>,
    campaign_id: web::Path<Uuid>,
    query: web::Query<ConsumerQuery>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    // The same parsing as the claim, so the reference given there finds its coupons here.
    let consumer = query
        .consumer
        .as_deref()
        .ok_or_else(|| AppError::invalid("invalid_consumer", "give ?consumer=<reference>"))
        .and_then(|raw| {
            ConsumerRef::merchant(raw)
                .map_err(|e| AppError::invalid("invalid_consumer", e.to_string()))
        })?;
    let coupons = state
        .store
        .consumer_coupons(auth.tenant_id, *campaign_id, consumer.as_str())
        .await?
        .ok_or_else(|| AppError::not_found("campaign"))?;
    Ok(HttpResponse::Ok().json(CouponList {
        coupons: coupons.iter().map(CouponView::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
struct CouponBody<'a> {
    coupon: CouponView<'a>,
}

#[derive(Serialize, ToSchema)]
struct CouponList<'a> {
    coupons: Vec<CouponView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct CouponView<'a> {
    id: Uuid,
    code: &'a str,
    campaign_id: Uuid,
    consumer: &'a str,
    /// `active`, `used`, `expired` or `not_yet_valid`.
    #[schema(value_type = String, examples("active", "used", "expired", "not_yet_valid"))]
    status: &'a str,
    uses_left: i32,
    claimed_at: chrono::DateTime<chrono::Utc>,
    valid_from: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    redemptions: Vec<RedemptionView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct RedemptionView<'a> {
    id: Uuid,
    redeemed_at: chrono::DateTime<chrono::Utc>,
    store: Option<&'a str>,
    store_id: Option<Uuid>,
    staff: Option<&'a str>,
    undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'a> From<&'a CouponLookup> for CouponView<'a> {
    fn from(c: &'a CouponLookup) -> CouponView<'a> {
        CouponView {
            id: c.id,
            code: &c.code,
            campaign_id: c.campaign_id,
            consumer: ConsumerRef::shown_to_merchant(&c.consumer),
            status: &c.status,
            uses_left: c.uses_left,
            claimed_at: c.claimed_at,
            valid_from: c.valid_from,
            expires_at: c.expires_at,
            redemptions: c.redemptions.iter().map(RedemptionView::from).collect(),
        }
    }
}

impl<'a> From<&'a CouponRedemption> for RedemptionView<'a> {
    fn from(r: &'a CouponRedemption) -> RedemptionView<'a> {
        RedemptionView {
            id: r.id,
            redeemed_at: r.redeemed_at,
            store: r.store.as_deref(),
            store_id: r.store_id,
            staff: r.staff.as_deref(),
            undone_at: r.undone_at,
        }
    }
}
