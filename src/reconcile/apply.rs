//! The one place that writes children: server-side apply with one field manager, skipped
//! when the live object already says what we would say (a steady-state reconcile writes
//! nothing), create-once for generated Secrets and installer Jobs, in the order of
//! [`Children::into_ordered`].

use std::fmt::Debug;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolume;

use super::context::Context;
use super::optional::apply_optional;
use super::report::publish;
use crate::api::GrafanaCluster;
use crate::build::{Child, Children};
use crate::error::{Error, Result};
use crate::hash::sha256_hex;
use crate::metrics::Metrics;
use crate::names::{self, Component};
use crate::status::{EventReason, JobState};

/// Annotation with the digest of what the operator last applied: a removed field changes
/// it, so a steady-state skip never hides a removal.
pub const APPLIED_HASH_ANNOTATION: &str = "grafana-ha.io/applied-hash";

/// True when every field of `desired` has the same value in `live`; fields the server or
/// others added are ignored. Lists of named items (containers, env, volumes, ports: what
/// server-side apply merges by name) match by name, so an item another field manager added
/// (a sidecar) is left out of the comparison; other lists match item by item.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d))
            if !d.is_empty() && d.iter().all(|i| name_of(i).is_some()) =>
        {
            d.iter().all(|dv| {
                l.iter()
                    .find(|lv| name_of(lv) == name_of(dv))
                    .is_some_and(|lv| contains(lv, dv))
            })
        }
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (l, d) => l == d,
    }
}

fn name_of(item: &Value) -> Option<&str> {
    item.get("name")?.as_str()
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

/// What the status reads from the children just written.
pub struct AppliedChildren {
    pub deployment: Deployment,
    pub installer: Option<JobState>,
}

/// Applies every child in order. No wildcard: a new kind of child must be applied here.
pub async fn apply_children(
    ctx: &Context,
    gc: &GrafanaCluster,
    children: Children,
) -> Result<AppliedChildren> {
    let ns = gc.namespace().unwrap_or_default();
    let (m, stores) = (&ctx.metrics, &ctx.stores);
    let mut deployment = None;
    let mut installer = None;
    for child in children.into_ordered() {
        match child {
            Child::GeneratedSecret(secret) => {
                let reason = match Component::of_labels(secret.labels()) {
                    Some(Component::SecretKey) => EventReason::SecretKeyGenerated,
                    _ => EventReason::AdminPasswordGenerated,
                };
                let name = secret.name_any();
                if create_once(&ctx.api(&ns), &stores.secrets, secret, m).await? {
                    let note = match reason {
                        EventReason::SecretKeyGenerated => {
                            format!("generated the shared signing key in Secret {name}")
                        }
                        _ => format!("generated the admin password in Secret {name}"),
                    };
                    publish(ctx, gc, false, reason, note).await;
                }
            }
            Child::Secret(s) => {
                apply(&ctx.api(&ns), &stores.secrets, s, m).await?;
            }
            Child::ConfigMap(c) => {
                apply(&ctx.api(&ns), &stores.config_maps, c, m).await?;
            }
            Child::ServiceAccount(a) => {
                apply(&ctx.api(&ns), &stores.service_accounts, a, m).await?;
            }
            Child::Volume(v) => {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                apply(&api, &stores.volumes, v, m).await?;
            }
            Child::Claim(c) => {
                apply(&ctx.api(&ns), &stores.claims, c, m).await?;
            }
            Child::InstallerJob(job) => {
                installer = Some(JobState::of(&create_job(ctx, &ns, job).await?));
            }
            Child::Service(s) => {
                apply(&ctx.api(&ns), &stores.services, s, m).await?;
            }
            Child::Ingress(i) => {
                apply(&ctx.api(&ns), &stores.ingresses, i, m).await?;
            }
            Child::DisruptionBudget(p) => {
                apply(&ctx.api(&ns), &stores.budgets, p, m).await?;
            }
            Child::Deployment(d) => {
                deployment = Some(apply(&ctx.api(&ns), &stores.deployments, d, m).await?);
            }
            Child::NetworkPolicy(p) => {
                apply(&ctx.api(&ns), &stores.network_policies, p, m).await?;
            }
            Child::HttpRoute(r) => apply_optional(ctx, &ns, r).await?,
            Child::ServiceMonitor(s) => apply_optional(ctx, &ns, s).await?,
        }
    }
    let deployment = deployment
        .map(Applied::into_inner)
        .ok_or_else(|| Error::Config("the children have no Deployment".into()))?;
    Ok(AppliedChildren {
        deployment,
        installer,
    })
}

/// A Job is a one-shot with an immutable template: create it when missing, never re-apply
/// a finished one.
async fn create_job(ctx: &Context, ns: &str, job: Job) -> Result<Job> {
    let api: Api<Job> = ctx.api(ns);
    let live = match ctx.stores.jobs.get(&ObjectRef::from_obj(&job)) {
        Some(live) => Some(live.as_ref().clone()),
        None => api.get_opt(&job.name_any()).await?,
    };
    match live {
        Some(live) => Ok(live),
        None => Ok(apply(&api, &ctx.stores.jobs, job, &ctx.metrics)
            .await?
            .into_inner()),
    }
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
    fn named_items_match_by_name_and_foreign_ones_are_ignored() {
        let live = json!({"containers": [{"name": "grafana", "image": "g:1"}, {"name": "sidecar", "image": "s"}]});
        assert!(contains(
            &live,
            &json!({"containers": [{"name": "grafana", "image": "g:1"}]})
        ));
        assert!(!contains(
            &live,
            &json!({"containers": [{"name": "grafana", "image": "g:2"}]})
        ));
        assert!(
            !contains(&live, &json!({"containers": [{"name": "other"}]})),
            "a missing item is drift"
        );
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
