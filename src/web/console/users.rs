//! `GET /merchant/users`: the tenant's users, their roles and whether they may sign in;
//! inviting someone by a one-time link; changing a role; disabling and enabling.
//!
//! Owners and admins only. Only owners make owners, and admins cannot touch owners
//! (`Role::may_grant`); the store refuses to leave the tenant without an active owner.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{field_errors, Console};
use crate::domain::merchant::{Permission, Role};
use crate::domain::tenant::Email;
use crate::domain::token::{random_token, sha256};
use crate::store::{MerchantUser, UserChange};
use crate::web::error::{AppError, AppResult};
use crate::web::pages::show_time;
use crate::web::AppState;

/// What a re-shown users page carries besides the lists.
#[derive(Default)]
struct Extras {
    /// The one-time link just made; shown once, never stored in the clear.
    invite_link: Option<String>,
    invite_email: String,
    invite_role: Option<Role>,
    invite_errors: Vec<(&'static str, String)>,
    /// A refused change, shown in that user's row.
    row_error: Option<(Uuid, String)>,
}

pub async fn index(console: Console, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    console.require(Permission::ManageUsers)?;
    users_page(&console, &state, StatusCode::OK, Extras::default()).await
}

/// Whether `actor` may change `target` at all: admins cannot touch owners.
fn may_touch(actor: &MerchantUser, target: &MerchantUser) -> bool {
    actor.role.can(Permission::ManageUsers)
        && (target.role != Role::Owner || actor.role == Role::Owner)
}

fn role_options(console: &Console, selected: Option<Role>) -> Vec<Value> {
    Role::ALL
        .into_iter()
        .filter(|r| console.user.role.may_grant(*r))
        .map(|r| {
            json!({
                "value": r.as_str(),
                "label": console.t(&format!("console.role.{r}")),
                "selected": Some(r) == selected,
            })
        })
        .collect()
}

async fn users_page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    extras: Extras,
) -> AppResult<HttpResponse> {
    let tenant = console.user.tenant_id;
    let users = state.store.users(tenant).await?;
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            let is_self = u.id == console.user.id;
            json!({
                "id": u.id,
                "email": u.email,
                "role": u.role.as_str(),
                "role_label": console.t(&format!("console.role.{}", u.role)),
                "disabled": u.disabled,
                "status_label": console.t(if u.disabled {
                    "console.users.disabled"
                } else {
                    "console.users.active"
                }),
                "last_sign_in": u.last_sign_in_at.map(show_time),
                "mfa": u.totp_enabled,
                "is_self": is_self,
                "can_manage": may_touch(&console.user, u),
                "can_disable": may_touch(&console.user, u) && !is_self,
                "role_options": role_options(console, Some(u.role)),
                "error": extras.row_error.as_ref().filter(|(id, _)| *id == u.id).map(|(_, e)| e),
            })
        })
        .collect();
    let invites: Vec<Value> = state
        .store
        .invites(tenant)
        .await?
        .iter()
        .map(|i| {
            json!({
                "email": i.email,
                "role_label": console.t(&format!("console.role.{}", i.role)),
                "expires": show_time(i.expires_at),
            })
        })
        .collect();
    let ttl_days = state.settings.console.invite_ttl.as_secs().div_ceil(86_400);
    console.render_status(
        state,
        status,
        "merchant_users",
        json!({
            "title": console.t("console.users.title"),
            "users": rows,
            "invites": invites,
            "invite_link": extras.invite_link,
            "invite_email": extras.invite_email,
            "invite_roles": role_options(console, Some(extras.invite_role.unwrap_or(Role::Staff))),
            "invite_days": ttl_days,
            "errors": field_errors(&extras.invite_errors),
        }),
    )
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    csrf: String,
}

/// `POST /merchant/users/invite`: a one-time link, shown on this page only. Only its
/// SHA-256 is stored, so a database read hands out no invitations.
pub async fn invite(
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<InviteForm>,
) -> AppResult<HttpResponse> {
    console.check_csrf(&form.csrf)?;
    console.require(Permission::ManageUsers)?;
    let mut extras = Extras {
        invite_email: form.email.trim().to_owned(),
        ..Extras::default()
    };
    let mut status = StatusCode::UNPROCESSABLE_ENTITY;
    let email = match Email::parse(&form.email) {
        Ok(e) => Some(e),
        Err(_) => {
            let key = if form.email.trim().is_empty() {
                "console.users.email_missing"
            } else {
                "console.users.email_invalid"
            };
            extras.invite_errors.push(("email", console.t(key)));
            None
        }
    };
    if let Some(e) = &email {
        if state.store.email_taken(e.as_str()).await? {
            extras
                .invite_errors
                .push(("email", console.t("console.users.email_taken")));
        }
    }
    let role = match form.role.parse::<Role>() {
        Ok(r) if console.user.role.may_grant(r) => Some(r),
        Ok(_) => {
            // Only a hand-made request offers a role the menu does not list.
            status = StatusCode::FORBIDDEN;
            extras
                .invite_errors
                .push(("role", console.t("console.users.role_not_yours")));
            None
        }
        Err(_) => {
            extras
                .invite_errors
                .push(("role", console.t("console.users.role_invalid")));
            None
        }
    };
    extras.invite_role = role;
    let (Some(email), Some(role), true) = (email, role, extras.invite_errors.is_empty()) else {
        return users_page(&console, &state, status, extras).await;
    };
    let token = random_token();
    let ttl = chrono::TimeDelta::from_std(state.settings.console.invite_ttl)
        .unwrap_or(chrono::TimeDelta::days(7));
    let expires_at = Utc::now() + ttl;
    state
        .store
        .create_invite(
            console.user.tenant_id,
            email.as_str(),
            role,
            &sha256(&token),
            Some(console.user.id),
            expires_at,
        )
        .await?;
    console
        .audit(
            &state,
            "user.invite",
            email.as_str(),
            json!({"role": role.as_str(), "expires_at": expires_at}),
        )
        .await?;
    let extras = Extras {
        invite_link: Some(format!(
            "{}/merchant/invite/{token}",
            state.settings.public_url()
        )),
        ..Extras::default()
    };
    users_page(&console, &state, StatusCode::OK, extras).await
}

#[derive(Deserialize)]
pub struct UserForm {
    /// A new role; absent keeps the current one.
    role: Option<String>,
    /// "1" disables, "0" enables; absent keeps the current state.
    disabled: Option<String>,
    csrf: String,
}

/// `POST /merchant/users/{id}`: a new role and/or disabled or enabled. Disabling ends
/// the user's sessions at once (in the store's transaction).
pub async fn update(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<UserForm>,
) -> AppResult<HttpResponse> {
    console.check_csrf(&form.csrf)?;
    console.require(Permission::ManageUsers)?;
    let id = id.into_inner();
    let tenant = console.user.tenant_id;
    // Another tenant's user is simply not in this list: 404, as if it did not exist.
    let target = state
        .store
        .users(tenant)
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| AppError::not_found("user"))?;
    let refuse = |status: StatusCode, key: &str| {
        let extras = Extras {
            row_error: Some((id, console.t(key))),
            ..Extras::default()
        };
        users_page(&console, &state, status, extras)
    };
    if !may_touch(&console.user, &target) {
        return refuse(StatusCode::FORBIDDEN, "console.users.owner_only").await;
    }
    let role = match form.role.as_deref().map(str::parse::<Role>) {
        None => target.role,
        Some(Ok(r)) if r == target.role || console.user.role.may_grant(r) => r,
        Some(Ok(_)) => return refuse(StatusCode::FORBIDDEN, "console.users.role_not_yours").await,
        Some(Err(_)) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "console.users.role_invalid",
            )
            .await
        }
    };
    let disabled = match form.disabled.as_deref() {
        None => target.disabled,
        Some("1" | "true") => true,
        Some("0" | "false") => false,
        Some(_) => {
            return refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "console.users.bad_request",
            )
            .await
        }
    };
    if disabled && id == console.user.id {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "console.users.not_yourself",
        )
        .await;
    }
    if role == target.role && disabled == target.disabled {
        return Ok(console.redirect("/merchant/users"));
    }
    match state.store.change_user(tenant, id, role, disabled).await? {
        UserChange::Done => {}
        UserChange::NotFound => return Err(AppError::not_found("user")),
        UserChange::LastOwner => {
            return refuse(StatusCode::CONFLICT, "console.users.last_owner").await
        }
    }
    if role != target.role {
        let detail = json!({"from": target.role.as_str(), "to": role.as_str()});
        console
            .audit(&state, "user.role_change", &target.email, detail)
            .await?;
    }
    if disabled != target.disabled {
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        console
            .audit(&state, action, &target.email, json!({}))
            .await?;
    }
    Ok(console.redirect("/merchant/users"))
}
