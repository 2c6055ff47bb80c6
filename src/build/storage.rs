//! The shared plugins volume: a ReadWriteMany claim, and for EFS its static volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::meta::child_meta;
use crate::api::PluginsAccessMode;
use crate::names::{self, Component};
use crate::resolve::Plan;

/// The EFS CSI driver.
pub const EFS_CSI_DRIVER: &str = "efs.csi.aws.com";

fn access_mode(mode: PluginsAccessMode) -> String {
    match mode {
        PluginsAccessMode::ReadWriteMany => "ReadWriteMany",
        PluginsAccessMode::ReadWriteOnce => "ReadWriteOnce",
    }
    .to_string()
}

/// The static EFS PersistentVolume. Cluster-scoped, so it carries no owner reference; its
/// reclaim policy is Retain: deleting a GrafanaCluster never deletes plugin data on EFS.
pub fn volume(plan: &Plan) -> Option<PersistentVolume> {
    let handle = plan.storage.volume_handle.clone()?;
    let name = plan.storage.status.volume_name.clone()?;
    let mut labels = names::common_labels(&plan.cluster.name, Component::PluginsStorage);
    labels.insert(
        names::NAMESPACE_LABEL.into(),
        plan.cluster.namespace.clone(),
    );
    Some(PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            // EFS ignores capacity; the API requires one.
            capacity: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(plan.storage.size.clone()),
            )])),
            access_modes: Some(vec![access_mode(plan.storage.access_mode)]),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            // No class: binds only to claims asking for class "" (ours). An explicit "" would
            // be dropped by the API server and read back as drift.
            storage_class_name: None,
            volume_mode: Some("Filesystem".into()),
            // Encryption in transit through the EFS mount helper.
            mount_options: Some(vec!["tls".into()]),
            claim_ref: Some(ObjectReference {
                namespace: Some(plan.cluster.namespace.clone()),
                name: Some(plan.storage.status.claim_name.clone()),
                ..ObjectReference::default()
            }),
            csi: Some(CSIPersistentVolumeSource {
                driver: EFS_CSI_DRIVER.into(),
                volume_handle: handle,
                ..CSIPersistentVolumeSource::default()
            }),
            ..PersistentVolumeSpec::default()
        }),
        status: None,
    })
}

/// The plugins claim every replica mounts.
pub fn claim(plan: &Plan) -> PersistentVolumeClaim {
    let storage = &plan.storage;
    let (class, volume_name) = match &storage.status.storage_class_name {
        Some(class) => (class.clone(), None),
        // Static binding: an empty class keeps a default StorageClass away.
        None => (String::new(), storage.status.volume_name.clone()),
    };
    PersistentVolumeClaim {
        metadata: child_meta(
            &plan.cluster,
            storage.status.claim_name.clone(),
            Component::PluginsStorage,
        ),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode(storage.access_mode)]),
            storage_class_name: Some(class),
            volume_name,
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn efs_volume_is_static_rwx_retained_and_bound() {
        let w = fixtures::plan();
        let pv = volume(&w).expect("pv");
        let spec = pv.spec.as_ref().expect("spec");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.access_modes, Some(vec!["ReadWriteMany".to_string()]));
        let csi = spec.csi.as_ref().expect("csi");
        assert_eq!(csi.driver, "efs.csi.aws.com");
        assert_eq!(
            csi.volume_handle,
            "fs-0123456789abcdef0::fsap-0123456789abcdef0"
        );
        assert!(pv.metadata.owner_references.is_none());
        let pvc = claim(&w);
        let claim_ref = spec.claim_ref.as_ref().expect("claimRef");
        assert_eq!(claim_ref.name, pvc.metadata.name);
        assert_eq!(claim_ref.namespace.as_deref(), Some("obs"));
        let pvc_spec = pvc.spec.expect("spec");
        assert_eq!(pvc_spec.volume_name, pv.metadata.name);
        assert_eq!(pvc_spec.storage_class_name.as_deref(), Some(""));
        assert_eq!(
            pvc_spec.access_modes,
            Some(vec!["ReadWriteMany".to_string()])
        );
    }

    #[test]
    fn access_point_goes_into_the_handle() {
        let mut gathered = fixtures::gathered();
        let mut fs = fixtures::file_system();
        fs.access_point_id = Some("fsap-0123456789abcdef0".into());
        gathered.storage = fixtures::found(fs);
        let w = crate::resolve::resolve(&fixtures::article(), &gathered)
            .plan
            .expect("plan");
        let pv = volume(&w).expect("pv");
        assert_eq!(
            pv.spec.expect("spec").csi.expect("csi").volume_handle,
            "fs-0123456789abcdef0::fsap-0123456789abcdef0"
        );
    }

    #[test]
    fn storage_class_means_dynamic_claim_and_no_volume() {
        let gc = fixtures::cluster(serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"enabled": false},
            "plugins": {"storageClassName": "aws-efs", "size": "5Gi"},
        }));
        let w = fixtures::plan_of(&gc);
        assert!(volume(&w).is_none());
        let spec = claim(&w).spec.expect("spec");
        assert_eq!(spec.storage_class_name.as_deref(), Some("aws-efs"));
        assert!(spec.volume_name.is_none());
        assert_eq!(
            spec.resources.expect("res").requests.expect("req")["storage"],
            Quantity("5Gi".into())
        );
    }
}
