//! Metadata every child shares: the operator's labels and the owner reference to the
//! GrafanaCluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::names::{self, Component};
use crate::resolve::ClusterRef;

/// The controller owner reference to the GrafanaCluster; absent before it has a uid.
pub fn owner_reference(cluster: &ClusterRef) -> Option<OwnerReference> {
    cluster.uid.as_ref().map(|uid| OwnerReference {
        api_version: format!("{}/v1alpha1", crate::api::GROUP),
        kind: "GrafanaCluster".into(),
        name: cluster.name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Metadata of a namespaced child: labels and owner reference.
pub fn child_meta(cluster: &ClusterRef, name: String, component: Component) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(cluster.namespace.clone()),
        labels: Some(names::common_labels(&cluster.name, component)),
        owner_references: owner_reference(cluster).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}
