//! The parts of the GrafanaCluster spec: AWS, database, cache, plugins, server, auth,
//! alerting, rollout and disruption budget.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where and how to look for AWS resources.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSpec {
    /// AWS region. Defaults to the operator's region (AWS_REGION or its AWS profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,

    /// Tags that every discovered resource (database, cache, EFS) must carry, all of them.
    /// Component `tags` are merged over these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Option<BTreeMap<String, String>>,
}

/// A fixed network endpoint; skips discovery.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// DNS name or IP address.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// TCP port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
}

/// SQL engine of the Grafana database.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseEngine {
    Postgres,
    Mysql,
}

/// The shared SQL database.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.tags) && has(self.endpoint))").message("spec.database: set at most one of tags and endpoint"),
    validation = Rule::new("!has(self.tags) || size(self.tags) > 0").message("spec.database.tags: an empty selector would match every database; remove it or add a tag"),
    validation = Rule::new("!has(self.endpoint) || has(self.engine)").message("spec.database.engine: required with database.endpoint (discovery cannot tell the engine)"),
    validation = Rule::new("!has(self.sslMode) || !has(self.engine) || (self.engine == 'postgres' && self.sslMode in ['disable', 'require', 'verify-ca', 'verify-full']) || (self.engine == 'mysql' && self.sslMode in ['true', 'false', 'skip-verify'])").message("spec.database.sslMode: postgres takes disable, require, verify-ca or verify-full; mysql takes true, false or skip-verify"),
    validation = Rule::new("!has(self.sslMode) || !(self.sslMode in ['verify-ca', 'verify-full', 'true']) || has(self.caBundleConfigMapRef)").message("spec.database.caBundleConfigMapRef: sslMode verify-ca, verify-full and true verify the server against a CA the Grafana image does not trust; name a ConfigMap holding the CA bundle (e.g. the RDS global bundle)")
)]
pub struct DatabaseSpec {
    /// Extra tags, merged over spec.aws.tags, that select the RDS instance or cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Use this endpoint instead of discovering one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,

    /// postgres or mysql. Required with endpoint; otherwise taken from discovery (mariadb and
    /// aurora-mysql count as mysql, aurora-postgresql as postgres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<DatabaseEngine>,

    /// Database (schema) name. Defaults to the RDS DBName, else "grafana".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,

    /// Where the database user and password come from.
    pub credentials: DatabaseCredentials,

    /// TLS mode. postgres: disable, require (default), verify-ca, verify-full. mysql: true,
    /// false, skip-verify (default: encrypted without a CA bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub ssl_mode: Option<String>,

    /// ConfigMap key holding the CA bundle (e.g. the RDS global bundle) used to verify the
    /// database certificate; needed for verify-ca/verify-full and mysql true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_config_map_ref: Option<KeyRef>,

    /// How many connections the replicas may hold together. By default each replica's pool
    /// is sized so that every replica, plus the extra pods of a rollout, stays within a share
    /// of the RDS instance's max_connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_budget: Option<ConnectionBudgetSpec>,
}

/// The database connection budget.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionBudgetSpec {
    /// Percent of the database's max_connections Grafana may use, the rest left to other
    /// clients and RDS itself (default 75).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub share_percent: Option<i32>,
    /// Connections per replica (GF_DATABASE_MAX_OPEN_CONN), instead of the computed one. It
    /// is still checked against the budget: over it, the ConnectionBudget condition is False.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_open_per_replica: Option<i32>,
}

/// Where the database user and password come from: exactly one of secretRef and
/// rdsManagedSecret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretRef) != (has(self.rdsManagedSecret) && self.rdsManagedSecret)").message("spec.database.credentials: set exactly one of secretRef and rdsManagedSecret: true"))]
pub struct DatabaseCredentials {
    /// A Secret in the GrafanaCluster's namespace with the user and password. Referenced from
    /// the pods, never copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<UserPasswordSecretRef>,

    /// Use the RDS-managed master user secret (Secrets Manager). The operator keeps a copy in
    /// the Secret <name>-db-credentials and refreshes it when RDS rotates the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rds_managed_secret: Option<bool>,
}

/// A Secret holding a user name and a password.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPasswordSecretRef {
    /// Secret name, in the GrafanaCluster's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the user name.
    #[serde(default = "super::defaults::username_key")]
    #[schemars(length(min = 1, max = 253))]
    pub username_key: String,
    /// Key of the password.
    #[serde(default = "super::defaults::password_key")]
    #[schemars(length(min = 1, max = 253))]
    pub password_key: String,
}

/// One key of a Secret or ConfigMap in the GrafanaCluster's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// Object name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key in the object's data.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Remote cache engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheEngine {
    Redis,
    Memcached,
}

/// The remote cache.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.tags) && has(self.endpoint))").message("spec.cache: set at most one of tags and endpoint"),
    validation = Rule::new("!has(self.tags) || size(self.tags) > 0").message("spec.cache.tags: an empty selector would match every cache; remove it or add a tag"),
    validation = Rule::new("!has(self.endpoint) || has(self.engine)").message("spec.cache.engine: required with cache.endpoint (discovery cannot tell the engine)"),
    validation = Rule::new("!has(self.authTokenSecretRef) || !has(self.engine) || self.engine == 'redis'").message("spec.cache.authTokenSecretRef: Memcached has no auth token")
)]
pub struct CacheSpec {
    /// Use a remote cache (default true). false keeps the cache in the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// Extra tags, merged over spec.aws.tags, that select the ElastiCache replication group or
    /// Memcached cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Use this endpoint instead of discovering one (engine is then required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,

    /// redis (also Valkey) or memcached. Otherwise taken from discovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<CacheEngine>,

    /// Secret key holding the Redis AUTH token (ElastiCache never reveals it through the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_secret_ref: Option<KeyRef>,

    /// TLS to Redis. Defaults to on exactly when the replication group has in-transit
    /// encryption; required with endpoint to turn TLS on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
}

/// Access mode of the plugins volume.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum PluginsAccessMode {
    ReadWriteMany,
    ReadWriteOnce,
}

/// Plugin storage and the plugins to install.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.efs) && has(self.storageClassName))").message("spec.plugins: set at most one of efs and storageClassName"),
    validation = Rule::new("!has(self.install) || self.install.all(p, p.matches('^[a-z0-9][a-z0-9._-]*@[0-9A-Za-z][0-9A-Za-z.+_-]*$'))").message("spec.plugins.install: each entry must be a pinned id@version, e.g. grafana-clock-panel@2.1.8"),
    validation = Rule::new("!has(self.install) || self.install.all(p, self.install.exists_one(q, q.split('@')[0] == p.split('@')[0]))").message("spec.plugins.install: each plugin id may appear once")
)]
pub struct PluginsSpec {
    /// Plugins on an EFS file system, found by tag or given by id, through a static
    /// ReadWriteMany PersistentVolume for the EFS CSI driver. The default when
    /// storageClassName is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs: Option<EfsSpec>,

    /// Provision the plugins volume dynamically from this StorageClass (e.g. an EFS CSI class
    /// with provisioningMode efs-ap) instead of a static EFS volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,

    /// Access mode of the plugins volume. ReadWriteOnce is allowed only with one replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<PluginsAccessMode>,

    /// Requested size of the plugins volume (EFS ignores it; the API requires one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub size: Option<String>,

    /// Plugins to install, each as a pinned id@version. A single Job per plugin set installs
    /// them into the shared volume; replicas only load them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), inner(length(min = 3, max = 128)))]
    pub install: Option<Vec<String>>,
}

/// The EFS file system for plugins.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.tags) && has(self.fileSystemId))").message("spec.plugins.efs: set at most one of tags and fileSystemId"),
    validation = Rule::new("!has(self.tags) || size(self.tags) > 0").message("spec.plugins.efs.tags: an empty selector would match every file system; remove it or add a tag")
)]
pub struct EfsSpec {
    /// Extra tags, merged over spec.aws.tags, that select the file system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Use this file system (fs-...) instead of discovering one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^fs-[0-9a-f]{8,40}$"))]
    pub file_system_id: Option<String>,

    /// Mount through this access point (fsap-...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^fsap-[0-9a-f]{8,40}$"))]
    pub access_point_id: Option<String>,

    /// When plugins are installed and no access point is named or tagged, create one with
    /// root directory /grafana/<namespace>/<name> owned by Grafana's user (472:472, mode
    /// 0755), tagged grafana-ha.io/owner=<namespace>/<name>. Needs the IAM actions
    /// elasticfilesystem:CreateAccessPoint and elasticfilesystem:TagResource. Deleting the
    /// GrafanaCluster keeps the access point and its data. Default true; false refuses
    /// plugins on the file system's root instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_access_point: Option<bool>,
}

/// Public address of Grafana.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Public host name (GF_SERVER_DOMAIN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub domain: Option<String>,
    /// Full public URL (GF_SERVER_ROOT_URL), e.g. https://grafana.example.com/.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub root_url: Option<String>,
}

/// Built-in authentication methods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// HTTP basic authentication for the API (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<bool>,
    /// Anonymous (viewer) access (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
}

/// The initial admin user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredentialsSpec {
    /// A Secret with the admin user and password. Grafana reads it only when it first creates
    /// the admin user in the database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<UserPasswordSecretRef>,
}

/// How the replicas share unified-alerting state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertingHa {
    Gossip,
    Redis,
    Off,
}

/// Unified alerting high availability.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertingSpec {
    /// gossip (default: memberlist over the headless Service on port 9094), redis (through
    /// the Redis cache), or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<AlertingHa>,
}

/// Rolling update settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateSpec {
    /// Extra pods during a rollout (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    /// Pods that may be unavailable during a rollout (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// PodDisruptionBudget settings: at most one of minAvailable and maxUnavailable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.minAvailable) && has(self.maxUnavailable))").message("spec.podDisruptionBudget: set at most one of minAvailable and maxUnavailable"))]
pub struct PodDisruptionBudgetSpec {
    /// Create the PodDisruptionBudget (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Pods that must stay available during voluntary disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be down during voluntary disruptions (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// How Grafana upgrades across minor and major versions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UpgradeStrategy {
    /// Stop the old version, let one new pod migrate the database, then scale out.
    Safe,
    /// A plain rolling update: old pods keep writing while the first new pod migrates.
    RollingUpgrade,
}

/// Version-aware rollouts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeSpec {
    /// Safe (default) or RollingUpgrade, for minor and major version changes; patch
    /// versions always roll normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<UpgradeStrategy>,
    /// Take an RDS snapshot before a minor or major upgrade migrates the database (needs
    /// rds:CreateDBSnapshot / rds:CreateDBClusterSnapshot and rds:DescribeDBSnapshots /
    /// rds:DescribeDBClusterSnapshots). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<bool>,
    /// Run an image older than the version the database was migrated to. Set it to that
    /// version (status.databaseVersion) to confirm you restored the database or know the
    /// older version can use it: Grafana's migrations only move forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub accept_downgrade_from: Option<String>,
}
