//! Idempotency keys (`idempotency_keys`): the first request with a key claims the row, runs,
//! and stores its answer; retries compare request hashes and replay that answer.
//!
//! Claims are the exception, for speed: a keyed claim's key is inserted by the claim's own
//! batch statement (`store::claim_batch`), pointing at its coupon (`unsettled_id`), and a
//! retry's answer is rendered from that coupon. Here they only look keys up, record a
//! refusal, and fence a claim whose answer was lost.
//!
//! The other writes here commit without waiting for their WAL flush (`synchronous_commit =
//! off` for that transaction only), in one round trip. Waiting would cost every keyed
//! request two more flushes than its own effect's. What makes this safe: WAL is flushed in
//! order, so when the effect commits (durably, before its answer goes out) the key claimed
//! before it is flushed with it. A crash can lose only rows about requests whose effect was
//! not yet durable (the key is then free again, and a retry runs), or an answer recorded
//! after it (the key is then left in use, as if the crash had come during the request).

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{lazily_committed, Store, StoreError};

/// What a key's row says about a request that reuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The key's first request finished: answer what it answered.
    Replay { status: i16, body: Vec<u8> },
    /// The key was used for a different request.
    Reused,
    /// The key's first request is still running.
    InUse,
    /// The key's first request was a claim, written (or, if its answer was lost, perhaps
    /// written) as coupon `id`: its answer is that coupon's. `settled`: long enough ago
    /// that a write still in flight can no longer land, so a coupon absent now never will.
    Claimed { id: Uuid, settled: bool },
    /// Over 24 hours old: the key is free again once the row is dropped.
    Expired,
}

/// What a request carrying an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request holds the key: run it, then [`Store::finish_idempotent`].
    Started,
    /// The key was used before.
    Used(KeyState),
}

/// Reads a key's row (its columns from `at`: request_hash, status, body, unsettled_id,
/// settled, expired) as what it says to a request with `request_hash`.
pub(super) fn key_state(row: &Row, at: usize, request_hash: &[u8]) -> KeyState {
    if row.get::<_, bool>(at + 5) {
        return KeyState::Expired;
    }
    let stored_hash: &[u8] = row.get(at);
    if stored_hash != request_hash {
        return KeyState::Reused;
    }
    match (
        row.get::<_, Option<i16>>(at + 1),
        row.get::<_, Option<Uuid>>(at + 3),
    ) {
        (Some(status), _) => KeyState::Replay {
            status,
            body: row.get::<_, Option<Vec<u8>>>(at + 2).unwrap_or_default(),
        },
        (None, Some(id)) => KeyState::Claimed {
            id,
            settled: row.get::<_, Option<bool>>(at + 4).unwrap_or(false),
        },
        (None, None) => KeyState::InUse,
    }
}

/// Rows purged per opportunistic sweep: small, so no request waits long on it.
const PURGE_BATCH: i64 = 1000;

/// A row that is over 24 hours old (or older rows' conflict) is taken over as new.
const TAKE_OVER_EXPIRED: &str = "ON CONFLICT (api_key_id, key) DO UPDATE
    SET request_hash = EXCLUDED.request_hash, status = EXCLUDED.status, body = EXCLUDED.body,
        created_at = now(), unsettled_id = EXCLUDED.unsettled_id, unsettled_at = EXCLUDED.unsettled_at
    WHERE idempotency_keys.created_at < now() - interval '24 hours'
 RETURNING 1";

impl Store {
    /// Claims `key` for this request, or reports what it was used for. An expired row (over
    /// 24 hours old) is taken over as if it did not exist. Concurrent first requests
    /// serialise on the primary key: exactly one gets `Started`.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn begin_idempotent(
        &self,
        api_key_id: Uuid,
        key: &str,
        request_hash: &[u8],
        settle_after: std::time::Duration,
    ) -> Result<IdempotencyBegin, StoreError> {
        let client = self.pool.get().await?;
        let claim = client
            .prepare_cached(&format!(
                "INSERT INTO idempotency_keys (api_key_id, key, request_hash) VALUES ($1, $2, $3)
                 {TAKE_OVER_EXPIRED}"
            ))
            .await?;
        let claimed =
            lazily_committed(&client, &claim, &[&api_key_id, &key, &request_hash]).await?;
        if !claimed.is_empty() {
            return Ok(IdempotencyBegin::Started);
        }
        drop(client);
        // Gone between the two statements (abandoned by a failed first request): the
        // caller may simply try again, which is what a 409 tells it.
        let state = self
            .idempotency_key_state(api_key_id, key, request_hash, settle_after)
            .await?
            .unwrap_or(KeyState::InUse);
        Ok(IdempotencyBegin::Used(state))
    }

    /// What the key was used for, if it was: a read, no transaction. `settle_after`: how
    /// long after a claim's answer was lost its write can no longer land.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn idempotency_key_state(
        &self,
        api_key_id: Uuid,
        key: &str,
        request_hash: &[u8],
        settle_after: std::time::Duration,
    ) -> Result<Option<KeyState>, StoreError> {
        let client = self.pool.get().await?;
        let look = client
            .prepare_cached(
                "SELECT request_hash, status, body, unsettled_id,
                        unsettled_at < now() - make_interval(secs => $3),
                        created_at < now() - interval '24 hours'
                 FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
            )
            .await?;
        let row = client
            .query_opt(&look, &[&api_key_id, &key, &settle_after.as_secs_f64()])
            .await?;
        Ok(row.map(|row| key_state(&row, 0, request_hash)))
    }

    /// Stores the first request's answer for replay.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn finish_idempotent(
        &self,
        api_key_id: Uuid,
        key: &str,
        status: i16,
        body: &[u8],
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "UPDATE idempotency_keys SET status = $3, body = $4
                 WHERE api_key_id = $1 AND key = $2 AND status IS NULL",
            )
            .await?;
        lazily_committed(&client, &stmt, &[&api_key_id, &key, &status, &body]).await?;
        Ok(())
    }

    /// Stores an answer under a key nobody holds (a claim the engine refused): `false` if
    /// the key is taken, and the caller answers what it holds instead.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn record_idempotent(
        &self,
        api_key_id: Uuid,
        key: &str,
        request_hash: &[u8],
        status: i16,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(&format!(
                "INSERT INTO idempotency_keys (api_key_id, key, request_hash, status, body)
                 VALUES ($1, $2, $3, $4, $5) {TAKE_OVER_EXPIRED}"
            ))
            .await?;
        let params: [&(dyn ToSql + Sync); 5] = [&api_key_id, &key, &request_hash, &status, &body];
        Ok(!lazily_committed(&client, &stmt, &params).await?.is_empty())
    }

    /// Holds the key of a claim whose answer was lost, naming the coupon id it was sent
    /// under, unless its batch already wrote the key. The batch's own insert of the key
    /// then fails on this row if it runs later, so the lost write can no longer land.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn fence_idempotent(
        &self,
        api_key_id: Uuid,
        key: &str,
        request_hash: &[u8],
        coupon_id: Uuid,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO idempotency_keys (api_key_id, key, request_hash, unsettled_id, unsettled_at)
                 VALUES ($1, $2, $3, $4, now())
                 ON CONFLICT (api_key_id, key) DO NOTHING",
            )
            .await?;
        let params: [&(dyn ToSql + Sync); 4] = [&api_key_id, &key, &request_hash, &coupon_id];
        lazily_committed(&client, &stmt, &params).await?;
        Ok(())
    }

    /// Frees a key whose request changed nothing and should be retried (a 5xx or 429), so
    /// the retry runs instead of replaying the failure.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn abandon_idempotent(&self, api_key_id: Uuid, key: &str) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM idempotency_keys
                 WHERE api_key_id = $1 AND key = $2 AND status IS NULL",
            )
            .await?;
        lazily_committed(&client, &stmt, &[&api_key_id, &key]).await?;
        Ok(())
    }

    /// Drops a key that no longer means anything, so the request runs afresh: an expired
    /// one, or (`claimed`) one naming a coupon that was never written and now never will
    /// be. Of concurrent callers exactly one gets `true`.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn drop_stale_idempotency_key(
        &self,
        api_key_id: Uuid,
        key: &str,
        claimed: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "DELETE FROM idempotency_keys
                 WHERE api_key_id = $1 AND key = $2
                   AND (created_at < now() - interval '24 hours'
                        OR (status IS NULL AND unsettled_id = $3))
                 RETURNING 1",
            )
            .await?;
        let rows = lazily_committed(&client, &stmt, &[&api_key_id, &key, &claimed]).await?;
        Ok(!rows.is_empty())
    }

    /// Deletes up to a batch of keys older than 24 hours; returns how many went.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn purge_idempotency_keys(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "DELETE FROM idempotency_keys WHERE ctid IN (
                    SELECT ctid FROM idempotency_keys
                    WHERE created_at < now() - interval '24 hours' LIMIT $1)",
                &[&PURGE_BATCH],
            )
            .await?;
        Ok(n)
    }
}
