//! The operator's identity in the e2e suite (issue 12, RBAC sufficiency): every operator a
//! test starts, in-process or as a subprocess, runs as a ServiceAccount bound to exactly the
//! chart's ClusterRole as rendered into deploy/manifests/rbac.yaml (read from the file, never
//! restated here), so every e2e run proves that role sufficient. The test's own calls keep
//! the test bed's admin client.
//!
//! The objects live under fixed names and are server-side applied on first use per test
//! process: idempotent, and harmless when several test processes race.

#![allow(dead_code)]

use std::path::PathBuf;

use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::OnceCell;

use super::kube::repo_file;

/// The namespace of the operator's ServiceAccount (the chart's release namespace, here).
pub const NAMESPACE: &str = "grafana-ha-e2e";
/// The operator's ServiceAccount, as the chart names it.
pub const SERVICE_ACCOUNT: &str = "grafana-ha-operator";
/// The chart's ClusterRole and its binding, under a name of the suite's own (a chart
/// installed into the same bed keeps its own objects).
pub const CLUSTER_ROLE: &str = "grafana-ha-operator-e2e";
/// The field manager of these objects.
const MANAGER: &str = "e2e-rbac";

/// The user name a token of ServiceAccount `sa` in `ns` authenticates as.
pub fn service_account_user(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

/// The groups a real token of a ServiceAccount in `ns` carries.
pub fn service_account_groups(ns: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{ns}"),
        "system:authenticated".into(),
    ]
}

/// The operator's user name.
pub fn user() -> String {
    service_account_user(NAMESPACE, SERVICE_ACCOUNT)
}

/// The operator's groups.
pub fn groups() -> Vec<String> {
    service_account_groups(NAMESPACE)
}

/// The objects of deploy/manifests/rbac.yaml, as JSON.
fn rendered_rbac() -> Vec<serde_json::Value> {
    let yaml = std::fs::read_to_string(repo_file("deploy/manifests/rbac.yaml"))
        .expect("deploy/manifests/rbac.yaml");
    serde_yaml::Deserializer::from_str(&yaml)
        .filter_map(|doc| serde::Deserialize::deserialize(doc).ok())
        .filter(|v: &serde_json::Value| v.is_object())
        .collect()
}

/// The chart's ClusterRole for the operator, as rendered into deploy/manifests/.
pub fn chart_cluster_role() -> ClusterRole {
    rendered_rbac()
        .into_iter()
        .find(|v| v["kind"] == "ClusterRole")
        .map(|v| serde_json::from_value(v).expect("ClusterRole"))
        .expect("a ClusterRole in deploy/manifests/rbac.yaml")
}

/// The chart's namespaced Role for leader election (the Lease), as rendered.
pub fn chart_leader_role() -> Role {
    rendered_rbac()
        .into_iter()
        .find(|v| {
            v["kind"] == "Role" && v["metadata"]["name"] == "grafana-ha-operator-leader-election"
        })
        .map(|v| serde_json::from_value(v).expect("Role"))
        .expect("the leader-election Role in deploy/manifests/rbac.yaml")
}

/// `value` with its metadata replaced by a name (and namespace) of the suite's own; the
/// rendered labels are kept.
fn renamed<T: serde::Serialize + serde::de::DeserializeOwned>(
    value: &T,
    name: &str,
    namespace: Option<&str>,
) -> T {
    let mut v = serde_json::to_value(value).expect("serialize");
    v["metadata"]["name"] = name.into();
    match namespace {
        Some(ns) => v["metadata"]["namespace"] = ns.into(),
        None => {
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    serde_json::from_value(v).expect("deserialize")
}

async fn apply<K>(api: &Api<K>, name: &str, value: &K)
where
    K: kube::Resource + serde::Serialize + serde::de::DeserializeOwned + Clone + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(value),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name} for the operator's ServiceAccount: {e}"));
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("object")
}

/// A ServiceAccount `sa` in `ns` and `role` bound to it under `role_name`.
async fn bind_service_account(
    admin: &Client,
    ns: &str,
    sa: &str,
    role_name: &str,
    role: &ClusterRole,
) {
    apply(
        &Api::<ServiceAccount>::namespaced(admin.clone(), ns),
        sa,
        &from_json(serde_json::json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": sa, "namespace": ns},
        })),
    )
    .await;
    let mut role = renamed(role, role_name, None);
    role.metadata.managed_fields = None;
    apply(&Api::<ClusterRole>::all(admin.clone()), role_name, &role).await;
    apply(
        &Api::<ClusterRoleBinding>::all(admin.clone()),
        role_name,
        &from_json(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": role_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        })),
    )
    .await;
}

/// Waits until `client` may `verb` `group`/`resource` (in `namespace`), by the API
/// server's own answer (SelfSubjectAccessReview).
pub async fn wait_allowed(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) {
    let review: SelfSubjectAccessReview = from_json(serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {
            "verb": verb, "group": group, "resource": resource, "namespace": namespace,
        }},
    }));
    let api = Api::<SelfSubjectAccessReview>::all(client.clone());
    let what = format!("the operator's ServiceAccount to be allowed to {verb} {resource}");
    super::kube::wait_for(&what, std::time::Duration::from_secs(30), || async {
        let answer = api.create(&PostParams::default(), &review).await.ok()?;
        answer.status.is_some_and(|s| s.allowed).then_some(())
    })
    .await;
}

/// Set once this test process has applied the operator's identity.
static APPLIED: OnceCell<()> = OnceCell::const_new();

/// The operator's ServiceAccount and the chart's ClusterRole bound to it, applied once per
/// test process.
pub async fn ensure_operator_identity(admin: &Client) {
    APPLIED
        .get_or_init(|| async {
            apply(
                &Api::<Namespace>::all(admin.clone()),
                NAMESPACE,
                &from_json(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE},
                })),
            )
            .await;
            let role = chart_cluster_role();
            bind_service_account(admin, NAMESPACE, SERVICE_ACCOUNT, CLUSTER_ROLE, &role).await;
            // The API server's authorizer learns of a new binding through its own watch:
            // the operator's first requests must not race it.
            let operator = impersonating(user(), groups()).await;
            wait_allowed(&operator, "list", "grafana-ha.io", "grafanaclusters", None).await;
        })
        .await;
}

/// A client from the test bed's KUBECONFIG that impersonates `user` with `groups`.
pub async fn impersonating(user: String, groups: Vec<String>) -> Client {
    let mut config = kube::Config::infer().await.expect("kubeconfig");
    config.auth_info.impersonate = Some(user);
    config.auth_info.impersonate_groups = Some(groups);
    Client::try_from(config).expect("impersonating client")
}

/// [`ensure_operator_identity`] with an admin client of its own, made only the first time.
async fn ensure_applied() {
    if !APPLIED.initialized() {
        ensure_operator_identity(&super::kube::client().await).await;
    }
}

/// The in-process operator's default client: the chart's ServiceAccount, impersonated.
pub async fn operator_client() -> Client {
    ensure_applied().await;
    impersonating(user(), groups()).await
}

/// A kubeconfig for an operator subprocess: the test bed's, with every user impersonating
/// the chart's ServiceAccount (`as`, `as-groups`; kube-rs sends them as Impersonate-*
/// headers). Written next to the bed's kubeconfig so relative certificate paths still hold.
pub async fn operator_kubeconfig() -> PathBuf {
    ensure_applied().await;
    let source = PathBuf::from(std::env::var("KUBECONFIG").expect("KUBECONFIG"));
    let text = std::fs::read_to_string(&source).expect("reading KUBECONFIG");
    let mut config: serde_yaml::Value = serde_yaml::from_str(&text).expect("KUBECONFIG parses");
    let users = config
        .get_mut("users")
        .and_then(|u| u.as_sequence_mut())
        .expect("users in KUBECONFIG");
    for entry in users {
        let user_map = entry
            .get_mut("user")
            .and_then(|u| u.as_mapping_mut())
            .expect("a user entry");
        user_map.insert("as".into(), user().into());
        user_map.insert(
            "as-groups".into(),
            serde_yaml::Value::Sequence(groups().into_iter().map(Into::into).collect()),
        );
    }
    let dir = source.parent().expect("KUBECONFIG's directory");
    let target = dir.join("kubeconfig-operator-sa");
    // Written whole and renamed, so a racing test process never reads half a file.
    let tmp = dir.join(format!("kubeconfig-operator-sa.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_yaml::to_string(&config).expect("yaml")).expect("writing");
    std::fs::rename(&tmp, &target).expect("renaming the kubeconfig");
    target
}

/// A ServiceAccount `sa` in `ns` bound to `role` under `role_name` (tests/e2e_rbac.rs's
/// necessity test: the chart's ClusterRole with one rule removed); a client impersonating it.
pub async fn narrowed_client(
    admin: &Client,
    ns: &str,
    sa: &str,
    role_name: &str,
    role: &ClusterRole,
) -> Client {
    bind_service_account(admin, ns, sa, role_name, role).await;
    impersonating(service_account_user(ns, sa), service_account_groups(ns)).await
}

/// The chart's leader-election Role and its binding to the operator's ServiceAccount, in
/// `ns` (the chart puts them in its release namespace; a test that elects in a namespace of
/// its own gets the same rules there).
pub async fn bind_leader_role(admin: &Client, ns: &str) {
    ensure_operator_identity(admin).await;
    let name = "grafana-ha-operator-leader-election";
    let mut role = renamed(&chart_leader_role(), name, Some(ns));
    role.metadata.managed_fields = None;
    apply(&Api::<Role>::namespaced(admin.clone(), ns), name, &role).await;
    apply(
        &Api::<RoleBinding>::namespaced(admin.clone(), ns),
        name,
        &from_json(serde_json::json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
        })),
    )
    .await;
    let operator = impersonating(user(), groups()).await;
    wait_allowed(
        &operator,
        "create",
        "coordination.k8s.io",
        "leases",
        Some(ns),
    )
    .await;
}
