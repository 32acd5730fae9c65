//! Idempotency keys (`idempotency_keys`): the first request with a key claims the row, runs,
//! and stores its answer; retries compare request hashes and replay that answer.
//!
//! Claiming a key, recording the answer and freeing a key commit without waiting for their
//! WAL flush (`synchronous_commit = off` for that transaction only), in one round trip.
//! Waiting would cost every keyed claim two more flushes than the claim's own, and the
//! flush is what limits the claim rate. What makes this safe: WAL is flushed in order, so
//! when the claim's batch commits (durably, before its answer goes out) the key claimed
//! before it is flushed with it. A crash can lose only rows about requests whose effect was
//! not yet durable (the key is then free again, and a retry runs), or an answer recorded
//! after it (the key is then left in use, as if the crash had come during the request).

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

use super::{Store, StoreError};

/// Runs `stmt` in its own transaction that commits without waiting for the WAL flush,
/// sent as one pipeline: BEGIN, the statement and COMMIT go out before any answer comes
/// back. (If the statement fails, the COMMIT rolls back.)
async fn lazily_committed(
    client: &Client,
    stmt: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let (begin, rows, commit) = futures_util::join!(
        client.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
        client.query(stmt, params),
        client.batch_execute("COMMIT"),
    );
    begin?;
    let rows = rows?;
    commit?;
    Ok(rows)
}

/// What a request carrying an idempotency key should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// This request holds the key: run it, then [`Store::finish_idempotent`].
    Started,
    /// The key's first request finished: answer what it answered.
    Replay { status: i16, body: Vec<u8> },
    /// The key was used for a different request.
    Reused,
    /// The key's first request is still running.
    InUse,
    /// The key's first request was a claim whose answer was lost: it may have been
    /// written under coupon id `id`. `settled`: long enough ago that a write still in
    /// flight can no longer land, so a coupon absent now never will be.
    Unsettled { id: Uuid, settled: bool },
}

/// Rows purged per opportunistic sweep: small, so no request waits long on it.
const PURGE_BATCH: i64 = 1000;

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
            .prepare_cached(
                "INSERT INTO idempotency_keys (api_key_id, key, request_hash)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (api_key_id, key) DO UPDATE
                    SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL,
                        created_at = now(), unsettled_id = NULL, unsettled_at = NULL
                    WHERE idempotency_keys.created_at < now() - interval '24 hours'
                 RETURNING 1",
            )
            .await?;
        let claimed =
            lazily_committed(&client, &claim, &[&api_key_id, &key, &request_hash]).await?;
        if !claimed.is_empty() {
            return Ok(IdempotencyBegin::Started);
        }
        let look = client
            .prepare_cached(
                "SELECT request_hash, status, body, unsettled_id,
                        unsettled_at < now() - make_interval(secs => $3)
                 FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
            )
            .await?;
        let row = client
            .query_opt(&look, &[&api_key_id, &key, &settle_after.as_secs_f64()])
            .await?;
        // Gone between the two statements (abandoned by a failed first request): the
        // caller may simply try again, which is what a 409 tells it.
        let Some(row) = row else {
            return Ok(IdempotencyBegin::InUse);
        };
        let stored_hash: Vec<u8> = row.get(0);
        if stored_hash != request_hash {
            return Ok(IdempotencyBegin::Reused);
        }
        match (
            row.get::<_, Option<i16>>(1),
            row.get::<_, Option<Vec<u8>>>(2),
        ) {
            (Some(status), body) => Ok(IdempotencyBegin::Replay {
                status,
                body: body.unwrap_or_default(),
            }),
            (None, _) => match row.get::<_, Option<Uuid>>(3) {
                Some(id) => Ok(IdempotencyBegin::Unsettled {
                    id,
                    settled: row.get::<_, Option<bool>>(4).unwrap_or(false),
                }),
                None => Ok(IdempotencyBegin::InUse),
            },
        }
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

    /// Keeps the key of a request whose answer was lost, with the id its effect would
    /// have, instead of freeing it: see [`IdempotencyBegin::Unsettled`].
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn unsettle_idempotent(
        &self,
        api_key_id: Uuid,
        key: &str,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE idempotency_keys SET unsettled_id = $3, unsettled_at = now()
                 WHERE api_key_id = $1 AND key = $2 AND status IS NULL",
                &[&api_key_id, &key, &id],
            )
            .await?;
        Ok(())
    }

    /// Takes over a settled key whose lost request left nothing, to run it again. Of
    /// concurrent retries exactly one gets `true`; the others find the key in use.
    #[tracing::instrument(level = "debug", skip_all, fields(api_key_id = %api_key_id))]
    pub async fn rerun_unsettled(
        &self,
        api_key_id: Uuid,
        key: &str,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE idempotency_keys SET unsettled_id = NULL, unsettled_at = NULL
                 WHERE api_key_id = $1 AND key = $2 AND status IS NULL AND unsettled_id = $3",
                &[&api_key_id, &key, &id],
            )
            .await?;
        Ok(n == 1)
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
