//! The API keys page, `GET/POST /merchant/keys` and `POST /merchant/keys/{id}/revoke`: list,
//! create (with chosen scopes) and revoke the tenant's API keys, the same keys the API's
//! `/api/v1/keys` and the `key` CLI manage. Owners and admins only (the keys reach every
//! campaign and setting the API can, so they sit with the tenant settings:
//! `Permission::ManageSettings`). Another tenant's key answers 404.
//!
//! A new key's secret is in the answer to the creating post and nowhere else: not in a
//! URL (the post answers with the page rather than a redirect), not in the audit log,
//! not stored (only its hash is).

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{field_errors, Console};
use crate::domain::api_key::{parse_key_name, parse_scopes, SCOPES_KNOWN};
use crate::domain::merchant::Permission;
use crate::store::{ApiKeyListing, KeyRevoke};
use crate::web::error::{AppError, AppResult, ErrorCode};
use crate::web::keys::create_key;
use crate::web::pages::show_time;
use crate::web::AppState;

/// A form body is a few short fields; anything larger is not this form.
const MAX_FORM_BYTES: usize = 4 * 1024;

#[derive(Deserialize)]
pub struct KeysQuery {
    /// What the last form did, for the notice at the top.
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    /// Missing is refused like a wrong one (403), not as a malformed form.
    #[serde(default)]
    csrf: String,
}

/// The creating form as posted. Scopes are repeated checkboxes, which `web::Form` cannot
/// gather into a list, so the body is read by hand.
#[derive(Default)]
struct NewKeyForm {
    csrf: String,
    name: String,
    scopes: Vec<String>,
}

impl NewKeyForm {
    fn parse(raw: &[u8]) -> NewKeyForm {
        let mut form = NewKeyForm::default();
        for (key, value) in form_urlencoded::parse(raw) {
            match key.as_ref() {
                "csrf" => form.csrf = value.into_owned(),
                "name" => form.name = value.into_owned(),
                "scopes" => form.scopes.push(value.into_owned()),
                _ => {}
            }
        }
        form
    }
}

/// What the page shows above the list besides the notice: the key just made (its secret,
/// this once), or the creating form again with what was wrong.
enum Shown<'a> {
    Nothing,
    Created(&'a ApiKeyListing, &'a str),
    Retry(&'a NewKeyForm, Value),
}

fn row(console: &Console, k: &ApiKeyListing) -> Value {
    json!({
        "id": k.id,
        "prefix": k.prefix,
        "name": k.name,
        "scopes": k.scopes,
        "created": show_time(k.created_at),
        "last_used": k.last_used_at.map(show_time),
        "revoked": k.revoked_at.map(show_time),
        "label_revoke": format!("{} ({})", console.t("console.keys.revoke"), k.prefix),
    })
}

async fn page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    shown: Shown<'_>,
) -> AppResult<HttpResponse> {
    let keys = state
        .store
        .list_api_keys(Some(console.user.tenant_id))
        .await?;
    let rows: Vec<Value> = keys.iter().map(|k| row(console, k)).collect();
    let (name, chosen, errors, created) = match &shown {
        Shown::Retry(form, errors) => (form.name.as_str(), &form.scopes[..], errors.clone(), None),
        Shown::Created(key, secret) => (
            "",
            &[][..],
            json!({}),
            Some(json!({"key": row(console, key), "secret": secret})),
        ),
        Shown::Nothing => ("", &[][..], json!({}), None),
    };
    let scopes: Vec<Value> = SCOPES_KNOWN
        .iter()
        .map(|s| {
            json!({
                "value": s,
                "slug": s.replace(':', "-"),
                "help": console.t(&format!("console.keys.scope_help.{}", s.replace(':', "_"))),
                "checked": chosen.iter().any(|c| c == s),
            })
        })
        .collect();
    console.render_status(
        state,
        status,
        "merchant_keys",
        json!({
            "title": console.t("console.keys.title"),
            "notice": notice,
            "created": created,
            "new": {"name": name, "errors": errors},
            "scopes": scopes,
            "keys": rows,
            "label_revoke_confirm": console.t("console.keys.revoke_confirm"),
        }),
    )
}

/// `GET /merchant/keys`
pub async fn index(
    console: Console,
    state: web::Data<AppState>,
    query: web::Query<KeysQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageSettings)?;
    let notice = match query.done.as_deref() {
        Some("revoked") => Some("console.keys.revoked_notice"),
        Some("already_revoked") => Some("console.keys.already_revoked"),
        _ => None,
    };
    page(&console, &state, StatusCode::OK, notice, Shown::Nothing).await
}

/// `POST /merchant/keys`: makes a key and shows its secret, once, on the answering page.
pub async fn create(
    console: Console,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageSettings)?;
    if body.len() > MAX_FORM_BYTES {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            "the form is too large",
        ));
    }
    let form = NewKeyForm::parse(&body);
    console.check_csrf(&form.csrf)?;
    let mut errors = Vec::new();
    let scopes = match parse_scopes(&form.scopes) {
        Ok(scopes) if !scopes.is_empty() => scopes,
        _ => {
            errors.push(("scopes", console.t("console.keys.error.scopes")));
            Vec::new()
        }
    };
    let name = parse_key_name(&form.name).unwrap_or_else(|_| {
        errors.push(("name", console.t("console.keys.error.name")));
        String::new()
    });
    if !errors.is_empty() {
        let shown = Shown::Retry(&form, field_errors(&errors));
        return page(
            &console,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            shown,
        )
        .await;
    }
    let (key, secret) = create_key(&state, console.user.tenant_id, &name, &scopes).await?;
    console
        .audit(
            &state,
            "api_key.create",
            &key.prefix,
            json!({"id": key.id, "name": key.name, "scopes": key.scopes}),
        )
        .await?;
    let notice = Some("console.keys.created_notice");
    let shown = Shown::Created(&key, &secret);
    page(&console, &state, StatusCode::OK, notice, shown).await
}

/// `POST /merchant/keys/{id}/revoke`: the key stops working within a second on every node.
pub async fn revoke(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageSettings)?;
    console.check_csrf(&form.csrf)?;
    match state
        .store
        .revoke_tenant_api_key(console.user.tenant_id, *id)
        .await?
    {
        KeyRevoke::Revoked(key) => {
            console
                .audit(
                    &state,
                    "api_key.revoke",
                    &key.prefix,
                    json!({"id": key.id, "name": key.name}),
                )
                .await?;
            Ok(console.redirect("/merchant/keys?done=revoked"))
        }
        KeyRevoke::AlreadyRevoked => Ok(console.redirect("/merchant/keys?done=already_revoked")),
        KeyRevoke::NotFound => Err(AppError::not_found("API key")),
    }
}
