//! Reliability and security on the real test bed (issue 12): Pod Security Admission
//! `restricted`, no secret value anywhere but in Secrets, conflicting field managers, a
//! kube-apiserver restarted under the operator, and deletion during an AWS outage.
//! docs/reliability.md maps each fault to its test. Run through `make e2e`, or alone:
//! `testbed/with-testbed.sh cargo test --test e2e_reliability -- --test-threads=1`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    Event, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};

use support::aws::{clear_fault, set_fault};
use support::kube::{Operator, kubectl, namespace, repo_file, wait_for};
use support::world::{
    WAIT, cleanup, cluster_manifest, condition, create_cluster, operator_with_resync,
    secret_values, seed, start, user_secret, wait_condition,
};

const BIN: &str = env!("CARGO_BIN_EXE_grafana-ha-operator");
const MANAGER: &str = "grafana-ha-operator";

// --- the world: AWS seeded for a tag, a namespace, a GrafanaCluster -------------------

fn env_map(d: &Deployment) -> BTreeMap<String, Option<String>> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.iter().find(|c| c.name == "grafana"))
        .map(|c| c.env.clone().unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect()
}

fn container_names(d: &Deployment) -> Vec<String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| p.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

/// The fieldsV1 set of one manager's entry of `operation` ("Apply" or "Update").
fn managed_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    manager: &str,
    operation: &str,
    subresource: Option<&str>,
) -> Option<serde_json::Value> {
    meta.managed_fields
        .iter()
        .flatten()
        .find(|m| {
            m.manager.as_deref() == Some(manager)
                && m.operation.as_deref() == Some(operation)
                && m.subresource.as_deref() == subresource
        })
        .and_then(|m| m.fields_v1.as_ref())
        .map(|f| f.0.clone())
}

/// True when the fieldsV1 set has the path (e.g. ["f:spec", "f:replicas"]).
fn owns(fields: Option<&serde_json::Value>, path: &[&str]) -> bool {
    let mut at = match fields {
        Some(f) => f,
        None => return false,
    };
    for step in path {
        match at.get(*step) {
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

const GRAFANA_CONTAINER: &str = r#"k:{"name":"grafana"}"#;

fn env_value_path(var: &str) -> Vec<String> {
    [
        "f:spec",
        "f:template",
        "f:spec",
        "f:containers",
        GRAFANA_CONTAINER,
        "f:env",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!(r#"k:{{"name":"{var}"}}"#), "f:value".to_string()])
    .collect()
}

fn owns_path(fields: Option<&serde_json::Value>, path: &[String]) -> bool {
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    owns(fields, &path)
}

async fn events_json(client: &Client, ns: &str) -> Vec<serde_json::Value> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .map(|e| serde_json::to_value(e).expect("event json"))
        .collect()
}

// --- 1. Pod Security Admission `restricted` -------------------------------------------

async fn restricted_namespace(client: &Client, prefix: &str) -> String {
    let ns = namespace(client, prefix).await;
    let api: Api<Namespace> = Api::all(client.clone());
    api.patch(
        &ns,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }}})),
    )
    .await
    .expect("labelling the namespace restricted");
    ns
}

fn failed_creates(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["reason"] == "FailedCreate")
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_pod_security_admits_grafana_installer_and_operator_pods() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "psa").await;
    let ns = restricted_namespace(&client, "psa").await;

    // Enforcement is on: a pod that breaks `restricted` is refused here (else the rest would
    // prove nothing).
    let bad = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "root", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]},
    })
    .to_string();
    let (ok, _, err) = kubectl(&["create", "--dry-run=server", "-f", "-"], Some(&bad));
    assert!(!ok, "a privileged pod was admitted into {ns}");
    assert!(err.contains("violates PodSecurity"), "{err}");

    let operator = operator_with_resync(&ns, Duration::from_secs(3)).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    // Ready needs the installer Job to have succeeded and both replicas Ready: the Job and
    // ReplicaSet controllers created those pods through the restricted admission.
    let ready = wait_condition(&client, &ns, "Ready", "True").await;
    let job_name = ready
        .status
        .and_then(|s| s.plugins)
        .map(|p| p.job_name)
        .expect("plugins status names the installer");
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let job = jobs.get(&job_name).await.expect("installer Job");
    assert!(
        job.status.and_then(|s| s.succeeded).unwrap_or(0) >= 1,
        "the installer's pod ran"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let grafana_pods = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=grafana"))
        .await
        .expect("pods")
        .items;
    let serving: Vec<_> = grafana_pods
        .iter()
        .filter(|p| p.labels().get("job-name").is_none() && pod_ready(p))
        .collect();
    assert_eq!(serving.len(), 2, "two Ready Grafana pods");
    for p in &serving {
        let spec = p.spec.as_ref().expect("pod spec");
        let sc = spec.security_context.as_ref().expect("pod securityContext");
        assert_eq!(sc.run_as_non_root, Some(true));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let csc = c
                .security_context
                .as_ref()
                .expect("container securityContext");
            assert_eq!(
                csc.allow_privilege_escalation,
                Some(false),
                "{}: no privilege escalation",
                c.name
            );
            let dropped = csc
                .capabilities
                .as_ref()
                .and_then(|c| c.drop.clone())
                .unwrap_or_default();
            assert!(
                dropped.iter().any(|d| d == "ALL"),
                "{}: {dropped:?}",
                c.name
            );
        }
    }

    // The operator's own Deployment (deploy/manifests, rendered from the Helm chart's
    // defaults), created for real in a restricted namespace: its pods are admitted and run
    // with a read-only root filesystem.
    let yaml = std::fs::read_to_string(repo_file("deploy/manifests/deployment.yaml"))
        .expect("deploy/manifests/deployment.yaml");
    let mut own: Deployment = serde_yaml::from_str(&yaml).expect("operator Deployment parses");
    own.metadata.namespace = Some(ns.clone());
    let pod_spec = own
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    for c in &pod_spec.containers {
        assert_eq!(
            c.security_context
                .as_ref()
                .and_then(|s| s.read_only_root_filesystem),
            Some(true),
            "operator container {} has a read-only root filesystem",
            c.name
        );
    }
    // A server-side dry run in the restricted namespace gives no PodSecurity warning.
    let own_json = serde_json::to_string(&own).expect("json");
    let (ok, out, err) = kubectl(
        &["apply", "--dry-run=server", "-n", &ns, "-f", "-"],
        Some(&own_json),
    );
    assert!(ok, "{out}{err}");
    assert!(!err.contains("PodSecurity"), "warning: {err}");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(&PostParams::default(), &own)
        .await
        .expect("creating the operator's Deployment");
    let replicas = own.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    wait_for(
        "the operator's own pods to be admitted and Ready",
        WAIT,
        || async {
            let d = deploys.get("grafana-ha-operator").await.ok()?;
            (d.status?.ready_replicas? == replicas).then_some(())
        },
    )
    .await;

    let events = events_json(&client, &ns).await;
    let failed = failed_creates(&events);
    assert!(failed.is_empty(), "pods refused: {failed:?}");
    operator.stop().await;
    cleanup(&client, &ns).await;
}

// --- 2. No secret value anywhere but in Secrets ---------------------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The operator binary as a subprocess (the way it runs in a pod, with its own tracing
/// subscriber), logging to a file.
struct OperatorProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
    metrics_port: u16,
}

impl OperatorProcess {
    async fn start(ns: &str, rust_log: &str) -> OperatorProcess {
        // As the chart's ServiceAccount, like every e2e operator (support::rbac).
        let kubeconfig = support::rbac::operator_kubeconfig().await;
        let metrics_port = free_port();
        let log = std::env::temp_dir().join(format!("{ns}-operator.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(BIN)
            .args([
                "run",
                "--metrics-addr",
                &format!("127.0.0.1:{metrics_port}"),
                "--namespaces",
                ns,
                "--leader-election=false",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", rust_log)
            .env("LOG_FORMAT", "text")
            .env("DISCOVERY_REFRESH_SECONDS", "2")
            .env("RESYNC_SECONDS", "10")
            .env("AWS_ENDPOINT_URL", support::aws::moto_url())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("starting the operator binary");
        OperatorProcess {
            child,
            log,
            metrics_port,
        }
    }

    fn metrics(&self) -> String {
        let addr = format!("127.0.0.1:{}", self.metrics_port);
        if std::net::TcpStream::connect(&addr).is_err() {
            return String::new();
        }
        let (status, body) = support::aws::http("GET", &format!("http://{addr}/metrics"), &[], "");
        assert_eq!(status, 200, "{body}");
        body
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).expect("log")).into_owned()
    }

    fn stop(mut self) {
        // SIGTERM by its own PID, as the kubelet would; SIGKILL if it lingers.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Standard base64 with padding (no dependency for one test).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where each secret value (plain or base64) appears among the haystacks.
fn haystack_hits(haystacks: &[(String, String)], needles: &[(String, String)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (what, value) in needles {
        let forms = [
            ("plain", value.clone()),
            ("base64", base64(value.as_bytes())),
        ];
        for (where_, text) in haystacks {
            for (form, needle) in &forms {
                if text.contains(needle.as_str()) {
                    hits.push(format!("{what} ({form}) in {where_}"));
                }
            }
        }
    }
    hits
}

/// Every object of one kind in a namespace, as JSON text.
async fn list_json<K>(client: &Client, ns: &str, lp: &ListParams) -> String
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let items = Api::<K>::namespaced(client.clone(), ns)
        .list(lp)
        .await
        .expect("list")
        .items;
    serde_json::to_string(&items).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_in_logs_events_status_metrics_or_env() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "leak").await;
    let ns = namespace(&client, "leak").await;
    let canary = |what: &str| format!("{what}Canary{:016x}", rand::random::<u64>());
    let db_password = canary("UserDb");
    let redis_token = canary("RedisAuth");
    let rds_password = canary("RdsManaged");

    // Recognisable values: the RDS-managed master secret in Secrets Manager, the user's
    // database Secret and the Redis AUTH token Secret.
    let db = aws
        .rds
        .describe_db_instances()
        .db_instance_identifier(&seeded.db_id)
        .send()
        .await
        .expect("describe db");
    let managed_arn = db.db_instances()[0]
        .master_user_secret()
        .and_then(|s| s.secret_arn())
        .expect("RDS-managed secret ARN")
        .to_string();
    aws.secrets
        .put_secret_value()
        .secret_id(&managed_arn)
        .secret_string(
            serde_json::json!({"username": "admin", "password": rds_password}).to_string(),
        )
        .send()
        .await
        .expect("setting the managed secret in moto");
    user_secret(
        &client,
        &ns,
        "db-user",
        &[("username", "grafana"), ("password", &db_password)],
    )
    .await;
    user_secret(&client, &ns, "redis-auth", &[("token", &redis_token)]).await;

    let operator = OperatorProcess::start(&ns, "trace").await;
    create_cluster(
        &client,
        cluster_manifest(
            &ns,
            &seeded.tag,
            2,
            serde_json::json!({
                "database": {"credentials": {"secretRef": {"name": "db-user"}}},
                "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            }),
        ),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;

    // A second full reconcile path: the RDS-managed secret, copied into the namespace.
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"database": {"credentials": {"secretRef": null, "rdsManagedSecret": true}}}})),
    )
    .await
    .expect("switch to the managed secret");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    wait_for("the managed password copied", WAIT, || async {
        let s = secrets.get_opt("grafana-db-credentials").await.ok()??;
        (s.data?.get("password")?.0 == rds_password.as_bytes()).then_some(())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;

    // The generated values, read back from their Secrets.
    let admin = secret_values(&secrets.get("grafana-admin").await.expect("admin"));
    let key = secret_values(&secrets.get("grafana-secret-key").await.expect("key"));
    let utf8 = |v: &[u8]| String::from_utf8(v.to_vec()).expect("utf8");
    let mut needles = vec![
        ("user database password".to_string(), db_password.clone()),
        ("Redis AUTH token".to_string(), redis_token.clone()),
        ("RDS-managed password".to_string(), rds_password.clone()),
        (
            "generated admin password".to_string(),
            utf8(&admin["password"]),
        ),
        ("signing key".to_string(), utf8(&key["secret_key"])),
    ];
    needles.retain(|(_, v)| v.len() >= 16);
    assert_eq!(
        needles.len(),
        5,
        "every value long enough to be recognisable"
    );

    // Let a couple of resyncs and discovery refreshes run at trace level.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let metrics = wait_for("the operator's /metrics", WAIT, || async {
        let m = operator.metrics();
        (!m.is_empty()).then_some(m)
    })
    .await;

    let mut haystacks = vec![
        ("the operator's log".to_string(), operator.log()),
        ("/metrics".to_string(), metrics.clone()),
    ];
    for (i, e) in events_json(&client, &ns).await.into_iter().enumerate() {
        haystacks.push((format!("Event #{i} ({})", e["reason"]), e.to_string()));
    }
    let gc = gcs.get("grafana").await.expect("gc");
    haystacks.push((
        "the GrafanaCluster (status included)".to_string(),
        serde_json::to_string(&gc).expect("json"),
    ));
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deploy.get("grafana").await.expect("deployment");
    for (name, value) in env_map(&d) {
        haystacks.push((format!("env {name}"), value.unwrap_or_default()));
    }
    haystacks.push((
        "the Deployment".to_string(),
        serde_json::to_string(&d).expect("json"),
    ));
    let lp = ListParams::default();
    haystacks.push((
        "Jobs".to_string(),
        list_json::<Job>(&client, &ns, &lp).await,
    ));
    haystacks.push((
        "Pods".to_string(),
        list_json::<Pod>(&client, &ns, &lp).await,
    ));
    haystacks.push((
        "Services".to_string(),
        list_json::<Service>(&client, &ns, &lp).await,
    ));
    haystacks.push((
        "PodDisruptionBudgets".to_string(),
        list_json::<PodDisruptionBudget>(&client, &ns, &lp).await,
    ));
    haystacks.push((
        "ReplicaSets".to_string(),
        list_json::<ReplicaSet>(&client, &ns, &lp).await,
    ));

    // Not vacuous: the log is at trace level and saw the reconciles.
    let log = &haystacks[0].1;
    assert!(log.contains("TRACE"), "trace lines in the log");
    assert!(
        log.lines().count() > 100,
        "a real log: {} lines",
        log.lines().count()
    );
    assert!(
        metrics.contains("grafana_ha_operator_"),
        "the operator's metrics: {metrics}"
    );

    eprintln!(
        "searched {} places; the trace log: {} lines, {} bytes",
        haystacks.len(),
        log.lines().count(),
        log.len()
    );
    let hits = haystack_hits(&haystacks, &needles);
    let kept = operator.log.clone();
    operator.stop();
    assert!(
        hits.is_empty(),
        "secret values outside Secrets (log kept at {}):\n{}",
        kept.display(),
        hits.join("\n")
    );
    let _ = std::fs::remove_file(kept);
    cleanup(&client, &ns).await;
}

// --- 3. Conflicting writers -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_field_managers_are_overruled_on_owned_fields_and_left_alone_elsewhere() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "managers").await;
    let ns = namespace(&client, "managers").await;
    let operator = operator_with_resync(&ns, Duration::from_secs(3)).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let before = deploy.get("grafana").await.expect("d");
    let host = env_map(&before)["GF_DATABASE_HOST"]
        .clone()
        .expect("host value");
    let host_path = env_value_path("GF_DATABASE_HOST");
    assert!(owns_path(
        managed_by(&before.metadata, MANAGER, "Apply", None).as_ref(),
        &host_path
    ));

    // Another manager force-applies a field the operator owns (an env value) and the
    // replicas: the operator takes both back.
    deploy
        .patch(
            "grafana",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "grafana"},
                "spec": {
                    "replicas": 5,
                    "template": {"spec": {"containers": [{
                        "name": "grafana",
                        "env": [{"name": "GF_DATABASE_HOST", "value": "evil:5432"}],
                    }]}},
                },
            })),
        )
        .await
        .expect("the intruder's apply");
    let restored = wait_for("the operator to take its fields back", WAIT, || async {
        let d = deploy.get("grafana").await.ok()?;
        let ok = env_map(&d).get("GF_DATABASE_HOST")?.as_deref() == Some(host.as_str())
            && d.spec.as_ref()?.replicas == Some(2);
        ok.then_some(d)
    })
    .await;
    let ours = managed_by(&restored.metadata, MANAGER, "Apply", None);
    assert!(
        owns_path(ours.as_ref(), &host_path),
        "env value back with the operator"
    );
    assert!(owns(ours.as_ref(), &["f:spec", "f:replicas"]));
    let theirs = managed_by(&restored.metadata, "intruder", "Apply", None);
    assert!(
        !owns_path(theirs.as_ref(), &host_path)
            && !owns(theirs.as_ref(), &["f:spec", "f:replicas"]),
        "the intruder lost the fields: {theirs:?}"
    );

    // Fields the operator does not own: an annotation and a sidecar, each through its own
    // field manager, are left alone.
    deploy
        .patch(
            "grafana",
            &PatchParams::apply("annotator"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "grafana", "annotations": {"example.com/team": "observability"}},
            })),
        )
        .await
        .expect("the annotator's apply");
    deploy
        .patch(
            "grafana",
            &PatchParams::apply("mesh-injector"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "grafana"},
                "spec": {"template": {"spec": {"containers": [{
                    "name": "proxy",
                    "image": "registry.example/mesh-proxy:1.0",
                    "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true},
                }]}}},
            })),
        )
        .await
        .expect("the injector's apply");

    // An HPA-like writer scales through the GrafanaCluster's scale subresource; the
    // operator follows spec.replicas into the Deployment.
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let hpa = PatchParams {
        field_manager: Some("hpa-like".into()),
        ..PatchParams::default()
    };
    gcs.patch_scale(
        "grafana",
        &hpa,
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scaling through the scale subresource");
    wait_for("the Deployment to follow the scale", WAIT, || async {
        (deploy.get("grafana").await.ok()?.spec?.replicas == Some(3)).then_some(())
    })
    .await;

    // Several resyncs (every 3 s) later: all still there, nobody fights.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let settled = deploy.get("grafana").await.expect("d");
    let generation = settled.metadata.generation;
    let applies_before = deployment_applies(&operator);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = deploy.get("grafana").await.expect("d");
    // Informational: a steady round should send nothing; with a foreign container in the
    // list the live object no longer "contains" the desired one item by item.
    eprintln!(
        "Deployment applies sent in 8 s of steady state with a sidecar: {}",
        deployment_applies(&operator) - applies_before
    );
    assert_eq!(
        after.metadata.generation, generation,
        "the Deployment's spec kept being rewritten"
    );
    assert_eq!(
        after
            .annotations()
            .get("example.com/team")
            .map(String::as_str),
        Some("observability")
    );
    assert_eq!(container_names(&after), vec!["grafana", "proxy"]);
    assert_eq!(after.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(
        env_map(&after).get("GF_DATABASE_HOST").cloned().flatten(),
        Some(host)
    );
    let ours = managed_by(&after.metadata, MANAGER, "Apply", None);
    assert!(owns(ours.as_ref(), &["f:spec", "f:replicas"]));
    assert!(!owns(
        ours.as_ref(),
        &["f:metadata", "f:annotations", "f:example.com/team"]
    ));
    let proxy = r#"k:{"name":"proxy"}"#;
    let sidecar = ["f:spec", "f:template", "f:spec", "f:containers", proxy];
    assert!(
        !owns(ours.as_ref(), &sidecar),
        "the operator owns no sidecar"
    );
    assert!(owns(
        managed_by(&after.metadata, "mesh-injector", "Apply", None).as_ref(),
        &sidecar
    ));
    assert!(owns(
        managed_by(&after.metadata, "annotator", "Apply", None).as_ref(),
        &["f:metadata", "f:annotations", "f:example.com/team"]
    ));
    let gc = gcs.get("grafana").await.expect("gc");
    assert_eq!(
        gc.spec.replicas, 3,
        "the operator never writes its own spec"
    );
    assert!(owns(
        managed_by(&gc.metadata, "hpa-like", "Update", Some("scale")).as_ref(),
        &["f:spec", "f:replicas"]
    ));
    wait_condition(&client, &ns, "Ready", "True").await;
    operator.stop().await;
    cleanup(&client, &ns).await;
}

/// Server-side applies of Deployments the operator sent (not the skipped ones).
fn deployment_applies(operator: &Operator) -> u64 {
    operator
        .metrics
        .render()
        .lines()
        .filter(|l| {
            l.starts_with("grafana_ha_operator_applies_total")
                && l.contains("kind=\"Deployment\"")
                && l.contains("result=\"applied\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

// --- 4. kube-apiserver restarted under the operator ------------------------------------

/// Stops the bed's kube-apiserver, keeps it down `down_seconds`, starts it again with the
/// same command line and etcd (testbed/restart-apiserver.sh), waiting for /readyz.
fn restart_apiserver(down_seconds: u32) {
    restart_component("kube-apiserver", down_seconds);
}

/// Stops one process of the test bed (kube-apiserver or etcd), leaves it down for
/// `down_seconds`, and starts it again with the same command line and data
/// (testbed/restart-component.sh).
fn restart_component(name: &str, down_seconds: u32) {
    let script = std::env::var("TESTBED_RESTART_COMPONENT").unwrap_or_else(|_| {
        panic!("TESTBED_RESTART_COMPONENT is not set: run through testbed/with-testbed.sh")
    });
    let dir = std::env::var("TESTBED_DIR").expect("TESTBED_DIR");
    let out = std::process::Command::new(script)
        .args([dir, name.to_string(), down_seconds.to_string()])
        .output()
        .expect("running restart-component.sh");
    assert!(
        out.status.success(),
        "restart-component.sh {name} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Freezes the test bed's etcd (SIGSTOP) for `seconds`, then lets it go on (SIGCONT): the
/// kube-apiserver's storage stops answering, its requests hang and time out meanwhile.
fn freeze_etcd(seconds: u64) {
    let dir = std::env::var("TESTBED_DIR").expect("TESTBED_DIR: run through with-testbed.sh");
    let pids = std::fs::read_to_string(format!("{dir}/pids")).expect("the bed's pids");
    let pid = pids
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|p| {
            let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(argv0).ends_with("/etcd")
                || String::from_utf8_lossy(argv0) == "etcd"
        })
        .expect("the bed's etcd process");
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_secs(seconds));
    signal("-CONT");
}

/// name -> uid of the objects of one kind in a namespace.
async fn uids<K>(client: &Client, ns: &str) -> BTreeMap<String, String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .map(|o| (o.name_any(), o.uid().unwrap_or_default()))
        .collect()
}

#[derive(Debug, PartialEq)]
struct Children {
    deployments: BTreeMap<String, String>,
    replica_sets: BTreeMap<String, String>,
    services: BTreeMap<String, String>,
    pdbs: BTreeMap<String, String>,
    jobs: BTreeMap<String, String>,
    claims: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    volumes: BTreeSet<String>,
}

impl Children {
    /// How many objects, all kinds together.
    fn count(&self) -> usize {
        self.deployments.len()
            + self.replica_sets.len()
            + self.services.len()
            + self.pdbs.len()
            + self.jobs.len()
            + self.claims.len()
            + self.secrets.len()
            + self.volumes.len()
    }
}

async fn children(client: &Client, ns: &str) -> Children {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let prefix = format!("gfc-{ns}-");
    Children {
        deployments: uids::<Deployment>(client, ns).await,
        replica_sets: uids::<ReplicaSet>(client, ns).await,
        services: uids::<Service>(client, ns).await,
        pdbs: uids::<PodDisruptionBudget>(client, ns).await,
        jobs: uids::<Job>(client, ns).await,
        claims: uids::<PersistentVolumeClaim>(client, ns).await,
        secrets: uids::<Secret>(client, ns).await,
        volumes: pvs
            .list(&ListParams::default())
            .await
            .expect("pvs")
            .items
            .into_iter()
            .map(|p| p.name_any())
            .filter(|n| n.starts_with(&prefix))
            .collect(),
    }
}

/// A Ready cluster watched by an operator without periodic resync (only watches, resumed
/// or re-listed, can bring changes in), then kube-apiserver stopped for 3 s and started
/// again. Returns the world and the children before the restart.
async fn restarted_under_the_operator(
    prefix: &str,
    fault: impl FnOnce(),
) -> (
    Client,
    String,
    Operator,
    Children,
    Vec<BTreeMap<String, Vec<u8>>>,
) {
    let (client, aws) = start().await;
    let seeded = seed(&aws, prefix).await;
    let ns = namespace(&client, prefix).await;
    let operator = operator_with_resync(&ns, Duration::from_secs(600)).await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = children(&client, &ns).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut generated = Vec::new();
    for name in ["grafana-secret-key", "grafana-admin"] {
        generated.push(secret_values(&secrets.get(name).await.expect(name)));
    }

    let started = std::time::Instant::now();
    fault();
    eprintln!("the fault is over: {:?}", started.elapsed());
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    wait_for("the API to answer the test again", WAIT, || async {
        gcs.get("grafana").await.ok().map(|_| ())
    })
    .await;
    (client, ns, operator, before, generated)
}

async fn assert_generated_kept(client: &Client, ns: &str, before: &[BTreeMap<String, Vec<u8>>]) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for (name, data) in ["grafana-secret-key", "grafana-admin"].iter().zip(before) {
        assert_eq!(
            &secret_values(&secrets.get(name).await.expect(name)),
            data,
            "{name} was regenerated"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_restart_duplicates_nothing_and_regenerates_nothing() {
    let (client, ns, operator, before, generated) =
        restarted_under_the_operator("restart-keep", || restart_apiserver(3)).await;
    // The operator's watches fail and reconnect meanwhile; give it time to do anything
    // rash, then compare: the same objects (same uids), nothing added, nothing regenerated,
    // the cluster still Ready.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        children(&client, &ns).await,
        before,
        "children after the restart"
    );
    assert_generated_kept(&client, &ns, &generated).await;
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    let gc = gcs.get("grafana").await.expect("gc");
    assert_eq!(
        condition(&gc, "Ready").map(|c| c.0).as_deref(),
        Some("True")
    );
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_frozen_for_seconds_duplicates_nothing_and_misses_no_change_after_it() {
    let started = std::time::Instant::now();
    let (client, ns, operator, before, generated) =
        restarted_under_the_operator("etcd-freeze", || freeze_etcd(6)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        children(&client, &ns).await,
        before,
        "children after etcd froze"
    );
    assert_generated_kept(&client, &ns, &generated).await;
    // A change made after it: reconciled (the watches came back).
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete("grafana-alerting", &DeleteParams::default())
        .await
        .expect("delete the gossip Service");
    wait_for("the deleted Service to be recreated", WAIT, || async {
        services.get_opt("grafana-alerting").await.ok()?.map(|_| ())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    assert_generated_kept(&client, &ns, &generated).await;
    eprintln!("etcd freeze test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_stopped_and_restarted_on_its_data_duplicates_nothing_and_misses_no_change() {
    let started = std::time::Instant::now();
    let (client, ns, operator, before, generated) =
        restarted_under_the_operator("etcd-restart", || restart_component("etcd", 3)).await;
    // The API server answers again (restarted_under_the_operator waited for it); the
    // operator's watches broke with it. Nothing is duplicated or regenerated meanwhile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        children(&client, &ns).await,
        before,
        "children after etcd restarted"
    );
    assert_generated_kept(&client, &ns, &generated).await;
    // A change made after it is reconciled: the watches came back.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete("grafana-alerting", &DeleteParams::default())
        .await
        .expect("delete the gossip Service");
    wait_for("the deleted Service to be recreated", WAIT, || async {
        services.get_opt("grafana-alerting").await.ok()?.map(|_| ())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;
    assert_generated_kept(&client, &ns, &generated).await;
    eprintln!("etcd restart test took {:?}", started.elapsed());
    operator.stop().await;
    cleanup(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_restart_misses_no_change_made_after_it() {
    let (client, ns, operator, before, generated) =
        restarted_under_the_operator("restart-change", || restart_apiserver(3)).await;

    // Right after it is back, before the operator's watches have necessarily reconnected:
    // the cluster is scaled and a child is deleted. Scaled down: scaling up past the
    // connection budget resizes each pod's pool, a new pod template and so (rightly) a new
    // ReplicaSet, which the "no new children" check below would count.
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.patch(
        "grafana",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale after the restart");
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .delete("grafana-alerting", &DeleteParams::default())
        .await
        .expect("delete the gossip Service");

    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "the operator to reconcile the changes made after the restart",
        WAIT,
        || async {
            let scaled = deploy.get("grafana").await.ok()?.spec?.replicas == Some(1);
            let back = services.get_opt("grafana-alerting").await.ok()?.is_some();
            (scaled && back).then_some(())
        },
    )
    .await;
    wait_for("status.readyReplicas 1", WAIT, || async {
        (gcs.get("grafana").await.ok()?.status?.ready_replicas == Some(1)).then_some(())
    })
    .await;
    wait_condition(&client, &ns, "Ready", "True").await;

    // Nothing duplicated, nothing recreated but the Service that was deleted.
    let after = children(&client, &ns).await;
    let mut expected = before;
    expected.services.remove("grafana-alerting");
    let mut got = after;
    assert!(
        got.services.remove("grafana-alerting").is_some(),
        "the gossip Service is back"
    );
    assert_eq!(got, expected, "children after the restart");
    assert_generated_kept(&client, &ns, &generated).await;
    operator.stop().await;
    cleanup(&client, &ns).await;
}

// --- 5. Deletion keeps the data, also during an AWS outage -----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_during_an_aws_outage_collects_children_and_keeps_data_and_secrets() {
    let (client, aws) = start().await;
    let seeded = seed(&aws, "keep").await;
    let ns = namespace(&client, "keep").await;
    user_secret(
        &client,
        &ns,
        "db-user",
        &[("username", "grafana"), ("password", "UserDbPassw0rd")],
    )
    .await;
    user_secret(&client, &ns, "redis-auth", &[("token", "RedisAuthT0ken")]).await;
    let operator = operator_with_resync(&ns, Duration::from_secs(3)).await;
    create_cluster(
        &client,
        cluster_manifest(
            &ns,
            &seeded.tag,
            2,
            serde_json::json!({
                "database": {"credentials": {"secretRef": {"name": "db-user"}}},
                "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            }),
        ),
    )
    .await;
    let ready = wait_condition(&client, &ns, "Ready", "True").await;
    let storage = ready.status.and_then(|s| s.storage).expect("storage");
    let pv_name = storage.volume_name.clone().expect("pv");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let kept_before: BTreeMap<String, BTreeMap<String, Vec<u8>>> = {
        let mut m = BTreeMap::new();
        for name in ["db-user", "redis-auth", "grafana-secret-key"] {
            m.insert(
                name.to_string(),
                secret_values(&secrets.get(name).await.expect("secret")),
            );
        }
        m
    };

    // Every AWS call fails from now on.
    set_fault(r#"{"mode":"error500","count":-1}"#);
    let gc = wait_condition(&client, &ns, "Degraded", "True").await;
    assert_eq!(
        condition(&gc, "Degraded").map(|c| c.1).as_deref(),
        Some("UsingLastKnownConfiguration")
    );
    let gcs: Api<GrafanaCluster> = Api::namespaced(client.clone(), &ns);
    gcs.delete("grafana", &DeleteParams::default())
        .await
        .expect("delete");
    let deploy: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), &ns);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    wait_for(
        "the GrafanaCluster gone and its children collected, AWS down",
        WAIT,
        || async {
            let gone = gcs.get_opt("grafana").await.ok()?.is_none()
                && deploy.get_opt("grafana").await.ok()?.is_none()
                && services
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .is_empty()
                && pdbs.get_opt("grafana").await.ok()?.is_none()
                && jobs
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .is_empty()
                && secrets.get_opt("grafana-admin").await.ok()?.is_none()
                && secrets.get_opt("grafana-cache").await.ok()?.is_none()
                && claims
                    .list(&ListParams::default())
                    .await
                    .ok()?
                    .items
                    .iter()
                    .all(|c| c.metadata.deletion_timestamp.is_some());
            gone.then_some(())
        },
    )
    .await;
    let injected: u64 = support::aws::fault_state()["counters"]
        .as_object()
        .map(|c| c.values().filter_map(|v| v["faults"].as_u64()).sum())
        .unwrap_or(0);
    assert!(injected > 0, "the outage was real: no fault injected");

    // Kept: the user's Secrets and the signing key, unchanged; the static PV (Retain); and
    // in AWS, the file system and its access point (read from moto directly).
    for (name, data) in &kept_before {
        let now = secrets
            .get_opt(name)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{name} was deleted"));
        assert_eq!(&secret_values(&now), data, "{name} changed");
    }
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get(&pv_name).await.expect("the EFS volume is kept");
    assert_eq!(
        pv.spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
        Some("Retain")
    );
    assert!(pv.metadata.deletion_timestamp.is_none());
    let handle = pv
        .spec
        .and_then(|s| s.csi)
        .map(|c| c.volume_handle)
        .unwrap_or_default();
    assert!(
        handle.contains(&seeded.access_point_id.clone().unwrap()),
        "{handle}"
    );
    clear_fault();
    let aps = aws
        .efs
        .describe_access_points()
        .file_system_id(&seeded.file_system_id)
        .send()
        .await
        .expect("describe access points");
    assert!(
        aps.access_points()
            .iter()
            .any(|a| a.access_point_id() == Some(seeded.access_point_id.clone().unwrap().as_str())),
        "the access point is kept"
    );
    operator.stop().await;
    // The PV is cluster-scoped and kept on purpose; remove it so reruns stay clean.
    let _ = pvs.delete(&pv_name, &DeleteParams::default()).await;
    cleanup(&client, &ns).await;
}

/// The operator binary SIGKILLed at spread-out moments while it brings a new cluster up
/// (startup, the generated Secrets, the children one by one, the status write), restarted
/// each time: the generated Secrets are created once and never regenerated, nothing is
/// duplicated, and the last run converges to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_points_inside_reconciles_regenerates_nothing_and_duplicates_nothing() {
    let started = std::time::Instant::now();
    let (client, aws) = start().await;
    let seeded = seed(&aws, "sigkill").await;
    let ns = namespace(&client, "sigkill").await;
    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut first_seen: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut seen_at_kill = Vec::new();
    // Spread over a reconcile: the binary needs a moment to start and connect, then
    // creates the Secrets, the volume and claim, the installer Job, the Services, the
    // budget, the Deployment and writes the status.
    for delay_ms in [300u64, 350, 400, 450, 500, 550, 600, 700, 900, 1300, 2000] {
        let mut process = OperatorProcess::start(&ns, "info").await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        process.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let _ = process.child.wait();
        for name in ["grafana-secret-key", "grafana-admin"] {
            if let Some(s) = secrets.get_opt(name).await.expect("read secret") {
                let values = secret_values(&s);
                let first = first_seen.entry(name).or_insert_with(|| values.clone());
                assert_eq!(
                    first, &values,
                    "{name} regenerated after a SIGKILL at {delay_ms} ms"
                );
            }
        }
        let c = children(&client, &ns).await;
        seen_at_kill.push((delay_ms, c.count()));
    }

    // The last run converges.
    let process = OperatorProcess::start(&ns, "info").await;
    wait_condition(&client, &ns, "Ready", "True").await;
    for (name, values) in &first_seen {
        let now = secret_values(&secrets.get(name).await.expect(name));
        assert_eq!(&now, values, "{name} regenerated by the converging run");
    }
    let jobs = Api::<Job>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("jobs");
    assert_eq!(jobs.items.len(), 1, "one installer Job");
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("replica sets");
    assert_eq!(sets.items.len(), 1, "one ReplicaSet: one pod template");
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("deployments");
    assert_eq!(deployments.items.len(), 1);
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("claims");
    assert_eq!(claims.items.len(), 1, "one plugins claim");
    let settled = children(&client, &ns).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        children(&client, &ns).await,
        settled,
        "children still moving"
    );
    process.stop();
    eprintln!(
        "children present after each SIGKILL (delay ms, count): {seen_at_kill:?}; \
         generated Secrets seen: {:?}; test took {:?}",
        first_seen.keys().collect::<Vec<_>>(),
        started.elapsed()
    );
    cleanup(&client, &ns).await;
}
