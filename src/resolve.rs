//! Pure: from a GrafanaCluster and what discovery found to the [`Wiring`] that the builders
//! turn into Kubernetes objects, plus one condition per input.
//!
//! When discovery fails after a cluster was set up, the last good target recorded in the
//! status is used instead: an AWS hiccup (or a second database appearing with the same tags)
//! must never blank a working Deployment. The condition then says why, and the cluster is
//! reported Degraded.

use std::collections::BTreeMap;

use crate::api::{
    AlertingHa, CacheEngine, CacheStatus, DatabaseEngine, DatabaseStatus, GrafanaCluster,
    GrafanaClusterSpec, KeyRef, PluginsAccessMode, StorageStatus, defaults,
};
use crate::facts::{CacheFacts, DatabaseFacts, Lookup, StorageFacts, Tags, format_tags};
use crate::names;

/// What a discovery call produced for one component.
#[derive(Clone, Debug, PartialEq)]
pub enum Discovered<T> {
    /// AWS answered.
    Lookup(Lookup<T>),
    /// AWS could not be asked (throttled, unreachable, denied...).
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The status of one condition, before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl ConditionState {
    fn ok(reason: &str, message: impl Into<String>) -> Self {
        ConditionState {
            status: true,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
    fn failed(reason: &str, message: impl Into<String>) -> Self {
        ConditionState {
            status: false,
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// A resolved component: the target to wire (current or last good), and how it came about.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved<T> {
    pub target: Option<T>,
    pub condition: ConditionState,
    /// True when `target` is the last good one from the status because discovery failed now.
    pub stale: bool,
}

/// Where Grafana's database user and password come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyPair {
    pub secret: String,
    pub username_key: String,
    pub password_key: String,
}

/// The database to wire.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseTarget {
    pub status: DatabaseStatus,
    pub ssl_mode: String,
    pub ca_bundle: Option<KeyRef>,
}

/// The cache to wire.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheTarget {
    pub status: CacheStatus,
    /// Secret key with the Redis AUTH token.
    pub auth_token: Option<KeyRef>,
}

/// The plugins volume to create.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageTarget {
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

/// Everything the builders need, with no AWS or Kubernetes client in sight.
#[derive(Clone, Debug, PartialEq)]
pub struct Wiring {
    pub name: String,
    pub namespace: String,
    pub uid: Option<String>,
    pub image: String,
    pub replicas: i32,
    pub database: DatabaseTarget,
    pub database_credentials: SecretKeyPair,
    pub cache: Option<CacheTarget>,
    pub storage: StorageTarget,
    pub plugins: Option<PluginSet>,
    pub alerting: AlertingHa,
    pub admin_credentials: SecretKeyPair,
    pub secret_key: KeyRef,
    /// Digests of the data of every Secret the pods read, keyed by `secret/key`.
    pub secret_digests: BTreeMap<String, String>,
}

/// Facts the reconciler gathered about one GrafanaCluster.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// None when spec.database.endpoint skips discovery.
    pub database: Option<Discovered<DatabaseFacts>>,
    /// None when the cache is disabled or spec.cache.endpoint skips discovery.
    pub cache: Option<Discovered<CacheFacts>>,
    /// None when spec.plugins.storageClassName provisions dynamically.
    pub storage: Option<Discovered<StorageFacts>>,
    /// Problems with Secrets the pods would reference (missing Secret or key), by component.
    pub secret_problems: SecretProblems,
    /// Digests of the data of every referenced Secret, keyed by `secret/key`.
    pub secret_digests: BTreeMap<String, String>,
}

/// Referenced Secrets that are missing or lack a key, per component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretProblems {
    pub database: Option<String>,
    pub cache: Option<String>,
    pub admin: Option<String>,
}

/// The outcome of resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    pub database: Resolved<DatabaseTarget>,
    pub cache: Resolved<CacheTarget>,
    pub storage: Resolved<StorageTarget>,
    /// Why the admin credentials Secret cannot be used, when it cannot.
    pub admin_problem: Option<String>,
    /// Present when every component has a target (current or last good) and no referenced
    /// Secret is missing: the cluster can be (re)built.
    pub wiring: Option<Wiring>,
}

impl Resolution {
    /// True when some component runs on a last good target because discovery failed now.
    pub fn stale(&self) -> bool {
        self.database.stale || self.cache.stale || self.storage.stale
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
        .unwrap_or_else(|| defaults::GRAFANA_IMAGE.to_string())
}

/// The plugin set of the spec, if any plugins are listed.
pub fn plugin_set(gc_name: &str, spec: &GrafanaClusterSpec) -> Option<PluginSet> {
    let mut plugins: Vec<String> = spec
        .plugins
        .as_ref()
        .and_then(|p| p.install.clone())
        .unwrap_or_default();
    if plugins.is_empty() {
        return None;
    }
    plugins.sort();
    plugins.dedup();
    let hash = crate::hash::short_hash(plugins.join("\n").as_bytes(), 10);
    Some(PluginSet {
        job_name: names::plugins_job(gc_name, &hash),
        plugins,
        hash,
    })
}

/// Resolves every component of `gc` from `observed`, falling back to the last good targets in
/// `gc.status`.
pub fn resolve(gc: &GrafanaCluster, observed: &Observed) -> Resolution {
    let spec = &gc.spec;
    let name = gc.metadata.name.clone().unwrap_or_default();
    let namespace = gc.metadata.namespace.clone().unwrap_or_default();
    let last = gc.status.as_ref();

    let database = with_secret_problem(
        resolve_database(
            spec,
            observed.database.as_ref(),
            last.and_then(|s| s.database.as_ref()),
        ),
        observed.secret_problems.database.as_deref(),
    );
    let cache = with_secret_problem(
        resolve_cache(
            spec,
            observed.cache.as_ref(),
            last.and_then(|s| s.cache.as_ref()),
        ),
        observed.secret_problems.cache.as_deref(),
    );
    let storage = resolve_storage(
        &name,
        &namespace,
        spec,
        observed.storage.as_ref(),
        last.and_then(|s| s.storage.as_ref()),
    );

    let cache_ready = !cache_enabled(spec) || cache.target.is_some();
    let wiring = match (&database.target, &storage.target) {
        (Some(db), Some(st)) if cache_ready && observed.secret_problems.admin.is_none() => {
            Some(Wiring {
                name: name.clone(),
                namespace: namespace.clone(),
                uid: gc.metadata.uid.clone(),
                image: image(spec),
                replicas: spec.replicas,
                database: db.clone(),
                database_credentials: database_credentials(&name, spec),
                cache: cache.target.clone(),
                storage: st.clone(),
                plugins: plugin_set(&name, spec),
                alerting: effective_alerting(spec, cache.target.as_ref()),
                admin_credentials: admin_credentials(&name, spec),
                secret_key: KeyRef {
                    name: names::secret_key_secret(&name),
                    key: names::SECRET_KEY_KEY.to_string(),
                },
                secret_digests: observed.secret_digests.clone(),
            })
        }
        _ => None,
    };
    Resolution {
        database,
        cache,
        storage,
        admin_problem: observed.secret_problems.admin.clone(),
        wiring,
    }
}

/// A referenced Secret that is missing overrides a found target: the pods could not start.
fn with_secret_problem<T>(mut resolved: Resolved<T>, problem: Option<&str>) -> Resolved<T> {
    if let Some(problem) = problem {
        resolved.condition = ConditionState::failed("SecretNotFound", problem);
        resolved.target = None;
    }
    resolved
}

fn database_credentials(name: &str, spec: &GrafanaClusterSpec) -> SecretKeyPair {
    match spec
        .database
        .as_ref()
        .and_then(|d| d.credentials.secret_ref.as_ref())
    {
        Some(r) => SecretKeyPair {
            secret: r.name.clone(),
            username_key: r.username_key.clone(),
            password_key: r.password_key.clone(),
        },
        None => SecretKeyPair {
            secret: names::db_credentials_secret(name),
            username_key: "username".into(),
            password_key: "password".into(),
        },
    }
}

fn admin_credentials(name: &str, spec: &GrafanaClusterSpec) -> SecretKeyPair {
    match spec
        .admin_credentials
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
    {
        Some(r) => SecretKeyPair {
            secret: r.name.clone(),
            username_key: r.username_key.clone(),
            password_key: r.password_key.clone(),
        },
        None => SecretKeyPair {
            secret: names::admin_secret(name),
            username_key: "username".into(),
            password_key: "password".into(),
        },
    }
}

/// Alerting HA as it will run: `redis` needs a Redis cache, and without one falls back to
/// gossip (validation refuses the combinations it can see in the spec; this covers an
/// engine only discovery could tell).
fn effective_alerting(spec: &GrafanaClusterSpec, cache: Option<&CacheTarget>) -> AlertingHa {
    let asked = spec
        .alerting
        .as_ref()
        .and_then(|a| a.ha)
        .unwrap_or(AlertingHa::Gossip);
    match asked {
        AlertingHa::Redis if !cache.is_some_and(|c| c.status.engine == CacheEngine::Redis) => {
            AlertingHa::Gossip
        }
        other => other,
    }
}

fn default_ssl_mode(engine: DatabaseEngine) -> &'static str {
    match engine {
        // Encrypted; verification needs the RDS CA bundle (caBundleConfigMapRef).
        DatabaseEngine::Postgres => "require",
        // Grafana's mysql "true" verifies against a CA bundle it must be given.
        DatabaseEngine::Mysql => "skip-verify",
    }
}

fn resolve_database(
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<DatabaseFacts>>,
    last: Option<&DatabaseStatus>,
) -> Resolved<DatabaseTarget> {
    let db_spec = spec.database.clone().unwrap_or_default();
    let target_of = |status: DatabaseStatus| DatabaseTarget {
        ssl_mode: db_spec
            .ssl_mode
            .clone()
            .unwrap_or_else(|| default_ssl_mode(status.engine).to_string()),
        ca_bundle: db_spec.ca_bundle_config_map_ref.clone(),
        status,
    };
    if let Some(endpoint) = &db_spec.endpoint {
        let engine = db_spec.engine.unwrap_or(DatabaseEngine::Postgres);
        let status = DatabaseStatus {
            engine,
            endpoint: format!("{}:{}", endpoint.host, endpoint.port),
            host: endpoint.host.clone(),
            port: endpoint.port,
            name: db_spec.name.clone().unwrap_or_else(|| "grafana".into()),
            arn: None,
            rds_engine: None,
            managed_secret_arn: None,
        };
        let message = format!(
            "using {} at {} from spec.database.endpoint",
            engine_name(engine),
            status.endpoint
        );
        return Resolved {
            target: Some(target_of(status)),
            condition: ConditionState::ok("Endpoint", message),
            stale: false,
        };
    }
    let selector = merged_selector(spec, db_spec.tags.as_ref());
    let rds_managed = db_spec.credentials.rds_managed_secret.unwrap_or(false);
    let resolved = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => {
            if let Some(engine) = db_spec.engine
                && engine != facts.engine
            {
                Err(ConditionState::failed(
                    "EngineMismatch",
                    format!(
                        "spec.database.engine is {} but {} runs {}",
                        engine_name(engine),
                        facts.arn,
                        facts.rds_engine
                    ),
                ))
            } else if rds_managed && facts.managed_secret_arn.is_none() {
                Err(ConditionState::failed(
                    "NoManagedSecret",
                    format!(
                        "spec.database.credentials.rdsManagedSecret is set but {} has no RDS-managed master user secret (ManageMasterUserPassword)",
                        facts.arn
                    ),
                ))
            } else {
                let status = DatabaseStatus {
                    engine: facts.engine,
                    endpoint: format!("{}:{}", facts.host, facts.port),
                    host: facts.host.clone(),
                    port: facts.port,
                    name: db_spec
                        .name
                        .clone()
                        .or_else(|| facts.db_name.clone())
                        .unwrap_or_else(|| "grafana".into()),
                    arn: Some(facts.arn.clone()),
                    rds_engine: Some(facts.rds_engine.clone()),
                    managed_secret_arn: if rds_managed {
                        facts.managed_secret_arn.clone()
                    } else {
                        None
                    },
                };
                let message = format!(
                    "found {} {} at {} ({})",
                    facts.rds_engine, facts.identifier, status.endpoint, facts.arn
                );
                Ok((status, message))
            }
        }
        other => Err(lookup_failure("database", "RDS database", &selector, other)),
    };
    finish(resolved, last.cloned(), target_of)
}

fn resolve_cache(
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<CacheFacts>>,
    last: Option<&CacheStatus>,
) -> Resolved<CacheTarget> {
    let cache_spec = spec.cache.clone().unwrap_or_default();
    if !cache_enabled(spec) {
        return Resolved {
            target: None,
            condition: ConditionState::ok(
                "Disabled",
                "spec.cache.enabled is false: Grafana caches in the database",
            ),
            stale: false,
        };
    }
    let target_of = |status: CacheStatus| CacheTarget {
        auth_token: cache_spec.auth_token_secret_ref.clone(),
        status,
    };
    if let Some(endpoint) = &cache_spec.endpoint {
        let engine = cache_spec.engine.unwrap_or(CacheEngine::Redis);
        let status = CacheStatus {
            engine,
            endpoint: format!("{}:{}", endpoint.host, endpoint.port),
            host: endpoint.host.clone(),
            port: endpoint.port,
            tls: cache_spec.tls.unwrap_or(false) && engine == CacheEngine::Redis,
            arn: None,
        };
        let message = format!(
            "using {} at {} from spec.cache.endpoint",
            cache_engine_name(engine),
            status.endpoint
        );
        return Resolved {
            target: Some(target_of(status)),
            condition: ConditionState::ok("Endpoint", message),
            stale: false,
        };
    }
    let selector = merged_selector(spec, cache_spec.tags.as_ref());
    let resolved = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => {
            if let Some(engine) = cache_spec.engine
                && engine != facts.engine
            {
                Err(ConditionState::failed(
                    "EngineMismatch",
                    format!(
                        "spec.cache.engine is {} but {} runs {}",
                        cache_engine_name(engine),
                        facts.arn,
                        facts.aws_engine
                    ),
                ))
            } else if facts.auth_token_enabled && cache_spec.auth_token_secret_ref.is_none() {
                Err(ConditionState::failed(
                    "AuthTokenRequired",
                    format!(
                        "{} requires an AUTH token, which AWS never reveals: set spec.cache.authTokenSecretRef",
                        facts.arn
                    ),
                ))
            } else if facts.engine == CacheEngine::Memcached
                && cache_spec.auth_token_secret_ref.is_some()
            {
                Err(ConditionState::failed(
                    "EngineMismatch",
                    format!(
                        "{} is Memcached, which has no AUTH token: remove spec.cache.authTokenSecretRef",
                        facts.arn
                    ),
                ))
            } else {
                let status = CacheStatus {
                    engine: facts.engine,
                    endpoint: format!("{}:{}", facts.host, facts.port),
                    host: facts.host.clone(),
                    port: facts.port,
                    tls: cache_spec.tls.unwrap_or(facts.transit_encryption)
                        && facts.engine == CacheEngine::Redis,
                    arn: Some(facts.arn.clone()),
                };
                let message = format!(
                    "found {} {} at {}{} ({})",
                    facts.aws_engine,
                    facts.identifier,
                    status.endpoint,
                    if status.tls { " with TLS" } else { "" },
                    facts.arn
                );
                Ok((status, message))
            }
        }
        other => Err(lookup_failure(
            "cache",
            "ElastiCache cache",
            &selector,
            other,
        )),
    };
    finish(resolved, last.cloned(), target_of)
}

fn resolve_storage(
    name: &str,
    namespace: &str,
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<StorageFacts>>,
    last: Option<&StorageStatus>,
) -> Resolved<StorageTarget> {
    let plugins = spec.plugins.clone().unwrap_or_default();
    let access_mode = plugins
        .access_mode
        .unwrap_or(PluginsAccessMode::ReadWriteMany);
    let size = plugins.size.clone().unwrap_or_else(|| "10Gi".into());
    let target_of = |status: StorageStatus| StorageTarget {
        volume_handle: status
            .file_system_id
            .as_ref()
            .map(|fs| match &status.access_point_id {
                Some(ap) => format!("{fs}::{ap}"),
                None => fs.clone(),
            }),
        access_mode,
        size: size.clone(),
        status,
    };
    if let Some(class) = &plugins.storage_class_name {
        let status = StorageStatus {
            storage_class_name: Some(class.clone()),
            claim_name: names::plugins_claim(name, &format!("sc:{class}")),
            ..StorageStatus::default()
        };
        let message = format!("plugins volume provisioned by StorageClass {class}");
        return Resolved {
            target: Some(target_of(status)),
            condition: ConditionState::ok("StorageClass", message),
            stale: false,
        };
    }
    let efs = plugins.efs.clone().unwrap_or_default();
    let selector = merged_selector(spec, efs.tags.as_ref());
    let resolved = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => {
            let handle = match &facts.access_point_id {
                Some(ap) => format!("{}::{}", facts.file_system_id, ap),
                None => facts.file_system_id.clone(),
            };
            let status = StorageStatus {
                file_system_id: Some(facts.file_system_id.clone()),
                file_system_arn: Some(facts.arn.clone()),
                access_point_id: facts.access_point_id.clone(),
                mount_target_zones: facts.mount_target_zones.clone(),
                storage_class_name: None,
                claim_name: names::plugins_claim(name, &handle),
                volume_name: Some(names::plugins_volume(namespace, name, &handle)),
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
            Ok((status, message))
        }
        other => {
            let what = match &efs.file_system_id {
                Some(id) => format!("EFS file system {id}"),
                None => "EFS file system".to_string(),
            };
            Err(lookup_failure("storage", &what, &selector, other))
        }
    };
    finish(resolved, last.cloned(), target_of)
}

/// Turns a found target or a failure into a [`Resolved`], falling back to the last good
/// target when there is one.
fn finish<S, T>(
    resolved: Result<(S, String), ConditionState>,
    last: Option<S>,
    target_of: impl Fn(S) -> T,
) -> Resolved<T> {
    match resolved {
        Ok((status, message)) => Resolved {
            target: Some(target_of(status)),
            condition: ConditionState::ok("Found", message),
            stale: false,
        },
        Err(mut condition) => match last {
            Some(last) => {
                condition.message =
                    format!("{}; keeping the last good configuration", condition.message);
                Resolved {
                    target: Some(target_of(last)),
                    condition,
                    stale: true,
                }
            }
            None => Resolved {
                target: None,
                condition,
                stale: false,
            },
        },
    }
}

fn lookup_failure<T>(
    component: &str,
    what: &str,
    selector: &Tags,
    observed: Option<&Discovered<T>>,
) -> ConditionState {
    let by = if selector.is_empty() {
        String::new()
    } else {
        format!(" tagged {}", format_tags(selector))
    };
    match observed {
        None => ConditionState::failed(
            "NotDiscovered",
            format!("{component} discovery has not run"),
        ),
        Some(Discovered::Failed { reason, message }) => {
            ConditionState::failed(reason, format!("looking up the {what}{by}: {message}"))
        }
        Some(Discovered::Lookup(lookup)) => match lookup {
            Lookup::Found(_) => ConditionState::ok("Found", ""),
            Lookup::NotFound { candidates } => ConditionState::failed(
                "NotFound",
                format!("no {what}{by} among {candidates} in the region"),
            ),
            Lookup::Ambiguous { arns } => ConditionState::failed(
                "Ambiguous",
                format!(
                    "{} resources match {what}{by}, refusing to pick one: {}; add a tag to tell them apart",
                    arns.len(),
                    arns.join(", ")
                ),
            ),
            Lookup::NotReady { arn, state } => ConditionState::failed(
                "NotReady",
                format!("{what} {arn} is not ready yet ({state}); waiting"),
            ),
            Lookup::Unsupported { arn, reason } => {
                ConditionState::failed("Unsupported", format!("{what} {arn}: {reason}"))
            }
        },
    }
}

fn engine_name(engine: DatabaseEngine) -> &'static str {
    match engine {
        DatabaseEngine::Postgres => "postgres",
        DatabaseEngine::Mysql => "mysql",
    }
}

fn cache_engine_name(engine: CacheEngine) -> &'static str {
    match engine {
        CacheEngine::Redis => "redis",
        CacheEngine::Memcached => "memcached",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CacheKind, DatabaseKind};

    fn cluster(spec: serde_json::Value) -> GrafanaCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "grafana", "namespace": "obs", "uid": "u-1"},
            "spec": spec,
        }))
        .expect("test spec deserializes")
    }

    fn article() -> GrafanaCluster {
        cluster(serde_json::json!({
            "replicas": 3,
            "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            "plugins": {"install": ["b-panel@1.0.0", "a-panel@2.0.0"]},
        }))
    }

    fn db() -> DatabaseFacts {
        DatabaseFacts {
            arn: "arn:aws:rds:us-east-1:123456789012:db:grafana-db".into(),
            identifier: "grafana-db".into(),
            kind: DatabaseKind::Instance,
            rds_engine: "postgres".into(),
            engine: DatabaseEngine::Postgres,
            host: "grafana-db.abc.us-east-1.rds.amazonaws.com".into(),
            port: 5432,
            db_name: Some("grafana".into()),
            master_username: Some("grafana".into()),
            managed_secret_arn: Some(
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1".into(),
            ),
        }
    }

    fn cache() -> CacheFacts {
        CacheFacts {
            arn: "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:grafana-cache".into(),
            identifier: "grafana-cache".into(),
            kind: CacheKind::ReplicationGroup,
            engine: CacheEngine::Redis,
            aws_engine: "redis".into(),
            host: "master.grafana-cache.abc.use1.cache.amazonaws.com".into(),
            port: 6379,
            transit_encryption: true,
            auth_token_enabled: true,
        }
    }

    fn efs() -> StorageFacts {
        StorageFacts {
            file_system_id: "fs-0123456789abcdef0".into(),
            arn:
                "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
                    .into(),
            access_point_id: Some("fsap-0123456789abcdef0".into()),
            mount_target_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        }
    }

    fn found() -> Observed {
        Observed {
            database: Some(Discovered::Lookup(Lookup::Found(db()))),
            cache: Some(Discovered::Lookup(Lookup::Found(cache()))),
            storage: Some(Discovered::Lookup(Lookup::Found(efs()))),
            ..Observed::default()
        }
    }

    #[test]
    fn article_setup_resolves_everything() {
        let r = resolve(&article(), &found());
        let w = r.wiring.clone().expect("wiring");
        assert_eq!(w.replicas, 3);
        assert_eq!(
            w.database.status.endpoint,
            "grafana-db.abc.us-east-1.rds.amazonaws.com:5432"
        );
        assert_eq!(w.database.ssl_mode, "require");
        assert_eq!(w.database_credentials.secret, "grafana-db-credentials");
        assert!(w.database.status.managed_secret_arn.is_some());
        let c = w.cache.expect("cache");
        assert!(c.status.tls);
        assert_eq!(c.auth_token.expect("token").name, "redis-auth");
        assert_eq!(
            w.storage.volume_handle.as_deref(),
            Some("fs-0123456789abcdef0::fsap-0123456789abcdef0")
        );
        let plugins = w.plugins.expect("plugins");
        assert_eq!(plugins.plugins, vec!["a-panel@2.0.0", "b-panel@1.0.0"]);
        assert!(plugins.job_name.starts_with("grafana-plugins-"));
        assert_eq!(w.alerting, AlertingHa::Gossip);
        assert!(
            r.database.condition.status && r.cache.condition.status && r.storage.condition.status
        );
        assert!(!r.stale());
    }

    #[test]
    fn plugin_hash_ignores_order() {
        let a = plugin_set("g", &article().spec).expect("set");
        let mut spec = article().spec;
        spec.plugins.as_mut().expect("plugins").install =
            Some(vec!["a-panel@2.0.0".into(), "b-panel@1.0.0".into()]);
        assert_eq!(plugin_set("g", &spec).expect("set").hash, a.hash);
        spec.plugins.as_mut().expect("plugins").install = Some(vec!["a-panel@2.0.1".into()]);
        assert_ne!(plugin_set("g", &spec).expect("set").hash, a.hash);
    }

    #[test]
    fn ambiguous_database_names_every_arn_and_builds_nothing() {
        let mut obs = found();
        obs.database = Some(Discovered::Lookup(Lookup::Ambiguous {
            arns: vec!["arn:a".into(), "arn:b".into()],
        }));
        let r = resolve(&article(), &obs);
        assert!(r.wiring.is_none());
        assert_eq!(r.database.condition.reason, "Ambiguous");
        assert!(r.database.condition.message.contains("arn:a, arn:b"));
        assert!(
            r.database
                .condition
                .message
                .contains("grafana-ha.io/cluster=demo")
        );
    }

    #[test]
    fn not_found_and_creating_are_distinct() {
        let mut obs = found();
        obs.database = Some(Discovered::Lookup(Lookup::NotFound { candidates: 4 }));
        let r = resolve(&article(), &obs);
        assert_eq!(r.database.condition.reason, "NotFound");
        assert!(r.database.condition.message.contains("among 4"));
        obs.database = Some(Discovered::Lookup(Lookup::NotReady {
            arn: "arn:db".into(),
            state: "creating".into(),
        }));
        let r = resolve(&article(), &obs);
        assert_eq!(r.database.condition.reason, "NotReady");
        assert!(r.database.condition.message.contains("creating"));
    }

    #[test]
    fn aws_failure_after_setup_keeps_last_good_target() {
        let mut gc = article();
        let first = resolve(&gc, &found());
        gc.status = Some(crate::api::GrafanaClusterStatus {
            database: Some(first.database.target.clone().expect("db").status),
            cache: Some(first.cache.target.clone().expect("cache").status),
            storage: Some(first.storage.target.clone().expect("storage").status),
            ..Default::default()
        });
        let mut obs = found();
        obs.database = Some(Discovered::Failed {
            reason: "AwsThrottled",
            message: "rds DescribeDBInstances throttled".into(),
        });
        let r = resolve(&gc, &obs);
        assert!(r.stale());
        assert_eq!(r.database.condition.reason, "AwsThrottled");
        assert!(
            r.database
                .condition
                .message
                .contains("keeping the last good configuration")
        );
        let w = r.wiring.expect("wiring from last good");
        assert_eq!(w, first.wiring.expect("first wiring"));
    }

    #[test]
    fn aws_failure_before_setup_builds_nothing() {
        let mut obs = found();
        obs.storage = Some(Discovered::Failed {
            reason: "AwsUnavailable",
            message: "efs 500".into(),
        });
        let r = resolve(&article(), &obs);
        assert!(r.wiring.is_none());
        assert!(!r.storage.condition.status);
        assert!(!r.stale());
    }

    #[test]
    fn cache_with_auth_needs_a_token_secret() {
        let mut gc = article();
        gc.spec.cache = None;
        let r = resolve(&gc, &found());
        assert_eq!(r.cache.condition.reason, "AuthTokenRequired");
        assert!(r.wiring.is_none());
    }

    #[test]
    fn disabled_cache_needs_no_discovery() {
        let mut gc = article();
        gc.spec.cache = Some(crate::api::CacheSpec {
            enabled: Some(false),
            ..Default::default()
        });
        let mut obs = found();
        obs.cache = None;
        let r = resolve(&gc, &obs);
        assert!(r.wiring.expect("wiring").cache.is_none());
        assert_eq!(r.cache.condition.reason, "Disabled");
    }

    #[test]
    fn redis_alerting_without_redis_falls_back_to_gossip() {
        let mut gc = article();
        gc.spec.alerting = Some(crate::api::AlertingSpec {
            ha: Some(AlertingHa::Redis),
        });
        gc.spec.cache = None;
        let mut obs = found();
        let mut memcached = cache();
        memcached.engine = CacheEngine::Memcached;
        memcached.auth_token_enabled = false;
        obs.cache = Some(Discovered::Lookup(Lookup::Found(memcached)));
        let w = resolve(&gc, &obs).wiring.expect("wiring");
        assert_eq!(w.alerting, AlertingHa::Gossip);
        assert!(!w.cache.expect("cache").status.tls, "memcached has no TLS");
    }

    #[test]
    fn engine_mismatch_is_reported() {
        let mut gc = article();
        gc.spec.database.as_mut().expect("db").engine = Some(DatabaseEngine::Mysql);
        let r = resolve(&gc, &found());
        assert_eq!(r.database.condition.reason, "EngineMismatch");
    }

    #[test]
    fn managed_secret_must_exist_on_the_database() {
        let mut obs = found();
        let mut facts = db();
        facts.managed_secret_arn = None;
        obs.database = Some(Discovered::Lookup(Lookup::Found(facts)));
        let r = resolve(&article(), &obs);
        assert_eq!(r.database.condition.reason, "NoManagedSecret");
    }

    #[test]
    fn endpoints_and_storage_class_skip_discovery() {
        let gc = cluster(serde_json::json!({
            "database": {"endpoint": {"host": "mysql.internal", "port": 3306}, "engine": "mysql",
                          "credentials": {"secretRef": {"name": "db", "usernameKey": "u", "passwordKey": "p"}}},
            "cache": {"endpoint": {"host": "memcached.internal", "port": 11211}, "engine": "memcached"},
            "plugins": {"storageClassName": "efs-sc"},
        }));
        let r = resolve(&gc, &Observed::default());
        let w = r.wiring.expect("wiring");
        assert_eq!(w.database.ssl_mode, "skip-verify");
        assert_eq!(w.database.status.name, "grafana");
        assert_eq!(w.database_credentials.username_key, "u");
        assert_eq!(
            w.cache.expect("cache").status.engine,
            CacheEngine::Memcached
        );
        assert_eq!(
            w.storage.status.storage_class_name.as_deref(),
            Some("efs-sc")
        );
        assert!(w.storage.volume_handle.is_none());
    }

    #[test]
    fn missing_referenced_secret_blocks_the_rollout() {
        let mut obs = found();
        obs.secret_problems.cache = Some("Secret redis-auth not found".into());
        let r = resolve(&article(), &obs);
        assert_eq!(r.cache.condition.reason, "SecretNotFound");
        assert!(r.wiring.is_none());
    }

    #[test]
    fn merged_selector_lets_component_tags_win() {
        let gc = cluster(serde_json::json!({
            "aws": {"tags": {"app": "grafana", "env": "prod"}},
            "database": {"tags": {"env": "prod-db"}, "credentials": {"rdsManagedSecret": true}},
        }));
        let sel = merged_selector(
            &gc.spec,
            gc.spec.database.as_ref().and_then(|d| d.tags.as_ref()),
        );
        assert_eq!(format_tags(&sel), "app=grafana,env=prod-db");
    }
}
