//! `/ops/password`: an operator changes their own password (the one `operator request`
//! generated, or a leaked one), under the merchant console's rules. Every session of the
//! operator ends; this browser gets a new one.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::OpsConsole;
use crate::web::console::field_errors;
use crate::web::error::AppResult;
use crate::web::password_sign_in::{self, PasswordForm};
use crate::web::AppState;

fn password_page(
    ops: &OpsConsole,
    state: &AppState,
    status: StatusCode,
    errors: serde_json::Value,
) -> AppResult<HttpResponse> {
    let rules = password_sign_in::password_rules(ops.operator.totp_enabled);
    ops.render_status(
        state,
        status,
        "ops_password",
        json!({
            "title": ops.t("console.merchant_password.title"),
            "min": rules["min"],
            "max": rules["max"],
            "password_action": "/ops/password",
            "errors": errors,
        }),
    )
}

/// `GET /ops/password`
pub async fn form(ops: OpsConsole, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    password_page(&ops, &state, StatusCode::OK, json!({}))
}

/// `POST /ops/password`
pub async fn submit(
    req: HttpRequest,
    ops: OpsConsole,
    state: web::Data<AppState>,
    form: web::Form<PasswordForm>,
) -> AppResult<HttpResponse> {
    ops.check_csrf(&form.csrf)?;
    // It checks a password, so it is throttled like sign-in: a stolen session must not
    // become a way to guess it.
    password_sign_in::throttle(&state, ops.ip)?;
    let op = &ops.operator;
    let current_ok =
        password_sign_in::check_password(&form.current, Some(&op.password_hash)).await?;
    let errors = form.problems(|k| ops.t(k), current_ok, &op.email, op.totp_enabled);
    if !errors.is_empty() {
        if !current_ok {
            crate::metrics::auth_failure("ops_password");
        }
        let errors = field_errors(&errors);
        return password_page(&ops, &state, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    let phc = form.new_hash().await?;
    state.store.set_operator_password(op.id, &phc).await?;
    ops.audit(&state, "operator.password_change", &op.email, json!({}))
        .await?;
    super::login::start_session(&req, &state, op, false, "/ops/account").await
}
