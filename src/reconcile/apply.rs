//! The one place that writes children: server-side apply with one field manager, skipped
//! when the live object already says what we would say (a steady-state reconcile writes
//! nothing), create-once for generated Secrets and installer Jobs, in the order of
//! [`Children::into_ordered`].

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolume;

use super::context::Context;
use super::optional::apply_optional;
use super::owned;
use super::records::Records;
use super::report::publish;
use super::slim::{DeploymentFacts, Digest, Slim};
use crate::api::GrafanaCluster;
use crate::build::{Child, Children};
use crate::error::{Error, Result};
use crate::hash::sha256_hex;
use crate::metrics::Metrics;
use crate::names::{self, Component};
use crate::status::{EventReason, JobState, Rollout};

/// Annotation with the digest of what the operator last applied: a removed field changes
/// it, so a steady-state skip never hides a removal.
pub const APPLIED_HASH_ANNOTATION: &str = "grafana-ha.io/applied-hash";

/// Outcome of applying one object, with what reconciles read of the live one (its
/// [`Slim::Facts`]).
pub enum Applied<F> {
    /// Written (or written as a no-op) by the API server; facts of the object it returned.
    Written(F),
    /// The live object already matched; nothing was sent. Facts of the kept record.
    Unchanged(F),
}

impl<F> Applied<F> {
    pub fn into_facts(self) -> F {
        match self {
            Applied::Written(f) | Applied::Unchanged(f) => f,
        }
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).to_string()
}

/// Server-side applies `desired` unless `store` shows it already in place: the live
/// object's owned-field digest (see [`owned`](super::owned)) equals the desired one, or
/// equals what the API server made of this same desired object last time (`settled`: a
/// field the server normalises, such as a quantity, never matches byte for byte).
pub async fn apply<K>(
    api: &Api<K>,
    store: &Records<K>,
    settled: &Settled,
    mut desired: K,
    metrics: &Metrics,
) -> Result<Applied<K::Facts>>
where
    K: Slim + Clone + DeserializeOwned + Debug,
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
    let wanted = owned::desired_digest(&desired);
    let key = settled_key(&kind, &desired);
    // The applied hash is itself an owned field (an annotation the operator sets), so equal
    // owned-field digests mean the live object carries this very desired object's hash.
    if let Some(live) = store.get_for(&desired)
        && let Some(have) = live.digest.map(Digest::to_hex)
        && (wanted.as_ref() == Some(&have) || settled.holds(&key, wanted.as_deref(), &have))
    {
        metrics.apply(&kind, "unchanged");
        return Ok(Applied::Unchanged(live.facts));
    }
    let params = PatchParams::apply(names::FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&desired)).await {
        Ok(live) => {
            metrics.apply(&kind, "applied");
            tracing::debug!(%kind, %name, "applied");
            settled.record(key, wanted, owned::live_digest(&live));
            Ok(Applied::Written(live.facts()))
        }
        Err(e) => {
            metrics.apply(&kind, "error");
            Err(e.into())
        }
    }
}

fn settled_key<K: Resource>(kind: &str, object: &K) -> String {
    let meta = object.meta();
    format!(
        "{kind}/{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Children whose live owned fields differ from what the operator sent although nothing
/// else touched them (the server normalised a value): per child, the desired digest and the
/// live digest the API server answered with. Only such children have an entry, so this
/// stays small; after a restart each of them is applied once more (a no-op write). An entry
/// goes when its child's deletion is watched ([`Settled::forget`]).
#[derive(Default)]
pub struct Settled {
    pairs: Mutex<HashMap<String, (String, String)>>,
}

impl Settled {
    fn holds(&self, key: &str, wanted: Option<&str>, have: &str) -> bool {
        let pairs = self.pairs.lock().unwrap_or_else(PoisonError::into_inner);
        pairs
            .get(key)
            .is_some_and(|(d, l)| Some(d.as_str()) == wanted && l == have)
    }

    fn record(&self, key: String, wanted: Option<String>, live: Option<String>) {
        let mut pairs = self.pairs.lock().unwrap_or_else(PoisonError::into_inner);
        match (wanted, live) {
            (Some(d), Some(l)) if d != l => {
                tracing::debug!(child = %key, "the server keeps this child's owned fields in another form");
                pairs.insert(key, (d, l));
            }
            _ => {
                pairs.remove(&key);
            }
        }
    }

    /// Forgets a deleted child: a child of that name made later starts with no pair.
    pub fn forget<K: Resource<DynamicType = ()>>(&self, child: &K) {
        let key = settled_key(&kind_of::<K>(), child);
        let mut pairs = self.pairs.lock().unwrap_or_else(PoisonError::into_inner);
        if pairs.remove(&key).is_some() {
            tracing::debug!(child = %key, "deleted; its settled pair is forgotten");
        }
    }

    /// How many children are remembered.
    pub fn len(&self) -> usize {
        self.pairs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Creates a generated Secret unless one of that name exists: its value is made once and
/// never rewritten (the signing key encrypts data in the database). Returns true when it
/// was created now.
pub async fn create_once(
    api: &Api<Secret>,
    store: &Records<Secret>,
    secret: Secret,
    metrics: &Metrics,
) -> Result<bool> {
    let name = secret.name_any();
    if store.get_for(&secret).is_some() || api.get_opt(&name).await?.is_some() {
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
    pub rollout: Rollout,
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
                apply(&ctx.api(&ns), &stores.secrets, &ctx.settled, s, m).await?;
            }
            Child::ConfigMap(c) => {
                apply(&ctx.api(&ns), &stores.config_maps, &ctx.settled, c, m).await?;
            }
            Child::ServiceAccount(a) => {
                apply(&ctx.api(&ns), &stores.service_accounts, &ctx.settled, a, m).await?;
            }
            Child::Volume(v) => {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                apply(&api, &stores.volumes, &ctx.settled, v, m).await?;
            }
            Child::Claim(c) => {
                apply(&ctx.api(&ns), &stores.claims, &ctx.settled, c, m).await?;
            }
            Child::InstallerJob(job) => {
                installer = Some(create_job(ctx, &ns, job).await?);
            }
            Child::Service(s) => {
                apply(&ctx.api(&ns), &stores.services, &ctx.settled, s, m).await?;
            }
            Child::Ingress(i) => {
                apply(&ctx.api(&ns), &stores.ingresses, &ctx.settled, i, m).await?;
            }
            Child::DisruptionBudget(p) => {
                apply(&ctx.api(&ns), &stores.budgets, &ctx.settled, p, m).await?;
            }
            Child::Deployment(d) => {
                deployment =
                    Some(apply(&ctx.api(&ns), &stores.deployments, &ctx.settled, d, m).await?);
            }
            Child::NetworkPolicy(p) => {
                apply(&ctx.api(&ns), &stores.network_policies, &ctx.settled, p, m).await?;
            }
            Child::HttpRoute(r) => apply_optional(ctx, &ns, r).await?,
            Child::ServiceMonitor(s) => apply_optional(ctx, &ns, s).await?,
        }
    }
    let deployment: DeploymentFacts = deployment
        .map(Applied::into_facts)
        .ok_or_else(|| Error::Config("the children have no Deployment".into()))?;
    Ok(AppliedChildren {
        rollout: deployment.rollout,
        installer,
    })
}

/// A Job is a one-shot with an immutable template: create it when missing, never re-apply
/// a finished one. Returns how far it has come.
async fn create_job(ctx: &Context, ns: &str, job: Job) -> Result<JobState> {
    let api: Api<Job> = ctx.api(ns);
    if let Some(live) = ctx.stores.jobs.get_for(&job) {
        return Ok(live.facts);
    }
    match api.get_opt(&job.name_any()).await? {
        Some(live) => Ok(live.facts()),
        None => Ok(
            apply(&api, &ctx.stores.jobs, &ctx.settled, job, &ctx.metrics)
                .await?
                .into_facts(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    fn service(name: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    #[test]
    fn a_settled_pair_is_kept_only_while_the_forms_differ_and_forgotten_on_deletion() {
        let settled = Settled::default();
        let (a, b) = (service("a"), service("b"));
        let key = |s: &Service| settled_key(&kind_of::<Service>(), s);
        settled.record(key(&a), Some("d".into()), Some("l".into()));
        settled.record(key(&b), Some("d".into()), Some("d".into()));
        assert!(settled.holds(&key(&a), Some("d"), "l"));
        assert!(!settled.holds(&key(&a), Some("other"), "l"));
        assert_eq!(settled.len(), 1, "equal forms need no pair");
        settled.forget(&b);
        assert_eq!(settled.len(), 1, "forgetting an unknown child is a no-op");
        settled.forget(&a);
        assert!(settled.is_empty());
        assert!(!settled.holds(&key(&a), Some("d"), "l"));
    }
}
