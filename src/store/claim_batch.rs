//! The hot path's write: claim batches, of one campaign or of many, as one multi-row insert
//! that is its own transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{Store, StoreError};

/// An API request's `Idempotency-Key`, written in the same statement as its claim's row
/// (so a keyed claim costs no transaction of its own): the row in `idempotency_keys`
/// names the coupon, whose answer a retry is given.
#[derive(Debug)]
pub struct ClaimKey {
    pub api_key_id: Uuid,
    pub key: String,
    /// sha256 of the request (method, path, body): a retry must match it.
    pub request_hash: Vec<u8>,
}

impl ClaimKey {
    /// A node-local fingerprint of (API key, key), for "is this key in flight here?".
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.api_key_id.hash(&mut h);
        self.key.hash(&mut h);
        h.finish()
    }

    /// The same (API key, key), whatever the request.
    pub fn same_key(&self, other: &ClaimKey) -> bool {
        self.api_key_id == other.api_key_id && self.key == other.key
    }
}

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
    /// The API request's idempotency key, stored with the row.
    pub key: Option<Arc<ClaimKey>>,
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
    /// Rows not written because their idempotency key was already used: the retry is
    /// answered from the key's first request.
    pub key_taken: HashSet<Uuid>,
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

    /// Refused because another transaction committed one of the batch's idempotency keys
    /// after this statement began (a duplicate request on another node): sent again, the
    /// statement sees the key and leaves that claim out.
    pub fn key_race(&self) -> bool {
        matches!(self, BatchFailure::NotWritten(e)
            if matches!(&**e, StoreError::Db(db) if db.as_db_error().is_some_and(|d|
                d.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
                    && d.constraint() == Some("idempotency_keys_pkey"))))
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
    key_api_keys: Vec<Option<Uuid>>,
    key_names: Vec<Option<&'a str>>,
    key_hashes: Vec<Option<&'a [u8]>>,
    keyed: bool,
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
            ..Columns::default()
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
        c.keyed = batches
            .iter()
            .any(|b| b.rows.iter().any(|r| r.key.is_some()));
        if c.keyed {
            for r in batches.iter().flat_map(|b| b.rows) {
                let key = r.key.as_deref();
                c.key_api_keys.push(key.map(|k| k.api_key_id));
                c.key_names.push(key.map(|k| k.key.as_str()));
                c.key_hashes.push(key.map(|k| k.request_hash.as_slice()));
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
///
/// A batch with idempotency keys uses the keyed form (see [`INSERT_KEYED_BATCHES`]); the
/// two differ only in the key parts, which this macro splices in.
macro_rules! insert_batches {
    ($taken:literal, $not_taken:literal, $keyed:literal, $answer_taken:literal) => {
        concat!(
            "WITH live AS (
    SELECT id FROM campaign_leases
    WHERE id = ANY($13::uuid[]) AND released_at IS NULL
    ORDER BY id
    FOR KEY SHARE
 ), ",
            $taken,
            "written AS (
    INSERT INTO coupons (id, tenant_id, campaign_id, consumer, seq, won, code, lease_id,
                         claimed_at, valid_from, expires_at, uses_left, secret)
    SELECT u.id, u.tenant_id, u.campaign_id, u.consumer, u.seq, u.code IS NOT NULL, u.code, u.lease_id,
           u.claimed_at, u.valid_from, u.expires_at, u.uses_left, u.secret
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::int4[], $6::text[], $7::uuid[],
                $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::int4[], $12::bytea[])
         AS u(tenant_id, campaign_id, id, consumer, seq, code, lease_id, claimed_at, valid_from,
              expires_at, uses_left, secret)
    WHERE (u.lease_id IS NULL OR u.lease_id IN (SELECT id FROM live))",
            $not_taken,
            "
    ON CONFLICT DO NOTHING
    RETURNING id, tenant_id, campaign_id, consumer, code, claimed_at, expires_at, uses_left
 ), ",
            $keyed,
            "hooked AS (
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
 SELECT 'l', id FROM live",
            $answer_taken
        )
    };
}

const INSERT_BATCHES: &str = insert_batches!("", "", "", "");

/// The keyed form: a row whose key is already in `idempotency_keys` (a retry, or another
/// request's key) is left out and answered 'd'; every written row's key is inserted in
/// the same transaction, pointing at its coupon. That insert has no ON CONFLICT on
/// purpose: a duplicate that another node commits after this statement's snapshot makes it
/// a unique violation, which rolls the whole statement back, so one key never has two
/// effects (the committer then sends the batch again, and it sees the key as taken).
/// Expired keys count as taken too: the handler removes them before it claims.
const INSERT_KEYED_BATCHES: &str = insert_batches!(
    "taken AS (
    SELECT k.id
    FROM unnest($3::uuid[], $14::uuid[], $15::text[]) AS k(id, api_key_id, key)
    WHERE k.key IS NOT NULL AND EXISTS (
        SELECT 1 FROM idempotency_keys i WHERE i.api_key_id = k.api_key_id AND i.key = k.key)
 ), ",
    " AND u.id NOT IN (SELECT id FROM taken)",
    "keyed AS (
    INSERT INTO idempotency_keys (api_key_id, key, request_hash, unsettled_id, unsettled_at)
    SELECT k.api_key_id, k.key, k.request_hash, w.id, now()
    FROM written w
    JOIN unnest($3::uuid[], $14::uuid[], $15::text[], $16::bytea[])
         AS k(id, api_key_id, key, request_hash) ON k.id = w.id
    WHERE k.key IS NOT NULL
 ), ",
    "
 UNION ALL
 SELECT 'd', id FROM taken"
);

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
            .prepare_cached(if c.keyed {
                INSERT_KEYED_BATCHES
            } else {
                INSERT_BATCHES
            })
            .await
            .map_err(BatchFailure::not_written)?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
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
        ];
        if c.keyed {
            params.extend_from_slice(&[&c.key_api_keys, &c.key_names, &c.key_hashes]);
        }
        let answer = client.query(&stmt, &params).await.map_err(|e| {
            if e.as_db_error().is_some() {
                BatchFailure::not_written(e)
            } else {
                BatchFailure::unknown(e)
            }
        })?;
        let mut inserted = HashSet::with_capacity(answer.len());
        let mut live = HashSet::new();
        let mut taken = HashSet::new();
        for row in &answer {
            let kind: &str = row.get(0);
            let id: Uuid = row.get(1);
            match kind {
                "c" => inserted.insert(id),
                "d" => taken.insert(id),
                _ => live.insert(id),
            };
        }

        let mut outcomes: Vec<BatchOutcome> = Vec::with_capacity(batches.len());
        // Rows that hit the per-consumer index, as (campaign, consumer).
        let mut conflicted: (Vec<Uuid>, Vec<&str>) = Default::default();
        for b in batches {
            let mut outcome = BatchOutcome::default();
            for r in b.rows {
                match r.lease_id {
                    _ if taken.contains(&r.id) => {
                        outcome.key_taken.insert(r.id);
                    }
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
