use pretty_assertions::assert_eq;

use super::*;
use crate::api::{DataSourcesStatus, PrometheusWorkspaceStatus};
use crate::build::build;
use crate::fixtures::plan;
use crate::resolve::datasources::{workspace_name, workspace_uid};

fn ws(id: &str) -> PrometheusWorkspaceStatus {
    PrometheusWorkspaceStatus {
        workspace_id: id.into(),
        alias: None,
        region: "eu-west-1".into(),
        url: format!("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/{id}/"),
        uid: workspace_uid("eu-west-1", id),
        name: workspace_name(id),
    }
}

fn with(status: DataSourcesStatus) -> Plan {
    let mut p = plan();
    p.data_sources = Some(DataSourcesPlan {
        config_map: "grafana-datasources".into(),
        status,
    });
    p
}

fn pod_hash(p: &Plan) -> String {
    let children = build(p);
    children
        .deployment
        .spec
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(crate::names::SECRETS_HASH_ANNOTATION).cloned())
        .expect("hash")
}

#[test]
fn the_file_provisions_sigv4_prometheus_and_cloudwatch() {
    let p = with(DataSourcesStatus {
        prometheus: vec![ws("ws-a")],
        cloudwatch_region: Some("eu-west-1".into()),
        retired: vec!["Amazon Managed Prometheus ws-old".into()],
    });
    let file = provisioning_file(p.data_sources.as_ref().expect("ds"));
    let parsed: serde_json::Value = serde_yaml::from_str(&file).expect("yaml");
    assert_eq!(parsed["apiVersion"], 1);
    let prom = &parsed["datasources"][0];
    assert_eq!(prom["type"], crate::resolve::datasources::AMP_PLUGIN_ID);
    assert_eq!(prom["uid"], workspace_uid("eu-west-1", "ws-a"));
    assert_eq!(prom["editable"], false);
    assert_eq!(
        prom["url"],
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-a/"
    );
    assert_eq!(
        prom["jsonData"],
        serde_json::json!({
            "httpMethod": "POST",
            "sigV4Auth": true,
            "sigV4AuthType": "default",
            "sigV4Region": "eu-west-1",
        })
    );
    let cw = &parsed["datasources"][1];
    assert_eq!(cw["type"], "cloudwatch");
    assert_eq!(cw["uid"], "aws-cloudwatch");
    assert_eq!(
        cw["jsonData"],
        serde_json::json!({"authType": "default", "defaultRegion": "eu-west-1"})
    );
    assert_eq!(
        parsed["deleteDatasources"],
        serde_json::json!([{"name": "Amazon Managed Prometheus ws-old", "orgId": 1}])
    );
}

#[test]
fn the_config_map_is_mounted_and_sigv4_enabled() {
    let p = with(DataSourcesStatus {
        prometheus: vec![ws("ws-a")],
        ..Default::default()
    });
    let children = build(&p);
    assert_eq!(children.config_maps.len(), 1);
    let cm = &children.config_maps[0];
    assert_eq!(cm.metadata.name.as_deref(), Some("grafana-datasources"));
    let pod = children
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod");
    let grafana = &pod.containers[0];
    let mount = grafana
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == MOUNT_PATH)
        .expect("mounted");
    assert_eq!(mount.read_only, Some(true));
    assert!(
        pod.volumes
            .iter()
            .flatten()
            .any(|v| v.config_map.as_ref().map(|c| c.name.as_str()) == Some("grafana-datasources"))
    );
    // The plugin signs with the AWS SDK itself: core Prometheus' SigV4 switch stays the
    // user's (spec.config auth.sigv4_auth_enabled).
    let env = grafana.env.clone().unwrap_or_default();
    assert!(!env.iter().any(|e| e.name == "GF_AUTH_SIGV4_AUTH_ENABLED"));
}

#[test]
fn without_data_sources_nothing_changes() {
    let p = plan();
    let children = build(&p);
    assert!(children.config_maps.is_empty());
    let env = children
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod")
        .containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(!env.iter().any(|e| e.name == "GF_AUTH_SIGV4_AUTH_ENABLED"));
}

#[test]
fn a_new_workspace_changes_the_pod_template_hash_and_the_same_file_does_not() {
    let one = with(DataSourcesStatus {
        prometheus: vec![ws("ws-a")],
        ..Default::default()
    });
    let again = with(DataSourcesStatus {
        prometheus: vec![ws("ws-a")],
        ..Default::default()
    });
    let two = with(DataSourcesStatus {
        prometheus: vec![ws("ws-a"), ws("ws-b")],
        ..Default::default()
    });
    assert_eq!(pod_hash(&one), pod_hash(&again));
    assert_ne!(pod_hash(&one), pod_hash(&two));
    assert_ne!(pod_hash(&one), pod_hash(&plan()));
}
