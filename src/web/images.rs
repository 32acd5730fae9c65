//! Merchant uploads: `PUT /api/v1/campaigns/{id}/image`, `PUT /api/v1/tenant/logo` (the raw
//! image as the body), served back at `/i/{id}`.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::image::{ImageKind, MAX_IMAGE_BYTES};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// Body limit for uploads: the image limit plus a little, so "too large" is our own answer.
pub fn upload_limit() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_IMAGE_BYTES + 1024)
}

pub fn image_url(id: Uuid) -> String {
    format!("/i/{id}")
}

async fn store_image(state: &AppState, auth: &ApiAuth, body: &[u8]) -> AppResult<Uuid> {
    let kind = ImageKind::sniff(body).map_err(|e| AppError::invalid(e.code(), e.to_string()))?;
    Ok(state
        .store
        .insert_image(auth.tenant_id, kind.content_type(), body)
        .await?)
}

/// Set a campaign's image (the raw PNG, JPEG or WebP as the body).
#[utoipa::path(put, path = "/api/v1/campaigns/{id}/image", operation_id = "putCampaignImage", tag = "campaigns",
    params(("id" = Uuid, Path, description = "The campaign")),
    request_body(content = Vec<u8>, content_type = "image/png", description = "A PNG, JPEG or WebP image"),
    responses(
        (status = 200, description = "Stored", body = CampaignImage),
        (status = 404, description = "`not_found`: no such campaign", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is too large", body = ErrorBody),
        (status = 422, description = "`invalid_image`: not a PNG, JPEG or WebP; `image_too_large`: over the size limit", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn put_campaign_image(
    auth: ApiAuth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    if state.store.campaign(auth.tenant_id, *id).await?.is_none() {
        return Err(AppError::not_found("campaign"));
    }
    let image = store_image(&state, &auth, &body).await?;
    state
        .store
        .set_campaign_image(auth.tenant_id, *id, image)
        .await?;
    Ok(HttpResponse::Ok().json(CampaignImage {
        image_url: image_url(image),
    }))
}

/// Set the merchant's logo (the raw PNG, JPEG or WebP as the body).
#[utoipa::path(put, path = "/api/v1/tenant/logo", operation_id = "putTenantLogo", tag = "tenant",
    request_body(content = Vec<u8>, content_type = "image/png", description = "A PNG, JPEG or WebP image"),
    responses(
        (status = 200, description = "Stored", body = TenantLogo),
        (status = 413, description = "`payload_too_large`: the body is too large", body = ErrorBody),
        (status = 422, description = "`invalid_image`: not a PNG, JPEG or WebP; `image_too_large`: over the size limit", body = ErrorBody),
    ),
    security(("api_key" = ["campaigns:write"])))]
pub async fn put_logo(
    auth: ApiAuth,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    auth.require_scope("campaigns:write")?;
    let image = store_image(&state, &auth, &body).await?;
    state.store.set_tenant_logo(auth.tenant_id, image).await?;
    Ok(HttpResponse::Ok().json(TenantLogo {
        logo_url: image_url(image),
    }))
}

#[derive(serde::Serialize, ToSchema)]
struct CampaignImage {
    image_url: String,
}

#[derive(serde::Serialize, ToSchema)]
struct TenantLogo {
    logo_url: String,
}

/// `GET /i/{id}`: an image never changes under its id, so it caches for a year. The type
/// is the sniffed one, and `nosniff` (set on every response) keeps browsers to it.
pub async fn serve(state: web::Data<AppState>, id: web::Path<Uuid>) -> AppResult<HttpResponse> {
    let (content_type, bytes) = state
        .store
        .image(*id)
        .await?
        .ok_or_else(|| AppError::not_found("image"))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(bytes))
}
