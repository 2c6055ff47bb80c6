//! One e2e test's world, shared by tests/e2e_operator.rs, tests/e2e_reliability.rs and
//! tests/e2e_faults.rs: AWS (moto) seeded for a fresh tag as in the article, a namespace,
//! the in-process operator watching it, a GrafanaCluster and waiting on its conditions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client, ResourceExt};

use super::aws::{AwsClients, clear_fault, reset_moto};
use super::kube::{Operator, OperatorOptions, client, install_crd, wait_for};

/// How long a test waits for the operator to reach a state.
pub const WAIT: Duration = Duration::from_secs(60);

/// What the seeded AWS looks like for one tag.
pub struct Seeded {
    /// The tag value, unique per test run so leftovers of earlier runs never match.
    pub tag: String,
    pub db_id: String,
    pub db_arn: String,
    pub db_host: String,
    pub file_system_id: String,
    /// The tagged access point, when one was seeded.
    pub access_point_id: Option<String>,
}

/// The article's AWS side: Postgres with an RDS-managed password, Redis with in-transit
/// encryption, EFS with mount targets in two zones and a tagged access point, all carrying
/// `grafana-ha.io/cluster=<tag>`.
pub async fn seed(aws: &AwsClients, prefix: &str) -> Seeded {
    seed_with(aws, prefix, true).await
}

/// [`seed`], with a tagged access point on the file system or none at all (the operator
/// then creates one per cluster).
pub async fn seed_with(aws: &AwsClients, prefix: &str, tagged_access_point: bool) -> Seeded {
    let tag = unique(prefix);
    let tags = [("grafana-ha.io/cluster", tag.as_str())];
    let db_id = format!("{tag}-db");
    let db_arn = aws
        .create_db_instance(&db_id, "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let file_system_id = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&file_system_id, "us-east-1a").await;
    aws.create_mount_target(&file_system_id, "us-east-1b").await;
    // Plugins are installed: the root of a file system is not writable for Grafana, an
    // access point with its POSIX user is.
    let access_point_id = if tagged_access_point {
        Some(
            aws.create_access_point(&file_system_id, &format!("{tag}-ap"), &tags)
                .await,
        )
    } else {
        None
    };
    let db = aws
        .rds
        .describe_db_instances()
        .db_instance_identifier(&db_id)
        .send()
        .await
        .expect("describe db");
    let db_host = db.db_instances()[0]
        .endpoint()
        .and_then(|e| e.address())
        .expect("endpoint")
        .to_string();
    Seeded {
        tag,
        db_id,
        db_arn,
        db_host,
        file_system_id,
        access_point_id,
    }
}

/// `prefix-<random>`: tags and names that no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// A client with the CRD installed, moto emptied and no fault left from an earlier test.
pub async fn start() -> (Client, AwsClients) {
    let client = client().await;
    install_crd(&client).await;
    reset_moto();
    // A test that failed with a fault injected must not fail every test after it.
    clear_fault();
    (client, AwsClients::new().await)
}

/// The operator, watching only `ns`.
pub async fn operator_for(ns: &str) -> Operator {
    Operator::start(OperatorOptions {
        namespace: Some(ns.to_string()),
        ..OperatorOptions::default()
    })
    .await
}

/// [`operator_for`] with its own resync interval.
pub async fn operator_with_resync(ns: &str, resync: Duration) -> Operator {
    Operator::start(OperatorOptions {
        namespace: Some(ns.to_string()),
        resync,
        ..OperatorOptions::default()
    })
    .await
}

/// The article's GrafanaCluster for `tag`, with the top-level fields of `extra` on top.
pub fn cluster_manifest(
    ns: &str,
    tag: &str,
    replicas: i32,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "replicas": replicas,
        "aws": {"tags": {"grafana-ha.io/cluster": tag}},
        "database": {"credentials": {"rdsManagedSecret": true}},
        "plugins": {"install": ["grafana-clock-panel@2.1.8"]},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": spec,
    })
}

pub async fn create_cluster(client: &Client, manifest: serde_json::Value) -> GrafanaCluster {
    let gc: GrafanaCluster = serde_json::from_value(manifest).expect("manifest");
    let api: Api<GrafanaCluster> =
        Api::namespaced(client.clone(), &gc.namespace().unwrap_or_default());
    api.create(&PostParams::default(), &gc)
        .await
        .expect("creating the GrafanaCluster")
}

/// (status, reason, message) of a condition.
pub fn condition(gc: &GrafanaCluster, type_: &str) -> Option<(String, String, String)> {
    gc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until `type_` has `status`, returning the cluster.
pub async fn wait_condition(
    client: &Client,
    ns: &str,
    type_: &str,
    status: &str,
) -> GrafanaCluster {
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    let what = format!("{ns}/grafana {type_}={status}");
    wait_for(&what, WAIT, || async {
        let gc = api.get("grafana").await.ok()?;
        (condition(&gc, type_).map(|c| c.0).as_deref() == Some(status)).then_some(gc)
    })
    .await
}

/// Creates a user Secret from string data.
pub async fn user_secret(client: &Client, ns: &str, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<&str, &str> = data.iter().copied().collect();
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": ns},
        "stringData": data,
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_or_else(|e| panic!("creating Secret {name}: {e}"));
}

/// The data of a Secret, decoded.
pub fn secret_values(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// Removes a test's namespace (best effort: a failed test leaves it for inspection).
pub async fn cleanup(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &DeleteParams::default()).await;
}
