//! This node's side of lease keeping: heart-beat our leases so others know we are alive,
//! and reap the leases of nodes that stopped heart-beating, returning their unused stock.

use std::sync::Weak;

use std::collections::HashMap;

use uuid::Uuid;

use super::actor::{Adjust, SweepLeases};
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
                            s.notifier.add(Uuid::nil(), lease.campaign_id, 0, 0, true);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
                }
                sweep_own_leases(&s).await;
            }
            s.check_codes.prune();
            beats += 1;
            drop(s);
            tokio::time::sleep(ttl / 3).await;
        }
    })
}

/// Nobody reaps the leases of a live node, so this node gives back its own strays: leases
/// of campaigns with no actor here (one stopped while the database was away, and could not
/// return them), and, through each running actor, leases it does not hold (a lease request
/// whose reply was lost). Releasing counts coupons, so a stray released twice is harmless.
async fn sweep_own_leases(s: &Shared) {
    let leases = match s.store.all_node_leases(s.node_id).await {
        Ok(leases) => leases,
        Err(e) => return tracing::warn!(error = %e, "cannot list this node's leases"),
    };
    let mut by_campaign: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (lease, campaign) in leases {
        by_campaign.entry(campaign).or_default().push(lease);
    }
    for (campaign, leases) in by_campaign {
        if let Some(addr) = s.directory.running(campaign) {
            addr.do_send(SweepLeases(leases));
            continue;
        }
        for lease in leases {
            match s.store.release_lease(lease).await {
                Ok(returned) if returned > 0 => {
                    tracing::info!(%lease, %campaign, returned, "released a stray lease of this node");
                    metrics::counter!(LEASE_UNITS_RETURNED).increment(returned as u64);
                    s.notifier.add(Uuid::nil(), campaign, 0, 0, true);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, %lease, "cannot release a stray lease"),
            }
        }
    }
}
