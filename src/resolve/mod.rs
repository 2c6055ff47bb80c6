//! Pure: from a GrafanaCluster and what was gathered (AWS facts, referenced Secrets) to one
//! [`Plan`] that holds every decision with every default applied, plus one condition per
//! component. The builders read the plan and nothing else.
//!
//! When discovery fails after a cluster was set up, the last good target recorded in the
//! status is used instead: an AWS hiccup (or a second database appearing with the same tags)
//! must never blank a working Deployment. The condition then says why, and the cluster is
//! reported Degraded.

mod access;
mod budget;
mod cache;
mod component;
mod config;
mod credentials;
mod database;
pub mod datasources;
mod pod;
mod server;
mod storage;
pub mod telemetry;
pub mod upgrade;
pub mod version;

use std::collections::BTreeMap;

use crate::api::{
    AlertingHa, CacheEngine, CacheStatus, DatabaseStatus, GrafanaCluster, GrafanaClusterSpec,
    KeyRef, PluginsAccessMode, StorageStatus,
};
use crate::facts::{AccessPointRequest, ManagedCredentials, SecretValue, Tags};
use crate::gather::Gathered;
use crate::names;
use crate::status::ConditionState;

pub use access::{
    AccessPlan, CreatedServiceAccount, IngressPlan, IngressTls, PodExtras, ServiceAccountPlan,
    ServicePlan,
};
pub use component::{Discovered, Resolved};
pub use config::{ConfigPlan, LDAP_FILE, SecretSetting, env_from_objects, referenced_config_maps};
pub use credentials::{SecretUse, SecretUser, referenced_user_secrets, references};
pub use database::wants_managed_secret;
pub use datasources::{DataSourceFacts, DataSourcesPlan};
pub use pod::{DisruptionBudget, PodSettings, RollingUpdate};
pub use storage::{
    CreateOutcome, access_point as access_point_request, after_create as after_access_point_create,
    owner,
};
pub use telemetry::{ExtrasPlan, wants_optional_api};

/// The GrafanaCluster that owns the children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    pub name: String,
    pub namespace: String,
    /// Absent when rendering a file: the object has no uid yet.
    pub uid: Option<String>,
}

impl ClusterRef {
    pub fn of(gc: &GrafanaCluster) -> ClusterRef {
        ClusterRef {
            name: gc.metadata.name.clone().unwrap_or_default(),
            namespace: gc.metadata.namespace.clone().unwrap_or_default(),
            uid: gc.metadata.uid.clone(),
        }
    }
}

/// A Secret and the keys of a user name and a password in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyPair {
    pub secret: String,
    pub username_key: String,
    pub password_key: String,
}

/// Where Grafana's database user and password come from.
#[derive(Clone, Debug, PartialEq)]
pub enum DatabaseCredentials {
    /// The user's Secret, referenced by the pods and never copied.
    UserSecret(SecretKeyPair),
    /// The RDS-managed master secret in Secrets Manager; the operator keeps a copy in
    /// `copy` and refreshes it when RDS rotates the password.
    RdsManaged {
        copy: SecretKeyPair,
        /// The current value; None when Secrets Manager could not be read now (or the
        /// database is served from the last good status) and the existing copy keeps
        /// serving.
        current: Option<ManagedCredentials>,
    },
}

impl DatabaseCredentials {
    /// The Secret and keys the pods read.
    pub fn keys(&self) -> &SecretKeyPair {
        match self {
            DatabaseCredentials::UserSecret(keys) => keys,
            DatabaseCredentials::RdsManaged { copy, .. } => copy,
        }
    }
}

/// The CA file Grafana's database client reads.
#[derive(Clone, Debug, PartialEq)]
pub enum DatabaseCa {
    /// The user's bundle (e.g. the RDS global bundle), mounted from a ConfigMap.
    Bundle(KeyRef),
    /// The image's system bundle: MySQL `skip-verify` does not verify, but Grafana reads a
    /// CA file for every TLS mode, and an empty path fails the connection.
    System,
}

/// Connections each replica's pool may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionPool {
    pub max_open: u32,
    pub max_idle: u32,
}

/// The database to wire.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabasePlan {
    pub status: DatabaseStatus,
    pub ssl_mode: String,
    pub ca: Option<DatabaseCa>,
    pub credentials: DatabaseCredentials,
    pub pool: ConnectionPool,
    /// How `pool` relates to the database's max_connections (the ConnectionBudget
    /// condition).
    pub budget: ConditionState,
}

/// The Redis AUTH token: where the pods' copy comes from, and its value when it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct RedisAuth {
    pub token_ref: KeyRef,
    /// None only when Secrets were not read (render without a kubeconfig).
    pub token: Option<SecretValue>,
}

/// How Grafana reaches the cache.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheConnection {
    /// The connection string, which embeds the AUTH token, lives in the operator's Secret
    /// `secret` and reaches the pods through secretKeyRef.
    Redis {
        secret: String,
        auth: Option<RedisAuth>,
    },
    /// `host:port`, no secret involved.
    Memcached,
}

/// The cache to wire.
#[derive(Clone, Debug, PartialEq)]
pub struct CachePlan {
    pub status: CacheStatus,
    pub connection: CacheConnection,
    /// Key prefix: several GrafanaClusters may share one cache.
    pub prefix: String,
}

impl CachePlan {
    pub fn engine(&self) -> CacheEngine {
        self.status.engine
    }
}

/// The plugins volume to create.
#[derive(Clone, Debug, PartialEq)]
pub struct StoragePlan {
    pub status: StorageStatus,
    pub access_mode: PluginsAccessMode,
    pub size: String,
    /// `fs-x` or `fs-x::fsap-y` for a static EFS volume.
    pub volume_handle: Option<String>,
}

/// The plugin set to install once into the shared volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSet {
    /// Sorted `id@version` entries.
    pub plugins: Vec<String>,
    pub hash: String,
    pub job_name: String,
}

/// How the replicas share unified-alerting state.
#[derive(Clone, Debug, PartialEq)]
pub enum AlertingPlan {
    /// Memberlist over the headless Service.
    /// `label` keeps two clusters' peers apart when pod IPs are reused.
    Gossip {
        service: String,
        peers: String,
        label: String,
    },
    /// Through the Redis cache.
    Redis {
        address: String,
        prefix: String,
        tls: bool,
        password: Option<KeyRef>,
    },
    Off,
}

impl AlertingPlan {
    pub fn mode(&self) -> AlertingHa {
        match self {
            AlertingPlan::Gossip { .. } => AlertingHa::Gossip,
            AlertingPlan::Redis { .. } => AlertingHa::Redis,
            AlertingPlan::Off => AlertingHa::Off,
        }
    }
}

/// A Secret the operator generates once and never rewrites.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    pub secret: String,
    /// A fresh value, written only if the Secret does not exist.
    pub value: SecretValue,
    /// The Secret is known not to exist: this round creates it with `value`, whose digest
    /// then enters the pod-template hash. False when it exists (its value is the one in the
    /// cluster) or when Secrets were not read.
    pub new: bool,
}

/// The initial admin user.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminCredentials {
    UserSecret(SecretKeyPair),
    /// `<name>-admin`, user `admin` and a generated password.
    Generated(Generated),
}

impl AdminCredentials {
    pub fn keys(&self) -> SecretKeyPair {
        match self {
            AdminCredentials::UserSecret(keys) => keys.clone(),
            AdminCredentials::Generated(g) => credentials::generated_pair(&g.secret),
        }
    }
}

/// Public address and built-in authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPlan {
    pub domain: Option<String>,
    pub root_url: Option<String>,
    pub basic_auth: bool,
    pub anonymous_auth: bool,
    /// The operator sets `server.serve_from_sub_path`: the Ingress or HTTPRoute routes a
    /// sub-path and `spec.config` does not decide it.
    pub serve_from_sub_path: bool,
    /// The path every request to a pod starts with (`/grafana`), empty at the root: the
    /// probes' and the metrics scrape's prefix (see server.rs).
    pub sub_path: String,
}

/// Every decision about one GrafanaCluster, defaults applied: what the builders read.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub cluster: ClusterRef,
    /// The image the Deployment runs this round (during a safe upgrade, maybe the old one).
    pub image: String,
    /// The Deployment's replicas this round (during a safe upgrade, 0 or 1 on the way).
    pub replicas: i32,
    /// The version-aware rollout's decision: what the status records of it.
    pub upgrade: upgrade::UpgradeDecision,
    pub database: DatabasePlan,
    pub cache: Option<CachePlan>,
    pub storage: StoragePlan,
    pub plugins: Option<PluginSet>,
    pub alerting: AlertingPlan,
    pub admin: AdminCredentials,
    /// The shared signing key (`[security] secret_key`).
    pub signing_key: Generated,
    pub server: ServerPlan,
    pub pod: PodSettings,
    /// The ServiceAccount, the Service's exposure, the Ingress and the user's pod additions.
    pub access: AccessPlan,
    /// Zones the pods (and the installer) must run in: those with an EFS mount target, or
    /// empty (anywhere) with a StorageClass. A pod elsewhere could never mount the plugins.
    pub required_zones: Vec<String>,
    /// Zones the pods prefer, with a weight: a single-AZ database's (50) and cache's (25),
    /// so that Grafana's queries do not cross a zone when they need not.
    pub preferred_zones: Vec<(String, i32)>,
    pub rolling_update: RollingUpdate,
    pub disruption_budget: Option<DisruptionBudget>,
    /// Digests of the data of every Secret key the pods read, keyed `secret/key`, and of
    /// every Secret and ConfigMap they read whole, keyed `secret:name` / `configmap:name`
    /// (`configmap:name/key` for one key), as read from the cluster.
    pub secret_digests: BTreeMap<String, String>,
    /// AWS data sources to provision (None: nothing to write).
    pub data_sources: Option<DataSourcesPlan>,
    /// The HTTPRoute, ServiceMonitor and NetworkPolicies around the replicas.
    pub extras: ExtrasPlan,
    /// The user's Grafana settings and envFrom.
    pub config: ConfigPlan,
}

/// Why the admin credentials cannot be used, when they cannot.
pub type AdminProblem = Option<String>;

/// The outcome of resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub database: Resolved<DatabaseStatus>,
    pub cache: Resolved<CacheStatus>,
    pub storage: Resolved<StorageStatus>,
    pub data_sources: Resolved<crate::api::DataSourcesStatus>,
    /// The ConfigResolved condition: the user's settings and the objects they read.
    pub config: ConditionState,
    pub admin_problem: AdminProblem,
    /// Why the user's ServiceAccount cannot be used (it does not exist): nothing is built
    /// meanwhile, so a running Deployment is never pointed at it.
    pub service_account_problem: Option<String>,
    /// Present when every component has a target (current or last good) and no referenced
    /// Secret is missing: the cluster can be (re)built.
    pub plan: Option<Plan>,
    /// The EFS access point the controller should create (never `render`): plugins are
    /// installed on a file system with none for this cluster. There is no plan meanwhile.
    pub access_point: Option<AccessPointRequest>,
    /// The OptionalAPIs condition: whether the HTTPRoute and ServiceMonitor asked for can
    /// be written.
    pub optional_apis: ConditionState,
}

impl Resolution {
    /// True when some component runs on a last good target because discovery failed now.
    pub fn stale(&self) -> bool {
        self.database.stale || self.cache.stale || self.storage.stale || self.data_sources.stale
    }

    /// The component conditions, in status order.
    pub fn conditions(&self) -> [(crate::status::ConditionType, &ConditionState); 5] {
        use crate::status::ConditionType;
        [
            (ConditionType::DatabaseResolved, &self.database.condition),
            (ConditionType::CacheResolved, &self.cache.condition),
            (ConditionType::StorageResolved, &self.storage.condition),
            (
                ConditionType::DataSourcesResolved,
                &self.data_sources.condition,
            ),
            (ConditionType::ConfigResolved, &self.config),
        ]
    }
}

/// The selector for a component: the shared `spec.aws.tags` with the component's tags merged
/// over them.
pub fn merged_selector(spec: &GrafanaClusterSpec, component: Option<&Tags>) -> Tags {
    let mut tags = spec
        .aws
        .as_ref()
        .and_then(|a| a.tags.clone())
        .unwrap_or_default();
    if let Some(extra) = component {
        tags.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    tags
}

/// Whether the remote cache is on.
pub fn cache_enabled(spec: &GrafanaClusterSpec) -> bool {
    spec.cache.as_ref().and_then(|c| c.enabled).unwrap_or(true)
}

/// The Grafana image to run.
pub fn image(spec: &GrafanaClusterSpec) -> String {
    spec.image
        .clone()
        .unwrap_or_else(|| crate::api::defaults::GRAFANA_IMAGE.to_string())
}

/// The plugin set of the spec on the volume `claim`, if any plugins are listed or needed by
/// the data sources. The volume is part of the set's identity: the same list on a new volume
/// must be installed again.
pub fn plugin_set(gc_name: &str, spec: &GrafanaClusterSpec, claim: &str) -> Option<PluginSet> {
    let mut plugins: Vec<String> = spec
        .plugins
        .as_ref()
        .and_then(|p| p.install.clone())
        .unwrap_or_default();
    // A needed plugin the user already lists (at any version) keeps the user's version.
    let id = |entry: &str| entry.split('@').next().unwrap_or_default().to_string();
    for needed in datasources::required_plugins(spec) {
        if !plugins.iter().any(|p| id(p) == id(&needed)) {
            plugins.push(needed);
        }
    }
    if plugins.is_empty() {
        return None;
    }
    plugins.sort();
    plugins.dedup();
    let identity = format!("{}\nvolume={claim}", plugins.join("\n"));
    let hash = crate::hash::short_hash(identity.as_bytes(), 10);
    Some(PluginSet {
        job_name: names::plugins_job(gc_name, &hash),
        plugins,
        hash,
    })
}

/// Resolves every component of `gc` from what was gathered, falling back to the last good
/// targets in `gc.status`, and makes the plan when everything resolved.
pub fn resolve(gc: &GrafanaCluster, gathered: &Gathered) -> Resolution {
    let spec = &gc.spec;
    let cluster = ClusterRef::of(gc);
    let last = gc.status.as_ref();
    let secrets = &gathered.secrets;

    let database = database::resolve(spec, gathered.database.as_ref(), last)
        .with_secret_problem(secrets.problems.database.as_deref());
    let cache = cache::resolve(spec, gathered.cache.as_ref(), last)
        .with_secret_problem(secrets.problems.cache.as_deref());
    let storage = storage::resolve(&cluster, spec, gathered.storage.as_ref(), last);
    let credentials = credentials::database(&cluster.name, spec, gathered);
    let (database, database_plan) = database::plan(
        spec,
        last.and_then(|s| s.connections_per_replica),
        gathered.autoscaler_max,
        database,
        credentials,
        &gathered.secrets,
    );
    let (storage, access_point) = storage::check_writable(&cluster, spec, storage);
    let (data_sources, data_sources_plan) =
        datasources::resolve(&cluster, spec, &gathered.data_sources, last);

    let cache_ready = !cache_enabled(spec) || cache.target.is_some();
    let config_plan = config::plan(spec);
    let config_condition = config::condition(&config_plan, &secrets.problems);
    let plan = match (database_plan, &storage.target) {
        (Some(database), Some(st))
            if cache_ready
                && secrets.problems.admin.is_none()
                && gathered.service_account_problem.is_none()
                && secrets.problems.config.is_none()
                && secrets.problems.config_refused.is_none() =>
        {
            let cache = cache
                .target
                .clone()
                .map(|status| cache::plan(&cluster, spec, status, secrets));
            let alerting = cache::alerting(&cluster, spec, cache.as_ref());
            let target = image(spec);
            let preferred_zones =
                pod::preferred_zones(&database.status, cache.as_ref().map(|c| &c.status));
            let upgrade = upgrade::decide(&upgrade::UpgradeInputs {
                cluster: &cluster.name,
                spec,
                previous: gc.status.as_ref(),
                live: gathered.deployment.as_ref(),
                snapshot: &gathered.snapshot,
                database: &database.status,
                target: &target,
                now: gathered.now,
            });
            let extras = telemetry::extras(
                &cluster.name,
                spec,
                &gathered.optional_apis,
                matches!(alerting, AlertingPlan::Gossip { .. }),
                database.status.port,
                cache.as_ref().map(|c| c.status.port),
                plugin_set(&cluster.name, spec, &st.claim_name).is_some(),
            );
            Some(Plan {
                extras,
                image: upgrade.image.clone(),
                replicas: upgrade.replicas,
                upgrade,
                database,
                cache,
                storage: storage::plan(spec, st.clone()),
                plugins: plugin_set(&cluster.name, spec, &st.claim_name),
                alerting,
                admin: credentials::admin(&cluster.name, spec, secrets),
                signing_key: credentials::signing_key(&cluster.name, secrets),
                server: server::plan(spec),
                pod: pod::settings(&cluster.name, spec),
                access: access::plan(&cluster.name, spec),
                required_zones: st.mount_target_zones.clone(),
                preferred_zones,
                rolling_update: pod::rolling_update(spec),
                disruption_budget: pod::disruption_budget(spec),
                secret_digests: secrets.digests.clone(),
                data_sources: data_sources_plan,
                config: config_plan,
                cluster: cluster.clone(),
            })
        }
        _ => None,
    };
    Resolution {
        database,
        cache,
        storage,
        data_sources,
        config: config_condition,
        admin_problem: secrets.problems.admin.clone(),
        service_account_problem: gathered.service_account_problem.clone(),
        plan,
        access_point,
        optional_apis: telemetry::condition(&gathered.optional_apis),
    }
}

#[cfg(test)]
mod tests;
