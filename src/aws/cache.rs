//! A time-to-live cache with single-flight refresh, shared by every GrafanaCluster.
//!
//! Each key has its own async mutex: the first caller that finds the entry stale refreshes it
//! while holding the lock, and every concurrent caller for the same key waits on that lock and
//! then reads the fresh value. So N clusters looking at the same region cost one AWS refresh,
//! not N. A failed refresh is shared the same way: callers that were waiting for it get its
//! error instead of each retrying against an AWS that is already throttling. The failure is
//! not cached beyond that: the previous value (or the empty slot) stays as it was, and the
//! next lookup simply tries again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Mutex as AsyncMutex;

struct Cached<V> {
    value: Arc<V>,
    fetched_at: Instant,
}

struct SlotState<V, E> {
    cached: Option<Cached<V>>,
    /// The error of the latest refresh, when it failed.
    last_failure: Option<E>,
}

struct Slot<V, E> {
    /// Refreshes finished (successfully or not): a caller that sees it change while it waited
    /// for the lock knows a refresh ran on its behalf.
    refreshes: AtomicU64,
    state: AsyncMutex<SlotState<V, E>>,
}

/// Values by key, each refreshed when older than the TTL given at lookup.
pub(crate) struct TtlCache<K, V, E> {
    slots: Mutex<HashMap<K, Arc<Slot<V, E>>>>,
}

/// A value and whether it came from the cache (true) or from a refresh (false).
pub(crate) struct Fetched<V> {
    pub value: Arc<V>,
    pub hit: bool,
}

impl<K: Eq + Hash + Clone, V, E: Clone> TtlCache<K, V, E> {
    pub fn new() -> Self {
        TtlCache {
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached value for `key` when younger than `ttl`, else the result of `refresh`
    /// (stored on success). Concurrent callers for one key share a single refresh, and its
    /// failure.
    #[cfg(test)]
    pub async fn get_or_refresh<F, Fut>(
        &self,
        key: &K,
        ttl: Duration,
        refresh: F,
    ) -> Result<Fetched<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_refresh_by(key, |_| ttl, refresh).await
    }

    /// [`TtlCache::get_or_refresh`] with a TTL that depends on the cached value (data that
    /// is settled may be kept longer than data still changing).
    pub async fn get_or_refresh_by<T, F, Fut>(
        &self,
        key: &K,
        ttl: T,
        refresh: F,
    ) -> Result<Fetched<V>, E>
    where
        T: FnOnce(&V) -> Duration,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let slot = self.slot(key);
        let refreshes_before = slot.refreshes.load(Ordering::Acquire);
        let mut state = slot.state.lock().await;
        if let Some(cached) = state.cached.as_ref()
            && cached.fetched_at.elapsed() < ttl(&cached.value)
        {
            return Ok(Fetched {
                value: Arc::clone(&cached.value),
                hit: true,
            });
        }
        if slot.refreshes.load(Ordering::Acquire) != refreshes_before
            && let Some(err) = state.last_failure.as_ref()
        {
            return Err(err.clone());
        }
        let result = refresh().await;
        slot.refreshes.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(value) => {
                let value = Arc::new(value);
                state.cached = Some(Cached {
                    value: Arc::clone(&value),
                    fetched_at: Instant::now(),
                });
                state.last_failure = None;
                Ok(Fetched { value, hit: false })
            }
            Err(err) => {
                state.last_failure = Some(err.clone());
                Err(err)
            }
        }
    }

    /// Forgets every entry. A refresh in flight completes into a slot nobody reads again.
    pub fn clear(&self) {
        self.lock_slots().clear();
    }

    fn slot(&self, key: &K) -> Arc<Slot<V, E>> {
        let mut slots = self.lock_slots();
        let slot = slots.entry(key.clone()).or_insert_with(|| {
            Arc::new(Slot {
                refreshes: AtomicU64::new(0),
                state: AsyncMutex::new(SlotState {
                    cached: None,
                    last_failure: None,
                }),
            })
        });
        Arc::clone(slot)
    }

    /// The map is only touched for a lookup or an insert, never across an await, so a panic
    /// while it is held cannot leave it half-updated: a poisoned lock is safe to reuse.
    fn lock_slots(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Slot<V, E>>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const LONG: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn fresh_values_come_from_the_cache() {
        let cache = TtlCache::<&str, u32, &str>::new();
        let first = cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(1) })
            .await
            .unwrap();
        assert!(!first.hit);
        let second = cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(2) })
            .await
            .unwrap();
        assert!(second.hit);
        assert_eq!(*second.value, 1);
    }

    #[tokio::test]
    async fn stale_values_are_refreshed() {
        let cache = TtlCache::<&str, u32, &str>::new();
        cache
            .get_or_refresh(&"k", Duration::ZERO, || async { Ok::<_, &str>(1) })
            .await
            .unwrap();
        let again = cache
            .get_or_refresh(&"k", Duration::ZERO, || async { Ok::<_, &str>(2) })
            .await
            .unwrap();
        assert!(!again.hit);
        assert_eq!(*again.value, 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_last_value() {
        let cache = TtlCache::<&str, u32, &str>::new();
        cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(1) })
            .await
            .unwrap();
        let failed = cache
            .get_or_refresh(&"k", Duration::ZERO, || async {
                Err::<u32, _>("throttled")
            })
            .await;
        assert!(failed.is_err());
        let cached = cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(3) })
            .await
            .unwrap();
        assert!(cached.hit);
        assert_eq!(*cached.value, 1);
    }

    #[tokio::test]
    async fn clear_forces_a_refresh() {
        let cache = TtlCache::<&str, u32, &str>::new();
        cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(1) })
            .await
            .unwrap();
        cache.clear();
        let after = cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(2) })
            .await
            .unwrap();
        assert!(!after.hit);
        assert_eq!(*after.value, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_refresh() {
        let cache = Arc::new(TtlCache::<&str, u32, &str>::new());
        let refreshes = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let cache = Arc::clone(&cache);
            let refreshes = Arc::clone(&refreshes);
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_refresh(&"k", LONG, || async {
                        refreshes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, &str>(7)
                    })
                    .await
                    .map(|f| *f.value)
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(7));
        }
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_failed_refresh() {
        let cache = Arc::new(TtlCache::<&str, u32, &str>::new());
        let refreshes = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let cache = Arc::clone(&cache);
            let refreshes = Arc::clone(&refreshes);
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_refresh(&"k", LONG, || async {
                        refreshes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err::<u32, _>("throttled")
                    })
                    .await
                    .map(|f| *f.value)
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err("throttled"));
        }
        assert_eq!(refreshes.load(Ordering::SeqCst), 1);
        // A later caller tries again rather than getting the old failure.
        let later = cache
            .get_or_refresh(&"k", LONG, || async { Ok::<_, &str>(5) })
            .await
            .unwrap();
        assert_eq!(*later.value, 5);
    }
}
