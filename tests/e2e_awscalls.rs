//! Issue 11, AWS calls per refresh: a secret RDS rotates reaches the cluster within one
//! discovery refresh (the resync is far longer than the test) at the cost of one
//! GetSecretValue, the operator running as in production against moto.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use support::aws::{AwsClients, calls, reset_moto};
use support::kube::{Operator, OperatorOptions, client, install_crd, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(90);
const TAG: &str = "grafana-ha.io/cluster";

fn ready(gc: &GrafanaCluster) -> bool {
    gc.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

fn get_secret_value(operator: &Operator) -> u64 {
    calls(
        &operator.metrics,
        "secretsmanager",
        "GetSecretValue",
        grafana_ha_operator::metrics::AwsOutcome::Success,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_managed_secret_reaches_the_cluster_within_one_refresh() {
    let client = client().await;
    install_crd(&client).await;
    reset_moto();
    support::aws::clear_fault();
    let aws = AwsClients::new().await;
    let tag = format!("rot-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let tags = [(TAG, tag.as_str())];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;

    let ns = namespace(&client, "rot").await;
    let refresh = Duration::from_secs(2);
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        through_fault_proxy: false,
        discovery_refresh: refresh,
        // Far longer than the test: only the discovery trigger can bring the rotation in.
        resync: Duration::from_secs(600),
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
        },
    }))
    .expect("manifest");
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.create(&PostParams::default(), &gc)
        .await
        .expect("create");
    let arn = wait_for("Ready with the managed secret", WAIT, || async {
        let gc = gcs.get("grafana").await.ok().filter(ready)?;
        gc.status?.database?.managed_secret_arn
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let password = || async {
        let s = secrets.get("grafana-db-credentials").await.ok()?;
        Some(s.data?.get("password")?.0.clone())
    };
    assert_eq!(password().await.as_deref(), Some(&b"P@55w0rd!"[..]));
    // Several refreshes with nothing rotated: the value is not read again.
    let reads = get_secret_value(&operator);
    tokio::time::sleep(refresh * 3).await;
    assert_eq!(get_secret_value(&operator), reads, "no rotation, no read");

    let started = Instant::now();
    aws.secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username":"admin","password":"rotated-in-one-refresh"}"#)
        .send()
        .await
        .expect("rotate the managed secret in moto");
    wait_for(
        "the copy to carry the rotated password",
        Duration::from_secs(30),
        || async { (password().await? == b"rotated-in-one-refresh").then_some(()) },
    )
    .await;
    let took = started.elapsed();
    println!("a rotated managed secret reached the cluster in {took:?}");
    // Refresh interval + the watch's tick (a quarter of it) + one reconcile, with slack
    // for a shared machine; the resync (600 s) never fired.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // Let the rollout's own reconciles pass: still exactly one read for the rotation.
    tokio::time::sleep(refresh * 2).await;
    assert_eq!(get_secret_value(&operator), reads + 1);
    operator.stop().await;
    let _ = Api::<Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}
