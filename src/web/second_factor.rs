//! The TOTP second factor's web parts shared by the merchant and operator consoles:
//! checking a code (each accepted once), the enrolment QR code and the typed key.
//! Each console keeps its own pages and rules (a merchant may require the factor).

use actix_web::http::header;
use actix_web::HttpResponse;
use chrono::Utc;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
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
