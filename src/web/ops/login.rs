//! Signing in and out of the operator console. Only active operators sign in (a pending
//! request has not been approved yet). As on the merchant console: unknown e-mails cost
//! the same Argon2 work, every failure shows the same message, attempts are throttled per
//! IP (governor) and per account (growing waits in the database).

use std::sync::OnceLock;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::{clear_session_cookie, cookie_name, session_cookie, OpsConsole};
use crate::domain::tenant::{hash_password, verify_password};
use crate::domain::token::{random_token, sha256};
use crate::store::operators::{NewOperatorSession, Operator};
use crate::store::AuditEntry;
use crate::web::client_ip::client_ip;
use crate::web::console::double_submit::DoubleSubmit;
use crate::web::console::page;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::i18n::{message, Lang};
use crate::web::AppState;

/// The sign-in form comes before any session exists.
const LOGIN_CSRF: DoubleSubmit = DoubleSubmit {
    cookie: "ecoupon_ops_login_csrf",
    path: "/ops/login",
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

/// Only an operator console path may be a place to go after signing in.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if (n == "/ops" || n.starts_with("/ops/") || n.starts_with("/ops?"))
                && !n.starts_with("/ops/login")
                && !n.contains("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/ops/notices".to_owned(),
    }
}

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    next: &str,
) -> AppResult<HttpResponse> {
    let (lang, remember) = Lang::negotiate(req);
    let (csrf, fresh) = LOGIN_CSRF.token(req);
    let data = json!({
        "title": message(lang, "ops.login.title"),
        "error": error.map(|k| message(lang, k)),
        "email": email,
        "next": next,
        "body_class": "console console--login console--ops",
    });
    let mut res = page(
        state,
        lang,
        remember,
        &csrf,
        req.path(),
        status,
        "ops_login",
        data,
    )?;
    if fresh {
        LOGIN_CSRF.set(state, &mut res, &csrf)?;
    }
    Ok(res)
}

/// `GET /ops/login`
pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> AppResult<HttpResponse> {
    let next = safe_next(query.next.as_deref());
    login_page(&req, &state, StatusCode::OK, None, "", &next)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token()))
}

async fn verify_off_thread(password: String, hash: String) -> AppResult<bool> {
    web::block(move || verify_password(&password, &hash))
        .await
        .map_err(AppError::internal)
}

/// `POST /ops/login`
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> AppResult<HttpResponse> {
    LOGIN_CSRF.check(&req, &form.csrf)?;
    let next = safe_next(Some(&form.next));
    let ip = client_ip(&req, &state.settings);
    if let Err(wait) = state.limits.sign_in_attempt(ip) {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "too many sign-in attempts; wait a moment",
        )
        .with_retry_after(wait));
    }
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
    state
        .store
        .record_operator_sign_in_success(operator.id)
        .await?;
    if let Some(old) = req.cookie(cookie_name(&state)) {
        state
            .store
            .delete_operator_session(&sha256(old.value()))
            .await?;
    }
    let id = random_token();
    let absolute = chrono::TimeDelta::from_std(state.settings.console.absolute_timeout)
        .unwrap_or(chrono::TimeDelta::hours(12));
    let user_agent: String = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    state
        .store
        .create_operator_session(NewOperatorSession {
            id_hash: &sha256(&id),
            operator_id: operator.id,
            csrf: &random_token(),
            expires_at: Utc::now() + absolute,
            ip: &ip.to_string(),
            user_agent: &user_agent,
        })
        .await?;
    state
        .store
        .audit(AuditEntry {
            tenant_id: None,
            actor_id: None,
            actor: &operator.email,
            action: "operator.sign_in",
            target: &operator.email,
            ip: &ip.to_string(),
            detail: json!({}),
        })
        .await?;
    Ok(HttpResponse::SeeOther()
        .cookie(session_cookie(&state, &id))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, next))
        .finish())
}

/// The active operator with this e-mail and password, if any. Every way of failing costs
/// one Argon2 check.
async fn check_password(
    state: &AppState,
    email: &str,
    password: &str,
) -> AppResult<Option<Operator>> {
    let Some(op) = state.store.operator_by_email(email).await? else {
        verify_off_thread(password.to_owned(), dummy_hash().to_owned()).await?;
        return Ok(None);
    };
    let blocked = state.store.operator_blocked_until(op.id).await?;
    if blocked.is_some_and(|until| until > Utc::now()) {
        // Still waiting after earlier failures: same work, same answer, no new count.
        verify_off_thread(password.to_owned(), dummy_hash().to_owned()).await?;
        crate::metrics::auth_failure("ops_sign_in_throttled");
        return Ok(None);
    }
    if !verify_off_thread(password.to_owned(), op.password_hash.clone()).await? {
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
