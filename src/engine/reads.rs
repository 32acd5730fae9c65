//! What readers ask many times a second during a sale (`GET /api/v1/campaigns/{id}`, the
//! live dashboard's snapshot), answered from memory so that watching a sale never costs
//! the database a `count(*)` per request:
//! - counts come from the campaign's actor where it runs on this node: it keeps them
//!   current after every batch, redemption and other node's delta, and re-reads them from
//!   the database once a sale goes quiet, so they end up equal to the table;
//! - elsewhere counts are read from the database at most once per [`COUNTS_FRESH`];
//! - campaign rows are kept until they change (here, or on another node through NOTIFY),
//!   and at most [`ROW_FRESH`] as a safety net.
//!
//! Each map is bounded: a flood of made-up ids empties it rather than grows it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::store::{CampaignRecord, CampaignStats, Store, StoreError};

pub const COUNTS_FRESH: Duration = Duration::from_secs(1);
pub const ROW_FRESH: Duration = Duration::from_secs(30);
/// Unknown ids are remembered briefly, so a flood of them costs one query per id per
/// this long, not one per request.
pub const MISSING_FRESH: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 20_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub issued: i64,
    pub redeemed: i64,
}

impl Counts {
    pub fn stats(self, total_limit: i64) -> CampaignStats {
        CampaignStats {
            issued: self.issued,
            redeemed: self.redeemed,
            remaining: (total_limit - self.issued).max(0),
        }
    }
}

#[derive(Default)]
pub struct Reads {
    /// Set by running actors; authoritative while the actor lives.
    live: Mutex<HashMap<Uuid, Counts>>,
    counted: Mutex<HashMap<Uuid, (Instant, Counts)>>,
    /// `None`: no such campaign (remembered for [`MISSING_FRESH`]).
    rows: Mutex<HashMap<Uuid, (Instant, Row)>>,
    /// Slug → id. A slug never changes once given, so only misses expire.
    slugs: Mutex<HashMap<String, (Instant, Option<Uuid>)>>,
}

type Row = Option<Arc<CampaignRecord>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Inserts, first dropping stale entries (or everything, when all are fresh) if full.
fn bounded_insert<K: Hash + Eq, V>(
    map: &mut HashMap<K, (Instant, V)>,
    key: K,
    value: V,
    fresh: Duration,
) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, (at, _)| at.elapsed() < fresh);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
    map.insert(key, (Instant::now(), value));
}

impl Reads {
    /// The campaign's row if it belongs to `tenant_id`.
    pub async fn campaign(
        &self,
        store: &Store,
        tenant_id: Uuid,
        id: Uuid,
    ) -> Result<Option<Arc<CampaignRecord>>, StoreError> {
        let cached = lock(&self.rows).get(&id).and_then(|(at, row)| {
            let fresh = if row.is_some() {
                ROW_FRESH
            } else {
                MISSING_FRESH
            };
            (at.elapsed() < fresh).then(|| row.clone())
        });
        let row = match cached {
            Some(row) => row,
            None => {
                let row = store.campaign_by_id(id).await?.map(Arc::new);
                bounded_insert(&mut lock(&self.rows), id, row.clone(), ROW_FRESH);
                row
            }
        };
        Ok(row.filter(|r| r.tenant_id == tenant_id))
    }

    /// A campaign by its public slug (the claim page), from memory like [`Reads::campaign`].
    pub async fn campaign_by_slug(
        &self,
        store: &Store,
        slug: &str,
    ) -> Result<Option<Arc<CampaignRecord>>, StoreError> {
        let known = lock(&self.slugs).get(slug).and_then(|(at, id)| match id {
            Some(id) => Some(Some(*id)),
            None => (at.elapsed() < MISSING_FRESH).then_some(None),
        });
        let id = match known {
            Some(Some(id)) => id,
            Some(None) => return Ok(None),
            None => {
                let row = store.campaign_by_slug(slug).await?.map(Arc::new);
                let id = row.as_ref().map(|r| r.id);
                bounded_insert(&mut lock(&self.slugs), slug.to_owned(), id, MISSING_FRESH);
                match row {
                    Some(row) => {
                        bounded_insert(&mut lock(&self.rows), row.id, Some(row.clone()), ROW_FRESH);
                        return Ok(Some(row));
                    }
                    None => return Ok(None),
                }
            }
        };
        let cached = lock(&self.rows)
            .get(&id)
            .filter(|(at, _)| at.elapsed() < ROW_FRESH)
            .map(|(_, row)| row.clone());
        match cached {
            Some(row) => Ok(row),
            None => {
                let row = store.campaign_by_id(id).await?.map(Arc::new);
                bounded_insert(&mut lock(&self.rows), id, row.clone(), ROW_FRESH);
                Ok(row)
            }
        }
    }

    /// The campaign changed on this node: readers see the new row at once.
    pub fn row_changed(&self, record: &CampaignRecord) {
        bounded_insert(
            &mut lock(&self.rows),
            record.id,
            Some(Arc::new(record.clone())),
            ROW_FRESH,
        );
    }

    /// The campaign changed on another node: read it afresh next time.
    pub fn row_stale(&self, id: Uuid) {
        lock(&self.rows).remove(&id);
    }

    pub async fn stats(
        &self,
        store: &Store,
        id: Uuid,
        total_limit: i64,
    ) -> Result<CampaignStats, StoreError> {
        if let Some(counts) = lock(&self.live).get(&id) {
            return Ok(counts.stats(total_limit));
        }
        let cached = lock(&self.counted)
            .get(&id)
            .filter(|(at, _)| at.elapsed() < COUNTS_FRESH)
            .map(|(_, c)| *c);
        if let Some(counts) = cached {
            return Ok(counts.stats(total_limit));
        }
        let stats = store.campaign_stats(id, total_limit).await?;
        let counts = Counts {
            issued: stats.issued,
            redeemed: stats.redeemed,
        };
        bounded_insert(&mut lock(&self.counted), id, counts, COUNTS_FRESH);
        Ok(stats)
    }

    /// The actor's current counts (called after each change).
    pub fn set_live(&self, id: Uuid, counts: Counts) {
        lock(&self.live).insert(id, counts);
    }

    /// The actor stopped: its last counts stay good for a moment, then the database's.
    pub fn end_live(&self, id: Uuid) {
        if let Some(counts) = lock(&self.live).remove(&id) {
            bounded_insert(&mut lock(&self.counted), id, counts, COUNTS_FRESH);
        }
    }

    /// Counts moved on another node or outside the actor: the next read goes to the database.
    pub fn counts_stale(&self, id: Uuid) {
        lock(&self.counted).remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_stale_entries_then_everything() {
        let mut map = HashMap::new();
        for i in 0..MAX_ENTRIES {
            bounded_insert(&mut map, i, (), Duration::from_secs(60));
        }
        bounded_insert(&mut map, MAX_ENTRIES, (), Duration::from_secs(60));
        assert_eq!(map.len(), 1, "all fresh: cleared, then the new one");
    }

    #[test]
    fn remaining_never_goes_below_zero() {
        let c = Counts {
            issued: 12,
            redeemed: 3,
        };
        assert_eq!(c.stats(10).remaining, 0);
        assert_eq!(c.stats(20).remaining, 8);
    }
}
