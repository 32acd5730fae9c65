//! This node's side of lease keeping: heart-beat this node's row so others know its leases
//! are live, reap the leases of nodes that stopped heart-beating (returning their unused
//! stock), and give back this node's own strays. Each beat costs one row update however
//! many leases the node holds; reaping costs O(nodes).

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::actor::{Adjust, SweepLeases};
use super::Shared;
use crate::metrics::{LEASES_REAPED, LEASE_UNITS_RETURNED};

/// The full sweep of this node's leases (which lists every one of them) runs every this
/// many beats: every 4 × `lease_ttl`, one minute by default. Strays whose cause is seen
/// where it happens are given back sooner, through [`LooseLeases`].
const SWEEP_EVERY_BEATS: u64 = 12;

/// Leases of this node that no actor holds any more and that must be released (again):
/// one an actor could not return when it stopped (the database was away), and one whose
/// grant's answer was lost (released at once by its actor, which may have come before the
/// grant committed, so released once more later). Released by the lease keeper.
#[derive(Default)]
pub(crate) struct LooseLeases(Mutex<Vec<Loose>>);

struct Loose {
    lease: Uuid,
    campaign: Uuid,
    due: Instant,
}

impl LooseLeases {
    /// Release `lease` of `campaign` once `after` has passed.
    pub fn add(&self, lease: Uuid, campaign: Uuid, after: Duration) {
        let due = Instant::now() + after;
        self.lock().push(Loose {
            lease,
            campaign,
            due,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Loose>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_due(&self) -> Vec<Loose> {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut *self.lock())
            .into_iter()
            .partition(|l| l.due <= now);
        self.lock().extend(later);
        due
    }
}

pub(crate) fn spawn_lease_keeper(shared: Weak<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut beats: u64 = 0;
        loop {
            let Some(s) = shared.upgrade() else { return };
            let ttl = s.settings.lease_ttl;
            if let Err(e) = s.store.heartbeat_node(s.node_id).await {
                tracing::warn!(error = %e, "node heartbeat failed");
            }
            // Reap at half the heartbeat rate; a few nodes reaping at once is harmless.
            if beats % 2 == 1 {
                reap(&s).await;
                release_loose(&s).await;
            }
            if beats % SWEEP_EVERY_BEATS == SWEEP_EVERY_BEATS - 1 {
                sweep_own_leases(&s).await;
            }
            s.check_codes.prune();
            beats += 1;
            drop(s);
            tokio::time::sleep(ttl / 3).await;
        }
    })
}

async fn reap(s: &Shared) {
    match s.store.reap_leases(s.settings.lease_ttl).await {
        Ok(reaped) => {
            for lease in &reaped {
                tracing::info!(lease = %lease.lease_id, campaign = %lease.campaign_id,
                    returned = lease.returned, "reaped the lease of a silent node");
                metrics::counter!(LEASES_REAPED).increment(1);
                metrics::counter!(LEASE_UNITS_RETURNED).increment(lease.returned.max(0) as u64);
                if let Some(addr) = s.directory.running_for_change(lease.campaign_id) {
                    addr.do_send(Adjust::reload());
                }
                s.notifier.add(Uuid::nil(), lease.campaign_id, 0, 0, true);
            }
        }
        Err(e) => tracing::warn!(error = %e, "lease reaper failed"),
    }
}

/// Releases the loose leases that are due. At the first the database cannot be asked
/// about, the rest wait for the next round: the heartbeat must not wait behind them.
async fn release_loose(s: &Shared) {
    let mut due = s.loose_leases.take_due().into_iter();
    while let Some(loose) = due.next() {
        if release_stray(s, loose.lease, loose.campaign).await.is_err() {
            for l in std::iter::once(loose).chain(due) {
                s.loose_leases.add(l.lease, l.campaign, Duration::ZERO);
            }
            return;
        }
    }
}

/// Nobody reaps the leases of a live node, so this node gives back its own strays: leases
/// of campaigns with no actor here (one stopped while the database was away, or crashed,
/// and no claim started a successor), and, through each running actor, leases it does not
/// hold (a lease request whose reply was lost). Releasing counts coupons, so a stray
/// released twice is harmless. This lists every live lease of the node, so it runs only
/// every [`SWEEP_EVERY_BEATS`] beats: the causes it exists for are rare, and the common
/// ones are also handled sooner where they happen.
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
            let _ = release_stray(s, lease, campaign).await;
        }
    }
}

/// Releases a lease no actor of this node holds. Err: the database could not be asked.
async fn release_stray(s: &Shared, lease: Uuid, campaign: Uuid) -> Result<(), ()> {
    match s.store.release_lease(campaign, lease).await {
        Ok(returned) if returned > 0 => {
            tracing::info!(%lease, %campaign, returned, "released a stray lease of this node");
            metrics::counter!(LEASE_UNITS_RETURNED).increment(returned as u64);
            s.notifier.add(Uuid::nil(), campaign, 0, 0, true);
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, %lease, "cannot release a stray lease");
            Err(())
        }
    }
}

/// A graceful stop, once the actors have returned what they could: every lease of this
/// node still live goes back in one transaction (other nodes re-ask a campaign they
/// believe sold out within a second), and the node's row goes. What the database could not
/// take now is reaped after one ttl.
pub(crate) async fn leave(s: &Shared) {
    match s.store.release_node_leases(s.node_id).await {
        Ok(released) => {
            let returned: i64 = released.iter().map(|r| r.returned.max(0)).sum();
            metrics::counter!(LEASE_UNITS_RETURNED).increment(returned as u64);
            if !released.is_empty() {
                tracing::info!(
                    leases = released.len(),
                    returned,
                    "returned the leases this node's actors could not"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot return this node's leases; the reaper will"),
    }
    if let Err(e) = s.store.forget_node(s.node_id).await {
        tracing::warn!(error = %e, "cannot remove this node's heartbeat row; the reaper will");
    }
}
