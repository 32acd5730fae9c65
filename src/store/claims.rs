//! The hot path's SQL: claim batches as one multi-row insert, and exactly-once redemption.

use std::collections::{HashMap, HashSet};

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

#[derive(Debug, Clone)]
pub struct RedemptionRecord {
    pub id: Uuid,
    pub coupon_id: Uuid,
    pub campaign_id: Uuid,
    pub redeemed_at: DateTime<Utc>,
    pub uses_left: i32,
}

#[derive(Debug)]
pub enum RedeemOutcome {
    Redeemed(RedemptionRecord),
    UnknownCode,
    /// Not redeemed; the coupon as found, and the database time it was judged at.
    Refused {
        uses_left: i32,
        valid_from: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
}

#[derive(Debug)]
pub enum UndoOutcome {
    Undone {
        coupon_id: Uuid,
        campaign_id: Uuid,
        uses_left: i32,
    },
    NotFound,
    AlreadyUndone,
    WindowPassed,
}

impl Store {
    /// Writes a batch in one transaction. Rows that break the per-consumer index are
    /// skipped (`ON CONFLICT DO NOTHING`) and reported with the consumer's current seqs.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, campaign_id = %campaign_id, rows = rows.len()))]
    pub async fn insert_claim_batch(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        rows: &[ClaimRow],
    ) -> Result<BatchOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut outcome = BatchOutcome::default();

        let leases: Vec<Uuid> = {
            let set: HashSet<Uuid> = rows.iter().filter_map(|r| r.lease_id).collect();
            set.into_iter().collect()
        };
        if !leases.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "SELECT id FROM campaign_leases WHERE id = ANY($1) AND released_at IS NULL FOR KEY SHARE",
                )
                .await?;
            let live: HashSet<Uuid> = tx
                .query(&stmt, &[&leases])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            outcome.revoked_leases = leases.into_iter().filter(|l| !live.contains(l)).collect();
        }
        let writable: Vec<&ClaimRow> = rows
            .iter()
            .filter(|r| {
                r.lease_id
                    .is_none_or(|l| !outcome.revoked_leases.contains(&l))
            })
            .collect();

        let mut ids = Vec::with_capacity(writable.len());
        let mut consumers = Vec::with_capacity(writable.len());
        let mut seqs = Vec::with_capacity(writable.len());
        let mut codes = Vec::with_capacity(writable.len());
        let mut lease_ids = Vec::with_capacity(writable.len());
        let mut claimed = Vec::with_capacity(writable.len());
        let mut valid_from = Vec::with_capacity(writable.len());
        let mut expires = Vec::with_capacity(writable.len());
        let mut uses = Vec::with_capacity(writable.len());
        let mut secrets = Vec::with_capacity(writable.len());
        for r in &writable {
            ids.push(r.id);
            consumers.push(r.consumer.as_str());
            seqs.push(r.seq);
            codes.push(r.code.as_deref());
            lease_ids.push(r.lease_id);
            claimed.push(r.claimed_at);
            valid_from.push(r.valid_from);
            expires.push(r.expires_at);
            uses.push(r.uses_left);
            secrets.push(r.secret.as_slice());
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, lease_id,
                                      claimed_at, valid_from, expires_at, uses_left, secret)
                 SELECT u.id, $1, $2, u.consumer, u.seq, u.code IS NOT NULL, u.code, u.lease_id,
                        u.claimed_at, u.valid_from, u.expires_at, u.uses_left, u.secret
                 FROM unnest($3::uuid[], $4::text[], $5::int4[], $6::text[], $7::uuid[], $8::timestamptz[],
                             $9::timestamptz[], $10::timestamptz[], $11::int4[], $12::bytea[])
                      AS u(id, consumer, seq, code, lease_id, claimed_at, valid_from, expires_at, uses_left, secret)
                 ON CONFLICT DO NOTHING
                 RETURNING id",
            )
            .await?;
        let inserted = tx
            .query(
                &stmt,
                &[
                    &tenant_id,
                    &campaign_id,
                    &ids,
                    &consumers,
                    &seqs,
                    &codes,
                    &lease_ids,
                    &claimed,
                    &valid_from,
                    &expires,
                    &uses,
                    &secrets,
                ],
            )
            .await?;
        outcome.inserted = inserted.iter().map(|r| r.get(0)).collect();

        // Only when something conflicted: one more query to learn the consumers' real state.
        let conflicted: Vec<&str> = writable
            .iter()
            .filter(|r| !outcome.inserted.contains(&r.id))
            .map(|r| r.consumer.as_str())
            .collect();
        if !conflicted.is_empty() {
            let rows = tx
                .query(
                    "SELECT consumer, array_agg(seq ORDER BY seq) FROM coupons
                     WHERE campaign_id = $1 AND consumer = ANY($2) GROUP BY consumer",
                    &[&campaign_id, &conflicted],
                )
                .await?;
            outcome.consumer_seqs = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The seqs a consumer holds on a campaign (for an actor that has not seen them).
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id))]
    pub async fn consumer_seqs(
        &self,
        campaign_id: Uuid,
        consumer: &str,
    ) -> Result<Vec<i32>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq FROM coupons WHERE campaign_id = $1 AND consumer = $2 ORDER BY seq",
                &[&campaign_id, &consumer],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Uses one use of a coupon, exactly once however many requests race: the row lock
    /// serialises them and each sees the uses the previous one left.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn redeem(
        &self,
        tenant_id: Uuid,
        code: &str,
        store: Option<&str>,
        staff: Option<&str>,
    ) -> Result<RedeemOutcome, StoreError> {
        let client = self.pool.get().await?;
        let redemption_id = Uuid::new_v4();
        let row = client
            .query_opt(
                "WITH target AS (
                     SELECT id, campaign_id, uses_left, valid_from, expires_at FROM coupons
                     WHERE tenant_id = $1 AND code = $2 FOR UPDATE
                 ), used AS (
                     UPDATE coupons c SET uses_left = c.uses_left - 1 FROM target t
                     WHERE c.id = t.id AND t.uses_left > 0 AND t.valid_from <= now()
                       AND (t.expires_at IS NULL OR t.expires_at > now())
                     RETURNING c.id, c.campaign_id, c.uses_left
                 ), recorded AS (
                     INSERT INTO redemptions (id, tenant_id, campaign_id, coupon_id, store, staff)
                     SELECT $3, $1, used.campaign_id, used.id, $4, $5 FROM used
                     RETURNING redeemed_at
                 )
                 SELECT t.id, t.campaign_id, t.uses_left, t.valid_from, t.expires_at, now(),
                        (SELECT redeemed_at FROM recorded), (SELECT uses_left FROM used)
                 FROM target t",
                &[&tenant_id, &code, &redemption_id, &store, &staff],
            )
            .await?;
        let Some(row) = row else {
            return Ok(RedeemOutcome::UnknownCode);
        };
        let redeemed_at: Option<DateTime<Utc>> = row.get(6);
        Ok(match redeemed_at {
            Some(redeemed_at) => RedeemOutcome::Redeemed(RedemptionRecord {
                id: redemption_id,
                coupon_id: row.get(0),
                campaign_id: row.get(1),
                redeemed_at,
                uses_left: row.get::<_, Option<i32>>(7).unwrap_or(0),
            }),
            None => RedeemOutcome::Refused {
                uses_left: row.get(2),
                valid_from: row.get(3),
                expires_at: row.get(4),
                now: row.get(5),
            },
        })
    }

    /// Undoes a redemption within `window_secs` of it, giving the use back.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn undo_redemption(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        window_secs: f64,
    ) -> Result<UndoOutcome, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "WITH r AS (
                     SELECT id, coupon_id, redeemed_at, undone_at FROM redemptions
                     WHERE id = $1 AND tenant_id = $2 FOR UPDATE
                 ), undone AS (
                     UPDATE redemptions x SET undone_at = now() FROM r
                     WHERE x.id = r.id AND r.undone_at IS NULL AND now() - r.redeemed_at <= make_interval(secs => $3)
                     RETURNING x.coupon_id
                 ), restored AS (
                     UPDATE coupons SET uses_left = uses_left + 1 WHERE id IN (SELECT coupon_id FROM undone)
                     RETURNING id, campaign_id, uses_left
                 )
                 SELECT r.undone_at IS NOT NULL, (SELECT id FROM restored), (SELECT campaign_id FROM restored),
                        (SELECT uses_left FROM restored)
                 FROM r",
                &[&id, &tenant_id, &window_secs],
            )
            .await?;
        let Some(row) = row else {
            return Ok(UndoOutcome::NotFound);
        };
        let already: bool = row.get(0);
        let coupon: Option<Uuid> = row.get(1);
        Ok(match (already, coupon) {
            (true, _) => UndoOutcome::AlreadyUndone,
            (false, Some(coupon_id)) => UndoOutcome::Undone {
                coupon_id,
                campaign_id: row.get(2),
                uses_left: row.get(3),
            },
            (false, None) => UndoOutcome::WindowPassed,
        })
    }
}
