//! API-key authentication: `Authorization: Bearer eck_…`, looked up by SHA-256, from an
//! address on the tenant's IP allow-list (when it has one).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use super::client_ip::client_ip;
use super::ttl_cache::TtlCache;
use super::AppState;
use crate::config::ApiSettings;
use crate::domain::api_key::PresentedKey;
use crate::store::{ApiKeyRecord, Store};
use crate::web::error::{AppError, AppResult, ErrorCode};

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
            let state =
                state.ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing")))?;
            let ip = client_ip(&req, &state.settings);
            let presented = match presented {
                Ok(p) => p,
                Err(e) => {
                    // A malformed key costs nothing to refuse, but is still a failed try.
                    if e.code == ErrorCode::InvalidApiKey {
                        if let KeyLookup::Throttled(wait) = state.api_keys.failed(ip) {
                            return Err(too_many_failures(wait));
                        }
                    }
                    return Err(e);
                }
            };
            // Unknown and revoked answer alike: the caller learns nothing about other keys.
            // A database that went silent (a partition) must not hold the request: past the
            // claim path's deadline the answer is a clean 503.
            let deadline = state.settings.engine.batch_timeout;
            let lookup = state.api_keys.lookup(&state.store, presented.hash(), ip);
            let record = match tokio::time::timeout(deadline, lookup)
                .await
                .map_err(|_| AppError::from(crate::store::StoreError::Timeout(deadline)))??
            {
                KeyLookup::Found(r) => r,
                KeyLookup::Refused => {
                    crate::metrics::auth_failure("api_key");
                    return Err(AppError::new(
                        ErrorCode::InvalidApiKey,
                        "unknown or revoked API key",
                    ));
                }
                KeyLookup::Throttled(wait) => {
                    crate::metrics::auth_failure("api_key");
                    return Err(too_many_failures(wait));
                }
            };
            // A stolen key is of no use from outside the merchant's own networks.
            if !record.ip_allowlist.allows(ip) {
                crate::metrics::auth_failure("ip_not_allowed");
                return Err(AppError::new(
                    ErrorCode::Denied("ip_not_allowed"),
                    format!("requests from {ip} are not on this merchant's IP allow-list"),
                ));
            }
            // Per key, after the key is known to be good: made-up keys cannot use up a
            // real key's budget.
            let limit = state.api_keys.per_key_burst;
            match state.api_keys.per_key.check_key(&record.key_id) {
                Ok(snapshot) => {
                    req.extensions_mut().insert(RateLimitState {
                        limit,
                        remaining: snapshot.remaining_burst_capacity(),
                    });
                }
                Err(not_until) => {
                    crate::metrics::rate_limited("api_key");
                    let wait = not_until
                        .wait_time_from(DefaultClock::default().now())
                        .as_secs()
                        .max(1);
                    let mut error = AppError::new(
                        ErrorCode::RateLimited,
                        "this API key is over its request rate; retry after Retry-After seconds",
                    )
                    .with_retry_after(wait);
                    error.rate_limit = Some(Box::new((limit, 0, wait)));
                    return Err(error);
                }
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
///
/// Keys the database knows and keys it does not are kept apart, so a flood of made-up
/// keys can neither evict the good ones nor cost a query each: an unknown key is
/// remembered as unknown for [`ApiKeyCache::UNKNOWN_FOR`] (its 190 random bits cannot
/// name a key created meanwhile), an address whose failures pass
/// `api.auth_failures_per_ip_per_minute` gets 429 for keys this node does not know, and
/// look-ups of such keys from all addresses together are capped at
/// `api.unknown_key_lookups_per_second`.
pub struct ApiKeyCache {
    /// Requests per key (`api.requests_per_key_per_second`, bursts of twice that).
    per_key: KeyLimiter,
    per_key_burst: u32,
    known: TtlCache<Vec<u8>, Option<Arc<ApiKeyRecord>>>,
    unknown: TtlCache<Vec<u8>, ()>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses over their failure budget, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    lookups: DefaultDirectRateLimiter,
}

/// What a presented key turned out to be.
pub enum KeyLookup {
    Found(Arc<ApiKeyRecord>),
    /// Unknown or revoked.
    Refused,
    /// Not looked up: too many failures from this address (or unknown keys from all of
    /// them); retry after this many seconds.
    Throttled(u64),
}

const MAX_ENTRIES: usize = 10_000;

type KeyLimiter =
    RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock, StateInformationMiddleware>;

/// A key's rate-limit state after this request, for the `RateLimit-*` headers.
#[derive(Clone, Copy)]
struct RateLimitState {
    limit: u32,
    remaining: u32,
}

/// Adds `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft
/// names) to answers of requests made with an API key.
pub async fn rate_limit_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let state = res.request().extensions().get::<RateLimitState>().copied();
    if let Some(s) = state {
        let headers = res.headers_mut();
        if !headers.contains_key("ratelimit-limit") {
            for (name, value) in [
                ("ratelimit-limit", s.limit),
                ("ratelimit-remaining", s.remaining),
                ("ratelimit-reset", 1),
            ] {
                headers.insert(
                    header::HeaderName::from_static(name),
                    header::HeaderValue::from(value),
                );
            }
        }
    }
    Ok(res)
}

impl ApiKeyCache {
    pub const FRESH: Duration = Duration::from_secs(1);
    pub const UNKNOWN_FOR: Duration = Duration::from_secs(300);

    pub fn new(settings: &ApiSettings) -> ApiKeyCache {
        let per_minute =
            NonZeroU32::new(settings.auth_failures_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let per_second =
            NonZeroU32::new(settings.unknown_key_lookups_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_second.get().saturating_mul(2)).unwrap_or(per_second);
        let per_key =
            NonZeroU32::new(settings.requests_per_key_per_second).unwrap_or(NonZeroU32::MIN);
        let per_key_burst = NonZeroU32::new(per_key.get().saturating_mul(2)).unwrap_or(per_key);
        ApiKeyCache {
            per_key: RateLimiter::keyed(Quota::per_second(per_key).allow_burst(per_key_burst))
                .with_middleware::<StateInformationMiddleware>(),
            per_key_burst: per_key_burst.get(),
            known: TtlCache::new(Self::FRESH, MAX_ENTRIES),
            unknown: TtlCache::new(Self::UNKNOWN_FOR, MAX_ENTRIES),
            failures: RateLimiter::keyed(Quota::per_minute(per_minute)),
            blocked: Mutex::default(),
            lookups: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
        }
    }

    async fn lookup(&self, store: &Store, hash: Vec<u8>, ip: IpAddr) -> AppResult<KeyLookup> {
        let load = |hash: Vec<u8>| async move {
            let record = store.find_api_key(&hash).await?;
            if let Some(r) = record.as_ref().filter(|r| r.revoked_at.is_none()) {
                // At most once a second per key here, and the store only writes once a minute.
                if let Err(e) = store.touch_api_key(r.key_id).await {
                    tracing::warn!(error = %e, "could not record API key use");
                }
            }
            Ok::<_, AppError>(record.map(Arc::new))
        };
        // A key this node has seen: believed for a second, then refreshed.
        if self.known.contains(&hash) {
            let record = self
                .known
                .get_or_load(hash.clone(), || {
                    crate::metrics::api_key_lookup("known");
                    load(hash)
                })
                .await?;
            return Ok(match record {
                Some(r) if r.revoked_at.is_none() => KeyLookup::Found(r),
                _ => self.failed(ip),
            });
        }
        if let Some(wait) = self.blocked_for(ip) {
            crate::metrics::rate_limited("auth_failures");
            return Ok(KeyLookup::Throttled(wait));
        }
        if self.unknown.get_fresh(&hash).is_some() {
            return Ok(self.failed(ip));
        }
        if let Err(not_until) = self.lookups.check() {
            crate::metrics::rate_limited("unknown_keys");
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Ok(KeyLookup::Throttled(wait.as_secs().max(1)));
        }
        crate::metrics::api_key_lookup("unknown");
        match load(hash.clone()).await? {
            Some(record) => {
                self.known.insert(hash, Some(record.clone()));
                Ok(match record.revoked_at {
                    None => KeyLookup::Found(record),
                    Some(_) => self.failed(ip),
                })
            }
            None => {
                self.unknown.insert(hash, ());
                Ok(self.failed(ip))
            }
        }
    }

    /// Counts a failed authentication from `ip`: refused, or throttled once over budget.
    pub fn failed(&self, ip: IpAddr) -> KeyLookup {
        match self.failures.check_key(&ip) {
            Ok(()) => KeyLookup::Refused,
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
                if blocked.len() >= MAX_ENTRIES {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                    self.failures.retain_recent();
                }
                // Still full: the global cap on unknown look-ups is what bounds the cost.
                if blocked.len() < MAX_ENTRIES {
                    blocked.insert(ip, Instant::now() + wait);
                }
                crate::metrics::rate_limited("auth_failures");
                KeyLookup::Throttled(wait.as_secs().max(1))
            }
        }
    }

    fn blocked_for(&self, ip: IpAddr) -> Option<u64> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(&ip)?;
        match until.checked_duration_since(Instant::now()) {
            Some(left) => Some(left.as_secs().max(1)),
            None => {
                blocked.remove(&ip);
                None
            }
        }
    }
}

pub fn too_many_failures(retry_after: u64) -> AppError {
    AppError::new(
        ErrorCode::Limited("too_many_auth_failures"),
        "too many failed API key authentications from this address; retry later",
    )
    .with_retry_after(retry_after)
}
