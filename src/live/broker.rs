//! Fans the engine's events out per tenant. The engine publishes and knows nothing about
//! sockets; sockets subscribe to their tenant's channel here and see nothing else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use super::messages::{CampaignSnapshot, Frame, Update};
use crate::domain::campaign::CampaignStatus;
use crate::domain::merchant::Permission;
use crate::engine::events::EngineEvent;
use crate::engine::Engine;
use crate::store::{CampaignSummary, Store, StoreError};

/// Updates a tenant's channel holds for a socket that has not read them yet. A socket that
/// falls further behind loses the oldest and takes a fresh snapshot instead.
pub const OUTBOX: usize = 1024;

/// How often every socket's console session is checked (one query for all of them): a
/// user signed out or disabled loses the socket within this.
pub const SESSION_CHECK: Duration = Duration::from_secs(1);

/// How long a tenant's campaign list is reused for snapshots (the counts in it are
/// overlaid with the live ones this broker keeps).
pub const SNAPSHOT_FRESH: Duration = Duration::from_secs(1);

/// Sent to a socket whose console session ended, or whose user may no longer watch.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Revoked;

/// A socket's console session, checked every [`SESSION_CHECK`].
struct Watch {
    hash: Vec<u8>,
    user_id: Uuid,
    tenant_id: Uuid,
    to: actix::Recipient<Revoked>,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    tenant_id: Uuid,
    status: Option<CampaignStatus>,
    issued: i64,
    redeemed: i64,
    remaining: i64,
}

type Summaries = Arc<Vec<CampaignSummary>>;

struct Inner {
    store: Store,
    engine: Engine,
    idle_timeout: Duration,
    tenants: Mutex<HashMap<Uuid, broadcast::Sender<Arc<Update>>>>,
    /// Campaign counts kept current from events (set by actors' counters, moved by
    /// deltas), read once from the database on a miss.
    cache: Mutex<HashMap<Uuid, Cached>>,
    /// Each tenant's campaign list with database counts, shared by the sockets that open
    /// within [`SNAPSHOT_FRESH`]: a thousand dashboards reconnecting at once cost one query.
    summaries: Mutex<HashMap<Uuid, (Instant, Summaries)>>,
    /// One snapshot read at a time, so a crowd waits for the first instead of querying.
    summaries_loading: tokio::sync::Mutex<()>,
    watches: Mutex<HashMap<u64, Watch>>,
    next_watch: AtomicU64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set by [`Broker::stop`]: a socket opened while the server drains is closed at once.
    stopped: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Broker {
    /// Subscribes to the engine's bus and starts fanning out. Call [`Broker::stop`] on
    /// shutdown.
    /// `idle_timeout` is the console's: a session idle that long is over for the socket too
    /// (a socket does not count as activity, or a forgotten tab would keep it open forever).
    pub fn start(store: Store, engine: Engine, idle_timeout: Duration) -> Broker {
        let mut events = engine.subscribe();
        let broker = Broker {
            inner: Arc::new(Inner {
                store,
                engine,
                idle_timeout,
                tenants: Mutex::default(),
                cache: Mutex::default(),
                summaries: Mutex::default(),
                summaries_loading: tokio::sync::Mutex::new(()),
                watches: Mutex::default(),
                next_watch: AtomicU64::new(0),
                tasks: Mutex::default(),
                stopped: Default::default(),
            }),
        };
        let b = broker.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => b.handle(&event).await,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "live broker fell behind; resyncing sockets");
                        lock(&b.inner.cache).clear();
                        b.broadcast_all(Update::Resync);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let b = broker.clone();
        let checker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SESSION_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                b.check_sessions().await;
            }
        });
        *lock(&broker.inner.tasks) = vec![task, checker];
        broker
    }

    pub fn stop(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
        lock(&self.inner.tenants).clear();
        lock(&self.inner.watches).clear();
    }

    /// Has the socket `to` told when its console session ends. Returns the key for
    /// [`Broker::unwatch`].
    pub fn watch(
        &self,
        hash: Vec<u8>,
        user_id: Uuid,
        tenant_id: Uuid,
        to: actix::Recipient<Revoked>,
    ) -> u64 {
        let key = self.inner.next_watch.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.watches).insert(
            key,
            Watch {
                hash,
                user_id,
                tenant_id,
                to,
            },
        );
        key
    }

    pub fn unwatch(&self, key: u64) {
        lock(&self.inner.watches).remove(&key);
    }

    /// One query for every socket's session; sockets whose session is gone (signed out,
    /// expired, user disabled) or whose user may no longer watch are told to close.
    async fn check_sessions(&self) {
        let hashes: Vec<Vec<u8>> = {
            let watches = lock(&self.inner.watches);
            let mut hashes: Vec<Vec<u8>> = watches.values().map(|w| w.hash.clone()).collect();
            hashes.sort_unstable();
            hashes.dedup();
            hashes
        };
        if hashes.is_empty() {
            return;
        }
        let rows = match self
            .inner
            .store
            .live_sessions(&hashes, self.inner.idle_timeout)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                // The database hiccuped: try again next time.
                tracing::warn!(error = %e, "cannot re-check live sessions");
                return;
            }
        };
        let good: HashMap<&[u8], _> = rows.iter().map(|r| (r.id_hash.as_slice(), r)).collect();
        for w in lock(&self.inner.watches).values() {
            let allowed = good.get(w.hash.as_slice()).is_some_and(|r| {
                r.user_id == w.user_id
                    && r.tenant_id == w.tenant_id
                    && r.role.can(Permission::ViewStats)
            });
            if !allowed {
                w.to.do_send(Revoked);
            }
        }
    }

    /// A receiver of `tenant_id`'s updates, and of nobody else's.
    pub fn subscribe(&self, tenant_id: Uuid) -> broadcast::Receiver<Arc<Update>> {
        if self.inner.stopped.load(Ordering::SeqCst) {
            // Its sender is gone with this line: the socket closes on its first tick.
            return broadcast::channel(1).1;
        }
        lock(&self.inner.tenants)
            .entry(tenant_id)
            .or_insert_with(|| broadcast::channel(OUTBOX).0)
            .subscribe()
    }

    /// A socket went away (after dropping its receiver): forget an unwatched tenant.
    pub fn release(&self, tenant_id: Uuid) {
        let mut tenants = lock(&self.inner.tenants);
        if tenants
            .get(&tenant_id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            tenants.remove(&tenant_id);
        }
    }

    /// Sockets open on this node (all tenants).
    pub fn sockets(&self) -> usize {
        lock(&self.inner.tenants)
            .values()
            .map(|tx| tx.receiver_count())
            .sum()
    }

    /// Every campaign of the tenant with its counts: the database's list, with the counts
    /// this broker keeps current where it has them.
    pub async fn snapshot(&self, tenant_id: Uuid) -> Result<Vec<CampaignSnapshot>, StoreError> {
        let summaries = self.summaries(tenant_id).await?;
        let cache = lock(&self.inner.cache);
        Ok(summaries
            .iter()
            .map(|s| {
                let mut snap = CampaignSnapshot {
                    id: s.id,
                    name: s.name.clone(),
                    status: s.status,
                    issued: s.issued,
                    redeemed: s.redeemed,
                    remaining: s.remaining,
                };
                if let Some(c) = cache.get(&s.id).filter(|c| c.tenant_id == tenant_id) {
                    snap.issued = c.issued;
                    snap.redeemed = c.redeemed;
                    snap.remaining = c.remaining;
                    snap.status = c.status.unwrap_or(snap.status);
                }
                snap
            })
            .collect())
    }

    fn fresh_summaries(&self, tenant_id: Uuid) -> Option<Arc<Vec<CampaignSummary>>> {
        lock(&self.inner.summaries)
            .get(&tenant_id)
            .filter(|(at, _)| at.elapsed() < SNAPSHOT_FRESH)
            .map(|(_, s)| s.clone())
    }

    async fn summaries(&self, tenant_id: Uuid) -> Result<Arc<Vec<CampaignSummary>>, StoreError> {
        if let Some(s) = self.fresh_summaries(tenant_id) {
            return Ok(s);
        }
        let _one_at_a_time = self.inner.summaries_loading.lock().await;
        // Whoever held the lock may just have read it.
        if let Some(s) = self.fresh_summaries(tenant_id) {
            return Ok(s);
        }
        let fresh = Arc::new(self.inner.store.campaign_summaries(tenant_id).await?);
        let mut all = lock(&self.inner.summaries);
        all.retain(|_, (at, _)| at.elapsed() < SNAPSHOT_FRESH);
        all.insert(tenant_id, (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// A campaign was added or changed: the next snapshot reads the list afresh.
    fn summaries_stale(&self, tenant_id: Uuid) {
        lock(&self.inner.summaries).remove(&tenant_id);
    }

    fn watched(&self, tenant_id: Uuid) -> bool {
        lock(&self.inner.tenants)
            .get(&tenant_id)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    fn send(&self, tenant_id: Uuid, update: Update) {
        if let Some(tx) = lock(&self.inner.tenants).get(&tenant_id) {
            let _ = tx.send(Arc::new(update));
        }
    }

    fn broadcast_all(&self, update: Update) {
        let update = Arc::new(update);
        for tx in lock(&self.inner.tenants).values() {
            let _ = tx.send(update.clone());
        }
    }

    fn send_stats(&self, campaign_id: Uuid, c: &Cached) {
        self.send(
            c.tenant_id,
            Update::frame(Frame::Stats {
                campaign_id,
                issued: c.issued,
                redeemed: c.redeemed,
                remaining: c.remaining,
            }),
        );
    }

    async fn handle(&self, event: &EngineEvent) {
        match event {
            EngineEvent::Counters {
                tenant_id,
                campaign_id,
                issued,
                redeemed,
                remaining,
            } => {
                let cached = {
                    let mut cache = lock(&self.inner.cache);
                    let entry = cache.entry(*campaign_id).or_insert(Cached {
                        tenant_id: *tenant_id,
                        status: None,
                        issued: 0,
                        redeemed: 0,
                        remaining: 0,
                    });
                    entry.issued = *issued;
                    entry.redeemed = *redeemed;
                    entry.remaining = *remaining;
                    *entry
                };
                self.send_stats(*campaign_id, &cached);
            }
            EngineEvent::Claimed { .. } => {}
            EngineEvent::Redeemed {
                tenant_id,
                campaign_id,
                redemption_id,
                ..
            } => {
                self.delta(*tenant_id, *campaign_id, 0, 1).await;
                self.feed_line(*tenant_id, *campaign_id, *redemption_id);
            }
            EngineEvent::RedemptionUndone {
                tenant_id,
                campaign_id,
                ..
            } => self.delta(*tenant_id, *campaign_id, 0, -1).await,
            EngineEvent::CampaignChanged {
                tenant_id,
                campaign_id,
                status,
            } => {
                self.summaries_stale(*tenant_id);
                self.status(*tenant_id, *campaign_id, *status)
            }
            EngineEvent::Remote(change) => {
                for redemption_id in &change.redemptions {
                    self.feed_line(change.tenant_id, change.campaign_id, *redemption_id);
                }
                if change.issued != 0 || change.redeemed != 0 {
                    self.delta(
                        change.tenant_id,
                        change.campaign_id,
                        change.issued,
                        change.redeemed,
                    )
                    .await;
                }
                if change.changed {
                    self.summaries_stale(change.tenant_id);
                    if self.watched(change.tenant_id) {
                        self.reload(change.campaign_id).await;
                    } else {
                        lock(&self.inner.cache).remove(&change.campaign_id);
                    }
                }
            }
        }
    }

    /// Sends a redemption's feed line (where and by whom) to the tenant's sockets: one
    /// small lookup per redemption, off the broker's loop, and only when somebody watches.
    fn feed_line(&self, tenant_id: Uuid, campaign_id: Uuid, redemption_id: Uuid) {
        if !self.watched(tenant_id) {
            return;
        }
        let b = self.clone();
        tokio::spawn(async move {
            match b
                .inner
                .store
                .live_redemption(tenant_id, redemption_id)
                .await
            {
                Ok(Some(place)) => b.send(
                    tenant_id,
                    Update::frame(Frame::Redemption {
                        campaign_id,
                        at: place.at,
                        store: place.store,
                        staff: place.staff,
                    }),
                ),
                // Undone or purged meanwhile: nothing to show.
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot look up a redemption"),
            }
        });
    }

    /// Counts moved by `issued`/`redeemed` somewhere this node's actor did not see (or
    /// there is no actor here).
    async fn delta(&self, tenant_id: Uuid, campaign_id: Uuid, issued: i64, redeemed: i64) {
        if self.inner.engine.runs_locally(campaign_id) {
            // The actor took the change and publishes its own counters.
            return;
        }
        if !self.watched(tenant_id) {
            // Nobody to tell; read afresh when somebody watches.
            lock(&self.inner.cache).remove(&campaign_id);
            return;
        }
        let updated = {
            let mut cache = lock(&self.inner.cache);
            cache.get_mut(&campaign_id).map(|c| {
                c.issued += issued;
                c.redeemed += redeemed;
                c.remaining = (c.remaining - issued).max(0);
                *c
            })
        };
        match updated {
            Some(c) => self.send_stats(campaign_id, &c),
            // The database already holds the change (NOTIFY follows COMMIT).
            None => self.reload(campaign_id).await,
        }
    }

    /// Reads the campaign afresh (a miss, or its row changed on another node).
    async fn reload(&self, campaign_id: Uuid) {
        let counts = match self.inner.store.live_counts(campaign_id).await {
            Ok(Some(counts)) => counts,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a campaign's counts");
                return;
            }
        };
        let fresh = Cached {
            tenant_id: counts.tenant_id,
            status: Some(counts.status),
            issued: counts.issued,
            redeemed: counts.redeemed,
            remaining: counts.remaining,
        };
        let before = lock(&self.inner.cache).insert(campaign_id, fresh);
        if before.and_then(|b| b.status) != Some(counts.status) {
            self.send(
                counts.tenant_id,
                Update::frame(Frame::Campaign {
                    campaign_id,
                    status: counts.status,
                }),
            );
        }
        self.send_stats(campaign_id, &fresh);
    }

    fn status(&self, tenant_id: Uuid, campaign_id: Uuid, status: CampaignStatus) {
        let before = {
            let mut cache = lock(&self.inner.cache);
            match cache.get_mut(&campaign_id) {
                Some(c) => c.status.replace(status),
                None => None,
            }
        };
        if before != Some(status) {
            self.send(
                tenant_id,
                Update::frame(Frame::Campaign {
                    campaign_id,
                    status,
                }),
            );
        }
    }
}
