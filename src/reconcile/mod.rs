//! The Kubernetes edge: watches, the reconcile loop, status and Events.
//!
//! Memory stays flat in the number of clusters and of foreign objects: children are watched
//! through the operator's own label only, and user Secrets through a metadata-only watch
//! that is never cached (an event just maps to the clusters that reference the Secret; the
//! Secret's data is read on demand).

pub mod apply;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rand::Rng;
use rand::distr::Alphanumeric;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::api::{GrafanaCluster, GrafanaClusterStatus, validation};
use crate::aws::Discovery;
use crate::build::{self, Children, Owner, SecretInputs};
use crate::error::{Error, Result};
use crate::facts::SecretValue;
use crate::metrics::Metrics;
use crate::names;
use crate::observe;
use crate::resolve::{self, Resolution, Wiring};
use crate::status::{self, JobState, Rollout, StatusInputs};

use apply::{apply, create_once, delete_if_present, owned_names};

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Watch only this namespace (None: all namespaces).
    pub namespace: Option<String>,
    /// Re-check a healthy cluster this often, so AWS-side changes are picked up.
    pub resync_interval: Duration,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Identity in Events (reportingInstance).
    pub instance: String,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            resync_interval: Duration::from_secs(300),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "grafana-ha-operator".into()),
        }
    }
}

/// Caches of the operator's own children, scoped by its label.
#[derive(Clone)]
pub struct Stores {
    pub deployments: Store<Deployment>,
    pub jobs: Store<Job>,
    pub secrets: Store<Secret>,
    pub services: Store<Service>,
    pub claims: Store<PersistentVolumeClaim>,
    pub volumes: Store<PersistentVolume>,
    pub budgets: Store<PodDisruptionBudget>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub discovery: Discovery,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub config: ControllerConfig,
    pub stores: Stores,
    /// Consecutive failures per cluster, for backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn backoff(&self, key: &str, failed: bool) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failed {
            failures.remove(key);
            return self.config.resync_interval;
        }
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let delay = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(16)));
        delay.min(self.config.retry_max)
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

/// Reconciles one GrafanaCluster: discover, validate, resolve, build, apply, report.
pub async fn reconcile(gc: Arc<GrafanaCluster>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    let key = format!("{}/{}", gc.namespace().unwrap_or_default(), gc.name_any());
    let span = tracing::info_span!("reconcile", cluster = %key);
    let result = reconcile_cluster(&gc, &ctx).instrument(span).await;
    ctx.metrics.reconcile_finished(started.elapsed());
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!(cluster = %key, error = %e, "reconcile failed");
            return Err(e);
        }
    };
    let delay = ctx.backoff(&key, outcome.retry);
    tracing::debug!(cluster = %key, retry = outcome.retry, requeue_seconds = delay.as_secs(), "reconciled");
    if outcome.retry {
        ctx.metrics.reconcile_failed(outcome.reason);
    }
    Ok(if outcome.await_change {
        Action::await_change()
    } else {
        Action::requeue(delay)
    })
}

/// What the reconcile decided about requeueing.
struct Outcome {
    /// Something failed or is not there yet: retry with backoff.
    retry: bool,
    reason: &'static str,
    /// Nothing to do until the spec changes.
    await_change: bool,
}

/// The error policy: back off per cluster.
pub fn error_policy(gc: Arc<GrafanaCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.metric_label());
    let key = format!("{}/{}", gc.namespace().unwrap_or_default(), gc.name_any());
    Action::requeue(ctx.backoff(&key, true))
}

async fn reconcile_cluster(gc: &GrafanaCluster, ctx: &Context) -> Result<Outcome> {
    if gc.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Outcome {
            retry: false,
            reason: "",
            await_change: true,
        });
    }
    let namespace = gc.namespace().unwrap_or_default();
    let name = gc.name_any();

    let violations = validation::validate(gc);
    if !violations.is_empty() {
        let message = validation::describe(&violations);
        tracing::warn!(cluster = %name, %message, "spec refused");
        let status = status::compute(
            gc,
            &StatusInputs {
                invalid: Some(message),
                ..StatusInputs::default()
            },
            Timestamp::now(),
        );
        write_status(gc, ctx, status).await?;
        return Ok(Outcome {
            retry: false,
            reason: "invalid_spec",
            await_change: true,
        });
    }

    // Discover (AWS) and read what the pods will reference (Kubernetes).
    let mut observed = observe::discover(gc, &ctx.discovery).await;
    let owner = Owner {
        name: name.clone(),
        namespace: namespace.clone(),
        uid: gc.uid(),
    };
    ensure_generated_secrets(gc, &owner, ctx).await?;
    let mut inputs = SecretInputs::default();
    observe::read_secrets(
        gc,
        &ctx.client,
        Some(&ctx.stores.secrets),
        &mut observed,
        &mut inputs,
    )
    .await?;
    observe::read_managed_credentials(gc, &ctx.discovery, &mut observed, &mut inputs).await;

    let resolution = resolve::resolve(gc, &observed);
    let mut apply_error = None;
    let mut deployment = ctx
        .stores
        .deployments
        .get(&ObjectRef::new(&names::deployment(&name)).within(&namespace))
        .map(|d| d.as_ref().clone());
    let mut plugins_job = None;
    if let Some(wiring) = &resolution.wiring {
        let children = build::build_all(&gc.spec, wiring, &inputs);
        match apply_children(ctx, wiring, children).await {
            Ok(applied) => {
                deployment = Some(applied.deployment);
                plugins_job = applied.plugins_job;
            }
            Err(e) => {
                tracing::warn!(cluster = %name, error = %e, "applying children failed");
                apply_error = Some(e.to_string());
            }
        }
    }
    let rollout = deployment.as_ref().map(Rollout::of);
    if let (Some(wiring), Some(rollout)) = (&resolution.wiring, &rollout)
        && apply_error.is_none()
        && let Err(e) = remove_superseded(
            ctx,
            gc,
            wiring,
            rollout.complete(wiring.replicas),
            plugins_job,
        )
        .await
    {
        tracing::warn!(cluster = %name, error = %e, "removing superseded children failed");
    }

    let status = status::compute(
        gc,
        &StatusInputs {
            invalid: None,
            resolution: Some(&resolution),
            rollout,
            plugins_job,
            apply_error: apply_error.clone(),
        },
        Timestamp::now(),
    );
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == status::READY && c.status == "True");
    write_status(gc, ctx, status).await?;

    let (retry, reason) = if apply_error.is_some() {
        (true, "apply")
    } else if resolution.stale() {
        (true, "aws")
    } else if resolution.wiring.is_none() {
        (true, unresolved_reason(&resolution))
    } else {
        (false, "")
    };
    if !retry && !ready {
        // Rollout in progress: the Deployment's watch events bring us back.
        return Ok(Outcome {
            retry: false,
            reason: "",
            await_change: false,
        });
    }
    Ok(Outcome {
        retry,
        reason,
        await_change: false,
    })
}

fn unresolved_reason(resolution: &Resolution) -> &'static str {
    let failed = |c: &resolve::ConditionState| !c.status && c.reason.starts_with("Aws");
    if failed(&resolution.database.condition)
        || failed(&resolution.cache.condition)
        || failed(&resolution.storage.condition)
    {
        "aws"
    } else {
        "unresolved"
    }
}

/// Creates the admin password (unless referenced) and the signing key, once.
async fn ensure_generated_secrets(gc: &GrafanaCluster, owner: &Owner, ctx: &Context) -> Result<()> {
    let api: Api<Secret> = ctx.api(&owner.namespace);
    let wants_admin = gc
        .spec
        .admin_credentials
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
        .is_none();
    if wants_admin {
        let secret = build::secrets::generated_admin(owner, &random_secret(32));
        if create_once(&api, &ctx.stores.secrets, secret, &ctx.metrics).await? {
            publish(
                ctx,
                gc,
                false,
                "AdminPasswordGenerated",
                format!(
                    "generated the admin password in Secret {}",
                    names::admin_secret(&owner.name)
                ),
            )
            .await;
        }
    }
    let secret = build::secrets::generated_secret_key(owner, &random_secret(48));
    if create_once(&api, &ctx.stores.secrets, secret, &ctx.metrics).await? {
        publish(
            ctx,
            gc,
            false,
            "SecretKeyGenerated",
            format!(
                "generated the shared signing key in Secret {}",
                names::secret_key_secret(&owner.name)
            ),
        )
        .await;
    }
    Ok(())
}

/// Live state of the children that the status reads.
struct AppliedChildren {
    deployment: Deployment,
    plugins_job: Option<JobState>,
}

/// Applies every child. Destructured without `..`: a new child kind must be applied here.
async fn apply_children(
    ctx: &Context,
    wiring: &Wiring,
    children: Children,
) -> Result<AppliedChildren> {
    let Children {
        db_credentials,
        cache_secret,
        volume,
        claim,
        plugins_job,
        deployment,
        service,
        alerting_service,
        pdb,
    } = children;
    let ns = &wiring.namespace;
    let m = &ctx.metrics;
    let stores = &ctx.stores;
    let secrets: Api<Secret> = ctx.api(ns);
    for secret in [db_credentials, cache_secret].into_iter().flatten() {
        apply(&secrets, &stores.secrets, secret, m).await?;
    }
    if let Some(volume) = volume {
        let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
        apply(&api, &stores.volumes, volume, m).await?;
    }
    apply(&ctx.api(ns), &stores.claims, claim, m).await?;
    let mut job_state = None;
    if let Some(job) = plugins_job {
        let api: Api<Job> = ctx.api(ns);
        // A Job is a one-shot with an immutable template: create it when missing, never
        // re-apply a finished one.
        let live = match stores.jobs.get(&ObjectRef::from_obj(&job)) {
            Some(live) => Some(live.as_ref().clone()),
            None => api.get_opt(&job.name_any()).await?,
        };
        let live = match live {
            Some(live) => live,
            None => apply(&api, &stores.jobs, job, m).await?.into_inner(),
        };
        job_state = Some(JobState::of(&live));
    }
    apply(&ctx.api(ns), &stores.services, service, m).await?;
    if let Some(svc) = alerting_service {
        apply(&ctx.api(ns), &stores.services, svc, m).await?;
    }
    if let Some(pdb) = pdb {
        apply(&ctx.api(ns), &stores.budgets, pdb, m).await?;
    }
    let deployment = apply(&ctx.api(ns), &stores.deployments, deployment, m)
        .await?
        .into_inner();
    Ok(AppliedChildren {
        deployment,
        plugins_job: job_state,
    })
}

/// Removes children the current spec no longer wants: installer Jobs of older plugin sets,
/// plugin claims of an older storage source (once the rollout moved off them), the gossip
/// Service, the PDB, and operator-made Secrets that nothing references any more.
async fn remove_superseded(
    ctx: &Context,
    gc: &GrafanaCluster,
    wiring: &Wiring,
    rollout_complete: bool,
    job: Option<JobState>,
) -> Result<()> {
    let ns = &wiring.namespace;
    let cluster = &wiring.name;
    let m = &ctx.metrics;
    let stores = &ctx.stores;
    let current_job = wiring.plugins.as_ref().map(|p| p.job_name.clone());
    if job != Some(JobState::Running) {
        let jobs: Api<Job> = ctx.api(ns);
        for name in owned_names(&stores.jobs, ns, cluster, "plugins-installer") {
            if Some(&name) != current_job.as_ref() {
                delete_if_present(&jobs, &name, m).await?;
            }
        }
    }
    if rollout_complete {
        let claims: Api<PersistentVolumeClaim> = ctx.api(ns);
        for name in owned_names(&stores.claims, ns, cluster, "plugins-storage") {
            if name != wiring.storage.status.claim_name {
                delete_if_present(&claims, &name, m).await?;
            }
        }
    }
    if wiring.alerting != crate::api::AlertingHa::Gossip
        && !owned_names(&stores.services, ns, cluster, "alerting").is_empty()
    {
        delete_if_present(
            &ctx.api::<Service>(ns),
            &names::alerting_service(cluster),
            m,
        )
        .await?;
    }
    let pdb_wanted = gc
        .spec
        .pod_disruption_budget
        .as_ref()
        .and_then(|p| p.enabled)
        .unwrap_or(true);
    if !pdb_wanted && !owned_names(&stores.budgets, ns, cluster, "server").is_empty() {
        delete_if_present(&ctx.api::<PodDisruptionBudget>(ns), &names::pdb(cluster), m).await?;
    }
    let secrets: Api<Secret> = ctx.api(ns);
    if wiring.database.status.managed_secret_arn.is_none()
        && !owned_names(&stores.secrets, ns, cluster, "database-credentials").is_empty()
    {
        delete_if_present(&secrets, &names::db_credentials_secret(cluster), m).await?;
    }
    let redis = wiring
        .cache
        .as_ref()
        .is_some_and(|c| c.status.engine == crate::api::CacheEngine::Redis);
    if !redis && !owned_names(&stores.secrets, ns, cluster, "cache-connection").is_empty() {
        delete_if_present(&secrets, &names::cache_secret(cluster), m).await?;
    }
    Ok(())
}

/// Writes the status when it differs from what is stored, and records Events for the
/// conditions that changed.
async fn write_status(
    gc: &GrafanaCluster,
    ctx: &Context,
    status: GrafanaClusterStatus,
) -> Result<()> {
    let previous = gc.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let events = status::condition_events(&previous.conditions, &status.conditions);
    let api: Api<GrafanaCluster> = ctx.api(&gc.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": format!("{}/v1alpha1", crate::api::GROUP),
        "kind": "GrafanaCluster",
        "status": status,
    });
    api.patch_status(
        &gc.name_any(),
        &PatchParams::apply(names::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    for event in events {
        publish(ctx, gc, event.warning, &event.reason, event.note).await;
    }
    Ok(())
}

/// Records an Event on the GrafanaCluster; failing to record one never fails a reconcile.
async fn publish(ctx: &Context, gc: &GrafanaCluster, warning: bool, reason: &str, note: String) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &gc.object_ref(&())).await {
        tracing::debug!(error = %e, "recording an Event failed");
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A label-scoped, cached watch of one child kind: the store for reconciles, and the
/// stream that triggers the owner. Deletions trigger too (touched, not just applied
/// objects): a deleted child is recreated at once, not at the next resync.
fn child_watch<K>(
    api: Api<K>,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().labels(&names::managed_selector());
    let stream = watcher(api, config)
        .default_backoff()
        // managedFields are the bulk of a stored object and are never read here.
        .modify(|o: &mut K| o.managed_fields_mut().clear())
        .reflect(writer)
        .touched_objects();
    (store, stream)
}

/// Builds the shared context and runs the controller until shutdown.
pub async fn run(
    client: Client,
    discovery: Discovery,
    metrics: Metrics,
    config: ControllerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ns = config.namespace.as_deref();
    let (deployments, deployment_events) = child_watch::<Deployment>(scoped(&client, ns));
    let (jobs, job_events) = child_watch::<Job>(scoped(&client, ns));
    let (secrets, secret_events) = child_watch::<Secret>(scoped(&client, ns));
    let (services, service_events) = child_watch::<Service>(scoped(&client, ns));
    let (claims, claim_events) = child_watch::<PersistentVolumeClaim>(scoped(&client, ns));
    let (budgets, budget_events) = child_watch::<PodDisruptionBudget>(scoped(&client, ns));
    let (volumes, volume_events) = child_watch::<PersistentVolume>(Api::all(client.clone()));

    let reporter = Reporter {
        controller: names::FIELD_MANAGER.into(),
        instance: Some(config.instance.clone()),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        discovery,
        metrics,
        stores: Stores {
            deployments,
            jobs,
            secrets,
            services,
            claims,
            volumes,
            budgets,
        },
        config: config.clone(),
        failures: Mutex::new(HashMap::new()),
    });

    let clusters: Api<GrafanaCluster> = scoped(&client, ns);
    let controller = Controller::new(clusters, watcher::Config::default().any_semantic());
    let cluster_store = controller.store();
    // User Secrets: a metadata-only watch, never cached, mapped to the clusters that
    // reference the Secret by name. A data change bumps resourceVersion; the reconcile then
    // reads the data and rolls the pods only if a referenced value changed.
    let secret_meta: Api<PartialObjectMeta<Secret>> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let user_secrets = watcher(secret_meta, watcher::Config::default())
        .default_backoff()
        .touched_objects();
    let referencing = move |secret: PartialObjectMeta<Secret>| {
        let name = secret.name_any();
        let namespace = secret.namespace();
        cluster_store
            .state()
            .iter()
            .filter(|gc| {
                gc.namespace() == namespace && observe::referenced_user_secrets(gc).contains(&name)
            })
            .map(|gc| ObjectRef::from_obj(gc.as_ref()))
            .collect::<Vec<_>>()
    };
    // Static volumes are cluster-scoped and carry no owner reference: map them back
    // through their labels.
    let volume_owner = |pv: PersistentVolume| {
        let labels = pv.labels();
        match (
            labels.get(names::CLUSTER_LABEL),
            labels.get("grafana-ha.io/namespace"),
        ) {
            (Some(name), Some(ns)) => Some(ObjectRef::<GrafanaCluster>::new(name).within(ns)),
            _ => None,
        }
    };

    controller
        .owns_stream(deployment_events)
        .owns_stream(job_events)
        .owns_stream(secret_events)
        .owns_stream(service_events)
        .owns_stream(claim_events)
        .owns_stream(budget_events)
        .watches_stream(volume_events, volume_owner)
        .watches_stream(user_secrets, referencing)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::trace!(cluster = %obj, "reconcile done"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
}
