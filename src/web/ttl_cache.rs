//! A small map whose entries are believed for a fixed time, bounded in size. Used where a
//! crowd asks the same question many times a second (API keys, campaign counts) and an
//! answer a second old is good enough.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    fresh: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    at: Instant,
    value: V,
    /// When a caller started reloading this stale entry; others keep the stale value
    /// meanwhile, so expiry under load costs one query, not one per waiting request.
    refreshing: Option<Instant>,
}

/// A reload that has not finished in this long was abandoned (its caller went away).
const REFRESH_GIVE_UP: Duration = Duration::from_secs(5);

impl<K: Hash + Eq + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(fresh: Duration, max_entries: usize) -> TtlCache<K, V> {
        TtlCache {
            fresh,
            max_entries,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value if it is still fresh, else `load`'s (which is then cached). While
    /// one caller reloads a stale value, the others get the stale one.
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        {
            let mut entries = self.lock();
            if let Some(e) = entries.get_mut(&key) {
                if e.at.elapsed() < self.fresh {
                    return Ok(e.value.clone());
                }
                match e.refreshing {
                    Some(since) if since.elapsed() < REFRESH_GIVE_UP => return Ok(e.value.clone()),
                    _ => e.refreshing = Some(Instant::now()),
                }
            }
        }
        let value = match load().await {
            Ok(value) => value,
            Err(e) => {
                if let Some(entry) = self.lock().get_mut(&key) {
                    entry.refreshing = None;
                }
                return Err(e);
            }
        };
        let mut entries = self.lock();
        self.make_room(&mut entries, &key);
        entries.insert(
            key,
            Entry {
                at: Instant::now(),
                value: value.clone(),
                refreshing: None,
            },
        );
        Ok(value)
    }

    /// Whether `key` has an entry, fresh or not.
    pub fn contains(&self, key: &K) -> bool {
        self.lock().contains_key(key)
    }

    /// The value of `key` if it is still fresh; never loads.
    pub fn get_fresh(&self, key: &K) -> Option<V> {
        let entries = self.lock();
        let e = entries.get(key)?;
        (e.at.elapsed() < self.fresh).then(|| e.value.clone())
    }

    /// Stores `value` for `key` as just loaded.
    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        self.make_room(&mut entries, &key);
        entries.insert(
            key,
            Entry {
                at: Instant::now(),
                value,
                refreshing: None,
            },
        );
    }

    fn make_room(&self, entries: &mut HashMap<K, Entry<V>>, key: &K) {
        if entries.len() >= self.max_entries && !entries.contains_key(key) {
            entries.retain(|_, e| e.at.elapsed() < self.fresh);
            // Still full of fresh entries (a flood of distinct keys): start over.
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
    }

    /// Forgets `key`: the next caller loads it afresh (after a change made here).
    pub fn invalidate(&self, key: &K) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn fresh_values_are_reused_stale_ones_reloaded_and_size_is_bounded() {
        let cache = TtlCache::new(Duration::from_millis(50), 2);
        let load = |v: u32| move || async move { Ok::<_, ()>(v) };
        assert_eq!(cache.get_or_load("a", load(1)).await, Ok(1));
        assert_eq!(
            cache.get_or_load("a", load(2)).await,
            Ok(1),
            "fresh: not reloaded"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            cache.get_or_load("a", load(3)).await,
            Ok(3),
            "stale: reloaded"
        );
        cache.get_or_load("b", load(4)).await.unwrap();
        cache.get_or_load("c", load(5)).await.unwrap();
        assert!(cache.lock().len() <= 2);
        assert_eq!(
            cache
                .get_or_load("d", || async { Err::<u32, _>("db down") })
                .await,
            Err("db down")
        );
    }

    #[actix_web::test]
    async fn while_one_caller_reloads_a_stale_value_the_others_get_it() {
        let cache = TtlCache::new(Duration::from_millis(20), 10);
        cache
            .get_or_load("k", || async { Ok::<_, ()>(1) })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let mut slow =
            Box::pin(cache.get_or_load("k", || async move { Ok::<_, ()>(rx.await.unwrap()) }));
        assert!(
            futures_util::poll!(&mut slow).is_pending(),
            "the reload waits"
        );
        assert_eq!(
            cache.get_or_load("k", || async { Ok::<_, ()>(99) }).await,
            Ok(1),
            "the stale value meanwhile, and no second load"
        );
        tx.send(2).unwrap();
        assert_eq!(slow.await, Ok(2));
        assert_eq!(
            cache.get_or_load("k", || async { Ok::<_, ()>(99) }).await,
            Ok(2)
        );
    }
}
