//! The stores page, `GET/POST /merchant/stores`: list, add, rename (name and code) and delete
//! the shops where coupons are used, with uses split by store and campaign. Managers and
//! above (`Permission::ManageCampaigns`). Another tenant's store answers 404.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{field_errors, Console};
use crate::domain::merchant::Permission;
use crate::domain::redemption::{ShopCode, ShopName};
use crate::store::{Shop, ShopWrite};
use crate::web::error::{AppError, AppResult};
use crate::web::AppState;

#[derive(Deserialize)]
pub struct ShopForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

#[derive(Deserialize)]
pub struct StoresQuery {
    /// What the last form did, for the notice at the top.
    done: Option<String>,
}

/// A form being shown again: what was typed, and what was wrong with it.
struct Retry<'a> {
    /// None: the "add" form; Some: that store's row.
    id: Option<Uuid>,
    form: &'a ShopForm,
    errors: Value,
}

/// The checked name and code, or a message for each field that is wrong.
fn parse(console: &Console, form: &ShopForm) -> Result<(ShopName, ShopCode), Value> {
    let name = ShopName::parse(&form.name);
    let code = ShopCode::parse(&form.code);
    match (name, code) {
        (Ok(name), Ok(code)) => Ok((name, code)),
        (name, code) => {
            let mut errors = Vec::new();
            if name.is_err() {
                errors.push(("name", console.t("console.stores.error.name")));
            }
            if code.is_err() {
                errors.push(("code", console.t("console.stores.error.code")));
            }
            Err(field_errors(&errors))
        }
    }
}

fn code_taken(console: &Console) -> Value {
    field_errors(&[("code", console.t("console.stores.error.code_taken"))])
}

async fn page(
    console: &Console,
    state: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    retry: Option<Retry<'_>>,
) -> AppResult<HttpResponse> {
    let tenant_id = console.user.tenant_id;
    let shops = state.store.shops(tenant_id).await?;
    let stats = state.store.shop_campaign_stats(tenant_id).await?;
    let retry_for = |id: Option<Uuid>| retry.as_ref().filter(|r| r.id == id);
    let rows: Vec<Value> = shops
        .iter()
        .map(|s: &Shop| {
            let (values, errors) = match retry_for(Some(s.id)) {
                Some(r) => (
                    json!({"name": r.form.name, "code": r.form.code}),
                    r.errors.clone(),
                ),
                None => (json!({"name": s.name, "code": s.code}), json!({})),
            };
            json!({
                "id": s.id,
                "values": values,
                "errors": errors,
                "uses": s.redemptions,
                "label_name": format!("{} ({})", console.t("console.stores.name"), s.code),
                "label_code": format!("{} ({})", console.t("console.stores.code"), s.code),
            })
        })
        .collect();
    let none = console.t("console.stores.stats_none");
    let stat_rows: Vec<Value> = stats
        .iter()
        .map(|s| {
            let store = match (&s.shop_name, &s.shop_code) {
                (Some(name), Some(code)) => format!("{name} ({code})"),
                _ => none.clone(),
            };
            json!({
                "store_id": s.shop_id,
                "store": store,
                "campaign_id": s.campaign_id,
                "campaign": s.campaign_name,
                "redemptions": s.redemptions,
            })
        })
        .collect();
    let new = match retry_for(None) {
        Some(r) => {
            json!({"values": {"name": r.form.name, "code": r.form.code}, "errors": r.errors})
        }
        None => json!({"values": {"name": "", "code": ""}, "errors": {}}),
    };
    console.render_status(
        state,
        status,
        "merchant_stores",
        json!({
            "title": console.t("console.stores.title"),
            "notice": notice,
            "new": new,
            "stores": rows,
            "stats": stat_rows,
            "label_save": console.t("console.stores.save"),
            "label_delete": console.t("console.stores.delete"),
            "label_delete_confirm": console.t("console.stores.delete_confirm"),
        }),
    )
}

/// `GET /merchant/stores`
pub async fn index(
    console: Console,
    state: web::Data<AppState>,
    query: web::Query<StoresQuery>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    let notice = match query.done.as_deref() {
        Some("created") => Some("console.stores.created"),
        Some("updated") => Some("console.stores.updated"),
        Some("deleted") => Some("console.stores.deleted"),
        _ => None,
    };
    page(&console, &state, StatusCode::OK, notice, None).await
}

async fn retry(
    console: &Console,
    state: &AppState,
    id: Option<Uuid>,
    form: &ShopForm,
    errors: Value,
) -> AppResult<HttpResponse> {
    let retry = Retry { id, form, errors };
    page(
        console,
        state,
        StatusCode::UNPROCESSABLE_ENTITY,
        None,
        Some(retry),
    )
    .await
}

/// `POST /merchant/stores`: adds a store.
pub async fn create(
    console: Console,
    state: web::Data<AppState>,
    form: web::Form<ShopForm>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    console.check_csrf(&form.csrf)?;
    let (name, code) = match parse(&console, &form) {
        Ok(parsed) => parsed,
        Err(errors) => return retry(&console, &state, None, &form, errors).await,
    };
    match state
        .store
        .insert_shop(console.user.tenant_id, &name, &code)
        .await?
    {
        ShopWrite::Saved(id) => {
            console
                .audit(
                    &state,
                    "store.create",
                    code.as_str(),
                    json!({"id": id, "name": name.as_str(), "code": code.as_str()}),
                )
                .await?;
            Ok(console.redirect("/merchant/stores?done=created"))
        }
        ShopWrite::CodeTaken => retry(&console, &state, None, &form, code_taken(&console)).await,
        ShopWrite::NotFound => Err(AppError::not_found("store")),
    }
}

/// `POST /merchant/stores/{id}`: renames a store (its name and its code).
pub async fn update(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<ShopForm>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    console.check_csrf(&form.csrf)?;
    let tenant_id = console.user.tenant_id;
    let before = state
        .store
        .shop(tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("store"))?;
    let (name, code) = match parse(&console, &form) {
        Ok(parsed) => parsed,
        Err(errors) => return retry(&console, &state, Some(*id), &form, errors).await,
    };
    match state
        .store
        .update_shop(tenant_id, *id, &name, &code)
        .await?
    {
        ShopWrite::Saved(_) => {
            console
                .audit(
                    &state,
                    "store.update",
                    code.as_str(),
                    json!({"id": *id,
                           "from": {"name": before.name, "code": before.code},
                           "to": {"name": name.as_str(), "code": code.as_str()}}),
                )
                .await?;
            Ok(console.redirect("/merchant/stores?done=updated"))
        }
        ShopWrite::CodeTaken => {
            retry(&console, &state, Some(*id), &form, code_taken(&console)).await
        }
        ShopWrite::NotFound => Err(AppError::not_found("store")),
    }
}

/// `POST /merchant/stores/{id}/delete`: its past uses stay, with their free text.
pub async fn delete(
    console: Console,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    form: web::Form<CsrfOnly>,
) -> AppResult<HttpResponse> {
    console.require(Permission::ManageCampaigns)?;
    console.check_csrf(&form.csrf)?;
    let gone = state
        .store
        .delete_shop(console.user.tenant_id, *id)
        .await?
        .ok_or_else(|| AppError::not_found("store"))?;
    console
        .audit(
            &state,
            "store.delete",
            &gone.code,
            json!({"id": gone.id, "name": gone.name, "code": gone.code}),
        )
        .await?;
    Ok(console.redirect("/merchant/stores?done=deleted"))
}
