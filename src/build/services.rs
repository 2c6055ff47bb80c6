//! The HTTP Service and the headless Service for alerting gossip.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::child_meta;
use crate::names::{self, Component};
use crate::resolve::{AlertingPlan, Plan};

/// The Service in front of the replicas, port 80 -> 3000, exposed as the plan says
/// (ClusterIP by default).
pub fn http(plan: &Plan) -> Service {
    let name = &plan.cluster.name;
    let exposure = &plan.access.service;
    let mut metadata = child_meta(&plan.cluster, names::service(name), Component::Server);
    let mut labels = exposure.labels.clone();
    labels.extend(metadata.labels.take().unwrap_or_default());
    metadata.labels = Some(labels);
    metadata.annotations = (!exposure.annotations.is_empty()).then(|| exposure.annotations.clone());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(exposure.type_.clone()),
            load_balancer_class: exposure.load_balancer_class.clone(),
            load_balancer_source_ranges: exposure.load_balancer_source_ranges.clone(),
            selector: Some(names::selector_labels(name)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Headless Service through which the replicas find each other for alerting gossip. It
/// publishes not-ready pods: peers must meet before they pass readiness.
pub fn alerting(plan: &Plan) -> Option<Service> {
    let AlertingPlan::Gossip { service, .. } = &plan.alerting else {
        return None;
    };
    let port = |name: &str, protocol: &str| ServicePort {
        name: Some(name.into()),
        port: names::GOSSIP_PORT,
        target_port: Some(IntOrString::Int(names::GOSSIP_PORT)),
        protocol: Some(protocol.into()),
        ..ServicePort::default()
    };
    Some(Service {
        metadata: child_meta(&plan.cluster, service.clone(), Component::Alerting),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names::selector_labels(&plan.cluster.name)),
            ports: Some(vec![port("gossip-tcp", "TCP"), port("gossip-udp", "UDP")]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn http_service_targets_the_server_pods() {
        let w = fixtures::plan();
        let spec = http(&w).spec.expect("spec");
        assert_eq!(spec.selector, Some(names::selector_labels("grafana")));
        assert_eq!(spec.ports.expect("ports")[0].port, 80);
    }

    #[test]
    fn gossip_service_is_headless_on_9094_tcp_and_udp() {
        let w = fixtures::plan();
        let svc = alerting(&w).expect("svc");
        assert_eq!(svc.metadata.name.as_deref(), Some("grafana-alerting"));
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        let protocols: Vec<_> = spec
            .ports
            .expect("ports")
            .iter()
            .map(|p| (p.port, p.protocol.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            protocols,
            vec![(9094, "TCP".to_string()), (9094, "UDP".to_string())]
        );
    }

    #[test]
    fn no_gossip_service_without_gossip() {
        let mut w = fixtures::plan();
        w.alerting = AlertingPlan::Off;
        assert!(alerting(&w).is_none());
    }
}
