//! The `GrafanaCluster` API (`grafana-ha.io/v1alpha1`).
//!
//! Everything the user can say lives here, with the CEL rules that admission enforces. The
//! same rules run client-side in [`validation`], so `render` and the controller refuse exactly
//! what `kubectl apply` would.

mod access;
mod config;
mod datasources;
pub mod defaults;
mod spec;
mod status;
mod telemetry;
pub mod validation;

pub use access::{
    HttpServiceSpec, IngressSpec, IngressTlsSpec, MANAGED_CONTAINERS, PodCustomization,
    ServiceAccountSpec, ServiceType,
};
pub use config::*;
pub use datasources::*;
pub use spec::*;
pub use status::*;
pub use telemetry::*;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvFromSource, EnvVar, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
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
    validation = Rule::new("!has(self.upgrade) || !has(self.upgrade.snapshot) || !self.upgrade.snapshot || !has(self.database) || !has(self.database.endpoint)").message("spec.upgrade.snapshot needs an RDS database found by discovery: it cannot snapshot spec.database.endpoint; take the snapshot yourself and set snapshot: false"),
    validation = Rule::new("!has(self.alerting) || !has(self.alerting.ha) || self.alerting.ha != 'redis' || !has(self.cache) || ((!has(self.cache.enabled) || self.cache.enabled) && (!has(self.cache.engine) || self.cache.engine == 'redis'))").message("spec.alerting.ha: redis needs a Redis cache (cache.engine redis and cache.enabled)")
)]
#[serde(rename_all = "camelCase")]
// The optional sections larger than a pointer are boxed: an absent one then costs 8 bytes
// in place instead of its whole size. The operator keeps every GrafanaCluster in its cache
// and clones one per reconcile; unboxed, the spec was 2.4 KB in place however short the
// manifest (bench/results/profile-2026-11-26.md).
pub struct GrafanaClusterSpec {
    /// Number of Grafana replicas. Also driven through the scale subresource (`kubectl scale gfc`,
    /// HorizontalPodAutoscaler); the operator never overrides the count they set. 0 scales
    /// Grafana down (maintenance) and keeps everything else.
    #[serde(default = "defaults::replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// Grafana container image. Defaults to the Grafana release pinned by this operator version
    /// (see status.image); pin it here to control upgrades yourself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,

    /// Where and how to look for AWS resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<Box<AwsSpec>>,

    /// The shared SQL database (RDS Postgres or MySQL). Several replicas need one: SQLite is
    /// never used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Box<DatabaseSpec>>,

    /// The remote cache (ElastiCache Redis/Valkey or Memcached) shared by the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Box<CacheSpec>>,

    /// Plugin storage shared by all replicas (ReadWriteMany) and the plugins to install on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Box<PluginsSpec>>,

    /// Public address of Grafana.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Box<ServerSpec>>,

    /// Which built-in authentication methods are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,

    /// The initial admin user. Without secretRef the operator generates a password once and
    /// keeps it in the Secret <name>-admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_credentials: Option<Box<AdminCredentialsSpec>>,

    /// Unified alerting high availability between the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,

    /// Compute resources of each Grafana container. Defaults to requests = limits of
    /// 500m CPU and 512Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,

    /// Rolling update of the Grafana Deployment. Defaults to maxSurge 1, maxUnavailable 0:
    /// full capacity during a rollout and one new pod at a time racing for the database
    /// migration lock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<Box<RollingUpdateSpec>>,

    /// The PodDisruptionBudget around the replicas (default on, maxUnavailable 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<Box<PodDisruptionBudgetSpec>>,

    /// How a new Grafana version reaches the database, whose schema only moves forward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeSpec>,

    /// Node labels the Grafana pods must run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,

    /// Tolerations of the Grafana pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,

    /// Affinity of the Grafana pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Box<Affinity>>,

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

    /// AWS data sources provisioned into Grafana: Amazon Managed Service for Prometheus
    /// workspaces found by tag, and CloudWatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sources: Option<Box<DataSourcesSpec>>,
    /// A Gateway API HTTPRoute to Grafana (needs the Gateway API CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_route: Option<Box<HttpRouteSpec>>,

    /// Grafana's own metrics: a ServiceMonitor (needs the Prometheus Operator CRDs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Box<MonitoringSpec>>,

    /// NetworkPolicies around the Grafana pods and the plugin installer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<Box<NetworkPolicySpec>>,
    /// The ServiceAccount of the Grafana pods and the plugin installer: by default one the
    /// operator creates per cluster (annotate it for IRSA), or an existing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<Box<ServiceAccountSpec>>,

    /// The HTTP Service: type, annotations (e.g. for an NLB) and extra labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Box<HttpServiceSpec>>,

    /// An Ingress to the HTTP Service (e.g. an ALB through the AWS Load Balancer Controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Box<IngressSpec>>,

    /// Labels, annotations, pull secrets, priority, extra volumes, mounts, ports and
    /// containers of the Grafana pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Box<PodCustomization>>,
    /// Whole Secrets and ConfigMaps as environment variables of the Grafana container (e.g.
    /// a Secret whose keys are GF_* names, or values a setting reads with $__env{VAR}).
    /// Variables the operator sets win over these. Changing their data rolls the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(f, has(f.configMapRef) != has(f.secretRef))").message("spec.envFrom: each entry names exactly one of configMapRef and secretRef"))]
    pub env_from: Option<Vec<EnvFromSource>>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "config::config_schema")]
    pub config: Option<ConfigSections>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "config::config_secrets_schema")]
    pub config_secrets: Option<ConfigSecretSections>,

    /// LDAP authentication from an ldap.toml kept in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<Box<LdapSpec>>,
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_is_small_in_place() {
        let size = size_of::<super::GrafanaCluster>();
        assert!(size <= 1600, "GrafanaCluster is {size} bytes in place");
    }

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
                    "envFrom",
                    "resources",
                    "maxSurge",
                    "maxUnavailable",
                    "minAvailable",
                    "ingressFrom",
                    "extraEgress",
                    "imagePullSecrets",
                    "extraVolumes",
                    "extraVolumeMounts",
                    "extraContainers",
                    "extraInitContainers",
                    "extraPorts",
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
