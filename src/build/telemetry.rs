//! The HTTPRoute, the ServiceMonitor and the NetworkPolicies, from the plan's extras.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::child_meta;
use crate::names::{self, Component};
use crate::optional_api::{
    HTTPRoute, HttpBackendRef, HttpPathMatch, HttpRouteBody, HttpRouteMatch, HttpRouteRule,
    ParentReference, ScrapeEndpoint, ServiceMonitor, ServiceMonitorBody,
};
use crate::resolve::Plan;
use crate::resolve::telemetry::NetworkPolicyPlan;

/// Labels the user adds, under the operator's own (which win: cleanup and the watches
/// find children by them).
fn with_extra_labels(
    mut own: BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for (k, v) in extra {
        own.entry(k.clone()).or_insert_with(|| v.clone());
    }
    own
}

/// The HTTPRoute from the Gateways to the HTTP Service.
pub fn http_route(plan: &Plan) -> Option<HTTPRoute> {
    let route = plan.extras.http_route.as_ref()?;
    let mut metadata = child_meta(&plan.cluster, route.name.clone(), Component::Server);
    metadata.labels = metadata
        .labels
        .map(|own| with_extra_labels(own, &route.labels));
    if !route.annotations.is_empty() {
        metadata.annotations = Some(route.annotations.clone());
    }
    let body = HttpRouteBody {
        parent_refs: route
            .parent_refs
            .iter()
            .map(|p| ParentReference {
                name: p.name.clone(),
                namespace: p.namespace.clone(),
                section_name: p.section_name.clone(),
            })
            .collect(),
        hostnames: route.hostnames.clone(),
        rules: vec![HttpRouteRule {
            matches: vec![HttpRouteMatch {
                path: Some(HttpPathMatch {
                    type_: "PathPrefix".into(),
                    value: route.path.clone(),
                }),
            }],
            backend_refs: vec![HttpBackendRef {
                name: route.service.clone(),
                port: route.service_port,
            }],
        }],
    };
    Some(HTTPRoute {
        metadata,
        spec: body,
    })
}

/// The ServiceMonitor that scrapes Grafana's /metrics through the HTTP Service.
pub fn service_monitor(plan: &Plan) -> Option<ServiceMonitor> {
    let monitor = plan.extras.service_monitor.as_ref()?;
    let mut metadata = child_meta(&plan.cluster, monitor.name.clone(), Component::Server);
    metadata.labels = metadata
        .labels
        .map(|own| with_extra_labels(own, &monitor.labels));
    // The HTTP Service carries these labels and no other Service of the cluster does.
    let selector = names::common_labels(&plan.cluster.name, Component::Server);
    Some(ServiceMonitor {
        metadata,
        spec: ServiceMonitorBody {
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            endpoints: vec![ScrapeEndpoint {
                port: monitor.port_name.clone(),
                // Under a served sub-path /metrics redirects to the public URL.
                path: format!("{}{}", plan.server.sub_path, monitor.path),
                interval: monitor.interval.clone(),
            }],
        },
    })
}

fn port(number: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(number)),
        protocol: Some(protocol.into()),
        end_port: None,
    }
}

fn selector(labels: BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels),
        match_expressions: None,
    }
}

/// Egress to the cluster DNS (kube-dns / CoreDNS in kube-system), UDP and TCP 53.
fn dns_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(selector(BTreeMap::from([(
                "kubernetes.io/metadata.name".to_string(),
                "kube-system".to_string(),
            )]))),
            pod_selector: Some(selector(BTreeMap::from([(
                "k8s-app".to_string(),
                "kube-dns".to_string(),
            )]))),
            ip_block: None,
        }]),
        ports: Some(vec![port(53, "UDP"), port(53, "TCP")]),
    }
}

/// Egress on one TCP port: to the given CIDRs, or anywhere when there are none.
fn port_egress(number: i32, cidrs: &[String]) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: (!cidrs.is_empty()).then(|| {
            cidrs
                .iter()
                .map(|cidr| NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: cidr.clone(),
                        except: None,
                    }),
                    ..NetworkPolicyPeer::default()
                })
                .collect()
        }),
        ports: Some(vec![port(number, "TCP")]),
    }
}

/// The policy around the Grafana pods: 3000 in from the chosen peers (anyone when none
/// are chosen), 9094 TCP and UDP only between the replicas, and out only to DNS, the
/// database, the cache, the peers and the user's extra rules. The EFS mount needs no rule:
/// the node (the EFS CSI driver) mounts NFS, not the pod.
fn server_policy(plan: &Plan, np: &NetworkPolicyPlan) -> NetworkPolicy {
    let name = &plan.cluster.name;
    let replicas = || NetworkPolicyPeer {
        pod_selector: Some(selector(names::selector_labels(name))),
        ..NetworkPolicyPeer::default()
    };
    let mut ingress = vec![NetworkPolicyIngressRule {
        from: np.ingress_from.clone(),
        ports: Some(vec![port(names::HTTP_PORT, "TCP")]),
    }];
    let mut egress = vec![dns_egress(), port_egress(np.database_port, &np.aws_cidrs)];
    if let Some(cache) = np.cache_port {
        egress.push(port_egress(cache, &np.aws_cidrs));
    }
    if np.gossip {
        let gossip_ports = || {
            Some(vec![
                port(names::GOSSIP_PORT, "TCP"),
                port(names::GOSSIP_PORT, "UDP"),
            ])
        };
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![replicas()]),
            ports: gossip_ports(),
        });
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![replicas()]),
            ports: gossip_ports(),
        });
    }
    egress.extend(np.extra_egress.iter().cloned());
    NetworkPolicy {
        metadata: child_meta(
            &plan.cluster,
            names::network_policy(name),
            Component::Server,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(names::selector_labels(name))),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// The policy around the plugin installer's pods: nothing in, DNS and HTTPS out (the
/// plugin source, grafana.com: a policy cannot name a host, so port 443 to anywhere).
fn installer_policy(plan: &Plan) -> NetworkPolicy {
    let name = &plan.cluster.name;
    let pods = BTreeMap::from([
        ("app.kubernetes.io/instance".to_string(), name.clone()),
        (
            names::COMPONENT_LABEL.to_string(),
            Component::PluginsInstaller.as_str().to_string(),
        ),
        (names::CLUSTER_LABEL.to_string(), name.clone()),
    ]);
    NetworkPolicy {
        metadata: child_meta(
            &plan.cluster,
            names::installer_network_policy(name),
            Component::PluginsInstaller,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(pods)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(Vec::new()),
            egress: Some(vec![dns_egress(), port_egress(443, &[])]),
        }),
    }
}

/// The NetworkPolicies the plan asks for.
pub fn network_policies(plan: &Plan) -> Vec<NetworkPolicy> {
    let Some(np) = plan.extras.network_policy.as_ref() else {
        return Vec::new();
    };
    let mut out = vec![server_policy(plan, np)];
    if np.installer {
        out.push(installer_policy(plan));
    }
    out
}

#[cfg(test)]
mod tests;
