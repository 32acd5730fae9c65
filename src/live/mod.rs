//! The live merchant dashboard: `GET /merchant/live` upgrades to a WebSocket that pushes a
//! tenant's campaign counts, redemptions and status changes as they happen.
//!
//! - [`broker::Broker`] subscribes to the engine's event bus (local actors and, through
//!   LISTEN/NOTIFY, other nodes) and fans out per tenant, keeping each campaign's counts
//!   current from the events (one query per campaign on a cache miss, never per event).
//!   Every second it re-checks every socket's console session in one query.
//! - [`session::LiveSession`] is one actor per socket: it coalesces stats to one per
//!   campaign per 100 ms, pings every 5 s and closes with a reason on anything it does
//!   not accept (and when its session ends).
//! - [`messages`] are the frames, as the pages read them.

pub mod broker;
pub mod messages;
pub mod session;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde_json::json;

use crate::domain::merchant::Permission;
use crate::domain::token::sha256;
use crate::web::console::cookie_name;
use crate::web::error::{AppError, RenderedError};
use crate::web::AppState;

pub use broker::Broker;

/// A refusal before the upgrade, in the service's error shape (the error middleware keeps
/// its status and code because it carries a [`RenderedError`]).
fn refuse(status: StatusCode, code: &'static str, message: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"error": {"code": code, "message": message}}));
    res.extensions_mut().insert(RenderedError {
        code,
        message: message.to_owned(),
    });
    res
}

/// `GET /merchant/live`: checks the console session (401), the `Origin` (403), the role
/// (403: staff see only the redemption screen) and the tenant's IP allow-list (403) before
/// the upgrade.
pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let unauthorized = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "not_signed_in",
            "sign in to the merchant console first",
        )
    };
    let Some(cookie) = req.cookie(cookie_name(&state)) else {
        return Ok(unauthorized());
    };
    let hash = sha256(cookie.value());
    let Some(session) = state.store.session(&hash).await.map_err(AppError::from)? else {
        return Ok(unauthorized());
    };
    let idle = chrono::TimeDelta::from_std(state.settings.console.idle_timeout)
        .unwrap_or(chrono::TimeDelta::MAX);
    if session.mfa_pending || chrono::Utc::now() - session.last_seen_at > idle {
        return Ok(unauthorized());
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok());
    if origin != Some(state.settings.public_url().as_str()) {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "bad_origin",
            "the Origin header must be this service's own origin",
        ));
    }
    let user = &session.user;
    if !user.role.can(Permission::ViewStats) || user.must_change_password {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow the live dashboard",
        ));
    }
    let ip = crate::web::client_ip::client_ip(&req, &state.settings);
    if !user.tenant_allowlist.allows(ip) {
        crate::metrics::auth_failure("ip_not_allowed");
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "ip_not_allowed",
            &format!("your address {ip} is not on this merchant's allow-list"),
        ));
    }
    let actor = session::LiveSession::new(state.live.clone(), user.tenant_id, user.id, hash);
    ws::WsResponseBuilder::new(actor, &req, stream)
        .frame_size(session::READ_FRAME_LIMIT)
        .start()
}
