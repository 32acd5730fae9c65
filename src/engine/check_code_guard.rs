//! Bounds guessing of a coupon's check code. A guess has about a 2-in-a-million chance
//! (the current and the previous 6-digit code are accepted), so unlimited guesses with an
//! API key or a staff session would find one: each coupon gets 10 attempts with a check
//! code, then one more a minute. Per node (governor, in memory), so N nodes allow N times
//! that; still millions of minutes for an even chance.

use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

const BURST: u32 = 10;
const REFILL_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct CheckCodeGuard(DefaultKeyedRateLimiter<u64>);

impl Default for CheckCodeGuard {
    fn default() -> Self {
        let burst = NonZeroU32::new(BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(REFILL_EVERY)
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(burst);
        CheckCodeGuard(RateLimiter::keyed(quota))
    }
}

impl CheckCodeGuard {
    /// Counts one attempt with a check code on this coupon; false once over the limit.
    /// Keys are hashes, so the map holds no coupon codes.
    pub fn attempt(&self, tenant_id: Uuid, code: &str) -> bool {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (tenant_id, code).hash(&mut hasher);
        self.0.check_key(&hasher.finish()).is_ok()
    }

    /// Forgets coupons not tried lately (called from the lease keeper's loop).
    pub fn prune(&self) {
        self.0.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_attempts_then_wait_per_coupon() {
        let guard = CheckCodeGuard::default();
        let tenant = Uuid::new_v4();
        assert!((0..BURST).all(|_| guard.attempt(tenant, "ABCD-EFGH-JK")));
        assert!(!guard.attempt(tenant, "ABCD-EFGH-JK"));
        assert!(
            guard.attempt(tenant, "OTHER-CODE"),
            "other coupons are not affected"
        );
        assert!(
            guard.attempt(Uuid::new_v4(), "ABCD-EFGH-JK"),
            "nor other tenants'"
        );
    }
}
