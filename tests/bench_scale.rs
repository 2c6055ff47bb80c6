//! Scale benchmark (not a pass/fail test): the operator binary against the local control
//! plane and moto with many GrafanaClusters and many foreign Secrets. Prints figures:
//! time to Ready, the operator's memory, AWS calls per cluster, and steady-state writes.
//!
//! Run: `make bench` (BENCH_CLUSTERS, BENCH_FOREIGN_SECRETS to change the sizes).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};

use support::aws::{AwsClients, reset_moto};
use support::kube::{client, install_crd, namespace, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_grafana-ha-operator");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of a process in KiB: (current, peak).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn metrics(port: u16) -> String {
    let (status, body) =
        support::aws::http("GET", &format!("http://127.0.0.1:{port}/metrics"), &[], "");
    assert_eq!(status, 200, "metrics: {body}");
    body
}

/// Sum of a metric's samples whose line contains every filter.
fn sum(text: &str, metric: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct OperatorProcess(Child);

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn create_cluster(client: &Client, ns: &str, tag: &str) {
    let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": {
            "replicas": 2,
            "aws": {"tags": {"grafana-ha.io/cluster": tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        },
    }))
    .expect("manifest");
    let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &gc)
        .await
        .expect("create");
}

async fn ready_count(client: &Client) -> usize {
    let api: Api<GrafanaCluster> = Api::all(client.clone());
    api.list(&Default::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|gc| {
                    gc.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn scale_benchmark() {
    let clusters = env_usize("BENCH_CLUSTERS", 50);
    let foreign = env_usize("BENCH_FOREIGN_SECRETS", 2000);
    let client = client().await;
    install_crd(&client).await;
    reset_moto();
    let aws = AwsClients::new().await;

    // Foreign Secrets the operator must not cache: 2 KiB each.
    let junk_ns = namespace(&client, "foreign").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &junk_ns);
    let payload = "x".repeat(2048);
    let started = Instant::now();
    for i in 0..foreign {
        let s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("foreign-{i}")},
            "stringData": {"blob": payload},
        }))
        .expect("secret");
        secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("foreign secret");
    }
    println!(
        "bench: created {foreign} foreign Secrets of 2 KiB in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // One database, cache and file system per cluster, each with its own tag.
    let started = Instant::now();
    let mut namespaces = Vec::new();
    for i in 0..clusters {
        let tag = format!("bench-{i}");
        let tags = [("grafana-ha.io/cluster", tag.as_str())];
        aws.create_db_instance(&format!("bench-db-{i}"), "postgres", &tags, true)
            .await;
        aws.create_replication_group(&format!("bench-cache-{i}"), "redis", &tags, false)
            .await;
        let fs = aws
            .create_file_system(&format!("bench-fs-{i}"), &tags)
            .await;
        aws.create_mount_target(&fs, "us-east-1a").await;
        namespaces.push((namespace(&client, &format!("bench-{i}")).await, tag));
    }
    println!(
        "bench: seeded {clusters} sets of RDS + ElastiCache + EFS in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let port = free_port();
    let operator = OperatorProcess(
        Command::new(BIN)
            .args([
                "run",
                "--leader-election=false",
                "--resync-seconds",
                "15",
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("operator binary"),
    );
    let pid = operator.0.id();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (idle_rss, _) = memory_kib(pid);
    println!(
        "bench: operator RSS with {foreign} foreign Secrets and no cluster: {:.1} MiB",
        idle_rss as f64 / 1024.0
    );

    let started = Instant::now();
    let first = clusters.min(10);
    for (ns, tag) in &namespaces[..first] {
        create_cluster(&client, ns, tag).await;
    }
    wait_for(
        "the first clusters to be Ready",
        Duration::from_secs(300),
        || async { (ready_count(&client).await >= first).then_some(()) },
    )
    .await;
    let t_first = started.elapsed();
    let (rss_first, _) = memory_kib(pid);
    for (ns, tag) in &namespaces[first..] {
        create_cluster(&client, ns, tag).await;
    }
    wait_for(
        "every cluster to be Ready",
        Duration::from_secs(600),
        || async { (ready_count(&client).await >= clusters).then_some(()) },
    )
    .await;
    let t_all = started.elapsed();
    let (rss_all, _) = memory_kib(pid);
    let text = metrics(port);
    let aws_calls = sum(&text, "grafana_ha_operator_aws_calls_total", &[]);
    let describe_db = sum(
        &text,
        "grafana_ha_operator_aws_calls_total",
        &["operation=\"DescribeDBInstances\""],
    );
    let hits = sum(
        &text,
        "grafana_ha_operator_discovery_cache_lookups_total",
        &["result=\"hit\""],
    );
    let misses = sum(
        &text,
        "grafana_ha_operator_discovery_cache_lookups_total",
        &["result=\"miss\""],
    );

    // Steady state: a minute of resyncs must write nothing.
    let applied_before = sum(
        &text,
        "grafana_ha_operator_applies_total",
        &["result=\"applied\""],
    );
    let reconciles_before = sum(&text, "grafana_ha_operator_reconciles_total", &[]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let text = metrics(port);
    let applied_after = sum(
        &text,
        "grafana_ha_operator_applies_total",
        &["result=\"applied\""],
    );
    let reconciles_after = sum(&text, "grafana_ha_operator_reconciles_total", &[]);
    let (rss_end, peak) = memory_kib(pid);

    println!(
        "bench: {first} clusters Ready in {:.1}s; all {clusters} Ready in {:.1}s",
        t_first.as_secs_f64(),
        t_all.as_secs_f64()
    );
    println!(
        "bench: operator RSS {:.1} MiB idle, {:.1} MiB at {first} clusters, {:.1} MiB at {clusters}, {:.1} MiB after 60s steady state, peak {:.1} MiB",
        idle_rss as f64 / 1024.0,
        rss_first as f64 / 1024.0,
        rss_all as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "bench: AWS calls until all Ready: {aws_calls} ({:.1} per cluster), DescribeDBInstances {describe_db}; discovery cache {hits} hits / {misses} misses",
        aws_calls / clusters as f64
    );
    println!(
        "bench: steady state (60s): {} reconciles, {} apply requests",
        reconciles_after - reconciles_before,
        applied_after - applied_before
    );
}
