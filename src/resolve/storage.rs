//! The plugins volume: a StorageClass from the spec, or the EFS file system (and access
//! point) the tags or an id select.

use crate::api::{GrafanaClusterSpec, GrafanaClusterStatus, PluginsAccessMode, StorageStatus};
use crate::facts::{Lookup, StorageFacts};
use crate::names;
use crate::status::{ConditionState, Reason};

use super::component::{Discovered, Resolved, lookup_failure};
use super::{ClusterRef, StoragePlan, merged_selector};

/// Requested size of the plugins volume when the spec names none (EFS ignores it; the API
/// requires one).
const DEFAULT_SIZE: &str = "10Gi";

/// `fs-x`, or `fs-x::fsap-y` through an access point: the EFS CSI volume handle.
fn volume_handle(file_system_id: &str, access_point_id: Option<&str>) -> String {
    match access_point_id {
        Some(ap) => format!("{file_system_id}::{ap}"),
        None => file_system_id.to_string(),
    }
}

pub fn resolve(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<StorageFacts>>,
    last: Option<&GrafanaClusterStatus>,
) -> Resolved<StorageStatus> {
    let plugins = spec.plugins.clone().unwrap_or_default();
    if let Some(class) = &plugins.storage_class_name {
        let status = StorageStatus {
            storage_class_name: Some(class.clone()),
            claim_name: names::plugins_claim(&cluster.name, &format!("sc:{class}")),
            ..StorageStatus::default()
        };
        let message = format!("plugins volume provisioned by StorageClass {class}");
        return Resolved::given(status, Reason::StorageClass, message);
    }
    let efs = plugins.efs.clone().unwrap_or_default();
    let selector = merged_selector(spec, efs.tags.as_ref());
    let found = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => Ok(found(cluster, facts)),
        other => {
            let what = match &efs.file_system_id {
                Some(id) => format!("EFS file system {id}"),
                None => "EFS file system".to_string(),
            };
            Err(lookup_failure("storage", &what, &selector, other))
        }
    };
    Resolved::finish(found, last.and_then(|s| s.storage.clone()))
}

fn found(cluster: &ClusterRef, facts: &StorageFacts) -> (StorageStatus, String) {
    let handle = volume_handle(&facts.file_system_id, facts.access_point_id.as_deref());
    let status = StorageStatus {
        file_system_id: Some(facts.file_system_id.clone()),
        file_system_arn: Some(facts.arn.clone()),
        access_point_id: facts.access_point_id.clone(),
        mount_target_zones: facts.mount_target_zones.clone(),
        storage_class_name: None,
        claim_name: names::plugins_claim(&cluster.name, &handle),
        volume_name: Some(names::plugins_volume(
            &cluster.namespace,
            &cluster.name,
            &handle,
        )),
    };
    let message = format!(
        "found EFS {}{} with mount targets in {} ({})",
        facts.file_system_id,
        facts
            .access_point_id
            .as_ref()
            .map(|ap| format!(" through access point {ap}"))
            .unwrap_or_default(),
        if facts.mount_target_zones.is_empty() {
            "no zone".to_string()
        } else {
            facts.mount_target_zones.join(", ")
        },
        facts.arn
    );
    (status, message)
}

/// Installing plugins onto the root of an EFS file system cannot work: the EFS CSI driver
/// applies no fsGroup, a new file system's root belongs to root with mode 755, and the
/// installer runs as Grafana's user. An access point with Grafana's POSIX user can.
pub fn check_writable(
    spec: &GrafanaClusterSpec,
    mut resolved: Resolved<StorageStatus>,
) -> Resolved<StorageStatus> {
    let installs = spec
        .plugins
        .as_ref()
        .and_then(|p| p.install.as_ref())
        .is_some_and(|i| !i.is_empty());
    let Some(status) = &resolved.target else {
        return resolved;
    };
    if let (true, Some(fs), None) = (installs, &status.file_system_id, &status.access_point_id) {
        resolved.condition = ConditionState::failed(
            Reason::AccessPointRequired,
            format!(
                "spec.plugins.install needs a writable directory, and the root of {fs} is not writable by Grafana's user (uid 472; the EFS CSI driver ignores fsGroup): tag an EFS access point with POSIX user 472:472 and a root directory created for it, name it in spec.plugins.efs.accessPointId, or use spec.plugins.storageClassName with an efs-ap StorageClass"
            ),
        );
        resolved.target = None;
        resolved.stale = false;
    }
    resolved
}

/// The storage part of the plan: access mode, size and the static volume's handle.
pub fn plan(spec: &GrafanaClusterSpec, status: StorageStatus) -> StoragePlan {
    let plugins = spec.plugins.clone().unwrap_or_default();
    StoragePlan {
        volume_handle: status
            .file_system_id
            .as_deref()
            .map(|fs| volume_handle(fs, status.access_point_id.as_deref())),
        access_mode: plugins
            .access_mode
            .unwrap_or(PluginsAccessMode::ReadWriteMany),
        size: plugins.size.unwrap_or_else(|| DEFAULT_SIZE.into()),
        status,
    }
}
