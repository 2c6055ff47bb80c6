//! What the operator found and did: the GrafanaCluster's status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CacheEngine, DatabaseEngine};

/// What the operator found and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaClusterStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods of the Grafana Deployment (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods that pass readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pods running the current pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    /// Label selector of the Grafana pods (for the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The Grafana image in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Ready, DatabaseResolved, CacheResolved, StorageResolved, Progressing, Degraded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The database in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
    /// The cache in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheStatus>,
    /// The plugin storage in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageStatus>,
    /// Plugins installed on the shared volume, and the Job that installed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginsStatus>,
    /// The Grafana version the database was last migrated to (after a rollout completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_version: Option<String>,
    /// A minor or major upgrade in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Box<UpgradeStatus>>,
    /// Connections each replica's pool may open (GF_DATABASE_MAX_OPEN_CONN), kept while it
    /// fits the budget so that scaling does not restart every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_per_replica: Option<i32>,
    /// ARN of the snapshot taken before the last upgrade: restore from it to go back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_upgrade_snapshot_arn: Option<String>,
    /// The AWS data sources provisioned into Grafana.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sources: Option<Box<super::DataSourcesStatus>>,
}

/// The step of a safe upgrade.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UpgradePhase {
    /// Taking the pre-upgrade snapshot; the old version keeps serving.
    Snapshotting,
    /// Scaling the old version to zero.
    Stopping,
    /// One new pod runs the migrations.
    Migrating,
    /// The migrated database serves every replica.
    ScalingOut,
}

/// A safe upgrade in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// The image before the upgrade.
    pub from_image: String,
    /// The image being rolled out.
    pub to_image: String,
    pub phase: UpgradePhase,
    /// When the upgrade started (the snapshot's wait is bounded from here).
    pub started: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The pre-upgrade snapshot's identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// The pre-upgrade snapshot's ARN, once it is available: restore from it to go back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_arn: Option<String>,
}

/// The database in use (never a credential).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// postgres or mysql.
    pub engine: DatabaseEngine,
    /// host:port.
    pub endpoint: String,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Database name.
    pub name: String,
    /// ARN of the RDS instance or cluster (absent when spec.database.endpoint is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// RDS engine as reported by AWS (e.g. aurora-postgresql).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds_engine: Option<String>,
    /// ARN of the RDS-managed master user secret, when used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_secret_arn: Option<String>,
    /// RDS instance class (the writer's for a cluster), which bounds max_connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    /// The zone of a single-AZ database: pods prefer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

/// The cache in use (never a credential).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheStatus {
    /// redis or memcached.
    pub engine: CacheEngine,
    /// host:port.
    pub endpoint: String,
    /// Host name.
    pub host: String,
    /// Port.
    pub port: i32,
    /// TLS in transit.
    pub tls: bool,
    /// ARN of the replication group or cache cluster (absent when spec.cache.endpoint is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The zone of a cache without a standby in another zone: pods prefer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
}

/// The plugin storage in use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageStatus {
    /// EFS file system id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_id: Option<String>,
    /// EFS file system ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_arn: Option<String>,
    /// EFS access point id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    /// Availability zones with an EFS mount target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_target_zones: Vec<String>,
    /// StorageClass for dynamic provisioning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// The PersistentVolumeClaim the replicas mount.
    pub claim_name: String,
    /// The static PersistentVolume (EFS), kept (Retain) when the GrafanaCluster is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_name: Option<String>,
}

/// Installed plugins.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PluginsStatus {
    /// Hash of the plugin set.
    pub hash: String,
    /// The Job that installs this plugin set.
    pub job_name: String,
    /// Whether the Job has completed.
    pub installed: bool,
}
