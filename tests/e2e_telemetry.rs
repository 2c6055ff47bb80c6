//! End to end: the children of optional APIs (a Gateway API HTTPRoute, a Prometheus
//! Operator ServiceMonitor) follow their CRDs, and the NetworkPolicy is accepted by the API
//! server. Run through the test bed:
//! `testbed/with-testbed.sh cargo test --test e2e_telemetry -- --test-threads=1`.
//!
//! The CRDs installed here are minimal ones of our own (group, version, kind, any fields
//! kept): the test proves the operator's discovery and cache, not the upstream schemas.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::optional_api::{HTTPRoute, ServiceMonitor};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use support::aws::{AwsClients, reset_moto};
use support::kube::{Operator, OperatorOptions, client, install_crd, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// (CRD name, group, plural, kind) of the optional APIs.
const OPTIONAL_CRDS: [(&str, &str, &str, &str); 2] = [
    (
        "httproutes.gateway.networking.k8s.io",
        "gateway.networking.k8s.io",
        "httproutes",
        "HTTPRoute",
    ),
    (
        "servicemonitors.monitoring.coreos.com",
        "monitoring.coreos.com",
        "servicemonitors",
        "ServiceMonitor",
    ),
];

/// A minimal structural CRD for one optional kind: v1, namespaced, every field kept.
fn minimal_crd(name: &str, group: &str, plural: &str, kind: &str) -> CustomResourceDefinition {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": name,
            // *.k8s.io groups (the Gateway API's) are protected: the API server wants a
            // link to the approved API, as the upstream CRDs carry.
            "annotations": {"api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/gateway-api"},
        },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": kind.to_lowercase(),
                "kind": kind,
                "listKind": format!("{kind}List"),
            },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            }],
        },
    }))
    .expect("CRD")
}

async fn install_optional_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, group, plural, kind) in OPTIONAL_CRDS {
        api.patch(
            name,
            &PatchParams::apply("e2e-tests").force(),
            &Patch::Apply(&minimal_crd(name, group, plural, kind)),
        )
        .await
        .expect("applying an optional CRD");
        wait_for(&format!("{name} established"), WAIT, || async {
            let crd = api.get(name).await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        })
        .await;
    }
}

/// Removes the optional CRDs (left by an earlier run) and waits until they are gone.
async fn remove_optional_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (name, ..) in OPTIONAL_CRDS {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    for (name, ..) in OPTIONAL_CRDS {
        wait_for(&format!("{name} removed"), WAIT, || async {
            api.get_opt(name)
                .await
                .ok()
                .and_then(|o| o.is_none().then_some(()))
        })
        .await;
    }
}

fn condition(gc: &GrafanaCluster, type_: &str) -> Option<(String, String, String)> {
    gc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_condition(
    api: &Api<GrafanaCluster>,
    type_: &str,
    status: &str,
    reason: &str,
) -> GrafanaCluster {
    wait_for(
        &format!("grafana {type_}={status} ({reason})"),
        WAIT,
        || async {
            let gc = api.get("grafana").await.ok()?;
            let (s, r, _) = condition(&gc, type_)?;
            (s == status && r == reason).then_some(gc)
        },
    )
    .await
}

/// Sum of every sample of the reconcile error metric.
fn reconcile_errors(operator: &Operator) -> f64 {
    operator
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("grafana_ha_operator_reconcile_errors_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn reconciles(operator: &Operator) -> f64 {
    operator
        .metrics
        .render()
        .lines()
        .find(|l| l.starts_with("grafana_ha_operator_reconciles_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_children_follow_their_crds_and_the_network_policy_is_accepted() {
    let client = client().await;
    install_crd(&client).await;
    remove_optional_crds(&client).await;
    reset_moto();
    support::aws::clear_fault();
    let aws = AwsClients::new().await;
    let tag = format!("telemetry-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let tags = [("grafana-ha.io/cluster", tag.as_str())];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    aws.create_access_point(&fs, &format!("{tag}-ap"), &tags)
        .await;
    let ns = namespace(&client, "telemetry").await;
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        optional_api_refresh: Duration::from_secs(2),
        ..OperatorOptions::default()
    })
    .await;
    let manifest = serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": {
            "replicas": 2,
            "aws": {"tags": {"grafana-ha.io/cluster": tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "httpRoute": {
                "parentRefs": [{"name": "public", "namespace": "gateways", "sectionName": "https"}],
                "hostnames": ["grafana.example.com"],
            },
            "monitoring": {"serviceMonitor": {"enabled": true, "interval": "30s", "labels": {"release": "prom"}}},
            "networkPolicy": {
                "enabled": true,
                "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}],
                "extraEgress": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
            },
        },
    });
    let gc: GrafanaCluster = serde_json::from_value(manifest).expect("manifest");
    let clusters: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    clusters
        .create(&PostParams::default(), &gc)
        .await
        .expect("creating the GrafanaCluster");

    // Without the CRDs: Ready anyway, the condition says what to install, no error loop.
    let gc = wait_condition(&clusters, "Ready", "True", "Available").await;
    let (status, reason, message) = condition(&gc, "OptionalAPIs").expect("OptionalAPIs");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "APINotServed")
    );
    assert!(
        message.contains("spec.httpRoute") && message.contains("spec.monitoring.serviceMonitor"),
        "{message}"
    );
    assert!(
        condition(&gc, "Ready")
            .expect("Ready")
            .2
            .contains("OptionalAPIs")
    );
    let (before, at) = (reconciles(&operator), Instant::now());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rounds = reconciles(&operator) - before;
    assert_eq!(reconcile_errors(&operator), 0.0, "no reconcile failed");
    // Resync every 3 s: a handful of rounds, not a retry loop.
    assert!(rounds <= 8.0, "{rounds} reconciles in {:?}", at.elapsed());

    // The NetworkPolicy the API server accepted has the expected ports.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = policies.get("grafana").await.expect("NetworkPolicy");
    let spec = policy.spec.expect("spec");
    let ingress = spec.ingress.expect("ingress");
    let port_list = |ports: &Option<Vec<k8s_openapi::api::networking::v1::NetworkPolicyPort>>| {
        ports
            .iter()
            .flatten()
            .map(|p| {
                format!(
                    "{:?}/{}",
                    p.port.clone().expect("port"),
                    p.protocol.clone().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(port_list(&ingress[0].ports), vec!["Int(3000)/TCP"]);
    assert_eq!(
        port_list(&ingress[1].ports),
        vec!["Int(9094)/TCP", "Int(9094)/UDP"]
    );
    let egress: Vec<String> = spec
        .egress
        .expect("egress")
        .iter()
        .flat_map(|r| port_list(&r.ports))
        .collect();
    for expected in [
        "Int(53)/UDP",
        "Int(5432)/TCP",
        "Int(6379)/TCP",
        "Int(9094)/UDP",
        "Int(443)/TCP",
    ] {
        assert!(
            egress.contains(&expected.to_string()),
            "{expected} in {egress:?}"
        );
    }

    // The CRDs arrive: the route and the monitor follow within a cache refresh + resync.
    install_optional_crds(&client).await;
    let arrived = Instant::now();
    let routes: Api<HTTPRoute> = Api::namespaced(client.clone(), &ns);
    let monitors: Api<ServiceMonitor> = Api::namespaced(client.clone(), &ns);
    let route = wait_for("the HTTPRoute", WAIT, || async {
        routes.get_opt("grafana").await.ok().flatten()
    })
    .await;
    let monitor = wait_for("the ServiceMonitor", WAIT, || async {
        monitors.get_opt("grafana").await.ok().flatten()
    })
    .await;
    eprintln!(
        "HTTPRoute and ServiceMonitor written {:?} after the CRDs were established",
        arrived.elapsed()
    );
    assert_eq!(route.spec.rules[0].backend_refs[0].port, 80);
    assert_eq!(
        route.spec.hostnames,
        vec!["grafana.example.com".to_string()]
    );
    assert_eq!(monitor.spec.endpoints[0].port, "http");
    wait_condition(&clusters, "OptionalAPIs", "True", "Served").await;
    // Steady state: the next rounds read the route and the monitor and write nothing.
    for kind in ["HTTPRoute", "ServiceMonitor"] {
        let line =
            format!("grafana_ha_operator_applies_total{{kind=\"{kind}\",result=\"unchanged\"}}");
        wait_for(&format!("an unchanged {kind} round"), WAIT, || async {
            operator
                .metrics
                .render()
                .lines()
                .any(|l| l.starts_with(&line))
                .then_some(())
        })
        .await;
    }

    // Dropping spec.httpRoute removes the route; the monitor stays.
    clusters
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(
                    serde_json::json!([{"op": "remove", "path": "/spec/httpRoute"}]),
                )
                .expect("patch"),
            ),
        )
        .await
        .expect("removing spec.httpRoute");
    wait_for("the HTTPRoute to go", WAIT, || async {
        routes
            .get_opt("grafana")
            .await
            .ok()
            .and_then(|r| r.is_none().then_some(()))
    })
    .await;
    assert!(monitors.get_opt("grafana").await.expect("get").is_some());

    operator.stop().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    remove_optional_crds(&client).await;
}
