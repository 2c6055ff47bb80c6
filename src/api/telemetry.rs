//! The ways around the replicas that live in other APIs: a Gateway API HTTPRoute, the
//! Prometheus Operator's ServiceMonitor for Grafana's own metrics, and a NetworkPolicy.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A Gateway API HTTPRoute (gateway.networking.k8s.io/v1) to the HTTP Service. Written only
/// when the cluster serves the Gateway API; otherwise the OptionalAPIs condition says so and
/// nothing else is affected.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.path) || self.path.startsWith('/')").message("spec.httpRoute.path must start with /")
)]
pub struct HttpRouteSpec {
    /// The Gateways (listeners) the route attaches to.
    #[schemars(length(min = 1, max = 32))]
    pub parent_refs: Vec<HttpRouteParentRef>,

    /// Host names the route answers (Gateway API hostnames; a leading `*.` is a wildcard).
    /// The first one that is not a wildcard sets server.rootUrl (https) when neither
    /// server.rootUrl nor server.domain nor an Ingress host sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    #[x_kube(validation = Rule::new("self.all(h, h.matches('^(\\\\*\\\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))").message("spec.httpRoute.hostnames: each entry must be a lower-case DNS name, optionally starting with *."))]
    pub hostnames: Option<Vec<String>>,

    /// Path prefix routed to Grafana (default `/`). Without an Ingress, a sub-path is served
    /// as the Ingress's is: in the default server.rootUrl and serve_from_sub_path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: Option<String>,

    /// Extra annotations of the HTTPRoute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Extra labels of the HTTPRoute (the operator's own labels win on conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A Gateway (or one of its listeners) the HTTPRoute attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteParentRef {
    /// Name of the Gateway.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the Gateway (default: the GrafanaCluster's). The Gateway's listener
    /// must allow routes from this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    /// One listener of the Gateway, by name (default: every listener that accepts the route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub section_name: Option<String>,
}

/// Grafana's own telemetry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// A Prometheus Operator ServiceMonitor (monitoring.coreos.com/v1) that scrapes Grafana's
    /// /metrics through the HTTP Service's `http` port. Written only when the cluster serves
    /// that API; otherwise the OptionalAPIs condition says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor: Option<ServiceMonitorSpec>,
}

/// The ServiceMonitor of Grafana's metrics.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create the ServiceMonitor (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Scrape interval, e.g. 30s or 1m (default: Prometheus' own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^[0-9]+(ms|s|m|h)$')").message("spec.monitoring.serviceMonitor.interval: a duration such as 30s or 1m"))]
    pub interval: Option<String>,
    /// Extra labels of the ServiceMonitor, e.g. the `release` label your Prometheus'
    /// serviceMonitorSelector matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A NetworkPolicy around the replicas that lets in and out exactly what Grafana needs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.ingressFrom) || size(self.ingressFrom) > 0").message("spec.networkPolicy.ingressFrom: an empty list would let no one reach Grafana; remove it (anyone) or name the peers")
)]
pub struct NetworkPolicySpec {
    /// Write the NetworkPolicies (default false: a policy turns every other connection off,
    /// which would cut traffic your cluster relies on today, e.g. data sources not listed
    /// in extraEgress). Without a NetworkPolicy-aware CNI the policies have no effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// Who may reach Grafana's HTTP port 3000: your ingress controller's and Prometheus'
    /// namespaces or pods, or ipBlocks (an ALB with target-type ip connects from the VPC's
    /// addresses, not from a pod). Absent: from anywhere (the port serves Grafana's own,
    /// authenticated UI; the policy still closes the gossip port and the egress). An empty
    /// list is refused: it would lock everyone out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub ingress_from: Option<Vec<NetworkPolicyPeer>>,

    /// CIDRs of the database and cache (e.g. the VPC's or their subnets'). Absent, the
    /// database and cache ports are open towards any address: a policy cannot name the
    /// resolved address of an AWS endpoint, which moves on failover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16), inner(length(min = 9, max = 43)))]
    pub aws_cidrs: Option<Vec<String>>,

    /// Further egress rules of the Grafana pods, e.g. port 443 for the CloudWatch, Amazon
    /// Managed Prometheus and STS (IRSA) endpoints, or 169.254.170.23 port 80 for the EKS
    /// Pod Identity agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub extra_egress: Option<Vec<NetworkPolicyEgressRule>>,
}

#[cfg(test)]
mod tests {
    use crate::api::{GrafanaCluster, validation};

    fn refusals(extra: serde_json::Value) -> Vec<String> {
        let mut spec = serde_json::json!({
            "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": spec,
        }))
        .expect("spec deserializes");
        validation::validate(&gc)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_complete_telemetry_spec_is_valid() {
        let msgs = refusals(serde_json::json!({
            "httpRoute": {
                "parentRefs": [{"name": "public", "namespace": "gw", "sectionName": "https"}],
                "hostnames": ["grafana.example.com", "*.example.com"],
                "path": "/",
            },
            "monitoring": {"serviceMonitor": {"enabled": true, "interval": "30s"}},
            "networkPolicy": {"enabled": true, "ingressFrom": [{"podSelector": {}}]},
        }));
        assert_eq!(msgs, Vec::<String>::new());
    }

    #[test]
    fn bad_hosts_paths_intervals_and_empty_peers_are_refused() {
        for (extra, needle) in [
            (
                serde_json::json!({"httpRoute": {"parentRefs": [{"name": "p"}], "hostnames": ["Grafana.Example.com"]}}),
                "spec.httpRoute.hostnames",
            ),
            (
                serde_json::json!({"httpRoute": {"parentRefs": [{"name": "p"}], "path": "grafana"}}),
                "spec.httpRoute.path",
            ),
            (
                serde_json::json!({"monitoring": {"serviceMonitor": {"interval": "30 seconds"}}}),
                "spec.monitoring.serviceMonitor.interval",
            ),
            (
                serde_json::json!({"networkPolicy": {"enabled": true, "ingressFrom": []}}),
                "spec.networkPolicy.ingressFrom",
            ),
        ] {
            let msgs = refusals(extra.clone());
            assert!(
                msgs.iter().any(|m| m.contains(needle)),
                "{extra} should be refused naming {needle}: {msgs:?}"
            );
        }
    }
}
