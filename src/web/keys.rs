//! `/api/v1/keys`: a `keys:admin` key creates, lists and revokes its merchant's API keys.
//! A new key's secret is in the creating answer only; afterwards its prefix names it.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::json::ApiJson;
use super::AppState;
use crate::domain::api_key::{parse_key_name, parse_scopes, NewApiKey};
use crate::store::{ApiKeyListing, KeyRevoke};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// A key as listed: never its secret.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
struct KeyView<'a> {
    id: Uuid,
    /// The visible start of the key (`eck_XXXXXXXX`), to tell keys apart.
    prefix: &'a str,
    name: &'a str,
    scopes: &'a [String],
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl<'a> From<&'a ApiKeyListing> for KeyView<'a> {
    fn from(k: &'a ApiKeyListing) -> KeyView<'a> {
        KeyView {
            id: k.id,
            prefix: &k.prefix,
            name: &k.name,
            scopes: &k.scopes,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct KeyList<'a> {
    keys: Vec<KeyView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct CreatedKey<'a> {
    key: KeyView<'a>,
    /// The whole key. Shown this once: only its hash is stored.
    api_key: &'a str,
}

#[derive(Serialize, ToSchema)]
struct RevokedKey<'a> {
    key: KeyView<'a>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// `campaigns:read`, `campaigns:write`, `claims:write`, `redemptions:write`,
    /// `export:read`, `keys:admin`; at least one.
    scopes: Vec<String>,
    /// A label to tell keys apart (at most 100 characters).
    #[serde(default)]
    name: String,
}

/// Create an API key; its secret is shown in this answer only.
#[utoipa::path(post, path = "/api/v1/keys", operation_id = "createKey", tag = "keys",
    request_body = NewKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 422, description = "`invalid_scope`: no scope, or one that does not exist; \
            `invalid_name`: the name is longer than 100 characters or has control characters", body = ErrorBody),
    ),
    security(("api_key" = ["keys:admin"])))]
pub async fn create(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: ApiJson<NewKeyRequest>,
) -> AppResult<HttpResponse> {
    auth.require_scope("keys:admin")?;
    let request = body.into_inner();
    let scopes = parse_scopes(&request.scopes)
        .map_err(|e| AppError::invalid("invalid_scope", e.to_string()).field("scopes"))?;
    if scopes.is_empty() {
        return Err(AppError::invalid("invalid_scope", "give at least one scope").field("scopes"));
    }
    let name = parse_key_name(&request.name).map_err(|_| {
        AppError::invalid(
            "invalid_name",
            "name must be at most 100 characters of text",
        )
        .field("name")
    })?;
    let (listing, plaintext) = create_key(&state, auth.tenant_id, &name, &scopes).await?;
    Ok(HttpResponse::Created().json(CreatedKey {
        key: KeyView::from(&listing),
        api_key: &plaintext,
    }))
}

/// Generates and stores a key with checked scopes and name: the API's and the merchant
/// console's way of making one. Returns it as listed, and its whole secret (shown once).
pub(crate) async fn create_key(
    state: &AppState,
    tenant_id: Uuid,
    name: &str,
    scopes: &[String],
) -> AppResult<(ApiKeyListing, String)> {
    let key = NewApiKey::generate();
    let id = state
        .store
        .insert_api_key(tenant_id, name, &key.prefix, &key.hash, scopes)
        .await?
        .ok_or_else(|| AppError::not_found("tenant"))?;
    let listing = state
        .store
        .list_api_keys(Some(tenant_id))
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("new key {id} not listed")))?;
    Ok((listing, key.plaintext))
}

/// The merchant's keys, oldest first, revoked ones included.
#[utoipa::path(get, path = "/api/v1/keys", operation_id = "listKeys", tag = "keys",
    responses((status = 200, description = "The keys", body = KeyList)),
    security(("api_key" = ["keys:admin"])))]
pub async fn list(auth: ApiAuth, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    auth.require_scope("keys:admin")?;
    let keys = state.store.list_api_keys(Some(auth.tenant_id)).await?;
    Ok(HttpResponse::Ok().json(KeyList {
        keys: keys.iter().map(KeyView::from).collect(),
    }))
}

/// Revoke a key. It stops working within a second on every node.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", operation_id = "revokeKey", tag = "keys",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses(
        (status = 200, description = "Revoked", body = RevokedKey),
        (status = 404, description = "`not_found`: the merchant has no such key", body = ErrorBody),
        (status = 409, description = "`already_revoked`: the key was revoked before", body = ErrorBody),
    ),
    security(("api_key" = ["keys:admin"])))]
pub async fn revoke(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    auth.require_scope("keys:admin")?;
    match state
        .store
        .revoke_tenant_api_key(auth.tenant_id, *id)
        .await?
    {
        KeyRevoke::Revoked(listing) => Ok(HttpResponse::Ok().json(RevokedKey {
            key: KeyView::from(&listing),
        })),
        KeyRevoke::AlreadyRevoked => Err(AppError::conflict(
            "already_revoked",
            "this key was revoked before",
        )),
        KeyRevoke::NotFound => Err(AppError::not_found("API key")),
    }
}
