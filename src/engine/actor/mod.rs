//! One actor per active campaign on this node: the only place its claims are decided.
//! It holds the live counters, the stock it leased, the claims waiting for a batch and
//! the per-consumer claim counts it has seen. See `claiming.rs` for the claim path and
//! `stock.rs` for leases.

mod claiming;
mod stock;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::events::RemoteChange;
use super::sold_out::{ConsumerSeqs, SoldOutView};
use super::{ClaimError, IssuedCoupon, Shared};
use crate::config::EngineSettings;
use crate::domain::campaign::{CampaignRules, CampaignStatus};
use crate::domain::coupon_code::CodeFormat;
use crate::store::{CampaignRecord, ClaimKey, Store};
/// The claim metrics, also for answers given without an actor (`engine/sold_out.rs`).
pub(crate) use claiming::record;
use claiming::Batcher;
use stock::Stock;

/// Where a claim's answer will come (after COMMIT, or with a reason).
pub type ClaimAnswer = oneshot::Receiver<Result<IssuedCoupon, ClaimError>>;

/// Claim one coupon for `consumer`. Answered at once: refused from memory, or with the
/// channel its answer will come on.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<ClaimAnswer, ClaimError>")]
pub struct Claim {
    pub tenant_id: Uuid,
    pub consumer: String,
    /// An API request's idempotency key: written with the claim's row.
    pub key: Option<Arc<ClaimKey>>,
}

/// Counters changed elsewhere (a redemption, another node), or the campaign row changed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Adjust {
    pub issued: i64,
    pub redeemed: i64,
    pub reload: bool,
    /// From another node's NOTIFY: such deltas can overlap the count the actor started
    /// from (or be lost with a LISTEN connection), so the counts are re-read once quiet.
    pub remote: bool,
    /// The campaign as just written, when the sender has it: applied before any later claim.
    pub record: Option<Box<CampaignRecord>>,
}

impl Adjust {
    pub fn reload() -> Adjust {
        Adjust {
            issued: 0,
            redeemed: 0,
            reload: true,
            remote: false,
            record: None,
        }
    }
    pub fn counts(issued: i64, redeemed: i64) -> Adjust {
        Adjust {
            issued,
            redeemed,
            reload: false,
            remote: false,
            record: None,
        }
    }
    pub fn from_remote(change: &RemoteChange) -> Adjust {
        Adjust {
            reload: change.changed,
            remote: true,
            ..Adjust::counts(change.issued, change.redeemed)
        }
    }
}

/// This node's live leases on the campaign, as the lease keeper found them: the actor
/// releases any it does not hold.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SweepLeases(pub Vec<Uuid>);

impl Handler<SweepLeases> for CampaignActor {
    type Result = ();

    fn handle(&mut self, msg: SweepLeases, ctx: &mut Context<Self>) {
        self.sweep_leases(msg.0, ctx);
    }
}

/// Panics inside the actor: only for tests that prove a crashed actor is replaced.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Crash;

#[cfg(feature = "test-hooks")]
impl Handler<Crash> for CampaignActor {
    type Result = ();

    fn handle(&mut self, _: Crash, _: &mut Context<Self>) {
        panic!("campaign actor crashed on purpose (test hook)");
    }
}

/// Commit what is queued, give back unused stock, stop.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// The campaign as the actor judges claims against it.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub tenant_id: Uuid,
    pub status: CampaignStatus,
    pub rules: CampaignRules,
    pub codes: CodeFormat,
}

impl Loaded {
    fn from_record(r: &CampaignRecord) -> Loaded {
        Loaded {
            tenant_id: r.tenant_id,
            status: r.status,
            rules: r.rules.clone(),
            codes: r.codes.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub issued: i64,
    pub redeemed: i64,
}

pub struct CampaignActor {
    id: Uuid,
    shared: Weak<Shared>,
    settings: Arc<EngineSettings>,
    /// None until loaded, and for a campaign that does not exist.
    campaign: Option<Loaded>,
    counters: Counters,
    /// Bumped at every change of `counters`, so a re-read that raced a change is dropped.
    counters_version: u64,
    /// When to re-read the counts from the database (after other nodes' deltas, once quiet).
    resync_at: Option<Instant>,
    /// A timer is set for `resync_at`. Only then: a ticking timer per actor would wake
    /// every idle campaign twice a second (100,000 of them, 200,000 wake-ups a second).
    resync_armed: bool,
    stock: Stock,
    batcher: Batcher,
    /// Seqs each consumer holds or has in flight. A consumer missing here is unknown,
    /// not clean: the insert's unique index settles it. Compact on purpose: a flash sale
    /// puts a million consumers here, and most limits are one or two coupons. Shared with
    /// the sold-out view; change it through `consumers_mut`.
    consumers: ConsumerSeqs,
    /// The `sold_out_at` whose view is published in the directory (see `sold_out.rs`).
    sold_out_published: Option<Instant>,
    last_activity: Instant,
    shutdown_waiters: Option<Vec<oneshot::Sender<()>>>,
}

/// How long a campaign must be still before its counts are re-read.
const QUIET: Duration = Duration::from_secs(1);

/// More consumers than this and the map is forgotten; the database still enforces limits.
const MAX_REMEMBERED_CONSUMERS: usize = 1_000_000;

impl CampaignActor {
    pub(crate) fn new(
        id: Uuid,
        shared: Weak<Shared>,
        settings: Arc<EngineSettings>,
    ) -> CampaignActor {
        CampaignActor {
            id,
            shared,
            stock: Stock::new(settings.max_lease),
            batcher: Batcher::default(),
            settings,
            campaign: None,
            counters: Counters::default(),
            counters_version: 0,
            resync_at: None,
            resync_armed: false,
            consumers: ConsumerSeqs::default(),
            sold_out_published: None,
            last_activity: Instant::now(),
            shutdown_waiters: None,
        }
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.shared.upgrade()
    }

    fn store(&self) -> Option<Store> {
        self.shared().map(|s| s.store.clone())
    }

    /// The consumer map, to change: copied first only if a withdrawn sold-out view is
    /// still being read.
    fn consumers_mut(&mut self) -> &mut HashMap<Box<str>, super::sold_out::Seqs> {
        Arc::make_mut(&mut self.consumers)
    }

    /// Publishes the sold-out view while the stock says sold out, withdraws it as soon as
    /// it does not, or once the re-check is due (before that claim changes the consumer
    /// map, which then needs no copy). Called around everything that changes stock or the
    /// campaign.
    pub(super) fn sync_sold_out_view(&mut self, ctx: &mut Context<Self>) {
        let at = self
            .stock
            .sold_out_since()
            .filter(|at| at.elapsed() < stock::SOLD_OUT_RECHECK);
        if at == self.sold_out_published {
            return;
        }
        let Some(shared) = self.shared() else { return };
        let view = match (at, &self.campaign) {
            (Some(at), Some(campaign)) => Some(Arc::new(SoldOutView {
                tenant_id: campaign.tenant_id,
                status: campaign.status,
                rules: campaign.rules.clone(),
                consumers: self.consumers.clone(),
                until: at + stock::SOLD_OUT_RECHECK,
            })),
            _ => None,
        };
        self.sold_out_published = view.as_ref().and(at);
        shared.directory.set_sold_out(self.id, &ctx.address(), view);
    }

    fn remaining(&self) -> i64 {
        self.campaign
            .as_ref()
            .map_or(0, |c| (c.rules.total_limit() - self.counters.issued).max(0))
    }

    /// Loads the campaign, its counters, and gives back stock a crashed predecessor on
    /// this node leased (its batches died with it, so the count of its coupons is final).
    async fn load(
        store: Store,
        node: Uuid,
        id: Uuid,
    ) -> Result<Option<(Loaded, Counters)>, crate::store::StoreError> {
        let Some(record) = store.campaign_by_id(id).await? else {
            return Ok(None);
        };
        for lease in store.node_leases(node, id).await? {
            store.release_lease(id, lease).await?;
        }
        let stats = store.campaign_stats(id, record.rules.total_limit()).await?;
        let counters = Counters {
            issued: stats.issued,
            redeemed: stats.redeemed,
        };
        Ok(Some((Loaded::from_record(&record), counters)))
    }

    /// Re-reads the counts once nothing has moved for [`QUIET`] and no batch of ours is in
    /// flight, so that counters, stats and the table agree after a sale.
    fn maybe_resync(&mut self, ctx: &mut Context<Self>) {
        let Some(at) = self.resync_at else { return };
        let (Some(store), Some(limit)) = (
            self.store(),
            self.campaign.as_ref().map(|c| c.rules.total_limit()),
        ) else {
            return;
        };
        if at > Instant::now() || !self.batcher.is_empty() {
            return self.arm_resync(ctx);
        }
        self.resync_at = None;
        let (id, version) = (self.id, self.counters_version);
        let read = async move { store.campaign_stats(id, limit).await };
        ctx.spawn(read.into_actor(self).map(move |res, act, ctx| match res {
            Ok(stats) if act.counters_version == version && act.batcher.is_empty() => {
                act.counters = Counters {
                    issued: stats.issued,
                    redeemed: stats.redeemed,
                };
                act.publish_counters();
            }
            // Something moved meanwhile: try again once it is quiet.
            Ok(_) => act.recount_soon(ctx),
            Err(e) => {
                tracing::warn!(error = %e, campaign = %act.id, "cannot re-read campaign counts");
                act.recount_soon(ctx);
            }
        }));
    }

    /// (Re)starts the quiet period after which the counts are re-read from the database:
    /// after other nodes' deltas, or a batch whose outcome is unknown (counters, stats and
    /// the database must agree again).
    pub(super) fn recount_soon(&mut self, ctx: &mut Context<Self>) {
        self.resync_at = Some(Instant::now() + QUIET);
        self.arm_resync(ctx);
    }

    fn arm_resync(&mut self, ctx: &mut Context<Self>) {
        if self.resync_armed {
            return;
        }
        let Some(at) = self.resync_at else { return };
        self.resync_armed = true;
        // Not before half a quiet period: a batch still in flight is checked that often.
        let wait = at.saturating_duration_since(Instant::now()).max(QUIET / 2);
        ctx.run_later(wait, |act, ctx| {
            act.resync_armed = false;
            act.maybe_resync(ctx);
        });
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let idle = self.last_activity.elapsed() >= self.settings.actor_idle;
        if idle && self.batcher.is_empty() && !self.stock.busy() && self.shutdown_waiters.is_none()
        {
            tracing::debug!(campaign = %self.id, "campaign actor idle; stopping");
            if let Some(shared) = self.shared() {
                shared.directory.forget(self.id, &ctx.address());
            }
            self.shutdown_waiters = Some(Vec::new());
            self.finish_shutdown(ctx);
        }
    }

    /// Once nothing is in flight: return the stock, wake whoever asked, stop.
    fn finish_shutdown(&mut self, ctx: &mut Context<Self>) {
        if !self.batcher.is_empty() || self.stock.busy() {
            return;
        }
        let Some(waiters) = self.shutdown_waiters.as_mut().map(std::mem::take) else {
            return;
        };
        let leases = self.stock.drain_leases();
        let (shared, id) = (self.shared.clone(), self.id);
        let release = async move {
            let Some(store) = shared.upgrade().map(|s| s.store.clone()) else {
                return;
            };
            for lease in leases {
                match store.release_lease(id, lease).await {
                    Ok(returned) => metrics::counter!(crate::metrics::LEASE_UNITS_RETURNED)
                        .increment(returned.max(0) as u64),
                    Err(e) => {
                        tracing::warn!(error = %e, %lease, "could not return a lease; the lease keeper will");
                        if let Some(s) = shared.upgrade() {
                            s.loose_leases.add(lease, id, Duration::ZERO);
                        }
                    }
                }
            }
        };
        ctx.wait(release.into_actor(self).map(move |_, _, ctx| {
            for w in waiters {
                let _ = w.send(());
            }
            ctx.stop();
        }));
    }
}

impl Actor for CampaignActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        let Some(shared) = self.shared() else {
            return ctx.stop();
        };
        let load = Self::load(shared.store.clone(), shared.node_id, self.id);
        // `wait`: no claim is looked at before the state is in.
        ctx.wait(load.into_actor(self).map(|result, act, ctx| match result {
            Ok(Some((loaded, counters))) => {
                act.campaign = Some(loaded);
                act.counters = counters;
                act.share_counters();
            }
            Ok(None) => act.campaign = None,
            Err(e) => {
                tracing::error!(error = %e, campaign = %act.id, "campaign actor could not load; stopping");
                ctx.stop();
            }
        }));
        let every = (self.settings.actor_idle / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(shared) = self.shared() {
            shared.reads.end_live(self.id);
        }
        // Anyone still waiting learns the claim did not happen.
        self.batcher.fail_all(ClaimError::Busy);
        self.stock.fail_waiting(ClaimError::Busy);
    }
}

impl Handler<Claim> for CampaignActor {
    type Result = MessageResult<Claim>;

    fn handle(&mut self, msg: Claim, ctx: &mut Context<Self>) -> Self::Result {
        self.last_activity = Instant::now();
        let started = Instant::now();
        self.sync_sold_out_view(ctx);
        let answer = self.accept(msg, started, ctx);
        if let Err(refused) = &answer {
            let _ = claiming::record(Err(refused.clone()), started);
        }
        self.sync_sold_out_view(ctx);
        MessageResult(answer)
    }
}

impl Handler<Adjust> for CampaignActor {
    type Result = ();

    fn handle(&mut self, msg: Adjust, ctx: &mut Context<Self>) {
        if msg.issued != 0 || msg.redeemed != 0 {
            self.counters.issued += msg.issued;
            self.counters.redeemed += msg.redeemed;
            if msg.remote {
                self.recount_soon(ctx);
            }
            self.publish_counters();
        }
        if let Some(record) = msg.record {
            self.stock.clear_sold_out();
            self.campaign = Some(Loaded::from_record(&record));
            self.sync_sold_out_view(ctx);
        } else if msg.reload {
            // Stock may have come back (reaper, raised limit): try again on the next claim.
            self.stock.clear_sold_out();
            self.sync_sold_out_view(ctx);
            let Some(store) = self.store() else { return };
            let id = self.id;
            let fut = async move { store.campaign_by_id(id).await };
            ctx.spawn(fut.into_actor(self).map(|res, act, _| match res {
                Ok(Some(record)) => act.campaign = Some(Loaded::from_record(&record)),
                Ok(None) => act.campaign = None,
                Err(e) => tracing::warn!(error = %e, "campaign reload failed"),
            }));
        }
    }
}

impl Handler<Shutdown> for CampaignActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.shutdown_waiters.get_or_insert_with(Vec::new).push(tx);
        self.flush(ctx);
        self.finish_shutdown(ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
