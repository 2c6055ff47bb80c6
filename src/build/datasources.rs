//! The data source provisioning file: a ConfigMap mounted at Grafana's
//! `provisioning/datasources` directory.
//!
//! Grafana reads data source provisioning files at startup only (and on the admin API's
//! `POST /api/admin/provisioning/datasources/reload`, which would have to be called on every
//! replica); unlike dashboards, it does not poll them. So a change of this file must roll
//! the pods: the digest of its data enters the pod-template hash, exactly like a referenced
//! Secret's. A metadata-only change of the ConfigMap changes nothing.
//!
//! Data sources are `editable: false` (the file owns them) and carry uids derived from the
//! workspace (see `resolve::datasources`), so dashboards keep their references across
//! restarts and re-provisioning. A workspace that disappears is listed under
//! `deleteDatasources`: Grafana keeps a provisioned data source whose entry left the file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, Volume, VolumeMount};
use serde_json::{Value, json};

use super::meta::child_meta;
use crate::hash::sha256_hex;
use crate::names::Component;
use crate::resolve::datasources::{AMP_PLUGIN_ID, CLOUDWATCH_NAME, CLOUDWATCH_UID};
use crate::resolve::{DataSourcesPlan, Plan};

/// The key of the provisioning file in the ConfigMap.
pub const FILE_KEY: &str = "datasources.yaml";
/// Where the official image reads data source provisioning files
/// (GF_PATHS_PROVISIONING=/etc/grafana/provisioning, plus `datasources`).
pub const MOUNT_PATH: &str = "/etc/grafana/provisioning/datasources";
const VOLUME: &str = "datasources";
/// Provisioned data sources live in the main organisation.
const ORG_ID: i64 = 1;

/// The provisioning file (Grafana's apiVersion 1 format).
pub fn provisioning_file(plan: &DataSourcesPlan) -> String {
    let status = &plan.status;
    let mut datasources: Vec<Value> = status
        .prometheus
        .iter()
        .map(|ws| {
            json!({
                "name": ws.name,
                "uid": ws.uid,
                "type": AMP_PLUGIN_ID,
                "access": "proxy",
                "orgId": ORG_ID,
                // The workspace root: Grafana appends api/v1/query and friends itself.
                "url": ws.url,
                "editable": false,
                "jsonData": {
                    // AMP answers both; POST keeps long queries out of URLs.
                    "httpMethod": "POST",
                    "sigV4Auth": true,
                    // The AWS SDK's default chain: the pod's IRSA or EKS Pod Identity role.
                    "sigV4AuthType": "default",
                    "sigV4Region": ws.region,
                },
            })
        })
        .collect();
    if let Some(region) = &status.cloudwatch_region {
        datasources.push(json!({
            "name": CLOUDWATCH_NAME,
            "uid": CLOUDWATCH_UID,
            "type": "cloudwatch",
            "access": "proxy",
            "orgId": ORG_ID,
            "editable": false,
            "jsonData": {
                "authType": "default",
                "defaultRegion": region,
            },
        }));
    }
    let deletes: Vec<Value> = status
        .retired
        .iter()
        .map(|name| json!({ "name": name, "orgId": ORG_ID }))
        .collect();
    let mut file = json!({ "apiVersion": 1, "datasources": datasources });
    if !deletes.is_empty() {
        file["deleteDatasources"] = Value::Array(deletes);
    }
    // A JSON value of strings, numbers and booleans always serializes.
    serde_yaml::to_string(&file).unwrap_or_default()
}

/// The ConfigMap, when there are data sources to provision (or to delete).
pub fn config_map(plan: &Plan) -> Option<ConfigMap> {
    let ds = plan.data_sources.as_ref()?;
    Some(ConfigMap {
        metadata: child_meta(&plan.cluster, ds.config_map.clone(), Component::DataSources),
        data: Some(BTreeMap::from([(
            FILE_KEY.to_string(),
            provisioning_file(ds),
        )])),
        ..ConfigMap::default()
    })
}

/// The digest of the provisioning file, keyed like a Secret key's (`configmap/<name>/<key>`)
/// for the pod-template hash: a new workspace rolls the pods, which then provision it.
pub fn digest(plan: &Plan) -> Option<(String, String)> {
    let ds = plan.data_sources.as_ref()?;
    let key = format!("configmap/{}/{FILE_KEY}", ds.config_map);
    Some((key, sha256_hex(provisioning_file(ds).as_bytes())))
}

/// The volume and mount of the provisioning file.
pub fn volume(plan: &Plan) -> Option<(Volume, VolumeMount)> {
    let ds = plan.data_sources.as_ref()?;
    let volume = Volume {
        name: VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: ds.config_map.clone(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: VOLUME.into(),
        mount_path: MOUNT_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    Some((volume, mount))
}

#[cfg(test)]
mod tests;
