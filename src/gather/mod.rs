//! Gather: the I/O before the pure middle. Asks AWS about every component the spec does not
//! give explicitly, reads the Secrets the pods will reference (when a Kubernetes client is
//! at hand) and the RDS-managed credentials, and returns it all as plain data
//! ([`Gathered`]). The controller and `render` both call [`gather`], so a preview takes
//! exactly the controller's path.

mod access;
mod config;
mod secrets;

pub use secrets::{PasswordFinding, unquotable};

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::reflector::Store;
use rand::Rng;
use rand::distr::Alphanumeric;

use crate::api::GrafanaCluster;
use crate::aws::{AwsError, AwsErrorKind, Discovery, FileSystemQuery, WorkspaceQuery};
use crate::facts::{
    CacheFacts, DatabaseFacts, Lookup, ManagedCredentials, SecretValue, SnapshotRead, StorageFacts,
};
use crate::optional_api::{ApiAvailability, Availability, OptionalApi, OptionalApis, check};
use crate::reconcile::records::Records;
use crate::resolve::upgrade::LiveDeployment;
use crate::resolve::{Discovered, cache_enabled, merged_selector};
use crate::status::Reason;

/// The operator's own Secrets, as the gatherer reports which of them exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperatorSecret {
    DatabaseCredentials,
    CacheConnection,
    AdminCredentials,
    SigningKey,
}

/// Referenced Secrets that are missing or lack a key, per part of Grafana.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretProblems {
    pub database: Option<String>,
    pub cache: Option<String>,
    pub admin: Option<String>,
    /// spec.configSecrets, spec.ldap, spec.envFrom: a missing object or key.
    pub config: Option<String>,
    /// An envFrom object sets a variable the operator sets.
    pub config_refused: Option<String>,
}

/// What reading the RDS-managed master secret gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ManagedSecretRead {
    /// Not wanted, or the database was not found now.
    #[default]
    NotAsked,
    Read(ManagedCredentials),
    /// Secrets Manager could not be read; why (never a secret value).
    Unavailable(String),
}

/// Fresh random values for the Secrets the operator generates; used only to create one that
/// does not exist.
#[derive(Clone, Debug, PartialEq)]
pub struct FreshValues {
    pub admin_password: SecretValue,
    pub signing_key: SecretValue,
}

impl FreshValues {
    pub fn random() -> FreshValues {
        FreshValues {
            admin_password: random_secret(32),
            signing_key: random_secret(48),
        }
    }
}

fn random_secret(len: usize) -> SecretValue {
    SecretValue::new(
        rand::rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect::<String>(),
    )
}

/// What was read of the Secrets the pods reference.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretReads {
    /// False when there was no Kubernetes client (render without a kubeconfig): nothing
    /// below comes from the cluster.
    pub read: bool,
    /// Digests of the data of every referenced key found, keyed `secret/key`.
    pub digests: BTreeMap<String, String>,
    pub problems: SecretProblems,
    /// The operator's own Secrets that exist.
    pub existing: BTreeSet<OperatorSecret>,
    /// The Redis AUTH token, trimmed.
    pub cache_auth_token: Option<SecretValue>,
    pub managed: ManagedSecretRead,
    /// The database password has characters a Postgres connection string cannot carry.
    pub unquotable_password: Option<PasswordFinding>,
    pub fresh: FreshValues,
}

impl SecretReads {
    /// Nothing read (no client).
    pub fn unread(fresh: FreshValues) -> SecretReads {
        SecretReads {
            read: false,
            digests: BTreeMap::new(),
            problems: SecretProblems::default(),
            existing: BTreeSet::new(),
            cache_auth_token: None,
            managed: ManagedSecretRead::NotAsked,
            unquotable_password: None,
            fresh,
        }
    }
}

/// Everything the pure middle needs about one GrafanaCluster from the outside world.
#[derive(Clone, Debug, PartialEq)]
pub struct Gathered {
    /// None when spec.database.endpoint skips discovery.
    pub database: Option<Discovered<DatabaseFacts>>,
    /// None when the cache is disabled or spec.cache.endpoint skips discovery.
    pub cache: Option<Discovered<CacheFacts>>,
    /// None when spec.plugins.storageClassName provisions dynamically.
    pub storage: Option<Discovered<StorageFacts>>,
    /// The AWS data sources' workspaces and region.
    pub data_sources: crate::resolve::DataSourceFacts,
    pub secrets: SecretReads,
    /// The Grafana Deployment as it runs (from the controller's cache; None for `render`).
    pub deployment: Option<LiveDeployment>,
    /// The pre-upgrade snapshot of a safe upgrade that is taking one.
    pub snapshot: SnapshotRead,
    /// maxReplicas of a HorizontalPodAutoscaler targeting the cluster.
    pub autoscaler_max: Option<i32>,
    /// Whether the optional APIs the spec asks for (HTTPRoute, ServiceMonitor) are served.
    pub optional_apis: ApiAvailability,
    /// When this was gathered: the pure middle's clock.
    pub now: Timestamp,
    /// Why the user's existing ServiceAccount cannot be used (it does not exist).
    pub service_account_problem: Option<String>,
}

/// Where the gatherer reads from.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub discovery: &'a Discovery,
    /// Absent for `render` without a kubeconfig.
    pub client: Option<&'a Client>,
    /// The controller's label-scoped cache of the operator's own Secrets: read from it, a
    /// reconcile asks the API server only for the user's Secrets.
    pub secret_cache: Option<&'a Records<Secret>>,
    /// The controller's cache of the operator's Deployments.
    pub deployment_cache: Option<&'a Records<Deployment>>,
    /// The controller's cache of HorizontalPodAutoscalers.
    pub autoscaler_cache: Option<&'a Store<HorizontalPodAutoscaler>>,
    /// Whether this operator takes pre-upgrade snapshots at all.
    pub snapshots_allowed: bool,
    /// The controller's shared answer to which optional APIs are served; without it (render)
    /// the client, if any, is asked directly.
    pub optional_apis: Option<&'a OptionalApis>,
}

/// The condition reason for an AWS call that failed.
pub fn aws_reason(error: &AwsError) -> Reason {
    match error.kind() {
        AwsErrorKind::Throttled { .. } => Reason::AwsThrottled,
        AwsErrorKind::ServerError { .. } | AwsErrorKind::Transport { .. } => Reason::AwsUnavailable,
        AwsErrorKind::Timeout { .. } => Reason::AwsTimeout,
        AwsErrorKind::AccessDenied { .. } => Reason::AwsAccessDenied,
        AwsErrorKind::Client { .. } => Reason::AwsError,
        AwsErrorKind::Malformed { .. } => Reason::AwsMalformedResponse,
    }
}

fn discovered<T>(result: Result<Lookup<T>, AwsError>) -> Discovered<T> {
    match result {
        Ok(lookup) => Discovered::Lookup(lookup),
        Err(e) => {
            tracing::warn!(error = %e, "AWS discovery failed");
            tracing::debug!(chain = %e.chain(), "AWS discovery failed: the whole error");
            Discovered::Failed {
                reason: aws_reason(&e),
                message: e.to_string(),
            }
        }
    }
}

/// Gathers everything about `gc`. Fails only when the Kubernetes API fails; AWS failures
/// are facts ([`Discovered::Failed`]) the middle reports.
pub async fn gather(gc: &GrafanaCluster, sources: Sources<'_>) -> Result<Gathered, kube::Error> {
    let (database, cache, storage) = discover(gc, sources.discovery).await;
    let data_sources = discover_data_sources(gc, sources.discovery).await;
    let fresh = FreshValues::random();
    let mut secrets = match sources.client {
        Some(client) => {
            let mut reads = secrets::read(gc, client, sources.secret_cache, fresh).await?;
            config::read(gc, client, &mut reads).await?;
            reads
        }
        None => SecretReads::unread(fresh),
    };
    secrets.managed = read_managed_credentials(gc, sources.discovery, database.as_ref()).await;
    let deployment = sources
        .deployment_cache
        .and_then(|store| live_deployment(gc, store));
    let snapshot = read_snapshot(gc, sources.discovery, sources.snapshots_allowed).await;
    let autoscaler_max = sources
        .autoscaler_cache
        .and_then(|store| autoscaler_max(gc, store));
    if let ManagedSecretRead::Read(creds) = &secrets.managed {
        let source = format!("the RDS-managed secret {}", creds.secret_arn);
        secrets.unquotable_password = unquotable(creds.password.expose(), source);
    }
    let optional_apis = optional_apis(gc, &sources).await;
    let service_account_problem = access::service_account_problem(gc, sources.client).await?;
    Ok(Gathered {
        optional_apis,
        database,
        cache,
        storage,
        data_sources,
        secrets,
        deployment,
        snapshot,
        autoscaler_max,
        now: Timestamp::now(),
        service_account_problem,
    })
}

/// Whether each optional API the spec asks for is served.
async fn optional_apis(gc: &GrafanaCluster, sources: &Sources<'_>) -> ApiAvailability {
    let ask = |api: OptionalApi| async move {
        if !crate::resolve::wants_optional_api(&gc.spec, api) {
            return Availability::NotNeeded;
        }
        match (sources.optional_apis, sources.client) {
            (Some(cache), _) => cache.availability(api).await,
            (None, Some(client)) => check(client, api).await,
            (None, None) => Availability::Unchecked,
        }
    };
    let (http_route, service_monitor) = tokio::join!(
        ask(OptionalApi::HttpRoute),
        ask(OptionalApi::ServiceMonitor)
    );
    ApiAvailability {
        http_route,
        service_monitor,
    }
}

/// True when `hpa` scales the GrafanaCluster `name` (any API version of the group).
pub fn targets_cluster(hpa: &HorizontalPodAutoscaler, name: &str) -> bool {
    hpa.spec.as_ref().is_some_and(|s| {
        let target = &s.scale_target_ref;
        target.kind == "GrafanaCluster"
            && target.name == name
            && target
                .api_version
                .as_deref()
                .is_some_and(|v| v.starts_with(&format!("{}/", crate::api::GROUP)))
    })
}

/// The largest maxReplicas of the autoscalers targeting `gc`.
fn autoscaler_max(gc: &GrafanaCluster, store: &Store<HorizontalPodAutoscaler>) -> Option<i32> {
    let name = gc.metadata.name.clone().unwrap_or_default();
    store
        .state()
        .iter()
        .filter(|h| h.metadata.namespace == gc.metadata.namespace && targets_cluster(h, &name))
        .filter_map(|h| h.spec.as_ref().map(|s| s.max_replicas))
        .max()
}

/// The Grafana Deployment of `gc` from the cache: its image and rollout.
fn live_deployment(gc: &GrafanaCluster, store: &Records<Deployment>) -> Option<LiveDeployment> {
    let name = crate::names::deployment(&gc.metadata.name.clone().unwrap_or_default());
    let deployment = store.get(gc.metadata.namespace.as_deref(), &name)?;
    Some(LiveDeployment {
        image: deployment.facts.image?,
        rollout: deployment.facts.rollout,
    })
}

/// The snapshot a safe upgrade waits for, read from RDS.
async fn read_snapshot(gc: &GrafanaCluster, discovery: &Discovery, allowed: bool) -> SnapshotRead {
    let status = gc.status.as_ref();
    let Some(up) = status.and_then(|s| s.upgrade.as_ref()) else {
        return SnapshotRead::NotAsked;
    };
    let (Some(id), Some(arn)) = (
        up.snapshot_id.as_deref(),
        status
            .and_then(|s| s.database.as_ref())
            .and_then(|d| d.arn.as_deref()),
    ) else {
        return SnapshotRead::NotAsked;
    };
    if up.phase != crate::api::UpgradePhase::Snapshotting {
        return SnapshotRead::NotAsked;
    }
    if !allowed {
        return SnapshotRead::Failed(
            "this operator takes no snapshots (--pre-upgrade-snapshots=false, chart value aws.preUpgradeSnapshots)".into(),
        );
    }
    let region = gc.spec.aws.as_ref().and_then(|a| a.region.as_deref());
    match discovery.snapshot_state(region, arn, id).await {
        Ok(read) => read,
        Err(e) => {
            // Read again next round: the upgrade waits (bounded by its timeout).
            tracing::warn!(error = %e, snapshot = id, "reading the pre-upgrade snapshot failed");
            SnapshotRead::Creating
        }
    }
}

type Discoveries = (
    Option<Discovered<DatabaseFacts>>,
    Option<Discovered<CacheFacts>>,
    Option<Discovered<StorageFacts>>,
);

/// Asks AWS about every component of `gc` that is not given explicitly, concurrently.
async fn discover(gc: &GrafanaCluster, discovery: &Discovery) -> Discoveries {
    let spec = &gc.spec;
    let region = spec.aws.as_ref().and_then(|a| a.region.as_deref());
    let db_spec = spec.database.clone().unwrap_or_default();
    let cache_spec = spec.cache.clone().unwrap_or_default();
    let plugins = spec.plugins.clone().unwrap_or_default();
    let efs = plugins.efs.clone().unwrap_or_default();

    let db_selector = merged_selector(spec, db_spec.tags.as_ref());
    let cache_selector = merged_selector(spec, cache_spec.tags.as_ref());
    let efs_selector = merged_selector(spec, efs.tags.as_ref());

    let database = async {
        if db_spec.endpoint.is_some() {
            return None;
        }
        Some(discovered(
            discovery.find_database(region, &db_selector).await,
        ))
    };
    let cache = async {
        if !cache_enabled(spec) || cache_spec.endpoint.is_some() {
            return None;
        }
        Some(discovered(
            discovery.find_cache(region, &cache_selector).await,
        ))
    };
    let storage = async {
        if plugins.storage_class_name.is_some() {
            return None;
        }
        let access_point_id = efs.access_point_id.as_deref();
        let query = match efs.file_system_id.as_deref() {
            Some(file_system_id) => FileSystemQuery::Id {
                file_system_id,
                access_point_id,
            },
            None => FileSystemQuery::Tags {
                selector: &efs_selector,
                access_point_id,
            },
        };
        // The access point the operator created for this cluster is found by its owner tag.
        let owner = crate::resolve::owner(&crate::resolve::ClusterRef::of(gc));
        Some(discovered(
            discovery
                .find_file_system_for(region, query, Some(&owner))
                .await,
        ))
    };
    tokio::join!(database, cache, storage)
}

/// Asks AWS for the Amazon Managed Prometheus workspaces the spec selects, through the
/// shared discovery cache, and notes the region CloudWatch defaults to.
async fn discover_data_sources(
    gc: &GrafanaCluster,
    discovery: &Discovery,
) -> crate::resolve::DataSourceFacts {
    let region = gc.spec.aws.as_ref().and_then(|a| a.region.as_deref());
    let workspaces = match crate::resolve::datasources::workspace_query(&gc.spec) {
        None => None,
        Some(query) => {
            let query = match &query {
                Ok(id) => WorkspaceQuery::Id(id),
                Err(tags) => WorkspaceQuery::Tags(tags),
            };
            Some(discovered(discovery.find_workspaces(region, query).await))
        }
    };
    crate::resolve::DataSourceFacts {
        workspaces,
        region: discovery.effective_region(region),
    }
}

/// Reads the RDS-managed master credentials when the spec asks for them and discovery found
/// the database's secret.
async fn read_managed_credentials(
    gc: &GrafanaCluster,
    discovery: &Discovery,
    database: Option<&Discovered<DatabaseFacts>>,
) -> ManagedSecretRead {
    if !crate::resolve::wants_managed_secret(&gc.spec) {
        return ManagedSecretRead::NotAsked;
    }
    let Some(Discovered::Lookup(Lookup::Found(db))) = database else {
        return ManagedSecretRead::NotAsked;
    };
    let Some(arn) = db.managed_secret_arn.as_deref() else {
        return ManagedSecretRead::NotAsked;
    };
    let region = gc.spec.aws.as_ref().and_then(|a| a.region.as_deref());
    match discovery.managed_credentials(region, arn).await {
        Ok(creds) => ManagedSecretRead::Read(creds),
        Err(e) => {
            tracing::warn!(error = %e, "reading the RDS-managed credentials failed");
            tracing::debug!(chain = %e.chain(), "reading the RDS-managed credentials failed: the whole error");
            ManagedSecretRead::Unavailable(e.to_string())
        }
    }
}
