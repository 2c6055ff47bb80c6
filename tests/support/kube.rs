//! Helpers for end-to-end tests against the local control plane (kube-apiserver, etcd,
//! kube-controller-manager, kube-scheduler, kwok) that `make e2e` starts: a client, the CRD,
//! a namespace per test, the operator running in-process, polling, and the real kubectl.

#![allow(dead_code)]

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig};
use grafana_ha_operator::metrics::Metrics;
use grafana_ha_operator::reconcile::{self, ControllerConfig};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A client from the test bed's KUBECONFIG.
pub async fn client() -> Client {
    if std::env::var("KUBECONFIG")
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        panic!(
            "KUBECONFIG is not set: these tests need the local control plane; run them \
             through `make e2e` (testbed/with-testbed.sh starts it)"
        );
    }
    Client::try_default()
        .await
        .unwrap_or_else(|e| panic!("connecting to the test bed's kube-apiserver: {e}"))
}

/// Path of a file in the repository.
pub fn repo_file(path: &str) -> String {
    format!("{}/{}", env!("CARGO_MANIFEST_DIR"), path)
}

/// Runs the real kubectl (on PATH through the test bed) and returns (success, stdout, stderr).
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut cmd = Command::new("kubectl");
    // A discovery cache of this process's own: kubectl's default one is keyed by host and
    // port, and a port reused from an earlier test bed would serve that bed's API list.
    let cache = std::env::temp_dir().join(format!("kubectl-cache-{}", std::process::id()));
    cmd.arg(format!("--cache-dir={}", cache.display()))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("running kubectl (is the test bed's bin dir on PATH?): {e}"));
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes())
            .expect("writing kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Installs (or updates) the CRD from crds/ and waits until it is established.
pub async fn install_crd(client: &Client) {
    let yaml = std::fs::read_to_string(repo_file("crds/grafanacluster.yaml"))
        .expect("crds/grafanacluster.yaml");
    let crd: CustomResourceDefinition = serde_yaml::from_str(&yaml).expect("CRD parses");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        "grafanaclusters.grafana-ha.io",
        &PatchParams::apply("e2e-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("applying the CRD");
    wait_for(
        "the CRD to be established",
        Duration::from_secs(30),
        || async {
            let crd = api.get("grafanaclusters.grafana-ha.io").await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        },
    )
    .await;
}

/// Creates a fresh namespace named `prefix-<random>`.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff);
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).expect("ns");
    api.create(&PostParams::default(), &ns)
        .await
        .expect("creating namespace");
    name
}

/// Polls `check` until it returns Some, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The operator, running in this test process against the test bed.
pub struct Operator {
    /// The client it runs with (tests/e2e_rbac.rs checks whom it authenticates as).
    pub client: Client,
    pub metrics: Metrics,
    pub discovery: Discovery,
    /// Runs as the chart's ServiceAccount (the default): `stop` then asserts that no
    /// reconcile failed on a 403, which would be a rule the chart lacks.
    as_chart_service_account: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// How the in-process operator reaches AWS.
pub struct OperatorOptions {
    /// Watch one namespace (None: all).
    pub namespace: Option<String>,
    /// Send AWS calls through the fault proxy (so tests can inject faults).
    pub through_fault_proxy: bool,
    pub discovery_refresh: Duration,
    /// How often healthy clusters are re-checked without an event.
    pub resync: Duration,
    /// How long the answer "is an optional API (HTTPRoute, ServiceMonitor) served" is kept.
    pub optional_api_refresh: Duration,
    /// The operator's Kubernetes client. None (the default): the chart's ServiceAccount,
    /// impersonated, bound to exactly the chart's ClusterRole (support::rbac), so every e2e
    /// test proves that role sufficient. A test that passes the admin client instead must
    /// say why.
    pub client: Option<Client>,
}

impl Default for OperatorOptions {
    fn default() -> Self {
        OperatorOptions {
            namespace: None,
            through_fault_proxy: true,
            discovery_refresh: Duration::from_secs(2),
            resync: Duration::from_secs(3),
            optional_api_refresh: Duration::from_secs(2),
            client: None,
        }
    }
}

impl Operator {
    pub async fn start(options: OperatorOptions) -> Operator {
        let as_chart_service_account = options.client.is_none();
        let client = match options.client {
            Some(c) => c,
            None => super::rbac::operator_client().await,
        };
        let metrics = Metrics::new();
        let endpoint = if options.through_fault_proxy {
            super::aws::fault_proxy_url()
        } else {
            super::aws::moto_url()
        };
        let discovery = Discovery::from_env_with(
            DiscoveryConfig {
                refresh_interval: options.discovery_refresh,
                default_region: Some(super::aws::REGION.into()),
            },
            ClientOptions {
                endpoint_url: Some(endpoint),
                // Keep fault tests quick: one retry, short timeouts.
                max_attempts: 2,
                initial_backoff: Duration::from_millis(50),
                attempt_timeout: Duration::from_secs(3),
                operation_timeout: Duration::from_secs(8),
                ..ClientOptions::default()
            },
            metrics.clone(),
        )
        .await;
        let config = ControllerConfig {
            namespace: options.namespace,
            resync_interval: options.resync,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(3),
            instance: "e2e".into(),
            create_access_points: true,
            pre_upgrade_snapshots: true,
            optional_api_refresh: options.optional_api_refresh,
            concurrency: grafana_ha_operator::reconcile::context::DEFAULT_CONCURRENCY,
        };
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(reconcile::run(
            client.clone(),
            discovery.clone(),
            metrics.clone(),
            config,
            async move {
                let _ = rx.await;
            },
        ));
        Operator {
            client,
            metrics,
            discovery,
            as_chart_service_account,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if self.as_chart_service_account {
            let forbidden: Vec<String> = self
                .metrics
                .render()
                .lines()
                .filter(|l| l.contains("reconcile_errors") && l.contains("kube_forbidden"))
                .filter(|l| l.rsplit(' ').next().is_some_and(|n| n != "0"))
                .map(str::to_string)
                .collect();
            assert!(
                forbidden.is_empty(),
                "the operator, as the chart's ServiceAccount, was refused by RBAC: a rule the \
                 chart's ClusterRole (deploy/helm/grafana-ha-operator/templates/rbac.yaml) \
                 lacks: {forbidden:?}"
            );
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
