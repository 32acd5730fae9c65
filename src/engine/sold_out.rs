//! Sold-out answers without the actor. Once a campaign's actor finds no stock left
//! anywhere, it publishes what it would answer from memory (the campaign's window and the
//! per-consumer claim numbers it knows, frozen: nothing changes them while nothing can be
//! issued) in the [`super::directory`]. The HTTP worker then answers `sold_out` itself,
//! with no round trip to the actor's thread: the crowd after the last coupon is the
//! largest a flash sale sees.
//!
//! The view answers exactly what the actor would, or declines and lets the actor answer:
//! a claim with an idempotency key (a retry must get its first answer), another tenant,
//! a window that now refuses, and a consumer the actor knows to be at their limit (the
//! actor says `consumer_limit_reached` first). It is believed until the actor's own
//! re-check is due (stock can come back from another node), and withdrawn as soon as
//! the actor's stock or campaign changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::campaign::{CampaignRules, CampaignStatus};

/// A consumer's claim numbers: inline up to two (no allocation of its own).
pub(crate) type Seqs = smallvec::SmallVec<[i32; 2]>;

/// The claim numbers each consumer holds or has in flight, as an actor knows them.
/// Shared with a published view without copying; the actor copies it on write only while
/// a view still holds it (rare: nothing changes the map while the campaign is sold out,
/// and the view is withdrawn before the claim that re-checks the stock).
pub(crate) type ConsumerSeqs = Arc<HashMap<Box<str>, Seqs>>;

#[derive(Debug)]
pub(crate) struct SoldOutView {
    pub tenant_id: Uuid,
    pub status: CampaignStatus,
    pub rules: CampaignRules,
    pub consumers: ConsumerSeqs,
    /// When the actor asks the database again; after this the actor answers.
    pub until: Instant,
}

impl SoldOutView {
    /// True when the actor would answer this claim `sold_out`.
    pub fn refuses(
        &self,
        tenant_id: Uuid,
        consumer: &str,
        now: DateTime<Utc>,
        at: Instant,
    ) -> bool {
        at < self.until
            && tenant_id == self.tenant_id
            && self.rules.check_claim_window(self.status, now).is_ok()
            && self
                .consumers
                .get(consumer)
                .is_none_or(|used| used.len() < self.rules.per_consumer_limit() as usize)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::campaign::RulesParams;

    fn view(per_consumer_limit: i64, status: CampaignStatus, until: Instant) -> SoldOutView {
        let t = |s| DateTime::from_timestamp(s, 0).unwrap();
        let rules = CampaignRules::parse(
            RulesParams {
                total_limit: 10,
                per_consumer_limit,
                claim_starts_at: Some(t(500)),
                claim_ends_at: Some(t(2000)),
                use_starts_at: None,
                use_ends_at: None,
                valid_for_seconds: None,
                uses_per_coupon: 1,
                win_probability: None,
            },
            t(0),
        )
        .unwrap();
        let consumers: HashMap<Box<str>, Seqs> = [
            ("full".into(), Seqs::from_slice(&[1, 2])),
            ("half".into(), Seqs::from_slice(&[1])),
        ]
        .into_iter()
        .collect();
        SoldOutView {
            tenant_id: Uuid::nil(),
            status,
            rules,
            consumers: Arc::new(consumers),
            until,
        }
    }

    #[test]
    fn the_view_refuses_only_what_the_actor_would_answer_sold_out() {
        let at = Instant::now();
        let open = DateTime::from_timestamp(1000, 0).unwrap();
        let v = view(2, CampaignStatus::Active, at + Duration::from_secs(1));
        assert!(v.refuses(Uuid::nil(), "new", open, at));
        assert!(v.refuses(Uuid::nil(), "half", open, at), "below the limit");
        assert!(
            !v.refuses(Uuid::nil(), "full", open, at),
            "consumer_limit_reached first"
        );
        assert!(!v.refuses(Uuid::max(), "new", open, at), "another tenant");
        let (early, late) = (
            DateTime::from_timestamp(100, 0).unwrap(),
            DateTime::from_timestamp(3000, 0).unwrap(),
        );
        assert!(
            !v.refuses(Uuid::nil(), "new", early, at),
            "not_started first"
        );
        assert!(!v.refuses(Uuid::nil(), "new", late, at), "ended first");
        assert!(
            !v.refuses(Uuid::nil(), "new", open, at + Duration::from_secs(1)),
            "the actor's re-check is due"
        );
        let paused = view(2, CampaignStatus::Paused, at + Duration::from_secs(1));
        assert!(!paused.refuses(Uuid::nil(), "new", open, at));
    }
}
