//! This node's side of lease keeping: heart-beat our leases so others know we are alive,
//! and reap the leases of nodes that stopped heart-beating, returning their unused stock.

use std::sync::Weak;

use super::actor::Adjust;
use super::Shared;
use crate::metrics::{LEASES_REAPED, LEASE_UNITS_RETURNED};

pub(crate) fn spawn_lease_keeper(shared: Weak<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut beats: u64 = 0;
        loop {
            let Some(s) = shared.upgrade() else { return };
            let ttl = s.settings.lease_ttl;
            if let Err(e) = s.store.heartbeat_leases(s.node_id).await {
                tracing::warn!(error = %e, "lease heartbeat failed");
            }
            // Reap at half the heartbeat rate; a few nodes reaping at once is harmless.
            if beats % 2 == 1 {
                match s.store.reap_leases(ttl).await {
                    Ok(reaped) => {
                        for lease in &reaped {
                            tracing::info!(lease = %lease.lease_id, campaign = %lease.campaign_id,
                                returned = lease.returned, "reaped the lease of a silent node");
                            metrics::counter!(LEASES_REAPED).increment(1);
                            metrics::counter!(LEASE_UNITS_RETURNED)
                                .increment(lease.returned.max(0) as u64);
                            if let Some(addr) = s.directory.running(lease.campaign_id) {
                                addr.do_send(Adjust::reload());
                            }
                            s.notifier
                                .add(uuid::Uuid::nil(), lease.campaign_id, 0, 0, true);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
                }
            }
            s.check_codes.prune();
            beats += 1;
            drop(s);
            tokio::time::sleep(ttl / 3).await;
        }
    })
}
