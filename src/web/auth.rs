//! API-key authentication: `Authorization: Bearer eck_…`, looked up by SHA-256, from an
//! address on the tenant's IP allow-list (when it has one).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use uuid::Uuid;

use super::client_ip::client_ip;
use super::ttl_cache::TtlCache;
use super::AppState;
use crate::domain::api_key::PresentedKey;
use crate::store::{ApiKeyRecord, Store};
use crate::web::error::{AppError, ErrorCode};

/// An authenticated API caller. Taking it as a handler argument is what makes a route
/// require a key.
#[derive(Debug, Clone)]
pub struct ApiAuth {
    pub key_id: Uuid,
    pub tenant_id: Uuid,
    /// Shared with the key cache: a request copies nothing of it.
    key: Arc<ApiKeyRecord>,
}

impl ApiAuth {
    pub fn tenant_name(&self) -> &str {
        &self.key.tenant_name
    }

    pub fn scopes(&self) -> &[String] {
        &self.key.scopes
    }

    pub fn require_scope(&self, scope: &str) -> Result<(), AppError> {
        if self.key.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::Denied("insufficient_scope"),
                format!("this API key lacks the {scope} scope"),
            ))
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<PresentedKey, AppError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        AppError::new(
            ErrorCode::MissingApiKey,
            "send an API key as Authorization: Bearer <key>",
        )
    })?;
    let malformed = || {
        AppError::new(
            ErrorCode::MalformedAuthorization,
            "expected Authorization: Bearer <key>",
        )
    };
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, key) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    PresentedKey::parse(key.trim())
        .map_err(|_| AppError::new(ErrorCode::InvalidApiKey, "unknown or revoked API key"))
}

impl FromRequest for ApiAuth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<ApiAuth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = bearer(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let presented = presented?;
            let state =
                state.ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))?;
            // A database that went silent (a partition) must not hold the request: past the
            // claim path's deadline the answer is a clean 503.
            let deadline = state.settings.engine.batch_timeout;
            let record = tokio::time::timeout(
                deadline,
                state.api_keys.lookup(&state.store, presented.hash()),
            )
            .await
            .map_err(|_| AppError::from(crate::store::StoreError::Timeout(deadline)))??;
            // Unknown and revoked answer alike: the caller learns nothing about other keys.
            let record = match record {
                Some(r) if r.revoked_at.is_none() => r,
                _ => {
                    crate::metrics::auth_failure("api_key");
                    return Err(AppError::new(
                        ErrorCode::InvalidApiKey,
                        "unknown or revoked API key",
                    ));
                }
            };
            // A stolen key is of no use from outside the merchant's own networks.
            let ip = client_ip(&req, &state.settings);
            if !record.ip_allowlist.allows(ip) {
                crate::metrics::auth_failure("ip_not_allowed");
                return Err(AppError::new(
                    ErrorCode::Denied("ip_not_allowed"),
                    format!("requests from {ip} are not on this merchant's IP allow-list"),
                ));
            }
            Ok(ApiAuth {
                key_id: record.key_id,
                tenant_id: record.tenant_id,
                key: record,
            })
        })
    }
}

/// API keys as looked up in the last second. A flash sale over the API sends thousands of
/// requests a second with one key; without this each would cost a query (and the
/// `last_used_at` write) before reaching the engine. The price: a revoked key keeps
/// working for up to [`ApiKeyCache::FRESH`] on a node that used it just before.
pub struct ApiKeyCache(TtlCache<Vec<u8>, Option<Arc<ApiKeyRecord>>>);

impl Default for ApiKeyCache {
    fn default() -> Self {
        // The bound keeps a flood of made-up keys from growing memory.
        ApiKeyCache(TtlCache::new(ApiKeyCache::FRESH, 10_000))
    }
}

impl ApiKeyCache {
    pub const FRESH: std::time::Duration = std::time::Duration::from_secs(1);

    async fn lookup(
        &self,
        store: &Store,
        hash: Vec<u8>,
    ) -> Result<Option<Arc<ApiKeyRecord>>, AppError> {
        let load = || async {
            let record = store.find_api_key(&hash).await?;
            if let Some(r) = record.as_ref().filter(|r| r.revoked_at.is_none()) {
                // At most once a second per key here, and the store only writes once a minute.
                if let Err(e) = store.touch_api_key(r.key_id).await {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            }
            Ok::<_, AppError>(record.map(Arc::new))
        };
        self.0.get_or_load(hash.clone(), load).await
    }
}
