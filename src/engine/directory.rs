//! Campaign id → actor address, for this node. Actors start lazily on their campaign's
//! first claim and leave after being idle; an actor that stopped or crashed is simply
//! started again (reloading from Postgres) on the next claim.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Arbiter};
use uuid::Uuid;

use super::actor::CampaignActor;
use super::sold_out::SoldOutView;
use super::Shared;
use crate::metrics::ACTIVE_ACTORS;

thread_local! {
    /// Set on the HTTP workers' threads: the actors their claims start run there.
    static HOSTS_ACTORS: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread, an HTTP worker (startup.rs calls this from the app factory,
/// which actix-web runs on each worker), the home of the campaign actors its requests
/// start. A claim then reaches its actor, and the actor's answer reaches the request,
/// without crossing threads whenever the claim arrives on that worker: for one hot
/// campaign, half the claims on two workers. Measured in the README (*Actors on the HTTP
/// workers*): 6–17 % less of ecoupon's CPU per claim. Actors started anywhere else (jobs,
/// the engine benchmark) run on the directory's own threads. A worker's actors end with
/// it: on shutdown the HTTP server drains its requests first, so no claim is waiting in
/// them, and `node::leave` returns the leases they held.
pub fn host_actors_on_this_thread() {
    HOSTS_ACTORS.with(|h| h.set(true));
}

/// A running actor, and what it answers without being asked while sold out.
struct Slot {
    addr: Addr<CampaignActor>,
    sold_out: Option<Arc<SoldOutView>>,
}

pub(crate) struct Directory {
    actors: Mutex<HashMap<Uuid, Slot>>,
    /// Threads for actors started off the HTTP workers.
    arbiters: Vec<Arbiter>,
    next: AtomicUsize,
}

impl Directory {
    pub fn new() -> Directory {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4);
        Directory {
            actors: Mutex::default(),
            arbiters: (0..threads).map(|_| Arbiter::new()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        self.actors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The campaign's actor, started if need be; None when `max_actors` already run.
    pub fn get_or_start(
        &self,
        campaign_id: Uuid,
        shared: &Arc<Shared>,
    ) -> Option<Addr<CampaignActor>> {
        let mut map = self.map();
        if let Some(slot) = map.get(&campaign_id).filter(|s| s.addr.connected()) {
            return Some(slot.addr.clone());
        }
        if map.len() >= shared.settings.max_actors {
            // Stopped actors leave the map when they stop; count only the live ones.
            map.retain(|_, s| s.addr.connected());
            if map.len() >= shared.settings.max_actors {
                return None;
            }
        }
        let home = HOSTS_ACTORS
            .with(Cell::get)
            .then(Arbiter::try_current)
            .flatten()
            .unwrap_or_else(|| {
                let next = self.next.fetch_add(1, Ordering::Relaxed);
                self.arbiters[next % self.arbiters.len()].handle()
            });
        let actor =
            CampaignActor::new(campaign_id, Arc::downgrade(shared), shared.settings.clone());
        let addr = CampaignActor::start_in_arbiter(&home, move |_| actor);
        map.insert(
            campaign_id,
            Slot {
                addr: addr.clone(),
                sold_out: None,
            },
        );
        metrics::gauge!(ACTIVE_ACTORS).set(map.len() as f64);
        Some(addr)
    }

    pub fn running(&self, campaign_id: Uuid) -> Option<Addr<CampaignActor>> {
        self.map()
            .get(&campaign_id)
            .filter(|s| s.addr.connected())
            .map(|s| s.addr.clone())
    }

    /// The running actor and its sold-out view, if it published one: the claim path's one
    /// look at the map.
    pub fn lookup(
        &self,
        campaign_id: Uuid,
    ) -> Option<(Addr<CampaignActor>, Option<Arc<SoldOutView>>)> {
        self.map()
            .get(&campaign_id)
            .filter(|s| s.addr.connected())
            .map(|s| (s.addr.clone(), s.sold_out.clone()))
    }

    /// The running actor, to tell it that its campaign or its stock changed. Its sold-out
    /// view is withdrawn here, at once: the actor takes the message in turn, but claims
    /// answered from the view do not wait in its mailbox, and none may be answered from
    /// the old campaign after the change is acknowledged.
    pub fn running_for_change(&self, campaign_id: Uuid) -> Option<Addr<CampaignActor>> {
        let mut map = self.map();
        let slot = map.get_mut(&campaign_id).filter(|s| s.addr.connected())?;
        slot.sold_out = None;
        Some(slot.addr.clone())
    }

    /// Publishes (Some) or withdraws (None) the sold-out view of this exact actor.
    pub fn set_sold_out(
        &self,
        campaign_id: Uuid,
        addr: &Addr<CampaignActor>,
        view: Option<Arc<SoldOutView>>,
    ) {
        if let Some(slot) = self.map().get_mut(&campaign_id).filter(|s| &s.addr == addr) {
            slot.sold_out = view;
        }
    }

    /// Removes this exact actor (not a successor that already replaced it).
    pub fn forget(&self, campaign_id: Uuid, addr: &Addr<CampaignActor>) {
        let mut map = self.map();
        if map.get(&campaign_id).is_some_and(|s| &s.addr == addr) {
            map.remove(&campaign_id);
        }
        metrics::gauge!(ACTIVE_ACTORS).set(map.len() as f64);
    }

    pub fn drain(&self) -> Vec<Addr<CampaignActor>> {
        let mut map = self.map();
        metrics::gauge!(ACTIVE_ACTORS).set(0.0);
        map.drain().map(|(_, s)| s.addr).collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }
}
