//! The connection pool, timed: every wait for a connection lands in
//! `ecoupon_db_pool_wait_seconds`. Everything else is deadpool's [`Pool`] as it is.

use std::time::Instant;

use deadpool_postgres::{Object, Pool, PoolError, Status};

use super::Store;

#[derive(Clone)]
pub(super) struct TimedPool(Pool);

impl From<Pool> for TimedPool {
    fn from(pool: Pool) -> Self {
        TimedPool(pool)
    }
}

impl TimedPool {
    /// A pooled connection, after waiting for one (and connecting, when the pool grows).
    pub async fn get(&self) -> Result<Object, PoolError> {
        let started = Instant::now();
        let got = self.0.get().await;
        metrics::histogram!(crate::metrics::DB_POOL_WAIT).record(started.elapsed().as_secs_f64());
        got
    }
}

impl std::ops::Deref for TimedPool {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

impl Store {
    /// The pool's size, idle connections and waiters, for the pool gauges.
    pub fn pool_status(&self) -> Status {
        self.pool.status()
    }
}

/// Runs `stmt` in its own transaction that commits without waiting for the WAL flush,
/// sent as one pipeline: BEGIN, the statement and COMMIT go out before any answer comes
/// back. (If the statement fails, the COMMIT rolls back.) For writes whose loss in a crash
/// is harmless or covered by a later durable commit (WAL is flushed in order).
pub(super) async fn lazily_committed(
    client: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, super::StoreError> {
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
