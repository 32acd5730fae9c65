//! Rate limits (governor): per IP address and per device, on every URL anyone may call
//! without an API key (pages, sign-in, images, themes, status); the API, health checks and
//! metrics are left out (API keys are the API's limit, and a merchant's till may claim fast).
//! Over the limit gets 429 with Retry-After (an HTML page for browsers, via
//! `uniform_errors`). Keys are pruned every minute, so the maps stay bounded by recent
//! visitors.
//!
//! An IPv6 client is keyed by its /64: one subscriber usually gets a whole /64, so keying by
//! the full address would hand an attacker 2^64 buckets.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{ConsoleSettings, PageSettings};
use crate::web::client_ip::client_ip;
use crate::web::error::{AppError, ErrorCode};
use crate::web::AppState;

#[derive(Clone)]
pub struct RateLimits {
    by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_device: Arc<DefaultKeyedRateLimiter<u64>>,
    /// Console sign-in attempts (password and TOTP) per IP address.
    sign_in_by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Consumer sign-ins started (`/auth/{provider}/start`, each a stored row) per IP.
    signin_starts_by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
    // Bursts: a page load fetches a few things at once, and a crowd taps together.
    let burst = NonZeroU32::new(per_second.saturating_mul(10)).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

impl RateLimits {
    pub fn new(settings: &PageSettings, console: &ConsoleSettings) -> RateLimits {
        let per_minute =
            NonZeroU32::new(console.sign_ins_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let starts =
            NonZeroU32::new(settings.signin_starts_per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let limits = RateLimits {
            by_ip: Arc::new(RateLimiter::keyed(quota(settings.per_ip_per_second))),
            by_device: Arc::new(RateLimiter::keyed(quota(settings.per_device_per_second))),
            sign_in_by_ip: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
            signin_starts_by_ip: Arc::new(RateLimiter::keyed(Quota::per_minute(starts))),
        };
        let prune = limits.clone();
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                prune.by_ip.retain_recent();
                prune.by_device.retain_recent();
                prune.sign_in_by_ip.retain_recent();
                prune.signin_starts_by_ip.retain_recent();
            }
        });
        limits
    }
}

impl RateLimits {
    /// One console sign-in attempt from `ip`: Err(seconds to wait) when over the limit.
    pub fn sign_in_attempt(&self, ip: IpAddr) -> Result<(), u64> {
        check(&self.sign_in_by_ip, ip, "sign_in")
    }

    /// One consumer sign-in started from `ip`: Err(seconds to wait) when over the limit.
    pub fn signin_start(&self, ip: IpAddr) -> Result<(), u64> {
        check(&self.signin_starts_by_ip, ip, "signin_start")
    }
}

fn check(
    limiter: &DefaultKeyedRateLimiter<IpAddr>,
    ip: IpAddr,
    kind: &'static str,
) -> Result<(), u64> {
    limiter.check_key(&rate_key(ip)).map_err(|not_until| {
        crate::metrics::rate_limited(kind);
        not_until
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1)
    })
}

/// The bucket an address counts against: IPv4 as it is, IPv6 by its /64.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
        v4 => v4,
    }
}

/// Left to their own limits: the API (API keys, and tills that claim fast), health checks
/// and metrics (load balancers and Prometheus poll them), and the static assets (compiled
/// in, cheap, and a page needs them all at once).
fn exempt(path: &str) -> bool {
    path.starts_with("/api/")
        || path.starts_with("/assets/")
        || matches!(path, "/livez" | "/readyz" | "/metrics")
}

fn device_key(req: &ServiceRequest, state: &AppState) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let cookie = req.cookie(state.sessions.name())?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cookie.value().hash(&mut hasher);
    Some(hasher.finish())
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if exempt(req.path()) {
        return next.call(req).await;
    }
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let limits = &state.limits;
        let clock = DefaultClock::default();
        let ip = rate_key(client_ip(req.request(), &state.settings));
        let ip_check = Some(limits.by_ip.check_key(&ip));
        let device_check = device_key(&req, state).map(|k| limits.by_device.check_key(&k));
        for (kind, check) in [("ip", ip_check), ("device", device_check)] {
            if let Some(Err(not_until)) = check {
                let wait = not_until.wait_time_from(clock.now());
                crate::metrics::rate_limited(kind);
                let error =
                    AppError::new(ErrorCode::RateLimited, "too many requests; wait a moment")
                        .with_retry_after(wait.as_secs().max(1));
                return Err(error.into());
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_by_the_address() {
        let key = |s: &str| rate_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(
            key("2001:db8:1:2::9"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("203.0.113.1"), key("203.0.113.2"));
        assert_eq!(key("::ffff:203.0.113.1"), key("203.0.113.1"));
    }

    #[test]
    fn the_api_health_and_metrics_are_exempt_and_pages_are_not() {
        for path in [
            "/api/v1/campaigns",
            "/livez",
            "/readyz",
            "/metrics",
            "/assets/app.css",
        ] {
            assert!(exempt(path), "{path}");
        }
        for path in [
            "/",
            "/c/x",
            "/my",
            "/auth/google/start",
            "/i/x",
            "/status",
            "/merchant/login",
            "/apix",
        ] {
            assert!(!exempt(path), "{path}");
        }
    }
}
