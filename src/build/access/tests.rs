use super::*;
use crate::build::{build, deployment::deployment, plugins};
use crate::fixtures;

fn plan_with(extra: serde_json::Value) -> Plan {
    let mut gc = fixtures::article();
    let spec = serde_json::to_value(&gc.spec).expect("spec");
    let mut spec = spec.as_object().cloned().expect("object");
    spec.extend(extra.as_object().cloned().expect("object"));
    gc.spec = serde_json::from_value(serde_json::Value::Object(spec)).expect("spec");
    assert_eq!(
        crate::api::validation::validate(&gc),
        vec![],
        "the fixture must be valid"
    );
    fixtures::plan_of(&gc)
}

#[test]
fn the_created_service_account_carries_the_irsa_role_and_no_api_token() {
    let plan = plan_with(serde_json::json!({"serviceAccount": {
        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/grafana"},
        "labels": {"team": "obs"}}}));
    let sa = service_account(&plan).expect("sa");
    assert_eq!(sa.metadata.name.as_deref(), Some("grafana"));
    assert_eq!(
        sa.metadata.annotations.expect("ann")["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::1:role/grafana"
    );
    let labels = sa.metadata.labels.expect("labels");
    assert_eq!(labels["team"], "obs");
    assert_eq!(labels[names::CLUSTER_LABEL], "grafana");
    assert_eq!(sa.automount_service_account_token, Some(false));
    let d = deployment(&plan, &Default::default());
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.service_account_name.as_deref(), Some("grafana"));
    assert_eq!(pod.automount_service_account_token, Some(false));
    let job = plugins::job(&plan).expect("job");
    let pod = job.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(pod.service_account_name.as_deref(), Some("grafana"));
    assert_eq!(pod.automount_service_account_token, Some(false));
}

#[test]
fn an_existing_service_account_is_used_not_created() {
    let plan = plan_with(
        serde_json::json!({"serviceAccount": {"create": false, "name": "platform-grafana"}}),
    );
    assert!(service_account(&plan).is_none());
    assert!(build(&plan).service_account.is_none());
    let d = deployment(&plan, &Default::default());
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("platform-grafana")
    );
}

#[test]
fn the_ingress_routes_every_host_to_the_http_service_with_tls() {
    let plan = plan_with(serde_json::json!({"ingress": {
        "className": "alb", "hosts": ["a.example.com", "b.example.com"],
        "annotations": {"alb.ingress.kubernetes.io/target-type": "ip"},
        "tls": {"secretName": "cert"}}}));
    let ing = ingress(&plan).expect("ingress");
    assert_eq!(
        ing.metadata.annotations.expect("ann")["alb.ingress.kubernetes.io/target-type"],
        "ip"
    );
    let spec = ing.spec.expect("spec");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("alb"));
    let rules = spec.rules.expect("rules");
    assert_eq!(rules.len(), 2);
    let path = &rules[1].http.as_ref().expect("http").paths[0];
    assert_eq!(path.path.as_deref(), Some("/"));
    assert_eq!(path.path_type, "Prefix");
    let backend = path.backend.service.as_ref().expect("service");
    assert_eq!(backend.name, names::service("grafana"));
    let tls = &spec.tls.expect("tls")[0];
    assert_eq!(tls.secret_name.as_deref(), Some("cert"));
    assert_eq!(tls.hosts.as_ref().map(Vec::len), Some(2));
}

#[test]
fn no_ingress_unless_asked_and_a_hostless_one_matches_every_host() {
    assert!(ingress(&fixtures::plan()).is_none());
    let plan = plan_with(serde_json::json!({"ingress": {}}));
    let rules = ingress(&plan)
        .expect("ingress")
        .spec
        .expect("spec")
        .rules
        .expect("r");
    assert_eq!(rules.len(), 1);
    assert!(rules[0].host.is_none());
}

#[test]
fn the_http_service_takes_type_annotations_and_labels() {
    let plan = plan_with(serde_json::json!({"service": {
        "type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
        "labels": {"team": "obs"}}}));
    let svc = crate::build::services::http(&plan);
    assert_eq!(svc.metadata.labels.as_ref().expect("l")["team"], "obs");
    assert!(
        svc.metadata
            .annotations
            .expect("a")
            .contains_key("service.beta.kubernetes.io/aws-load-balancer-scheme")
    );
    let spec = svc.spec.expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(
        spec.load_balancer_class.as_deref(),
        Some("service.k8s.aws/nlb")
    );
    let gossip = crate::build::services::alerting(&plan).expect("gossip");
    assert!(
        gossip.metadata.annotations.is_none(),
        "the gossip Service stays as it is"
    );
    assert_eq!(gossip.spec.expect("spec").type_, None);
}

#[test]
fn pod_customisation_reaches_the_pods_after_the_operators_parts() {
    let plan = plan_with(serde_json::json!({"pod": {
        "labels": {"team": "obs"},
        "annotations": {"example.com/scrape": "true"},
        "imagePullSecrets": [{"name": "regcred"}],
        "priorityClassName": "high",
        "extraVolumes": [{"name": "dashboards", "configMap": {"name": "dash"}}],
        "extraVolumeMounts": [{"name": "dashboards", "mountPath": "/var/lib/grafana/dashboards"}],
        "extraContainers": [{"name": "side", "image": "busybox"}],
        "extraInitContainers": [{"name": "prep", "image": "busybox"}],
        "extraPorts": [{"name": "profiling", "containerPort": 6060}]}}));
    let d = deployment(&plan, &Default::default());
    let template = d.spec.expect("spec").template;
    let meta = template.metadata.expect("meta");
    assert_eq!(meta.labels.expect("l")["team"], "obs");
    let annotations = meta.annotations.expect("a");
    assert_eq!(annotations["example.com/scrape"], "true");
    assert!(annotations.contains_key(names::SECRETS_HASH_ANNOTATION));
    let pod = template.spec.expect("pod");
    assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
    assert_eq!(pod.image_pull_secrets.expect("ips")[0].name, "regcred");
    let names_of = |cs: &[k8s_openapi::api::core::v1::Container]| {
        cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names_of(&pod.containers), vec!["grafana", "side"]);
    assert_eq!(
        names_of(pod.init_containers.as_deref().expect("init")),
        vec!["wait-for-plugins", "prep"]
    );
    let side = pod.containers[1].security_context.clone().expect("sc");
    assert_eq!(side.allow_privilege_escalation, Some(false));
    let grafana = &pod.containers[0];
    assert!(
        grafana
            .ports
            .iter()
            .flatten()
            .any(|p| p.container_port == 6060)
    );
    assert!(
        grafana
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == "/var/lib/grafana/dashboards")
    );
    assert!(pod.volumes.iter().flatten().any(|v| v.name == "dashboards"));
}

/// names::MANAGED_VOLUMES and MANAGED_MOUNT_PATHS, which validation protects, are every
/// volume and mount the operator puts into the Grafana pods.
#[test]
fn the_protected_volumes_and_paths_are_the_operators() {
    let mut gc = fixtures::article();
    gc.spec
        .database
        .as_mut()
        .expect("db")
        .ca_bundle_config_map_ref = Some(crate::api::KeyRef {
        name: "ca".into(),
        key: "ca.pem".into(),
    });
    gc.spec.database.as_mut().expect("db").ssl_mode = Some("verify-full".into());
    let plan = fixtures::plan_of(&gc);
    let d = deployment(&plan, &Default::default());
    let pod = d.spec.expect("spec").template.spec.expect("pod");
    let volumes: Vec<String> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    let mut expected: Vec<String> = names::MANAGED_VOLUMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut got = volumes.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    let mut paths: Vec<String> = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.clone())
        .collect();
    let mut expected: Vec<String> = names::MANAGED_MOUNT_PATHS
        .iter()
        .map(|s| s.to_string())
        .collect();
    paths.sort();
    expected.sort();
    assert_eq!(paths, expected);
    assert_eq!(
        crate::api::MANAGED_CONTAINERS.to_vec(),
        vec![
            pod.containers[0].name.as_str(),
            pod.init_containers.as_ref().expect("init")[0].name.as_str()
        ]
    );
}
