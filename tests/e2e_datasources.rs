//! End to end: AWS data sources. Amazon Managed Prometheus workspaces tagged in moto become
//! data sources in the provisioning ConfigMap mounted into the pods; a workspace tagged
//! later is added (and the pods roll, since Grafana reads the file only at startup) within
//! a discovery refresh; one deleted later is asked to be deleted from Grafana. Run through
//! the test bed (`testbed/with-testbed.sh cargo test --test e2e_datasources`).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use support::aws::{AwsClients, clear_fault, reset_moto, sdk_config, set_fault};
use support::kube::{Operator, OperatorOptions, client, install_crd, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(60);
const TAG: &str = "grafana-ha.io/cluster";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// The article's database, cache and file system, tagged `tag`.
async fn seed(aws: &AwsClients, tag: &str) {
    let tags = [(TAG, tag)];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    aws.create_access_point(&fs, &format!("{tag}-ap"), &tags)
        .await;
}

async fn create_workspace(amp: &aws_sdk_amp::Client, alias: &str, tag: &str) -> String {
    amp.create_workspace()
        .alias(alias)
        .set_tags(Some(HashMap::from([(TAG.to_string(), tag.to_string())])))
        .send()
        .await
        .expect("create workspace")
        .workspace_id()
        .to_string()
}

fn condition(gc: &GrafanaCluster, type_: &str) -> Option<(String, String, String)> {
    gc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn pod_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("grafana-ha.io/secrets-hash").cloned())
        .unwrap_or_default()
}

fn file(cm: &ConfigMap) -> String {
    cm.data
        .as_ref()
        .and_then(|d| d.get("datasources.yaml").cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_workspaces_are_provisioned_and_a_new_one_rolls_the_pods() {
    let client: Client = client().await;
    install_crd(&client).await;
    reset_moto();
    let aws = AwsClients::new().await;
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    let tag = unique("ds");
    seed(&aws, &tag).await;
    let first = create_workspace(&amp, "first", &tag).await;
    let ns = namespace(&client, "ds").await;
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        through_fault_proxy: false,
        ..OperatorOptions::default()
    })
    .await;

    let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": {
            "replicas": 2,
            "aws": {"tags": {TAG: tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "dataSources": {
                "prometheus": {"tags": {TAG: tag}},
                "cloudwatch": {},
            },
        },
    }))
    .expect("manifest");
    let clusters: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    clusters
        .create(&PostParams::default(), &gc)
        .await
        .expect("create cluster");

    // Ready, with the data sources provisioned and said so.
    let gc = wait_for("Ready and DataSourcesResolved", WAIT, || async {
        let gc = clusters.get("grafana").await.ok()?;
        let ready = condition(&gc, "Ready").is_some_and(|c| c.0 == "True");
        let ds = condition(&gc, "DataSourcesResolved").is_some_and(|c| c.0 == "True");
        (ready && ds).then_some(gc)
    })
    .await;
    let (_, reason, message) = condition(&gc, "DataSourcesResolved").expect("condition");
    assert_eq!(reason, "Found");
    assert_eq!(
        message,
        format!(
            "provisioned 1 Amazon Managed Prometheus workspace ({first}), CloudWatch in us-east-1"
        )
    );
    let status = gc
        .status
        .as_ref()
        .and_then(|s| s.data_sources.clone())
        .expect("status.dataSources");
    assert_eq!(status.prometheus.len(), 1);
    assert_eq!(status.prometheus[0].workspace_id, first);
    assert_eq!(status.cloudwatch_region.as_deref(), Some("us-east-1"));

    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = config_maps
        .get("grafana-datasources")
        .await
        .expect("the provisioning ConfigMap");
    let text = file(&cm);
    assert!(text.contains(&first), "{text}");
    assert!(text.contains("sigV4AuthType: default"), "{text}");
    assert!(text.contains("type: cloudwatch"), "{text}");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deployments.get("grafana").await.expect("deployment");
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod");
    let mounted = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == "/etc/grafana/provisioning/datasources");
    assert!(mounted, "the provisioning file is mounted");
    let installs_the_plugin = d
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .is_some_and(|a| a.keys().any(|k| k.contains("plugins")));
    assert!(
        installs_the_plugin,
        "the Amazon Managed Prometheus plugin joins the plugin set"
    );
    let hash_before = pod_hash(&d);

    // A workspace tagged later: in the file and the pods roll, within a refresh or two.
    let second = create_workspace(&amp, "second", &tag).await;
    let started = std::time::Instant::now();
    wait_for("the second workspace in the ConfigMap", WAIT, || async {
        let cm = config_maps.get("grafana-datasources").await.ok()?;
        file(&cm).contains(&second).then_some(())
    })
    .await;
    let d = wait_for("a new pod template", WAIT, || async {
        let d = deployments.get("grafana").await.ok()?;
        (pod_hash(&d) != hash_before).then_some(d)
    })
    .await;
    eprintln!(
        "second workspace provisioned and pods rolled after {:?}",
        started.elapsed()
    );
    assert_ne!(pod_hash(&d), hash_before);

    // The first workspace goes away: Grafana is asked to delete its data source.
    amp.delete_workspace()
        .workspace_id(&first)
        .send()
        .await
        .expect("delete workspace");
    let text = wait_for("the first workspace retired", WAIT, || async {
        let cm = config_maps.get("grafana-datasources").await.ok()?;
        let text = file(&cm);
        text.contains("deleteDatasources").then_some(text)
    })
    .await;
    assert!(
        text.contains(&format!("name: Amazon Managed Prometheus {first}")),
        "{text}"
    );
    let gc = wait_for("status lists the retired data source", WAIT, || async {
        let gc = clusters.get("grafana").await.ok()?;
        let ds = gc.status.as_ref()?.data_sources.clone()?;
        (ds.prometheus.len() == 1 && !ds.retired.is_empty()).then_some(gc)
    })
    .await;
    let ds = gc.status.and_then(|s| s.data_sources).expect("status");
    assert_eq!(ds.prometheus[0].workspace_id, second);

    operator.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}

/// `render` shows the provisioning ConfigMap (and mounts it), from the same discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_shows_the_provisioning_config_map() {
    reset_moto();
    let aws = AwsClients::new().await;
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    let tag = unique("render-ds");
    seed(&aws, &tag).await;
    let ws = create_workspace(&amp, "render", &tag).await;
    let manifest = serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": "obs"},
        "spec": {
            "aws": {"tags": {TAG: tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "dataSources": {"prometheus": {"tags": {TAG: tag}}},
        },
    });
    let path = std::env::temp_dir().join(format!("{tag}.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&manifest).expect("yaml")).expect("write");
    support::aws::moto_url();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grafana-ha-operator"))
        .arg("render")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("running the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kind: ConfigMap"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "# data sources: provisioned 1 Amazon Managed Prometheus workspace ({ws}) (Found)"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("name: grafana-datasources"), "{stdout}");
    assert!(stdout.contains(&ws), "{stdout}");
    assert!(
        stdout.contains("mountPath: /etc/grafana/provisioning/datasources"),
        "{stdout}"
    );
}

/// An AMP outage after the data sources were provisioned keeps them (and the pods): the
/// condition and Degraded say why, and it all recovers when AWS answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amp_outage_keeps_the_last_good_data_sources() {
    let client: Client = client().await;
    install_crd(&client).await;
    reset_moto();
    clear_fault();
    let aws = AwsClients::new().await;
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    let tag = unique("ds-outage");
    seed(&aws, &tag).await;
    let ws = create_workspace(&amp, "outage", &tag).await;
    let ns = namespace(&client, "ds-outage").await;
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        ..OperatorOptions::default()
    })
    .await;
    let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": {
            "replicas": 1,
            "aws": {"tags": {TAG: tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "dataSources": {"prometheus": {"tags": {TAG: tag}}},
        },
    }))
    .expect("manifest");
    let clusters: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    clusters
        .create(&PostParams::default(), &gc)
        .await
        .expect("create cluster");
    let has = |gc: &GrafanaCluster, type_: &str, status: &str| {
        condition(gc, type_).is_some_and(|c| c.0 == status)
    };
    wait_for("Ready with the data source", WAIT, || async {
        let gc = clusters.get("grafana").await.ok()?;
        (has(&gc, "Ready", "True") && has(&gc, "DataSourcesResolved", "True")).then_some(())
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let hash_before = pod_hash(&deployments.get("grafana").await.expect("deployment"));

    set_fault(r#"{"mode":"error500","count":-1,"service":"aps"}"#);
    let gc = wait_for(
        "DataSourcesResolved=False during the outage",
        WAIT,
        || async {
            let gc = clusters.get("grafana").await.ok()?;
            (has(&gc, "DataSourcesResolved", "False") && has(&gc, "Degraded", "True")).then_some(gc)
        },
    )
    .await;
    let (_, reason, message) = condition(&gc, "DataSourcesResolved").expect("condition");
    assert_eq!(reason, "AwsUnavailable", "{message}");
    assert!(message.contains("keeping the last good"), "{message}");
    let (_, reason, _) = condition(&gc, "Degraded").expect("degraded");
    assert_eq!(reason, "UsingLastKnownConfiguration");
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let cm = config_maps.get("grafana-datasources").await.expect("kept");
    assert!(file(&cm).contains(&ws), "the data source is kept");
    assert_eq!(
        pod_hash(&deployments.get("grafana").await.expect("deployment")),
        hash_before,
        "no roll during the outage"
    );

    clear_fault();
    wait_for("recovered", WAIT, || async {
        let gc = clusters.get("grafana").await.ok()?;
        (has(&gc, "DataSourcesResolved", "True") && has(&gc, "Degraded", "False")).then_some(())
    })
    .await;
    assert_eq!(
        pod_hash(&deployments.get("grafana").await.expect("deployment")),
        hash_before
    );
    operator.stop().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
