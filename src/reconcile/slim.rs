//! What the operator keeps of each watched child: a [`Kept`] record, not the object. It
//! holds the name, namespace and resourceVersion, the three labels reconciles read (which
//! also map a child to its cluster, for the controller and the cleanup sweep), the digest of
//! the fields the operator owns (for the steady-state skip in `apply`), and per kind the
//! few facts a reconcile reads of the body (the Deployment's image and rollout, the Job's
//! outcome, digests of a Secret's values).
//!
//! A k8s-openapi struct is large in place however empty its fields (a Deployment 2.4 KB, a
//! Job 2.6 KB, a PersistentVolume 3.5 KB) and every label or annotation map costs a 0.5 KB
//! node; a thousand clusters of a dozen children each made that most of the operator's
//! memory (bench/results/profile-2026-11-26.md). The record is made as each object is
//! deserialised from a list or watch response, so no full child is kept beyond that.
//! Nothing kept is ever sent back to the API server.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Digest as _;

use super::owned::live_digest;
use crate::names::{self, Component, GRAFANA_CONTAINER};
use crate::optional_api::{HTTPRoute, ServiceMonitor};
use crate::status::{JobState, Rollout};

/// A child kind the operator writes, and what reconciles read of its body.
pub trait Slim: Resource<DynamicType = ()> + Serialize + Send + Sync + Sized + 'static {
    /// Read once, as the object arrives; small and owned.
    type Facts: Clone + fmt::Debug + Send + Sync + 'static;

    fn facts(&self) -> Self::Facts;
}

/// The labels reconciles read from a kept child: which cluster (and, for a cluster-scoped
/// volume, which namespace) it belongs to, and which part of it it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeptLabels {
    pub cluster: Option<Box<str>>,
    pub namespace: Option<Box<str>>,
    pub component: Option<Component>,
}

impl KeptLabels {
    fn of(mut labels: BTreeMap<String, String>) -> KeptLabels {
        KeptLabels {
            component: Component::of_labels(&labels),
            cluster: labels.remove(names::CLUSTER_LABEL).map(Into::into),
            namespace: labels.remove(names::NAMESPACE_LABEL).map(Into::into),
        }
    }
}

/// A SHA-256 digest kept as its 32 bytes: a hex String costs 64 bytes on the heap besides
/// its own 24.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(data: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(data).into())
    }

    pub fn from_hex(hex: &str) -> Option<Digest> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex, &mut bytes).ok()?;
        Some(Digest(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// What the operator keeps of one child of kind `K` (see the module documentation).
pub struct Kept<K: Slim> {
    /// Name, namespace, resourceVersion and deletion timestamp; no labels, annotations,
    /// owners or managedFields (the watches map a child to its cluster by its labels).
    metadata: ObjectMeta,
    pub labels: KeptLabels,
    /// The digest of the fields the operator owns; None when it owns none.
    pub digest: Option<Digest>,
    pub facts: K::Facts,
    kind: PhantomData<fn() -> K>,
}

/// Reduces a child to its [`Kept`] record.
pub fn keep<K: Slim>(mut object: K) -> Kept<K> {
    let digest = live_digest(&object).and_then(|hex| Digest::from_hex(&hex));
    let facts = object.facts();
    let meta = object.meta_mut();
    Kept {
        labels: KeptLabels::of(meta.labels.take().unwrap_or_default()),
        metadata: ObjectMeta {
            name: meta.name.take(),
            namespace: meta.namespace.take(),
            resource_version: meta.resource_version.take(),
            deletion_timestamp: meta.deletion_timestamp.take(),
            ..ObjectMeta::default()
        },
        digest,
        facts,
        kind: PhantomData,
    }
}

impl<K: Slim> Clone for Kept<K> {
    fn clone(&self) -> Self {
        Kept {
            metadata: self.metadata.clone(),
            labels: self.labels.clone(),
            digest: self.digest,
            facts: self.facts.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Slim> fmt::Debug for Kept<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kept")
            .field("kind", &K::kind(&()))
            .field("metadata", &self.metadata)
            .field("labels", &self.labels)
            .field("digest", &self.digest)
            .field("facts", &self.facts)
            .finish()
    }
}

/// Served as `K`: lists and watches of `Kept<K>` ask for `K`'s resource.
impl<K: Slim> Resource for Kept<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Read as the full `K`, kept at once: a list page or watch event holds records, not
/// objects.
impl<'de, K: Slim + DeserializeOwned> Deserialize<'de> for Kept<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(keep)
    }
}

/// The Grafana container's image (the upgrade guard compares it) and the rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentFacts {
    pub image: Option<String>,
    pub rollout: Rollout,
}

impl Slim for Deployment {
    type Facts = DeploymentFacts;

    fn facts(&self) -> DeploymentFacts {
        let image = self
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|pod| pod.containers.iter().find(|c| c.name == GRAFANA_CONTAINER))
            .and_then(|c| c.image.clone());
        DeploymentFacts {
            image,
            rollout: Rollout::of(self),
        }
    }
}

/// Whether the installer has finished.
impl Slim for Job {
    type Facts = JobState;

    fn facts(&self) -> JobState {
        JobState::of(self)
    }
}

/// The digest of each value of a Secret, by key (in key order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValueDigests(Box<[(Box<str>, Digest)]>);

impl ValueDigests {
    pub fn get(&self, key: &str) -> Option<Digest> {
        self.0.iter().find(|(k, _)| &**k == key).map(|(_, d)| *d)
    }
}

/// The digest of each value: the pod-template hash needs no more, and the operator holds
/// no secret value beyond the reconcile that reads it.
impl Slim for Secret {
    type Facts = ValueDigests;

    fn facts(&self) -> ValueDigests {
        let values = self.data.iter().flatten();
        ValueDigests(
            values
                .map(|(key, value)| (key.as_str().into(), Digest::of(&value.0)))
                .collect(),
        )
    }
}

/// Kinds of which reconciles read nothing beyond the record.
macro_rules! no_facts {
    ($($kind:ty),* $(,)?) => {
        $(impl Slim for $kind {
            type Facts = ();

            fn facts(&self) {}
        })*
    };
}

no_facts!(
    ConfigMap,
    Service,
    PersistentVolumeClaim,
    PersistentVolume,
    PodDisruptionBudget,
    NetworkPolicy,
    ServiceAccount,
    Ingress,
    HTTPRoute,
    ServiceMonitor,
);

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use serde_json::json;

    fn live_deployment() -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "g", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "generation": 3,
                "labels": {
                    "grafana-ha.io/cluster": "g", "app.kubernetes.io/name": "grafana",
                    "app.kubernetes.io/component": "server",
                },
                "annotations": {
                    "grafana-ha.io/applied-hash": "abc",
                    "deployment.kubernetes.io/revision": "2",
                },
                "ownerReferences": [{"apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster", "name": "g", "uid": "o"}],
                "managedFields": [{
                    "manager": crate::names::FIELD_MANAGER, "operation": "Apply",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}},
                }],
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [
                    {"name": "sidecar", "image": "s"},
                    {"name": "grafana", "image": "grafana/grafana:12.1.0", "env": [{"name": "A", "value": "1"}]},
                ]}},
            },
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2, "observedGeneration": 3},
        })
    }

    #[test]
    fn a_kept_deployment_holds_identity_owners_labels_digest_image_and_rollout() {
        let full: Deployment = serde_json::from_value(live_deployment()).expect("a Deployment");
        let digest = live_digest(&full).expect("owned fields");
        let kept: Kept<Deployment> =
            serde_json::from_value(live_deployment()).expect("read as a record");
        let meta = kept.meta();
        assert_eq!(meta.name.as_deref(), Some("g"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert!(meta.owner_references.is_none(), "mapped by label");
        assert!(meta.labels.is_none() && meta.annotations.is_none());
        assert!(meta.managed_fields.is_none());
        assert_eq!(
            kept.labels,
            KeptLabels {
                cluster: Some("g".into()),
                namespace: None,
                component: Some(Component::Server),
            }
        );
        assert_eq!(kept.digest.map(Digest::to_hex), Some(digest));
        assert_eq!(
            kept.facts,
            DeploymentFacts {
                image: Some("grafana/grafana:12.1.0".into()),
                rollout: Rollout {
                    replicas: 3,
                    ready: 2,
                    updated: 3,
                    available: 2,
                    observed: true,
                },
            }
        );
    }

    #[test]
    fn a_record_is_served_as_its_kind_and_is_a_fraction_of_its_size() {
        assert_eq!(Kept::<Deployment>::kind(&()), "Deployment");
        assert_eq!(Kept::<Deployment>::api_version(&()), "apps/v1");
        assert_eq!(Kept::<PersistentVolume>::plural(&()), "persistentvolumes");
        let url = Kept::<Job>::url_path(&(), Some("ns"));
        assert_eq!(url, Job::url_path(&(), Some("ns")));
        for (kept, full) in [
            (size_of::<Kept<Deployment>>(), size_of::<Deployment>()),
            (size_of::<Kept<Job>>(), size_of::<Job>()),
            (
                size_of::<Kept<PersistentVolume>>(),
                size_of::<PersistentVolume>(),
            ),
        ] {
            assert!(kept * 4 < full, "{kept} bytes kept of {full}");
        }
    }

    #[test]
    fn a_kept_secret_holds_digests_not_values() {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some("s".into()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                "password".to_string(),
                ByteString(b"hunter2".to_vec()),
            )])),
            ..Secret::default()
        };
        let kept = keep(secret);
        assert_eq!(
            kept.facts.get("password").map(Digest::to_hex),
            Some(crate::hash::sha256_hex(b"hunter2"))
        );
        assert_eq!(kept.facts.get("username"), None);
        assert!(!format!("{kept:?}").contains("hunter2"));
    }

    #[test]
    fn a_child_never_applied_has_no_digest_and_its_record_finds_it_by_key() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("c".into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            data: Some([("grafana.ini".to_string(), "x".repeat(4096))].into()),
            ..ConfigMap::default()
        };
        cm.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some("someone-else".into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(json!({"f:data": {}}))),
            ..ManagedFieldsEntry::default()
        }]);
        let kept = keep(cm.clone());
        assert!(kept.digest.is_none(), "not the operator's fields");
        let records = super::super::records::Records::of([cm.clone()]);
        assert!(records.get_for(&cm).is_some_and(|r| r.digest.is_none()));
    }
}
