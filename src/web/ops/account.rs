//! `GET /ops/account`: the operator's own account and the optional TOTP second factor
//! (RFC 6238), as merchant users have it (`web/console/account.rs`). Enrolment stores a
//! new secret not yet enabled, shows it as a QR code and in base32, and enables it only
//! when a code from the app matches. Turning it off needs the password. An operator who
//! lost the phone is reset by another operator: `ecoupon operator reset-2fa`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::OpsConsole;
use crate::domain::merchant::TotpSecret;
use crate::store::TotpOwner;
use crate::web::console::field_errors;
use crate::web::error::{AppError, AppResult};
use crate::web::AppState;
use crate::web::{password_sign_in, second_factor};

const ACCOUNT: &str = "/ops/account";

fn owner(ops: &OpsConsole) -> TotpOwner {
    TotpOwner::Operator(ops.operator.id)
}

/// The secret being enrolled: stored, not yet enabled.
async fn pending_secret(ops: &OpsConsole, state: &AppState) -> AppResult<Option<TotpSecret>> {
    if ops.operator.totp_enabled {
        return Ok(None);
    }
    let (secret, _) = state.store.totp_state(owner(ops)).await?;
    Ok(secret.map(TotpSecret::from_bytes))
}

pub async fn index(ops: OpsConsole, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    account_page(&ops, &state, StatusCode::OK, Vec::new()).await
}

async fn account_page(
    ops: &OpsConsole,
    state: &AppState,
    status: StatusCode,
    errors: Vec<(&str, String)>,
) -> AppResult<HttpResponse> {
    let pending = pending_secret(ops, state).await?;
    ops.render_status(
        state,
        status,
        "ops_account",
        json!({
            "title": ops.t("console.account.title"),
            "email": ops.operator.email,
            "mfa_enabled": ops.operator.totp_enabled,
            "can_disable": ops.operator.totp_enabled,
            "enrolling": second_factor::enrolling(pending.as_ref()),
            "totp_base": ACCOUNT,
            "errors": field_errors(&errors),
        }),
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /ops/account/totp`: a new secret to enrol (replacing one not confirmed).
pub async fn start(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    if !ops.operator.totp_enabled {
        let secret = TotpSecret::generate();
        state
            .store
            .set_totp(owner(&ops), Some(secret.as_bytes()), false)
            .await?;
    }
    Ok(ops.redirect(ACCOUNT))
}

/// `GET /ops/account/totp.svg`: the QR code of the secret being enrolled. Never cached;
/// gone once enrolment is confirmed.
pub async fn qr(ops: OpsConsole, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let secret = pending_secret(&ops, &state)
        .await?
        .ok_or_else(|| AppError::not_found("enrolment"))?;
    second_factor::qr_code(&secret, &ops.operator.email)
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    csrf: String,
}

/// `POST /ops/account/totp/confirm`: the code from the app turns the factor on.
pub async fn confirm(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<ConfirmForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    let Some(secret) = pending_secret(&ops, &state).await? else {
        return Ok(ops.redirect(ACCOUNT));
    };
    if !second_factor::accept_code(&state, owner(&ops), &secret, &form.code).await? {
        let errors = vec![("code", ops.t("console.account.code_wrong"))];
        return account_page(&ops, &state, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    // The secret that was checked, not whatever is stored now (a second tab may have
    // started over meanwhile).
    state
        .store
        .set_totp(owner(&ops), Some(secret.as_bytes()), true)
        .await?;
    ops.audit(
        &state,
        "operator.mfa_enable",
        &ops.operator.email,
        json!({}),
    )
    .await?;
    Ok(ops.redirect(ACCOUNT))
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    password: String,
    csrf: String,
}

/// `POST /ops/account/totp/disable`: needs the current password, throttled like sign-in,
/// so a stolen session is no way to guess it.
pub async fn disable(
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<DisableForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    if !ops.operator.totp_enabled {
        return Ok(ops.redirect(ACCOUNT));
    }
    password_sign_in::throttle(&state, ops.ip)?;
    let hash = &ops.operator.password_hash;
    if !password_sign_in::check_password(&form.password, Some(hash)).await? {
        crate::metrics::auth_failure("ops_password");
        let errors = vec![("password", ops.t("console.account.password_wrong"))];
        return account_page(&ops, &state, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    state.store.set_totp(owner(&ops), None, false).await?;
    ops.audit(
        &state,
        "operator.mfa_disable",
        &ops.operator.email,
        json!({}),
    )
    .await?;
    Ok(ops.redirect(ACCOUNT))
}
