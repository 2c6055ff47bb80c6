//! Which GrafanaCluster looked at what: the AWS side of inventory-triggered reconciles.
//!
//! A reconcile asks discovery through [`Discovery::for_owner`]; every lookup it makes is
//! then remembered with a fingerprint of its answer and a way to ask again. A background
//! task (started by [`Discovery::subscribe_changes`]) keeps the remembered inventories fresh (one refresh
//! per kind and region per interval, however many clusters look at them) and, whenever a
//! refresh happened, asks every remembered question again over the cached inventories
//! (pure, no AWS call). A cluster whose answer changed (a second database matching its
//! selector, an endpoint that moved, a cache that became available, a secret RDS rotated) is
//! announced on a broadcast channel that the controllers turn into reconciles. AWS-side
//! changes then reach a cluster within one refresh interval, and the resync can be long.

use std::any::TypeId;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::broadcast;

use crate::aws::error::AwsError;
use crate::aws::{Discovery, Inner};

/// Asks a remembered question again; returns the fingerprint of the answer.
pub(crate) type Recheck =
    Arc<dyn Fn(Discovery) -> BoxFuture<'static, Result<u64, AwsError>> + Send + Sync>;

/// Reads one remembered inventory (refreshing it when stale).
pub(crate) type Refresh =
    Arc<dyn Fn(Discovery) -> BoxFuture<'static, Result<(), AwsError>> + Send + Sync>;

/// One question: the inventory kind, the region and the query (selector, id...).
pub(crate) type QueryKey = (TypeId, String, String);

struct Interest {
    fingerprint: u64,
    recheck: Recheck,
}

/// One owner's questions: a few (one per kind of resource it uses), so a list, not a map.
type Asked = Vec<(QueryKey, Interest)>;

/// Questions by owner (`<namespace>/<name>`), and the inventories they read.
pub(crate) struct Interests {
    by_owner: Mutex<HashMap<Arc<str>, Asked>>,
    refreshers: Mutex<HashMap<(TypeId, String), Refresh>>,
    /// Inventories whose last refresh by the watch failed: until when the watch leaves them
    /// alone, and the pause it took. During an AWS outage the watch must not turn its quick
    /// ticks (and one recheck per cluster) into a retry loop against AWS: it waits one
    /// refresh interval after the first failure, doubling up to [`MAX_REST_FACTOR`]
    /// intervals. The clusters' own rounds, with their backoff, keep asking.
    resting: Mutex<HashMap<(TypeId, String), (Instant, Duration)>>,
    /// Successful inventory refreshes so far: the watch rechecks only after one.
    generation: AtomicU64,
    /// Whether the change watch runs.
    started: AtomicBool,
    changed: broadcast::Sender<Arc<str>>,
}

/// The longest pause of the watch on a failing inventory, in refresh intervals.
const MAX_REST_FACTOR: u32 = 8;

/// How many announcements a slow controller may fall behind before it misses some (it then
/// reconciles those clusters at their resync).
const CHANNEL_CAPACITY: usize = 4096;

/// The fingerprint of an answer: any change in what discovery would hand the cluster.
pub(crate) fn fingerprint<T: std::fmt::Debug>(answer: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{answer:?}").hash(&mut hasher);
    hasher.finish()
}

impl Interests {
    pub fn new() -> Self {
        let (changed, _) = broadcast::channel(CHANNEL_CAPACITY);
        Interests {
            by_owner: Mutex::new(HashMap::new()),
            refreshers: Mutex::new(HashMap::new()),
            resting: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            started: AtomicBool::new(false),
            changed,
        }
    }

    /// Remembers what `owner` was told, replacing its previous answer to the same question.
    pub fn record(
        &self,
        owner: &Arc<str>,
        key: QueryKey,
        fingerprint: u64,
        recheck: Recheck,
        refresh: Refresh,
    ) {
        let inventory = (key.0, key.1.clone());
        lock(&self.refreshers).entry(inventory).or_insert(refresh);
        let interest = Interest {
            fingerprint,
            recheck,
        };
        let mut by_owner = lock(&self.by_owner);
        let asked = by_owner.entry(Arc::clone(owner)).or_default();
        match asked.iter_mut().find(|(k, _)| *k == key) {
            Some((_, known)) => *known = interest,
            None => asked.push((key, interest)),
        }
    }

    /// Forgets every question of `owner` (a new round asks its own; a deleted cluster none).
    pub fn forget(&self, owner: &str) {
        lock(&self.by_owner).remove(owner);
    }

    pub fn bump_generation(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.changed.subscribe()
    }

    /// Owners remembered, for tests and metrics.
    pub fn owners(&self) -> usize {
        lock(&self.by_owner).len()
    }
}

/// Every `tick`, reads each remembered inventory (a refresh when older than the refresh
/// interval) and, after any refresh, asks every remembered question again and announces the
/// owners whose answer changed. Ends when the last clone of the discovery is dropped.
async fn watch_changes(inner: Weak<Inner>, tick: Duration) {
    let mut seen = match inner.upgrade() {
        Some(inner) => inner.interests.generation.load(Ordering::Acquire),
        None => return,
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let watcher = Discovery { inner, owner: None };
        seen = watcher.check_once(seen).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Never held across an await, so a panic cannot leave the map half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Discovery {
    /// This discovery for one GrafanaCluster's round (`owner`: `<namespace>/<name>`): the
    /// owner's previous questions are forgotten and every lookup of this round is
    /// remembered, so a refresh that changes an answer triggers the owner's reconcile.
    pub fn for_owner(&self, owner: &str) -> Discovery {
        self.inner.interests.forget(owner);
        Discovery {
            inner: Arc::clone(&self.inner),
            owner: Some(Arc::from(owner)),
        }
    }

    /// Forgets a cluster that no longer exists.
    pub fn forget_owner(&self, owner: &str) {
        self.inner.interests.forget(owner);
    }

    /// Clusters whose discovery answer changed, as `<namespace>/<name>`. The first call
    /// starts the change watch (see the module): it runs while any clone of this discovery
    /// lives, checking every quarter of the refresh interval, so a change reaches the
    /// cluster within about one refresh interval.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<str>> {
        let interests = &self.inner.interests;
        if !interests.started.swap(true, Ordering::AcqRel) {
            let tick = (self.inner.config.refresh_interval / 4).max(Duration::from_millis(200));
            tokio::spawn(watch_changes(Arc::downgrade(&self.inner), tick));
        }
        interests.subscribe()
    }

    /// Clusters whose lookups are remembered.
    pub fn watched_owners(&self) -> usize {
        self.inner.interests.owners()
    }

    /// Remembers an answer given to this discovery's owner (nothing without an owner).
    pub(crate) fn remember(
        &self,
        key: QueryKey,
        fingerprint: u64,
        recheck: Recheck,
        refresh: Refresh,
    ) {
        if let Some(owner) = &self.owner {
            self.inner
                .interests
                .record(owner, key, fingerprint, recheck, refresh);
        }
    }

    /// One pass of the change watch; returns the generation it rechecked at.
    pub(crate) async fn check_once(&self, seen: u64) -> u64 {
        let interests = &self.inner.interests;
        let now = Instant::now();
        let refreshers: Vec<((TypeId, String), Refresh)> = lock(&interests.refreshers)
            .iter()
            .map(|(k, r)| (k.clone(), Arc::clone(r)))
            .collect();
        for (inventory, refresh) in refreshers {
            if lock(&interests.resting)
                .get(&inventory)
                .is_some_and(|(until, _)| *until > now)
            {
                continue;
            }
            match refresh(self.clone()).await {
                Ok(()) => {
                    lock(&interests.resting).remove(&inventory);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "refreshing an inventory for the change watch failed");
                    let interval = self.inner.config.refresh_interval;
                    let mut resting = lock(&interests.resting);
                    let pause = resting.get(&inventory).map_or(interval, |(_, last)| {
                        last.saturating_mul(2).min(interval * MAX_REST_FACTOR)
                    });
                    resting.insert(inventory, (Instant::now() + pause, pause));
                }
            }
        }
        let generation = interests.generation.load(Ordering::Acquire);
        if generation == seen {
            return seen;
        }
        let questions: Vec<(Arc<str>, QueryKey, u64, Recheck)> = lock(&interests.by_owner)
            .iter()
            .flat_map(|(owner, asked)| {
                asked.iter().map(|(key, interest)| {
                    (
                        Arc::clone(owner),
                        key.clone(),
                        interest.fingerprint,
                        Arc::clone(&interest.recheck),
                    )
                })
            })
            .collect();
        let mut changed: HashSet<Arc<str>> = HashSet::new();
        let resting: HashSet<(TypeId, String)> = lock(&interests.resting).keys().cloned().collect();
        for (owner, key, before, recheck) in questions {
            // An inventory AWS cannot serve now is not asked again once per cluster.
            if changed.contains(&owner) || resting.contains(&(key.0, key.1.clone())) {
                continue;
            }
            let Ok(now) = recheck(self.clone()).await else {
                // AWS failed: the owner's own round will see it; no news is no change.
                continue;
            };
            if now != before {
                changed.insert(Arc::clone(&owner));
                // Remember the new answer so the owner is announced once per change, even
                // before its round runs (it records the same answer again).
                if let Some(interest) = lock(&interests.by_owner)
                    .get_mut(&owner)
                    .and_then(|asked| asked.iter_mut().find(|(k, _)| *k == key))
                {
                    interest.1.fingerprint = now;
                }
            }
        }
        for owner in changed {
            tracing::info!(cluster = %owner, "AWS discovery changed what this cluster sees");
            self.inner.metrics.discovery_trigger();
            // No receiver (no controller yet): nothing to trigger.
            let _ = interests.changed.send(owner);
        }
        generation
    }
}

#[cfg(test)]
mod tests;
