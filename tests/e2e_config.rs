//! End to end: Grafana's own configuration (`spec.config`, `spec.configSecrets`,
//! `spec.envFrom`) against the test bed's kube-apiserver (kwok makes pods Ready) and moto.
//! Run through `testbed/with-testbed.sh cargo test --test e2e_config -- --test-threads=1`.
//!
//! - `config_reaches_the_pods_and_rolls_on_data_not_metadata`: settings land in the
//!   Deployment's env, the OAuth client secret as a `$__file{}` of the Secrets volume;
//!   rotating that Secret rolls the pods (pod-template hash), a label on it does not; a
//!   data change of an envFrom ConfigMap rolls, a label on it does not.
//! - `refusals_leave_the_running_deployment_alone`: a literal client secret is refused at
//!   admission (CEL); a managed key in spec.config is
//!   refused (Ready=False InvalidSpec naming spec.database.connectionBudget, a Warning
//!   Event) and a configSecrets Secret that does not exist is reported
//!   (ConfigResolved=False SecretNotFound, a ConfigFailed Event); an envFrom Secret with a
//!   key naming a managed variable is reported (ManagedVariable); the running Deployment is
//!   untouched each time.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use support::aws::{AwsClients, reset_moto};
use support::kube::{Operator, OperatorOptions, client, install_crd, kubectl, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(60);
/// Long enough for a label change to have been seen and reconciled.
const SETTLE: Duration = Duration::from_secs(4);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Postgres with an RDS-managed password, Redis and EFS, tagged with a fresh tag.
async fn seed(aws: &AwsClients, prefix: &str) -> String {
    let tag = unique(prefix);
    let tags = [("grafana-ha.io/cluster", tag.as_str())];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
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

async fn create<K>(client: &Client, ns: &str, value: serde_json::Value)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let object: K = serde_json::from_value(value).expect("object");
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .expect("create");
}

fn cluster(ns: &str, tag: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "replicas": 2,
        "aws": {"tags": {"grafana-ha.io/cluster": tag}},
        "database": {"credentials": {"rdsManagedSecret": true}},
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": spec,
    })
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
    client: &Client,
    ns: &str,
    type_: &str,
    status: &str,
) -> (String, String, String) {
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    wait_for(&format!("{ns}/grafana {type_}={status}"), WAIT, || async {
        let gc = api.get("grafana").await.ok()?;
        condition(&gc, type_).filter(|c| c.0 == status)
    })
    .await
}

fn env(d: &Deployment) -> BTreeMap<String, Option<String>> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect()
}

fn pod_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("grafana-ha.io/secrets-hash").cloned())
        .unwrap_or_default()
}

async fn hash_now(deploy: &Api<Deployment>) -> String {
    pod_hash(&deploy.get("grafana").await.expect("deployment"))
}

/// Waits until the pod-template hash moves away from `from`.
async fn rolls_from(deploy: &Api<Deployment>, from: &str, what: &str) -> String {
    wait_for(what, WAIT, || async {
        let h = pod_hash(&deploy.get("grafana").await.ok()?);
        (h != from).then_some(h)
    })
    .await
}

fn merge(value: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(value)
}

async fn cleanup(client: &Client, ns: &str, operator: Operator) {
    operator.stop().await;
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let _ = api.delete(ns, &DeleteParams::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reaches_the_pods_and_rolls_on_data_not_metadata() {
    let (client, tag, ns, operator) = start("config").await;
    create::<Secret>(
        &client,
        &ns,
        serde_json::json!({"metadata": {"name": "oauth"}, "stringData": {"client-secret": "first"}}),
    )
    .await;
    create::<ConfigMap>(
        &client,
        &ns,
        serde_json::json!({"metadata": {"name": "extra"}, "data": {"GF_LOG_LEVEL": "debug"}}),
    )
    .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let gc: GrafanaCluster = serde_json::from_value(cluster(
        &ns,
        &tag,
        serde_json::json!({
            "config": {
                "auth.generic_oauth": {"enabled": "true", "client_id": "grafana",
                                       "token_url": "https://idp.example.com/token"},
                "database": {"conn_max_lifetime": "3600"},
                "smtp": {"enabled": "true", "host": "smtp.example.com:587"},
            },
            "configSecrets": {
                "auth.generic_oauth": {"client_secret": {"name": "oauth", "key": "client-secret"}},
            },
            "envFrom": [{"configMapRef": {"name": "extra"}}],
        }),
    ))
    .expect("cluster");
    gcs.create(&PostParams::default(), &gc)
        .await
        .expect("create");
    wait_condition(&client, &ns, "Ready", "True").await;
    let (_, reason, message) = wait_condition(&client, &ns, "ConfigResolved", "True").await;
    assert_eq!(reason, "Applied", "{message}");

    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("deployment");
    let env = env(&d);
    assert_eq!(
        env["GF_AUTH_GENERIC_OAUTH_CLIENT_ID"].as_deref(),
        Some("grafana")
    );
    assert_eq!(
        env["GF_DATABASE_CONN_MAX_LIFETIME"].as_deref(),
        Some("3600")
    );
    assert_eq!(env["GF_SMTP_HOST"].as_deref(), Some("smtp.example.com:587"));
    assert_eq!(
        env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"].as_deref(),
        Some("$__file{/etc/grafana/secrets/config/auth.generic_oauth/client_secret}"),
        "the client secret is a file, never a literal"
    );
    let container = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(
        container.env_from.as_ref().unwrap()[0]
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        "extra"
    );
    let (_, json, _) = kubectl(
        &["-n", &ns, "get", "deployment", "grafana", "-o", "json"],
        None,
    );
    assert!(
        !json.contains("first"),
        "the secret value is nowhere in the Deployment"
    );

    // A label on the OAuth Secret: no roll.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let first = hash_now(&deploy).await;
    secrets
        .patch(
            "oauth",
            &PatchParams::default(),
            &merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        hash_now(&deploy).await,
        first,
        "a label change rolled the pods"
    );

    // Rotating the client secret: a roll.
    secrets
        .patch(
            "oauth",
            &PatchParams::default(),
            &merge(serde_json::json!({"stringData": {"client-secret": "second"}})),
        )
        .await
        .expect("rotate");
    let second = rolls_from(
        &deploy,
        &first,
        "the pods to roll on the rotated OAuth secret",
    )
    .await;

    // The envFrom ConfigMap: a label does not roll, a data change does.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    config_maps
        .patch(
            "extra",
            &PatchParams::default(),
            &merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label");
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        hash_now(&deploy).await,
        second,
        "a ConfigMap label rolled the pods"
    );
    config_maps
        .patch(
            "extra",
            &PatchParams::default(),
            &merge(serde_json::json!({"data": {"GF_LOG_LEVEL": "info"}})),
        )
        .await
        .expect("data");
    rolls_from(
        &deploy,
        &second,
        "the pods to roll on the envFrom ConfigMap's data",
    )
    .await;
    cleanup(&client, &ns, operator).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_the_running_deployment_alone() {
    let (client, tag, ns, operator) = start("config-refused").await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let gc: GrafanaCluster = serde_json::from_value(cluster(
        &ns,
        &tag,
        serde_json::json!({"config": {"log": {"level": "info"}}}),
    ))
    .expect("cluster");
    gcs.create(&PostParams::default(), &gc)
        .await
        .expect("create");
    wait_condition(&client, &ns, "Ready", "True").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("deployment");
    // The generation moves with the spec only (status updates from kwok do not move it).
    let version = before.metadata.generation;

    // A literal client secret never gets past admission (the CRD's CEL rule).
    let refused = gcs
        .patch(
            "grafana",
            &PatchParams::default(),
            &merge(serde_json::json!({"spec": {"config": {"auth.generic_oauth": {"client_secret": "hunter2"}}}})),
        )
        .await
        .expect_err("a literal client secret is refused at admission");
    assert!(
        refused
            .to_string()
            .contains("must not hold a literal value"),
        "{refused}"
    );

    // A key the operator sets: refused, naming the field that controls it.
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &merge(serde_json::json!({"spec": {"config": {"database": {"max_open_conn": "500"}}}})),
    )
    .await
    .expect("the API server accepts it: the managed-key rule needs the operator's table");
    let (_, reason, message) = wait_condition(&client, &ns, "Stalled", "True").await;
    assert_eq!(reason, "InvalidSpec", "{message}");
    assert!(
        message.contains("spec.config.database.max_open_conn")
            && message.contains("spec.database.connectionBudget"),
        "{message}"
    );
    let events = || {
        let (ok, out, _) = kubectl(
            &[
                "-n",
                &ns,
                "get",
                "events",
                "--field-selector",
                "involvedObject.kind=GrafanaCluster",
                "-o",
                "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
            ],
            None,
        );
        assert!(ok);
        out
    };
    let out = wait_for("a Warning Event naming the field", WAIT, || async {
        let out = events();
        out.contains("spec.database.connectionBudget")
            .then_some(out)
    })
    .await;
    assert!(out.contains("InvalidSpec"), "{out}");
    assert_eq!(
        deploy.get("grafana").await.expect("d").metadata.generation,
        version,
        "the running Deployment was touched"
    );

    // A configSecrets Secret that does not exist: reported, Deployment untouched.
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &merge(serde_json::json!({"spec": {"config": {"database": null},
            "configSecrets": {"smtp": {"password": {"name": "smtp", "key": "password"}}}}})),
    )
    .await
    .expect("patch");
    let (_, reason, message) = wait_condition(&client, &ns, "ConfigResolved", "False").await;
    assert_eq!(reason, "SecretNotFound", "{message}");
    assert!(message.contains(&format!("{ns}/smtp")), "{message}");
    wait_for("a ConfigFailed Event", WAIT, || async {
        events().contains("ConfigFailed").then_some(())
    })
    .await;
    assert_eq!(
        deploy.get("grafana").await.expect("d").metadata.generation,
        version,
        "the running Deployment was touched"
    );

    // The Secret appears: the pods get the password file.
    create::<Secret>(
        &client,
        &ns,
        serde_json::json!({"metadata": {"name": "smtp"}, "stringData": {"password": "p"}}),
    )
    .await;
    wait_condition(&client, &ns, "ConfigResolved", "True").await;
    wait_for("the SMTP password file in the env", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        env(&d)
            .get("GF_SMTP_PASSWORD")?
            .as_deref()
            .filter(|v| v.starts_with("$__file{"))
            .map(|_| ())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    let version = deploy.get("grafana").await.expect("d").metadata.generation;

    // An envFrom Secret with a key naming a managed variable: reported, nothing applied.
    create::<Secret>(
        &client,
        &ns,
        serde_json::json!({"metadata": {"name": "sneaky"}, "stringData": {"GF_DATABASE_HOST": "elsewhere:5432"}}),
    )
    .await;
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &merge(serde_json::json!({"spec": {"envFrom": [{"secretRef": {"name": "sneaky"}}]}})),
    )
    .await
    .expect("patch");
    let (_, reason, message) = wait_condition(&client, &ns, "ConfigResolved", "False").await;
    assert_eq!(reason, "ManagedVariable", "{message}");
    assert!(
        message.contains("GF_DATABASE_HOST") && message.contains("spec.database"),
        "{message}"
    );
    assert!(!message.contains("elsewhere"), "never a value: {message}");
    assert_eq!(
        deploy.get("grafana").await.expect("d").metadata.generation,
        version,
        "the running Deployment was touched"
    );
    cleanup(&client, &ns, operator).await;
}
