//! `GET/POST /merchant/invite/{token}`: the invited person chooses a password and the
//! account exists. The link is the only credential, so an unknown token is a 404 and a
//! used or expired one a 410, each a page that says what to do, never a 500.
//!
//! No session exists yet, so the form's CSRF token is a double-submit cookie (as on the
//! sign-in form), scoped to the invitation pages.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use super::double_submit::DoubleSubmit;
use super::field_errors;
use crate::domain::merchant::password::check_new_password;
use crate::domain::merchant::{PasswordProblem, MAX_PASSWORD_CHARS};
use crate::domain::tenant::hash_password;
use crate::domain::token::sha256;
use crate::store::{AuditEntry, InviteRecord};
use crate::web::client_ip::client_ip;
use crate::web::error::{AppError, AppResult};
use crate::web::i18n::{message, Lang};
use crate::web::AppState;

/// The invitation form comes before any session exists.
const INVITE_CSRF: DoubleSubmit = DoubleSubmit {
    cookie: "ecoupon_invite_csrf",
    path: "/merchant/invite",
};
/// A random token is 43 characters; anything else is not one of ours.
const TOKEN_LEN: usize = 43;

/// What the page shows: the form, or why there is none.
enum View<'a> {
    Form {
        invite: &'a InviteRecord,
        errors: Value,
    },
    Done {
        email: &'a str,
    },
    /// "unknown", "used", "expired" or "taken".
    Gone(&'static str),
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    view: View<'_>,
) -> AppResult<HttpResponse> {
    let (lang, remember) = Lang::negotiate(req);
    let mut data = json!({
        "title": message(lang, "console.invite.title"),
        "body_class": "console console--login",
        "min": 15,
        "max": MAX_PASSWORD_CHARS,
        "invite": null, "done": null, "gone": null, "errors": {},
    });
    match view {
        View::Form { invite, errors } => {
            data["invite"] = json!({
                "email": invite.email,
                "tenant": invite.tenant_name,
                "role_label": message(lang, &format!("console.role.{}", invite.role)),
            });
            data["errors"] = errors;
        }
        View::Done { email } => data["done"] = json!({"email": email}),
        View::Gone(why) => {
            data["gone"] = json!({
                "why": why,
                "text": message(lang, &format!("console.invite.gone_{why}")),
            });
        }
    }
    INVITE_CSRF.page(req, state, lang, remember, status, "merchant_invite", data)
}

/// The invitation a token names, or the page that says why it cannot be used.
async fn find(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
) -> AppResult<Result<InviteRecord, HttpResponse>> {
    let invite = if token.len() == TOKEN_LEN {
        state.store.invite(&sha256(token)).await?
    } else {
        None
    };
    let gone = |status, why| render(req, state, status, View::Gone(why)).map(Err);
    match invite {
        None => gone(StatusCode::NOT_FOUND, "unknown"),
        Some(i) if i.used_at.is_some() => gone(StatusCode::GONE, "used"),
        Some(i) if i.expires_at <= Utc::now() => gone(StatusCode::GONE, "expired"),
        Some(i) => Ok(Ok(i)),
    }
}

/// `GET /merchant/invite/{token}`
pub async fn form(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> AppResult<HttpResponse> {
    let invite = match find(&req, &state, &token).await? {
        Ok(i) => i,
        Err(page) => return Ok(page),
    };
    let view = View::Form {
        invite: &invite,
        errors: json!({}),
    };
    render(&req, &state, StatusCode::OK, view)
}

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
    csrf: String,
}

/// The message for a password problem, with its numbers filled in.
pub fn password_message(lang: Lang, problem: &PasswordProblem) -> String {
    let min = match problem {
        PasswordProblem::TooShort { min } => min.to_string(),
        _ => String::new(),
    };
    message(lang, problem.message_key())
        .replace("{min}", &min)
        .replace("{max}", &MAX_PASSWORD_CHARS.to_string())
}

/// `POST /merchant/invite/{token}`: the account is created with the chosen password,
/// once; the page then sends the person to sign in.
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<AcceptForm>,
) -> AppResult<HttpResponse> {
    INVITE_CSRF.check(&req, &form.csrf)?;
    let invite = match find(&req, &state, &token).await? {
        Ok(i) => i,
        Err(page) => return Ok(page),
    };
    let lang = Lang::negotiate(&req).0;
    let mut errors = Vec::new();
    // No second factor yet, so the longer minimum applies.
    if let Err(problem) = check_new_password(&form.new, &invite.email, false) {
        errors.push(("new", password_message(lang, &problem)));
    }
    if form.new != form.confirm {
        errors.push(("confirm", message(lang, "console.invite.mismatch")));
    }
    if !errors.is_empty() {
        let view = View::Form {
            invite: &invite,
            errors: field_errors(&errors),
        };
        return render(&req, &state, StatusCode::UNPROCESSABLE_ENTITY, view);
    }
    let new = form.new.clone();
    let phc = web::block(move || hash_password(&new))
        .await
        .map_err(AppError::internal)?;
    let Some(user_id) = state
        .store
        .accept_invite(&sha256(token.as_str()), &phc)
        .await?
    else {
        // Used by a double submit a moment ago, expired meanwhile, or the address got an
        // account elsewhere since the invitation was made.
        return render(&req, &state, StatusCode::CONFLICT, View::Gone("taken"));
    };
    let ip = client_ip(&req, &state.settings).to_string();
    state
        .store
        .audit(AuditEntry {
            tenant_id: Some(invite.tenant_id),
            actor_id: Some(user_id),
            actor: &invite.email,
            action: "user.invite_accept",
            target: &invite.email,
            ip: &ip,
            detail: json!({"role": invite.role.as_str(), "invite": invite.id}),
        })
        .await?;
    render(
        &req,
        &state,
        StatusCode::OK,
        View::Done {
            email: &invite.email,
        },
    )
}
