//! Removal of superseded children, generic over kinds: everything that carries the
//! cluster's labels and that this round did not produce is deleted, unless a named
//! [`Retention`] rule keeps it.

use std::collections::BTreeSet;
use std::fmt::Debug;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use serde::de::DeserializeOwned;

use super::apply::delete_if_present;
use super::context::Context;
use super::optional::sweep_optional;
use super::records::Records;
use super::slim::Slim;
use crate::build::ChildKind;
use crate::error::Result;
use crate::names::Component;
use crate::optional_api::{HTTPRoute, ServiceMonitor};
use crate::resolve::ClusterRef;
use crate::status::JobState;

/// Why a child that this round did not produce is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// The signing key encrypts secrets stored in the database: never deleted.
    SigningKey,
    /// The generated admin password may be the only record of the password Grafana stored
    /// when it first created the admin user: kept when the user switches to their own.
    GeneratedAdminPassword,
    /// A Secret the planned pods still read (e.g. the RDS credentials copy while Secrets
    /// Manager cannot be read, which is then not rebuilt this round).
    ReferencedByPods,
    /// Static EFS volumes are Retain: the plugin data on EFS outlives every claim.
    StaticVolume,
    /// An older plugins claim stays until the rollout has moved every replica off it.
    PluginsClaimInUse,
    /// Older installer Jobs stay while an install is running.
    InstallerRunning,
    /// A ServiceAccount no longer planned (the user switched to their own) stays until
    /// the rollout has moved every replica off it: the old pods' projected tokens (IRSA,
    /// Pod Identity) are refreshed through it.
    ServiceAccountInUse,
}

/// What the retention rules look at.
pub struct RoundFacts {
    /// (kind, name) of every child this round produced.
    pub produced: BTreeSet<(ChildKind, String)>,
    /// Secrets the planned pods read.
    pub referenced_secrets: BTreeSet<String>,
    pub rollout_complete: bool,
    pub installer: Option<JobState>,
}

/// The rule that keeps an unproduced child, if any.
pub fn retention(
    kind: ChildKind,
    name: &str,
    component: Option<Component>,
    round: &RoundFacts,
) -> Option<Retention> {
    match (kind, component) {
        (ChildKind::Secret, Some(Component::SecretKey)) => Some(Retention::SigningKey),
        (ChildKind::Secret, Some(Component::AdminCredentials)) => {
            Some(Retention::GeneratedAdminPassword)
        }
        (ChildKind::Secret, _) if round.referenced_secrets.contains(name) => {
            Some(Retention::ReferencedByPods)
        }
        (ChildKind::PersistentVolume, _) => Some(Retention::StaticVolume),
        (ChildKind::PersistentVolumeClaim, _) if !round.rollout_complete => {
            Some(Retention::PluginsClaimInUse)
        }
        (ChildKind::Job, _) if round.installer == Some(JobState::Running) => {
            Some(Retention::InstallerRunning)
        }
        (ChildKind::ServiceAccount, _) if !round.rollout_complete => {
            Some(Retention::ServiceAccountInUse)
        }
        _ => None,
    }
}

/// Deletes every child of `cluster` of every kind that this round did not produce and no
/// rule retains. The match has no wildcard: a new kind of child must be swept here.
pub async fn remove_superseded(
    ctx: &Context,
    cluster: &ClusterRef,
    round: &RoundFacts,
) -> Result<()> {
    let s = &ctx.stores;
    let ns = cluster.namespace.as_str();
    for kind in ChildKind::ALL {
        match kind {
            ChildKind::Secret => {
                sweep(ctx, ctx.api::<Secret>(ns), &s.secrets, kind, cluster, round).await?
            }
            ChildKind::ConfigMap => {
                let api = ctx.api::<ConfigMap>(ns);
                sweep(ctx, api, &s.config_maps, kind, cluster, round).await?
            }
            ChildKind::ServiceAccount => {
                let api = ctx.api::<ServiceAccount>(ns);
                sweep(ctx, api, &s.service_accounts, kind, cluster, round).await?
            }
            ChildKind::Ingress => {
                let api = ctx.api::<Ingress>(ns);
                sweep(ctx, api, &s.ingresses, kind, cluster, round).await?
            }
            ChildKind::PersistentVolume => {
                let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
                sweep(ctx, api, &s.volumes, kind, cluster, round).await?
            }
            ChildKind::PersistentVolumeClaim => {
                let api = ctx.api::<PersistentVolumeClaim>(ns);
                sweep(ctx, api, &s.claims, kind, cluster, round).await?
            }
            ChildKind::Job => sweep(ctx, ctx.api::<Job>(ns), &s.jobs, kind, cluster, round).await?,
            ChildKind::Service => {
                sweep(
                    ctx,
                    ctx.api::<Service>(ns),
                    &s.services,
                    kind,
                    cluster,
                    round,
                )
                .await?
            }
            ChildKind::PodDisruptionBudget => {
                let api = ctx.api::<PodDisruptionBudget>(ns);
                sweep(ctx, api, &s.budgets, kind, cluster, round).await?
            }
            ChildKind::Deployment => {
                let api = ctx.api::<Deployment>(ns);
                sweep(ctx, api, &s.deployments, kind, cluster, round).await?
            }
            ChildKind::NetworkPolicy => {
                let api = ctx.api::<NetworkPolicy>(ns);
                sweep(ctx, api, &s.network_policies, kind, cluster, round).await?
            }
            // Not watched: listed, and only while their API is served.
            ChildKind::HttpRoute => {
                sweep_optional::<HTTPRoute>(ctx, kind, cluster, &round.produced).await?
            }
            ChildKind::ServiceMonitor => {
                sweep_optional::<ServiceMonitor>(ctx, kind, cluster, &round.produced).await?
            }
        }
    }
    Ok(())
}

async fn sweep<K>(
    ctx: &Context,
    api: Api<K>,
    store: &Records<K>,
    kind: ChildKind,
    cluster: &ClusterRef,
    round: &RoundFacts,
) -> Result<()>
where
    K: Slim + Clone + DeserializeOwned + Debug,
{
    // Those already going away (e.g. a claim held by pvc-protection) are not listed:
    // asking again is noise.
    let mut unproduced: Vec<(String, Option<Component>)> = store
        .children_of(cluster)
        .into_iter()
        .filter(|(name, _)| !round.produced.contains(&(kind, name.clone())))
        .collect();
    unproduced.sort();
    for (name, component) in unproduced {
        match retention(kind, &name, component, round) {
            Some(rule) => tracing::debug!(?kind, %name, ?rule, "kept a superseded child"),
            None => delete_if_present(&api, &name, &ctx.metrics).await?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round() -> RoundFacts {
        RoundFacts {
            produced: BTreeSet::new(),
            referenced_secrets: BTreeSet::from(["grafana-db-credentials".to_string()]),
            rollout_complete: true,
            installer: Some(JobState::Succeeded),
        }
    }

    #[test]
    fn signing_key_and_generated_admin_are_never_removed() {
        let r = round();
        let secret = |c| retention(ChildKind::Secret, "x", Some(c), &r);
        assert_eq!(secret(Component::SecretKey), Some(Retention::SigningKey));
        assert_eq!(
            secret(Component::AdminCredentials),
            Some(Retention::GeneratedAdminPassword)
        );
        assert_eq!(secret(Component::CacheConnection), None);
    }

    #[test]
    fn a_secret_the_pods_read_is_kept() {
        let r = round();
        assert_eq!(
            retention(
                ChildKind::Secret,
                "grafana-db-credentials",
                Some(Component::DatabaseCredentials),
                &r
            ),
            Some(Retention::ReferencedByPods)
        );
    }

    #[test]
    fn claims_wait_for_the_rollout_and_jobs_for_the_install() {
        let mut r = round();
        let claim = |r: &RoundFacts| retention(ChildKind::PersistentVolumeClaim, "c", None, r);
        let job = |r: &RoundFacts| retention(ChildKind::Job, "j", None, r);
        assert_eq!(claim(&r), None);
        assert_eq!(job(&r), None);
        r.rollout_complete = false;
        r.installer = Some(JobState::Running);
        assert_eq!(claim(&r), Some(Retention::PluginsClaimInUse));
        assert_eq!(job(&r), Some(Retention::InstallerRunning));
        assert_eq!(
            retention(ChildKind::PersistentVolume, "pv", None, &r),
            Some(Retention::StaticVolume)
        );
        assert_eq!(retention(ChildKind::Service, "s", None, &r), None);
        assert_eq!(
            retention(ChildKind::ServiceAccount, "sa", None, &r),
            Some(Retention::ServiceAccountInUse)
        );
        assert_eq!(
            retention(ChildKind::ServiceAccount, "sa", None, &round()),
            None
        );
    }
}
