use super::*;
use crate::fixtures;
use crate::resolve::telemetry::{HttpRoutePlan, ParentRefPlan, ServiceMonitorPlan};

fn plan_with_policy(np: NetworkPolicyPlan) -> Plan {
    let mut plan = fixtures::plan();
    plan.extras.network_policy = Some(np);
    plan
}

fn policy() -> NetworkPolicyPlan {
    NetworkPolicyPlan {
        ingress_from: None,
        gossip: true,
        database_port: 5432,
        cache_port: Some(6379),
        aws_cidrs: Vec::new(),
        extra_egress: Vec::new(),
        installer: true,
    }
}

/// (port, protocol) of every rule's ports.
fn ports(rules: &[Option<Vec<NetworkPolicyPort>>]) -> Vec<(i32, String)> {
    rules
        .iter()
        .flatten()
        .flatten()
        .map(|p| {
            let number = match &p.port {
                Some(IntOrString::Int(n)) => *n,
                other => panic!("unexpected port {other:?}"),
            };
            (number, p.protocol.clone().unwrap_or_default())
        })
        .collect()
}

fn server(plan: &Plan) -> NetworkPolicySpec {
    network_policies(plan)
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some("grafana"))
        .and_then(|p| p.spec)
        .expect("server policy")
}

#[test]
fn no_policy_unless_asked() {
    assert!(network_policies(&fixtures::plan()).is_empty());
}

#[test]
fn grafana_pods_get_http_in_gossip_between_replicas_and_only_named_egress() {
    let spec = server(&plan_with_policy(policy()));
    assert_eq!(
        spec.pod_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone()),
        Some(names::selector_labels("grafana"))
    );
    assert_eq!(
        spec.policy_types,
        Some(vec!["Ingress".to_string(), "Egress".to_string()])
    );
    let ingress = spec.ingress.expect("ingress");
    assert_eq!(
        ports(&ingress.iter().map(|r| r.ports.clone()).collect::<Vec<_>>()),
        vec![
            (3000, "TCP".into()),
            (9094, "TCP".into()),
            (9094, "UDP".into())
        ]
    );
    assert!(ingress[0].from.is_none(), "3000 from anywhere by default");
    let replicas = NetworkPolicyPeer {
        pod_selector: Some(selector(names::selector_labels("grafana"))),
        ..NetworkPolicyPeer::default()
    };
    assert_eq!(ingress[1].from, Some(vec![replicas.clone()]));
    let egress = spec.egress.expect("egress");
    assert_eq!(
        ports(&egress.iter().map(|r| r.ports.clone()).collect::<Vec<_>>()),
        vec![
            (53, "UDP".into()),
            (53, "TCP".into()),
            (5432, "TCP".into()),
            (6379, "TCP".into()),
            (9094, "TCP".into()),
            (9094, "UDP".into())
        ]
    );
    let dns = egress[0].to.clone().expect("dns peers");
    assert_eq!(
        dns[0]
            .namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .and_then(|l| l.get("kubernetes.io/metadata.name").cloned())
            .as_deref(),
        Some("kube-system")
    );
    assert!(egress[1].to.is_none(), "database port to any address");
    assert_eq!(egress[3].to, Some(vec![replicas]));
}

#[test]
fn chosen_peers_cidrs_and_extra_egress_are_used() {
    let from = vec![NetworkPolicyPeer {
        namespace_selector: Some(selector(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            "ingress-nginx".to_string(),
        )]))),
        ..NetworkPolicyPeer::default()
    }];
    let extra = NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![port(443, "TCP")]),
    };
    let spec = server(&plan_with_policy(NetworkPolicyPlan {
        ingress_from: Some(from.clone()),
        gossip: false,
        cache_port: None,
        aws_cidrs: vec!["10.0.0.0/16".into()],
        extra_egress: vec![extra.clone()],
        installer: false,
        ..policy()
    }));
    let ingress = spec.ingress.expect("ingress");
    assert_eq!(ingress.len(), 1, "no gossip rule without gossip");
    assert_eq!(ingress[0].from, Some(from));
    let egress = spec.egress.expect("egress");
    assert_eq!(egress.len(), 3, "DNS, database, extra: {egress:?}");
    let db_to = egress[1].to.clone().expect("database peers");
    assert_eq!(
        db_to[0].ip_block.as_ref().map(|b| b.cidr.as_str()),
        Some("10.0.0.0/16")
    );
    assert_eq!(egress[2], extra);
}

#[test]
fn the_installer_gets_dns_and_https_out_and_nothing_in() {
    let policies = network_policies(&plan_with_policy(policy()));
    assert_eq!(policies.len(), 2);
    let installer = policies[1].spec.clone().expect("spec");
    let labels = installer
        .pod_selector
        .and_then(|s| s.match_labels)
        .expect("labels");
    assert_eq!(
        labels.get(names::COMPONENT_LABEL).map(String::as_str),
        Some("plugins-installer")
    );
    assert_eq!(installer.ingress, Some(Vec::new()));
    let egress = installer.egress.expect("egress");
    assert_eq!(
        ports(&egress.iter().map(|r| r.ports.clone()).collect::<Vec<_>>()),
        vec![(53, "UDP".into()), (53, "TCP".into()), (443, "TCP".into())]
    );
    let without = network_policies(&plan_with_policy(NetworkPolicyPlan {
        installer: false,
        ..policy()
    }));
    assert_eq!(without.len(), 1);
}

#[test]
fn route_sends_the_path_to_the_http_service_port() {
    let mut plan = fixtures::plan();
    plan.extras.http_route = Some(HttpRoutePlan {
        name: "grafana".into(),
        parent_refs: vec![ParentRefPlan {
            name: "public".into(),
            namespace: Some("gateways".into()),
            section_name: Some("https".into()),
        }],
        hostnames: vec!["grafana.example.com".into()],
        path: "/".into(),
        annotations: BTreeMap::from([("a".into(), "b".into())]),
        labels: BTreeMap::from([
            ("team".into(), "obs".into()),
            (names::CLUSTER_LABEL.into(), "spoof".into()),
        ]),
        service: "grafana".into(),
        service_port: 80,
    });
    let route = http_route(&plan).expect("route");
    let labels = route.metadata.labels.clone().expect("labels");
    assert_eq!(labels.get("team").map(String::as_str), Some("obs"));
    assert_eq!(
        labels.get(names::CLUSTER_LABEL).map(String::as_str),
        Some("grafana"),
        "the operator's labels win"
    );
    let json = serde_json::to_value(&route).expect("json");
    assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(json["kind"], "HTTPRoute");
    assert_eq!(json["spec"]["parentRefs"][0]["sectionName"], "https");
    assert_eq!(
        json["spec"]["rules"][0]["matches"][0]["path"],
        serde_json::json!({"type": "PathPrefix", "value": "/"})
    );
    assert_eq!(
        json["spec"]["rules"][0]["backendRefs"][0],
        serde_json::json!({"name": "grafana", "port": 80})
    );
    // The port the route names is the HTTP Service's.
    let service = crate::build::services::http(&plan);
    let service_ports = service.spec.and_then(|s| s.ports).expect("ports");
    assert_eq!(service_ports[0].port, 80);
}

#[test]
fn monitor_scrapes_the_named_http_port_of_the_http_service_only() {
    let mut plan = fixtures::plan();
    plan.extras.service_monitor = Some(ServiceMonitorPlan {
        name: "grafana".into(),
        interval: Some("30s".into()),
        labels: BTreeMap::from([("release".into(), "prom".into())]),
        port_name: "http".into(),
        path: "/metrics".into(),
    });
    let monitor = service_monitor(&plan).expect("monitor");
    let json = serde_json::to_value(&monitor).expect("json");
    assert_eq!(json["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        json["spec"]["endpoints"][0],
        serde_json::json!({"port": "http", "path": "/metrics", "interval": "30s"})
    );
    let selector = monitor.spec.selector.match_labels.expect("labels");
    let http = crate::build::services::http(&plan);
    let http_labels = http.metadata.labels.clone().expect("labels");
    assert!(selector.iter().all(|(k, v)| http_labels.get(k) == Some(v)));
    let port_names: Vec<_> = http
        .spec
        .and_then(|s| s.ports)
        .expect("ports")
        .into_iter()
        .filter_map(|p| p.name)
        .collect();
    assert_eq!(port_names, vec!["http".to_string()]);
    if let Some(alerting) = crate::build::services::alerting(&plan) {
        let labels = alerting.metadata.labels.expect("labels");
        assert!(
            !selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "the alerting Service is not scraped"
        );
    }
}

#[test]
fn under_a_served_sub_path_the_scrape_carries_it() {
    let mut plan = fixtures::plan();
    plan.extras.service_monitor = Some(ServiceMonitorPlan {
        name: "grafana".into(),
        interval: None,
        labels: BTreeMap::new(),
        port_name: "http".into(),
        path: "/metrics".into(),
    });
    plan.server.sub_path = "/grafana".into();
    let monitor = service_monitor(&plan).expect("monitor");
    assert_eq!(monitor.spec.endpoints[0].path, "/grafana/metrics");
}
