//! Campaign id → actor address, for this node. Actors start lazily on their campaign's
//! first claim and leave after being idle; an actor that stopped or crashed is simply
//! started again (reloading from Postgres) on the next claim.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Arbiter};
use uuid::Uuid;

use super::actor::CampaignActor;
use super::Shared;
use crate::metrics::ACTIVE_ACTORS;

pub(crate) struct Directory {
    actors: Mutex<HashMap<Uuid, Addr<CampaignActor>>>,
    /// Actors run on their own threads, away from the HTTP workers.
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

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Addr<CampaignActor>>> {
        self.actors.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The campaign's actor, started if need be; None when `max_actors` already run.
    pub fn get_or_start(
        &self,
        campaign_id: Uuid,
        shared: &Arc<Shared>,
    ) -> Option<Addr<CampaignActor>> {
        let mut map = self.map();
        if let Some(addr) = map.get(&campaign_id).filter(|a| a.connected()) {
            return Some(addr.clone());
        }
        if map.len() >= shared.settings.max_actors {
            // Stopped actors leave the map when they stop; count only the live ones.
            map.retain(|_, a| a.connected());
            if map.len() >= shared.settings.max_actors {
                return None;
            }
        }
        let arbiter =
            &self.arbiters[self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len()];
        let actor =
            CampaignActor::new(campaign_id, Arc::downgrade(shared), shared.settings.clone());
        let addr = CampaignActor::start_in_arbiter(&arbiter.handle(), move |_| actor);
        map.insert(campaign_id, addr.clone());
        metrics::gauge!(ACTIVE_ACTORS).set(map.len() as f64);
        Some(addr)
    }

    pub fn running(&self, campaign_id: Uuid) -> Option<Addr<CampaignActor>> {
        self.map()
            .get(&campaign_id)
            .filter(|a| a.connected())
            .cloned()
    }

    /// Removes this exact actor (not a successor that already replaced it).
    pub fn forget(&self, campaign_id: Uuid, addr: &Addr<CampaignActor>) {
        let mut map = self.map();
        if map.get(&campaign_id) == Some(addr) {
            map.remove(&campaign_id);
        }
        metrics::gauge!(ACTIVE_ACTORS).set(map.len() as f64);
    }

    pub fn drain(&self) -> Vec<Addr<CampaignActor>> {
        let mut map = self.map();
        metrics::gauge!(ACTIVE_ACTORS).set(0.0);
        map.drain().map(|(_, a)| a).collect()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }
}
