//! Reconcile rounds against a mocked API server (kube's tower-test): the pipeline's
//! branches that the end-to-end suite reaches only slowly, with every request the round
//! sends checked. The specs use fixed endpoints and a StorageClass, so no AWS call is made.

use std::sync::Arc;

use super::events::Recorder;
use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use serde_json::{Value, json};

use super::context::{Context, ControllerConfig, Stores};
use super::pipeline::reconcile_cluster;
use super::records::Records;
use super::{Outcome, RetryCause};
use crate::api::GrafanaCluster;
use crate::aws::{ClientOptions, Discovery, DiscoveryConfig};
use crate::error::ErrorClass;
use crate::metrics::Metrics;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One request the round sent.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    body: Value,
}

fn not_found() -> (u16, Value) {
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
               "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// Answers every request with `respond` until the client is dropped; returns what it saw.
async fn serve(
    mut handle: Handle,
    respond: impl Fn(&Method, &str, &Value) -> (u16, Value),
) -> Vec<Seen> {
    let mut seen = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let bytes = request.into_body().collect_bytes().await.expect("body");
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let (code, answer) = respond(&method, &path, &body);
        let response = Response::builder()
            .status(code)
            .body(Body::from(serde_json::to_vec(&answer).expect("json")))
            .expect("response");
        send.send_response(response);
        seen.push(Seen { method, path, body });
    }
    seen
}

/// Writes echo what was sent (with a uid), as the API server would.
fn echo(body: &Value) -> (u16, Value) {
    let mut body = body.clone();
    body["metadata"]["uid"] = json!("uid-echo");
    (200, body)
}

fn empty_stores() -> Stores {
    Stores {
        deployments: Records::default(),
        jobs: Records::default(),
        secrets: Records::default(),
        services: Records::default(),
        claims: Records::default(),
        volumes: Records::default(),
        budgets: Records::default(),
        config_maps: Records::default(),
        network_policies: Records::default(),
        service_accounts: Records::default(),
        ingresses: Records::default(),
        autoscalers: reflector::store().0,
    }
}

/// Records of `objects`, as the label-scoped watch would keep them.
fn store_of<K: super::slim::Slim>(objects: Vec<K>) -> Records<K> {
    Records::of(objects)
}

fn context(client: Client, stores: Stores) -> Arc<Context> {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    let metrics = Metrics::new();
    let discovery = Discovery::from_sdk_config(
        DiscoveryConfig::default(),
        &ClientOptions::default(),
        sdk,
        metrics.clone(),
    );
    let reporter = Reporter {
        controller: "grafana-ha-operator".into(),
        instance: Some("test".into()),
    };
    Arc::new(Context::new(
        client.clone(),
        discovery,
        metrics,
        Recorder::new(client, reporter),
        ControllerConfig::default(),
        stores,
    ))
}

/// Runs one round of `gc` against `respond`; returns the outcome and the requests.
async fn round(
    gc: GrafanaCluster,
    respond: impl Fn(&Method, &str, &Value) -> (u16, Value) + Send + 'static,
) -> (Outcome, Vec<Seen>) {
    round_with(gc, empty_stores(), respond).await
}

async fn round_with(
    gc: GrafanaCluster,
    stores: Stores,
    respond: impl Fn(&Method, &str, &Value) -> (u16, Value) + Send + 'static,
) -> (Outcome, Vec<Seen>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let stored = serde_json::to_value(&gc).expect("json");
    // The status subresource answers with the whole object, as the API server does.
    let server = tokio::spawn(serve(handle, move |method, path, body| {
        if path.ends_with("/status") {
            let mut object = stored.clone();
            object["status"] = body["status"].clone();
            return (200, object);
        }
        respond(method, path, body)
    }));
    let ctx = context(Client::new(service, "obs"), stores);
    let outcome = reconcile_cluster(&gc, &ctx).await.expect("round");
    drop(ctx);
    (outcome, server.await.expect("mock server"))
}

/// Postgres and Redis-less, fixed endpoints, a StorageClass: nothing to ask AWS.
fn fixed() -> GrafanaCluster {
    crate::fixtures::cluster(json!({
        "database": {"endpoint": {"host": "db.internal", "port": 5432}, "engine": "postgres",
                     "credentials": {"secretRef": {"name": "db"}}},
        "cache": {"enabled": false},
        "plugins": {"storageClassName": "efs"},
    }))
}

const USER_SECRET: &str = "/api/v1/namespaces/obs/secrets/db";

fn user_secret() -> (u16, Value) {
    (
        200,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "obs"},
               "data": {"username": "Z3JhZmFuYQ==", "password": "cGFzcw=="}}),
    )
}

fn is_status(s: &Seen) -> bool {
    s.path.ends_with("/grafanaclusters/grafana/status")
}

fn is_event(s: &Seen) -> bool {
    s.path.contains("/events")
}

fn status_reason(seen: &[Seen], condition: &str) -> String {
    let status = seen
        .iter()
        .rev()
        .find(|s| is_status(s))
        .expect("a status write");
    status.body["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == condition)
        .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_invalid_spec_writes_only_the_status() {
    let mut gc = fixed();
    gc.spec.replicas = 1001;
    let (outcome, seen) = round(gc, |_, _, body| echo(body)).await;
    assert_eq!(outcome, Outcome::InvalidSpec);
    assert!(seen.iter().all(|s| is_status(s) || is_event(s)), "{seen:?}");
    assert_eq!(status_reason(&seen, "Stalled"), "InvalidSpec");
}

#[tokio::test]
async fn an_unresolved_spec_generates_no_secret() {
    let (outcome, seen) = round(fixed(), |method, _, body| match *method {
        Method::GET => not_found(),
        _ => echo(body),
    })
    .await;
    assert_eq!(outcome, Outcome::Retry(RetryCause::Unresolved));
    let writes: Vec<_> = seen
        .iter()
        .filter(|s| s.method != Method::GET && !is_status(s) && !is_event(s))
        .collect();
    assert!(writes.is_empty(), "nothing may be written: {writes:?}");
    assert_eq!(status_reason(&seen, "DatabaseResolved"), "SecretNotFound");
}

#[tokio::test]
async fn a_forbidden_write_keeps_its_class() {
    let (outcome, seen) = round(fixed(), |method, path, body| match (method.clone(), path) {
        (Method::GET, USER_SECRET) => user_secret(),
        (Method::GET, _) => not_found(),
        (Method::POST, p) if p.ends_with("/secrets") => (
            403,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "Forbidden", "code": 403, "message": "secrets is forbidden"}),
        ),
        _ => echo(body),
    })
    .await;
    assert_eq!(
        outcome,
        Outcome::Retry(RetryCause::Apply(ErrorClass::KubeForbidden))
    );
    assert_eq!(status_reason(&seen, "Ready"), "ApplyFailed");
    assert_eq!(status_reason(&seen, "Degraded"), "ApplyFailed");
}

#[tokio::test]
async fn a_resolved_spec_writes_every_child_in_order() {
    let (outcome, seen) = round(fixed(), |method, path, body| match (method.clone(), path) {
        (Method::GET, USER_SECRET) => user_secret(),
        (Method::GET, _) => not_found(),
        (Method::POST, _) => {
            let (_, body) = echo(body);
            (201, body)
        }
        _ => echo(body),
    })
    .await;
    assert_eq!(outcome, Outcome::RollingOut);
    let writes: Vec<String> = seen
        .iter()
        .filter(|s| s.method != Method::GET && !is_status(s) && !is_event(s))
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        writes,
        vec![
            "POST /api/v1/namespaces/obs/secrets",
            "POST /api/v1/namespaces/obs/secrets",
            "PATCH /api/v1/namespaces/obs/serviceaccounts/grafana",
            &format!(
                "PATCH /api/v1/namespaces/obs/persistentvolumeclaims/{}",
                crate::names::plugins_claim("grafana", "sc:efs")
            ),
            "PATCH /api/v1/namespaces/obs/services/grafana",
            "PATCH /api/v1/namespaces/obs/services/grafana-alerting",
            "PATCH /apis/policy/v1/namespaces/obs/poddisruptionbudgets/grafana",
            "PATCH /apis/apps/v1/namespaces/obs/deployments/grafana",
        ]
    );
    assert_eq!(status_reason(&seen, "Ready"), "RollingOut");
    let created: Vec<_> = seen
        .iter()
        .filter(|s| s.method == Method::POST && s.path.ends_with("/secrets"))
        .map(|s| {
            s.body["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(created, vec!["grafana-admin", "grafana-secret-key"]);
}

/// A labelled child this round did not produce is deleted; a rule keeps the old plugins
/// claim while the rollout has not left it.
#[tokio::test]
async fn superseded_children_are_removed_unless_a_rule_keeps_them() {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
    let mut gc = fixed();
    gc.spec.alerting = Some(crate::api::AlertingSpec {
        ha: Some(crate::api::AlertingHa::Off),
    });
    let labelled = |name: &str, component| kube::api::ObjectMeta {
        name: Some(name.into()),
        namespace: Some("obs".into()),
        labels: Some(crate::names::common_labels("grafana", component)),
        ..Default::default()
    };
    let mut stores = empty_stores();
    stores.services = store_of(vec![Service {
        metadata: labelled("grafana-alerting", crate::names::Component::Alerting),
        ..Default::default()
    }]);
    stores.claims = store_of(vec![PersistentVolumeClaim {
        metadata: labelled(
            "grafana-plugins-old",
            crate::names::Component::PluginsStorage,
        ),
        ..Default::default()
    }]);
    let (_, seen) = round_with(gc, stores, |method, path, body| {
        match (method.clone(), path) {
            (Method::GET, USER_SECRET) => user_secret(),
            (Method::GET, _) => not_found(),
            (Method::DELETE, _) => (
                200,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
            ),
            _ => echo(body),
        }
    })
    .await;
    let deleted: Vec<_> = seen
        .iter()
        .filter(|s| s.method == Method::DELETE)
        .map(|s| s.path.clone())
        .collect();
    assert_eq!(
        deleted,
        vec!["/api/v1/namespaces/obs/services/grafana-alerting"],
        "the old claim stays until the rollout is complete"
    );
}

#[tokio::test]
async fn failure_counts_back_off_and_are_forgotten() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = context(Client::new(service, "obs"), empty_stores());
    let base = ctx.config.retry_base;
    assert_eq!(ctx.backoff("obs/a", true), base);
    assert_eq!(ctx.backoff("obs/a", true), base * 2);
    assert_eq!(ctx.backoff("obs/b", true), base);
    assert_eq!(ctx.failing(), 2);
    assert_eq!(ctx.backoff("obs/b", false), ctx.config.resync_interval);
    ctx.forget_failures("obs/a");
    assert_eq!(
        ctx.failing(),
        0,
        "a deleted or invalid cluster keeps no count"
    );
}
