//! What is looked at rather than counted where it happens: the database pool and the
//! process at each scrape; readiness, the database, leases held, the last backup and disk
//! every [`EVERY`]; sold-out campaigns from the engine's event bus.
//!
//! The only part of `metrics` that reads the store and the engine; the rest is a leaf
//! every module may use.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::gauge;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::*;
use crate::config::Settings;
use crate::engine::events::EngineEvent;
use crate::engine::Engine;
use crate::store::Store;

/// How often the database-backed gauges are refreshed.
pub const EVERY: Duration = Duration::from_secs(5);
/// A probe slower than this counts as a failure (the database is "down" for us).
const PROBE_TIMEOUT: Duration = Duration::from_secs(4);

/// Refreshes what is cheap to read at scrape time (pool and process), so a scrape shows
/// the present rather than the last tick.
pub fn at_scrape(store: &Store) {
    let status = store.pool_status();
    gauge!(DB_POOL_MAX).set(status.max_size as f64);
    gauge!(DB_POOL_OPEN).set(status.size as f64);
    gauge!(DB_POOL_IN_USE).set(status.size.saturating_sub(status.available) as f64);
    gauge!(DB_POOL_WAITING).set(status.waiting as f64);
    process().collect();
}

/// CPU, memory, descriptors, threads and start time (`process_*`, as Go clients name them).
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// The background samplers of one running application; stopped when dropped.
pub struct Sampler {
    tasks: Vec<JoinHandle<()>>,
}

impl Sampler {
    pub fn start(store: Store, engine: &Engine, settings: &Settings) -> Sampler {
        gauge!(QUEUE_CAPACITY).set(settings.engine.max_queued_claims as f64);
        at_scrape(&store);
        let node = engine.node_id();
        let data_dir = settings.data_dir.clone();
        let probe = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sample(&store, node, &data_dir).await;
            }
        });
        let sold_out = tokio::spawn(track_sold_out(engine.subscribe()));
        Sampler {
            tasks: vec![probe, sold_out],
        }
    }

    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn sample(store: &Store, node: Uuid, data_dir: &Path) {
    let ready = matches!(
        tokio::time::timeout(PROBE_TIMEOUT, store.readiness()).await,
        Ok(Ok(()))
    );
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
    match tokio::time::timeout(PROBE_TIMEOUT, store.observe(node)).await {
        Ok(Ok(seen)) => {
            gauge!(DB_UP).set(1.0);
            gauge!(LEASES_HELD).set(seen.leases_held as f64);
            gauge!(DB_SIZE).set(seen.database_bytes as f64);
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "database probe failed");
            gauge!(DB_UP).set(0.0);
        }
        Err(_) => gauge!(DB_UP).set(0.0),
    }
    // From the database, so every node tells the same time, from start-up on, whichever
    // node made the backup.
    if let Ok(Ok(Some(at))) = tokio::time::timeout(PROBE_TIMEOUT, store.last_backup_success()).await
    {
        backup_succeeded(at.timestamp_millis() as f64 / 1000.0);
    }
    if let Some((free, size)) = disk_space(data_dir.to_path_buf()).await {
        gauge!(DATA_DIR_FREE).set(free);
        gauge!(DATA_DIR_SIZE).set(size);
    }
}

/// (free for unprivileged users, total) bytes of the file system holding `dir`.
async fn disk_space(dir: PathBuf) -> Option<(f64, f64)> {
    tokio::task::spawn_blocking(move || {
        let fs = nix::sys::statvfs::statvfs(&dir).ok()?;
        let unit = fs.fragment_size() as f64;
        Some((
            fs.blocks_available() as f64 * unit,
            fs.blocks() as f64 * unit,
        ))
    })
    .await
    .ok()
    .flatten()
}

/// Keeps `ecoupon_campaigns_sold_out`: a campaign counts from a batch that leaves it no
/// stock until its row changes (limit raised, paused, ended) or a batch shows stock again.
async fn track_sold_out(mut events: broadcast::Receiver<Arc<EngineEvent>>) {
    let mut sold_out: HashSet<Uuid> = HashSet::new();
    loop {
        let changed = match events.recv().await {
            Ok(event) => match &*event {
                EngineEvent::Counters {
                    campaign_id,
                    remaining,
                    ..
                } if *remaining <= 0 => sold_out.insert(*campaign_id),
                EngineEvent::Counters { campaign_id, .. }
                | EngineEvent::CampaignChanged { campaign_id, .. } => sold_out.remove(campaign_id),
                EngineEvent::Remote(change) if change.changed => {
                    sold_out.remove(&change.campaign_id)
                }
                _ => false,
            },
            Err(RecvError::Lagged(_)) => false,
            Err(RecvError::Closed) => return,
        };
        if changed {
            gauge!(SOLD_OUT).set(sold_out.len() as f64);
        }
    }
}
