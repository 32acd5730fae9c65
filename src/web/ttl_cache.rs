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
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(fresh: Duration, max_entries: usize) -> TtlCache<K, V> {
        TtlCache {
            fresh,
            max_entries,
            entries: Mutex::default(),
        }
    }

    /// The cached value if it is still fresh, else `load`'s (which is then cached).
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.fresh_value(&key) {
            return Ok(value);
        }
        let value = load().await?;
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries {
            entries.retain(|_, (at, _)| at.elapsed() < self.fresh);
            // Still full of fresh entries (a flood of distinct keys): start over.
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value.clone()));
        Ok(value)
    }

    fn fresh_value(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.fresh)
            .map(|(_, v)| v.clone())
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
        assert!(cache.entries.lock().unwrap().len() <= 2);
        assert_eq!(
            cache
                .get_or_load("d", || async { Err::<u32, _>("db down") })
                .await,
            Err("db down")
        );
    }
}
