//! Accepted-but-unusable specs and resources that disappear after setup (issue 12), on the
//! real test bed. Each case starts from a Ready cluster, makes it unusable, and checks that
//! the problem is reported (a condition with its `Reason`, a message naming the spec field
//! or the AWS resource, a Warning Event saying the same) while the running Grafana is left
//! alone (the same Deployment generation, pod template and replicas, no child deleted);
//! then it reverts the change and the cluster converges again. docs/reliability.md maps
//! each case to its test. Run alone:
//! `testbed/with-testbed.sh cargo test --test e2e_unusable -- --test-threads=1`.
//!
//! Covered elsewhere, not repeated here: a ReadWriteOnce plugins volume with replicas > 1
//! is refused at admission (tests/e2e_validation_rules.rs, the `spec.plugins.accessMode`
//! case); the database disappearing and an endpoint change (tests/e2e_faults.rs).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};

use support::aws::AwsClients;
use support::kube::{namespace, wait_for};
use support::probe::{clear_endpoints, map_endpoints, memcached_endpoint};
use support::world::{
    Seeded, WAIT, cleanup, cluster_manifest, condition, create_cluster, operator_for, seed, start,
    user_secret, wait_condition,
};

/// A ready article cluster; the operator watching its namespace.
async fn ready(prefix: &str) -> (Client, AwsClients, String, Seeded, support::kube::Operator) {
    let (client, aws) = start().await;
    let seeded = seed(&aws, prefix).await;
    let ns = namespace(&client, prefix).await;
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    (client, aws, ns, seeded, operator)
}

/// Uids of the objects in the namespace that make the running Grafana, by kind/name.
async fn children(client: &Client, ns: &str) -> BTreeMap<String, String> {
    async fn add<K>(client: &Client, ns: &str, out: &mut BTreeMap<String, String>)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let kind = K::kind(&K::DynamicType::default()).to_string();
        for o in Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
        {
            out.insert(
                format!("{kind}/{}", o.name_any()),
                o.uid().unwrap_or_default(),
            );
        }
    }
    let mut out = BTreeMap::new();
    add::<Deployment>(client, ns, &mut out).await;
    add::<Service>(client, ns, &mut out).await;
    add::<ConfigMap>(client, ns, &mut out).await;
    add::<Secret>(client, ns, &mut out).await;
    add::<PersistentVolumeClaim>(client, ns, &mut out).await;
    out
}

/// What must not move while the cluster is unusable.
#[derive(Debug, PartialEq)]
struct Running {
    generation: Option<i64>,
    template: serde_json::Value,
    replicas: Option<i32>,
    replica_sets: usize,
    children: BTreeMap<String, String>,
    volumes: BTreeMap<String, String>,
}

async fn running(client: &Client, ns: &str) -> Running {
    let d = Api::<Deployment>::namespaced(client.clone(), ns)
        .get("grafana")
        .await
        .expect("deployment");
    let spec = d.spec.expect("spec");
    let volumes = Api::<PersistentVolume>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("pvs")
        .items
        .into_iter()
        .filter(|pv| {
            pv.spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|c| c.namespace.as_deref())
                == Some(ns)
        })
        .map(|pv| (pv.name_any(), pv.uid().unwrap_or_default()))
        .collect();
    Running {
        generation: d.metadata.generation,
        template: serde_json::to_value(&spec.template).expect("template"),
        replicas: spec.replicas,
        replica_sets: Api::<ReplicaSet>::namespaced(client.clone(), ns)
            .list(&ListParams::default())
            .await
            .expect("replica sets")
            .items
            .len(),
        children: children(client, ns).await,
        volumes,
    }
}

/// Notes of the Warning Events with `reason` on the GrafanaCluster.
async fn warnings(client: &Client, ns: &str, reason: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("GrafanaCluster")
        })
        .filter_map(|e| e.note)
        .collect()
}

/// Waits until `type_` has `reason`, returning its message.
async fn wait_reason(client: &Client, ns: &str, type_: &str, reason: &str) -> String {
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    let start = Instant::now();
    let mut last = None;
    loop {
        if let Ok(gc) = api.get("grafana").await {
            last = condition(&gc, type_);
            if let Some((_, r, message)) = &last
                && r == reason
            {
                return message.clone();
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {type_}={reason}; last seen {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits for a Warning Event with `reason` whose note contains `text`.
async fn wait_warning(client: &Client, ns: &str, reason: &str, text: &str) -> String {
    wait_for(
        &format!("a Warning Event {reason} saying {text:?}"),
        WAIT,
        || async {
            warnings(client, ns, reason)
                .await
                .into_iter()
                .find(|n| n.contains(text))
        },
    )
    .await
}

async fn patch_spec(client: &Client, ns: &str, spec: serde_json::Value) {
    Api::<GrafanaCluster>::namespaced(client.clone(), ns)
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({ "spec": spec })),
        )
        .await
        .expect("patching the GrafanaCluster");
}

/// The cluster is whole again: every component resolved, Ready, not Degraded.
async fn converged(client: &Client, ns: &str) {
    for type_ in [
        "DatabaseResolved",
        "CacheResolved",
        "StorageResolved",
        "Ready",
    ] {
        wait_condition(client, ns, type_, "True").await;
    }
    wait_condition(client, ns, "Degraded", "False").await;
}

/// Checks a reported problem: the condition's reason and message, its Warning Event, and
/// that the running Grafana stayed as it was through a resync.
async fn reported(
    client: &Client,
    ns: &str,
    before: &Running,
    (type_, reason, event, names): (&str, &str, &str, &str),
) {
    let message = wait_reason(client, ns, type_, reason).await;
    assert!(
        message.contains(names),
        "{type_}={reason} names {names}: {message}"
    );
    wait_warning(client, ns, event, names).await;
    // A resync (3 s in the tests) and a discovery refresh (2 s) later, nothing moved.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        &running(client, ns).await,
        before,
        "{type_}={reason}: the running Grafana changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_specs_and_resources_are_reported_and_leave_grafana_running() {
    let started = Instant::now();
    let (client, aws, ns, seeded, operator) = ready("unusable").await;
    let before = running(&client, &ns).await;
    let tag = seeded.tag.clone();
    let key = "grafana-ha.io/cluster";

    // Tags that match nothing.
    let none = format!("{tag}-none");
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"tags": {key: none}}}),
    )
    .await;
    reported(
        &client,
        &ns,
        &before,
        ("DatabaseResolved", "NotFound", "DatabaseFailed", &none),
    )
    .await;
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"tags": null}}),
    )
    .await;
    converged(&client, &ns).await;

    // Several databases match.
    let second = format!("{tag}-db-2");
    let second_arn = aws
        .create_db_instance(&second, "postgres", &[(key, &tag)], true)
        .await;
    reported(
        &client,
        &ns,
        &before,
        (
            "DatabaseResolved",
            "Ambiguous",
            "DatabaseFailed",
            &second_arn,
        ),
    )
    .await;
    aws.rds
        .delete_db_instance()
        .db_instance_identifier(&second)
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("deleting the second database");
    converged(&client, &ns).await;

    // The only database the tags select runs a non-SQL engine: it is no candidate, and it
    // is named.
    let oracle_tag = format!("{tag}-oracle");
    let oracle_arn = aws
        .create_db_instance(
            &format!("{tag}-oracle"),
            "oracle-ee",
            &[(key, &oracle_tag)],
            false,
        )
        .await;
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"tags": {key: oracle_tag}}}),
    )
    .await;
    reported(
        &client,
        &ns,
        &before,
        (
            "DatabaseResolved",
            "Unsupported",
            "DatabaseFailed",
            &oracle_arn,
        ),
    )
    .await;
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"tags": null}}),
    )
    .await;
    converged(&client, &ns).await;

    // A missing Secret, then the Secret without the password key: one reason, two
    // messages, two Events (each with its own message, not a count on the first).
    let user = serde_json::json!({"database": {"credentials": {
        "rdsManagedSecret": null,
        "secretRef": {"name": "db-user"},
    }}});
    patch_spec(&client, &ns, user).await;
    let missing = format!("Secret {ns}/db-user does not exist");
    reported(
        &client,
        &ns,
        &before,
        (
            "DatabaseResolved",
            "SecretNotFound",
            "DatabaseFailed",
            &missing,
        ),
    )
    .await;
    user_secret(&client, &ns, "db-user", &[("username", "grafana")]).await;
    let mut before_with_secret = before.children.clone();
    let no_key = format!("Secret {ns}/db-user has no key password");
    let with_secret = {
        let mut b = running(&client, &ns).await;
        before_with_secret.insert(
            "Secret/db-user".into(),
            b.children["Secret/db-user"].clone(),
        );
        assert_eq!(b.children, before_with_secret, "a child moved");
        b.children = before_with_secret;
        b
    };
    reported(
        &client,
        &ns,
        &with_secret,
        (
            "DatabaseResolved",
            "SecretNotFound",
            "DatabaseFailed",
            &no_key,
        ),
    )
    .await;
    let notes = warnings(&client, &ns, "DatabaseFailed").await;
    assert!(
        notes.iter().any(|n| n.contains(&missing)) && notes.iter().any(|n| n.contains(&no_key)),
        "each message has its own Event: {notes:?}"
    );
    // A second thing missing while the first still is: Ready stays False for the same
    // reason (Unresolved) with another message, and that is a second NotReady Event.
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"configSecrets": {"smtp": {"password": {"name": "smtp", "key": "password"}}}}),
    )
    .await;
    let smtp = format!("Secret {ns}/smtp does not exist");
    reported(
        &client,
        &ns,
        &with_secret,
        ("ConfigResolved", "SecretNotFound", "ConfigFailed", &smtp),
    )
    .await;
    let both = wait_warning(&client, &ns, "NotReady", "ConfigResolved").await;
    let notes = warnings(&client, &ns, "NotReady").await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("DatabaseResolved") && !n.contains("ConfigResolved")),
        "the first NotReady keeps its own Event and message beside {both:?}: {notes:?}"
    );
    let revert = serde_json::json!({"configSecrets": null, "database": {"credentials": {
        "rdsManagedSecret": true,
        "secretRef": null,
    }}});
    patch_spec(&client, &ns, revert).await;
    converged(&client, &ns).await;

    // A TLS mode of the other engine (MySQL's skip-verify for Postgres).
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"sslMode": "skip-verify"}}),
    )
    .await;
    reported(
        &client,
        &ns,
        &with_secret,
        (
            "DatabaseResolved",
            "InvalidSslMode",
            "DatabaseFailed",
            "spec.database.sslMode",
        ),
    )
    .await;
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"database": {"sslMode": null}}),
    )
    .await;
    converged(&client, &ns).await;

    // A Memcached cache with in-transit encryption (Grafana's Memcached client has none).
    let mc_tag = format!("{tag}-mc");
    let mc_arn = aws
        .elasticache
        .create_cache_cluster()
        .cache_cluster_id(format!("{tag}-mc"))
        .engine("memcached")
        .cache_node_type("cache.t3.micro")
        .num_cache_nodes(1)
        .transit_encryption_enabled(true)
        .tags(
            aws_sdk_elasticache::types::Tag::builder()
                .key(key)
                .value(&mc_tag)
                .build(),
        )
        .send()
        .await
        .expect("creating the Memcached cluster")
        .cache_cluster()
        .and_then(|c| c.arn())
        .expect("arn")
        .to_string();
    // moto describes a Memcached cluster without an endpoint: the fault proxy adds one,
    // as ElastiCache has once the cluster is available.
    map_endpoints(
        "elasticache",
        &[memcached_endpoint(&format!("{tag}-mc"), 11211)],
    );
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"cache": {"engine": "memcached", "tags": {key: mc_tag}}}),
    )
    .await;
    reported(
        &client,
        &ns,
        &with_secret,
        ("CacheResolved", "Unsupported", "CacheFailed", &mc_arn),
    )
    .await;
    patch_spec(
        &client,
        &ns,
        serde_json::json!({"cache": {"engine": null, "tags": null}}),
    )
    .await;
    converged(&client, &ns).await;

    clear_endpoints();

    // Through all of it, the running Grafana never moved.
    assert_eq!(running(&client, &ns).await, with_secret);
    eprintln!("unusable specs test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

fn env_value(d: &Deployment, name: &str) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == "grafana")?
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)?
        .value
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_cache_or_file_system_changes_nothing_and_is_reported() {
    let started = Instant::now();
    let (client, aws, ns, seeded, operator) = ready("vanished").await;
    let before = running(&client, &ns).await;

    // The cache goes: first ElastiCache says it is being deleted, then it is gone (moto
    // keeps a deleted replication group "deleting" for ever: the fault proxy drops it from
    // the answers). The last good one stays wired, and it is said why.
    let cache_arn = aws
        .elasticache
        .delete_replication_group()
        .replication_group_id(format!("{}-cache", seeded.tag))
        .send()
        .await
        .expect("deleting the replication group in moto")
        .replication_group()
        .and_then(|g| g.arn())
        .expect("arn")
        .to_string();
    reported(
        &client,
        &ns,
        &before,
        ("CacheResolved", "NotReady", "CacheFailed", &cache_arn),
    )
    .await;
    support::aws::set_fault(
        &serde_json::json!({
            "mode": "rewrite",
            "count": -1,
            "service": "elasticache",
            "rewrites": [["<ReplicationGroup>.*?</ReplicationGroup>", ""]],
        })
        .to_string(),
    );
    reported(
        &client,
        &ns,
        &before,
        ("CacheResolved", "NotFound", "CacheFailed", &seeded.tag),
    )
    .await;
    let gc = wait_condition(&client, &ns, "Degraded", "True").await;
    assert_eq!(
        condition(&gc, "Degraded").map(|c| c.1).as_deref(),
        Some("UsingLastKnownConfiguration")
    );

    // The file system goes (mount targets first, as EFS demands, then its access point and
    // itself): the plugins volume and its PersistentVolume stay.
    let fs = &seeded.file_system_id;
    let targets = aws
        .efs
        .describe_mount_targets()
        .file_system_id(fs)
        .send()
        .await
        .expect("mount targets");
    for t in targets.mount_targets() {
        aws.efs
            .delete_mount_target()
            .mount_target_id(t.mount_target_id())
            .send()
            .await
            .expect("deleting a mount target");
    }
    if let Some(ap) = &seeded.access_point_id {
        aws.efs
            .delete_access_point()
            .access_point_id(ap)
            .send()
            .await
            .expect("deleting the access point");
    }
    aws.efs
        .delete_file_system()
        .file_system_id(fs)
        .send()
        .await
        .expect("deleting the file system");
    reported(
        &client,
        &ns,
        &before,
        ("StorageResolved", "NotFound", "StorageFailed", &seeded.tag),
    )
    .await;
    eprintln!(
        "deleted cache and file system test took {:?}",
        started.elapsed()
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_rds_instance_rolls_the_pods_once_to_its_new_address() {
    let started = Instant::now();
    let (client, aws, ns, seeded, operator) = ready("renamed").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = running(&client, &ns).await;
    let old_host = env_value(&deploy.get("grafana").await.expect("d"), "GF_DATABASE_HOST")
        .expect("GF_DATABASE_HOST");
    assert!(old_host.contains(&seeded.db_id), "{old_host}");

    let new_id = format!("{}-renamed", seeded.db_id);
    aws.rds
        .modify_db_instance()
        .db_instance_identifier(&seeded.db_id)
        .new_db_instance_identifier(&new_id)
        .apply_immediately(true)
        .send()
        .await
        .expect("renaming the instance in moto");
    let rolled = wait_for("the Deployment to use the new address", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        env_value(&d, "GF_DATABASE_HOST")
            .filter(|h| h.contains(&new_id))
            .map(|_| d)
    })
    .await;
    assert_eq!(
        rolled.metadata.generation,
        before.generation.map(|g| g + 1),
        "one change of the Deployment for one rename"
    );
    // The status is written after the apply of the same round: wait for it.
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "DatabaseResolved=Found naming the new identifier",
        WAIT,
        || async {
            let gc = gcs.get("grafana").await.ok()?;
            let (status, reason, message) = condition(&gc, "DatabaseResolved")?;
            (status == "True" && reason == "Found" && message.contains(&new_id)).then_some(())
        },
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;

    // Once: several discovery refreshes and resyncs later, nothing moved again, and no
    // child was replaced.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = running(&client, &ns).await;
    assert_eq!(after.generation, rolled.metadata.generation);
    assert_eq!(after.replica_sets, before.replica_sets + 1, "one rollout");
    assert_eq!(after.replicas, before.replicas);
    assert_eq!(after.children, before.children, "a child was replaced");
    assert_eq!(after.volumes, before.volumes);
    eprintln!("renamed instance test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_access_point_is_reported_and_replaced_once() {
    let started = Instant::now();
    let (client, aws, ns, seeded, operator) = ready("apgone").await;
    let before = running(&client, &ns).await;
    let old_ap = seeded
        .access_point_id
        .clone()
        .expect("a seeded access point");
    aws.efs
        .delete_access_point()
        .access_point_id(&old_ap)
        .send()
        .await
        .expect("deleting the access point");
    let settled = wait_for("a new access point in the status", WAIT, || async {
        let gc = Api::<GrafanaCluster>::namespaced(client.clone(), &ns)
            .get("grafana")
            .await
            .ok()?;
        let ap = gc
            .status
            .as_ref()?
            .storage
            .as_ref()?
            .access_point_id
            .clone()?;
        (ap != old_ap).then_some(ap)
    })
    .await;
    let note = wait_for("an AccessPointCreated Event", WAIT, || async {
        Api::<Event>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("AccessPointCreated"))?
            .note
    })
    .await;
    assert!(note.contains(&settled), "{note}");
    wait_condition(&client, &ns, "Ready", "True").await;
    wait_condition(&client, &ns, "Degraded", "False").await;

    // The pods moved once, onto a new claim; several refreshes later nothing moved again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = running(&client, &ns).await;
    assert_eq!(
        after.generation,
        before.generation.map(|g| g + 1),
        "one rollout"
    );
    assert_eq!(after.replica_sets, before.replica_sets + 1, "one rollout");
    assert_eq!(after.replicas, before.replicas);
    // The old PersistentVolume (Retain) stays: the plugin data under the deleted access
    // point's directory is not touched; the new one sits beside it.
    for (pv, uid) in &before.volumes {
        assert_eq!(
            after.volumes.get(pv),
            Some(uid),
            "the old volume {pv} was removed"
        );
    }
    assert_eq!(after.volumes.len(), before.volumes.len() + 1);
    // Every other child is the same object; only the claim was superseded.
    let others = |r: &Running| {
        r.children
            .iter()
            .filter(|(k, _)| !k.starts_with("PersistentVolumeClaim/"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(others(&after), others(&before));
    eprintln!("deleted access point test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}
