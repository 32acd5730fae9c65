//! The claim engine. The claim path, start to end:
//!
//! 1. [`Engine::claim`] finds the campaign's actor through the [`directory`], starting it
//!    (and loading its state from Postgres) on first use.
//! 2. [`actor::CampaignActor`] checks status, window and per-consumer limit from memory,
//!    draws the lottery, takes one unit of its leased stock and queues the claim.
//! 3. The queue is flushed when full or after `batch_linger`, through the node's
//!    [`committer`], which writes the batches of every campaign waiting at that moment as
//!    one multi-row insert ([`crate::store::Store::insert_claim_batches`]); the caller gets
//!    its answer after COMMIT.
//! 4. Stock comes from the campaign row in leases ([`crate::store::Lease`]), sized by
//!    [`lease_policy`]; [`node`] heart-beats the node (one row, however many leases) and
//!    reaps the leases of dead nodes.
//! 5. Every flush is published on the [`events`] bus and, coalesced, to other nodes.

pub mod actor;
mod check_code_guard;
pub mod clock;
mod committer;
mod directory;
pub mod events;
pub mod lease_policy;
mod node;
pub mod reads;
mod sold_out;

pub use directory::host_actors_on_this_thread;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::EngineSettings;
use crate::domain::campaign::ClaimRejection;
use crate::domain::consumer::ConsumerRef;
use crate::domain::coupon_code::CouponCode;
use crate::domain::redemption::{RedeemRefusal, RedeemRejection};
use crate::domain::verification::CheckCodeRejection;
use crate::store::{
    CampaignRecord, CampaignStats, ClaimKey, RedeemInput, RedeemOutcome, RedemptionRecord, Store,
    StoreError, UndoOutcome,
};
use actor::{Adjust, Claim, Shutdown};
use clock::Clock;
use directory::Directory;
use events::{EngineEvent, EventBus, Notifier};

/// A coupon just issued.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuedCoupon {
    pub id: Uuid,
    pub code: String,
    pub claimed_at: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClaimError {
    #[error("{0}")]
    Rejected(ClaimRejection),
    #[error("no such campaign")]
    NotFound,
    /// Queues are full: come back shortly. Nothing was written.
    #[error("the campaign is busy; retry shortly")]
    Busy,
    /// The batch could not be saved. Nothing was acknowledged; the stock went back.
    #[error("the claim could not be saved; retry")]
    Failed,
    /// The claim was sent to the database and its answer was lost (the connection broke
    /// before the COMMIT's reply came, or the actor died mid-batch): it may have been saved.
    /// Its stock is accounted for by counting coupons when the lease is released. Carries
    /// the coupon id the claim was sent under (None if the actor died holding it), so an
    /// idempotent retry can look it up.
    #[error("the claim may or may not have been saved; retry with the same Idempotency-Key")]
    OutcomeUnknown(Option<Uuid>),
    /// The claim's idempotency key was already used (by an earlier request with it, or
    /// another request's): nothing was written; the key's first answer is this one's.
    #[error("this Idempotency-Key was already used")]
    KeyTaken,
    /// A claim with the same idempotency key is still in flight on this node.
    #[error("a request with this Idempotency-Key is still in progress")]
    KeyInUse,
}

#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    #[error("{0}")]
    Rejected(RedeemRejection),
    /// The check code was required and missing, or did not match. Nothing was used.
    #[error("{0}")]
    CheckCode(CheckCodeRejection),
    #[error("no coupon has that code")]
    UnknownCode,
    /// The consumer's confirm form was already sent once (a double submit).
    #[error("this confirmation was already sent")]
    TokenUsed,
    /// The consumer's confirm form is too old, or not this coupon's.
    #[error("this confirmation has expired; open it again")]
    TokenInvalid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RedeemError {
    /// A stable label (the API's error code where there is one).
    pub fn code(&self) -> &'static str {
        match self {
            RedeemError::Rejected(r) => r.code(),
            RedeemError::CheckCode(r) => r.code(),
            RedeemError::UnknownCode => "unknown_code",
            RedeemError::TokenUsed => "use_token_used",
            RedeemError::TokenInvalid => "use_token_invalid",
            RedeemError::Store(_) => "error",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("no such redemption")]
    NotFound,
    #[error("this redemption was already undone")]
    AlreadyUndone,
    #[error("the undo window has passed")]
    WindowPassed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What every actor of this node shares.
pub(crate) struct Shared {
    pub store: Store,
    /// Writes claim batches, several campaigns' in one statement.
    pub committer: committer::Committer,
    /// Shared, not copied: every campaign actor holds it.
    pub settings: Arc<EngineSettings>,
    pub node_id: Uuid,
    pub clock: Clock,
    pub events: EventBus,
    pub notifier: Notifier,
    pub directory: Directory,
    /// Attempts with a check code per coupon (against guessing).
    pub check_codes: check_code_guard::CheckCodeGuard,
    /// Campaign rows and counts for readers, kept current by actors and NOTIFY.
    pub reads: reads::Reads,
    /// The node's longest campaign queue, for the queue-near-full alert.
    pub largest_queue: LargestQueue,
    /// Leases no actor holds any more, for the lease keeper to release.
    pub loose_leases: node::LooseLeases,
    /// Background loops (clock sync, NOTIFY, LISTEN, lease keeper), ended on shutdown so
    /// nothing talks to a database that is going away.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The longest queue any campaign actor of this node reported, and whose it is. The holder
/// lowers it when its queue drains; a busier actor raises it on its next flush (every few
/// milliseconds while busy), so the gauge follows the node's worst queue, not the last
/// actor to flush.
#[derive(Default)]
pub(crate) struct LargestQueue(std::sync::Mutex<(Uuid, usize)>);

impl LargestQueue {
    pub fn report(&self, campaign: Uuid, depth: usize) -> usize {
        let mut max = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if depth >= max.1 || max.0 == campaign {
            *max = (campaign, depth);
        }
        max.1
    }
}

#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    /// Starts the engine's background work: clock sync, lease heartbeat and reaper,
    /// NOTIFY sender and LISTEN receiver. Must run inside the actix system.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn start(store: Store, settings: EngineSettings) -> Engine {
        let node_id = Uuid::new_v4();
        let clock = Clock::default();
        if let Err(e) = clock.sync(&store).await {
            tracing::warn!(error = %e, "initial clock sync failed; using the local clock");
        }
        let shared = Arc::new(Shared {
            committer: committer::Committer::start(store.clone(), &settings),
            directory: Directory::new(),
            check_codes: Default::default(),
            reads: Default::default(),
            largest_queue: Default::default(),
            loose_leases: Default::default(),
            notifier: Notifier::new(node_id),
            events: EventBus::default(),
            clock: clock.clone(),
            node_id,
            settings: Arc::new(settings),
            store: store.clone(),
            tasks: Default::default(),
        });
        let mut tasks = vec![
            clock.spawn_sync(store.clone(), Duration::from_secs(10)),
            shared.notifier.spawn(store.clone()),
        ];
        let weak = Arc::downgrade(&shared);
        tasks.push(events::spawn_listener(
            store.clone(),
            node_id,
            move |change| {
                if let Some(shared) = weak.upgrade() {
                    if change.changed {
                        shared.reads.row_stale(change.campaign_id);
                    }
                    let running = if change.changed {
                        shared.directory.running_for_change(change.campaign_id)
                    } else {
                        shared.directory.running(change.campaign_id)
                    };
                    if let Some(addr) = running {
                        addr.do_send(Adjust::from_remote(&change));
                    } else {
                        shared.reads.counts_stale(change.campaign_id);
                    }
                    shared.events.publish(EngineEvent::Remote(change));
                }
            },
        ));
        tasks.push(node::spawn_lease_keeper(Arc::downgrade(&shared)));
        *shared.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        tracing::info!(node = %node_id, "claim engine started");
        Engine { shared }
    }

    pub fn node_id(&self) -> Uuid {
        self.shared.node_id
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.clock
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<EngineEvent>> {
        self.shared.events.subscribe()
    }

    /// Claims one coupon. Answers only once the coupon is committed, or with a reason.
    pub async fn claim(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        consumer: ConsumerRef,
    ) -> Result<IssuedCoupon, ClaimError> {
        self.claim_with_key(tenant_id, campaign_id, consumer, None)
            .await
    }

    /// [`Engine::claim`] under an API request's idempotency key, which is written with the
    /// claim's row in its batch: one transaction, not one more per key. Answers
    /// [`ClaimError::KeyTaken`] (nothing written) if the key was already used, and
    /// [`ClaimError::KeyInUse`] while a claim with the same key is in flight on this node.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id))]
    pub async fn claim_with_key(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        consumer: ConsumerRef,
        key: Option<Arc<ClaimKey>>,
    ) -> Result<IssuedCoupon, ClaimError> {
        let found = self.shared.directory.lookup(campaign_id);
        if let Some((_, Some(view))) = &found {
            let at = std::time::Instant::now();
            if key.is_none()
                && view.refuses(tenant_id, consumer.as_str(), self.shared.clock.now(), at)
            {
                metrics::counter!(crate::metrics::SOLD_OUT_WITHOUT_ACTOR).increment(1);
                return actor::record(Err(ClaimError::Rejected(ClaimRejection::SoldOut)), at);
            }
        }
        // Only a campaign that exists (and is the tenant's) gets an actor: made-up ids are
        // answered from the read cache, which remembers misses for a second.
        if found.is_none()
            && self
                .campaign(tenant_id, campaign_id)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot look up a campaign to claim from");
                    ClaimError::Busy
                })?
                .is_none()
        {
            metrics::counter!(crate::metrics::CLAIMS, "result" => "not_found").increment(1);
            return Err(ClaimError::NotFound);
        }
        let msg = Claim {
            tenant_id,
            consumer: consumer.into_string(),
            key,
        };
        let mut running = found.map(|(addr, _)| addr);
        // A stopped actor (idle, or crashed) is replaced once, transparently.
        for _ in 0..2 {
            let addr = match running.take() {
                Some(addr) => addr,
                None => match self
                    .shared
                    .directory
                    .get_or_start(campaign_id, &self.shared)
                {
                    Some(addr) => addr,
                    None => return Err(ClaimError::Busy),
                },
            };
            // The actor answers at once with where the answer will come: a closed mailbox
            // then means the claim was never looked at (safe to send again), while a
            // dropped answer means the actor died holding it, perhaps mid-batch.
            match addr.send(msg.clone()).await {
                Ok(Ok(answer)) => {
                    return answer
                        .await
                        .unwrap_or(Err(ClaimError::OutcomeUnknown(None)));
                }
                Ok(Err(refused)) => return Err(refused),
                Err(actix::MailboxError::Closed) => {
                    self.shared.directory.forget(campaign_id, &addr)
                }
                Err(actix::MailboxError::Timeout) => return Err(ClaimError::Busy),
            }
        }
        Err(ClaimError::Busy)
    }

    /// Uses a coupon once; exactly once however many requests race. `input` says where,
    /// by whom, and what the check code and the consumer's confirm token must prove.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn redeem(
        &self,
        tenant_id: Uuid,
        code: &CouponCode,
        input: &RedeemInput<'_>,
    ) -> Result<RedemptionRecord, RedeemError> {
        if input.check_code.is_some() && !self.shared.check_codes.attempt(tenant_id, code.as_str())
        {
            let refused = RedeemError::CheckCode(CheckCodeRejection::TooManyAttempts);
            metrics::counter!(crate::metrics::REDEMPTIONS, "result" => refused.code()).increment(1);
            return Err(refused);
        }
        let outcome = self
            .shared
            .store
            .redeem(tenant_id, code.as_str(), input)
            .await?;
        let result = match outcome {
            RedeemOutcome::Redeemed(r) => Ok(r),
            RedeemOutcome::UnknownCode => Err(RedeemError::UnknownCode),
            RedeemOutcome::Refused(RedeemRefusal::Coupon(r)) => Err(RedeemError::Rejected(r)),
            RedeemOutcome::Refused(RedeemRefusal::CheckCode(r)) => Err(RedeemError::CheckCode(r)),
            RedeemOutcome::TokenUsed => Err(RedeemError::TokenUsed),
            RedeemOutcome::TokenInvalid => Err(RedeemError::TokenInvalid),
        };
        let label = match &result {
            Ok(_) => "redeemed",
            Err(e) => e.code(),
        };
        metrics::counter!(crate::metrics::REDEMPTIONS, "result" => label).increment(1);
        if let Ok(r) = &result {
            self.changed_counts(tenant_id, r.campaign_id, 1);
            self.shared
                .notifier
                .redeemed(tenant_id, r.campaign_id, r.id);
            self.shared.events.publish(EngineEvent::Redeemed {
                tenant_id,
                campaign_id: r.campaign_id,
                coupon_id: r.coupon_id,
                redemption_id: r.id,
                redeemed_at: r.redeemed_at,
                uses_left: r.uses_left,
            });
        }
        result
    }

    /// Undoes a redemption within the configured window.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, redemption_id = %redemption_id))]
    pub async fn undo_redemption(
        &self,
        tenant_id: Uuid,
        redemption_id: Uuid,
    ) -> Result<i32, UndoError> {
        let window = self.shared.settings.undo_window.as_secs_f64();
        match self
            .shared
            .store
            .undo_redemption(tenant_id, redemption_id, window)
            .await?
        {
            UndoOutcome::Undone {
                coupon_id,
                campaign_id,
                uses_left,
            } => {
                self.changed_counts(tenant_id, campaign_id, -1);
                self.shared.events.publish(EngineEvent::RedemptionUndone {
                    tenant_id,
                    campaign_id,
                    coupon_id,
                    redemption_id,
                    uses_left,
                });
                Ok(uses_left)
            }
            UndoOutcome::NotFound => Err(UndoError::NotFound),
            UndoOutcome::AlreadyUndone => Err(UndoError::AlreadyUndone),
            UndoOutcome::WindowPassed => Err(UndoError::WindowPassed),
        }
    }

    /// The campaign row changed (status, limit): the local actor takes the new row before
    /// its next claim; other nodes are told to reload.
    pub fn campaign_changed(&self, record: &CampaignRecord) {
        self.shared.reads.row_changed(record);
        if let Some(addr) = self.shared.directory.running_for_change(record.id) {
            addr.do_send(Adjust {
                record: Some(Box::new(record.clone())),
                ..Adjust::reload()
            });
        }
        self.shared
            .notifier
            .add(record.tenant_id, record.id, 0, 0, true);
        self.shared.events.publish(EngineEvent::CampaignChanged {
            tenant_id: record.tenant_id,
            campaign_id: record.id,
            status: record.status,
        });
    }

    fn changed_counts(&self, tenant_id: Uuid, campaign_id: Uuid, redeemed: i64) {
        if let Some(addr) = self.shared.directory.running(campaign_id) {
            addr.do_send(Adjust::counts(0, redeemed));
        } else {
            self.shared.reads.counts_stale(campaign_id);
        }
        self.shared
            .notifier
            .add(tenant_id, campaign_id, 0, redeemed, false);
    }

    /// A campaign of `tenant_id` for readers, from memory while it is unchanged (see
    /// [`reads`]). Writers read the database themselves.
    pub async fn campaign(
        &self,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Arc<CampaignRecord>>, StoreError> {
        self.shared
            .reads
            .campaign(&self.shared.store, tenant_id, id)
            .await
    }

    /// A campaign by its public slug, for the claim page (see [`reads`]).
    pub async fn campaign_by_slug(
        &self,
        slug: &str,
    ) -> Result<Option<Arc<CampaignRecord>>, StoreError> {
        self.shared
            .reads
            .campaign_by_slug(&self.shared.store, slug)
            .await
    }

    /// Issued, redeemed and remaining, from the actor's counters where it runs here.
    pub async fn stats(&self, record: &CampaignRecord) -> Result<CampaignStats, StoreError> {
        self.shared
            .reads
            .stats(&self.shared.store, record.id, record.rules.total_limit())
            .await
    }

    /// Graceful stop: every actor commits what it holds and returns unused stock.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn shutdown(&self) {
        let actors = self.shared.directory.drain();
        let stops = actors.into_iter().map(|addr| async move {
            let _ = tokio::time::timeout(Duration::from_secs(15), addr.send(Shutdown)).await;
        });
        futures_util::future::join_all(stops).await;
        for task in self
            .shared
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        self.shared.notifier.flush(&self.shared.store).await;
        node::leave(&self.shared).await;
        tracing::info!("claim engine stopped; unused stock returned");
    }

    /// Crashes the campaign's actor (tests only: the next claim must start a new one).
    #[cfg(feature = "test-hooks")]
    pub fn crash_actor(&self, campaign_id: Uuid) {
        if let Some(addr) = self.shared.directory.running(campaign_id) {
            addr.do_send(actor::Crash);
        }
    }

    /// Whether the campaign's actor runs on this node (then it publishes its own counters
    /// after every change, remote ones included).
    pub fn runs_locally(&self, campaign_id: Uuid) -> bool {
        self.shared.directory.running(campaign_id).is_some()
    }

    /// Campaign actors running on this node.
    pub fn active_actors(&self) -> usize {
        self.shared.directory.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_gauge_follows_the_longest_queue_not_the_last_report() {
        let q = LargestQueue::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(q.report(a, 500), 500);
        assert_eq!(
            q.report(b, 3),
            500,
            "a shorter queue does not hide the longest"
        );
        assert_eq!(q.report(a, 10), 10, "the holder's queue drained");
        assert_eq!(q.report(b, 40), 40);
    }
}
