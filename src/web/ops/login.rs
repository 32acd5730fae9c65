//! Signing in and out of the operator console. Only active operators sign in (a pending
//! request has not been approved yet). As on the merchant console: unknown e-mails cost
//! the same Argon2 work, every failure shows the same message, attempts are throttled per
//! IP (governor) and per account (growing waits in the database). An operator with a
//! second factor gives the authenticator app's code next (`/ops/login/totp`); until then
//! the session opens no page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{clear_session_cookie, cookie_name, session_cookie, OpsConsole};
use crate::domain::token::sha256;
use crate::store::operators::{NewOperatorSession, Operator};
use crate::store::{AuditEntry, TotpOwner};
use crate::web::client_ip::client_ip;
use crate::web::console::double_submit::DoubleSubmit;
use crate::web::error::AppResult;
use crate::web::password_sign_in::{self, CodeForm, NewSessionId, SignInArea};
use crate::web::second_factor;
use crate::web::AppState;

const OPS: SignInArea = SignInArea {
    csrf: DoubleSubmit {
        cookie: "ecoupon_ops_login_csrf",
        path: "/ops/login",
    },
    area: "/ops",
    login: "/ops/login",
    home: "/ops/notices",
    body_class: "console console--login console--ops",
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
    error: Option<&str>,
    email: &str,
    next: &str,
) -> AppResult<HttpResponse> {
    OPS.page(
        req,
        state,
        status,
        "ops_login",
        "ops.login.title",
        error,
        email,
        next,
    )
}

/// `GET /ops/login`
pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let next = OPS.safe_next(query.next.as_deref());
    login_page(&req, &state, StatusCode::OK, None, "", &next)
}

/// `POST /ops/login`
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    OPS.csrf.check(&req, &form.csrf)?;
    let next = OPS.safe_next(Some(&form.next));
    let ip = client_ip(&req, &state.settings);
    password_sign_in::throttle(&state, ip)?;
    let signed_in = check_password(&state, form.email.trim(), &form.password).await?;
    let Some(operator) = signed_in else {
        crate::metrics::auth_failure("ops_password");
        return login_page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            Some("ops.login.failed"),
            &form.email,
            &next,
        );
    };
    if operator.totp_enabled {
        // Password right; the session opens nothing until the app's code is given too, and
        // the count of failures starts again only then: the password alone must not buy
        // more guesses at the code.
        let to = OPS.code_step(&next);
        return start_session(&req, &state, &operator, true, &to).await;
    }
    complete_sign_in(&req, &state, &operator, &next).await
}

/// A fresh session (a new id at every sign-in step, so a planted id is worthless); the
/// previous one of this browser ends. The answer is a 303 to `to`.
pub(super) async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    operator: &Operator,
    mfa_pending: bool,
    to: &str,
) -> AppResult<HttpResponse> {
    if let Some(old) = req.cookie(cookie_name(state)) {
        state
            .store
            .delete_operator_session(&sha256(old.value()))
            .await?;
    }
    let session = NewSessionId::new(req, state);
    state
        .store
        .create_operator_session(NewOperatorSession {
            id_hash: &session.id_hash,
            operator_id: operator.id,
            csrf: &session.csrf,
            expires_at: session.expires_at,
            ip: &client_ip(req, &state.settings).to_string(),
            user_agent: &session.user_agent,
            mfa_pending,
        })
        .await?;
    Ok(session.redirect(session_cookie(state, &session.id), to))
}

/// The sign-in is complete (password, and code if any): the failure count starts over,
/// the session opens the console, and the audit log has it.
async fn complete_sign_in(
    req: &HttpRequest,
    state: &AppState,
    operator: &Operator,
    next: &str,
) -> AppResult<HttpResponse> {
    state
        .store
        .record_operator_sign_in_success(operator.id)
        .await?;
    let res = start_session(req, state, operator, false, next).await?;
    let ip = client_ip(req, &state.settings).to_string();
    state
        .store
        .audit(AuditEntry {
            tenant_id: None,
            actor_id: None,
            actor: &operator.email,
            action: "operator.sign_in",
            target: &operator.email,
            ip: &ip,
            detail: json!({}),
        })
        .await?;
    Ok(res)
}

/// The operator of a browser that gave the password but not yet the TOTP code.
async fn pending(req: &HttpRequest, state: &AppState) -> AppResult<Option<Operator>> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    Ok(state
        .store
        .operator_session(&sha256(cookie.value()))
        .await?
        .filter(|s| s.mfa_pending)
        .map(|s| s.operator))
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_owned()))
        .finish()
}

/// `GET /ops/login/totp`
pub async fn totp_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    if pending(&req, &state).await?.is_none() {
        return Ok(see_other(OPS.login));
    }
    let next = OPS.safe_next(query.next.as_deref());
    OPS.page(
        &req,
        &state,
        StatusCode::OK,
        "ops_totp",
        "console.merchant_totp.title",
        None,
        "",
        &next,
    )
}

/// `POST /ops/login/totp`: the app's code finishes the sign-in. A wrong code counts as a
/// failed sign-in of the account (growing waits), like a wrong password.
pub async fn totp_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> AppResult<HttpResponse> {
    let next = OPS.code_form(&req, &state, &form)?;
    let Some(operator) = pending(&req, &state).await? else {
        return Ok(see_other(OPS.login));
    };
    let blocked = state.store.operator_blocked_until(operator.id).await?;
    let waiting = blocked.is_some_and(|until| until > Utc::now());
    let owner = TotpOwner::Operator(operator.id);
    if waiting || !second_factor::accept_sign_in_code(&state, owner, &form.code).await? {
        crate::metrics::auth_failure("ops_totp");
        if !waiting {
            state
                .store
                .record_operator_sign_in_failure(operator.id)
                .await?;
        }
        return OPS.page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            "ops_totp",
            "console.merchant_totp.title",
            Some("console.merchant_totp.failed"),
            "",
            &next,
        );
    }
    complete_sign_in(&req, &state, &operator, &next).await
}

/// The active operator with this e-mail and password, if any. Every way of failing costs
/// one Argon2 check.
async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
) -> AppResult<Option<Operator>> {
    let Some(op) = state.store.operator_by_email(email).await? else {
        password_sign_in::check_password(password, None).await?;
        return Ok(None);
    };
    let blocked = state.store.operator_blocked_until(op.id).await?;
    if blocked.is_some_and(|until| until > Utc::now()) {
        // Still waiting after earlier failures: same work, same answer, no new count.
        password_sign_in::check_password(password, None).await?;
        crate::metrics::auth_failure("ops_sign_in_throttled");
        return Ok(None);
    }
    if !password_sign_in::check_password(password, Some(&op.password_hash)).await? {
        state.store.record_operator_sign_in_failure(op.id).await?;
        return Ok(None);
    }
    Ok((op.status == "active").then_some(op))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /ops/logout`
pub async fn logout(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    state
        .store
        .delete_operator_session(&ops.session_hash)
        .await?;
    ops.audit(&state, "operator.sign_out", &ops.operator.email, json!({}))
        .await?;
    Ok(HttpResponse::SeeOther()
        .cookie(clear_session_cookie(&state))
        .insert_header((header::LOCATION, "/ops/login"))
        .finish())
}
