//! The hot path's write: claim batches, of one campaign or of many, as one multi-row insert
//! that is its own transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};

/// One claim waiting in a batch. Lottery losers have `code`/`lease_id` None.
#[derive(Debug, Clone)]
pub struct ClaimRow {
    pub id: Uuid,
    pub consumer: String,
    pub seq: i32,
    pub code: Option<String>,
    pub lease_id: Option<Uuid>,
    pub claimed_at: DateTime<Utc>,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub uses_left: i32,
    pub secret: Vec<u8>,
}

/// One campaign's share of a write: its tenant, its id and its rows.
#[derive(Debug, Clone, Copy)]
pub struct BatchOf<'a> {
    pub tenant_id: Uuid,
    pub campaign_id: Uuid,
    pub rows: &'a [ClaimRow],
}

/// What a committed batch did.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Rows written.
    pub inserted: HashSet<Uuid>,
    /// Leases found released (reaped, or revoked by a lowered limit): their rows were not
    /// written and must be retried under a new lease.
    pub revoked_leases: HashSet<Uuid>,
    /// For consumers whose row hit the unique index: the seqs they hold now.
    pub consumer_seqs: HashMap<String, Vec<i32>>,
}

/// Why a batch has no outcome, and whether its rows may have been written. One failure
/// answers every campaign of a shared write, hence the `Arc`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchFailure {
    /// Nothing was written: no connection, the statement never went out, or the server
    /// refused it (one statement is its own transaction, so an error rolled it all back).
    #[error("claim batch not written: {0}")]
    NotWritten(Arc<StoreError>),
    /// The statement went out and no answer came back (the connection broke, or the caller
    /// gave up waiting): it may have committed.
    #[error("claim batch outcome unknown: {0}")]
    Unknown(Arc<StoreError>),
}

impl BatchFailure {
    pub fn not_written(e: impl Into<StoreError>) -> BatchFailure {
        BatchFailure::NotWritten(Arc::new(e.into()))
    }

    pub fn unknown(e: impl Into<StoreError>) -> BatchFailure {
        BatchFailure::Unknown(Arc::new(e.into()))
    }

    /// The server refused the statement (and rolled it back): another grouping of the
    /// same rows may succeed.
    pub fn refused_by_server(&self) -> bool {
        matches!(self, BatchFailure::NotWritten(e)
            if matches!(&**e, StoreError::Db(db) if db.as_db_error().is_some()))
    }
}

/// Parallel arrays, one element per row, as the statement takes them.
#[derive(Default)]
struct Columns<'a> {
    tenants: Vec<Uuid>,
    campaigns: Vec<Uuid>,
    ids: Vec<Uuid>,
    consumers: Vec<&'a str>,
    seqs: Vec<i32>,
    codes: Vec<Option<&'a str>>,
    lease_ids: Vec<Option<Uuid>>,
    claimed: Vec<DateTime<Utc>>,
    valid_from: Vec<DateTime<Utc>>,
    expires: Vec<Option<DateTime<Utc>>>,
    uses: Vec<i32>,
    secrets: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn of(batches: &[BatchOf<'a>]) -> Columns<'a> {
        let n = batches.iter().map(|b| b.rows.len()).sum();
        let mut c = Columns {
            tenants: Vec::with_capacity(n),
            campaigns: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            consumers: Vec::with_capacity(n),
            seqs: Vec::with_capacity(n),
            codes: Vec::with_capacity(n),
            lease_ids: Vec::with_capacity(n),
            claimed: Vec::with_capacity(n),
            valid_from: Vec::with_capacity(n),
            expires: Vec::with_capacity(n),
            uses: Vec::with_capacity(n),
            secrets: Vec::with_capacity(n),
        };
        for b in batches {
            for r in b.rows {
                c.tenants.push(b.tenant_id);
                c.campaigns.push(b.campaign_id);
                c.ids.push(r.id);
                c.consumers.push(r.consumer.as_str());
                c.seqs.push(r.seq);
                c.codes.push(r.code.as_deref());
                c.lease_ids.push(r.lease_id);
                c.claimed.push(r.claimed_at);
                c.valid_from.push(r.valid_from);
                c.expires.push(r.expires_at);
                c.uses.push(r.uses_left);
                c.secrets.push(r.secret.as_slice());
            }
        }
        c
    }
}

/// One statement, so one round trip and its own transaction (committed, WAL flushed,
/// before the reply comes): the batch's leases are locked against release (`live`, in id
/// order, the order every release locks them in), rows under a lease that is gone are left
/// out, and the answer lists the rows written ('c') and the leases still live ('l').
/// `hooked` queues a coupon.claimed webhook per won row and subscribed endpoint in the same
/// commit; a tenant without such an endpoint costs one probe of an index on an (almost
/// always) tiny table.
const INSERT_BATCHES: &str = "WITH live AS (
    SELECT id FROM campaign_leases
    WHERE id = ANY($13::uuid[]) AND released_at IS NULL
    ORDER BY id
    FOR KEY SHARE
 ), written AS (
    INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, lease_id,
                         claimed_at, valid_from, expires_at, uses_left, secret)
    SELECT u.id, u.tenant_id, u.campaign_id, u.consumer, u.seq, u.code IS NOT NULL, u.code, u.lease_id,
           u.claimed_at, u.valid_from, u.expires_at, u.uses_left, u.secret
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int4[], $6::text[], $7::uuid[],
                $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::int4[], $12::bytea[])
         AS u(tenant_id, campaign_id, id, consumer, seq, code, lease_id, claimed_at, valid_from,
              expires_at, uses_left, secret)
    WHERE u.lease_id IS NULL OR u.lease_id IN (SELECT id FROM live)
    ON CONFLICT DO NOTHING
    RETURNING id, tenant_id, campaign_id, consumer, code, claimed_at, expires_at, uses_left
 ), hooked AS (
    -- `consumer` is the merchant's own reference (stored `api:<ref>`);
    -- a claim-page consumer's device or sign-in id is not theirs: null.
    INSERT INTO webhook_deliveries (endpoint_id, tenant_id, event_type, data)
    SELECT e.id, w.tenant_id, 'coupon.claimed',
           jsonb_build_object('coupon_id', w.id, 'campaign_id', w.campaign_id, 'code', w.code,
                              'consumer', CASE WHEN w.consumer LIKE 'api:%' THEN substr(w.consumer, 5) END,
                              'claimed_at', w.claimed_at,
                              'expires_at', w.expires_at, 'uses_left', w.uses_left)
    FROM written w JOIN webhook_endpoints e
         ON e.tenant_id = w.tenant_id AND 'coupon.claimed' = ANY(e.events)
    WHERE w.code IS NOT NULL
 )
 SELECT 'c', id FROM written
 UNION ALL
 SELECT 'l', id FROM live";

impl Store {
    /// Writes the batches of one or several campaigns as one statement and one commit: with
    /// many campaigns selling at once, each has only a claim or two waiting, and a commit per
    /// campaign would make WAL flushes, not CPU, the limit. Rows that break the per-consumer
    /// index are skipped (`ON CONFLICT DO NOTHING`) and reported with the consumer's current
    /// seqs. Answers one outcome per batch, in order; a failure is every batch's.
    #[tracing::instrument(level = "debug", skip_all, fields(campaigns = batches.len()))]
    pub async fn insert_claim_batches(
        &self,
        batches: &[BatchOf<'_>],
    ) -> Result<Vec<BatchOutcome>, BatchFailure> {
        let client = self.pool.get().await.map_err(BatchFailure::not_written)?;
        let c = Columns::of(batches);
        let leases: Vec<Uuid> = {
            let set: HashSet<Uuid> = c.lease_ids.iter().flatten().copied().collect();
            set.into_iter().collect()
        };
        let stmt = client
            .prepare_cached(INSERT_BATCHES)
            .await
            .map_err(BatchFailure::not_written)?;
        let answer = client
            .query(
                &stmt,
                &[
                    &c.tenants,
                    &c.campaigns,
                    &c.ids,
                    &c.consumers,
                    &c.seqs,
                    &c.codes,
                    &c.lease_ids,
                    &c.claimed,
                    &c.valid_from,
                    &c.expires,
                    &c.uses,
                    &c.secrets,
                    &leases,
                ],
            )
            .await
            .map_err(|e| {
                if e.as_db_error().is_some() {
                    BatchFailure::not_written(e)
                } else {
                    BatchFailure::unknown(e)
                }
            })?;
        let mut inserted = HashSet::with_capacity(answer.len());
        let mut live = HashSet::new();
        for row in &answer {
            let kind: &str = row.get(0);
            let id: Uuid = row.get(1);
            if kind == "c" {
                inserted.insert(id);
            } else {
                live.insert(id);
            }
        }

        let mut outcomes: Vec<BatchOutcome> = Vec::with_capacity(batches.len());
        // Rows that hit the per-consumer index, as (campaign, consumer).
        let mut conflicted: (Vec<Uuid>, Vec<&str>) = Default::default();
        for b in batches {
            let mut outcome = BatchOutcome::default();
            for r in b.rows {
                match r.lease_id {
                    Some(l) if !live.contains(&l) => {
                        outcome.revoked_leases.insert(l);
                    }
                    _ if inserted.contains(&r.id) => {
                        outcome.inserted.insert(r.id);
                    }
                    _ => {
                        conflicted.0.push(b.campaign_id);
                        conflicted.1.push(r.consumer.as_str());
                    }
                }
            }
            outcomes.push(outcome);
        }

        // Only when a row hit the per-consumer index: one more query to learn those
        // consumers' real state (after the commit: what they hold is only ever more).
        // The batch is committed by now: failing here must not make its rows look unwritten.
        // Without the answer, those claims just try another number (bounded attempts).
        if !conflicted.0.is_empty() {
            match client
                .query(
                    "SELECT campaign_id, consumer, array_agg(seq ORDER BY seq) FROM coupons
                     WHERE (campaign_id, consumer) IN
                           (SELECT * FROM unnest($1::uuid[], $2::text[]))
                     GROUP BY campaign_id, consumer",
                    &[&conflicted.0, &conflicted.1],
                )
                .await
            {
                Ok(rows) => {
                    for r in rows {
                        let campaign: Uuid = r.get(0);
                        let (consumer, seqs): (String, Vec<i32>) = (r.get(1), r.get(2));
                        // One campaign can have two batches in one write.
                        for (b, outcome) in batches.iter().zip(outcomes.iter_mut()) {
                            if b.campaign_id == campaign {
                                outcome.consumer_seqs.insert(consumer.clone(), seqs.clone());
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read conflicting consumers' claims"),
            }
        }
        Ok(outcomes)
    }
}
