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
/// Shared with a published view without copying; the actor copies on write only while a
/// view it withdrew is still being read.
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
            && !self
                .consumers
                .get(consumer)
                .is_some_and(|used| used.len() >= self.rules.per_consumer_limit() as usize)
    }
}
