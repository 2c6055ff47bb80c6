//! The user's own ServiceAccount (`serviceAccount.create: false`): it must exist before the
//! pods are pointed at it, or the ReplicaSet cannot create a single pod.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{Api, Client, ResourceExt};

use crate::api::GrafanaCluster;

/// Why the user's ServiceAccount cannot be used; None when it exists, when the operator
/// creates its own, or without a client (`render` without a kubeconfig).
pub(super) async fn service_account_problem(
    gc: &GrafanaCluster,
    client: Option<&Client>,
) -> Result<Option<String>, kube::Error> {
    let Some(client) = client else {
        return Ok(None);
    };
    let Some(sa) = gc.spec.service_account.as_ref() else {
        return Ok(None);
    };
    let (Some(false), Some(name)) = (sa.create, sa.name.as_deref()) else {
        return Ok(None);
    };
    let namespace = gc.namespace().unwrap_or_default();
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    Ok(api.get_opt(name).await?.is_none().then(|| {
        format!(
            "ServiceAccount {namespace}/{name} (spec.serviceAccount.name) does not exist: create it or set serviceAccount.create: true"
        )
    }))
}
