//! One clock for coupon validity: the database's. Nodes' clocks drift; windows judged on
//! each node's own clock would open and close at different moments. The node measures
//! its offset from the database every few seconds and applies it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::metrics::CLOCK_SKEW;
use crate::store::Store;

const SAMPLES: usize = 3;

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

    /// Measures the offset: the database time against the midpoint of the round trip.
    /// The error is at most half the round trip, so of a few samples the shortest trip
    /// wins (as NTP does); one slow trip on a busy machine does not move the clock.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn sync(&self, store: &Store) -> Result<(), crate::store::StoreError> {
        let mut sample = store.clock_sample().await?;
        for _ in 1..SAMPLES {
            let next = store.clock_sample().await?;
            if next.round_trip < sample.round_trip {
                sample = next;
            }
        }
        let half_trip = TimeDelta::from_std(sample.round_trip / 2).unwrap_or_default();
        let midpoint = sample.local_before + half_trip;
        let offset = (sample.database - midpoint).num_microseconds().unwrap_or(0);
        self.offset_us.store(offset, Ordering::Relaxed);
        // Exported as "this node minus the database", the usual sign for skew alerts.
        metrics::gauge!(CLOCK_SKEW).set(-(offset as f64) / 1e6);
        Ok(())
    }

    /// Keeps the offset fresh for as long as the process runs.
    pub fn spawn_sync(&self, store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
        let clock = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = clock.sync(&store).await {
                    tracing::warn!(error = %e, "clock sync with the database failed");
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}
