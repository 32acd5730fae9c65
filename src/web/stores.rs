//! `/api/v1/stores`: the merchant's stores (the shops where coupons are used), the same
//! ones the console's stores page manages, with the same rules (`ShopName`, `ShopCode`).
//! Listing is `campaigns:read`, creating `campaigns:write`, as for campaigns: stores are
//! part of how a merchant's campaigns are run.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::client_ip::client_ip;
use super::idempotency;
use super::json::ApiJson;
use super::AppState;
use crate::domain::redemption::{ShopCode, ShopName};
use crate::store::{AuditEntry, Shop, ShopWrite};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// A new store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStore {
    /// 1 to 100 characters, shown to staff.
    name: String,
    /// 1 to 16 of `A-Z`, `0-9` and `-`; lower case (and full-width letters) are stored in
    /// upper case. Unique per merchant. A redemption's free-text `store` matches it in any
    /// case.
    code: String,
}

/// A store.
#[derive(Serialize, ToSchema)]
#[schema(as = Store)]
struct StoreView<'a> {
    id: Uuid,
    name: &'a str,
    code: &'a str,
    created_at: DateTime<Utc>,
    /// Uses recorded at this store, undone ones left out.
    redemptions: i64,
}

impl<'a> From<&'a Shop> for StoreView<'a> {
    fn from(s: &'a Shop) -> StoreView<'a> {
        StoreView {
            id: s.id,
            name: &s.name,
            code: &s.code,
            created_at: s.created_at,
            redemptions: s.redemptions,
        }
    }
}

/// The merchant's stores.
#[derive(Serialize, ToSchema)]
struct StoreList<'a> {
    stores: Vec<StoreView<'a>>,
}

/// The merchant's stores, by code.
#[utoipa::path(get, path = "/api/v1/stores", operation_id = "listStores", tag = "stores",
    responses((status = 200, description = "The stores", body = StoreList)),
    security(("api_key" = ["campaigns:read"])))]
pub async fn list(auth: ApiAuth, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:read")?;
    let shops = state.store.shops(auth.tenant_id).await?;
    Ok(HttpResponse::Ok().json(StoreList {
        stores: shops.iter().map(StoreView::from).collect(),
    }))
}

/// Add a store. Accepts `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/stores", operation_id = "createStore", tag = "stores",
    params(("Idempotency-Key" = Option<String>, Header, description = "Up to 255 characters; the same key with the same body replays the first answer for 24 h")),
    request_body = NewStore,
    responses(
        (status = 201, description = "Created", body = StoreView),
        (status = 409, description = "`store_code_taken`: another of the merchant's stores has this code; \
            `idempotency_key_in_use`: a request with this Idempotency-Key is in progress", body = ErrorBody),
        (status = 422, description = "`invalid_store_name`: not 1 to 100 characters of text; \
            `invalid_store_code`: not 1 to 16 of A-Z, 0-9 and -; \
            `idempotency_key_reused`: the Idempotency-Key was used for another request; \
            `invalid_idempotency_key`: the header is empty or longer than 255 characters", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn create(
    req: HttpRequest,
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: ApiJson<NewStore>,
) -> AppResult<HttpResponse> {
    let ip = client_ip(&req, &state.settings).to_string();
    match idempotency::key(&req)? {
        None => create_store(auth, state, body, ip).await,
        Some(key) => {
            let fingerprint =
                serde_json::to_vec(&(&body.name, &body.code)).map_err(AppError::internal)?;
            let (a, s) = (auth.clone(), state.clone());
            let go = move || create_store(auth, state, body, ip);
            idempotency::run(&req, key, &a, &s, &fingerprint, go).await
        }
    }
}

async fn create_store(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: ApiJson<NewStore>,
    ip: String,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let name = ShopName::parse(&body.name);
    let code = ShopCode::parse(&body.code);
    let (name, code) = match (name, code) {
        (Ok(name), Ok(code)) => (name, code),
        (name, code) => {
            // Both fields are judged, so a form can mark every wrong one at once.
            let wrong: Vec<(&str, crate::domain::redemption::ShopError)> =
                [("name", name.err()), ("code", code.err())]
                    .into_iter()
                    .filter_map(|(f, e)| e.map(|e| (f, e)))
                    .collect();
            let (_, first) = wrong[0];
            let mut error = AppError::invalid(first.code(), first.to_string());
            error.fields = Some(
                wrong
                    .iter()
                    .map(|(f, e)| (f.to_string(), e.to_string()))
                    .collect(),
            );
            return Err(error);
        }
    };
    let id = match state
        .store
        .insert_shop(auth.tenant_id, &name, &code)
        .await?
    {
        ShopWrite::Saved(id) => id,
        ShopWrite::CodeTaken => {
            return Err(AppError::conflict(
                "store_code_taken",
                format!("another store has the code {}", code.as_str()),
            )
            .field("code"))
        }
        ShopWrite::NotFound => return Err(AppError::not_found("tenant")),
    };
    // The same trail the console leaves for a store it adds.
    state
        .store
        .audit(AuditEntry {
            tenant_id: Some(auth.tenant_id),
            actor_id: None,
            actor: &format!("api-key {}", auth.key_id),
            action: "store.create",
            target: code.as_str(),
            ip: &ip,
            detail: json!({"id": id, "name": name.as_str(), "code": code.as_str()}),
        })
        .await?;
    let shop = state
        .store
        .shop(auth.tenant_id, id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("new store {id} not found")))?;
    Ok(HttpResponse::Created().json(StoreView::from(&shop)))
}
