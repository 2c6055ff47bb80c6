//! The `GrafanaCluster` API (`grafana-ha.io/v1alpha1`).
//!
//! Everything the user can say lives here, with the CEL rules that admission enforces. The
//! same rules run client-side in [`validation`], so `render` and the controller refuse exactly
//! what `kubectl apply` would.

pub mod defaults;
pub mod validation;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the GrafanaCluster resource.
pub const GROUP: &str = "grafana-ha.io";

/// A highly available Grafana on AWS: the operator discovers the RDS database, the
/// ElastiCache cache and the EFS file system by tag and runs Grafana as several stateless
/// replicas wired to them.
// Several printcolumn(...) entries repeat `type_`, which clippy mistakes for a duplicated
// attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "grafana-ha.io",
    version = "v1alpha1",
    kind = "GrafanaCluster",
    namespaced,
    shortname = "gfc",
    category = "grafana",
    status = "GrafanaClusterStatus",
    derive = "PartialEq",
    doc = "GrafanaCluster runs Grafana highly available on AWS: several replicas behind one RDS database, an ElastiCache remote cache and plugins on EFS, all found by tag.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "Desired Grafana replicas"
    ),
    printcolumn(
        name = "Ready",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "Grafana replicas that pass readiness"
    ),
    printcolumn(
        name = "Engine",
        type_ = "string",
        json_path = ".status.database.engine",
        description = "Database engine in use"
    ),
    printcolumn(
        name = "Database",
        type_ = "string",
        json_path = ".status.database.endpoint",
        description = "Database endpoint in use"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Ready condition"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("has(self.database)").message("spec.database is required: at least database.credentials"),
    validation = Rule::new("!has(self.plugins) || !has(self.plugins.accessMode) || self.plugins.accessMode != 'ReadWriteOnce' || self.replicas <= 1").message("spec.plugins.accessMode ReadWriteOnce cannot be shared by several replicas: use ReadWriteMany (EFS) or set replicas to 1"),
    validation = Rule::new("!has(self.database) || has(self.database.endpoint) || (has(self.database.tags) && size(self.database.tags) > 0) || (has(self.aws) && has(self.aws.tags) && size(self.aws.tags) > 0)").message("spec.database: set database.endpoint, or a tag selector in database.tags or aws.tags (discovery with an empty selector would match every database)"),
    validation = Rule::new("!has(self.database) || !has(self.database.credentials) || !has(self.database.credentials.rdsManagedSecret) || !self.database.credentials.rdsManagedSecret || !has(self.database.endpoint)").message("spec.database.credentials.rdsManagedSecret needs discovery (the secret ARN comes from RDS): remove database.endpoint or use credentials.secretRef"),
    validation = Rule::new("(has(self.cache) && has(self.cache.enabled) && !self.cache.enabled) || (has(self.cache) && has(self.cache.endpoint)) || (has(self.cache) && has(self.cache.tags) && size(self.cache.tags) > 0) || (has(self.aws) && has(self.aws.tags) && size(self.aws.tags) > 0)").message("spec.cache: set cache.endpoint, a tag selector in cache.tags or aws.tags, or cache.enabled: false"),
    validation = Rule::new("(has(self.plugins) && has(self.plugins.storageClassName)) || (has(self.plugins) && has(self.plugins.efs) && (has(self.plugins.efs.fileSystemId) || (has(self.plugins.efs.tags) && size(self.plugins.efs.tags) > 0))) || (has(self.aws) && has(self.aws.tags) && size(self.aws.tags) > 0)").message("spec.plugins: set plugins.storageClassName, plugins.efs.fileSystemId, a tag selector in plugins.efs.tags or aws.tags"),
    validation = Rule::new("!has(self.alerting) || !has(self.alerting.ha) || self.alerting.ha != 'redis' || !has(self.cache) || ((!has(self.cache.enabled) || self.cache.enabled) && (!has(self.cache.engine) || self.cache.engine == 'redis'))").message("spec.alerting.ha: redis needs a Redis cache (cache.engine redis and cache.enabled)")
)]
#[serde(rename_all = "camelCase")]
pub struct GrafanaClusterSpec {
    /// Number of Grafana replicas. Also driven through the scale subresource (`kubectl scale gfc`,
    /// HorizontalPodAutoscaler); the operator never overrides the count they set.
    #[serde(default = "defaults::replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,

    /// Grafana container image. Defaults to the Grafana release pinned by this operator version
    /// (see status.image); pin it here to control upgrades yourself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Where and how to look for AWS resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsSpec>,

    /// The shared SQL database (RDS Postgres or MySQL). Several replicas need one: SQLite is
    /// never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,

    /// The remote cache (ElastiCache Redis/Valkey or Memcached) shared by the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSpec>,

    /// Plugin storage shared by all replicas (ReadWriteMany) and the plugins to install on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginsSpec>,

    /// Public address of Grafana.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,

    /// Which built-in authentication methods are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// The initial admin user. Without secretRef the operator generates a password once and
    /// keeps it in the Secret <name>-admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_credentials: Option<AdminCredentialsSpec>,

    /// Unified alerting high availability between the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,

    /// Compute resources of each Grafana container. Defaults to requests = limits of
    /// 500m CPU and 512Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Rolling update of the Grafana Deployment. Defaults to maxSurge 1, maxUnavailable 0:
    /// full capacity during a rollout and one new pod at a time racing for the database
    /// migration lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdateSpec>,

    /// The PodDisruptionBudget around the replicas (default on, maxUnavailable 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetSpec>,

    /// Node labels the Grafana pods must run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the Grafana pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Affinity of the Grafana pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// Topology spread of the Grafana pods. Defaults to a soft spread over zones and nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,

    /// Extra environment variables of the Grafana container. Variables the operator manages
    /// cannot be overridden, and values of secret-looking variables (PASSWORD, SECRET, TOKEN,
    /// KEY) must come from valueFrom, never a literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.all(e, !has(e.value) || e.value == '' || !e.name.upperAscii().matches('(PASSWORD|SECRET|TOKEN|_KEY$|CONNSTR|_URL$)'))").message("spec.env: a secret-looking variable (PASSWORD, SECRET, TOKEN, *_KEY, CONNSTR, *_URL) must use valueFrom.secretKeyRef, not a literal value"))]
    #[schemars(schema_with = "bounded_env_schema")]
    pub env: Option<Vec<EnvVar>>,
}

/// The schema of `spec.env`: Kubernetes' EnvVar with bounds on the list and on names, so
/// the API server can afford the CEL rule over it (CEL cost is estimated from the bounds).
fn bounded_env_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<EnvVar>>();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("maxItems".into(), 64.into());
        if let Some(name) = obj
            .get_mut("items")
            .and_then(|i| i.get_mut("properties"))
            .and_then(|p| p.get_mut("name"))
            .and_then(|n| n.as_object_mut())
        {
            name.insert("maxLength".into(), 256.into());
        }
        if let Some(value) = obj
            .get_mut("items")
            .and_then(|i| i.get_mut("properties"))
            .and_then(|p| p.get_mut("value"))
            .and_then(|n| n.as_object_mut())
        {
            value.insert("maxLength".into(), 32768.into());
        }
    }
    schema
}

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
    validation = Rule::new("!has(self.sslMode) || !has(self.engine) || (self.engine == 'postgres' && self.sslMode in ['disable', 'require', 'verify-ca', 'verify-full']) || (self.engine == 'mysql' && self.sslMode in ['true', 'false', 'skip-verify'])").message("spec.database.sslMode: postgres takes disable, require, verify-ca or verify-full; mysql takes true, false or skip-verify")
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
    #[serde(default = "defaults::username_key")]
    #[schemars(length(min = 1, max = 253))]
    pub username_key: String,
    /// Key of the password.
    #[serde(default = "defaults::password_key")]
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

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    /// crds/ holds the output of `grafana-ha-operator crd`; regenerate it with `make crds`.
    #[test]
    fn committed_crd_matches_the_rust_types() {
        let generated =
            serde_yaml::to_string(&super::GrafanaCluster::crd()).expect("CRD serializes");
        let committed = include_str!("../../crds/grafanacluster.yaml");
        assert!(
            generated == committed,
            "crds/grafanacluster.yaml is out of date: run `make crds` and commit the result"
        );
    }

    #[test]
    fn every_field_is_described() {
        let crd = serde_json::to_value(super::GrafanaCluster::crd()).expect("json");
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut undescribed = Vec::new();
        walk(schema, "spec", &mut undescribed);
        assert!(
            undescribed.is_empty(),
            "fields without a description: {undescribed:?}"
        );
    }

    fn walk(schema: &serde_json::Value, path: &str, out: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, sub) in props {
                let p = format!("{path}.{name}");
                // Kubernetes' own types (affinity, tolerations, env...) describe themselves.
                let ours = ![
                    "affinity",
                    "tolerations",
                    "topologySpreadConstraints",
                    "env",
                    "resources",
                    "maxSurge",
                    "maxUnavailable",
                    "minAvailable",
                ]
                .contains(&name.as_str());
                if ours && sub.get("description").is_none() {
                    out.push(p.clone());
                }
                if ours {
                    walk(sub, &p, out);
                }
            }
        }
    }
}
