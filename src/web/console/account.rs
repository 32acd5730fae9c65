//! `GET /merchant/account`: every user's own account: the password-change link and the
//! optional TOTP second factor (RFC 6238).
//!
//! Enrolment (a secret enabled only once a code from the app matches) is
//! `web/second_factor.rs`'s, for [`Console`]. When the tenant requires a second factor,
//! `Console::load` sends users without one here, and they cannot turn theirs off.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{field_errors, Console};
use crate::domain::merchant::password::check_new_password;
use crate::domain::merchant::PasswordProblem;
use crate::store::TotpOwner;
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::second_factor::{self, TotpAccount};
use crate::web::{password_sign_in, AppState};

const ACCOUNT: &str = "/merchant/account";

fn owner(console: &Console) -> TotpOwner {
    TotpOwner::MerchantUser(console.user.id)
}

pub async fn index(console: Console, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    account_page(&console, &state, StatusCode::OK, Vec::new()).await
}

async fn account_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    errors: Vec<(&str, String)>,
) -> AppResult<HttpResponse> {
    let user = &console.user;
    let pending = second_factor::pending_secret(console, state).await?;
    console.render_status(
        state,
        status,
        "merchant_account",
        json!({
            "title": console.t("console.account.title"),
            "email": user.email,
            "mfa_enabled": user.totp_enabled,
            "mfa_required": user.tenant_require_mfa,
            "mfa_missing": user.tenant_require_mfa && !user.totp_enabled,
            "can_disable": user.totp_enabled && !user.tenant_require_mfa,
            "enrolling": second_factor::enrolling(pending.as_ref()),
            "totp_base": ACCOUNT,
            "errors": field_errors(&errors),
        }),
    )
}

impl TotpAccount for Console {
    const ACCOUNT: &'static str = ACCOUNT;

    fn owner(&self) -> TotpOwner {
        owner(self)
    }

    fn totp_enabled(&self) -> bool {
        self.user.totp_enabled
    }

    fn account_name(&self) -> &str {
        &self.user.email
    }

    fn check_csrf(&self, token: &str) -> AppResult<()> {
        Console::check_csrf(self, token)
    }

    async fn code_refused(&self, state: &AppState) -> AppResult<HttpResponse> {
        let errors = vec![("code", self.t("console.account.code_wrong"))];
        account_page(self, state, StatusCode::UNPROCESSABLE_ENTITY, errors).await
    }

    async fn audit_enabled(&self, state: &AppState) -> AppResult<()> {
        self.audit(state, "account.mfa_enable", &self.user.email, json!({}))
            .await
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    #[serde(default)]
    password: String,
    csrf: String,
}

/// `POST /merchant/account/totp/disable`: needs the current password, and is refused
/// while the tenant requires a second factor.
pub async fn disable(
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<DisableForm>,
) -> AppResult<HttpResponse> {
    console.check_csrf(&form.csrf)?;
    let user = &console.user;
    if !user.totp_enabled {
        return Ok(console.redirect(ACCOUNT));
    }
    if user.tenant_require_mfa {
        return Err(AppError::new(
            ErrorCode::Denied("mfa_required"),
            "this merchant requires a second factor for every user",
        ));
    }
    // The form checks a password, so it is throttled like sign-in: a stolen session
    // must not become a way to guess it.
    password_sign_in::throttle(&state, console.ip)?;
    let hash = state
        .store
        .sign_in_candidates(&user.email)
        .await?
        .into_iter()
        .find(|c| c.user.id == user.id)
        .map(|c| c.password_hash)
        .ok_or_else(|| AppError::not_found("user"))?;
    let right = password_sign_in::check_password(&form.password, Some(&hash)).await?;
    let mut errors = Vec::new();
    if !right {
        crate::metrics::auth_failure("console_password");
        errors.push(("password", console.t("console.account.password_wrong")));
    } else if let Err(PasswordProblem::TooShort { min }) =
        check_new_password(&form.password, &user.email, false)
    {
        // Eight characters are enough only with a second factor.
        let text = console
            .t("console.account.password_too_short")
            .replace("{min}", &min.to_string());
        errors.push(("password", text));
    }
    if !errors.is_empty() {
        return account_page(&console, &state, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    state.store.set_totp(owner(&console), None, false).await?;
    console
        .audit(&state, "account.mfa_disable", &user.email, json!({}))
        .await?;
    Ok(console.redirect(ACCOUNT))
}
