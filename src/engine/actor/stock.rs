//! The actor's leased stock. Claims take units from the oldest lease first; a lease is
//! given back (what it did not use) once spent or abandoned and no batch using it is in
//! flight. Claims that find no unit wait here, bounded, for the next lease.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use actix::prelude::*;
use uuid::Uuid;

use super::claiming::{record, Waiting};
use super::CampaignActor;
use crate::domain::campaign::ClaimRejection;
use crate::engine::lease_policy::{next_lease_size, RateMeter};
use crate::engine::ClaimError;
use crate::metrics::{LEASES_TAKEN, LEASE_UNITS_RETURNED};
use crate::store::{Lease, StoreError};

/// How long "sold out" is believed before the campaign row is asked again (stock can come
/// back from a reaped or returned lease, or a raised limit).
pub(super) const SOLD_OUT_RECHECK: Duration = Duration::from_secs(1);

struct LeaseState {
    id: Uuid,
    size: i64,
    used: i64,
    /// Units taken by claims that are not settled yet (queued or being committed). A lease
    /// is released only at zero: releasing earlier would count those rows as unused.
    held: i64,
}

pub(super) struct Stock {
    leases: Vec<LeaseState>,
    max_lease: i64,
    requesting: bool,
    sold_out_at: Option<Instant>,
    unallocated: Option<i64>,
    last_size: i64,
    rate: RateMeter,
    pub(super) waiting: VecDeque<Waiting>,
    /// Leases to release that the database could not be asked about yet (it was away):
    /// retried until it answers, so no stock stays stranded on a live node.
    to_release: Vec<Uuid>,
    release_retry_armed: bool,
    /// A batch's outcome was unknown: once its leases are released (which waits for any
    /// batch still in the database), the counters are re-read, since it may have landed.
    pub(super) recount_after_release: bool,
}

/// How soon a release that failed is tried again.
const RELEASE_RETRY: Duration = Duration::from_millis(250);

impl Stock {
    pub fn new(max_lease: i64) -> Stock {
        Stock {
            leases: Vec::new(),
            max_lease,
            requesting: false,
            sold_out_at: None,
            unallocated: None,
            last_size: 0,
            rate: RateMeter::default(),
            waiting: VecDeque::new(),
            to_release: Vec::new(),
            release_retry_armed: false,
            recount_after_release: false,
        }
    }

    pub fn take(&mut self) -> Option<Uuid> {
        self.rate.record(Instant::now());
        let lease = self.leases.iter_mut().find(|l| l.used < l.size)?;
        lease.used += 1;
        lease.held += 1;
        Some(lease.id)
    }

    /// For a unit whose row is known not to have been written.
    pub fn give_back(&mut self, lease: Uuid) {
        if let Some(l) = self.leases.iter_mut().find(|l| l.id == lease) {
            l.used = (l.used - 1).max(0);
            l.held -= 1;
        }
    }

    /// The row holding this unit got its answer (written, or failed for good).
    pub fn settled(&mut self, lease: Uuid) {
        if let Some(l) = self.leases.iter_mut().find(|l| l.id == lease) {
            l.held -= 1;
        }
    }

    fn available(&self) -> i64 {
        self.leases.iter().map(|l| l.size - l.used).sum()
    }

    pub fn sold_out(&self) -> bool {
        self.sold_out_at.is_some() && self.available() == 0
    }

    /// Since when the campaign has been sold out, while it still is.
    pub fn sold_out_since(&self) -> Option<Instant> {
        self.sold_out_at.filter(|_| self.available() == 0)
    }

    pub fn recheck_due(&self) -> bool {
        self.sold_out_at
            .is_some_and(|at| at.elapsed() >= SOLD_OUT_RECHECK)
    }

    pub fn clear_sold_out(&mut self) {
        self.sold_out_at = None;
    }

    /// A batch failed, so whether its rows were written is unknown: stop spending the
    /// lease. Releasing it counts the coupons that really carry it.
    pub fn abandon(&mut self, lease: Uuid) {
        if let Some(l) = self.leases.iter_mut().find(|l| l.id == lease) {
            l.used = l.size;
        }
    }

    /// The lease was released under us (reaped, or a lowered limit): forget it.
    pub fn revoked(&mut self, lease: Uuid) {
        self.leases.retain(|l| l.id != lease);
    }

    /// Spent leases with nothing in flight, to be released.
    fn take_finished(&mut self) -> Vec<Uuid> {
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.leases)
            .into_iter()
            .partition(|l| l.used >= l.size && l.held == 0);
        self.leases = keep;
        done.into_iter().map(|l| l.id).collect()
    }

    pub fn drain_leases(&mut self) -> Vec<Uuid> {
        let mut all: Vec<Uuid> = std::mem::take(&mut self.leases)
            .into_iter()
            .map(|l| l.id)
            .collect();
        all.append(&mut self.to_release);
        all
    }

    /// Whether this actor counts `lease` as its own (held, or being given back).
    pub fn knows(&self, lease: Uuid) -> bool {
        self.leases.iter().any(|l| l.id == lease) || self.to_release.contains(&lease)
    }

    pub fn requesting(&self) -> bool {
        self.requesting
    }

    /// A lease request or a batch is outstanding.
    pub fn busy(&self) -> bool {
        self.requesting || !self.waiting.is_empty() || self.leases.iter().any(|l| l.held > 0)
    }

    pub fn fail_waiting(&mut self, error: ClaimError) {
        for w in self.waiting.drain(..) {
            let _ = w.reply.send(record(Err(error.clone()), w.started));
        }
    }

    fn wants_lease(&self) -> bool {
        if self.requesting {
            return false;
        }
        if let Some(at) = self.sold_out_at {
            return at.elapsed() >= SOLD_OUT_RECHECK && !self.waiting.is_empty();
        }
        // Top up before running dry so claims rarely wait for a round trip.
        !self.waiting.is_empty() || self.available() <= self.last_size / 4
    }
}

impl CampaignActor {
    /// Asks for more stock when the current leases run low or claims are waiting.
    pub(super) fn request_stock(&mut self, ctx: &mut Context<Self>) {
        if self
            .stock
            .sold_out_at
            .is_some_and(|at| at.elapsed() >= SOLD_OUT_RECHECK)
            && self.stock.available() == 0
        {
            // Believe "sold out" again only after asking.
            self.stock.sold_out_at = None;
        }
        if !self.stock.wants_lease() {
            return;
        }
        let (Some(store), Some(shared)) = (self.store(), self.shared()) else {
            return;
        };
        let want = next_lease_size(
            self.stock.rate.per_sec(),
            self.stock.waiting.len(),
            self.stock.unallocated,
            self.stock.max_lease,
        );
        self.stock.requesting = true;
        let (id, node, lease_id) = (self.id, shared.node_id, Uuid::new_v4());
        let timeout = self.settings.batch_timeout;
        let fut = async move {
            tokio::time::timeout(timeout, store.take_lease(lease_id, id, node, want))
                .await
                .unwrap_or(Err(StoreError::Timeout(timeout)))
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |res, act, ctx| act.on_lease(lease_id, res, ctx)),
        );
    }

    fn on_lease(
        &mut self,
        lease_id: Uuid,
        result: Result<Option<Lease>, StoreError>,
        ctx: &mut Context<Self>,
    ) {
        self.stock.requesting = false;
        match result {
            Ok(Some(lease)) => {
                metrics::counter!(LEASES_TAKEN).increment(1);
                self.stock.unallocated = Some(lease.unallocated);
                self.stock.last_size = lease.size;
                self.stock.sold_out_at = None;
                // Most campaigns hold one lease at a time: room for one more, not the
                // four a first push would make room for, on every awake campaign.
                self.stock.leases.reserve_exact(1);
                self.stock.leases.push(LeaseState {
                    id: lease.id,
                    size: lease.size,
                    used: 0,
                    held: 0,
                });
                // Taken whole, so no empty queue capacity stays behind on an idle actor.
                let waiting = std::mem::take(&mut self.stock.waiting);
                for w in waiting {
                    self.place(w, ctx);
                }
            }
            Ok(None) => {
                self.stock.unallocated = Some(0);
                if self.stock.available() == 0 {
                    self.stock.sold_out_at = Some(Instant::now());
                    let waiting: Vec<Waiting> = self.stock.waiting.drain(..).collect();
                    for w in waiting {
                        self.unreserve(&w.consumer, w.seq);
                        let _ = w.reply.send(record(
                            Err(ClaimError::Rejected(ClaimRejection::SoldOut)),
                            w.started,
                        ));
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, campaign = %self.id, "could not lease stock");
                // The lease may have been written with its reply lost: give it back by id
                // (a no-op if it never was), and once more a ttl later, in case the grant
                // was still on its way and commits after this release.
                self.stock.to_release.push(lease_id);
                if let Some(shared) = self.shared() {
                    shared
                        .loose_leases
                        .add(lease_id, self.id, self.settings.lease_ttl);
                }
                self.retire_leases(ctx);
                let waiting: Vec<Waiting> = self.stock.waiting.drain(..).collect();
                for w in waiting {
                    self.unreserve(&w.consumer, w.seq);
                    let _ = w.reply.send(record(Err(ClaimError::Busy), w.started));
                }
            }
        }
        self.request_stock(ctx);
        self.maybe_flush(ctx);
        self.finish_shutdown(ctx);
        self.sync_sold_out_view(ctx);
    }

    /// Releases spent leases, and those whose release failed before, in the background.
    /// A release that fails is tried again shortly: the node is alive and heart-beating,
    /// so no reaper would ever take that stock back.
    pub(super) fn retire_leases(&mut self, ctx: &mut Context<Self>) {
        let mut done = self.stock.take_finished();
        done.append(&mut self.stock.to_release);
        if done.is_empty() {
            return;
        }
        let Some(store) = self.store() else { return };
        let (timeout, campaign) = (self.settings.batch_timeout, self.id);
        let release = async move {
            let (mut returned, mut failed) = (0, Vec::new());
            for lease in done {
                let answer =
                    tokio::time::timeout(timeout, store.release_lease(campaign, lease)).await;
                match answer.unwrap_or(Err(StoreError::Timeout(timeout))) {
                    Ok(n) => returned += n.max(0),
                    Err(e) => {
                        tracing::warn!(error = %e, %lease, "could not release a lease; will retry");
                        failed.push(lease);
                    }
                }
            }
            (returned, failed)
        };
        ctx.spawn(
            release
                .into_actor(self)
                .map(|(returned, failed), act, ctx| {
                    if returned > 0 {
                        metrics::counter!(LEASE_UNITS_RETURNED).increment(returned as u64);
                        act.stock_returned();
                        act.sync_sold_out_view(ctx);
                    }
                    if failed.is_empty() {
                        if std::mem::take(&mut act.stock.recount_after_release) {
                            act.recount_soon(ctx);
                        }
                        return;
                    }
                    act.stock.to_release.extend(failed);
                    if !act.stock.release_retry_armed {
                        act.stock.release_retry_armed = true;
                        ctx.run_later(RELEASE_RETRY, |act, ctx| {
                            act.stock.release_retry_armed = false;
                            act.retire_leases(ctx);
                        });
                    }
                }),
        );
    }

    /// Stock went back to the campaign: this actor and every other node's stop believing
    /// "sold out" and lease again on their next claim.
    fn stock_returned(&mut self) {
        self.stock.clear_sold_out();
        let (Some(shared), Some(campaign)) = (self.shared(), self.campaign.as_ref()) else {
            return;
        };
        shared.notifier.add(campaign.tenant_id, self.id, 0, 0, true);
    }

    /// The lease keeper's list of this node's live leases on the campaign: any this actor
    /// does not count as its own (a lease request whose answer was lost and came true
    /// later) is released, so its stock cannot stay stranded.
    pub(super) fn sweep_leases(&mut self, live: Vec<Uuid>, ctx: &mut Context<Self>) {
        // A lease being granted right now is not known yet; look again next round.
        if self.stock.requesting() {
            return;
        }
        let unknown: Vec<Uuid> = live.into_iter().filter(|l| !self.stock.knows(*l)).collect();
        if unknown.is_empty() {
            return;
        }
        tracing::warn!(campaign = %self.id, leases = unknown.len(), "releasing leases this actor does not hold");
        self.stock.to_release.extend(unknown);
        self.retire_leases(ctx);
    }
}
