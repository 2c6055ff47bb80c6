//! What the operator keeps of each watched child: identity, labels and owners (for the
//! controller's mapping and the cleanup sweep), the digest of the fields it owns (for the
//! steady-state skip in `apply`), and only the few status fields a reconcile reads. A
//! thousand clusters' pod templates are the bulk of the operator's memory otherwise.
//!
//! Every stored child passes through [`Slim::slim`] once, on the way from the watch into
//! the store; nothing stored is ever sent back to the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, PodSpec, PodTemplateSpec,
    Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;

use super::owned::{OWNED_DIGEST, live_digest};
use crate::names::{self, GRAFANA_CONTAINER};

/// A child kind reduced to what reconciles read.
pub trait Slim: Resource + Serialize {
    /// Drops the fields no reconcile reads. `metadata` is handled by [`slim`].
    fn drop_body(&mut self);
}

/// The labels a reconcile reads from a stored child: which cluster (and, for a
/// cluster-scoped volume, which namespace) it belongs to, and which part of it it is.
const READ_LABELS: [&str; 3] = [
    names::CLUSTER_LABEL,
    names::NAMESPACE_LABEL,
    names::COMPONENT_LABEL,
];

/// Records the owned-field digest, then keeps only identity, the labels reconciles read,
/// owners, the digest and what [`Slim::drop_body`] leaves. (The applied-hash annotation is
/// not kept: it is one of the owned fields, so the digest covers it.)
pub fn slim<K: Slim>(object: &mut K) {
    let digest = live_digest(object);
    object.drop_body();
    let meta = object.meta_mut();
    let labels: BTreeMap<String, String> = meta
        .labels
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| READ_LABELS.contains(&k.as_str()))
        .collect();
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        generation: meta.generation.take(),
        labels: (!labels.is_empty()).then_some(labels),
        owner_references: meta.owner_references.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        annotations: digest.map(|d| BTreeMap::from([(OWNED_DIGEST.to_string(), d)])),
        ..ObjectMeta::default()
    };
}

impl Slim for Deployment {
    /// Kept: spec.replicas, the Grafana container's image (the upgrade guard compares it)
    /// and the status (the rollout).
    fn drop_body(&mut self) {
        let Some(spec) = self.spec.take() else {
            return;
        };
        let image = spec.template.spec.and_then(|pod| {
            pod.containers
                .into_iter()
                .find(|c| c.name == GRAFANA_CONTAINER)
                .and_then(|c| c.image)
        });
        self.spec = Some(DeploymentSpec {
            replicas: spec.replicas,
            template: PodTemplateSpec {
                metadata: None,
                spec: image.map(|image| PodSpec {
                    containers: vec![Container {
                        name: GRAFANA_CONTAINER.to_string(),
                        image: Some(image),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        });
        if let Some(status) = self.status.as_mut() {
            status.conditions = None;
        }
    }
}

impl Slim for Job {
    /// Kept: the status (succeeded, failed, conditions), which says whether the installer
    /// has finished.
    fn drop_body(&mut self) {
        self.spec = None;
        if let Some(conditions) = self.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            for c in conditions {
                c.message = None;
                c.reason = None;
            }
        }
    }
}

impl Slim for Secret {
    /// Kept: the data. The generated Secrets' values are read from the store (their digests
    /// go into the pod template); the operator's Secrets are few and small.
    fn drop_body(&mut self) {}
}

impl Slim for ConfigMap {
    fn drop_body(&mut self) {
        self.data = None;
        self.binary_data = None;
    }
}

impl Slim for Service {
    fn drop_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

impl Slim for PersistentVolumeClaim {
    fn drop_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

impl Slim for PersistentVolume {
    fn drop_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

impl Slim for PodDisruptionBudget {
    fn drop_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

impl Slim for NetworkPolicy {
    fn drop_body(&mut self) {
        self.spec = None;
    }
}

impl Slim for ServiceAccount {
    fn drop_body(&mut self) {
        self.secrets = None;
        self.image_pull_secrets = None;
    }
}

impl Slim for Ingress {
    fn drop_body(&mut self) {
        self.spec = None;
        self.status = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
    use serde_json::json;

    fn live_deployment() -> Deployment {
        let mut d: Deployment = serde_json::from_value(json!({
            "metadata": {
                "name": "g", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "generation": 3, "labels": {"grafana-ha.io/cluster": "g", "app.kubernetes.io/name": "grafana"},
                "annotations": {
                    "grafana-ha.io/applied-hash": "abc",
                    "deployment.kubernetes.io/revision": "2",
                },
                "ownerReferences": [{"apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster", "name": "g", "uid": "o"}],
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [
                    {"name": "grafana", "image": "grafana/grafana:12.1.0", "env": [{"name": "A", "value": "1"}]},
                    {"name": "sidecar", "image": "s"},
                ]}},
            },
            "status": {"replicas": 3, "readyReplicas": 2, "observedGeneration": 3},
        }))
        .expect("a Deployment");
        d.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
            manager: Some(crate::names::FIELD_MANAGER.into()),
            operation: Some("Apply".into()),
            fields_v1: Some(FieldsV1(json!({"f:spec": {"f:replicas": {}}}))),
            ..ManagedFieldsEntry::default()
        }]);
        d
    }

    #[test]
    fn a_slim_deployment_keeps_identity_owners_image_replicas_rollout_and_the_digest() {
        let mut d = live_deployment();
        let digest = live_digest(&d).expect("owned fields");
        slim(&mut d);
        let meta = &d.metadata;
        assert_eq!(meta.name.as_deref(), Some("g"));
        assert_eq!(meta.resource_version.as_deref(), Some("7"));
        assert_eq!(meta.generation, Some(3));
        assert!(meta.managed_fields.is_none());
        assert_eq!(meta.owner_references.as_ref().map(Vec::len), Some(1));
        let annotations = meta.annotations.clone().unwrap_or_default();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), [OWNED_DIGEST]);
        assert_eq!(
            meta.labels
                .clone()
                .unwrap_or_default()
                .keys()
                .collect::<Vec<_>>(),
            [names::CLUSTER_LABEL],
            "only the labels reconciles read"
        );
        assert_eq!(annotations[OWNED_DIGEST], digest);
        let spec = d.spec.as_ref().expect("spec");
        assert_eq!(spec.replicas, Some(3));
        let containers = &spec.template.spec.as_ref().expect("pod").containers;
        assert_eq!(containers.len(), 1);
        assert_eq!(
            containers[0].image.as_deref(),
            Some("grafana/grafana:12.1.0")
        );
        assert!(containers[0].env.is_none());
        assert_eq!(
            d.status,
            Some(DeploymentStatus {
                replicas: Some(3),
                ready_replicas: Some(2),
                observed_generation: Some(3),
                ..DeploymentStatus::default()
            })
        );
    }

    #[test]
    fn a_slim_config_map_keeps_no_data_and_is_far_smaller() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("c".into()),
                ..ObjectMeta::default()
            },
            data: Some([("grafana.ini".to_string(), "x".repeat(4096))].into()),
            ..ConfigMap::default()
        };
        slim(&mut cm);
        assert!(cm.data.is_none());
        assert_eq!(cm.metadata.name.as_deref(), Some("c"));
        assert!(
            cm.metadata.annotations.is_none(),
            "never applied: no digest"
        );
    }
}
