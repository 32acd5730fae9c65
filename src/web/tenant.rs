//! `GET /api/v1/tenant`: the tenant the presented API key belongs to, and
//! `PATCH /api/v1/tenant`: its theme colours, accepted sign-in providers and whether API
//! redemptions must carry the coupon screen's check code (`require_check_code`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use std::time::Duration;

use uuid::Uuid;

use super::auth::ApiAuth;
use super::json::ApiJson;
use super::ttl_cache::TtlCache;
use super::AppState;
use crate::domain::theme::BrandColor;
use crate::store::{Store, StoreError, Theme};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// Tenants' settings as pages and `GET /api/v1/tenant` show them, believed for a second:
/// a crowd reading them costs the database one query a second per tenant. A change made on
/// this node is seen at once ([`TenantCache::forget`]); on another node within a second.
pub struct TenantCache(TtlCache<Uuid, Option<Theme>>);

impl Default for TenantCache {
    fn default() -> Self {
        TenantCache(TtlCache::new(Duration::from_secs(1), 10_000))
    }
}

impl TenantCache {
    pub async fn get(&self, store: &Store, tenant_id: Uuid) -> Result<Option<Theme>, StoreError> {
        self.0
            .get_or_load(tenant_id, || store.theme(tenant_id))
            .await
    }

    pub fn forget(&self, tenant_id: Uuid) {
        self.0.invalidate(&tenant_id);
    }
}

#[derive(Serialize, ToSchema)]
struct TenantBody<'a> {
    tenant: TenantView<'a>,
    /// The key that asked.
    key: KeyView<'a>,
}

#[derive(Serialize, ToSchema)]
struct TenantView<'a> {
    id: Uuid,
    name: &'a str,
    brand_color: Option<String>,
    accent_color: Option<String>,
    logo_url: Option<String>,
    /// Sign-in providers consumers may use; empty accepts all configured ones.
    signin_providers: Vec<String>,
    require_check_code: bool,
}

#[derive(Serialize, ToSchema)]
struct KeyView<'a> {
    id: Uuid,
    scopes: &'a [String],
}

/// The merchant the key belongs to, and the key's scopes.
#[utoipa::path(get, path = "/api/v1/tenant", operation_id = "getTenant", tag = "tenant",
    responses((status = 200, description = "The merchant and the key", body = TenantBody)),
    security(("api_key" = [])))]
pub async fn show(auth: ApiAuth, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let theme = state.tenants.get(&state.store, auth.tenant_id).await?;
    let require_check_code = theme.as_ref().is_some_and(|t| t.require_check_code);
    Ok(HttpResponse::Ok().json(TenantBody {
        tenant: TenantView {
            id: auth.tenant_id,
            name: auth.tenant_name(),
            brand_color: theme.as_ref().map(|t| t.brand_color.clone()),
            accent_color: theme.as_ref().map(|t| t.accent_color.clone()),
            logo_url: theme
                .as_ref()
                .and_then(|t| t.logo_image_id)
                .map(super::images::image_url),
            signin_providers: theme.map(|t| t.signin_providers).unwrap_or_default(),
            require_check_code,
        },
        key: KeyView {
            id: auth.key_id,
            scopes: auth.scopes(),
        },
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    brand_color: Option<String>,
    accent_color: Option<String>,
    /// Provider names from the sign-in configuration; empty accepts all of them.
    signin_providers: Option<Vec<String>>,
    /// Redemptions without the coupon screen's check code are refused (422).
    require_check_code: Option<bool>,
}

/// Change the merchant's theme colours, sign-in providers and check-code rule.
#[utoipa::path(patch, path = "/api/v1/tenant", operation_id = "updateTenant", tag = "tenant",
    request_body = TenantPatch,
    responses(
        (status = 200, description = "The changed merchant", body = TenantBody),
        (status = 422, description = "`invalid_color`: not a #rrggbb colour; `unreadable_color`: \
            too little contrast; `unknown_provider`: a sign-in provider that is not configured", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn update(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: ApiJson<TenantPatch>,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let patch = body.into_inner();
    let color = |field: &'static str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| {
                BrandColor::parse(field, v)
                    .map_err(|e| AppError::invalid(e.code(), e.to_string()).field(field))
            })
            .transpose()
    };
    let brand = color("brand_color", &patch.brand_color)?;
    let accent = color("accent_color", &patch.accent_color)?;
    if let Some(providers) = &patch.signin_providers {
        let known: Vec<&str> = state
            .signin
            .list()
            .iter()
            .map(|p| p.name.as_str())
            .collect();
        if let Some(unknown) = providers.iter().find(|p| !known.contains(&p.as_str())) {
            return Err(AppError::invalid(
                "unknown_provider",
                format!(
                    "signin_providers: {unknown:?} is not configured (configured: {})",
                    known.join(", ")
                ),
            )
            .field("signin_providers"));
        }
    }
    state
        .store
        .update_tenant_settings(
            auth.tenant_id,
            brand.as_ref().map(BrandColor::as_str),
            accent.as_ref().map(BrandColor::as_str),
            patch.signin_providers.as_deref(),
            patch.require_check_code,
        )
        .await?;
    state.tenants.forget(auth.tenant_id);
    show(auth, state).await
}
