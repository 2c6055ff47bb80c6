//! The HTTP Service and the headless Service for alerting gossip.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::child_meta;
use crate::api::AlertingHa;
use crate::names;
use crate::resolve::Wiring;

/// ClusterIP Service in front of the replicas, port 80 -> 3000.
pub fn http(wiring: &Wiring) -> Service {
    Service {
        metadata: child_meta(wiring, names::service(&wiring.name), "server"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(names::selector_labels(&wiring.name)),
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
pub fn alerting(wiring: &Wiring) -> Option<Service> {
    if wiring.alerting != AlertingHa::Gossip {
        return None;
    }
    let port = |name: &str, protocol: &str| ServicePort {
        name: Some(name.into()),
        port: names::GOSSIP_PORT,
        target_port: Some(IntOrString::Int(names::GOSSIP_PORT)),
        protocol: Some(protocol.into()),
        ..ServicePort::default()
    };
    Some(Service {
        metadata: child_meta(wiring, names::alerting_service(&wiring.name), "alerting"),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(names::selector_labels(&wiring.name)),
            ports: Some(vec![port("gossip-tcp", "TCP"), port("gossip-udp", "UDP")]),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures;

    #[test]
    fn http_service_targets_the_server_pods() {
        let w = fixtures::wiring();
        let spec = http(&w).spec.expect("spec");
        assert_eq!(spec.selector, Some(names::selector_labels("grafana")));
        assert_eq!(spec.ports.expect("ports")[0].port, 80);
    }

    #[test]
    fn gossip_service_is_headless_on_9094_tcp_and_udp() {
        let w = fixtures::wiring();
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
        let mut w = fixtures::wiring();
        w.alerting = AlertingHa::Off;
        assert!(alerting(&w).is_none());
    }
}
