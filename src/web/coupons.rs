//! Coupon lookups: `GET /api/v1/coupons/{code}` and
//! `GET /api/v1/campaigns/{id}/coupons?consumer=REF`. The second is how a till that lost
//! the answer to a claim recovers the coupon instead of retrying into
//! `consumer_limit_reached`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::consumer::ConsumerRef;
use crate::domain::coupon_code::CouponCode;
use crate::store::{CouponLookup, CouponRedemption};
use crate::web::error::{AppError, AppResult};

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

#[derive(Deserialize)]
pub struct ConsumerQuery {
    consumer: Option<String>,
}

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
            ConsumerRef::parse(raw)
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

#[derive(Serialize)]
struct CouponBody<'a> {
    coupon: CouponView<'a>,
}

#[derive(Serialize)]
struct CouponList<'a> {
    coupons: Vec<CouponView<'a>>,
}

#[derive(Serialize)]
struct CouponView<'a> {
    id: Uuid,
    code: &'a str,
    campaign_id: Uuid,
    consumer: &'a str,
    /// `active`, `used`, `expired` or `not_yet_valid`.
    status: &'a str,
    uses_left: i32,
    claimed_at: chrono::DateTime<chrono::Utc>,
    valid_from: chrono::DateTime<chrono::Utc>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    redemptions: Vec<RedemptionView<'a>>,
}

#[derive(Serialize)]
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
            consumer: &c.consumer,
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
