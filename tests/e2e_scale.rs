//! Scale guards that run in `make test` (issue 11): AWS changes reach a cluster within one
//! discovery refresh (not one resync); AWS calls per refresh do not grow with the number
//! of resources; twenty clusters settle with no writes and bounded reconciles. The full
//! benchmark is tests/bench_scale.rs (`make bench`).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig, FileSystemQuery};
use grafana_ha_operator::metrics::Metrics;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use support::aws::{AwsClients, REGION, moto_url, reset_moto, tags};
use support::kube::{Operator, OperatorOptions, client, install_crd, namespace, wait_for};

const WAIT: Duration = Duration::from_secs(90);
const TAG: &str = "grafana-ha.io/cluster";

async fn start() -> (Client, AwsClients) {
    let client = client().await;
    install_crd(&client).await;
    reset_moto();
    support::aws::clear_fault();
    (client, AwsClients::new().await)
}

/// A database, a Redis and a file system with one mount target, tagged `TAG=tag`.
async fn seed(aws: &AwsClients, tag: &str) {
    let tags = [(TAG, tag)];
    aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
        .await;
    aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
        .await;
    let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
}

async fn create_cluster(client: &Client, ns: &str, tag: &str) {
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
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &gc)
        .await
        .expect("create");
}

fn condition(gc: &GrafanaCluster, type_: &str) -> Option<(String, String)> {
    gc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn ready(gc: &GrafanaCluster) -> bool {
    condition(gc, "Ready").is_some_and(|(s, _)| s == "True")
}

/// Sum of a metric's samples whose line contains every filter.
fn sum(metrics: &Metrics, metric: &str, filters: &[&str]) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|l| l.starts_with(metric) && filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: an empty f64 sum is -0.0, which prints as "-0".
        .fold(0.0, |total, v| total + v)
}

/// AWS calls by operation so far.
fn calls_by_operation(metrics: &Metrics) -> BTreeMap<String, f64> {
    let mut by_op = BTreeMap::new();
    for line in metrics.render().lines() {
        if !line.starts_with("grafana_ha_operator_aws_calls_total{") {
            continue;
        }
        let op = line
            .split("operation=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *by_op.entry(op).or_insert(0.0) += value;
    }
    by_op
}

fn delta(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

/// The calls of one refresh of every inventory, with `n` sets of resources, after every
/// cluster's lookups (and managed secret reads) were made once: mount targets and secret
/// values stay cached across refreshes, everything else is a region-wide listing.
async fn calls_per_refresh(n: usize) -> BTreeMap<String, f64> {
    reset_moto();
    let aws = AwsClients::new().await;
    let prefix = format!("cpr{n}-{:04x}", rand::random::<u16>());
    for i in 0..n {
        seed(&aws, &format!("{prefix}-{i}")).await;
    }
    let metrics = Metrics::new();
    let refresh = Duration::from_secs(2);
    let discovery = Discovery::from_env_with(
        DiscoveryConfig {
            refresh_interval: refresh,
            default_region: Some(REGION.into()),
        },
        ClientOptions {
            endpoint_url: Some(moto_url()),
            ..ClientOptions::default()
        },
        metrics.clone(),
    )
    .await;
    let lookups = |discovery: Discovery| {
        let prefix = prefix.clone();
        async move {
            for i in 0..n {
                let selector = tags(&[(TAG, &format!("{prefix}-{i}"))]);
                let db = discovery.find_database(None, &selector).await.unwrap();
                let cache = discovery.find_cache(None, &selector).await.unwrap();
                let fs = discovery
                    .find_file_system(
                        None,
                        FileSystemQuery::Tags {
                            selector: &selector,
                            access_point_id: None,
                        },
                    )
                    .await
                    .unwrap();
                for found in [format!("{db:?}"), format!("{cache:?}"), format!("{fs:?}")] {
                    assert!(found.starts_with("Found"), "{found}");
                }
                let grafana_ha_operator::facts::Lookup::Found(db) = db else {
                    unreachable!("checked above")
                };
                let arn = db.managed_secret_arn.expect("RDS manages the password");
                discovery.managed_credentials(None, &arn).await.unwrap();
            }
        }
    };
    lookups(discovery.clone()).await;
    tokio::time::sleep(refresh + Duration::from_millis(500)).await;
    let before = calls_by_operation(&metrics);
    lookups(discovery.clone()).await;
    delta(&calls_by_operation(&metrics), &before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_calls_per_refresh_do_not_grow_with_resources() {
    let _ = start().await;
    let five = calls_per_refresh(5).await;
    let twenty = calls_per_refresh(20).await;
    println!("AWS calls per refresh: N=5 {five:?}; N=20 {twenty:?}");
    assert_eq!(five, twenty, "calls per refresh grew with N");
    assert!(
        !twenty.contains_key("ListTagsForResource"),
        "ElastiCache tags come from the tagging API: {twenty:?}"
    );
    assert_eq!(twenty.get("GetResources"), Some(&1.0), "{twenty:?}");
    // Per-resource calls: none once read. Secret values follow ListSecrets' versions, access
    // points come from the region's listing, mount targets from NumberOfMountTargets.
    for op in ["GetSecretValue", "DescribeMountTargets"] {
        assert!(!twenty.contains_key(op), "{op} per refresh: {twenty:?}");
    }
    assert_eq!(twenty.get("ListSecrets"), Some(&1.0), "{twenty:?}");
    assert_eq!(twenty.get("DescribeAccessPoints"), Some(&1.0), "{twenty:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_ambiguous_database_reaches_the_cluster_within_one_refresh() {
    let (client, aws) = start().await;
    let tag = format!("trig-{:06x}", rand::random::<u32>() & 0xff_ffff);
    seed(&aws, &tag).await;
    let ns = namespace(&client, "trig").await;
    let refresh = Duration::from_secs(2);
    let operator = Operator::start(OperatorOptions {
        namespace: Some(ns.clone()),
        through_fault_proxy: false,
        discovery_refresh: refresh,
        // Far longer than the test: only the discovery trigger can bring the change in.
        resync: Duration::from_secs(600),
        ..OperatorOptions::default()
    })
    .await;
    create_cluster(&client, &ns, &tag).await;
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    wait_for("Ready", WAIT, || async {
        api.get("grafana").await.ok().filter(ready).map(|_| ())
    })
    .await;
    // Let the rollout's own events settle, so what follows is the trigger's doing.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let started = Instant::now();
    aws.create_db_instance(&format!("{tag}-db-2"), "postgres", &[(TAG, &tag)], true)
        .await;
    wait_for(
        "DatabaseResolved=Ambiguous",
        Duration::from_secs(30),
        || async {
            let gc = api.get("grafana").await.ok()?;
            (condition(&gc, "DatabaseResolved")?.1 == "Ambiguous").then_some(())
        },
    )
    .await;
    let took = started.elapsed();
    println!("a new ambiguous database reached the cluster in {took:?}");
    // Refresh interval + the watch's tick (a quarter of it) + one reconcile, with slack for
    // a shared machine; the resync (600 s) never fired.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        sum(
            &operator.metrics,
            "grafana_ha_operator_discovery_triggers_total",
            &[]
        ) >= 1.0
    );
    operator.stop().await;
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client)
        .delete(&ns, &DeleteParams::default())
        .await;
}

/// The regression guard of issue 11: twenty clusters converge, then a window with no
/// change writes nothing, reconciles each cluster no more than once per resync, and makes
/// the same AWS calls per refresh as with fewer resources (no call per resource).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clusters_settle_without_churn() {
    const N: usize = 20;
    let (client, aws) = start().await;
    let prefix = format!("calm-{:04x}", rand::random::<u16>());
    let mut namespaces = Vec::new();
    for i in 0..N {
        let tag = format!("{prefix}-{i}");
        seed(&aws, &tag).await;
        namespaces.push((namespace(&client, "calm").await, tag));
    }
    let resync = Duration::from_secs(10);
    let refresh = Duration::from_secs(2);
    let operator = Operator::start(OperatorOptions {
        namespace: None,
        through_fault_proxy: false,
        discovery_refresh: refresh,
        resync,
        ..OperatorOptions::default()
    })
    .await;
    let started = Instant::now();
    for (ns, tag) in &namespaces {
        create_cluster(&client, ns, tag).await;
    }
    let all: Api<GrafanaCluster> = Api::all(client.clone());
    let mine = |gc: &GrafanaCluster| {
        namespaces
            .iter()
            .any(|(ns, _)| gc.metadata.namespace.as_deref() == Some(ns.as_str()))
    };
    wait_for("every cluster Ready", WAIT, || async {
        let list = all.list(&Default::default()).await.ok()?;
        let ready = list.items.iter().filter(|gc| mine(gc) && ready(gc)).count();
        (ready == N).then_some(())
    })
    .await;
    println!("{N} clusters Ready in {:?}", started.elapsed());
    // The rollouts' last events, then a quiet window of two resyncs.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let metrics = &operator.metrics;
    let applied = || {
        sum(
            metrics,
            "grafana_ha_operator_applies_total",
            &["result=\"applied\""],
        )
    };
    let reconciles = || sum(metrics, "grafana_ha_operator_reconciles_total", &[]);
    let (applied_before, reconciles_before) = (applied(), reconciles());
    let calls_before = calls_by_operation(metrics);
    let window = resync * 2;
    tokio::time::sleep(window).await;
    let steady_writes = applied() - applied_before;
    let steady_reconciles = reconciles() - reconciles_before;
    let calls = delta(&calls_by_operation(metrics), &calls_before);
    println!(
        "steady {window:?}: {steady_writes} applies, {steady_reconciles} reconciles, AWS calls {calls:?}"
    );
    assert_eq!(steady_writes, 0.0, "a steady state writes nothing");
    // One resync per cluster per interval (window / resync = 2), plus one for the phase.
    assert!(
        steady_reconciles <= (N * 3) as f64,
        "{steady_reconciles} reconciles of {N} clusters in {window:?}"
    );
    assert!(
        !calls.contains_key("ListTagsForResource"),
        "no per-resource tag calls: {calls:?}"
    );
    // Region-wide listings: about one per refresh interval each, whatever N.
    let refreshes = window.as_secs_f64() / refresh.as_secs_f64() + 2.0;
    for op in [
        "DescribeDBInstances",
        "DescribeReplicationGroups",
        "GetResources",
        "DescribeFileSystems",
        "DescribeAccessPoints",
        "ListSecrets",
    ] {
        let n = calls.get(op).copied().unwrap_or(0.0);
        assert!(n <= refreshes, "{op}: {n} calls in {window:?} ({calls:?})");
    }
    // Per-resource calls: none in a steady state. A secret's value is read again only when
    // ListSecrets shows a new version, mount targets only when NumberOfMountTargets moves
    // (or after a 6-hour safety refresh).
    for op in ["GetSecretValue", "DescribeMountTargets"] {
        assert!(!calls.contains_key(op), "{op} in {window:?}: {calls:?}");
    }
    operator.stop().await;

    // A new operator process knows nothing but what its watches deliver: every child's
    // stored owned-field digest must equal the desired one as it stands, so a restart
    // with a thousand clusters writes nothing either (reconcile/owned.rs).
    let restarted = Operator::start(OperatorOptions {
        namespace: None,
        through_fault_proxy: false,
        discovery_refresh: refresh,
        resync,
        ..OperatorOptions::default()
    })
    .await;
    // Each cluster's round checks its Deployment once.
    let checked = || {
        sum(
            &restarted.metrics,
            "grafana_ha_operator_applies_total",
            &["kind=\"Deployment\""],
        )
    };
    wait_for(
        "the restarted operator to check every cluster",
        WAIT,
        || async { (checked() >= N as f64).then_some(()) },
    )
    .await;
    let after_restart = sum(
        &restarted.metrics,
        "grafana_ha_operator_applies_total",
        &["result=\"applied\""],
    );
    println!(
        "restarted: {} Deployments checked, {after_restart} applies",
        checked()
    );
    assert_eq!(
        after_restart, 0.0,
        "a restarted operator found a child it would rewrite: an owned-field digest differs"
    );
    restarted.stop().await;
    let namespaces_api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    for (ns, _) in &namespaces {
        let _ = namespaces_api.delete(ns, &DeleteParams::default()).await;
    }
}
