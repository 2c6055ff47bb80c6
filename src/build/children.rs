//! The set of children of one GrafanaCluster, and the one order in which they are applied
//! and rendered.
//!
//! [`Children::into_ordered`] destructures the set without `..` and every consumer (the
//! applier, `render`, cleanup's desired set) matches [`Child`] without a wildcard: a new
//! kind of child that is built but not applied or not rendered does not compile.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;

use crate::optional_api::{HTTPRoute, ServiceMonitor};

/// Every object the operator writes for one GrafanaCluster.
#[derive(Clone, Debug)]
pub struct Children {
    /// Generated once and never rewritten: the admin password (unless the user gives one)
    /// and the signing key.
    pub generated: Vec<Secret>,
    /// The operator's Secrets, rewritten when their source changes: the copy of the
    /// RDS-managed credentials and the Redis connection string.
    pub secrets: Vec<Secret>,
    /// The data source provisioning file (absent without AWS data sources).
    pub config_maps: Vec<ConfigMap>,
    /// The pods' ServiceAccount (absent when the user brings their own).
    pub service_account: Option<ServiceAccount>,
    /// Static EFS volume (absent with a StorageClass).
    pub volume: Option<PersistentVolume>,
    pub claim: PersistentVolumeClaim,
    /// Installs the plugin set once (absent without plugins).
    pub installer: Option<Job>,
    /// The HTTP Service and, with gossip, the headless alerting Service.
    pub services: Vec<Service>,
    /// The Ingress to the HTTP Service (absent unless asked for).
    pub ingress: Option<Ingress>,
    pub disruption_budget: Option<PodDisruptionBudget>,
    pub deployment: Deployment,
    /// The HTTPRoute, ServiceMonitor and NetworkPolicies.
    pub extras: ExtraChildren,
}

/// The children in other APIs than the core workload's.
#[derive(Clone, Debug, Default)]
pub struct ExtraChildren {
    /// Only when the Gateway API is served.
    pub http_route: Option<HTTPRoute>,
    /// Only when the Prometheus Operator API is served.
    pub service_monitor: Option<ServiceMonitor>,
    pub network_policies: Vec<NetworkPolicy>,
}

/// One child, tagged with how it is written.
// A handful of these exist per reconcile and move once; boxing the large variants would
// buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Child {
    /// Created when missing, never rewritten.
    GeneratedSecret(Secret),
    Secret(Secret),
    ConfigMap(ConfigMap),
    ServiceAccount(ServiceAccount),
    Volume(PersistentVolume),
    Claim(PersistentVolumeClaim),
    /// A one-shot with an immutable template: created when missing, never re-applied.
    InstallerJob(Job),
    Service(Service),
    Ingress(Ingress),
    DisruptionBudget(PodDisruptionBudget),
    Deployment(Deployment),
    NetworkPolicy(NetworkPolicy),
    /// Of an optional API: written only when it is served.
    HttpRoute(HTTPRoute),
    /// Of an optional API: written only when it is served.
    ServiceMonitor(ServiceMonitor),
}

/// The Kubernetes kinds of children.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildKind {
    Secret,
    ConfigMap,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    Job,
    Service,
    Ingress,
    PodDisruptionBudget,
    Deployment,
    NetworkPolicy,
    HttpRoute,
    ServiceMonitor,
}

impl ChildKind {
    pub const ALL: [ChildKind; 13] = [
        ChildKind::Secret,
        ChildKind::ConfigMap,
        ChildKind::ServiceAccount,
        ChildKind::PersistentVolume,
        ChildKind::PersistentVolumeClaim,
        ChildKind::Job,
        ChildKind::Service,
        ChildKind::Ingress,
        ChildKind::PodDisruptionBudget,
        ChildKind::Deployment,
        ChildKind::NetworkPolicy,
        ChildKind::HttpRoute,
        ChildKind::ServiceMonitor,
    ];
}

impl Child {
    pub fn kind(&self) -> ChildKind {
        match self {
            Child::GeneratedSecret(_) | Child::Secret(_) => ChildKind::Secret,
            Child::ConfigMap(_) => ChildKind::ConfigMap,
            Child::ServiceAccount(_) => ChildKind::ServiceAccount,
            Child::Volume(_) => ChildKind::PersistentVolume,
            Child::Claim(_) => ChildKind::PersistentVolumeClaim,
            Child::InstallerJob(_) => ChildKind::Job,
            Child::Service(_) => ChildKind::Service,
            Child::Ingress(_) => ChildKind::Ingress,
            Child::DisruptionBudget(_) => ChildKind::PodDisruptionBudget,
            Child::Deployment(_) => ChildKind::Deployment,
            Child::NetworkPolicy(_) => ChildKind::NetworkPolicy,
            Child::HttpRoute(_) => ChildKind::HttpRoute,
            Child::ServiceMonitor(_) => ChildKind::ServiceMonitor,
        }
    }

    pub fn name(&self) -> String {
        match self {
            Child::GeneratedSecret(o) | Child::Secret(o) => o.name_any(),
            Child::ConfigMap(o) => o.name_any(),
            Child::ServiceAccount(o) => o.name_any(),
            Child::Volume(o) => o.name_any(),
            Child::Claim(o) => o.name_any(),
            Child::InstallerJob(o) => o.name_any(),
            Child::Service(o) => o.name_any(),
            Child::Ingress(o) => o.name_any(),
            Child::DisruptionBudget(o) => o.name_any(),
            Child::Deployment(o) => o.name_any(),
            Child::NetworkPolicy(o) => o.name_any(),
            Child::HttpRoute(o) => o.name_any(),
            Child::ServiceMonitor(o) => o.name_any(),
        }
    }
}

impl Children {
    /// The children in apply order: the NetworkPolicies first (a pod must never run
    /// unguarded once a policy is asked for), Secrets and ConfigMaps (the pods reference
    /// them), the ServiceAccount the pods run as, then the volume before its claim, the
    /// installer that fills the claim, the Services, the Ingress to them and the budget,
    /// the Deployment once everything it references exists, and last the route and the
    /// monitor, which point at the Service.
    pub fn into_ordered(self) -> Vec<Child> {
        let Children {
            generated,
            secrets,
            config_maps,
            service_account,
            volume,
            claim,
            installer,
            services,
            ingress,
            disruption_budget,
            deployment,
            extras:
                ExtraChildren {
                    http_route,
                    service_monitor,
                    network_policies,
                },
        } = self;
        let mut out: Vec<Child> = network_policies
            .into_iter()
            .map(Child::NetworkPolicy)
            .collect();
        out.extend(generated.into_iter().map(Child::GeneratedSecret));
        out.extend(secrets.into_iter().map(Child::Secret));
        out.extend(config_maps.into_iter().map(Child::ConfigMap));
        out.extend(service_account.map(Child::ServiceAccount));
        out.extend(volume.map(Child::Volume));
        out.push(Child::Claim(claim));
        out.extend(installer.map(Child::InstallerJob));
        out.extend(services.into_iter().map(Child::Service));
        out.extend(ingress.map(Child::Ingress));
        out.extend(disruption_budget.map(Child::DisruptionBudget));
        out.push(Child::Deployment(deployment));
        out.extend(http_route.map(Child::HttpRoute));
        out.extend(service_monitor.map(Child::ServiceMonitor));
        out
    }

    /// (kind, name) of every child: what cleanup keeps.
    pub fn names(&self) -> Vec<(ChildKind, String)> {
        self.clone()
            .into_ordered()
            .iter()
            .map(|c| (c.kind(), c.name()))
            .collect()
    }
}
