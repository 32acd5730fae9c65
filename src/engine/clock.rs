//! One clock for coupon validity: the database's. Nodes' clocks drift; windows judged on
//! each node's own clock would open and close at different moments. The node measures
//! its offset from the database every few seconds and applies it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};

use crate::metrics::CLOCK_SKEW;
use crate::store::Store;

#[derive(Clone, Default)]
pub struct Clock {
    /// Database time minus local time, in microseconds.
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    /// The database's idea of now, without asking it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    /// Measures the offset once: the database time against the midpoint of the round trip.
    pub async fn sync(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let client = store.pool().get().await?;
        let sent = Instant::now();
        let local_before = Utc::now();
        let row = client.query_one("SELECT clock_timestamp()", &[]).await?;
        let rtt = sent.elapsed();
        let db: DateTime<Utc> = row.get(0);
        let midpoint = local_before + TimeDelta::from_std(rtt / 2).unwrap_or_default();
        let offset = (db - midpoint).num_microseconds().unwrap_or(0);
        self.offset_us.store(offset, Ordering::Relaxed);
        // Exported as "this node minus the database", the usual sign for skew alerts.
        metrics::gauge!(CLOCK_SKEW).set(-(offset as f64) / 1e6);
        Ok(())
    }

    /// Keeps the offset fresh for as long as the process runs.
    pub fn spawn_sync(&self, store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
        let clock = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                if let Err(e) = clock.sync(&store).await {
                    tracing::warn!(error = %e, "clock sync with the database failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
