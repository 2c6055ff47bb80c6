//! The controller and what triggers a reconcile.
//!
//! Memory stays flat in the number of clusters and of foreign objects: children are watched
//! through the operator's own label only, and user Secrets through a metadata-only watch
//! that is never cached (an event just maps to the clusters that reference the Secret; the
//! Secret's data is read on demand). GrafanaClusters are read through a
//! [`DeserializeGuard`], so one object the operator cannot parse is reported and skipped
//! instead of stopping the watch for every cluster.

use std::sync::Arc;

use super::apply::Settled;
use super::events::Recorder;
use super::records::Records;
use super::slim::{Kept, Slim};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::context::{Context, ControllerConfig, Stores};
use crate::api::GrafanaCluster;
use crate::aws::Discovery;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::names;
use crate::resolve::{referenced_config_maps, referenced_user_secrets};

/// kubectl apply's copy of the whole manifest, kept in an annotation.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A GrafanaCluster as the watch delivers it: parsed, or the error with its metadata.
type Guarded = DeserializeGuard<GrafanaCluster>;

/// The pause of the merged trigger stream after an error: short and constant, since each
/// watch already backs off on its own.
struct SharedPause;

impl Iterator for SharedPause {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::from_millis(100))
    }
}

impl kube::runtime::utils::Backoff for SharedPause {
    fn reset(&mut self) {}
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

/// A label-scoped, cached watch of one child kind: the records for reconciles, and the
/// stream that triggers the owner. Deletions trigger too (touched, not just applied
/// objects): a deleted child is recreated at once, not at the next resync. Each object is
/// reduced to a [`Kept`] value as it is read (see slim.rs) and to a [`Record`] in the
/// cache (see records.rs).
///
/// [`Record`]: super::records::Record
fn child_watch<K>(
    api: Api<Kept<K>>,
    settled: Arc<Settled>,
) -> (
    Records<K>,
    impl futures::Stream<Item = Result<Kept<K>, watcher::Error>> + Send + 'static,
)
where
    K: Slim + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let records = Records::default();
    let recording = records.clone();
    let config = watcher::Config::default().labels(&names::managed_selector());
    let stream = watcher(api, config)
        .default_backoff()
        .inspect(move |event| {
            if let Ok(event) = event {
                if let watcher::Event::Delete(child) = event {
                    settled.forget(child);
                }
                recording.observe(event);
            }
        })
        .touched_objects();
    (records, stream)
}

/// Reconciles a parsed GrafanaCluster; reports one that could not be parsed.
async fn reconcile_guarded(gc: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action> {
    match &gc.0 {
        Ok(parsed) => super::reconcile(Arc::new(parsed.clone()), ctx).await,
        Err(invalid) => {
            tracing::warn!(
                cluster = %gc.name_any(),
                namespace = ?gc.namespace(),
                error = %invalid.error,
                "cannot parse the GrafanaCluster; skipping it until it changes"
            );
            ctx.metrics.reconcile_failed("invalid_object");
            let event = Event {
                type_: EventType::Warning,
                reason: "InvalidObject".into(),
                note: Some(format!(
                    "the operator cannot read this object: {}",
                    invalid.error
                )),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &gc.object_ref(&())).await {
                tracing::debug!(error = %e, "recording an Event failed");
            }
            Ok(Action::await_change())
        }
    }
}

fn error_policy(gc: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    match &gc.0 {
        Ok(parsed) => super::error_policy(Arc::new(parsed.clone()), error, ctx),
        Err(_) => Action::await_change(),
    }
}

/// Maps a user Secret's event to the clusters that reference it by name.
fn referencing_clusters(
    clusters: Store<Guarded>,
) -> impl Fn(PartialObjectMeta<Secret>) -> Vec<ObjectRef<Guarded>> {
    move |secret| {
        let name = secret.name_any();
        let namespace = secret.namespace();
        clusters
            .state()
            .iter()
            .filter_map(|guarded| guarded.0.as_ref().ok())
            .filter(|gc| {
                gc.namespace() == namespace
                    && referenced_user_secrets(&gc.name_any(), &gc.spec).contains(&name)
            })
            .map(|gc| {
                ObjectRef::<Guarded>::new(&gc.name_any())
                    .within(&gc.namespace().unwrap_or_default())
            })
            .collect()
    }
}

/// Maps a ConfigMap's event to the clusters whose pods read it (envFrom, the database CA
/// bundle). The event is metadata only: a label change reconciles, and the reconcile rolls
/// nothing because the pod-template hash is taken over the data.
fn config_map_clusters(
    clusters: Store<Guarded>,
) -> impl Fn(PartialObjectMeta<ConfigMap>) -> Vec<ObjectRef<Guarded>> {
    move |cm| {
        let name = cm.name_any();
        let namespace = cm.namespace();
        clusters
            .state()
            .iter()
            .filter_map(|guarded| guarded.0.as_ref().ok())
            .filter(|gc| {
                gc.namespace() == namespace && referenced_config_maps(&gc.spec).contains(&name)
            })
            .map(|gc| {
                ObjectRef::<Guarded>::new(&gc.name_any())
                    .within(&gc.namespace().unwrap_or_default())
            })
            .collect()
    }
}

/// The cluster a child belongs to, by its labels: the cluster's name, and its namespace
/// (the child's own, or for a cluster-scoped volume its namespace label). Kept records
/// carry no owner references: the label says the same in fewer bytes.
fn cluster_of<K: Slim>(child: Kept<K>) -> Option<ObjectRef<Guarded>> {
    let name = child.labels.cluster.as_deref()?;
    let namespace = child
        .meta()
        .namespace
        .as_deref()
        .or(child.labels.namespace.as_deref())?;
    Some(ObjectRef::<Guarded>::new(name).within(namespace))
}

/// An autoscaler that targets a GrafanaCluster: its maxReplicas bounds the budget.
fn autoscaled_cluster(hpa: HorizontalPodAutoscaler) -> Option<ObjectRef<Guarded>> {
    let spec = hpa.spec.as_ref()?;
    let name = &spec.scale_target_ref.name;
    crate::gather::targets_cluster(&hpa, name)
        .then(|| ObjectRef::<Guarded>::new(name).within(&hpa.namespace().unwrap_or_default()))
}

/// Clusters of this controller whose AWS discovery answer changed at a refresh (see
/// aws/interest.rs): reconciled at once instead of at the next resync. A cluster that no
/// longer exists is forgotten.
fn discovery_changes(
    discovery: &Discovery,
    clusters: Store<Guarded>,
    namespace: Option<&str>,
) -> impl futures::Stream<Item = ObjectRef<Guarded>> + Send + 'static {
    let receiver = discovery.subscribe_changes();
    let discovery = discovery.clone();
    let namespace = namespace.map(str::to_string);
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(owner) => return Some((owner, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // Those clusters are reconciled at their resync instead.
                    tracing::warn!(missed, "missed discovery change announcements");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .filter_map(move |owner| {
        let target = owner.split_once('/').and_then(|(ns, name)| {
            let mine = namespace.as_deref().is_none_or(|watched| watched == ns);
            mine.then(|| ObjectRef::<Guarded>::new(name).within(ns))
        });
        let target = target.filter(|r| {
            let exists = clusters.get(r).is_some();
            if !exists {
                discovery.forget_owner(&owner);
            }
            exists
        });
        futures::future::ready(target)
    })
}

/// Starts the label-scoped watches of every child kind and the shared context over their
/// stores.
fn context_and_child_watches(
    client: &Client,
    discovery: Discovery,
    metrics: Metrics,
    config: &ControllerConfig,
) -> (Arc<Context>, ChildEvents) {
    let ns = config.namespace.as_deref();
    let settled = Arc::new(Settled::default());
    let (deployments, deployment_events) =
        child_watch::<Deployment>(scoped(client, ns), settled.clone());
    let (jobs, job_events) = child_watch::<Job>(scoped(client, ns), settled.clone());
    let (secrets, secret_events) = child_watch::<Secret>(scoped(client, ns), settled.clone());
    let (config_maps, config_map_events) =
        child_watch::<ConfigMap>(scoped(client, ns), settled.clone());
    let (services, service_events) = child_watch::<Service>(scoped(client, ns), settled.clone());
    let (claims, claim_events) =
        child_watch::<PersistentVolumeClaim>(scoped(client, ns), settled.clone());
    let (budgets, budget_events) =
        child_watch::<PodDisruptionBudget>(scoped(client, ns), settled.clone());
    let (network_policies, network_policy_events) =
        child_watch::<NetworkPolicy>(scoped(client, ns), settled.clone());
    let (service_accounts, service_account_events) =
        child_watch::<ServiceAccount>(scoped(client, ns), settled.clone());
    let (ingresses, ingress_events) = child_watch::<Ingress>(scoped(client, ns), settled.clone());
    let (volumes, volume_events) =
        child_watch::<PersistentVolume>(Api::all(client.clone()), settled.clone());
    let reporter = Reporter {
        controller: names::FIELD_MANAGER.into(),
        instance: Some(config.instance.clone()),
    };
    // Autoscalers are the user's: watched whole (few, small), not by the operator's label.
    let (autoscalers, autoscaler_writer) = reflector::store();
    let autoscaler_events = watcher(
        scoped::<HorizontalPodAutoscaler>(client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|o: &mut HorizontalPodAutoscaler| o.managed_fields_mut().clear())
    .reflect(autoscaler_writer)
    .touched_objects();
    let stores = Stores {
        deployments,
        jobs,
        secrets,
        config_maps,
        services,
        claims,
        volumes,
        budgets,
        network_policies,
        service_accounts,
        ingresses,
        autoscalers,
    };
    let mut context = Context::new(
        client.clone(),
        discovery,
        metrics,
        Recorder::new(client.clone(), reporter),
        config.clone(),
        stores,
    );
    // The watches forget the pairs of deleted children.
    context.settled = settled;
    let ctx = Arc::new(context);
    let events = ChildEvents {
        deployments: deployment_events.boxed(),
        jobs: job_events.boxed(),
        secrets: secret_events.boxed(),
        config_maps: config_map_events.boxed(),
        services: service_events.boxed(),
        claims: claim_events.boxed(),
        budgets: budget_events.boxed(),
        network_policies: network_policy_events.boxed(),
        service_accounts: service_account_events.boxed(),
        ingresses: ingress_events.boxed(),
        volumes: volume_events.boxed(),
        autoscalers: autoscaler_events.boxed(),
    };
    (ctx, events)
}

type EventStream<K> = futures::stream::BoxStream<'static, Result<K, watcher::Error>>;

/// The event streams of the child watches.
struct ChildEvents {
    deployments: EventStream<Kept<Deployment>>,
    jobs: EventStream<Kept<Job>>,
    secrets: EventStream<Kept<Secret>>,
    config_maps: EventStream<Kept<ConfigMap>>,
    services: EventStream<Kept<Service>>,
    claims: EventStream<Kept<PersistentVolumeClaim>>,
    budgets: EventStream<Kept<PodDisruptionBudget>>,
    network_policies: EventStream<Kept<NetworkPolicy>>,
    service_accounts: EventStream<Kept<ServiceAccount>>,
    ingresses: EventStream<Kept<Ingress>>,
    volumes: EventStream<Kept<PersistentVolume>>,
    autoscalers: EventStream<HorizontalPodAutoscaler>,
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
    let (ctx, events) = context_and_child_watches(&client, discovery, metrics, &config);
    // The GrafanaCluster watch backs off on its own, like every child watch: the
    // controller's shared backoff would otherwise pause every watch after an error in any
    // of them, growing to a minute (a kube-apiserver restart froze the controller for
    // minutes; tests/e2e_reliability.rs proves it no longer does).
    let (reader, writer) = reflector::store();
    let forgetting = ctx.clone();
    let clusters = watcher(
        scoped::<Guarded>(&client, ns),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    // A deleted cluster's failure count goes with it.
    .inspect(move |event| {
        if let Ok(watcher::Event::Delete(gc)) = event {
            forgetting.forget_failures(&super::key(gc));
        }
    })
    // Every cluster stays in this store: managedFields and kubectl's copy of the last
    // applied manifest are about half of a stored GrafanaCluster and are never read.
    .modify(|gc: &mut Guarded| {
        gc.managed_fields_mut().clear();
        if let Some(annotations) = gc.meta_mut().annotations.as_mut() {
            annotations.remove(LAST_APPLIED);
        }
    })
    .reflect(writer)
    .applied_objects();
    let controller = Controller::for_stream(clusters, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
        .trigger_backoff(SharedPause);
    // User Secrets: a metadata-only watch, never cached, mapped to the clusters that
    // reference the Secret by name. A data change bumps resourceVersion; the reconcile then
    // reads the data and rolls the pods only if a referenced value changed.
    let user_secrets = watcher(
        scoped::<PartialObjectMeta<Secret>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let referencing = referencing_clusters(controller.store());
    // ConfigMaps the pods read (envFrom, CA bundle): the same metadata-only, uncached watch
    // as user Secrets (no per-object state, so memory stays flat in foreign ConfigMaps). A
    // label change reconciles and rolls nothing: the hash is over the data.
    let config_maps = watcher(
        scoped::<PartialObjectMeta<ConfigMap>>(&client, ns),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects();
    let config_map_referencing = config_map_clusters(controller.store());
    let changed = discovery_changes(&ctx.discovery, controller.store(), ns);
    controller
        .reconcile_on(changed)
        .watches_stream(events.deployments, cluster_of)
        .watches_stream(events.jobs, cluster_of)
        .watches_stream(events.secrets, cluster_of)
        .watches_stream(events.config_maps, cluster_of)
        .watches_stream(events.services, cluster_of)
        .watches_stream(events.claims, cluster_of)
        .watches_stream(events.budgets, cluster_of)
        .watches_stream(events.network_policies, cluster_of)
        .watches_stream(events.service_accounts, cluster_of)
        .watches_stream(events.ingresses, cluster_of)
        .watches_stream(events.volumes, cluster_of)
        .watches_stream(events.autoscalers, autoscaled_cluster)
        .watches_stream(user_secrets, referencing)
        .watches_stream(config_maps, config_map_referencing)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_guarded, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::trace!(cluster = %obj, "reconcile done"),
                Err(e) => tracing::debug!(error = %e, "controller event"),
            }
        })
        .await;
}
