//! Scale benchmark (issue 11; not a pass/fail test): the release operator binary against
//! the local control plane and moto, N GrafanaClusters each with its own tagged RDS,
//! ElastiCache and EFS, every AWS call through the fault proxy enforcing a 12 requests/s
//! token bucket on RDS. Per size and run:
//! - `floor_s`: the same child objects (from `render`) server-side applied by a minimal
//!   client into other namespaces with the operator's concurrency, until their Deployments
//!   are available; `converge_s`: from creating all N GrafanaClusters to all N Ready;
//! - the operator's RSS (idle, peak, steady) and CPU time from /proc;
//! - API requests per cluster by verb from the API server's own `apiserver_request_total`
//!   (the whole control plane: the controller-manager, scheduler and kwok are in it too);
//! - a steady window with the default resync: writes to the kinds the operator touches
//!   (from the API server), the operator's reconciles and applies, AWS calls per refresh by
//!   operation (the operator's metrics and the fault proxy's own count).
//!
//! Writes bench/results/latest.json (or BENCH_OUT). Every wait is bounded and reported in
//! the figures (`timed_out`) instead of hanging; everything started is stopped or deleted.
//!
//! Run: `make bench` (BENCH_SIZES=10,100,1000 BENCH_RUNS=3 BENCH_STEADY_SECONDS=300).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig};
use grafana_ha_operator::metrics::Metrics;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde::Serialize;
use serde::de::DeserializeOwned;

use support::aws::{AwsClients, REGION, fault_proxy_url, moto_url, reset_moto, set_fault};
use support::kube::{client, install_crd};

const BIN: &str = env!("CARGO_BIN_EXE_grafana-ha-operator");
const TAG: &str = "grafana-ha.io/cluster";
/// The operator's default (main.rs): the floor uses the same limit.
const CONCURRENCY: usize = grafana_ha_operator::reconcile::context::DEFAULT_CONCURRENCY as usize;
/// The operator's default discovery refresh and resync, in seconds.
const REFRESH_S: u64 = 60;
const DEFAULT_RESYNC_S: u64 = 300;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (RSS, peak RSS) in KiB and CPU seconds (user + system) of a process.
fn process_figures(pid: u32) -> (u64, u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (field("VmRSS:"), field("VmHWM:"), cpu)
}

/// The operator's resident memory split into anonymous pages (heap, stacks: what it holds)
/// and file pages (its own binary's code and read-only data, shared and reclaimable), KiB.
fn rss_split(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

fn operator_metrics(port: u16) -> String {
    let (status, body) =
        support::aws::http("GET", &format!("http://127.0.0.1:{port}/metrics"), &[], "");
    if status != 200 {
        return String::new();
    }
    body
}

/// Sum of a metric's samples whose line contains every filter.
fn sum(text: &str, metric: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && filters.iter().all(|f| l.contains(f)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        // Not `sum()`: an empty f64 sum is -0.0, which prints as "-0".
        .fold(0.0, |total, v| total + v)
}

fn label<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
}

/// Samples of a counter summed by the value of one label.
fn by_label(
    text: &str,
    metric: &str,
    name: &str,
    filter: impl Fn(&str) -> bool,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with(&format!("{metric}{{")) || !filter(line) {
            continue;
        }
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(label(line, name).unwrap_or_default().to_string())
            .or_insert(0.0) += value;
    }
    out
}

/// The test bed's audit log (TESTBED_AUDIT_LOG: writes to the operator's kinds, Events and
/// Leases, one JSON object per line) and its length now.
fn audit_log_len() -> Option<(String, u64)> {
    let path = std::env::var("TESTBED_AUDIT_LOG").ok()?;
    let len = std::fs::metadata(&path).ok()?.len();
    Some((path, len))
}

/// Writes in the audit log after `from`, counted by "client verb resource".
fn audited_writes_since(from: Option<(String, u64)>) -> BTreeMap<String, f64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = BTreeMap::new();
    let Some((path, offset)) = from else {
        return out;
    };
    let mut text = String::new();
    let read = std::fs::File::open(&path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_to_string(&mut text)
    });
    if let Err(e) = read {
        println!("bench: cannot read the audit log {path}: {e}");
        return out;
    }
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if entry["stage"] != "ResponseComplete" {
            continue;
        }
        let verb = entry["verb"].as_str().unwrap_or_default();
        if !["create", "update", "patch", "delete", "deletecollection"].contains(&verb) {
            continue;
        }
        let agent = entry["userAgent"].as_str().unwrap_or("unknown");
        let client = agent.split('/').next().unwrap_or(agent);
        let object = &entry["objectRef"];
        let mut resource = object["resource"].as_str().unwrap_or("?").to_string();
        if let Some(sub) = object["subresource"].as_str() {
            resource = format!("{resource}/{sub}");
        }
        // An Event is named after the object it is about: say which kind of object.
        if resource == "events"
            && let Some((about, _)) = object["name"].as_str().unwrap_or_default().rsplit_once('.')
        {
            resource = format!("events about {}", name_pattern(about));
        }
        *out.entry(format!("{client} {verb} {resource}"))
            .or_insert(0.0) += 1.0;
    }
    out
}

/// A child's name with its generated parts (ReplicaSet and pod hashes, which hold a digit)
/// as `*`, so that the same child of every cluster counts under one name.
fn name_pattern(name: &str) -> String {
    let parts: Vec<&str> = name.split('-').collect();
    let last = parts.len().saturating_sub(1);
    parts
        .iter()
        .enumerate()
        .map(|(i, &part)| {
            // A pod's own suffix: five characters of the generator's alphabet (no vowels).
            let pod_suffix = i == last
                && i > 0
                && part.len() == 5
                && part
                    .chars()
                    .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c));
            let generated = (5..=10).contains(&part.len())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && part.chars().any(|c| c.is_ascii_digit());
            if generated || pod_suffix { "*" } else { part }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn minus(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect()
}

fn scaled(map: &BTreeMap<String, f64>, by: f64) -> BTreeMap<String, f64> {
    map.iter()
        .map(|(k, v)| (k.clone(), (v / by * 100.0).round() / 100.0))
        .collect()
}

/// The API server's own request counter (admin client cert).
async fn apiserver_metrics(client: &Client) -> String {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("request");
    client.request_text(request).await.unwrap_or_default()
}

/// Resources the operator reads or writes (apiserver_request_total's `resource` label).
const OPERATOR_RESOURCES: &[&str] = &[
    "grafanaclusters",
    "deployments",
    "services",
    "secrets",
    "configmaps",
    "serviceaccounts",
    "networkpolicies",
    "persistentvolumeclaims",
    "persistentvolumes",
    "poddisruptionbudgets",
    "jobs",
    "events",
];
const WRITE_VERBS: &[&str] = &["POST", "PUT", "PATCH", "DELETE", "APPLY"];

fn requests_by_verb(text: &str, only_operator_kinds: bool) -> BTreeMap<String, f64> {
    by_label(text, "apiserver_request_total", "verb", |line| {
        !only_operator_kinds
            || label(line, "resource").is_some_and(|r| OPERATOR_RESOURCES.contains(&r))
    })
}

/// Write requests to the operator's kinds by `resource[/subresource] verb`: which
/// controller writes in a steady window shows in the resource.
fn writes_by_resource(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if !line.starts_with("apiserver_request_total{") {
            continue;
        }
        let (Some(resource), Some(verb)) = (label(line, "resource"), label(line, "verb")) else {
            continue;
        };
        if !OPERATOR_RESOURCES.contains(&resource) || !WRITE_VERBS.contains(&verb) {
            continue;
        }
        let sub = label(line, "subresource").unwrap_or_default();
        let key = if sub.is_empty() {
            format!("{resource} {verb}")
        } else {
            format!("{resource}/{sub} {verb}")
        };
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *out.entry(key).or_insert(0.0) += value;
    }
    out
}

fn writes(by_verb: &BTreeMap<String, f64>) -> f64 {
    by_verb
        .iter()
        .filter(|(verb, _)| WRITE_VERBS.contains(&verb.as_str()))
        .map(|(_, n)| n)
        // Not `sum()`: an empty f64 sum is -0.0.
        .fold(0.0, |total, n| total + n)
}

fn proxy_operations() -> BTreeMap<String, f64> {
    let state = support::aws::fault_state();
    let mut out = BTreeMap::new();
    if let Some(services) = state.get("operations").and_then(|o| o.as_object()) {
        for (service, ops) in services {
            for (op, n) in ops.as_object().into_iter().flatten() {
                out.insert(format!("{service}:{op}"), n.as_f64().unwrap_or(0.0));
            }
        }
    }
    out
}

fn proxy_throttled(service: &str) -> f64 {
    support::aws::fault_state()
        .pointer(&format!("/counters/{service}/faults"))
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

/// The operator, started in a process group of its own: under heaptrack the child is a
/// wrapper script, and killing only the wrapper left the operator running.
struct OperatorProcess(Child);

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        // SIGTERM first, so heaptrack writes its profile; SIGKILL after 10 s.
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// The operator's own process in the group `leader` leads: the leader itself, or, under
/// heaptrack, the process running `bin` (its RSS is what the figures are about).
fn operator_pid(leader: u32, bin: &str) -> u32 {
    let Ok(bin) = std::fs::canonicalize(bin) else {
        return leader;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let found = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // The process group is the fifth field, after the command in parentheses.
                let group = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok());
                group == Some(leader)
                    && std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&bin)
            });
        if let Some(pid) = found {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    leader
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn manifest(ns: &str, tag: &str) -> GrafanaCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": ns},
        "spec": {
            "replicas": 2,
            "aws": {"tags": {TAG: tag}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "plugins": {"install": ["grafana-clock-panel@2.1.8"]},
        },
    }))
    .expect("manifest")
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// Ready GrafanaClusters in the bench's namespaces (`prefix-`).
async fn ready_count(client: &Client, prefix: &str) -> usize {
    let api: Api<GrafanaCluster> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|gc| {
                    gc.metadata
                        .namespace
                        .as_deref()
                        .is_some_and(|ns| ns.starts_with(prefix))
                        && gc.status.as_ref().is_some_and(|s| {
                            s.conditions
                                .iter()
                                .any(|c| c.type_ == "Ready" && c.status == "True")
                        })
                })
                .count()
        })
        .unwrap_or(0)
}

/// Available Deployments in namespaces starting with `prefix`.
async fn available_deployments(client: &Client, prefix: &str) -> usize {
    let api: Api<Deployment> = Api::all(client.clone());
    api.list(&ListParams::default().labels("app.kubernetes.io/managed-by"))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|d| {
                    d.metadata
                        .namespace
                        .as_deref()
                        .is_some_and(|ns| ns.starts_with(prefix))
                        && d.status.as_ref().and_then(|s| s.available_replicas)
                            == d.spec.as_ref().and_then(|s| s.replicas)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Polls until `done` or `timeout`; returns the time it took and whether it finished.
async fn bounded_wait<F, Fut>(
    what: &str,
    timeout: Duration,
    poll: Duration,
    mut done: F,
) -> (f64, bool)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if done().await {
            return (started.elapsed().as_secs_f64(), true);
        }
        if started.elapsed() > timeout {
            println!("bench: TIMED OUT after {timeout:?} waiting for {what}");
            return (started.elapsed().as_secs_f64(), false);
        }
        tokio::time::sleep(poll).await;
    }
}

async fn apply_with<K>(api: Api<K>, doc: serde_yaml::Value)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let object: K = serde_yaml::from_value(doc).expect("rendered object");
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply("bench-floor").force();
    if let Err(e) = api.patch(&name, &params, &Patch::Apply(&object)).await {
        println!("bench: floor apply of {name} failed: {e}");
    }
}

async fn apply_typed<K>(client: &Client, ns: &str, doc: serde_yaml::Value)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    apply_with(Api::<K>::namespaced(client.clone(), ns), doc).await;
}

/// The floor: one cluster's rendered children, applied in order into `ns`. Cluster-scoped
/// volumes get a `floor-` prefix (and the claims follow) so they do not meet the operator's.
async fn apply_rendered(client: &Client, ns: &str, rendered: &str) {
    for doc in serde_yaml::Deserializer::from_str(rendered) {
        let Ok(mut value) = serde_yaml::Value::deserialize(doc) else {
            continue;
        };
        let Some(kind) = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string)
        else {
            continue;
        };
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_mapping_mut()) {
            meta.remove("ownerReferences");
            // Out of the operator's label-scoped watches: the operator under test would
            // otherwise cache the floor's objects too and its memory would count them.
            if let Some(labels) = meta.get_mut("labels").and_then(|l| l.as_mapping_mut()) {
                labels.insert("app.kubernetes.io/managed-by".into(), "bench-floor".into());
            }
            if kind == "PersistentVolume" {
                if let Some(name) = meta
                    .get("name")
                    .and_then(|n| n.as_str())
                    .map(str::to_string)
                {
                    meta.insert("name".into(), format!("floor-{name}").into());
                }
            } else {
                meta.insert("namespace".into(), ns.into());
            }
        }
        if kind == "PersistentVolumeClaim"
            && let Some(spec) = value.get_mut("spec").and_then(|m| m.as_mapping_mut())
            && let Some(name) = spec
                .get("volumeName")
                .and_then(|n| n.as_str())
                .map(str::to_string)
        {
            spec.insert("volumeName".into(), format!("floor-{name}").into());
        }
        match kind.as_str() {
            "Secret" => apply_typed::<Secret>(client, ns, value).await,
            "ConfigMap" => apply_typed::<ConfigMap>(client, ns, value).await,
            "ServiceAccount" => apply_typed::<ServiceAccount>(client, ns, value).await,
            "NetworkPolicy" => apply_typed::<NetworkPolicy>(client, ns, value).await,
            "PersistentVolume" => {
                apply_with(Api::<PersistentVolume>::all(client.clone()), value).await
            }
            "PersistentVolumeClaim" => {
                apply_typed::<PersistentVolumeClaim>(client, ns, value).await
            }
            "Job" => apply_typed::<Job>(client, ns, value).await,
            "Service" => apply_typed::<Service>(client, ns, value).await,
            "PodDisruptionBudget" => apply_typed::<PodDisruptionBudget>(client, ns, value).await,
            "Deployment" => apply_typed::<Deployment>(client, ns, value).await,
            other => println!("bench: floor skips kind {other}"),
        }
    }
}

use serde::Deserialize;

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
#[serde(default)]
struct Figures {
    n: usize,
    run: usize,
    converge_s: f64,
    floor_s: f64,
    ratio: f64,
    peak_rss_mb: f64,
    idle_rss_mb: f64,
    steady_rss_mb: f64,
    /// The steady RSS split: anonymous pages (heap, stacks) and file pages (the binary's
    /// code and read-only data).
    steady_anon_rss_mb: f64,
    steady_file_rss_mb: f64,
    /// CPU seconds (user + system) of the operator from its start to convergence.
    cpu_s: f64,
    /// CPU seconds of the operator during the steady window.
    steady_cpu_s: f64,
    /// Requests to the API server per cluster while converging, by verb (whole control plane).
    requests_per_cluster: BTreeMap<String, f64>,
    /// The same, for the kinds the operator touches only.
    operator_kinds_requests_per_cluster: BTreeMap<String, f64>,
    writes_per_cluster: f64,
    /// The floor's requests per cluster to the same kinds (the controller-manager's writes
    /// to Deployments, Jobs and Events are in both), and its writes: the operator's own
    /// overhead is the difference.
    floor_requests_per_cluster: BTreeMap<String, f64>,
    floor_writes_per_cluster: f64,
    steady_window_s: u64,
    resync_s: u64,
    steady_writes: f64,
    steady_apiserver_writes: f64,
    /// The same by resource and verb (Events, Deployment status by the controller-manager...).
    steady_apiserver_writes_by_resource: BTreeMap<String, f64>,
    /// The same from the test bed's audit log, by client (user agent up to its first '/'),
    /// verb and resource: who made the steady writes.
    steady_writes_by_client: BTreeMap<String, f64>,
    steady_reconciles: f64,
    steady_gets: f64,
    gets_per_steady_reconcile: f64,
    aws_calls_per_refresh: BTreeMap<String, f64>,
    proxy_calls_per_refresh: BTreeMap<String, f64>,
    rds_throttled: f64,
    timed_out: Vec<String>,
    machine: String,
    commit: String,
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024 / 1024)
        .unwrap_or(0);
    format!(
        "{cpus} CPUs, {mem} GiB, {} (shared with other jobs)",
        std::env::consts::ARCH
    )
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn run_once(client: &Client, n: usize, run: usize) -> Figures {
    // The steady window is long (the issue asks for 5 minutes with the default resync) and
    // its figures are counts that do not vary between runs: only the first run of a size
    // holds it; the others measure convergence, memory and CPU only.
    let steady_s: u64 = if run == 0 {
        env_or("BENCH_STEADY_SECONDS", 300)
    } else {
        env_or("BENCH_STEADY_SECONDS_LATER_RUNS", 0)
    };
    let resync_s: u64 = env_or("BENCH_RESYNC_SECONDS", DEFAULT_RESYNC_S);
    let timeout = Duration::from_secs(env_or("BENCH_TIMEOUT_SECONDS", 120 + 2 * n as u64));
    // Listing every Deployment or GrafanaCluster is not free at N = 1000: poll less often
    // there so the bench's own load stays small beside what it measures.
    let poll = Duration::from_millis(if n >= 500 { 1000 } else { 250 });
    let mut figures = Figures {
        n,
        run,
        steady_window_s: steady_s,
        resync_s,
        machine: machine(),
        commit: commit(),
        ..Figures::default()
    };
    reset_moto();
    support::aws::clear_fault();
    let aws = AwsClients::new().await;
    let id = format!("b{n}r{run}-{:04x}", rand::random::<u16>());

    // AWS: one tagged database, cache, file system (a mount target, a tagged access point).
    let started = Instant::now();
    let seeded: Vec<String> = futures::stream::iter(0..n)
        .map(|i| {
            let aws = &aws;
            let id = &id;
            async move {
                let tag = format!("{id}-{i}");
                let tags = [(TAG, tag.as_str())];
                aws.create_db_instance(&format!("{tag}-db"), "postgres", &tags, true)
                    .await;
                aws.create_replication_group(&format!("{tag}-cache"), "redis", &tags, false)
                    .await;
                let fs = aws.create_file_system(&format!("{tag}-fs"), &tags).await;
                aws.create_mount_target(&fs, "us-east-1a").await;
                aws.create_access_point(&fs, &format!("{tag}-ap"), &tags)
                    .await;
                tag
            }
        })
        .buffered(4)
        .collect()
        .await;
    println!(
        "bench[{n}#{run}]: seeded {n} AWS sets in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The floor: the same children, rendered, applied with the same concurrency.
    let discovery = Discovery::from_env_with(
        DiscoveryConfig {
            refresh_interval: Duration::from_secs(3600),
            default_region: Some(REGION.into()),
        },
        ClientOptions {
            endpoint_url: Some(moto_url()),
            ..ClientOptions::default()
        },
        Metrics::new(),
    )
    .await;
    let floor_prefix = format!("floor-{id}-");
    let mut rendered = Vec::new();
    for (i, tag) in seeded.iter().enumerate() {
        let ns = format!("{floor_prefix}{i}");
        create_namespace(client, &ns).await;
        let out =
            grafana_ha_operator::render::render(&manifest(&ns, tag), &discovery, Some(client))
                .await
                .expect("render");
        rendered.push((ns, out));
    }
    let rendered = Arc::new(rendered);
    let floor_api_before = apiserver_metrics(client).await;
    let started = Instant::now();
    futures::stream::iter(rendered.iter())
        .for_each_concurrent(CONCURRENCY, |(ns, out)| apply_rendered(client, ns, out))
        .await;
    let (_, ok) = bounded_wait("the floor's Deployments", timeout, poll, || async {
        available_deployments(client, &floor_prefix).await >= n
    })
    .await;
    figures.floor_s = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    let floor_api_after = apiserver_metrics(client).await;
    let floor_mine = minus(
        &requests_by_verb(&floor_api_after, true),
        &requests_by_verb(&floor_api_before, true),
    );
    figures.floor_writes_per_cluster = (writes(&floor_mine) / n as f64 * 100.0).round() / 100.0;
    figures.floor_requests_per_cluster = scaled(&floor_mine, n as f64);
    if !ok {
        figures.timed_out.push("floor".into());
    }
    println!("bench[{n}#{run}]: floor {:.1}s", figures.floor_s);

    // The operator, through the fault proxy with RDS limited to 12 requests/s.
    let prefix = format!("op-{id}-");
    for i in 0..n {
        create_namespace(client, &format!("{prefix}{i}")).await;
    }
    set_fault(
        r#"{"mode":"rate_limit","rate_per_second":12,"burst":12,"service":"rds","reset_counters":true}"#,
    );
    let port = free_port();
    // BENCH_HEAPTRACK=<file prefix>: run the operator under heaptrack for a profile of
    // what each cluster costs (its RSS figures then include heaptrack's own).
    // BENCH_OPERATOR_BIN: another build of the operator, e.g. one with symbols for heaptrack
    // (the release profile strips them).
    let bin = std::env::var("BENCH_OPERATOR_BIN").unwrap_or_else(|_| BIN.to_string());
    let mut command = match std::env::var("BENCH_HEAPTRACK") {
        Ok(out) if !out.is_empty() => {
            let mut c = Command::new("heaptrack");
            c.args(["-o", &format!("{out}-n{n}-r{run}"), &bin]);
            c
        }
        _ => Command::new(&bin),
    };
    let operator = OperatorProcess(
        command
            .args([
                "run",
                "--leader-election=false",
                "--resync-seconds",
                &resync_s.to_string(),
                "--discovery-refresh-seconds",
                &REFRESH_S.to_string(),
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .env("AWS_ENDPOINT_URL", fault_proxy_url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("operator binary"),
    );
    let pid = operator_pid(operator.0.id(), &bin);
    tokio::time::sleep(Duration::from_secs(3)).await;
    figures.idle_rss_mb = process_figures(pid).0 as f64 / 1024.0;

    let api_before = apiserver_metrics(client).await;
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(CONCURRENCY, |i| {
            let ns = format!("{prefix}{i}");
            let gc = manifest(&ns, &seeded[i]);
            async move {
                let api: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
                api.create(&PostParams::default(), &gc)
                    .await
                    .expect("create");
            }
        })
        .await;
    let (_, ok) = bounded_wait("every GrafanaCluster Ready", timeout, poll, || async {
        ready_count(client, &prefix).await >= n
    })
    .await;
    figures.converge_s = (started.elapsed().as_secs_f64() * 100.0).round() / 100.0;
    if !ok {
        figures.timed_out.push(format!(
            "converge ({} of {n} Ready)",
            ready_count(client, &prefix).await
        ));
    }
    figures.ratio = ((figures.converge_s / figures.floor_s.max(0.001)) * 100.0).round() / 100.0;
    let api_after = apiserver_metrics(client).await;
    let all = minus(
        &requests_by_verb(&api_after, false),
        &requests_by_verb(&api_before, false),
    );
    let mine = minus(
        &requests_by_verb(&api_after, true),
        &requests_by_verb(&api_before, true),
    );
    figures.writes_per_cluster = (writes(&mine) / n as f64 * 100.0).round() / 100.0;
    figures.requests_per_cluster = scaled(&all, n as f64);
    figures.operator_kinds_requests_per_cluster = scaled(&mine, n as f64);
    let (_, converge_peak, converge_cpu) = process_figures(pid);
    figures.cpu_s = (converge_cpu * 100.0).round() / 100.0;
    println!(
        "bench[{n}#{run}]: converged in {:.1}s (floor {:.1}s, ratio {}), peak RSS {:.1} MiB, CPU {:.1}s",
        figures.converge_s,
        figures.floor_s,
        figures.ratio,
        converge_peak as f64 / 1024.0,
        converge_cpu
    );

    // Steady state: nothing changes for the window.
    tokio::time::sleep(Duration::from_secs(if steady_s > 0 { 5 } else { 0 })).await;
    let op_before = operator_metrics(port);
    let api_before = apiserver_metrics(client).await;
    let proxy_before = proxy_operations();
    let audit_from = audit_log_len();
    tokio::time::sleep(Duration::from_secs(steady_s)).await;
    figures.steady_writes_by_client = audited_writes_since(audit_from);
    if steady_s > 0 {
        println!(
            "bench[{n}#{run}]: steady writes by client (audit log): {:?}",
            figures.steady_writes_by_client
        );
    }
    let op_after = operator_metrics(port);
    let api_after = apiserver_metrics(client).await;
    let proxy_after = proxy_operations();
    let applied = |t: &str| {
        sum(
            t,
            "grafana_ha_operator_applies_total",
            &["result=\"applied\""],
        )
    };
    let reconciles = |t: &str| sum(t, "grafana_ha_operator_reconciles_total", &[]);
    figures.steady_writes = applied(&op_after) - applied(&op_before);
    figures.steady_reconciles = reconciles(&op_after) - reconciles(&op_before);
    let steady = minus(
        &requests_by_verb(&api_after, true),
        &requests_by_verb(&api_before, true),
    );
    figures.steady_apiserver_writes = writes(&steady);
    figures.steady_apiserver_writes_by_resource = minus(
        &writes_by_resource(&api_after),
        &writes_by_resource(&api_before),
    );
    figures.steady_gets = steady.get("GET").copied().unwrap_or(0.0);
    figures.gets_per_steady_reconcile = if figures.steady_reconciles > 0.0 {
        (figures.steady_gets / figures.steady_reconciles * 100.0).round() / 100.0
    } else {
        0.0
    };
    let refreshes = (steady_s as f64 / REFRESH_S as f64).max(1.0);
    let calls = |t: &str| {
        by_label(
            t,
            "grafana_ha_operator_aws_calls_total",
            "operation",
            |_| true,
        )
    };
    figures.aws_calls_per_refresh =
        scaled(&minus(&calls(&op_after), &calls(&op_before)), refreshes);
    figures.proxy_calls_per_refresh = scaled(&minus(&proxy_after, &proxy_before), refreshes);
    figures.rds_throttled = proxy_throttled("rds");
    let (rss, peak, cpu) = process_figures(pid);
    figures.steady_rss_mb = (rss as f64 / 1024.0 * 10.0).round() / 10.0;
    let (anon, file) = rss_split(pid);
    figures.steady_anon_rss_mb = (anon as f64 / 1024.0 * 10.0).round() / 10.0;
    figures.steady_file_rss_mb = (file as f64 / 1024.0 * 10.0).round() / 10.0;
    figures.peak_rss_mb = (peak as f64 / 1024.0 * 10.0).round() / 10.0;
    figures.steady_cpu_s = ((cpu - converge_cpu) * 100.0).round() / 100.0;
    figures.idle_rss_mb = (figures.idle_rss_mb * 10.0).round() / 10.0;
    println!(
        "bench[{n}#{run}]: {}",
        serde_json::to_string(&figures).unwrap_or_default()
    );

    // Clean up: the operator, the namespaces (their children go with them), the volumes.
    drop(operator);
    support::aws::clear_fault();
    // BENCH_DISPOSABLE_BED=1: this bed is thrown away after the run (bench/run-per-bed.sh),
    // so the slowest part of a large run, the namespace controller deleting 2N namespaces
    // (about 15 minutes at N = 1000), is skipped.
    if env_or("BENCH_DISPOSABLE_BED", 0) == 1 {
        println!("bench[{n}#{run}]: the bed is disposable; no cleanup");
        return figures;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for i in 0..n {
        for ns in [format!("{prefix}{i}"), format!("{floor_prefix}{i}")] {
            let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
        }
    }
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let _ = volumes
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("app.kubernetes.io/managed-by"),
        )
        .await;
    // The next run starts on a quiet control plane: wait (bounded) for the namespaces to go.
    let (gone_s, gone) = bounded_wait("the namespaces to be deleted", timeout, poll, || async {
        namespaces
            .list(&ListParams::default())
            .await
            .is_ok_and(|l| {
                !l.items.iter().any(|ns| {
                    let name = ns.metadata.name.as_deref().unwrap_or_default();
                    name.starts_with(&prefix) || name.starts_with(&floor_prefix)
                })
            })
    })
    .await;
    println!("bench[{n}#{run}]: cleaned up in {gone_s:.1}s");
    if !gone {
        figures.timed_out.push("cleanup".into());
    }
    figures
}

const BENCH_NODE_ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// The test bed's three kwok nodes fit about a hundred pods each; N = 1000 runs four
/// thousand (the operator's and the floor's replicas, and the installer Jobs). One large
/// fake node per zone takes them (the pods follow the EFS mount targets' zones).
async fn ensure_bench_nodes(client: &Client) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for zone in BENCH_NODE_ZONES {
        let name = format!("bench-node-{zone}");
        let node = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "topology.kubernetes.io/region": REGION,
                    "topology.kubernetes.io/zone": zone,
                    "type": "kwok",
                },
            },
            "status": {
                "allocatable": {"cpu": "4000", "memory": "8Ti", "pods": "6000"},
                "capacity": {"cpu": "4000", "memory": "8Ti", "pods": "6000"},
            },
        });
        let node: k8s_openapi::api::core::v1::Node =
            serde_json::from_value(node).expect("bench node");
        if let Err(e) = nodes.create(&PostParams::default(), &node).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 409)
        {
            panic!("bench node {name}: {e}");
        }
    }
}

async fn delete_bench_nodes(client: &Client) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    for zone in BENCH_NODE_ZONES {
        let _ = nodes
            .delete(&format!("bench-node-{zone}"), &DeleteParams::default())
            .await;
    }
}

/// The Markdown table for bench/README.md: one column per size, one row per figure, the
/// target (at N = 1000) beside it.
fn table(results: &[serde_json::Value]) -> String {
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::Object(o) if o.is_empty() => "-".into(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Array(a) if a.is_empty() => "-".into(),
        other => other.to_string().trim_matches('"').to_string(),
    };
    let rows: [(&str, &str, &str); 22] = [
        ("runs", "runs (figures are medians over them)", "3"),
        ("converge_s", "converge (s)", ""),
        ("floor_s", "floor (s)", ""),
        ("ratio", "ratio converge / floor", "<= 1.5"),
        ("idle_rss_mb", "RSS before any cluster (MiB)", ""),
        ("peak_rss_mb", "peak RSS (MiB)", "<= 64"),
        ("steady_rss_mb", "steady RSS (MiB)", ""),
        (
            "steady_anon_rss_mb",
            "steady RSS: anonymous (heap, stacks) (MiB)",
            "",
        ),
        (
            "steady_file_rss_mb",
            "steady RSS: the binary's own pages (MiB)",
            "",
        ),
        ("cpu_s", "operator CPU to converge (s)", ""),
        ("steady_cpu_s", "operator CPU in the steady window (s)", ""),
        (
            "writes_per_cluster",
            "API writes per cluster to converge (operator's kinds)",
            "",
        ),
        (
            "floor_writes_per_cluster",
            "the floor's writes per cluster (same kinds)",
            "",
        ),
        ("steady_window_s", "steady window (s), resync (s)", ""),
        ("steady_writes", "steady applies by the operator", "0"),
        (
            "steady_apiserver_writes",
            "steady API writes (operator's kinds, whole control plane)",
            "0",
        ),
        ("steady_reconciles", "steady reconciles", "<= N per resync"),
        (
            "gets_per_steady_reconcile",
            "API GETs per steady reconcile",
            "",
        ),
        (
            "aws_calls_per_refresh",
            "AWS calls per refresh (operator)",
            "independent of N",
        ),
        (
            "proxy_calls_per_refresh",
            "AWS calls per refresh (fault proxy)",
            "independent of N",
        ),
        ("rds_throttled", "RDS requests throttled at 12/s", "0"),
        ("timed_out", "bounded waits that timed out", "none"),
    ];
    let mut out = String::from("| figure |");
    for r in results {
        out.push_str(&format!(" N = {} |", number(&r["n"])));
    }
    out.push_str(" target at N = 1000 |\n|---|");
    for _ in results {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    for (key, what, target) in rows {
        out.push_str(&format!("| {what} |"));
        for r in results {
            let cell = if key == "steady_window_s" {
                format!("{}, {}", number(&r[key]), number(&r["resync_s"]))
            } else {
                number(&r[key])
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push_str(&format!(" {target} |\n"));
    }
    if let Some(first) = results.first() {
        out.push_str(&format!(
            "\nMachine: {}; commit {}. Steady figures come from the first run of each size.\n",
            number(&first["machine"]),
            number(&first["commit"]),
        ));
    }
    out
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn scale_benchmark() {
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // BENCH_RUNS: one count for every size, or one per size ("3,3,1").
    let runs_per_size: Vec<usize> = std::env::var("BENCH_RUNS")
        .unwrap_or_else(|_| "3".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // BENCH_RUNS_FILE: every run's figures so far, kept across invocations (one bed per run
    // at N = 1000, see bench/run-per-bed.sh); the medians are taken over all of them.
    let runs_file = std::env::var("BENCH_RUNS_FILE").ok();
    let earlier_runs: Vec<Figures> = runs_file
        .as_deref()
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let requested = sizes;
    let mut sizes = requested.clone();
    for earlier in &earlier_runs {
        if !sizes.contains(&earlier.n) {
            sizes.push(earlier.n);
        }
    }
    sizes.sort_unstable();
    let client = client().await;
    install_crd(&client).await;
    ensure_bench_nodes(&client).await;
    let mut results = Vec::new();
    let mut all_runs = Vec::new();
    for &n in &sizes {
        // New runs only for the sizes asked for now; the others are earlier runs' figures.
        let runs = match requested.iter().position(|&r| r == n) {
            Some(index) => runs_per_size
                .get(index)
                .or(runs_per_size.last())
                .copied()
                .unwrap_or(3)
                .max(1),
            None => 0,
        };
        // BENCH_FIRST_RUN: the index of this invocation's first run (only run 0 holds the
        // steady window); runs of other invocations come in through BENCH_RUNS_FILE.
        let first: usize = env_or("BENCH_FIRST_RUN", 0);
        let mut per_run: Vec<Figures> = earlier_runs.iter().filter(|f| f.n == n).cloned().collect();
        for run in first..first + runs {
            per_run.push(run_once(&client, n, run).await);
        }
        per_run.sort_by_key(|f| f.run);
        let runs = per_run.len();
        // The first run (the one with the steady window) stands for the size; the figures
        // measured in every run are replaced by their medians.
        all_runs.extend(per_run.iter().cloned());
        let mut converge: Vec<f64> = per_run.iter().map(|f| f.converge_s).collect();
        let mut floor: Vec<f64> = per_run.iter().map(|f| f.floor_s).collect();
        let mut peak: Vec<f64> = per_run.iter().map(|f| f.peak_rss_mb).collect();
        let mut cpu: Vec<f64> = per_run.iter().map(|f| f.cpu_s).collect();
        let mut figures = per_run[0].clone();
        let mut writes: Vec<f64> = per_run.iter().map(|f| f.writes_per_cluster).collect();
        figures.writes_per_cluster = median(&mut writes);
        figures.timed_out = per_run.iter().flat_map(|f| f.timed_out.clone()).collect();
        figures.converge_s = median(&mut converge);
        figures.floor_s = median(&mut floor);
        figures.ratio = ((figures.converge_s / figures.floor_s.max(0.001)) * 100.0).round() / 100.0;
        figures.peak_rss_mb = median(&mut peak);
        figures.cpu_s = median(&mut cpu);
        figures.run = runs;
        results.push(serde_json::json!({"runs": runs, "figures": figures}));
    }
    let flat: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let mut f = r["figures"].clone();
            if let Some(o) = f.as_object_mut() {
                o.remove("run");
                o.insert("runs".into(), r["runs"].clone());
            }
            f
        })
        .collect();
    delete_bench_nodes(&client).await;
    let out = std::env::var("BENCH_OUT")
        .unwrap_or_else(|_| format!("{}/bench/results/latest.json", env!("CARGO_MANIFEST_DIR")));
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir).expect("results dir");
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&flat).expect("json") + "\n",
    )
    .expect("write results");
    println!("bench: wrote {out}");
    // Every run's own figures beside the medians, for whoever wants the spread.
    if let Some(path) = &runs_file {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&all_runs).expect("json") + "\n",
        )
        .expect("write the runs file");
    }
    let runs_out = out.replace(".json", "-runs.json");
    std::fs::write(
        &runs_out,
        serde_json::to_string_pretty(&all_runs).expect("json") + "\n",
    )
    .expect("write per-run results");
    println!("bench: wrote {runs_out}");
    let table_out = out.replace(".json", ".md");
    std::fs::write(&table_out, table(&flat)).expect("write table");
    println!("bench: wrote {table_out}");
}

#[test]
fn generated_name_parts_are_folded_so_every_cluster_counts_alike() {
    assert_eq!(name_pattern("grafana-5f7d8c9b-x2x9z"), "grafana-*-*");
    assert_eq!(name_pattern("grafana-5f7d8c9b-bfrjq"), "grafana-*-*");
    assert_eq!(name_pattern("grafana-plugins-3a1f2b"), "grafana-plugins-*");
    assert_eq!(
        name_pattern("grafana-db-credentials"),
        "grafana-db-credentials"
    );
}
