//! What every reconcile shares: the clients, the caches of the operator's own children,
//! the configuration and the per-cluster failure count behind the backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::apply::Settled;
use super::events::Recorder;
use super::records::Records;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource};

use crate::aws::Discovery;
use crate::metrics::Metrics;
use crate::optional_api::OptionalApis;

/// Reconciles at once by default: enough to keep a 2-core operator and the API server
/// busy, few enough that a thousand clusters do not hold a thousand rounds in memory.
pub const DEFAULT_CONCURRENCY: u16 = 16;

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
    /// Create the EFS access point a cluster's plugins need (the operator's only AWS
    /// write; its IAM role then needs elasticfilesystem:CreateAccessPoint and TagResource).
    pub create_access_points: bool,
    /// Take the pre-upgrade RDS snapshots GrafanaClusters ask for (an AWS write).
    pub pre_upgrade_snapshots: bool,
    /// How long the answer to "is the Gateway API / Prometheus Operator API served?" is
    /// kept, for every cluster together.
    pub optional_api_refresh: Duration,
    /// Reconciles running at once (0: unbounded). Bounds the memory and the API server
    /// load of a burst (a restart with a thousand clusters).
    pub concurrency: u16,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            namespace: None,
            resync_interval: Duration::from_secs(300),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(300),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "grafana-ha-operator".into()),
            create_access_points: true,
            pre_upgrade_snapshots: true,
            optional_api_refresh: Duration::from_secs(60),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Caches of the operator's own children, scoped by its label: records, not objects
/// (see slim.rs).
#[derive(Clone)]
pub struct Stores {
    pub deployments: Records<Deployment>,
    pub jobs: Records<Job>,
    pub secrets: Records<Secret>,
    pub config_maps: Records<ConfigMap>,
    pub services: Records<Service>,
    pub claims: Records<PersistentVolumeClaim>,
    pub volumes: Records<PersistentVolume>,
    pub budgets: Records<PodDisruptionBudget>,
    pub network_policies: Records<NetworkPolicy>,
    pub service_accounts: Records<ServiceAccount>,
    pub ingresses: Records<Ingress>,
    /// Every HorizontalPodAutoscaler in scope (few, small): one that targets a
    /// GrafanaCluster bounds its connection budget.
    pub autoscalers: Store<HorizontalPodAutoscaler>,
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub discovery: Discovery,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub config: ControllerConfig,
    pub stores: Stores,
    /// Which optional APIs (HTTPRoute, ServiceMonitor) the cluster serves, shared.
    pub optional_apis: OptionalApis,
    /// Children whose owned fields the server keeps in another form (see apply.rs).
    /// Shared with the child watches, which forget a child's entry when it is deleted.
    pub settled: Arc<Settled>,
    /// Consecutive failures per cluster, for backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(
        client: Client,
        discovery: Discovery,
        metrics: Metrics,
        recorder: Recorder,
        config: ControllerConfig,
        stores: Stores,
    ) -> Context {
        let optional_apis =
            OptionalApis::new(client.clone(), config.optional_api_refresh, metrics.clone());
        Context {
            optional_apis,
            client,
            discovery,
            metrics,
            recorder,
            config,
            stores,
            settled: Arc::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// The delay before the next reconcile of `key`: the resync interval after a success
    /// (and the failure count resets), exponential backoff after consecutive failures.
    pub fn backoff(&self, key: &str, failed: bool) -> Duration {
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

    /// Forgets the failure count of `key`: the cluster is gone, or waits for a change
    /// rather than a retry. Without this a cluster deleted while failing kept its entry.
    pub fn forget_failures(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(key);
    }

    /// Clusters with a failure count.
    pub fn failing(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
