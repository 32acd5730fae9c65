//! Merchant uploads: `PUT /api/v1/campaigns/{id}/image`, `PUT /api/v1/tenant/logo` (the raw
//! image as the body), served back at `/i/{id}`.
//!
//! An image never changes under its id, so `/i/{id}` is served with the id as its ETag and
//! cached for a year, and each node keeps the images it served lately in memory (bounded in
//! bytes and entries), so a crowd on one claim page costs one database read, not 2 MiB a
//! visitor. A replaced image is deleted (see `store::images`); nodes forget their copy
//! within [`CACHE_FRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::ApiAuth;
use super::AppState;
use crate::domain::image::{ImageKind, MAX_IMAGE_BYTES};
use crate::web::error::{AppError, AppResult};
use crate::web::openapi::ErrorBody;

/// How long a node serves an image from memory before asking the database again.
const CACHE_FRESH: Duration = Duration::from_secs(600);
/// The most image bytes a node keeps in memory.
const CACHE_BYTES: usize = 32 * 1024 * 1024;
const CACHE_ENTRIES: usize = 1024;

struct Cached {
    content_type: String,
    bytes: web::Bytes,
}

/// Recently served images, by id.
#[derive(Default)]
pub struct ImageCache {
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    entries: HashMap<Uuid, (Instant, Arc<Cached>)>,
    bytes: usize,
}

impl ImageCache {
    fn get(&self, id: Uuid) -> Option<Arc<Cached>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(&id)
            .filter(|(at, _)| at.elapsed() < CACHE_FRESH)
            .map(|(_, image)| image.clone())
    }

    fn put(&self, id: Uuid, image: Arc<Cached>) {
        let size = image.bytes.len();
        if size > CACHE_BYTES / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = inner.entries.remove(&id) {
            inner.bytes -= old.bytes.len();
        }
        // Oldest out first until the new one fits.
        while inner.bytes + size > CACHE_BYTES || inner.entries.len() >= CACHE_ENTRIES {
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(id, _)| *id)
            else {
                break;
            };
            if let Some((_, old)) = inner.entries.remove(&oldest) {
                inner.bytes -= old.bytes.len();
            }
        }
        inner.bytes += size;
        inner.entries.insert(id, (Instant::now(), image));
    }

    fn forget(&self, id: Uuid) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = inner.entries.remove(&id) {
            inner.bytes -= old.bytes.len();
        }
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.lock().unwrap().bytes
    }
}

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
    if let Some(old) = state
        .store
        .set_campaign_image(auth.tenant_id, *id, image)
        .await?
    {
        state.images.forget(old);
    }
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
    if let Some(old) = state.store.set_tenant_logo(auth.tenant_id, image).await? {
        state.images.forget(old);
    }
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

/// `GET /i/{id}`: an image never changes under its id, so it caches for a year, and a
/// browser that has it (`If-None-Match`) gets 304 without a database read. The type is the
/// sniffed one, and `nosniff` (set on every response) keeps browsers to it.
pub async fn serve(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> AppResult<HttpResponse> {
    let id = *id;
    let etag = format!("\"{}\"", id.simple());
    let cache_control = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let revalidating = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let image = match state.images.get(id) {
        Some(image) => image,
        None => {
            let (content_type, bytes) = state
                .store
                .image(id)
                .await?
                .ok_or_else(|| AppError::not_found("image"))?;
            let image = Arc::new(Cached {
                content_type,
                bytes: bytes.into(),
            });
            state.images.put(id, image.clone());
            image
        }
    };
    // Only an image that exists is "not modified": a deleted one is 404 like any other.
    if revalidating {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header(cache_control)
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type(image.content_type.as_str())
        .insert_header((header::ETAG, etag))
        .insert_header(cache_control)
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(image.bytes.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(size: usize) -> Arc<Cached> {
        Arc::new(Cached {
            content_type: "image/png".into(),
            bytes: vec![0u8; size].into(),
        })
    }

    #[test]
    fn the_cache_stays_within_its_bytes_and_drops_the_oldest_first() {
        let cache = ImageCache::default();
        let ids: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            cache.put(*id, image(CACHE_BYTES / 5));
            assert!(cache.bytes() <= CACHE_BYTES);
        }
        assert!(cache.get(ids[0]).is_none(), "oldest evicted");
        assert!(cache.get(ids[9]).is_some(), "newest kept");
        // Too big to be worth keeping.
        let big = Uuid::new_v4();
        cache.put(big, image(CACHE_BYTES / 2));
        assert!(cache.get(big).is_none());
        cache.forget(ids[9]);
        assert!(cache.get(ids[9]).is_none());
        for _ in 0..(CACHE_ENTRIES + 10) {
            cache.put(Uuid::new_v4(), image(1));
        }
        assert!(cache.inner.lock().unwrap().entries.len() <= CACHE_ENTRIES);
    }
}
