//! The plugins volume: a StorageClass from the spec, or the EFS file system (and access
//! point) the tags or an id select.

use crate::api::{GrafanaClusterSpec, GrafanaClusterStatus, PluginsAccessMode, StorageStatus};
use crate::build::pod::GRAFANA_UID;
use crate::facts::{AccessPointRequest, Lookup, OWNER_TAG, StorageFacts};
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
/// installer runs as Grafana's user. An access point with Grafana's POSIX user can: unless
/// `spec.plugins.efs.createAccessPoint` is false, the operator creates one (returned here
/// for the controller to send; the condition says it is being created), else the spec is
/// refused with what to do.
pub fn check_writable(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    mut resolved: Resolved<StorageStatus>,
) -> (Resolved<StorageStatus>, Option<AccessPointRequest>) {
    let Some(status) = &resolved.target else {
        return (resolved, None);
    };
    let (true, Some(fs), None) = (
        installs(spec),
        status.file_system_id.clone(),
        &status.access_point_id,
    ) else {
        return (resolved, None);
    };
    // Only a file system found now gets an access point: a last good target kept while
    // discovery fails may no longer be the file system the spec selects.
    let request = (may_create(spec) && !resolved.stale).then(|| access_point(cluster, spec, &fs));
    resolved.condition = match &request {
        Some(request) => ConditionState::failed(
            Reason::CreatingAccessPoint,
            format!(
                "no EFS access point on {fs} for this cluster yet: creating one with root directory {} owned by {}:{} (mode {}), tagged {OWNER_TAG}={}",
                request.root_path,
                request.uid,
                request.gid,
                request.permissions,
                owner(cluster)
            ),
        ),
        None => ConditionState::failed(
            Reason::AccessPointRequired,
            format!(
                "spec.plugins.install needs a writable directory, and the root of {fs} is not writable by Grafana's user (uid 472; the EFS CSI driver ignores fsGroup): let the operator create an access point (spec.plugins.efs.createAccessPoint: true), tag an EFS access point with POSIX user 472:472 and a root directory created for it, name it in spec.plugins.efs.accessPointId, or use spec.plugins.storageClassName with an efs-ap StorageClass"
            ),
        ),
    };
    resolved.target = None;
    resolved.stale = false;
    (resolved, request)
}

fn installs(spec: &GrafanaClusterSpec) -> bool {
    spec.plugins
        .as_ref()
        .and_then(|p| p.install.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// `spec.plugins.efs.createAccessPoint`, default true.
fn may_create(spec: &GrafanaClusterSpec) -> bool {
    spec.plugins
        .as_ref()
        .and_then(|p| p.efs.as_ref())
        .and_then(|e| e.create_access_point)
        .unwrap_or(true)
}

/// `<namespace>/<name>`: the value of the owner tag.
pub fn owner(cluster: &ClusterRef) -> String {
    format!("{}/{}", cluster.namespace, cluster.name)
}

/// The access point to create for `cluster` on `file_system_id`. Everything in it derives
/// from the cluster and the file system alone, so every round, restart and replica sends
/// the very same request (same client token) and EFS creates it once.
pub fn access_point(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    file_system_id: &str,
) -> AccessPointRequest {
    let owner = owner(cluster);
    let identity = format!("{owner}\n{file_system_id}");
    AccessPointRequest {
        region: spec.aws.as_ref().and_then(|a| a.region.clone()),
        file_system_id: file_system_id.to_string(),
        // EFS takes 1..64 characters; 11 + 40.
        client_token: format!(
            "grafana-ha-{}",
            crate::hash::short_hash(identity.as_bytes(), 40)
        ),
        root_path: format!("/grafana/{}/{}", cluster.namespace, cluster.name),
        uid: GRAFANA_UID,
        gid: GRAFANA_UID,
        permissions: "0755".into(),
        tags: [
            (OWNER_TAG.to_string(), owner),
            (
                "Name".to_string(),
                format!("grafana-{}-{}", cluster.namespace, cluster.name),
            ),
        ]
        .into(),
    }
}

/// What became of the access point resolve asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateOutcome<'a> {
    /// Created (or returned again for the same client token), with its id.
    Created(&'a str),
    /// AWS refused or failed, with the reason of the failure and its message.
    Failed(Reason, &'a str),
    /// The operator runs with --create-access-points=false: nothing was sent.
    Disabled,
}

/// The condition after the controller acted on `request`: created (the next round finds
/// and mounts it), failed (naming the IAM actions a denial usually means), or not allowed.
pub fn after_create(
    mut resolved: Resolved<StorageStatus>,
    request: &AccessPointRequest,
    outcome: CreateOutcome<'_>,
) -> Resolved<StorageStatus> {
    let fs = &request.file_system_id;
    resolved.condition = match outcome {
        CreateOutcome::Disabled => ConditionState::failed(
            Reason::AccessPointRequired,
            format!(
                "plugins on {fs} need an EFS access point and the operator does not create them (--create-access-points=false, chart value aws.createAccessPoints): name one in spec.plugins.efs.accessPointId or tag one with the selector tags (POSIX user 472:472)"
            ),
        ),
        CreateOutcome::Created(id) => ConditionState::failed(
            Reason::CreatingAccessPoint,
            format!(
                "created EFS access point {id} on {fs} at {}; mounting it once discovery sees it",
                request.root_path
            ),
        ),
        CreateOutcome::Failed(reason, message) => {
            let hint = if reason == Reason::AwsAccessDenied {
                "; the operator's IAM role needs elasticfilesystem:CreateAccessPoint and elasticfilesystem:TagResource (or set spec.plugins.efs.createAccessPoint: false and name an access point)"
            } else {
                ""
            };
            ConditionState::failed(
                Reason::AccessPointCreateFailed,
                format!(
                    "creating an EFS access point on {fs} at {} failed ({reason}): {message}{hint}",
                    request.root_path
                ),
            )
        }
    };
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

#[cfg(test)]
mod tests;
