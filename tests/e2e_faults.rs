//! AWS faults after setup (issue 12), through testbed/fault_proxy.py on the real test bed:
//! credentials that stop working (AccessDenied, ExpiredToken) and connection resets, with
//! the request rate at the proxy bounded (no tight retry loop); an RDS endpoint that
//! changes (failover to another address) rolls the pods once; a discovered database that
//! disappears changes nothing destructive and is reported. docs/reliability.md maps each
//! to its row. Run alone:
//! `testbed/with-testbed.sh cargo test --test e2e_faults -- --test-threads=1`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use kube::{Api, Client};

use support::aws::{clear_fault, fault_proxy_url, fault_state, http, set_fault};
use support::kube::{namespace, wait_for};
use support::world::{
    WAIT, cleanup, cluster_manifest, condition, create_cluster, operator_for, seed, start,
    wait_condition,
};

/// Requests the proxy saw, all services together.
fn requests_seen() -> u64 {
    fault_state()["counters"]
        .as_object()
        .map(|m| m.values().filter_map(|c| c["requests"].as_u64()).sum())
        .unwrap_or(0)
}

fn template(d: &Deployment) -> serde_json::Value {
    serde_json::to_value(&d.spec.as_ref().expect("spec").template).expect("template")
}

fn database_host(d: &Deployment) -> Option<String> {
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
        .find(|e| e.name == "GF_DATABASE_HOST")?
        .value
        .clone()
}

/// A ready article cluster; the operator watching its namespace.
async fn ready(
    prefix: &str,
) -> (
    Client,
    String,
    support::world::Seeded,
    support::kube::Operator,
) {
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
    (client, ns, seeded, operator)
}

/// The in-process operator's timings (support::kube::Operator): discovery refreshed every
/// 2 s, a resync every 3 s, error retries backing off from 0.5 s to 3 s, 2 SDK attempts per
/// call, and one reconcile asks at most four services (RDS, ElastiCache, EFS, Secrets
/// Manager). A tight loop (retrying at once, or per SDK attempt without backoff) runs to
/// thousands of requests a minute; what the backoff allows stays under this bound.
const MAX_REQUESTS_PER_MINUTE: f64 = 240.0;
const RATE_WINDOW: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_stop_working_and_connection_resets_back_off_and_keep_the_deployment() {
    let started = Instant::now();
    let (client, ns, _seeded, operator) = ready("creds").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("deployment");

    let mut rates = Vec::new();
    for (mode, reason) in [
        ("access_denied", "AwsAccessDenied"),
        ("expired_token", "AwsAccessDenied"),
        ("reset", ""),
    ] {
        clear_fault();
        set_fault(&format!(r#"{{"mode":"{mode}","count":-1}}"#));
        // Discovery's cache holds the last answers for the refresh interval: the fault
        // shows at the next refresh.
        let gc = wait_condition(&client, &ns, "Degraded", "True").await;
        let (_, degraded, message) = condition(&gc, "Degraded").expect("Degraded");
        assert_eq!(degraded, "UsingLastKnownConfiguration", "{mode}: {message}");
        let (_, db_reason, db_message) = condition(&gc, "DatabaseResolved").expect("db");
        if !reason.is_empty() {
            assert_eq!(db_reason, reason, "{mode}: {db_message}");
        }

        // The request rate while the fault lasts.
        let from = requests_seen();
        let t0 = Instant::now();
        tokio::time::sleep(RATE_WINDOW).await;
        let per_minute = (requests_seen() - from) as f64 * 60.0 / t0.elapsed().as_secs_f64();
        rates.push((mode, per_minute));
        assert!(
            per_minute < MAX_REQUESTS_PER_MINUTE,
            "{mode}: {per_minute:.0} AWS requests a minute during the fault (bound \
             {MAX_REQUESTS_PER_MINUTE}): a tight retry loop"
        );

        // The running Grafana is left alone: the same pod template.
        let during = deploy.get("grafana").await.expect("deployment");
        assert_eq!(
            template(&during),
            template(&before),
            "{mode}: the pod template changed during the fault"
        );
    }

    // The failures were counted.
    let failures: u64 = [
        support::aws::calls(
            &operator.metrics,
            "rds",
            "DescribeDBInstances",
            grafana_ha_operator::metrics::AwsOutcome::ClientError,
        ),
        support::aws::calls(
            &operator.metrics,
            "rds",
            "DescribeDBInstances",
            grafana_ha_operator::metrics::AwsOutcome::Transport,
        ),
    ]
    .iter()
    .sum();
    assert!(failures > 0, "no failed RDS call counted in the metrics");

    // Converges once AWS answers again, without a restart.
    clear_fault();
    wait_condition(&client, &ns, "Degraded", "False").await;
    wait_condition(&client, &ns, "Ready", "True").await;
    let after = deploy.get("grafana").await.expect("deployment");
    assert_eq!(
        template(&after),
        template(&before),
        "the pod template moved"
    );
    eprintln!(
        "requests a minute during the faults: {rates:?}; test took {:?}",
        started.elapsed()
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Adds an endpoint map to the proxy: every RDS answer names `to` instead of `from`.
fn map_rds_address(from: &str, to: &str) {
    let url = format!("{}/__endpoints", fault_proxy_url());
    let spec = serde_json::json!({
        "rewrites": [[regex_escape(from), to]],
        "service": "rds",
        "replace": true,
    });
    let (status, body) = http(
        "POST",
        &url,
        &[("Content-Type", "application/json")],
        &spec.to_string(),
    );
    assert_eq!(status, 200, "setting the endpoint map failed: {body}");
}

fn clear_endpoint_map() {
    let url = format!("{}/__endpoints", fault_proxy_url());
    let (status, body) = http("DELETE", &url, &[], "");
    assert_eq!(status, 200, "clearing the endpoint map failed: {body}");
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

async fn replica_set_count(client: &Client, ns: &str) -> usize {
    Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("replica sets")
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rds_endpoint_change_rolls_the_pods_once_to_the_new_address() {
    let started = Instant::now();
    let (client, ns, seeded, operator) = ready("failover").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("deployment");
    let old = database_host(&before).expect("GF_DATABASE_HOST");
    assert!(old.contains(&seeded.db_host), "{old}");
    let generation = before.metadata.generation.expect("generation");
    let sets = replica_set_count(&client, &ns).await;

    // A failover: RDS now answers with another address for the same instance.
    let new_host = format!("{}-failover.rds.local", seeded.db_id);
    map_rds_address(&seeded.db_host, &new_host);
    let rolled = wait_for("the Deployment to use the new address", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        database_host(&d)
            .filter(|h| h.contains(&new_host))
            .map(|_| d)
    })
    .await;
    let rolled_generation = rolled.metadata.generation.expect("generation");
    assert_eq!(
        rolled_generation,
        generation + 1,
        "one change of the Deployment for one endpoint change"
    );

    // Once: several discovery refreshes and resyncs later, nothing moved again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let settled = deploy.get("grafana").await.expect("deployment");
    assert_eq!(
        settled.metadata.generation,
        Some(rolled_generation),
        "the Deployment kept changing after the endpoint change"
    );
    assert_eq!(
        replica_set_count(&client, &ns).await,
        sets + 1,
        "one new ReplicaSet (one rollout)"
    );
    wait_condition(&client, &ns, "Ready", "True").await;
    clear_endpoint_map();
    eprintln!("endpoint change test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_database_that_disappears_changes_nothing_and_is_reported() {
    let started = Instant::now();
    let (client, ns, seeded, operator) = ready("vanish").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("deployment");

    let aws = support::aws::AwsClients::new().await;
    aws.rds
        .delete_db_instance()
        .db_instance_identifier(&seeded.db_id)
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("deleting the database in moto");

    let gc = wait_for("DatabaseResolved=NotFound", WAIT, || async {
        let gc = Api::<grafana_ha_operator::api::GrafanaCluster>::namespaced(client.clone(), &ns)
            .get("grafana")
            .await
            .ok()?;
        (condition(&gc, "DatabaseResolved")?.1 == "NotFound").then_some(gc)
    })
    .await;
    let (_, _, message) = condition(&gc, "DatabaseResolved").expect("db");
    assert!(
        message.contains(&seeded.tag),
        "names the selector: {message}"
    );
    let gc = wait_condition(&client, &ns, "Degraded", "True").await;
    assert_eq!(
        condition(&gc, "Degraded").map(|c| c.1).as_deref(),
        Some("UsingLastKnownConfiguration")
    );
    // Several resyncs later: the same Deployment, the same pod template, the children kept.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = deploy.get("grafana").await.expect("deployment");
    assert_eq!(
        template(&after),
        template(&before),
        "the pod template moved"
    );
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.metadata.uid, before.metadata.uid);
    eprintln!("disappearing database test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}
