//! End to end: the operator against a real kube-apiserver (with controller-manager,
//! scheduler and kwok making pods Ready) and moto as AWS. Run through `make e2e`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use grafana_ha_operator::api::{GrafanaCluster, UpgradePhase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use support::kube::{
    Operator, OperatorOptions, client, install_crd, kubectl, namespace, repo_file, wait_for,
};
use support::world::{
    Seeded, WAIT, cleanup, cluster_manifest, condition, create_cluster, operator_for, seed,
    seed_with, start, unique, wait_condition,
};

/// One test's world: AWS seeded for a fresh tag, a namespace, the operator watching it and
/// a GrafanaCluster that has become Ready.
struct ReadyCluster {
    client: Client,
    seeded: Seeded,
    ns: String,
    operator: Operator,
}

async fn ready_cluster(prefix: &str, replicas: i32, extra: serde_json::Value) -> ReadyCluster {
    let (client, aws) = start().await;
    let seeded = seed(&aws, prefix).await;
    let ns = namespace(&client, prefix).await;
    let operator = operator_for(&ns).await;
    create_cluster(&client, cluster_manifest(&ns, &seeded.tag, replicas, extra)).await;
    wait_condition(&client, &ns, "Ready", "True").await;
    ReadyCluster {
        client,
        seeded,
        ns,
        operator,
    }
}

fn env_map(d: &Deployment) -> BTreeMap<String, k8s_openapi::api::core::v1::EnvVar> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers[0].env.clone().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect()
}

/// The (Secret, key) behind a file of the Grafana pods' Secrets volume.
fn secret_file(d: &Deployment, path: &str) -> Option<(String, String)> {
    let pod = d.spec.as_ref()?.template.spec.as_ref()?;
    pod.volumes
        .iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.secret.as_ref())
        .find_map(|s| {
            s.items
                .iter()
                .flatten()
                .find(|i| i.path == path)
                .map(|i| (s.name.clone(), i.key.clone()))
        })
}

fn secrets_hash(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("grafana-ha.io/secrets-hash").cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_setup_runs_ready_with_every_child_wired() {
    let ReadyCluster {
        client,
        seeded,
        ns,
        operator,
    } = ready_cluster("article", 3, serde_json::json!({})).await;
    let ready = wait_condition(&client, &ns, "Ready", "True").await;
    let uid = ready.uid().expect("uid");
    let status = ready.status.clone().expect("status");
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.observed_generation, ready.metadata.generation);
    let db = status.database.clone().expect("database status");
    assert_eq!(db.arn.as_deref(), Some(seeded.db_arn.as_str()));
    assert_eq!(db.host, seeded.db_host);
    assert_eq!(
        status
            .storage
            .as_ref()
            .and_then(|s| s.file_system_id.clone()),
        Some(seeded.file_system_id.clone())
    );
    for t in ["DatabaseResolved", "CacheResolved", "StorageResolved"] {
        assert_eq!(
            condition(&ready, t).map(|c| c.0).as_deref(),
            Some("True"),
            "{t}"
        );
    }
    assert_eq!(
        condition(&ready, "Degraded").map(|c| c.0).as_deref(),
        Some("False")
    );

    // Every namespaced child is owned by the cluster.
    let owned_by_us =
        |refs: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>| {
            refs.is_some_and(|r| r.iter().any(|o| o.uid == uid && o.controller == Some(true)))
        };
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("deployment");
    assert!(owned_by_us(d.metadata.owner_references.as_ref()));
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let env = env_map(&d);
    assert_eq!(env["GF_DATABASE_TYPE"].value.as_deref(), Some("postgres"));
    assert_eq!(
        env["GF_DATABASE_HOST"].value.as_deref(),
        Some(db.endpoint.as_str())
    );
    assert_eq!(
        env["GF_DATABASE_PASSWORD"].value.as_deref(),
        Some("$__file{/etc/grafana/secrets/database/password}"),
        "no literal secret: Grafana reads the Secret's file"
    );
    assert_eq!(
        secret_file(&d, "database/password"),
        Some(("grafana-db-credentials".into(), "password".into()))
    );
    assert_eq!(env["GF_REMOTE_CACHE_TYPE"].value.as_deref(), Some("redis"));
    for e in env.values() {
        if e.name.contains("PASSWORD")
            || e.name.contains("SECRET")
            || e.name == "GF_REMOTE_CACHE_CONNSTR"
        {
            let value = e.value.clone().unwrap_or_default();
            assert!(
                value.starts_with("$__file{/etc/grafana/secrets/"),
                "{} must come from a Secret file, not {value:?}",
                e.name
            );
        }
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let creds = secrets
        .get("grafana-db-credentials")
        .await
        .expect("credentials copy");
    assert!(owned_by_us(creds.metadata.owner_references.as_ref()));
    assert_eq!(creds.data.expect("data")["username"].0, b"admin");
    let cache = secrets.get("grafana-cache").await.expect("cache connstr");
    let connstr = String::from_utf8(cache.data.expect("data")["connstr"].0.clone()).expect("utf8");
    assert!(connstr.contains("ssl=true"), "{connstr}");
    let admin = secrets.get("grafana-admin").await.expect("generated admin");
    assert!(owned_by_us(admin.metadata.owner_references.as_ref()));
    let key = secrets
        .get("grafana-secret-key")
        .await
        .expect("signing key");
    assert!(
        key.metadata.owner_references.is_none(),
        "the signing key outlives the cluster"
    );

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let claim_name = status.storage.as_ref().expect("storage").claim_name.clone();
    let claim = claims.get(&claim_name).await.expect("claim");
    assert!(owned_by_us(claim.metadata.owner_references.as_ref()));
    assert_eq!(
        claim.spec.as_ref().and_then(|s| s.access_modes.clone()),
        Some(vec!["ReadWriteMany".to_string()])
    );
    let pv_name = status
        .storage
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .expect("pv name");
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.expect("static PV");
    let pv_spec = pv.spec.expect("spec");
    assert_eq!(
        pv_spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    let handle = pv_spec.csi.expect("csi").volume_handle;
    assert!(
        handle.starts_with(&format!("{}::fsap-", seeded.file_system_id)),
        "mounted through the tagged access point: {handle}"
    );
    wait_for("the claim to bind", WAIT, || async {
        let c = claims.get(&claim_name).await.ok()?;
        (c.status?.phase.as_deref() == Some("Bound")).then_some(())
    })
    .await;

    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    assert!(owned_by_us(
        services
            .get("grafana")
            .await
            .expect("svc")
            .metadata
            .owner_references
            .as_ref()
    ));
    let headless = services.get("grafana-alerting").await.expect("gossip svc");
    assert_eq!(
        headless.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("None")
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    assert!(owned_by_us(
        pdbs.get("grafana")
            .await
            .expect("pdb")
            .metadata
            .owner_references
            .as_ref()
    ));

    // A steady state writes nothing: resourceVersions hold across several resyncs.
    let versions = |d: &Deployment| d.resource_version();
    let before_d = versions(&deploy.get("grafana").await.expect("d"));
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let before_gc = gcs.get("grafana").await.expect("gc").resource_version();
    let before_svc = services
        .get("grafana")
        .await
        .expect("svc")
        .resource_version();
    let applied_before = operator.metrics.render();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        versions(&deploy.get("grafana").await.expect("d")),
        before_d,
        "Deployment rewritten in steady state"
    );
    assert_eq!(
        gcs.get("grafana").await.expect("gc").resource_version(),
        before_gc,
        "status rewritten in steady state"
    );
    assert_eq!(
        services
            .get("grafana")
            .await
            .expect("svc")
            .resource_version(),
        before_svc
    );
    let applied_after = operator.metrics.render();
    let applied = |text: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("grafana_ha_operator_applies_total")
                    && l.contains("result=\"applied\"")
            })
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .sum::<f64>()
    };
    assert_eq!(
        applied(&applied_before),
        applied(&applied_after),
        "no apply request in steady state; before:\n{applied_before}\nafter:\n{applied_after}"
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_subresource_drives_the_deployment() {
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster("scale", 2, serde_json::json!({})).await;

    let (ok, out, err) = kubectl(&["-n", &ns, "scale", "gfc/grafana", "--replicas=4"], None);
    assert!(ok, "kubectl scale failed: {out}{err}");
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for("the Deployment to scale to 4", WAIT, || async {
        (deploy.get("grafana").await.ok()?.spec?.replicas == Some(4)).then_some(())
    })
    .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    wait_for("status.readyReplicas 4", WAIT, || async {
        (gcs.get("grafana").await.ok()?.status?.ready_replicas == Some(4)).then_some(())
    })
    .await;
    let (ok, out, _) = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "gfc",
            "grafana",
            "-o",
            "jsonpath={.spec.replicas} {.status.selector}",
        ],
        None,
    );
    assert!(ok);
    assert!(out.starts_with("4 "), "{out}");
    assert!(out.contains("app.kubernetes.io/instance=grafana"), "{out}");
    // The scale subresource reports the selector an HPA needs.
    let (ok, out, err) = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "--raw",
            &format!("/apis/grafana-ha.io/v1alpha1/namespaces/{ns}/grafanaclusters/grafana/scale"),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"replicas\":4"), "{out}");
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_on_children_is_undone() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "drift").await;
    let ns = namespace(&client, "drift").await;
    // No periodic resync during the test: only watch events can bring the children back.
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        resync: Duration::from_secs(600),
        ..OperatorOptions::default()
    })
    .await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;

    // Let the first rollout settle, so that nothing but the deletion can wake the operator.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A deleted Service and PDB come back through the watch (no resync runs in this test).
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete("grafana", &DeleteParams::default())
        .await
        .expect("delete svc");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    pdbs.delete("grafana", &DeleteParams::default())
        .await
        .expect("delete pdb");
    wait_for("the Service and PDB to be recreated", WAIT, || async {
        services.get_opt("grafana").await.ok()??;
        pdbs.get_opt("grafana").await.ok()??;
        Some(())
    })
    .await;

    // Someone edits the Deployment's env and replicas by hand.
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let (ok, _, err) = kubectl(
        &[
            "-n",
            &ns,
            "set",
            "env",
            "deployment/grafana",
            "GF_DATABASE_HOST=evil:5432",
        ],
        None,
    );
    assert!(ok, "{err}");
    deploy
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 7}})),
        )
        .await
        .expect("manual scale");
    wait_for("the Deployment to be restored", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        let host = env_map(&d).get("GF_DATABASE_HOST")?.value.clone()?;
        (host != "evil:5432" && d.spec?.replicas == Some(2)).then_some(())
    })
    .await;

    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_data_changes_roll_pods_and_metadata_changes_do_not() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "rotate").await;
    let ns = namespace(&client, "rotate").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let user_secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "db-user", "namespace": ns},
        "stringData": {"username": "grafana", "password": "first"},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &user_secret)
        .await
        .expect("user secret");
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(
            &ns,
            &seeded.tag,
            2,
            serde_json::json!({
                "database": {"credentials": {"secretRef": {"name": "db-user"}}},
            }),
        ),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("d");
    let from = secret_file(&d, "database/password").expect("the password file");
    assert_eq!(
        (from.0.as_str(), from.1.as_str()),
        ("db-user", "password"),
        "the user Secret is referenced, not copied"
    );
    let first_hash = secrets_hash(&d);
    assert!(!first_hash.is_empty());

    // A metadata-only change does not roll.
    secrets
        .patch(
            "db-user",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        secrets_hash(&deploy.get("grafana").await.expect("d")),
        first_hash,
        "metadata change rolled the pods"
    );

    // A data change does, and the new pods become ready.
    secrets
        .patch(
            "db-user",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"password": "second"}})),
        )
        .await
        .expect("rotate");
    let rolled = wait_for("the pods to roll on the new password", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        let h = secrets_hash(&d);
        (h != first_hash).then_some(h)
    })
    .await;
    assert_ne!(rolled, first_hash);
    wait_condition(&client, &ns, "Ready", "True").await;

    // RDS rotating its managed secret also rolls: switch to the managed secret, then rotate it.
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"database": {"credentials": {"secretRef": null, "rdsManagedSecret": true}}}})),
    )
    .await
    .expect("switch to managed");
    let managed = wait_for("the managed credentials copy", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let arn = gc.status?.database?.managed_secret_arn?;
        secrets.get_opt("grafana-db-credentials").await.ok()??;
        Some(arn)
    })
    .await;
    let before = wait_for("a settled hash", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        let (name, _) = secret_file(&d, "database/password")?;
        (name == "grafana-db-credentials").then(|| secrets_hash(&d))
    })
    .await;
    aws.secrets
        .put_secret_value()
        .secret_id(&managed)
        .secret_string(r#"{"username":"admin","password":"rotated-by-rds"}"#)
        .send()
        .await
        .expect("rotate the managed secret in moto");
    wait_for("the copy to refresh and the pods to roll", WAIT, || async {
        let s = secrets.get("grafana-db-credentials").await.ok()?;
        let refreshed = s.data?.get("password")?.0 == b"rotated-by-rds";
        let d = deploy.get("grafana").await.ok()?;
        (refreshed && secrets_hash(&d) != before).then_some(())
    })
    .await;
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_cluster_collects_children_but_keeps_data_and_user_secrets() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "delete").await;
    let ns = namespace(&client, "delete").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let token: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "redis-auth", "namespace": ns},
        "stringData": {"token": "tok"},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &token)
        .await
        .expect("user secret");
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({"cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}}})),
    )
    .await;
    let ready = wait_condition(&client, &ns, "Ready", "True").await;
    let pv_name = ready
        .status
        .and_then(|s| s.storage)
        .and_then(|s| s.volume_name)
        .expect("pv");

    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.delete("grafana", &DeleteParams::foreground())
        .await
        .expect("delete");
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    wait_for("garbage collection of the children", WAIT, || async {
        let gone = deploy.get_opt("grafana").await.ok()?.is_none()
            && services.get_opt("grafana").await.ok()?.is_none()
            && secrets.get_opt("grafana-admin").await.ok()?.is_none()
            && secrets
                .get_opt("grafana-db-credentials")
                .await
                .ok()?
                .is_none();
        gone.then_some(())
    })
    .await;
    assert!(
        secrets.get_opt("redis-auth").await.expect("get").is_some(),
        "the user's Secret is kept"
    );
    assert!(
        secrets
            .get_opt("grafana-secret-key")
            .await
            .expect("get")
            .is_some(),
        "the signing key is kept"
    );
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.expect("the EFS volume is kept");
    assert_eq!(
        pv.spec
            .and_then(|s| s.persistent_volume_reclaim_policy)
            .as_deref(),
        Some("Retain")
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_with_other_tags_in_two_namespaces_stay_apart() {
    let (client, aws) = start().await;
    let a = seed(&aws, "team-a").await;
    let b = seed(&aws, "team-b").await;
    let ns_a = namespace(&client, "team-a").await;
    let ns_b = namespace(&client, "team-b").await;
    // Watching every namespace: the two clusters share one operator and one discovery cache.
    let operator = Operator::start(OperatorOptions::default()).await;
    create_cluster(
        &client,
        cluster_manifest(&ns_a, &a.tag, 2, serde_json::json!({})),
    )
    .await;
    create_cluster(
        &client,
        cluster_manifest(&ns_b, &b.tag, 3, serde_json::json!({})),
    )
    .await;
    let ga = wait_condition(&client, &ns_a, "Ready", "True").await;
    let gb = wait_condition(&client, &ns_b, "Ready", "True").await;
    assert_eq!(
        ga.status
            .as_ref()
            .and_then(|s| s.database.as_ref())
            .map(|d| d.host.clone()),
        Some(a.db_host.clone())
    );
    assert_eq!(
        gb.status
            .as_ref()
            .and_then(|s| s.database.as_ref())
            .map(|d| d.host.clone()),
        Some(b.db_host.clone())
    );
    let da: Api<Deployment> = Api::namespaced(client.clone(), &ns_a);
    let db: Api<Deployment> = Api::namespaced(client.clone(), &ns_b);
    let host = |d: &Deployment| {
        env_map(d)["GF_DATABASE_HOST"]
            .value
            .clone()
            .unwrap_or_default()
    };
    assert!(host(&da.get("grafana").await.expect("a")).starts_with(&a.db_host));
    assert!(host(&db.get("grafana").await.expect("b")).starts_with(&b.db_host));
    assert_ne!(
        ga.status
            .and_then(|s| s.storage)
            .and_then(|s| s.file_system_id),
        gb.status
            .and_then(|s| s.storage)
            .and_then(|s| s.file_system_id)
    );
    // One shared discovery cache: two clusters did not double the RDS listing.
    let text = operator.metrics.render();
    assert!(
        text.contains("discovery_cache_lookups_total{service=\"rds\",result=\"hit\"}"),
        "{text}"
    );
    operator.stop().await;
    cleanup(&client, &ns_a).await;
    cleanup(&client, &ns_b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_outcomes_are_reported_as_conditions() {
    let (client, aws) = start().await;
    let ns = namespace(&client, "outcomes").await;
    let operator = operator_for(&ns).await;
    // Nothing is tagged yet: NotFound.
    let tag = unique("outcomes");
    create_cluster(
        &client,
        cluster_manifest(&ns, &tag, 2, serde_json::json!({})),
    )
    .await;
    let gc = wait_condition(&client, &ns, "DatabaseResolved", "False").await;
    let (_, reason, message) = condition(&gc, "DatabaseResolved").expect("condition");
    assert_eq!(reason, "NotFound", "{message}");
    assert!(
        message.contains(&format!("grafana-ha.io/cluster={tag}")),
        "{message}"
    );
    assert_eq!(
        condition(&gc, "Ready").map(|c| c.0).as_deref(),
        Some("False")
    );
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(
        deploy.get_opt("grafana").await.expect("get").is_none(),
        "nothing is built without a database"
    );

    // The database exists but RDS is still creating it (no endpoint yet): NotReady, and
    // still nothing is built. moto creates instances available at once, so the fault proxy
    // rewrites its answer the way RDS answers during creation.
    let tags = [("grafana-ha.io/cluster", tag.as_str())];
    support::aws::set_fault(
        &serde_json::json!({
            "mode": "rewrite",
            "count": -1,
            "service": "rds",
            "rewrites": [
                ["<DBInstanceStatus>available</DBInstanceStatus>", "<DBInstanceStatus>creating</DBInstanceStatus>"],
                ["<Endpoint>.*?</Endpoint>", ""],
            ],
        })
        .to_string(),
    );
    let one = aws
        .create_db_instance(&format!("{tag}-db-1"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    aws.create_access_point(&fs, &format!("{tag}-ap"), &tags)
        .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let message = wait_for("DatabaseResolved=NotReady", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let (_, reason, message) = condition(&gc, "DatabaseResolved")?;
        (reason == "NotReady").then_some(message)
    })
    .await;
    assert!(
        message.contains(&one) && message.contains("creating"),
        "{message}"
    );
    assert!(
        deploy.get_opt("grafana").await.expect("get").is_none(),
        "nothing is built before the endpoint exists"
    );

    // Creation finishes: the cluster comes up.
    support::aws::clear_fault();
    wait_condition(&client, &ns, "Ready", "True").await;

    // A second database with the tag: Ambiguous, naming both ARNs; the running cluster
    // keeps its database and reports Degraded rather than picking one.
    let before = env_map(&deploy.get("grafana").await.expect("d"));
    let two = aws
        .create_db_instance(&format!("{tag}-db-2"), "postgres", &tags, true)
        .await;
    let message = wait_for("DatabaseResolved=Ambiguous", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let (_, reason, message) = condition(&gc, "DatabaseResolved")?;
        (reason == "Ambiguous").then_some(message)
    })
    .await;
    assert!(
        message.contains(&one) && message.contains(&two),
        "{message}"
    );
    let gc = wait_condition(&client, &ns, "Degraded", "True").await;
    assert_eq!(
        condition(&gc, "Degraded").map(|c| c.1).as_deref(),
        Some("UsingLastKnownConfiguration")
    );
    assert_eq!(
        env_map(&deploy.get("grafana").await.expect("d")),
        before,
        "the wiring did not move"
    );

    // Events say what failed.
    let (ok, out, _) = kubectl(
        &[
            "-n",
            &ns,
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=GrafanaCluster",
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    );
    assert!(ok);
    assert!(out.contains("DatabaseFailed"), "events: {out}");
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_outage_after_setup_keeps_the_deployment_and_reports_degraded() {
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster("outage", 2, serde_json::json!({})).await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("d");

    support::aws::set_fault(r#"{"mode":"error500","count":-1,"service":"rds"}"#);
    let gc = wait_condition(&client, &ns, "Degraded", "True").await;
    let (_, reason, message) = condition(&gc, "Degraded").expect("degraded");
    assert_eq!(reason, "UsingLastKnownConfiguration", "{message}");
    assert_eq!(
        condition(&gc, "DatabaseResolved").map(|c| c.1).as_deref(),
        Some("AwsUnavailable")
    );
    // Scaling still works on the last good configuration.
    gc_scale(&client, &ns, 3).await;
    wait_for(
        "the Deployment to scale during the outage",
        WAIT,
        || async { (deploy.get("grafana").await.ok()?.spec?.replicas == Some(3)).then_some(()) },
    )
    .await;
    let during = deploy.get("grafana").await.expect("d");
    // The AWS-derived wiring is kept; the pool size may follow the new replica count (the
    // connection budget).
    let wiring = |d: &Deployment| {
        let mut env = env_map(d);
        env.retain(|k, _| !k.starts_with("GF_DATABASE_MAX_"));
        env
    };
    assert_eq!(
        wiring(&during),
        wiring(&before),
        "wiring kept during the outage"
    );

    support::aws::clear_fault();
    let gc = wait_condition(&client, &ns, "Degraded", "False").await;
    assert_eq!(
        condition(&gc, "DatabaseResolved").map(|c| c.0).as_deref(),
        Some("True")
    );
    wait_condition(&client, &ns, "Ready", "True").await;
    operator.stop().await;
    cleanup(&client, &ns).await;
}

async fn gc_scale(client: &Client, ns: &str, replicas: i32) {
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_explains_itself_and_rejects_bad_specs_at_apply() {
    let client = client().await;
    install_crd(&client).await;
    // Discovery publishes a just-established CRD a moment later: wait for it.
    let out = wait_for(
        "kubectl explain gfc.spec.database",
        Duration::from_secs(20),
        || async {
            let (ok, out, _) = kubectl(&["explain", "gfc.spec.database"], None);
            ok.then_some(out)
        },
    )
    .await;
    assert!(
        out.contains("rdsManagedSecret") || out.contains("credentials"),
        "{out}"
    );
    assert!(out.contains("shared SQL database"), "{out}");
    let (ok, out, _) = kubectl(&["explain", "gfc.spec.plugins.install"], None);
    assert!(ok && out.contains("id@version"), "{out}");

    let ns = namespace(&client, "validation").await;
    let bad = |spec: serde_json::Value| {
        serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "bad", "namespace": ns},
            "spec": spec,
        })
        .to_string()
    };
    let cases = [
        (
            bad(
                serde_json::json!({"aws": {"tags": {"a": "b"}}, "database": {"tags": {"x": "y"}, "endpoint": {"host": "db", "port": 5432}, "engine": "postgres", "credentials": {"secretRef": {"name": "s"}}}}),
            ),
            "at most one of tags and endpoint",
        ),
        (
            bad(
                serde_json::json!({"replicas": 3, "aws": {"tags": {"a": "b"}}, "database": {"credentials": {"rdsManagedSecret": true}}, "plugins": {"accessMode": "ReadWriteOnce"}}),
            ),
            "ReadWriteOnce cannot be shared",
        ),
        (
            bad(
                serde_json::json!({"aws": {"tags": {"a": "b"}}, "database": {"credentials": {"rdsManagedSecret": true}}, "plugins": {"install": ["grafana-clock-panel"]}}),
            ),
            "pinned id@version",
        ),
        (
            bad(
                serde_json::json!({"replicas": 1001, "aws": {"tags": {"a": "b"}}, "database": {"credentials": {"rdsManagedSecret": true}}}),
            ),
            "spec.replicas",
        ),
        (
            bad(serde_json::json!({"database": {"credentials": {"rdsManagedSecret": true}}})),
            "empty selector would match every database",
        ),
        (
            bad(serde_json::json!({"aws": {"tags": {"a": "b"}}, "database": {"credentials": {}}})),
            "exactly one of secretRef",
        ),
        (
            bad(
                serde_json::json!({"aws": {"tags": {"a": "b"}}, "database": {"credentials": {"rdsManagedSecret": true}}, "env": [{"name": "GF_SMTP_PASSWORD", "value": "x"}]}),
            ),
            "valueFrom.secretKeyRef",
        ),
        (
            bad(
                serde_json::json!({"aws": {"tags": {"a": "b"}}, "database": {"engine": "oracle", "credentials": {"rdsManagedSecret": true}}}),
            ),
            "Unsupported value",
        ),
    ];
    for (manifest, expected) in cases {
        let (ok, out, err) = kubectl(&["apply", "-f", "-"], Some(&manifest));
        assert!(!ok, "accepted a bad spec: {manifest}\n{out}");
        assert!(
            err.contains(expected),
            "message for {manifest} lacks {expected:?}: {err}"
        );
    }
    // The examples are accepted as they are, by the same admission that refused the above
    // (their namespaces must exist for a server-side dry run).
    for (example, example_ns) in [
        ("examples/grafanacluster-postgres-redis-efs.yaml", "grafana"),
        (
            "examples/grafanacluster-mysql-memcached.yaml",
            "grafana-mysql",
        ),
    ] {
        let (ok, out, err) = kubectl(&["create", "namespace", example_ns], None);
        assert!(ok || err.contains("AlreadyExists"), "{out}{err}");
        let (ok, out, err) = kubectl(
            &["apply", "--dry-run=server", "-f", &repo_file(example)],
            None,
        );
        assert!(ok, "{example} refused: {err}");
        assert!(
            out.contains("grafanacluster.grafana-ha.io/grafana"),
            "{out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_by_endpoint_is_wired_without_a_secret() {
    // moto reports no Memcached endpoint, so this path is driven through cache.endpoint.
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster(
        "memcached",
        2,
        serde_json::json!({"cache": {"endpoint": {"host": "memcached.internal", "port": 11211}, "engine": "memcached"}}),
    )
    .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let gc = gcs.get("grafana").await.expect("gc");
    let (status, reason, _) = condition(&gc, "CacheResolved").expect("CacheResolved");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Endpoint"));
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let env = env_map(&deploy.get("grafana").await.expect("d"));
    assert_eq!(
        env["GF_REMOTE_CACHE_TYPE"].value.as_deref(),
        Some("memcached")
    );
    assert_eq!(
        env["GF_REMOTE_CACHE_CONNSTR"].value.as_deref(),
        Some("memcached.internal:11211")
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert!(
        secrets
            .get_opt("grafana-cache")
            .await
            .expect("get")
            .is_none(),
        "no Redis connection Secret"
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_set_is_installed_once_and_the_old_installer_removed() {
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster("plugins", 2, serde_json::json!({})).await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), &ns);
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let first = gcs
        .get("grafana")
        .await
        .expect("gc")
        .status
        .and_then(|s| s.plugins)
        .expect("plugins status");
    assert!(first.installed);
    let plugins_hash = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get("grafana-ha.io/plugins-hash").cloned())
    };
    assert_eq!(
        plugins_hash(&deploy.get("grafana").await.expect("d")),
        Some(first.hash.clone())
    );

    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"plugins": {"install": ["grafana-clock-panel@2.1.8", "grafana-piechart-panel@1.6.4"]}}})),
    )
    .await
    .expect("new plugin set");
    let second = wait_for("the new plugin set to be installed", WAIT, || async {
        let p = gcs.get("grafana").await.ok()?.status?.plugins?;
        (p.hash != first.hash && p.installed).then_some(p)
    })
    .await;
    // One installer for the new set, passing both plugins; the old one is gone.
    let job = jobs.get(&second.job_name).await.expect("new installer");
    let command = job
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].command.clone().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        command.iter().any(|c| c == "grafana-piechart-panel@1.6.4"),
        "{command:?}"
    );
    wait_for("the old installer to be removed", WAIT, || async {
        jobs.get_opt(&first.job_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // The replicas roll onto the new set, and the cluster is Ready again.
    wait_for("the pods to load the new set", WAIT, || async {
        (plugins_hash(&deploy.get("grafana").await.ok()?) == Some(second.hash.clone()))
            .then_some(())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_file_system_moves_to_a_new_claim_and_keeps_the_old_volume() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "switch").await;
    let ns = namespace(&client, "switch").await;
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    let before = wait_condition(&client, &ns, "Ready", "True").await;
    let old = before.status.and_then(|s| s.storage).expect("storage");

    // A second, untagged file system, named by id.
    let other = aws.create_file_system(&unique("switch-other"), &[]).await;
    aws.create_mount_target(&other, "us-east-1a").await;
    let other_ap = aws
        .create_access_point(&other, &unique("switch-other-ap"), &[])
        .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"plugins": {"efs": {"fileSystemId": other, "accessPointId": other_ap}}}})),
    )
    .await
    .expect("switch");
    let new = wait_for(
        "the cluster to move to the other file system",
        WAIT,
        || async {
            let s = gcs.get("grafana").await.ok()?.status?.storage?;
            (s.file_system_id.as_deref() == Some(other.as_str())).then_some(s)
        },
    )
    .await;
    assert_ne!(new.claim_name, old.claim_name);
    wait_condition(&client, &ns, "Ready", "True").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("d");
    let claim = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.volumes)
        .unwrap_or_default()
        .into_iter()
        .find_map(|v| v.persistent_volume_claim.map(|c| c.claim_name));
    assert_eq!(claim.as_deref(), Some(new.claim_name.as_str()));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "the old claim to be removed once no pod uses it",
        WAIT,
        || async {
            let c = claims.get_opt(&old.claim_name).await.ok()?;
            (c.is_none() || c.is_some_and(|c| c.metadata.deletion_timestamp.is_some()))
                .then_some(())
        },
    )
    .await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let old_pv = pvs
        .get(old.volume_name.as_deref().expect("old pv"))
        .await
        .expect("the old volume is kept");
    assert_eq!(
        old_pv
            .spec
            .and_then(|s| s.persistent_volume_reclaim_policy)
            .as_deref(),
        Some("Retain")
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Issue 10's placement and scale to zero: pods are kept in the zones with an EFS mount
/// target; `replicas: 0` scales Grafana down, reports ScaledDown (not "not ready"), drops
/// the budget, keeps everything else, and scaling up brings it all back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_stay_in_mount_target_zones_and_scale_to_zero() {
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster("zero", 2, serde_json::json!({})).await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("deployment");
    let affinity = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.affinity.clone())
        .expect("affinity");
    let terms = affinity
        .node_affinity
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .expect("required node affinity")
        .node_selector_terms;
    let zones = terms[0].match_expressions.clone().expect("expressions")[0]
        .values
        .clone();
    assert_eq!(
        zones,
        Some(vec!["us-east-1a".to_string(), "us-east-1b".to_string()]),
        "the zones with a mount target"
    );

    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let scale = |n: i32| serde_json::json!({"spec": {"replicas": n}});
    gcs.patch("grafana", &PatchParams::default(), &Patch::Merge(scale(0)))
        .await
        .expect("scale to zero");
    let gc = wait_for("Ready=True ScaledDown", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let (status, reason, _) = condition(&gc, "Ready")?;
        (status == "True" && reason == "ScaledDown").then_some(gc)
    })
    .await;
    assert_eq!(
        condition(&gc, "Stalled").map(|c| c.0).as_deref(),
        Some("False")
    );
    assert_eq!(
        deploy
            .get("grafana")
            .await
            .expect("d")
            .spec
            .and_then(|s| s.replicas),
        Some(0)
    );
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    wait_for("the budget to go", WAIT, || async {
        budgets
            .get_opt("grafana")
            .await
            .ok()
            .and_then(|b| b.is_none().then_some(()))
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert!(
        secrets
            .get_opt("grafana-secret-key")
            .await
            .expect("get")
            .is_some()
    );

    gcs.patch("grafana", &PatchParams::default(), &Patch::Merge(scale(2)))
        .await
        .expect("scale up");
    wait_for("Ready=True Available", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let (status, reason, _) = condition(&gc, "Ready")?;
        (status == "True" && reason == "Available").then_some(())
    })
    .await;
    assert!(budgets.get_opt("grafana").await.expect("get").is_some());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Issue 10's connection budget: moto's db.t3.micro Postgres has max_connections 112 by
/// RDS's formula; 75% of it over 2 replicas + 1 surge pod gives 28 per replica. An explicit
/// pool over the budget is used but reported, with a Warning Event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_budget_sizes_the_pool_and_warns_when_exceeded() {
    let ReadyCluster {
        client,
        ns,
        operator,
        ..
    } = ready_cluster("budget", 2, serde_json::json!({})).await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("deployment");
    assert_eq!(
        env_map(&d)["GF_DATABASE_MAX_OPEN_CONN"].value.as_deref(),
        Some("28")
    );
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let gc = gcs.get("grafana").await.expect("gc");
    let (status, reason, message) = condition(&gc, "ConnectionBudget").expect("condition");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "WithinBudget"));
    assert!(message.contains("max_connections 112"), "{message}");

    // An autoscaler targeting the cluster: its maximum bounds the pool (84 over 10 + 1).
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler =
        serde_json::from_value(serde_json::json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "grafana", "namespace": ns},
            "spec": {
                "scaleTargetRef": {"apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster", "name": "grafana"},
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
            }
        }))
        .expect("hpa");
    Api::<k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler>::namespaced(
        client.clone(),
        &ns,
    )
    .create(&PostParams::default(), &hpa)
    .await
    .expect("create hpa");
    wait_for("the autoscaler's maximum in the pool", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        (env_map(&d)
            .get("GF_DATABASE_MAX_OPEN_CONN")?
            .value
            .as_deref()
            == Some("7"))
        .then_some(())
    })
    .await;

    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"database": {"connectionBudget": {"maxOpenPerReplica": 50}}}})),
    )
    .await
    .expect("explicit pool");
    let message = wait_for("ConnectionBudget=False", WAIT, || async {
        let gc = gcs.get("grafana").await.ok()?;
        let (status, reason, message) = condition(&gc, "ConnectionBudget")?;
        (status == "False" && reason == "OverBudget").then_some(message)
    })
    .await;
    assert!(
        message.contains("= 550") && message.contains("is 84"),
        "{message}"
    );
    wait_for("the explicit pool in the env", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        (env_map(&d)
            .get("GF_DATABASE_MAX_OPEN_CONN")?
            .value
            .as_deref()
            == Some("50"))
        .then_some(())
    })
    .await;
    let (ok, events, _) = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "-o",
            "jsonpath={range .items[*]}{.type} {.reason}{\"\\n\"}{end}",
        ],
        None,
    );
    assert!(ok);
    assert!(
        events
            .lines()
            .any(|l| l == "Warning ConnectionBudgetFailed"),
        "{events}"
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Images of each ReplicaSet of the cluster's Deployment with its current replicas.
async fn replica_sets(client: &Client, ns: &str) -> Vec<(String, i32)> {
    let api: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .map(|rs| {
                    let image = rs
                        .spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .and_then(|t| t.spec.as_ref())
                        .and_then(|p| p.containers.iter().find(|c| c.name == "grafana"))
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default();
                    let replicas = rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
                    (image, replicas)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Issue 10's version-aware rollout on the real control plane (kwok plays the pods): a
/// 12.x -> 13.x change takes a snapshot, stops the old version, lets one new pod migrate,
/// then scales out, and old and new pods never run at once; a downgrade below the database
/// is refused (Stalled); a patch rolls normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minor_upgrade_snapshots_stops_migrates_then_scales_out() {
    const OLD: &str = "docker.io/grafana/grafana:12.4.5";
    const NEW: &str = "docker.io/grafana/grafana:13.3.0";
    const PATCH: &str = "docker.io/grafana/grafana:13.3.1";
    let (client, aws) = start().await;
    let seeded = seed(&aws, "upgrade").await;
    let ns = namespace(&client, "upgrade").await;
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(
            &ns,
            &seeded.tag,
            2,
            serde_json::json!({"image": OLD, "upgrade": {"snapshot": true}}),
        ),
    )
    .await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    wait_for("the database version 12.4.5 recorded", WAIT, || async {
        let s = gcs.get("grafana").await.ok()?.status?;
        (s.database_version.as_deref() == Some("12.4.5")).then_some(())
    })
    .await;

    let image = |i: &str| serde_json::json!({"spec": {"image": i}});
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(image(NEW)),
    )
    .await
    .expect("upgrade");
    // Watch the ReplicaSets until the upgrade is done: old and new never run together.
    let mut phases = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    let done = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "upgrade stuck: {phases:?}"
        );
        let sets = replica_sets(&client, &ns).await;
        let running = |i: &str| {
            sets.iter()
                .filter(|(img, _)| img == i)
                .map(|(_, n)| n)
                .sum::<i32>()
        };
        assert!(
            running(OLD) == 0 || running(NEW) == 0,
            "old and new pods at once: {sets:?}"
        );
        let gc = gcs.get("grafana").await.expect("gc");
        let status = gc.status.clone().unwrap_or_default();
        if let Some(up) = &status.upgrade {
            if phases.last() != Some(&up.phase) {
                phases.push(up.phase);
            }
        } else if status.database_version.as_deref() == Some("13.3.0")
            && condition(&gc, "Ready").map(|c| c.0).as_deref() == Some("True")
        {
            break gc;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = done.status.expect("status");
    let arn = status
        .pre_upgrade_snapshot_arn
        .expect("the snapshot's ARN in status");
    let snapshots = aws
        .rds
        .describe_db_snapshots()
        .send()
        .await
        .expect("snapshots");
    assert!(
        snapshots
            .db_snapshots()
            .iter()
            .any(|s| s.db_snapshot_arn() == Some(arn.as_str())),
        "{arn} exists in RDS"
    );
    let (ok, events, _) = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "jsonpath={range .items[*]}{.reason}{\"\\n\"}{end}",
        ],
        None,
    );
    assert!(ok);
    // Events within one second sort arbitrarily: compare them as a set, and the order
    // through the phases the status went through (polled, so a short one may be missed).
    let mut steps: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("Upgrade"))
        .collect();
    steps.sort_unstable();
    assert_eq!(
        steps,
        vec![
            "UpgradeMigrating",
            "UpgradeScalingOut",
            "UpgradeSnapshotting",
            "UpgradeStopping",
            "Upgraded"
        ]
    );
    let order = [
        UpgradePhase::Snapshotting,
        UpgradePhase::Stopping,
        UpgradePhase::Migrating,
        UpgradePhase::ScalingOut,
    ];
    let positions: Vec<usize> = phases
        .iter()
        .filter_map(|p| order.iter().position(|o| o == p))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "phases in order: {phases:?}"
    );
    // (A step can be shorter than the poll: the Events above prove each one happened.)

    // A downgrade below the database is refused and leaves the Deployment alone.
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(image(OLD)),
    )
    .await
    .expect("downgrade");
    let gc = wait_condition(&client, &ns, "Stalled", "True").await;
    let (_, reason, message) = condition(&gc, "Stalled").expect("stalled");
    assert_eq!(reason, "DowngradeRefused");
    assert!(
        message.contains("12.4.5") && message.contains("13.3.0"),
        "{message}"
    );
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let running_image = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].image.clone())
    };
    assert_eq!(
        running_image(&deploy.get("grafana").await.expect("d")),
        Some(Some(NEW.to_string()))
    );

    // A patch rolls normally: the replicas never drop to zero.
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(image(PATCH)),
    )
    .await
    .expect("patch");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        assert!(std::time::Instant::now() < deadline, "patch rollout stuck");
        let d = deploy.get("grafana").await.expect("d");
        assert_eq!(
            d.spec.as_ref().and_then(|s| s.replicas),
            Some(2),
            "no stop for a patch"
        );
        let gc = gcs.get("grafana").await.expect("gc");
        let s = gc.status.clone().unwrap_or_default();
        assert!(s.upgrade.is_none(), "no safe upgrade for a patch");
        if s.database_version.as_deref() == Some("13.3.1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Issue 10's access point per cluster: on a file system with no access point at all, the
/// operator creates exactly one for the cluster (Grafana's POSIX user, its own directory,
/// the owner tag), the static volume mounts through it and the cluster becomes Ready; a
/// restarted operator finds it again and creates no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_point_is_created_once_and_found_again_after_a_restart() {
    let (client, aws) = start().await;
    let seeded = seed_with(&aws, "ap", false).await;
    let fs = seeded.file_system_id.clone();
    assert!(aws.access_points(&fs).await.is_empty());
    let ns = namespace(&client, "ap").await;
    let operator = operator_for(&ns).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    let gc = wait_condition(&client, &ns, "Ready", "True").await;

    let points = aws.access_points(&fs).await;
    assert_eq!(points.len(), 1, "exactly one access point: {points:?}");
    let ap = &points[0];
    let id = ap.access_point_id().expect("id").to_string();
    let user = ap.posix_user().expect("POSIX user");
    assert_eq!((user.uid(), user.gid()), (472, 472));
    let root = ap.root_directory().expect("root directory");
    assert_eq!(root.path(), Some(format!("/grafana/{ns}/grafana").as_str()));
    let info = root.creation_info().expect("creation info");
    assert_eq!(
        (info.owner_uid(), info.owner_gid(), info.permissions()),
        (472, 472, "0755")
    );
    let owner = format!("{ns}/grafana");
    assert!(
        ap.tags()
            .iter()
            .any(|t| t.key() == "grafana-ha.io/owner" && t.value() == owner)
    );

    let storage = gc.status.and_then(|s| s.storage).expect("storage status");
    assert_eq!(storage.access_point_id.as_deref(), Some(id.as_str()));
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs
        .get(storage.volume_name.as_deref().expect("volume"))
        .await
        .expect("pv");
    let handle = pv.spec.and_then(|s| s.csi).map(|c| c.volume_handle);
    assert_eq!(handle, Some(format!("{fs}::{id}")));
    let (ok, events, _) = kubectl(
        &[
            "get",
            "events",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].reason}",
        ],
        None,
    );
    assert!(ok && events.contains("AccessPointCreated"), "{events}");

    // A restarted operator (or the other replica taking over) finds it by its owner tag.
    operator.stop().await;
    let operator = operator_for(&ns).await;
    wait_for(
        "the new operator to look at the file system",
        WAIT,
        || async {
            (support::aws::calls(
                &operator.metrics,
                "efs",
                "DescribeAccessPoints",
                grafana_ha_operator::metrics::AwsOutcome::Success,
            ) > 0)
                .then_some(())
        },
    )
    .await;
    // The round that looked goes on to create when it finds none: give it time to finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_condition(&client, &ns, "Ready", "True").await;
    assert_eq!(
        support::aws::calls(
            &operator.metrics,
            "efs",
            "CreateAccessPoint",
            grafana_ha_operator::metrics::AwsOutcome::Success,
        ),
        0
    );
    assert_eq!(
        aws.access_points(&fs).await.len(),
        1,
        "no second access point"
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}
