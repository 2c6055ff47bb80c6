//! End to end on the test bed: identity (the ServiceAccount), a way in (Service type and
//! Ingress) and pod customisation, as the API server stores and admits them.
//!
//! - `irsa_service_account_ingress_load_balancer_and_sidecar_in_a_restricted_namespace`:
//!   the operator's ServiceAccount carries the IRSA annotation with the API token off, and
//!   the Deployment's pods and the installer Job's pod run as it; the Ingress (TLS, hosts)
//!   is accepted and rootUrl follows its first host; the HTTP Service is a LoadBalancer
//!   with the user's annotations; pod labels, annotations, an extra volume, mount, port
//!   and a sidecar without a securityContext reach the Deployment, and the pods pass Pod
//!   Security `restricted` (Ready); a deleted Ingress comes back; moved to a sub-path, the
//!   Ingress routes it and the pods serve from it, probes included.
//! - `existing_service_account_and_a_refused_customisation_leave_the_deployment_alone`:
//!   `create: false` uses the user's ServiceAccount and creates none; admission refuses
//!   `create: false` without a name, an extra container named grafana and port 9094
//!   (the CEL rules); a privileged
//!   sidecar is refused in status and an Event naming the field, and the running
//!   Deployment is not touched; nor is it when the spec then names a ServiceAccount that
//!   does not exist (Ready=False, Unresolved, naming it).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use support::aws::{AwsClients, reset_moto};
use support::kube::{Operator, OperatorOptions, client, install_crd, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// Tags Postgres (RDS-managed password), Redis and EFS (two zones, with an access point)
/// with a fresh value.
async fn seed(aws: &AwsClients, prefix: &str) -> String {
    let tag = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let tags = [("grafana-ha.io/cluster", tag.as_str())];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    aws.create_mount_target(&fs, "us-east-1b").await;
    aws.create_access_point(&fs, &format!("{tag}-ap"), &tags)
        .await;
    tag
}

async fn start(prefix: &str) -> (Client, String, String, Operator) {
    let client = client().await;
    install_crd(&client).await;
    reset_moto();
    support::aws::clear_fault();
    let aws = AwsClients::new().await;
    let tag = seed(&aws, prefix).await;
    let ns = namespace(&client, prefix).await;
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        ..OperatorOptions::default()
    })
    .await;
    (client, tag, ns, operator)
}

async fn create_cluster(client: &Client, ns: &str, tag: &str, extra: serde_json::Value) {
    let mut spec = serde_json::json!({
        "replicas": 2,
        "aws": {"tags": {"grafana-ha.io/cluster": tag}},
        "database": {"credentials": {"rdsManagedSecret": true}},
        "plugins": {"install": ["grafana-clock-panel@2.1.8"]},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns}, "spec": spec,
    }))
    .expect("manifest");
    Api::<GrafanaCluster>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &gc)
        .await
        .expect("creating the GrafanaCluster");
}

/// Waits until condition `type_` has `status`; returns its (reason, message).
async fn wait_condition(client: &Client, ns: &str, type_: &str, status: &str) -> (String, String) {
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("{ns}/grafana {type_}={status}"), WAIT, || async {
        let gc = api.get("grafana").await.ok()?;
        gc.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| (c.reason, c.message))
    })
    .await
}

fn pod_spec(d: &Deployment) -> PodSpec {
    d.spec
        .clone()
        .and_then(|s| s.template.spec)
        .expect("pod spec")
}

fn env_value(pod: &PodSpec, name: &str) -> Option<String> {
    pod.containers[0]
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

async fn cleanup(client: &Client, ns: &str, operator: Operator) {
    operator.stop().await;
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &DeleteParams::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_service_account_ingress_load_balancer_and_sidecar_in_a_restricted_namespace() {
    let (client, tag, ns, operator) = start("access").await;
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }}})),
        )
        .await
        .expect("labelling the namespace restricted");
    let role = "arn:aws:iam::111122223333:role/grafana-cloudwatch";
    create_cluster(
        &client,
        &ns,
        &tag,
        serde_json::json!({
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": role}},
            "service": {"type": "LoadBalancer", "annotations": {
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip"},
                "labels": {"team": "obs"}},
            "ingress": {"className": "alb", "hosts": ["grafana.example.com"],
                "annotations": {"alb.ingress.kubernetes.io/target-type": "ip",
                                "alb.ingress.kubernetes.io/healthcheck-path": "/api/health"},
                "tls": {"secretName": "grafana-tls"}},
            "pod": {
                "labels": {"team": "obs"},
                "annotations": {"example.com/owner": "platform"},
                "extraVolumes": [{"name": "dashboards", "emptyDir": {}}],
                "extraVolumeMounts": [{"name": "dashboards", "mountPath": "/var/lib/grafana/dashboards"}],
                "extraPorts": [{"name": "profiling", "containerPort": 6060}],
                "extraContainers": [{"name": "sidecar", "image": "busybox",
                    "command": ["sleep", "infinity"]}]
            }
        }),
    )
    .await;
    // Ready: the installer Job and both replicas (with the sidecar) passed `restricted`.
    wait_condition(&client, &ns, "Ready", "True").await;

    let sa = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get("grafana")
        .await
        .expect("the operator's ServiceAccount");
    assert_eq!(
        sa.annotations().get("eks.amazonaws.com/role-arn"),
        Some(&role.to_string())
    );
    assert_eq!(sa.automount_service_account_token, Some(false));
    assert_eq!(
        sa.owner_references().len(),
        1,
        "owned by the GrafanaCluster"
    );

    let d = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("grafana")
        .await
        .expect("deployment");
    let pod = pod_spec(&d);
    assert_eq!(pod.service_account_name.as_deref(), Some("grafana"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let template = d
        .spec
        .as_ref()
        .expect("spec")
        .template
        .metadata
        .clone()
        .expect("meta");
    assert_eq!(
        template
            .labels
            .expect("labels")
            .get("team")
            .map(String::as_str),
        Some("obs")
    );
    assert_eq!(
        template
            .annotations
            .expect("annotations")
            .get("example.com/owner")
            .map(String::as_str),
        Some("platform")
    );
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["grafana", "sidecar"]);
    let sidecar = pod.containers[1]
        .security_context
        .clone()
        .expect("filled in");
    assert_eq!(sidecar.allow_privilege_escalation, Some(false));
    assert_eq!(sidecar.run_as_non_root, Some(true));
    assert!(
        pod.containers[0]
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 6060)
    );
    assert!(
        pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/var/lib/grafana/dashboards")
    );
    assert_eq!(
        env_value(&pod, "GF_SERVER_ROOT_URL").as_deref(),
        Some("https://grafana.example.com/"),
        "rootUrl follows the Ingress's first host, https with TLS"
    );

    let jobs = Api::<Job>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app.kubernetes.io/component=plugins-installer"))
        .await
        .expect("jobs");
    let job_pod = jobs.items[0]
        .spec
        .clone()
        .and_then(|s| s.template.spec)
        .expect("installer pod");
    assert_eq!(job_pod.service_account_name.as_deref(), Some("grafana"));
    assert_eq!(job_pod.automount_service_account_token, Some(false));

    let svc = Api::<Service>::namespaced(client.clone(), &ns)
        .get("grafana")
        .await
        .expect("service");
    assert_eq!(
        svc.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("LoadBalancer")
    );
    assert_eq!(
        svc.annotations()
            .get("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"),
        Some(&"ip".to_string())
    );
    assert_eq!(svc.labels().get("team"), Some(&"obs".to_string()));
    let gossip = Api::<Service>::namespaced(client.clone(), &ns)
        .get("grafana-alerting")
        .await
        .expect("gossip service");
    assert_eq!(
        gossip.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()),
        Some("None"),
        "the gossip Service stays headless"
    );

    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns);
    let ing = ingresses.get("grafana").await.expect("ingress");
    let spec = ing.spec.clone().expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("alb"));
    let tls = &spec.tls.expect("tls")[0];
    assert_eq!(tls.secret_name.as_deref(), Some("grafana-tls"));
    assert_eq!(tls.hosts, Some(vec!["grafana.example.com".to_string()]));
    let rule = &spec.rules.expect("rules")[0];
    assert_eq!(rule.host.as_deref(), Some("grafana.example.com"));

    // Drift: a deleted Ingress is recreated from its watch.
    let uid = ing.uid();
    ingresses
        .delete("grafana", &DeleteParams::default())
        .await
        .expect("delete ingress");
    wait_for("the Ingress recreated", WAIT, || async {
        let again = ingresses.get("grafana").await.ok()?;
        (again.uid() != uid).then_some(())
    })
    .await;

    // A sub-path: Grafana serves from it, and the probes (on the pod IP) carry it, since
    // Grafana redirects /healthz outside it to the public URL.
    Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"ingress": {"path": "/grafana"}}})),
        )
        .await
        .expect("patch the ingress path");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let pod = wait_for("the Deployment under /grafana", WAIT, || async {
        let pod = pod_spec(&deployments.get("grafana").await.ok()?);
        let liveness = pod.containers[0].liveness_probe.clone()?.http_get?.path;
        (liveness.as_deref() == Some("/grafana/healthz")).then_some(pod)
    })
    .await;
    let readiness = pod.containers[0]
        .readiness_probe
        .clone()
        .and_then(|p| p.http_get)
        .and_then(|h| h.path);
    assert_eq!(readiness.as_deref(), Some("/grafana/api/health"));
    assert_eq!(
        env_value(&pod, "GF_SERVER_ROOT_URL").as_deref(),
        Some("https://grafana.example.com/grafana/")
    );
    assert_eq!(
        env_value(&pod, "GF_SERVER_SERVE_FROM_SUB_PATH").as_deref(),
        Some("true")
    );
    let ing = ingresses.get("grafana").await.expect("ingress");
    let paths = ing.spec.and_then(|s| s.rules).expect("rules")[0]
        .http
        .clone()
        .expect("http")
        .paths;
    assert_eq!(paths[0].path.as_deref(), Some("/grafana"));

    cleanup(&client, &ns, operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_service_account_and_a_refused_customisation_leave_the_deployment_alone() {
    let (client, tag, ns, operator) = start("access-own").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let own: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "platform-grafana", "annotations": {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/platform"}}
    }))
    .expect("sa");
    accounts
        .create(&PostParams::default(), &own)
        .await
        .expect("the user's ServiceAccount");
    create_cluster(
        &client,
        &ns,
        &tag,
        serde_json::json!({"serviceAccount": {"create": false, "name": "platform-grafana"}}),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);

    // The CEL rules hold at admission (and cost what the API server allows: the CRD was
    // accepted).
    let bad: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {"aws": {"tags": {"grafana-ha.io/cluster": tag}},
                 "database": {"credentials": {"rdsManagedSecret": true}},
                 "serviceAccount": {"create": false},
                 "pod": {"extraContainers": [{"name": "grafana", "image": "x"}],
                         "extraPorts": [{"containerPort": 9094}]}},
    }))
    .expect("manifest");
    let refused = Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &bad,
        )
        .await
        .expect_err("admission refuses it")
        .to_string();
    for needle in [
        "spec.serviceAccount.name is required",
        "spec.pod.extraContainers: grafana and wait-for-plugins",
        "spec.pod.extraPorts: 3000 and 9094",
    ] {
        assert!(refused.contains(needle), "{needle} in {refused}");
    }

    let before = deployments.get("grafana").await.expect("deployment");
    assert_eq!(
        pod_spec(&before).service_account_name.as_deref(),
        Some("platform-grafana")
    );
    assert!(
        accounts.get_opt("grafana").await.expect("get").is_none(),
        "no ServiceAccount of the operator's own"
    );

    // A privileged sidecar is refused: InvalidSpec naming the field, an Event, and the
    // running Deployment as it was.
    Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"pod": {"extraContainers": [
                {"name": "debug", "image": "busybox", "securityContext": {"privileged": true}}
            ]}}})),
        )
        .await
        .expect("the API server accepts it: the rule is the operator's");
    let (reason, message) = wait_condition(&client, &ns, "Stalled", "True").await;
    assert_eq!(reason, "InvalidSpec");
    assert!(
        message.contains("spec.pod.extraContainers[0].securityContext")
            && message.contains("privileged"),
        "{message}"
    );
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    wait_for("an Event naming the field", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("spec.pod.extraContainers[0].securityContext"))
            })
            .then_some(())
    })
    .await;
    let after = deployments.get("grafana").await.expect("deployment");
    assert_eq!(
        after.metadata.generation, before.metadata.generation,
        "the running Deployment is untouched"
    );
    assert!(
        pod_spec(&after)
            .containers
            .iter()
            .all(|c| c.name != "debug"),
        "the refused sidecar never reached the pods"
    );

    // Pointing at a ServiceAccount that does not exist builds nothing (pods that could
    // never be created): Ready says why and the running Deployment stays as it was.
    Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {
                "pod": null,
                "serviceAccount": {"create": false, "name": "nobody"}}})),
        )
        .await
        .expect("patch");
    let (reason, message) = wait_for("Ready=False naming the ServiceAccount", WAIT, || async {
        let gc = Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
            .get("grafana")
            .await
            .ok()?;
        gc.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.message.contains("ServiceAccount"))
            .map(|c| (c.reason, c.message))
    })
    .await;
    assert_eq!(reason, "Unresolved");
    assert!(
        message.contains("nobody") && message.contains("spec.serviceAccount.name"),
        "{message}"
    );
    let still = deployments.get("grafana").await.expect("deployment");
    assert_eq!(still.metadata.generation, before.metadata.generation);
    assert_eq!(
        pod_spec(&still).service_account_name.as_deref(),
        Some("platform-grafana")
    );

    cleanup(&client, &ns, operator).await;
}
