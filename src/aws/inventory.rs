//! What discovery reads from AWS and caches: one trait per kind of value, one cache for all.
//!
//! Each service module describes what it lists by implementing [`Inventory`] (which client,
//! how to fetch) and, when one resource is picked from it by tag, [`TagLookup`].
//! `Discovery` then serves every kind through one generic path: resolve the region, take the
//! client, read the value from its [`TtlCache`] (refreshed single-flight when stale), count
//! the hit or miss. [`Inventories`] holds one such cache per kind, created on first use, so a
//! new kind needs no field, constructor line or invalidation line anywhere else.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use crate::aws::cache::TtlCache;
use crate::aws::clients::{Clients, ServiceClient};
use crate::aws::error::AwsError;
use crate::facts::{Lookup, Tags};
use crate::metrics::Metrics;

/// What a refresh needs besides the key.
pub struct FetchContext<'a, C> {
    pub client: &'a C,
    pub metrics: &'a Metrics,
    /// MaxRecords / MaxItems per page of list calls.
    pub page_size: i32,
    pub region: &'a str,
    pub(crate) clients: &'a Clients,
}

impl<C> FetchContext<'_, C> {
    /// The client of another service in the same region (the tagging API for a service
    /// whose describe calls carry no tags).
    pub fn client_of<O: ServiceClient>(&self) -> O {
        self.clients.get::<O>(self.region)
    }
}

/// A value discovery reads from one AWS service and caches per region: a listing of the
/// whole region (every RDS database), or one item's details (an EFS file system's mount
/// targets, a secret).
pub trait Inventory: Sized + Send + Sync + 'static {
    /// The client the refresh calls through; its service labels the cache metrics.
    type Client: ServiceClient;

    /// Which value of a region: `()` for a listing of the whole region.
    type Key: Clone + Eq + Hash + Send + Sync + 'static;

    /// The call a refresh starts with: it names the failure when no region is known.
    const OPERATION: &'static str;

    /// This value is served for this many refresh intervals: more than 1 for data that is
    /// settled, rarely changes and costs calls per resource (EFS mount targets).
    fn refresh_factor(&self) -> u32 {
        1
    }

    /// Reads the value from AWS, recording each call in the metrics.
    fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Self, AwsError>> + Send;
}

/// A region-wide listing from which exactly one resource is selected by tag.
pub trait TagLookup: Inventory<Key = ()> {
    /// What a usable match turns into (its Debug form fingerprints an answer).
    type Facts: std::fmt::Debug;

    /// What is looked up, for logs: "database", "cache".
    const WHAT: &'static str;

    /// The one resource carrying every selector tag (see `select`).
    fn select(&self, selector: &Tags) -> Lookup<Self::Facts>;
}

/// The cache of one kind: values by (region, key).
pub(crate) type Store<I> = TtlCache<(String, <I as Inventory>::Key), I, AwsError>;

/// What [`Inventories`] needs of a store whose type it has forgotten.
trait AnyStore: Any + Send + Sync {
    fn clear(&self);
}

impl<I: Inventory> AnyStore for Store<I> {
    fn clear(&self) {
        TtlCache::clear(self);
    }
}

/// One cache per [`Inventory`] type, created when the kind is first looked up.
pub(crate) struct Inventories {
    stores: Mutex<HashMap<TypeId, Arc<dyn AnyStore>>>,
}

impl Inventories {
    pub fn new() -> Self {
        Inventories {
            stores: Mutex::new(HashMap::new()),
        }
    }

    /// The cache of kind `I`.
    pub fn store<I: Inventory>(&self) -> Arc<Store<I>> {
        let mut stores = self.lock();
        let id = TypeId::of::<I>();
        // The entry for I's TypeId is only ever a Store<I>, so the downcast succeeds; were it
        // ever something else, replacing it with an empty store is still correct.
        let existing = stores.get(&id).and_then(|store| {
            let store: Arc<dyn Any + Send + Sync> = Arc::<dyn AnyStore>::clone(store);
            store.downcast::<Store<I>>().ok()
        });
        if let Some(store) = existing {
            return store;
        }
        let store = Arc::new(Store::<I>::new());
        stores.insert(id, Arc::clone(&store) as Arc<dyn AnyStore>);
        store
    }

    /// Forgets every cached value of kind `I` (after a write that changed it).
    pub fn clear_kind<I: Inventory>(&self) {
        self.store::<I>().clear();
    }

    /// Forgets every cached value of every kind (the next lookups call AWS).
    pub fn clear(&self) {
        for store in self.lock().values() {
            store.clear();
        }
    }

    /// The map is never held across an await, so a panic while it is held cannot leave it
    /// half-updated: a poisoned lock is safe to reuse.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<dyn AnyStore>>> {
        self.stores.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
