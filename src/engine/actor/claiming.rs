//! The claim path inside the actor: check from memory, reserve the consumer's next claim
//! number, draw the lottery, take a unit of stock, queue, and commit in batches.
//!
//! Group commit: one batch commits while the next fills, up to `max_inflight_batches`
//! at once. A batch goes when it is full or `batch_linger` after its first claim.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Instant;

use actix::prelude::*;
use rand::RngCore;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{CampaignActor, Claim, MAX_REMEMBERED_CONSUMERS};
use crate::domain::campaign::{draw_lottery, ClaimRejection};
use crate::engine::events::{ClaimedCoupon, EngineEvent};
use crate::engine::{ClaimError, IssuedCoupon};
use crate::metrics::{BATCH_SIZE, CLAIMS, CLAIM_DURATION, COMMIT_DURATION, MAILBOX_DEPTH};
use crate::store::{BatchFailure, BatchOutcome, ClaimKey, ClaimRow};

pub(super) type Reply = oneshot::Sender<Result<IssuedCoupon, ClaimError>>;

/// A conflicting claim is retried with a new number or code at most this often.
const MAX_ATTEMPTS: u8 = 5;

/// A claim that passed the checks and holds a consumer seq, but no row yet.
pub(super) struct Waiting {
    pub consumer: String,
    pub seq: i32,
    pub won: bool,
    pub reply: Reply,
    pub started: Instant,
    pub attempts: u8,
    pub key: Option<Arc<ClaimKey>>,
}

struct Meta {
    reply: Reply,
    started: Instant,
    attempts: u8,
}

#[derive(Default)]
pub(super) struct Batcher {
    rows: Vec<ClaimRow>,
    metas: Vec<Meta>,
    armed: bool,
    in_flight_batches: usize,
    in_flight_claims: usize,
    /// Idempotency keys of the claims this actor holds, by fingerprint. A key is in flight
    /// while its claim's message, row or wait holds the `Arc` (the entry is then live);
    /// dead entries are swept as the map grows. Without this, a duplicate of a claim
    /// still in its batch would be refused `consumer_limit_reached` (the first holds the
    /// consumer's number), and that refusal recorded as the key's answer.
    keys: HashMap<u64, Weak<ClaimKey>>,
}

impl Batcher {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.in_flight_batches == 0
    }

    fn queued(&self) -> usize {
        self.rows.len() + self.in_flight_claims
    }

    /// Whether a claim with `key` is in flight here; if not, `key` is now.
    fn key_in_flight(&mut self, key: &Arc<ClaimKey>) -> bool {
        let fingerprint = key.fingerprint();
        if let Some(held) = self.keys.get(&fingerprint).and_then(Weak::upgrade) {
            if held.same_key(key) {
                return true;
            }
        }
        if self.keys.len() >= 64 && self.keys.len().is_power_of_two() {
            self.keys.retain(|_, k| k.strong_count() > 0);
        }
        self.keys.insert(fingerprint, Arc::downgrade(key));
        false
    }

    pub fn fail_all(&mut self, error: ClaimError) {
        self.rows.clear();
        for m in self.metas.drain(..) {
            let _ = m.reply.send(record(Err(error.clone()), m.started));
        }
    }
}

/// Counts every answer once, by result, with its latency.
pub(crate) fn record(
    result: Result<IssuedCoupon, ClaimError>,
    started: Instant,
) -> Result<IssuedCoupon, ClaimError> {
    let label = match &result {
        Ok(_) => "issued",
        Err(ClaimError::Rejected(r)) => r.code(),
        Err(ClaimError::NotFound) => "not_found",
        Err(ClaimError::Busy) => "busy",
        Err(ClaimError::Failed) => "failed",
        Err(ClaimError::OutcomeUnknown(_)) => "outcome_unknown",
        Err(ClaimError::KeyTaken) => "key_taken",
        Err(ClaimError::KeyInUse) => "key_in_use",
    };
    metrics::counter!(CLAIMS, "result" => label).increment(1);
    metrics::histogram!(CLAIM_DURATION).record(started.elapsed().as_secs_f64());
    result
}

impl CampaignActor {
    /// Decides what it can from memory; otherwise queues the claim and returns where the
    /// answer will come.
    pub(super) fn accept(
        &mut self,
        msg: Claim,
        started: Instant,
        ctx: &mut Context<Self>,
    ) -> Result<oneshot::Receiver<Result<IssuedCoupon, ClaimError>>, ClaimError> {
        let Some(campaign) = &self.campaign else {
            return Err(ClaimError::NotFound);
        };
        if campaign.tenant_id != msg.tenant_id {
            return Err(ClaimError::NotFound);
        }
        // Before any check that the first claim with this key could change the answer of.
        if let Some(key) = &msg.key {
            if self.batcher.key_in_flight(key) {
                return Err(ClaimError::KeyInUse);
            }
        }
        let now = self
            .shared()
            .map(|s| s.clock.now())
            .unwrap_or_else(chrono::Utc::now);
        campaign
            .rules
            .check_claim_window(campaign.status, now)
            .map_err(ClaimError::Rejected)?;
        if self.shutdown_waiters.is_some() {
            return Err(ClaimError::Busy);
        }
        let limit = campaign.rules.per_consumer_limit();
        let win_probability = campaign.rules.win_probability();
        if self
            .consumers
            .get(msg.consumer.as_str())
            .is_some_and(|used| used.len() >= limit as usize)
        {
            return Err(ClaimError::Rejected(ClaimRejection::ConsumerLimitReached));
        }
        // Sold out is answered from memory, except about once a second, when a claim goes
        // on to ask the database again (stock may have come back from another node).
        if self.stock.sold_out() && !self.stock.recheck_due() {
            return Err(ClaimError::Rejected(ClaimRejection::SoldOut));
        }
        if self.batcher.queued() + self.stock.waiting.len() >= self.settings.max_queued_claims {
            return Err(ClaimError::Busy);
        }
        let seq = self
            .reserve_seq(&msg.consumer, limit)
            .ok_or(ClaimError::Rejected(ClaimRejection::ConsumerLimitReached))?;
        // The thread's CSPRNG (ChaCha, reseeded from the OS), not one per actor: an actor's own
        // would cost a third of a KiB for every campaign awake on the node.
        let won = draw_lottery(win_probability, &mut rand::thread_rng());
        let (tx, rx) = oneshot::channel();
        self.place(
            Waiting {
                consumer: msg.consumer,
                seq,
                won,
                reply: tx,
                started,
                attempts: 0,
                key: msg.key,
            },
            ctx,
        );
        Ok(rx)
    }

    /// Gives the claim a row (taking stock if it won), or parks it until stock comes.
    pub(super) fn place(&mut self, w: Waiting, ctx: &mut Context<Self>) {
        let lease = if w.won {
            match self.stock.take() {
                Some(lease) => Some(lease),
                None => {
                    self.stock.waiting.push_back(w);
                    self.request_stock(ctx);
                    return;
                }
            }
        } else {
            None
        };
        let row = self.make_row(w.consumer, w.seq, lease, w.key);
        self.batcher.rows.push(row);
        self.batcher.metas.push(Meta {
            reply: w.reply,
            started: w.started,
            attempts: w.attempts,
        });
        self.request_stock(ctx);
        self.maybe_flush(ctx);
    }

    fn make_row(
        &mut self,
        consumer: String,
        seq: i32,
        lease: Option<Uuid>,
        key: Option<Arc<ClaimKey>>,
    ) -> ClaimRow {
        let campaign = self
            .campaign
            .as_ref()
            .expect("rows are only made for a loaded campaign");
        let claimed_at = self
            .shared()
            .map(|s| s.clock.now())
            .unwrap_or_else(chrono::Utc::now);
        let (valid_from, expires_at) = campaign.rules.coupon_validity(claimed_at);
        let mut rng = rand::thread_rng();
        let mut secret = vec![0u8; 20];
        rng.fill_bytes(&mut secret);
        ClaimRow {
            // Time-ordered, so the primary key grows at its right edge instead of touching
            // a random leaf page per row: about a fifth less WAL per claim (full-page
            // images after each checkpoint). Ids are not secrets (the wallet checks the
            // consumer), so 74 random bits are plenty to keep them unique.
            id: Uuid::now_v7(),
            consumer,
            seq,
            code: lease.map(|_| campaign.codes.generate(&mut rng).as_str().to_string()),
            lease_id: lease,
            claimed_at,
            valid_from,
            expires_at,
            uses_left: campaign.rules.uses_per_coupon(),
            secret,
            key,
        }
    }

    fn reserve_seq(&mut self, consumer: &str, limit: i32) -> Option<i32> {
        if self.consumers.len() >= MAX_REMEMBERED_CONSUMERS
            && !self.consumers.contains_key(consumer)
        {
            self.consumers_mut().clear();
        }
        let used = self.consumers_mut().entry(consumer.into()).or_default();
        let seq = (1..=limit).find(|s| !used.contains(s))?;
        used.push(seq);
        Some(seq)
    }

    pub(super) fn unreserve(&mut self, consumer: &str, seq: i32) {
        if let Some(used) = self.consumers_mut().get_mut(consumer) {
            used.retain(|s| *s != seq);
        }
    }

    pub(super) fn maybe_flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(shared) = self.shared() {
            let depth = self.batcher.queued() + self.stock.waiting.len();
            metrics::gauge!(MAILBOX_DEPTH).set(shared.largest_queue.report(self.id, depth) as f64);
        }
        if self.batcher.rows.is_empty()
            || self.batcher.in_flight_batches >= self.settings.max_inflight_batches
        {
            return;
        }
        // `batch_linger` counts from the oldest claim's arrival, not from when a slot came
        // free: claims that queued behind busy slots have waited long enough, and a fresh
        // linger after every commit would add a timer tick to each round trip.
        let waited = self
            .batcher
            .metas
            .first()
            .is_some_and(|m| m.started.elapsed() >= self.settings.batch_linger);
        if self.batcher.rows.len() >= self.settings.max_batch || waited {
            self.flush(ctx);
        } else if !self.batcher.armed {
            self.batcher.armed = true;
            ctx.run_later(self.settings.batch_linger, |act, ctx| {
                act.batcher.armed = false;
                if act.batcher.in_flight_batches < act.settings.max_inflight_batches {
                    act.flush(ctx);
                }
            });
        }
    }

    /// Sends up to `max_batch` queued claims to the database as one transaction.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.batcher.rows.is_empty() {
            return;
        }
        let (Some(shared), Some(campaign)) = (self.shared(), self.campaign.as_ref()) else {
            return;
        };
        let n = self.batcher.rows.len().min(self.settings.max_batch);
        // Taking the whole queue moves it (no copy) and leaves no capacity behind: an
        // actor that goes idle after its claims keeps no empty batch buffers.
        let (rows, metas): (Vec<ClaimRow>, Vec<Meta>) = if n == self.batcher.rows.len() {
            (
                std::mem::take(&mut self.batcher.rows),
                std::mem::take(&mut self.batcher.metas),
            )
        } else {
            (
                self.batcher.rows.drain(..n).collect(),
                self.batcher.metas.drain(..n).collect(),
            )
        };
        self.batcher.in_flight_batches += 1;
        self.batcher.in_flight_claims += n;
        let (tenant, id) = (campaign.tenant_id, self.id);
        // The node's committer writes it, with other campaigns' batches when they wait too,
        // and gives up on a silent connection after `batch_timeout` (outcome unknown).
        let committer = shared.committer.clone();
        let fut = async move {
            let started = Instant::now();
            let written = committer.write(tenant, id, rows).await;
            metrics::histogram!(COMMIT_DURATION).record(started.elapsed().as_secs_f64());
            written
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |(rows, result), act, ctx| act.on_flushed(rows, metas, result, ctx)),
        );
        if !self.batcher.rows.is_empty() {
            self.maybe_flush(ctx);
        }
    }

    fn on_flushed(
        &mut self,
        rows: Vec<ClaimRow>,
        metas: Vec<Meta>,
        result: Result<BatchOutcome, BatchFailure>,
        ctx: &mut Context<Self>,
    ) {
        self.batcher.in_flight_batches -= 1;
        self.batcher.in_flight_claims -= metas.len();
        metrics::histogram!(BATCH_SIZE).record(metas.len() as f64);
        if rows.len() != metas.len() {
            // The committer went away with the rows (the runtime is shutting down): all
            // that can be said is that they may have been written.
            self.recount_soon(ctx);
            for meta in metas {
                let _ = meta
                    .reply
                    .send(record(Err(ClaimError::OutcomeUnknown(None)), meta.started));
            }
            return;
        }
        match result {
            Ok(outcome) => self.settle(rows, metas, outcome, ctx),
            Err(BatchFailure::NotWritten(e)) => {
                // Known not written: the units go straight back to their lease, so stats
                // and stock never disagree (nothing to release, nothing stranded).
                tracing::error!(error = %e, campaign = %self.id, claims = rows.len(), "claim batch failed; nothing written");
                for (row, meta) in rows.into_iter().zip(metas) {
                    if let Some(lease) = row.lease_id {
                        self.stock.give_back(lease);
                    }
                    self.unreserve(&row.consumer, row.seq);
                    let _ = meta.reply.send(record(Err(ClaimError::Busy), meta.started));
                }
                // Stock may be back: "sold out" is worth asking again.
                self.stock.clear_sold_out();
            }
            Err(BatchFailure::Unknown(e)) => {
                // Maybe written: stop spending these leases and release them, which counts
                // the coupons that really carry them (retried until the database answers).
                tracing::error!(error = %e, campaign = %self.id, claims = rows.len(), "claim batch outcome unknown");
                self.stock.recount_after_release = true;
                // Lottery losers carry no lease: recount anyway, once quiet.
                self.recount_soon(ctx);
                let abandoned: HashSet<Uuid> = rows.iter().filter_map(|r| r.lease_id).collect();
                for lease in abandoned {
                    self.stock.abandon(lease);
                }
                for (row, meta) in rows.into_iter().zip(metas) {
                    if let Some(lease) = row.lease_id {
                        self.stock.settled(lease);
                    }
                    // The unique index stops a second row with this number if one was saved.
                    self.unreserve(&row.consumer, row.seq);
                    let unknown = ClaimError::OutcomeUnknown(Some(row.id));
                    let _ = meta.reply.send(record(Err(unknown), meta.started));
                }
            }
        }
        self.retire_leases(ctx);
        self.request_stock(ctx);
        self.maybe_flush(ctx);
        self.finish_shutdown(ctx);
        self.sync_sold_out_view(ctx);
    }

    /// Answers a committed batch: inserted rows are issued, rows under a revoked lease wait
    /// for new stock, and rows that hit the per-consumer index are re-judged.
    fn settle(
        &mut self,
        rows: Vec<ClaimRow>,
        metas: Vec<Meta>,
        outcome: BatchOutcome,
        ctx: &mut Context<Self>,
    ) {
        let Some(tenant_id) = self.campaign.as_ref().map(|c| c.tenant_id) else {
            return;
        };
        let limit = self
            .campaign
            .as_ref()
            .map_or(1, |c| c.rules.per_consumer_limit());
        for lease in &outcome.revoked_leases {
            self.stock.revoked(*lease);
        }
        let mut claimed = Vec::new();
        for (row, meta) in rows.into_iter().zip(metas) {
            if outcome.inserted.contains(&row.id) {
                if let Some(lease) = row.lease_id {
                    self.stock.settled(lease);
                }
                match row.code {
                    Some(code) => {
                        claimed.push(ClaimedCoupon {
                            coupon_id: row.id,
                            claimed_at: row.claimed_at,
                        });
                        let coupon = IssuedCoupon {
                            id: row.id,
                            code,
                            claimed_at: row.claimed_at,
                            valid_from: row.valid_from,
                            expires_at: row.expires_at,
                            uses_left: row.uses_left,
                        };
                        let _ = meta.reply.send(record(Ok(coupon), meta.started));
                    }
                    None => {
                        let lost = Err(ClaimError::Rejected(ClaimRejection::LotteryLost));
                        let _ = meta.reply.send(record(lost, meta.started));
                    }
                }
                continue;
            }
            let revoked = row
                .lease_id
                .is_some_and(|l| outcome.revoked_leases.contains(&l));
            if outcome.key_taken.contains(&row.id) {
                // Not written: the key's first request answers for it.
                if let (Some(lease), false) = (row.lease_id, revoked) {
                    self.stock.give_back(lease);
                }
                self.unreserve(&row.consumer, row.seq);
                let taken = Err(ClaimError::KeyTaken);
                let _ = meta.reply.send(record(taken, meta.started));
                continue;
            }
            let won = row.code.is_some();
            let key = row.key;
            let retry = |meta: Meta, consumer: String, seq: i32| Waiting {
                consumer,
                seq,
                won,
                reply: meta.reply,
                started: meta.started,
                attempts: meta.attempts + 1,
                key,
            };
            if revoked {
                // Not written; same claim number, new stock. (The revoked lease is gone.)
                self.place(retry(meta, row.consumer, row.seq), ctx);
                continue;
            }
            // Not written because of the unique indexes: learn what the consumer holds.
            if let Some(lease) = row.lease_id {
                self.stock.give_back(lease);
            }
            self.unreserve(&row.consumer, row.seq);
            if let Some(held) = outcome.consumer_seqs.get(&row.consumer) {
                let used = self
                    .consumers_mut()
                    .entry(row.consumer.as_str().into())
                    .or_default();
                for s in held {
                    if !used.contains(s) {
                        used.push(*s);
                    }
                }
            }
            if meta.attempts + 1 >= MAX_ATTEMPTS {
                // (its unit was given back above)
                let _ = meta
                    .reply
                    .send(record(Err(ClaimError::Failed), meta.started));
                continue;
            }
            match self.reserve_seq(&row.consumer, limit) {
                Some(seq) => self.place(retry(meta, row.consumer, seq), ctx),
                None => {
                    let full = Err(ClaimError::Rejected(ClaimRejection::ConsumerLimitReached));
                    let _ = meta.reply.send(record(full, meta.started));
                }
            }
        }
        if !claimed.is_empty() {
            let n = claimed.len() as i64;
            self.counters.issued += n;
            if let Some(shared) = self.shared() {
                shared.notifier.add(tenant_id, self.id, n, 0, false);
                shared.events.publish(EngineEvent::Claimed {
                    tenant_id,
                    campaign_id: self.id,
                    coupons: claimed,
                });
            }
            self.publish_counters();
        }
    }

    /// Tells readers the counters (see `engine::reads`).
    pub(super) fn share_counters(&mut self) {
        self.counters_version += 1;
        if let Some(shared) = self.shared() {
            shared.reads.set_live(
                self.id,
                crate::engine::reads::Counts {
                    issued: self.counters.issued,
                    redeemed: self.counters.redeemed,
                },
            );
        }
    }

    /// Tells readers and dashboards the counters (after every change of them).
    pub(super) fn publish_counters(&mut self) {
        self.share_counters();
        let (Some(shared), Some(campaign)) = (self.shared(), self.campaign.as_ref()) else {
            return;
        };
        shared.events.publish(EngineEvent::Counters {
            tenant_id: campaign.tenant_id,
            campaign_id: self.id,
            issued: self.counters.issued,
            redeemed: self.counters.redeemed,
            remaining: self.remaining(),
        });
    }
}
