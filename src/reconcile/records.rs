//! The operator's cache of one child kind: a [`Record`] per child, keyed by namespace and
//! name, fed by that kind's label-scoped watch.
//!
//! kube's reflector store keeps, per object, the object itself (behind an `Arc`) and an
//! `ObjectRef` key that repeats its name, namespace and resourceVersion; an `ObjectMeta` is
//! 360 bytes in place however empty. A thousand clusters of a dozen children each made those
//! about 1 KB per child, most of what a cluster cost the operator
//! (bench/results/profile-2026-11-26.md). A record here is what reconciles read and nothing
//! else, stored inline under a `namespace/name` key: about a quarter of that. The watch
//! still streams [`Kept`] values (they must be `Resource`s for kube's watcher, and the
//! controller maps them to their cluster); they are dropped once recorded.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use kube::Resource;
use kube::runtime::watcher;

use super::slim::{Digest, Kept, KeptLabels, Slim};
use crate::names::Component;
use crate::resolve::ClusterRef;

/// What reconciles read of one live child.
#[derive(Debug)]
pub struct Record<K: Slim> {
    pub labels: KeptLabels,
    /// The digest of the fields the operator owns; None when it owns none.
    pub digest: Option<Digest>,
    pub facts: K::Facts,
    /// Already going away (a deletion timestamp is set).
    pub deleting: bool,
}

impl<K: Slim> Clone for Record<K> {
    fn clone(&self) -> Self {
        Record {
            labels: self.labels.clone(),
            digest: self.digest,
            facts: self.facts.clone(),
            deleting: self.deleting,
        }
    }
}

impl<K: Slim> Record<K> {
    fn of(kept: &Kept<K>) -> Record<K> {
        Record {
            labels: kept.labels.clone(),
            digest: kept.digest,
            facts: kept.facts.clone(),
            deleting: kept.meta().deletion_timestamp.is_some(),
        }
    }
}

/// `namespace/name`, or `name` for a cluster-scoped child (names never hold a slash).
fn key(namespace: Option<&str>, name: &str) -> Box<str> {
    match namespace {
        Some(ns) => format!("{ns}/{name}").into(),
        None => name.into(),
    }
}

fn key_of<R: Resource>(object: &R) -> Box<str> {
    let meta = object.meta();
    key(
        meta.namespace.as_deref(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

type Table<K> = HashMap<Box<str>, Record<K>>;

struct Tables<K: Slim> {
    live: Table<K>,
    /// Filled while the watch relists; replaces `live` when the list is complete, so a
    /// child deleted while the watch was down leaves the cache.
    relisting: Option<Table<K>>,
}

/// The records of one child kind, shared by every reconcile.
pub struct Records<K: Slim> {
    tables: Arc<RwLock<Tables<K>>>,
}

impl<K: Slim> Clone for Records<K> {
    fn clone(&self) -> Self {
        Records {
            tables: Arc::clone(&self.tables),
        }
    }
}

impl<K: Slim> Default for Records<K> {
    fn default() -> Self {
        Records {
            tables: Arc::new(RwLock::new(Tables {
                live: HashMap::new(),
                relisting: None,
            })),
        }
    }
}

impl<K: Slim> Records<K> {
    /// Records of `objects`, as the watch would keep them (for `apply` on an unwatched kind
    /// and for tests).
    pub fn of(objects: impl IntoIterator<Item = K>) -> Records<K> {
        let records = Records::default();
        for object in objects {
            records.observe(&watcher::Event::Apply(super::slim::keep(object)));
        }
        records
    }

    /// Brings the cache up to date with one event of the kind's watch.
    pub fn observe(&self, event: &watcher::Event<Kept<K>>) {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(kept) => {
                tables.live.insert(key_of(kept), Record::of(kept));
            }
            watcher::Event::Delete(kept) => {
                tables.live.remove(&key_of(kept));
            }
            watcher::Event::Init => tables.relisting = Some(HashMap::new()),
            watcher::Event::InitApply(kept) => {
                let Tables { live, relisting } = &mut *tables;
                relisting
                    .as_mut()
                    .unwrap_or(live)
                    .insert(key_of(kept), Record::of(kept));
            }
            watcher::Event::InitDone => {
                if let Some(mut listed) = tables.relisting.take() {
                    listed.shrink_to_fit();
                    tables.live = listed;
                }
            }
        }
    }

    /// The record of the child named `name` in `namespace` (None: cluster-scoped).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Record<K>> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        tables.live.get(&key(namespace, name)).cloned()
    }

    /// The record of the live child that `object` names.
    pub fn get_for(&self, object: &K) -> Option<Record<K>> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        tables.live.get(&key_of(object)).cloned()
    }

    /// The names and components of `cluster`'s children that are not already going away:
    /// labelled with the cluster's name and in its namespace (a cluster-scoped child:
    /// labelled with it). A scan of the kind's whole cache.
    pub fn children_of(&self, cluster: &ClusterRef) -> Vec<(String, Option<Component>)> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        tables
            .live
            .iter()
            .filter(|(_, record)| !record.deleting)
            .filter(|(_, record)| record.labels.cluster.as_deref() == Some(cluster.name.as_str()))
            .filter_map(|(key, record)| {
                let (namespace, name) = match key.split_once('/') {
                    Some((ns, name)) => (Some(ns), name),
                    None => (record.labels.namespace.as_deref(), &**key),
                };
                (namespace == Some(cluster.namespace.as_str()))
                    .then(|| (name.to_string(), record.labels.component))
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        tables.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::Timestamp;
    use std::collections::BTreeMap;

    fn child<K: Slim + Default>(namespace: Option<&str>, name: &str, labels: &[(&str, &str)]) -> K {
        let mut object = K::default();
        *object.meta_mut() = ObjectMeta {
            name: Some(name.into()),
            namespace: namespace.map(Into::into),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..ObjectMeta::default()
        };
        object
    }

    fn cluster(namespace: &str, name: &str) -> ClusterRef {
        ClusterRef {
            name: name.into(),
            namespace: namespace.into(),
            uid: None,
        }
    }

    const CLUSTER: &str = crate::names::CLUSTER_LABEL;
    const NAMESPACE: &str = crate::names::NAMESPACE_LABEL;

    #[test]
    fn records_are_found_by_namespace_and_name_and_leave_on_delete() {
        let records: Records<ConfigMap> = Records::default();
        let a: ConfigMap = child(Some("ns"), "a", &[(CLUSTER, "g")]);
        records.observe(&watcher::Event::Apply(super::super::slim::keep(a.clone())));
        assert!(records.get(Some("ns"), "a").is_some());
        assert!(records.get_for(&a).is_some());
        assert!(records.get(Some("other"), "a").is_none());
        assert!(records.get(None, "a").is_none());
        records.observe(&watcher::Event::Delete(super::super::slim::keep(a)));
        assert!(records.is_empty());
    }

    #[test]
    fn a_relist_replaces_the_cache_when_complete() {
        let records: Records<ConfigMap> = Records::of([
            child(Some("ns"), "gone", &[]),
            child(Some("ns"), "kept", &[]),
        ]);
        records.observe(&watcher::Event::Init);
        let kept: ConfigMap = child(Some("ns"), "kept", &[]);
        records.observe(&watcher::Event::InitApply(super::super::slim::keep(kept)));
        assert_eq!(
            records.len(),
            2,
            "served from the old list until the new one is whole"
        );
        records.observe(&watcher::Event::InitDone);
        assert_eq!(records.len(), 1);
        assert!(records.get(Some("ns"), "gone").is_none());
    }

    #[test]
    fn children_of_a_cluster_by_label_and_namespace_skipping_those_going_away() {
        let mut going: ConfigMap = child(Some("ns"), "going", &[(CLUSTER, "g")]);
        going.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        let records: Records<ConfigMap> = Records::of([
            child(Some("ns"), "mine", &[(CLUSTER, "g")]),
            child(Some("ns"), "other-cluster", &[(CLUSTER, "h")]),
            child(Some("elsewhere"), "same-name", &[(CLUSTER, "g")]),
            going,
        ]);
        assert_eq!(
            records.children_of(&cluster("ns", "g")),
            vec![("mine".to_string(), None)]
        );
        let volumes: Records<PersistentVolume> = Records::of([
            child(None, "pv-1", &[(CLUSTER, "g"), (NAMESPACE, "ns")]),
            child(None, "pv-2", &[(CLUSTER, "g"), (NAMESPACE, "elsewhere")]),
        ]);
        assert_eq!(
            volumes.children_of(&cluster("ns", "g")),
            vec![("pv-1".to_string(), None)]
        );
    }
}
