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
