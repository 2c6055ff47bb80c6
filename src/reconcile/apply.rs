//! The one place that writes children: server-side apply with one field manager, skipped
//! when the live object already says what we would say (a steady-state reconcile writes
//! nothing), create-once for generated Secrets, and cleanup of superseded children.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::hash::sha256_hex;
use crate::metrics::Metrics;
use crate::names;

/// Annotation with the digest of what the operator last applied: a removed field changes
/// it, so a steady-state skip never hides a removal.
pub const APPLIED_HASH_ANNOTATION: &str = "grafana-ha.io/applied-hash";

/// True when every field of `desired` has the same value in `live`. Lists must match item
/// by item; fields the server or others added are ignored.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (l, d) => l == d,
    }
}

/// Outcome of applying one object.
pub enum Applied<K> {
    /// Written (or written as a no-op) by the API server; the live object.
    Written(K),
    /// The live object already matched; nothing was sent.
    Unchanged(K),
}

impl<K> Applied<K> {
    pub fn into_inner(self) -> K {
        match self {
            Applied::Written(k) | Applied::Unchanged(k) => k,
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// Server-side applies `desired` unless `store` shows it already in place.
pub async fn apply<K>(
    api: &Api<K>,
    store: &Store<K>,
    mut desired: K,
    metrics: &Metrics,
) -> Result<Applied<K>>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let kind = kind_of::<K>();
    let name = desired.name_any();
    let digest = sha256_hex(
        &serde_json::to_vec(&desired).map_err(|source| Error::Serialize {
            what: format!("{kind} {name}"),
            source,
        })?,
    );
    desired
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.to_string(), digest.clone());
    if let Some(live) = store.get(&ObjectRef::from_obj(&desired))
        && live.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&digest)
        && in_place(live.as_ref(), &desired)
    {
        metrics.apply(&kind, "unchanged");
        return Ok(Applied::Unchanged(live.as_ref().clone()));
    }
    let params = PatchParams::apply(names::FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&desired)).await {
        Ok(live) => {
            metrics.apply(&kind, "applied");
            tracing::debug!(%kind, %name, "applied");
            Ok(Applied::Written(live))
        }
        Err(e) => {
            metrics.apply(&kind, "error");
            Err(e.into())
        }
    }
}

fn in_place<K: Serialize>(live: &K, desired: &K) -> bool {
    match (serde_json::to_value(live), serde_json::to_value(desired)) {
        (Ok(l), Ok(d)) => contains(&l, &d),
        _ => false,
    }
}

/// Creates a generated Secret unless one of that name exists: its value is made once and
/// never rewritten (the signing key encrypts data in the database). Returns true when it
/// was created now.
pub async fn create_once(
    api: &Api<Secret>,
    store: &Store<Secret>,
    secret: Secret,
    metrics: &Metrics,
) -> Result<bool> {
    let name = secret.name_any();
    if store.get(&ObjectRef::from_obj(&secret)).is_some() || api.get_opt(&name).await?.is_some() {
        return Ok(false);
    }
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {
            metrics.apply("Secret", "created");
            tracing::info!(%name, "generated Secret created");
            Ok(true)
        }
        // Another reconcile (or a user) created it first: keep theirs.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes an object unless it is already gone.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str, metrics: &Metrics) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {
            metrics.apply(&kind_of::<K>(), "deleted");
            tracing::info!(kind = %kind_of::<K>(), %name, "deleted superseded child");
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Names of the operator's objects of one kind, for one cluster, in one namespace, from a
/// label-scoped store.
pub fn owned_names<K>(
    store: &Store<K>,
    namespace: &str,
    cluster: &str,
    component: &str,
) -> Vec<String>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut names: Vec<String> = store
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace))
        // Already going away (e.g. a claim held by pvc-protection): asking again is noise.
        .filter(|o| o.meta().deletion_timestamp.is_none())
        .filter(|o| {
            let labels = o.labels();
            labels.get(names::CLUSTER_LABEL).map(String::as_str) == Some(cluster)
                && labels
                    .get("app.kubernetes.io/component")
                    .map(String::as_str)
                    == Some(component)
        })
        .map(|o| o.name_any())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contains_ignores_server_added_fields() {
        let live = json!({"a": 1, "b": {"c": "x", "d": "server"}, "l": [{"n": 1, "extra": true}]});
        assert!(contains(
            &live,
            &json!({"a": 1, "b": {"c": "x"}, "l": [{"n": 1}]})
        ));
    }

    #[test]
    fn contains_sees_drift_and_list_changes() {
        let live = json!({"a": 1, "l": [1, 2]});
        assert!(!contains(&live, &json!({"a": 2})));
        assert!(!contains(&live, &json!({"missing": 1})));
        assert!(!contains(&live, &json!({"l": [1]})));
        assert!(!contains(&live, &json!({"l": [2, 1]})));
    }
}
