//! Pure: the HTTPRoute, the ServiceMonitor and the NetworkPolicies a cluster asks for, with
//! their defaults, and the OptionalAPIs condition that says which of them the cluster's
//! APIs can take.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer};

use crate::api::GrafanaClusterSpec;
use crate::names;
use crate::optional_api::{ApiAvailability, Availability, OptionalApi};
use crate::status::{ConditionState, Reason};

/// A Gateway the route attaches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentRefPlan {
    pub name: String,
    pub namespace: Option<String>,
    pub section_name: Option<String>,
}

/// The HTTPRoute to the HTTP Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRoutePlan {
    pub name: String,
    pub parent_refs: Vec<ParentRefPlan>,
    pub hostnames: Vec<String>,
    pub path: String,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The Service and Service port (not the container port) the route sends to.
    pub service: String,
    pub service_port: i32,
}

/// The ServiceMonitor over the HTTP Service's metrics port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceMonitorPlan {
    pub name: String,
    pub interval: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The Service port's name and the path Grafana serves its metrics on.
    pub port_name: String,
    pub path: String,
}

/// The NetworkPolicies around the Grafana pods and the plugin installer.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPolicyPlan {
    /// Who may reach port 3000; None: anyone.
    pub ingress_from: Option<Vec<NetworkPolicyPeer>>,
    /// Replicas talk to each other on 9094 TCP and UDP (alerting gossip).
    pub gossip: bool,
    pub database_port: i32,
    pub cache_port: Option<i32>,
    /// Where the database and cache may be; empty: any address on their ports.
    pub aws_cidrs: Vec<String>,
    pub extra_egress: Vec<NetworkPolicyEgressRule>,
    /// A plugin installer Job runs: it gets its own policy (DNS and HTTPS out).
    pub installer: bool,
}

/// Everything around the replicas in other APIs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExtrasPlan {
    /// Absent when not asked for or when the Gateway API is not served.
    pub http_route: Option<HttpRoutePlan>,
    /// Absent when not asked for or when the Prometheus Operator API is not served.
    pub service_monitor: Option<ServiceMonitorPlan>,
    pub network_policy: Option<NetworkPolicyPlan>,
}

/// The path Grafana serves its Prometheus metrics on (`[metrics] enabled` defaults to true).
pub const METRICS_PATH: &str = "/metrics";
/// The HTTP Service port's name, which the ServiceMonitor selects.
pub const HTTP_PORT_NAME: &str = "http";
/// The HTTP Service's port (it targets the container's port 3000).
pub const SERVICE_PORT: i32 = 80;

/// True when the spec asks for a child of the optional API's kind.
pub fn wants_optional_api(spec: &GrafanaClusterSpec, api: OptionalApi) -> bool {
    match api {
        OptionalApi::HttpRoute => spec.http_route.is_some(),
        OptionalApi::ServiceMonitor => spec
            .monitoring
            .as_ref()
            .and_then(|m| m.service_monitor.as_ref())
            .and_then(|s| s.enabled)
            .unwrap_or(false),
    }
}

/// What the cluster asks for around the replicas, given which optional APIs are served.
pub fn extras(
    cluster: &str,
    spec: &GrafanaClusterSpec,
    apis: &ApiAvailability,
    gossip: bool,
    database_port: i32,
    cache_port: Option<i32>,
    installer: bool,
) -> ExtrasPlan {
    let http_route = spec
        .http_route
        .as_ref()
        .filter(|_| apis.http_route.writable())
        .map(|r| HttpRoutePlan {
            name: names::service(cluster),
            parent_refs: r
                .parent_refs
                .iter()
                .map(|p| ParentRefPlan {
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    section_name: p.section_name.clone(),
                })
                .collect(),
            hostnames: r.hostnames.clone().unwrap_or_default(),
            path: r.path.clone().unwrap_or_else(|| "/".into()),
            annotations: r.annotations.clone().unwrap_or_default(),
            labels: r.labels.clone().unwrap_or_default(),
            service: names::service(cluster),
            service_port: SERVICE_PORT,
        });
    let service_monitor = spec
        .monitoring
        .as_ref()
        .and_then(|m| m.service_monitor.as_ref())
        .filter(|_| wants_optional_api(spec, OptionalApi::ServiceMonitor))
        .filter(|_| apis.service_monitor.writable())
        .map(|s| ServiceMonitorPlan {
            name: names::service(cluster),
            interval: s.interval.clone(),
            labels: s.labels.clone().unwrap_or_default(),
            port_name: HTTP_PORT_NAME.into(),
            path: METRICS_PATH.into(),
        });
    let network_policy = spec
        .network_policy
        .as_ref()
        .filter(|n| n.enabled.unwrap_or(false))
        .map(|n| NetworkPolicyPlan {
            ingress_from: n.ingress_from.clone(),
            gossip,
            database_port,
            cache_port,
            aws_cidrs: n.aws_cidrs.clone().unwrap_or_default(),
            extra_egress: n.extra_egress.clone().unwrap_or_default(),
            installer,
        });
    ExtrasPlan {
        http_route,
        service_monitor,
        network_policy,
    }
}

/// The OptionalAPIs condition: True when every optional API the spec asks for is served (or
/// none is asked for); False naming what is missing. It never blocks the rest.
pub fn condition(apis: &ApiAvailability) -> ConditionState {
    let mut missing = Vec::new();
    let mut failed = Vec::new();
    let mut served = Vec::new();
    for api in OptionalApi::ALL {
        match apis.of(api) {
            Availability::NotNeeded => {}
            Availability::Served | Availability::Unchecked => served.push(api.field()),
            Availability::NotServed => missing.push(format!(
                "{} needs {} ({}), which this cluster does not serve: install {}",
                api.field(),
                api.as_str(),
                api.group_version(),
                api.provider()
            )),
            Availability::CheckFailed(why) => failed.push(format!(
                "cannot tell whether {} is served ({why}); asking again shortly",
                api.as_str()
            )),
        }
    }
    if !missing.is_empty() {
        let mut message = missing;
        message.extend(failed);
        return ConditionState::failed(
            Reason::ApiNotServed,
            format!(
                "{}; everything else is applied as usual",
                message.join("; ")
            ),
        );
    }
    if !failed.is_empty() {
        return ConditionState::failed(Reason::ApiCheckFailed, failed.join("; "));
    }
    if served.is_empty() {
        ConditionState::ok(
            Reason::NotRequested,
            "the spec asks for no HTTPRoute or ServiceMonitor",
        )
    } else {
        ConditionState::ok(
            Reason::Served,
            format!("served for {}", served.join(" and ")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        HttpRouteParentRef, HttpRouteSpec, MonitoringSpec, NetworkPolicySpec, ServiceMonitorSpec,
    };

    fn spec() -> GrafanaClusterSpec {
        let mut spec = crate::fixtures::article().spec;
        spec.http_route = Some(Box::new(HttpRouteSpec {
            parent_refs: vec![HttpRouteParentRef {
                name: "public".into(),
                namespace: Some("gateways".into()),
                section_name: None,
            }],
            hostnames: Some(vec!["*.example.com".into(), "grafana.example.com".into()]),
            ..HttpRouteSpec::default()
        }));
        spec.monitoring = Some(Box::new(MonitoringSpec {
            service_monitor: Some(ServiceMonitorSpec {
                enabled: Some(true),
                interval: Some("30s".into()),
                labels: Some(BTreeMap::from([("release".into(), "prom".into())])),
            }),
        }));
        spec.network_policy = Some(Box::new(NetworkPolicySpec {
            enabled: Some(true),
            ..NetworkPolicySpec::default()
        }));
        spec
    }

    fn all(availability: Availability) -> ApiAvailability {
        ApiAvailability {
            http_route: availability.clone(),
            service_monitor: availability,
        }
    }

    #[test]
    fn served_apis_get_their_children_with_defaults() {
        let plan = extras(
            "grafana",
            &spec(),
            &all(Availability::Served),
            true,
            5432,
            Some(6379),
            false,
        );
        let route = plan.http_route.expect("route");
        assert_eq!(route.path, "/");
        assert_eq!(
            (route.service.as_str(), route.service_port),
            ("grafana", 80)
        );
        let monitor = plan.service_monitor.expect("monitor");
        assert_eq!(
            (monitor.port_name.as_str(), monitor.path.as_str()),
            ("http", "/metrics")
        );
        assert!(plan.network_policy.expect("policy").ingress_from.is_none());
    }

    #[test]
    fn a_missing_api_drops_only_its_child_and_the_condition_says_what_to_install() {
        let apis = all(Availability::NotServed);
        let plan = extras("grafana", &spec(), &apis, true, 5432, None, false);
        assert!(plan.http_route.is_none());
        assert!(plan.service_monitor.is_none());
        assert!(
            plan.network_policy.is_some(),
            "a core API is never optional"
        );
        let c = condition(&apis);
        assert!(!c.status);
        assert_eq!(c.reason, Reason::ApiNotServed);
        assert!(
            c.message
                .contains("spec.httpRoute needs httproutes.gateway.networking.k8s.io")
        );
        assert!(c.message.contains("Prometheus Operator CRDs"));
    }

    #[test]
    fn condition_reasons() {
        assert_eq!(
            condition(&ApiAvailability::default()).reason,
            Reason::NotRequested
        );
        assert_eq!(condition(&all(Availability::Served)).reason, Reason::Served);
        let failed = condition(&all(Availability::CheckFailed("timeout".into())));
        assert_eq!(
            (failed.status, failed.reason),
            (false, Reason::ApiCheckFailed)
        );
    }

    #[test]
    fn a_disabled_service_monitor_is_not_wanted() {
        let mut s = spec();
        if let Some(m) = s
            .monitoring
            .as_mut()
            .and_then(|m| m.service_monitor.as_mut())
        {
            m.enabled = Some(false);
        }
        assert!(!wants_optional_api(&s, OptionalApi::ServiceMonitor));
        assert!(wants_optional_api(&s, OptionalApi::HttpRoute));
    }
}
