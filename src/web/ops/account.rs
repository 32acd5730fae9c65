//! `GET /ops/account`: the operator's own account and the optional TOTP second factor
//! (RFC 6238), as merchant users have it (`web/console/account.rs`). Enrolment is
//! `web/second_factor.rs`'s, for [`OpsConsole`]. Turning it off needs the password. An
//! operator who lost the phone is reset by another operator: `ecoupon operator reset-2fa`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::OpsConsole;
use crate::store::TotpOwner;
use crate::web::console::field_errors;
use crate::web::error::AppResult;
use crate::web::second_factor::{self, TotpAccount};
use crate::web::{password_sign_in, AppState};

const ACCOUNT: &str = "/ops/account";

fn owner(ops: &OpsConsole) -> TotpOwner {
    TotpOwner::Operator(ops.operator.id)
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
    let pending = second_factor::pending_secret(ops, state).await?;
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

impl TotpAccount for OpsConsole {
    const ACCOUNT: &'static str = ACCOUNT;

    fn owner(&self) -> TotpOwner {
        owner(self)
    }

    fn totp_enabled(&self) -> bool {
        self.operator.totp_enabled
    }

    fn account_name(&self) -> &str {
        &self.operator.email
    }

    fn check_csrf(&self, token: &str) -> AppResult<()> {
        OpsConsole::check_csrf(self, token)
    }

    async fn code_refused(&self, state: &AppState) -> AppResult<HttpResponse> {
        let errors = vec![("code", self.t("console.account.code_wrong"))];
        account_page(self, state, StatusCode::UNPROCESSABLE_ENTITY, errors).await
    }

    async fn audit_enabled(&self, state: &AppState) -> AppResult<()> {
        self.audit(
            state,
            "operator.mfa_enable",
            &self.operator.email,
            json!({}),
        )
        .await
    }
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
