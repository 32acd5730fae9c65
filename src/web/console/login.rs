//! Signing in and out of the console, the TOTP step, and changing one's password.
//!
//! Unknown e-mails cost the same Argon2 work as known ones (a dummy hash is checked), and
//! every failure shows the same message, so the form reveals nothing about accounts.
//! Attempts are throttled per IP (governor, per node) and per account (growing delays kept
//! in the database, shared by every node).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::double_submit::DoubleSubmit;
use super::{clear_session_cookie, cookie_name, session_cookie, Console};
use crate::domain::token::sha256;
use crate::store::{AuditEntry, MerchantUser, NewSession, TotpOwner};
use crate::web::client_ip::client_ip;
use crate::web::error::{AppError, AppResult};
use crate::web::password_sign_in::{self, CodeForm, NewSessionId, PasswordForm, SignInArea};
use crate::web::second_factor;
use crate::web::AppState;

/// The sign-in and TOTP forms come before any session exists.
const MERCHANT: SignInArea = SignInArea {
    csrf: DoubleSubmit {
        cookie: "ecoupon_login_csrf",
        path: "/merchant/login",
    },
    area: "/merchant",
    login: "/merchant/login",
    home: "/merchant",
    body_class: "console console--login",
};

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    template: &str,
    error: Option<&str>,
    email: &str,
    next: &str,
) -> AppResult<HttpResponse> {
    let title = format!("console.{template}.title");
    MERCHANT.page(req, state, status, template, &title, error, email, next)
}

/// `GET /merchant/login`
pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let next = MERCHANT.safe_next(query.next.as_deref());
    login_page(
        &req,
        &state,
        StatusCode::OK,
        "merchant_login",
        None,
        "",
        &next,
    )
}

/// `POST /merchant/login`
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    MERCHANT.csrf.check(&req, &form.csrf)?;
    let next = MERCHANT.safe_next(Some(&form.next));
    let ip = client_ip(&req, &state.settings);
    let failed = |kind: &'static str| {
        crate::metrics::auth_failure(kind);
        login_page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            "merchant_login",
            Some("console.merchant_login.failed"),
            &form.email,
            &next,
        )
    };
    password_sign_in::throttle(&state, ip)?;
    let email = form.email.trim();
    let candidates = state.store.sign_in_candidates(email).await?;
    let mut signed_in: Option<(MerchantUser, bool)> = None;
    if candidates.is_empty() {
        password_sign_in::check_password(&form.password, None).await?;
    }
    for c in candidates {
        if c.blocked_until.is_some_and(|until| until > Utc::now()) {
            // Still waiting after earlier failures: same work, same answer, no new count.
            password_sign_in::check_password(&form.password, None).await?;
            crate::metrics::auth_failure("sign_in_throttled");
            continue;
        }
        if password_sign_in::check_password(&form.password, Some(&c.password_hash)).await? {
            if !c.user.disabled {
                signed_in = Some((c.user, c.totp_secret.is_some()));
            }
            break;
        }
        state.store.record_sign_in_failure(c.user.id).await?;
    }
    let Some((user, _)) = signed_in else {
        return failed("console_password");
    };
    if user.totp_enabled {
        // The count of failures starts again only once the code is right too: the
        // password alone must not buy more guesses at the code.
        let to = MERCHANT.code_step(&next);
        return start_session(&req, &state, &user, true, &to).await;
    }
    complete_sign_in(&req, &state, &user, &next).await
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// The sign-in is complete (password, and code if any): the failure count starts over,
/// the session opens the console, and the audit log has it.
async fn complete_sign_in(
    req: &HttpRequest,
    state: &AppState,
    user: &MerchantUser,
    next: &str,
) -> AppResult<HttpResponse> {
    state.store.record_sign_in_success(user.id).await?;
    let res = start_session(req, state, user, false, next).await?;
    let ip = client_ip(req, &state.settings).to_string();
    state
        .store
        .audit(AuditEntry {
            tenant_id: Some(user.tenant_id),
            actor_id: Some(user.id),
            actor: &user.email,
            action: "user.sign_in",
            target: &user.email,
            ip: &ip,
            detail: json!({}),
        })
        .await?;
    Ok(res)
}

/// A fresh session (a new id at every sign-in step, so a planted id is worthless); the
/// previous one of this browser ends. The answer is a 303 to `to`.
async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    user: &MerchantUser,
    mfa_pending: bool,
    to: &str,
) -> AppResult<HttpResponse> {
    if let Some(old) = req.cookie(cookie_name(state)) {
        state.store.delete_session(&sha256(old.value())).await?;
    }
    let session = NewSessionId::new(req, state);
    state
        .store
        .create_session(NewSession {
            id_hash: &session.id_hash,
            user_id: user.id,
            tenant_id: user.tenant_id,
            csrf: &session.csrf,
            mfa_pending,
            expires_at: session.expires_at,
            ip: &client_ip(req, &state.settings).to_string(),
            user_agent: &session.user_agent,
        })
        .await?;
    Ok(session.redirect(session_cookie(state, &session.id), to))
}

/// The session of a browser that gave its password but not yet its TOTP code.
async fn pending(
    req: &HttpRequest,
    state: &AppState,
) -> AppResult<Option<crate::store::SessionRecord>> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    Ok(state
        .store
        .session(&sha256(cookie.value()))
        .await?
        .filter(|s| s.mfa_pending))
}

/// `GET /merchant/login/totp`
pub async fn totp_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    if pending(&req, &state).await?.is_none() {
        return Ok(see_other("/merchant/login"));
    }
    let next = MERCHANT.safe_next(query.next.as_deref());
    login_page(
        &req,
        &state,
        StatusCode::OK,
        "merchant_totp",
        None,
        "",
        &next,
    )
}

/// `POST /merchant/login/totp`
pub async fn totp_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let next = MERCHANT.code_form(&req, &state, &form)?;
    let Some(session) = pending(&req, &state).await? else {
        return Ok(see_other("/merchant/login"));
    };
    let user = session.user;
    let owner = TotpOwner::MerchantUser(user.id);
    let blocked = state.store.sign_in_blocked_until(user.id).await?;
    let waiting = blocked.is_some_and(|until| until > Utc::now());
    if waiting || !second_factor::accept_sign_in_code(&state, owner, &form.code).await? {
        crate::metrics::auth_failure("console_totp");
        if !waiting {
            state.store.record_sign_in_failure(user.id).await?;
        }
        return login_page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            "merchant_totp",
            Some("console.merchant_totp.failed"),
            "",
            &next,
        );
    }
    complete_sign_in(&req, &state, &user, &next).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /merchant/logout`
pub async fn logout(
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    console.check_csrf(&form.csrf)?;
    state.store.delete_session(&console.session_hash).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(clear_session_cookie(&state))
        .insert_header((header::LOCATION, "/merchant/login"))
        .finish())
}

/// `GET /merchant/password`
pub async fn password_form(
    console: Console,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    password_page(&console, &state, StatusCode::OK, json!({}))
}

fn password_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    errors: serde_json::Value,
) -> AppResult<HttpResponse> {
    let rules = password_sign_in::password_rules(console.user.totp_enabled);
    console.render_status(
        state,
        status,
        "merchant_password",
        json!({
            "title": console.t("console.merchant_password.title"),
            "forced": console.user.must_change_password,
            "min": rules["min"],
            "max": rules["max"],
            "password_action": "/merchant/password",
            "errors": errors,
        }),
    )
}

/// `POST /merchant/password`: every session of the user ends, and this browser gets a
/// new one.
pub async fn password_submit(
    req: HttpRequest,
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    console.check_csrf(&form.csrf)?;
    let user = &console.user;
    let candidates = state.store.sign_in_candidates(&user.email).await?;
    let hash = candidates
        .into_iter()
        .find(|c| c.user.id == user.id)
        .map(|c| c.password_hash)
        .ok_or_else(|| AppError::not_found("user"))?;
    let current_ok = password_sign_in::check_password(&form.current, Some(&hash)).await?;
    let errors = form.problems(|k| console.t(k), current_ok, &user.email, user.totp_enabled);
    if !errors.is_empty() {
        return password_page(
            &console,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            super::field_errors(&errors),
        );
    }
    let phc = form.new_hash().await?;
    state.store.set_password(user.id, &phc).await?;
    console
        .audit(&state, "user.password_change", &user.email, json!({}))
        .await?;
    start_session(&req, &state, user, false, user.role.home()).await
}
