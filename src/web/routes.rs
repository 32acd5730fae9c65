//! Every URL the service answers, in one table. Find a URL here, then follow the handler.

use actix_web::web::{self, delete, get, patch, post, put};
use actix_web::{HttpResponse, Resource};

use super::{
    assets, campaigns, claim_page, claims, codes, console, coupons, health, images, keys,
    metrics_endpoint, openapi, ops, pages, qr, redemptions, second_factor, signin, status, stores,
    tenant, wallet, webhooks,
};
use crate::web::error::{AppError, ErrorCode};
use console::Console;
use ops::OpsConsole;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg
        // Operations
        .service(at("/livez").route(get().to(health::livez)))
        .service(at("/readyz").route(get().to(health::readyz)))
        .service(at("/status").route(get().to(status::page)))
        .service(at("/status.json").route(get().to(status::json)))
        .service(at("/metrics").route(get().to(metrics_endpoint::render)))
        // Merchant API (API-key auth); its OpenAPI document and the page that shows it
        .service(at("/api/v1/openapi.json").route(get().to(openapi::json)))
        .service(at("/api/docs").route(get().to(openapi::docs_page)))
        .service(
            at("/api/v1/tenant")
                .route(get().to(tenant::show))
                .route(patch().to(tenant::update)),
        )
        .service(
            at("/api/v1/tenant/logo")
                .app_data(images::upload_limit())
                .route(put().to(images::put_logo)),
        )
        .service(
            at("/api/v1/campaigns/{id}/image")
                .app_data(images::upload_limit())
                .route(put().to(images::put_campaign_image)),
        )
        .service(
            at("/api/v1/campaigns")
                .route(get().to(campaigns::list))
                .route(post().to(campaigns::create)),
        )
        .service(
            at("/api/v1/campaigns/{id}")
                .route(get().to(campaigns::show))
                .route(patch().to(campaigns::update)),
        )
        .service(at("/api/v1/campaigns/{id}/claims").route(post().to(claims::create)))
        // Bulk and imported codes, and bulk code jobs (codes.rs)
        .service(at("/api/v1/campaigns/{id}/codes").route(post().to(codes::create)))
        .service(
            at("/api/v1/campaigns/{id}/codes/import")
                .app_data(codes::import_limit())
                .route(post().to(codes::import)),
        )
        .service(at("/api/v1/code-jobs/{id}").route(get().to(codes::show_job)))
        .service(at("/api/v1/code-jobs/{id}/codes.csv").route(get().to(codes::job_csv)))
        .service(at("/api/v1/campaigns/{id}/coupons").route(get().to(coupons::for_consumer)))
        .service(at("/api/v1/coupons/{code}").route(get().to(coupons::show)))
        .service(at("/api/v1/coupons/{code}/redemptions").route(post().to(redemptions::create)))
        .service(at("/api/v1/redemptions").route(get().to(redemptions::list)))
        .service(at("/api/v1/redemptions/{id}").route(delete().to(redemptions::undo)))
        .service(
            at("/api/v1/stores")
                .route(get().to(stores::list))
                .route(post().to(stores::create)),
        )
        .service(
            at("/api/v1/keys")
                .route(get().to(keys::list))
                .route(post().to(keys::create)),
        )
        .service(at("/api/v1/keys/{id}").route(delete().to(keys::revoke)))
        // Webhook endpoints and their delivery logs (webhooks.rs; sent by ops/webhooks.rs)
        .service(
            at("/api/v1/webhooks")
                .route(get().to(webhooks::list))
                .route(post().to(webhooks::create)),
        )
        .service(
            at("/api/v1/webhooks/{id}")
                .route(get().to(webhooks::show))
                .route(delete().to(webhooks::delete)),
        )
        .service(at("/api/v1/webhooks/{id}/deliveries").route(get().to(webhooks::deliveries)))
        // Static files and merchant themes
        .service(at("/assets/{name}").route(get().to(assets::serve)))
        .service(at("/t/{tenant}/theme.css").route(get().to(pages::theme_css)))
        .service(at("/i/{id}").route(get().to(images::serve)))
        // Consumer pages (rate limited per IP and device, like every page: see
        // middleware/rate_limit.rs)
        .service(at("/").route(get().to(home)))
        .service(
            web::scope("/c")
                .service(at("/{slug}").route(get().to(claim_page::show)))
                .service(at("/{slug}/claim").route(post().to(claim_page::claim)))
                .service(at("/{slug}/status").route(get().to(claim_page::status)))
                .service(at("/{slug}/qr.svg").route(get().to(qr::svg)))
                .service(at("/{slug}/qr.png").route(get().to(qr::png))),
        )
        .service(
            web::scope("/my")
                .service(at("").route(get().to(wallet::index)))
                .service(at("/coupons/{id}").route(get().to(wallet::show)))
                .service(at("/coupons/{id}/check-code").route(get().to(wallet::current_check_code)))
                .service(at("/coupons/{id}/qr.svg").route(get().to(wallet::qr_svg)))
                .service(
                    at("/coupons/{id}/use")
                        .route(get().to(wallet::confirm))
                        .route(post().to(wallet::redeem)),
                ),
        )
        // Merchant console (session cookie); see web/console/mod.rs
        .service(
            at("/merchant/login")
                .route(get().to(console::login::form))
                .route(post().to(console::login::submit)),
        )
        .service(
            at("/merchant/login/totp")
                .route(get().to(console::login::totp_form))
                .route(post().to(console::login::totp_submit)),
        )
        .service(at("/merchant/logout").route(post().to(console::login::logout)))
        .service(
            at("/merchant/password")
                .route(get().to(console::login::password_form))
                .route(post().to(console::login::password_submit)),
        )
        .service(at("/merchant").route(get().to(console::home::index)))
        // Campaign editor, campaign page, status actions, QR posters (console/campaigns.rs,
        // campaigns/page.rs). "new" before "{id}": resources match in this order.
        .service(
            at("/merchant/campaigns")
                .route(get().to(console::campaigns::index))
                .route(post().to(console::campaigns::create)),
        )
        .service(at("/merchant/campaigns/new").route(get().to(console::campaigns::new_form)))
        .service(
            at("/merchant/campaigns/{id}")
                .route(get().to(console::campaigns::show))
                .route(post().to(console::campaigns::update)),
        )
        .service(at("/merchant/campaigns/{id}/edit").route(get().to(console::campaigns::edit_form)))
        .service(at("/merchant/campaigns/{id}/status").route(post().to(console::campaigns::status)))
        .service(at("/merchant/campaigns/{id}/qr.png").route(get().to(console::campaigns::qr_png)))
        .service(at("/merchant/campaigns/{id}/qr.svg").route(get().to(console::campaigns::qr_svg)))
        // Users, invitations, tenant settings, own account and MFA (console/users.rs,
        // invite.rs, settings.rs, account.rs)
        .service(at("/merchant/users").route(get().to(console::users::index)))
        .service(at("/merchant/users/invite").route(post().to(console::users::invite)))
        .service(at("/merchant/users/{id}").route(post().to(console::users::update)))
        .service(
            at("/merchant/invite/{token}")
                .route(get().to(console::invite::form))
                .route(post().to(console::invite::accept)),
        )
        .service(
            at("/merchant/settings")
                .route(get().to(console::settings::index))
                .route(post().to(console::settings::save)),
        )
        // API keys (console/keys.rs; the API's are web/keys.rs)
        .service(
            at("/merchant/keys")
                .route(get().to(console::keys::index))
                .route(post().to(console::keys::create)),
        )
        .service(at("/merchant/keys/{id}/revoke").route(post().to(console::keys::revoke)))
        .service(at("/merchant/account").route(get().to(console::account::index)))
        .service(at("/merchant/account/totp").route(post().to(second_factor::start::<Console>)))
        .service(at("/merchant/account/totp.svg").route(get().to(second_factor::qr::<Console>)))
        .service(
            at("/merchant/account/totp/confirm")
                .route(post().to(second_factor::confirm::<Console>)),
        )
        .service(at("/merchant/account/totp/disable").route(post().to(console::account::disable)))
        // Staff redemption screen and stores (console/redeem.rs, stores.rs)
        .service(
            at("/merchant/redeem")
                .route(get().to(console::redeem::form))
                .route(post().to(console::redeem::submit)),
        )
        .service(at("/merchant/redeem/{id}/undo").route(post().to(console::redeem::undo)))
        .service(
            at("/merchant/stores")
                .route(get().to(console::stores::index))
                .route(post().to(console::stores::create)),
        )
        .service(at("/merchant/stores/{id}").route(post().to(console::stores::update)))
        .service(at("/merchant/stores/{id}/delete").route(post().to(console::stores::delete)))
        // Live dashboard WebSocket (src/live/): session cookie, own Origin, not staff
        .service(at("/merchant/live").route(get().to(crate::live::connect)))
        // CSV export (console/export.rs)
        .service(at("/merchant/export").route(get().to(console::export::index)))
        .service(at("/merchant/export/{dataset}.csv").route(get().to(console::export::download)))
        // Operator console (its own session cookie and table); see web/ops/mod.rs
        .service(at("/ops").route(get().to(ops::home)))
        .service(
            at("/ops/login")
                .route(get().to(ops::login::form))
                .route(post().to(ops::login::submit)),
        )
        .service(
            at("/ops/login/totp")
                .route(get().to(ops::login::totp_form))
                .route(post().to(ops::login::totp_submit)),
        )
        .service(at("/ops/logout").route(post().to(ops::login::logout)))
        .service(at("/ops/account").route(get().to(ops::account::index)))
        .service(
            at("/ops/password")
                .route(get().to(ops::password::form))
                .route(post().to(ops::password::submit)),
        )
        .service(at("/ops/account/totp").route(post().to(second_factor::start::<OpsConsole>)))
        .service(at("/ops/account/totp.svg").route(get().to(second_factor::qr::<OpsConsole>)))
        .service(
            at("/ops/account/totp/confirm").route(post().to(second_factor::confirm::<OpsConsole>)),
        )
        .service(at("/ops/account/totp/disable").route(post().to(ops::account::disable)))
        .service(at("/ops/notices").route(get().to(ops::notices::index)))
        .service(at("/ops/notices/maintenance").route(post().to(ops::notices::schedule)))
        .service(at("/ops/notices/incident").route(post().to(ops::notices::incident)))
        .service(at("/ops/notices/{id}").route(post().to(ops::notices::update)))
        .service(at("/ops/operators").route(get().to(ops::operators::index)))
        .service(at("/ops/operators/{id}/approve").route(post().to(ops::operators::approve)))
        .service(at("/ops/operators/{id}/disable").route(post().to(ops::operators::disable)))
        .service(at("/ops/mail").route(get().to(ops::mail::index)))
        // Consumer sign-in (OpenID Connect); see web/signin/mod.rs for the flow
        .service(at("/auth/signin").route(get().to(signin::page)))
        .service(at("/auth/complete").route(get().to(signin::complete)))
        .service(at("/auth/me").route(get().to(signin::me)))
        .service(at("/auth/signout").route(post().to(signin::signout)))
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

async fn method_not_allowed() -> Result<HttpResponse, AppError> {
    Err(AppError::new(
        ErrorCode::MethodNotAllowed,
        "this URL does not accept that method",
    ))
}

/// The root: a small page with the two ways in, a consumer's coupons and the merchant
/// console.
async fn home(
    req: actix_web::HttpRequest,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, AppError> {
    let ctx = pages::PageCtx::new(&req, &state);
    let title = ctx.t("index.title");
    ctx.render(
        &state,
        actix_web::http::StatusCode::OK,
        "index",
        serde_json::json!({ "title": title }),
    )
}
