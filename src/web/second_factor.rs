//! The TOTP second factor's web parts shared by the merchant and operator consoles:
//! checking a code (each accepted once), and enrolment: `POST …/account/totp` stores a
//! new secret not yet enabled, `GET …/account/totp.svg` shows it as a QR code, and
//! `POST …/account/totp/confirm` enables it only when a code from the app matches. Each
//! console keeps its own account page, sign-in step and rules for turning it off (a
//! merchant may require the factor), through [`TotpAccount`].

use std::future::Future;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpResponse};
use chrono::Utc;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::merchant::TotpSecret;
use crate::store::TotpOwner;
use crate::web::error::{AppError, AppResult};
use crate::web::AppState;

/// Whether `code` matches `secret` now and is later than the last code accepted; if so it
/// is used up, so neither a replay nor the code that enrolled can sign in again.
pub async fn accept_code(
    state: &AppState,
    owner: TotpOwner,
    secret: &TotpSecret,
    code: &str,
) -> AppResult<bool> {
    let (_, last) = state.store.totp_state(owner).await?;
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    let last = last.and_then(|l| u64::try_from(l).ok());
    let step = secret
        .verify(code, now, last)
        .and_then(|s| i64::try_from(s).ok());
    Ok(match step {
        Some(step) => state.store.use_totp_step(owner, step).await?,
        None => false,
    })
}

/// The sign-in step: `code` against the stored secret (false without one).
pub async fn accept_sign_in_code(
    state: &AppState,
    owner: TotpOwner,
    code: &str,
) -> AppResult<bool> {
    let (secret, _) = state.store.totp_state(owner).await?;
    match secret {
        Some(secret) => accept_code(state, owner, &TotpSecret::from_bytes(secret), code).await,
        None => Ok(false),
    }
}

/// The secret being enrolled, for the page: base32 in groups of four, which are easier
/// to type into an app by hand.
pub fn enrolling(secret: Option<&TotpSecret>) -> Value {
    let Some(secret) = secret else {
        return Value::Null;
    };
    let base32 = secret.base32();
    let grouped: Vec<String> = base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    json!({"secret": grouped.join(" ")})
}

/// The QR code an authenticator app scans to enrol `secret` for `account`. Never cached.
pub fn qr_code(secret: &TotpSecret, account: &str) -> AppResult<HttpResponse> {
    let url = secret
        .url(account)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("TOTP URL could not be built")))?;
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)
        .map_err(AppError::internal)?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(image))
}

/// A signed-in console user (merchant user or operator) as enrolment sees them.
pub trait TotpAccount: FromRequest + Sized {
    /// The account page, where every enrolment step comes back to.
    const ACCOUNT: &'static str;
    fn owner(&self) -> TotpOwner;
    fn totp_enabled(&self) -> bool;
    /// The account name an authenticator app shows (the e-mail).
    fn account_name(&self) -> &str;
    fn check_csrf(&self, token: &str) -> AppResult<()>;
    /// The account page again, 422, saying at the code field that the code was wrong.
    fn code_refused(&self, state: &AppState) -> impl Future<Output = AppResult<HttpResponse>>;
    /// Writes the enabling to the audit log.
    fn audit_enabled(&self, state: &AppState) -> impl Future<Output = AppResult<()>>;
}

fn back<A: TotpAccount>() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, A::ACCOUNT))
        .finish()
}

/// The secret being enrolled: stored, not yet enabled.
pub async fn pending_secret<A: TotpAccount>(
    account: &A,
    state: &AppState,
) -> AppResult<Option<TotpSecret>> {
    if account.totp_enabled() {
        return Ok(None);
    }
    let (secret, _) = state.store.totp_state(account.owner()).await?;
    Ok(secret.map(TotpSecret::from_bytes))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST …/account/totp`: a new secret to enrol (replacing one not confirmed).
pub async fn start<A: TotpAccount>(
    account: A,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    account.check_csrf(&form.csrf)?;
    if !account.totp_enabled() {
        let secret = TotpSecret::generate();
        state
            .store
            .set_totp(account.owner(), Some(secret.as_bytes()), false)
            .await?;
    }
    Ok(back::<A>())
}

/// `GET …/account/totp.svg`: the QR code of the secret being enrolled, for the app to
/// scan. Never cached; gone once enrolment is confirmed.
pub async fn qr<A: TotpAccount>(account: A, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let secret = pending_secret(&account, &state)
        .await?
        .ok_or_else(|| AppError::not_found("enrolment"))?;
    qr_code(&secret, account.account_name())
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    csrf: String,
}

/// `POST …/account/totp/confirm`: the code from the app turns the factor on. The code is
/// used up here as at sign-in, so the code that enrolled cannot also sign in.
pub async fn confirm<A: TotpAccount>(
    account: A,
    state: web::Data<AppState>,
    form: web::Form<ConfirmForm>,
) -> AppResult<HttpResponse> {
    account.check_csrf(&form.csrf)?;
    let Some(secret) = pending_secret(&account, &state).await? else {
        return Ok(back::<A>());
    };
    if !accept_code(&state, account.owner(), &secret, &form.code).await? {
        return account.code_refused(&state).await;
    }
    // The secret that was checked, not whatever is stored now (a second tab may have
    // started over meanwhile).
    state
        .store
        .set_totp(account.owner(), Some(secret.as_bytes()), true)
        .await?;
    account.audit_enabled(&state).await?;
    Ok(back::<A>())
}
