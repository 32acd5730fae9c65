//! What happened, for whoever watches: the local event bus (dashboards subscribe), and
//! Postgres LISTEN/NOTIFY so other nodes hear about this node's claims and redemptions.
//!
//! NOTIFY is coalesced per campaign to at most one per [`NOTIFY_EVERY`] (10/s), however
//! fast claims come: a notification carries the counts since the previous one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::store::{Store, StoreError};

pub const NOTIFY_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    /// A campaign's counters as this node's actor knows them, after a batch commits.
    Counters {
        tenant_id: Uuid,
        campaign_id: Uuid,
        issued: i64,
        redeemed: i64,
        remaining: i64,
    },
    /// Coupons of one committed batch.
    Claimed {
        tenant_id: Uuid,
        campaign_id: Uuid,
        coupons: Vec<ClaimedCoupon>,
    },
    Redeemed {
        tenant_id: Uuid,
        campaign_id: Uuid,
        coupon_id: Uuid,
        redemption_id: Uuid,
        redeemed_at: DateTime<Utc>,
        uses_left: i32,
    },
    RedemptionUndone {
        tenant_id: Uuid,
        campaign_id: Uuid,
        coupon_id: Uuid,
        redemption_id: Uuid,
        uses_left: i32,
    },
    /// The campaign row was changed on this node (status, limit, fields).
    CampaignChanged {
        tenant_id: Uuid,
        campaign_id: Uuid,
        status: crate::domain::campaign::CampaignStatus,
    },
    /// Another node's activity, from LISTEN/NOTIFY.
    Remote(RemoteChange),
}

#[derive(Debug, Clone, Serialize)]
pub struct ClaimedCoupon {
    pub coupon_id: Uuid,
    pub claimed_at: DateTime<Utc>,
}

/// The NOTIFY payload. Deltas since the sender's previous notification.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RemoteChange {
    pub node: Uuid,
    pub tenant_id: Uuid,
    pub campaign_id: Uuid,
    pub issued: i64,
    pub redeemed: i64,
    /// The campaign row changed (status, limit) or stock came back: reload.
    pub changed: bool,
    /// Redemptions made since the previous notification, for other nodes' dashboard
    /// feeds; at most [`FEED_PER_NOTIFY`] (the counts above stay exact beyond that).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redemptions: Vec<Uuid>,
}

/// Keeps a NOTIFY well under Postgres's 8,000-byte payload limit.
pub const FEED_PER_NOTIFY: usize = 40;

/// Local fan-out. Bounded: a subscriber that falls behind loses the oldest events (and
/// is told so by `RecvError::Lagged`), it never makes the engine wait or grow.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<EngineEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(4096).0,
        }
    }
}

impl EventBus {
    pub fn publish(&self, event: EngineEvent) {
        // No subscriber is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EngineEvent>> {
        self.tx.subscribe()
    }
}

/// Collects this node's changes and sends them as coalesced NOTIFYs.
#[derive(Clone)]
pub struct Notifier {
    node: Uuid,
    pending: Arc<Mutex<HashMap<Uuid, RemoteChange>>>,
}

impl Notifier {
    pub fn new(node: Uuid) -> Notifier {
        Notifier {
            node,
            pending: Arc::default(),
        }
    }

    pub fn add(
        &self,
        tenant_id: Uuid,
        campaign_id: Uuid,
        issued: i64,
        redeemed: i64,
        changed: bool,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.entry(campaign_id).or_insert_with(|| RemoteChange {
            node: self.node,
            tenant_id,
            campaign_id,
            ..RemoteChange::default()
        });
        entry.issued += issued;
        entry.redeemed += redeemed;
        entry.changed |= changed;
    }

    /// A redemption for other nodes' feeds (its count goes through [`Notifier::add`]).
    pub fn redeemed(&self, tenant_id: Uuid, campaign_id: Uuid, redemption_id: Uuid) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let entry = pending.entry(campaign_id).or_insert_with(|| RemoteChange {
            node: self.node,
            tenant_id,
            campaign_id,
            ..RemoteChange::default()
        });
        if entry.redemptions.len() < FEED_PER_NOTIFY {
            entry.redemptions.push(redemption_id);
        }
    }

    fn take(&self) -> Vec<RemoteChange> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.drain().map(|(_, v)| v).collect()
    }

    pub fn spawn(&self, store: Store) -> tokio::task::JoinHandle<()> {
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(NOTIFY_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                notifier.flush(&store).await;
            }
        })
    }

    /// Sends what is pending now (also called on shutdown).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn flush(&self, store: &Store) {
        let changes = self.take();
        if changes.is_empty() {
            return;
        }
        let payloads: Vec<String> = changes
            .iter()
            .filter_map(|c| serde_json::to_string(c).ok())
            .collect();
        if let Err(e) = store.notify(&payloads).await {
            tracing::warn!(error = %e, "cannot notify other nodes");
        }
    }
}

/// Listens for other nodes' notifications and hands them to `deliver`, reconnecting
/// after a lost connection.
pub fn spawn_listener(
    store: Store,
    node: Uuid,
    deliver: impl Fn(RemoteChange) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match listen(&store, node, &deliver).await {
                Ok(()) => tracing::warn!("LISTEN connection closed; reconnecting"),
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn listen(
    store: &Store,
    node: Uuid,
    deliver: &impl Fn(RemoteChange),
) -> Result<(), StoreError> {
    let mut listener = store.listen().await?;
    while let Some(payload) = listener.next().await {
        match serde_json::from_str::<RemoteChange>(&payload?) {
            Ok(change) if change.node != node => deliver(change),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed notification"),
        }
    }
    Ok(())
}
