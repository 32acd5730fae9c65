//! Consumer rate limits (governor): per IP address and per device. Over the limit gets
//! 429 with Retry-After (an HTML page for browsers, via `uniform_errors`). Keys are pruned
//! every minute, so the maps stay bounded by recent visitors.

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
use crate::web::session::COOKIE;
use crate::web::AppState;

#[derive(Clone)]
pub struct RateLimits {
    by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_device: Arc<DefaultKeyedRateLimiter<u64>>,
    /// Console sign-in attempts (password and TOTP) per IP address.
    sign_in_by_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
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
        let limits = RateLimits {
            by_ip: Arc::new(RateLimiter::keyed(quota(settings.per_ip_per_second))),
            by_device: Arc::new(RateLimiter::keyed(quota(settings.per_device_per_second))),
            sign_in_by_ip: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
        };
        let prune = limits.clone();
        actix_web::rt::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                prune.by_ip.retain_recent();
                prune.by_device.retain_recent();
                prune.sign_in_by_ip.retain_recent();
            }
        });
        limits
    }
}

impl RateLimits {
    /// One console sign-in attempt from `ip`: Err(seconds to wait) when over the limit.
    pub fn sign_in_attempt(&self, ip: IpAddr) -> Result<(), u64> {
        self.sign_in_by_ip.check_key(&ip).map_err(|not_until| {
            crate::metrics::rate_limited("sign_in");
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

fn device_key(req: &ServiceRequest) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let cookie = req.cookie(COOKIE)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cookie.value().hash(&mut hasher);
    Some(hasher.finish())
}

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let limits = &state.limits;
        let clock = DefaultClock::default();
        let ip = client_ip(req.request(), &state.settings);
        let ip_check = Some(limits.by_ip.check_key(&ip));
        let device_check = device_key(&req).map(|k| limits.by_device.check_key(&k));
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
