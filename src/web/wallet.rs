//! The consumer's coupons: `/my` and `/my/coupons/{id}`, with the rotating check code, a
//! QR code of the coupon code for the staff screen's camera, and the "use" flow (press
//! 使用する, confirm in front of staff, see the 使用済み stamp).
//!
//! The confirm form carries a single-use token, spent in the same transaction as the use:
//! however often the form is sent (a double tap, a resubmitted page), it spends one use.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::pages::{discount_text, show_time, theme_url, PageCtx};
use super::session::Session;
use super::AppState;
use crate::domain::coupon_code::CouponCode;
use crate::domain::redemption::{check_redeemable, CouponState, RedeemRejection};
use crate::domain::token::{random_token, sha256};
use crate::domain::verification::{check_code, seconds_left, CheckCodePolicy};
use crate::engine::RedeemError;
use crate::store::{RedeemInput, WalletCoupon};
use crate::web::error::{AppError, AppResult};

/// Where a coupon stands right now, as its screen shows it.
fn standing(c: &WalletCoupon, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    let state = CouponState {
        valid_from: c.valid_from,
        expires_at: c.expires_at,
        uses_left: c.uses_left,
    };
    match check_redeemable(&state, now) {
        Ok(()) => "usable",
        Err(RedeemRejection::AlreadyUsed) => "used",
        Err(RedeemRejection::Expired) => "expired",
        Err(RedeemRejection::NotYetValid) => "not_yet_valid",
    }
}

/// `GET /my`
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    let now = state.engine.clock().now();
    let coupons = state.store.wallet(&page.session.consumer).await?;
    let items: Vec<_> = coupons
        .iter()
        .map(|c| {
            json!({
                "url": format!("/my/coupons/{}", c.id),
                "name": c.campaign_name,
                "discount": discount_text(page.lang, c.discount.as_ref()),
                "expires": c.expires_at.map(show_time),
                "uses_left": c.uses_left,
                "multi_use": c.uses_per_coupon > 1,
                "standing": standing(c, now),
            })
        })
        .collect();
    page.render(
        &state,
        StatusCode::OK,
        "wallet",
        json!({"title": page.t("wallet.title"), "body_class": "wallet-page", "coupons": items,
               "signed_in": page.session.signed_in}),
    )
}

async fn owned(state: &AppState, session: &Session, id: Uuid) -> AppResult<WalletCoupon> {
    state
        .store
        .wallet_coupon(&session.consumer, id)
        .await?
        .ok_or_else(|| AppError::not_found("coupon"))
}

#[derive(Deserialize)]
pub struct CouponQuery {
    /// Why the last "use" did not go through.
    r: Option<String>,
}

/// `GET /my/coupons/{id}`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<CouponQuery>,
) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    let coupon = owned(&state, &page.session, *id).await?;
    let now = state.engine.clock().now();
    let step = state.settings.pages.code_step.as_secs().max(1);
    let standing = standing(&coupon, now);
    let notice = query.r.as_deref().and_then(|r| match r {
        "already_used" => Some("coupon.already_used"),
        "expired" => Some("coupon.expired"),
        "not_yet_valid" => Some("coupon.not_yet_valid"),
        "confirm_expired" => Some("coupon.confirm.expired"),
        _ => None,
    });
    let data = json!({
        "title": coupon.campaign_name,
        "body_class": format!("coupon-page coupon-page--{standing}"),
        "theme_css": theme_url(coupon.tenant_id),
        "id": coupon.id,
        "name": coupon.campaign_name,
        "discount": discount_text(page.lang, coupon.discount.as_ref()),
        "terms": coupon.terms,
        "code": CouponCode::parse(&coupon.code).map(|c| c.display_grouped()).unwrap_or(coupon.code.clone()),
        "check_code": check_code(&coupon.secret, now.timestamp(), step),
        "check_url": format!("/my/coupons/{}/check-code", coupon.id),
        "qr_url": format!("/my/coupons/{}/qr.svg", coupon.id),
        "step": step,
        "server_now": now.to_rfc3339(),
        "expires": coupon.expires_at.map(show_time),
        "expires_at": coupon.expires_at.map(|e| e.to_rfc3339()),
        "uses_left": coupon.uses_left,
        "multi_use": coupon.uses_per_coupon > 1,
        "usable": standing == "usable",
        "used": standing == "used",
        "expired": standing == "expired",
        "not_yet_valid": standing == "not_yet_valid",
        "used_at": coupon.last_used_at.map(show_time),
        "notice": notice,
        "campaign_url": format!("/c/{}", coupon.campaign_slug),
    });
    page.render(&state, StatusCode::OK, "coupon", data)
}

/// `GET /my/coupons/{id}/check-code`: the current code, for the page's script. The secret
/// never leaves the server.
pub async fn current_check_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let session =
        Session::read(&req, &state.sessions).ok_or_else(|| AppError::not_found("coupon"))?;
    let coupon = owned(&state, &session, *id).await?;
    let now = state.engine.clock().now().timestamp();
    let step = state.settings.pages.code_step.as_secs().max(1);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"code": check_code(&coupon.secret, now, step), "seconds_left": seconds_left(now, step)})))
}

/// `GET /my/coupons/{id}/use`: the confirm step, shown to staff.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    let coupon = owned(&state, &page.session, *id).await?;
    if standing(&coupon, state.engine.clock().now()) != "usable" {
        return Ok(page.redirect(&state, &format!("/my/coupons/{}", coupon.id)));
    }
    let token = random_token();
    state
        .store
        .issue_use_token(coupon.id, &sha256(&token), USE_TOKEN_TTL_SECS)
        .await?;
    let data = json!({
        "use_token": token,
        "title": coupon.campaign_name,
        "body_class": "confirm-page",
        "theme_css": theme_url(coupon.tenant_id),
        "id": coupon.id,
        "name": coupon.campaign_name,
        "discount": discount_text(page.lang, coupon.discount.as_ref()),
        "back_url": format!("/my/coupons/{}", coupon.id),
    });
    page.render(&state, StatusCode::OK, "confirm_use", data)
}

/// How long a confirm form stays good: long enough to find the staff, short enough that an
/// old open tab cannot spend a use later.
const USE_TOKEN_TTL_SECS: f64 = 600.0;

#[derive(Deserialize)]
pub struct UseForm {
    csrf: String,
    /// The confirm form's single-use token; a post without one is refused.
    #[serde(default)]
    use_token: String,
}

/// `POST /my/coupons/{id}/use`: redeem through the engine, exactly once per confirm form.
pub async fn redeem(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<UseForm>,
) -> AppResult<HttpResponse> {
    let page = PageCtx::new(&req, &state);
    page.session.check_csrf(&form.csrf)?;
    let coupon = owned(&state, &page.session, *id).await?;
    let back = format!("/my/coupons/{}", coupon.id);
    let code = CouponCode::parse(&coupon.code).map_err(AppError::internal)?;
    // An empty token hashes to something never issued, so it is refused like a stale one.
    let token_hash = sha256(form.use_token.trim());
    let input = RedeemInput {
        check_policy: CheckCodePolicy::Never,
        use_token_hash: Some(&token_hash),
        ..RedeemInput::default()
    };
    match state.engine.redeem(coupon.tenant_id, &code, &input).await {
        // A second send of a form that already went through: the coupon page shows what
        // the first one did.
        Ok(_) | Err(RedeemError::TokenUsed) => Ok(page.redirect(&state, &back)),
        Err(RedeemError::TokenInvalid) => {
            Ok(page.redirect(&state, &format!("{back}?r=confirm_expired")))
        }
        Err(RedeemError::Rejected(r)) => {
            Ok(page.redirect(&state, &format!("{back}?r={}", r.code())))
        }
        Err(e @ RedeemError::CheckCode(_)) => Err(AppError::internal(e)),
        Err(RedeemError::UnknownCode) => Err(AppError::not_found("coupon")),
        Err(RedeemError::Store(e)) => Err(e.into()),
    }
}

/// `GET /my/coupons/{id}/qr.svg`: the coupon code (only the code: never the secret or the
/// check code) as a QR code, for the staff screen's camera. Only the owner sees it.
pub async fn qr_svg(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    use qrcode::render::svg;
    use qrcode::{EcLevel, QrCode};
    let session =
        Session::read(&req, &state.sessions).ok_or_else(|| AppError::not_found("coupon"))?;
    let coupon = owned(&state, &session, *id).await?;
    let code = QrCode::with_error_correction_level(coupon.code.as_bytes(), EcLevel::M)
        .map_err(AppError::internal)?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "private, max-age=3600"))
        .body(image))
}
