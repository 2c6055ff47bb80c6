//! One reconcile round of one GrafanaCluster: validate -> gather -> plan (the pure middle
//! shared with `render`) -> apply -> remove what is superseded -> report.

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::apply::apply_children;
use super::cleanup::{RoundFacts, remove_superseded};
use super::context::Context;
use super::report::{publish, write_status};
use super::{Outcome, RetryCause};
use crate::api::GrafanaCluster;
use crate::build::Children;
use crate::error::{Error, Result};
use crate::facts::AccessPointRequest;
use crate::gather::{self, Sources};
use crate::names;
use crate::pipeline::{self, Planned};
use crate::resolve::{CreateOutcome, Plan, Resolution, after_access_point_create};
use crate::status::{self, ConditionType, EventReason, JobState, Rollout, StatusInputs};

pub async fn reconcile_cluster(gc: &GrafanaCluster, ctx: &Context) -> Result<Outcome> {
    if gc.metadata.deletion_timestamp.is_some() {
        // Owner references let the garbage collector remove the children.
        return Ok(Outcome::Deleting);
    }
    if let Some(message) = pipeline::validate(gc) {
        tracing::warn!(cluster = %gc.name_any(), %message, "spec refused");
        let inputs = StatusInputs {
            invalid: Some(message),
            ..StatusInputs::default()
        };
        write_status(gc, ctx, status::compute(gc, &inputs, Timestamp::now())).await?;
        return Ok(Outcome::InvalidSpec);
    }
    // Lookups made for this cluster are remembered: a discovery refresh that changes one
    // triggers this cluster's next round (see aws/interest.rs).
    let discovery = ctx.discovery.for_owner(&format!(
        "{}/{}",
        gc.namespace().unwrap_or_default(),
        gc.name_any()
    ));
    let sources = Sources {
        discovery: &discovery,
        client: Some(&ctx.client),
        secret_cache: Some(&ctx.stores.secrets),
        deployment_cache: Some(&ctx.stores.deployments),
        autoscaler_cache: Some(&ctx.stores.autoscalers),
        snapshots_allowed: ctx.config.pre_upgrade_snapshots,
        optional_apis: Some(&ctx.optional_apis),
    };
    let gathered = gather::gather(gc, sources).await?;
    let Planned {
        mut resolution,
        children,
    } = pipeline::plan(gc, &gathered);
    let created = match resolution.access_point.clone() {
        Some(request) => Some(create_access_point(ctx, gc, &mut resolution, &request).await),
        None => None,
    };
    if let Some(plan) = &resolution.plan {
        request_snapshot(ctx, gc, plan).await;
    }
    let written = match (&resolution.plan, children) {
        (Some(plan), Some(children)) => Some(write(ctx, gc, plan, children).await),
        _ => None,
    };
    let (rollout, installer, apply_error) = match written {
        Some(Ok((rollout, installer))) => (Some(rollout), installer, None),
        Some(Err(e)) => (live_rollout(ctx, gc), None, Some(e)),
        None => (live_rollout(ctx, gc), None, None),
    };
    let inputs = StatusInputs {
        invalid: None,
        resolution: Some(&resolution),
        rollout,
        plugins_job: installer,
        apply_error: apply_error.as_ref().map(Error::to_string),
    };
    let status = status::compute(gc, &inputs, Timestamp::now());
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == ConditionType::Ready.as_str() && c.status == "True");
    write_status(gc, ctx, status).await?;
    Ok(match created {
        Some(true) => Outcome::Created,
        Some(false) => Outcome::Retry(RetryCause::Aws),
        None => outcome(&resolution, apply_error.as_ref(), ready),
    })
}

/// Creates the EFS access point resolve asked for, records an Event, and puts the outcome
/// into the storage condition. Nothing is applied this round either way (there is no plan),
/// so a failure never touches a running Deployment. True when it was created.
async fn create_access_point(
    ctx: &Context,
    gc: &GrafanaCluster,
    resolution: &mut Resolution,
    request: &AccessPointRequest,
) -> bool {
    let storage = resolution.storage.clone();
    if !ctx.config.create_access_points {
        resolution.storage = after_access_point_create(storage, request, CreateOutcome::Disabled);
        return false;
    }
    match ctx.discovery.create_access_point(request).await {
        Ok(id) => {
            resolution.storage =
                after_access_point_create(storage, request, CreateOutcome::Created(&id));
            let note = format!(
                "created EFS access point {id} on {} with root directory {} owned by {}:{} (mode {}); it stays when the GrafanaCluster is deleted",
                request.file_system_id,
                request.root_path,
                request.uid,
                request.gid,
                request.permissions
            );
            publish(ctx, gc, false, EventReason::AccessPointCreated, note).await;
            true
        }
        Err(e) => {
            tracing::warn!(cluster = %gc.name_any(), error = %e, "creating the EFS access point failed");
            let message = e.to_string();
            let failed = CreateOutcome::Failed(gather::aws_reason(&e), &message);
            resolution.storage = after_access_point_create(storage, request, failed);
            false
        }
    }
}

/// Asks RDS for the pre-upgrade snapshot the plan wants (idempotent by name). A failure is
/// reported and asked again next round; the upgrade waits meanwhile (bounded).
async fn request_snapshot(ctx: &Context, gc: &GrafanaCluster, plan: &Plan) {
    let Some(request) = &plan.upgrade.snapshot else {
        return;
    };
    if !ctx.config.pre_upgrade_snapshots {
        // gather then reports the snapshot failed, with why.
        return;
    }
    let region = gc.spec.aws.as_ref().and_then(|a| a.region.as_deref());
    let result = ctx
        .discovery
        .create_snapshot(region, &request.database_arn, &request.snapshot_id)
        .await;
    let (warning, note) = match &result {
        Ok(()) => (
            false,
            format!(
                "asked RDS for snapshot {} of {} before the upgrade",
                request.snapshot_id, request.database_arn
            ),
        ),
        Err(e) => {
            tracing::debug!(chain = %e.chain(), "creating the pre-upgrade snapshot failed");
            (
                true,
                format!("creating the pre-upgrade snapshot failed: {e}"),
            )
        }
    };
    super::report::publish(ctx, gc, warning, EventReason::SnapshotRequested, note).await;
}

/// Applies the children, then removes what they superseded.
async fn write(
    ctx: &Context,
    gc: &GrafanaCluster,
    plan: &Plan,
    children: Children,
) -> Result<(Rollout, Option<JobState>)> {
    let produced: BTreeSet<_> = children.names().into_iter().collect();
    let applied = apply_children(ctx, gc, children).await.inspect_err(
        |e| tracing::warn!(cluster = %plan.cluster.name, error = %e, "applying children failed"),
    )?;
    let rollout = applied.rollout;
    let round = RoundFacts {
        produced,
        referenced_secrets: crate::resolve::references(&plan.cluster.name, &gc.spec)
            .into_iter()
            .map(|u| u.name)
            .collect(),
        rollout_complete: rollout.complete(plan.replicas),
        installer: applied.installer,
    };
    if let Err(e) = remove_superseded(ctx, &plan.cluster, &round).await {
        // Leftovers are retried next round; they never block the status.
        tracing::warn!(cluster = %plan.cluster.name, error = %e, "removing superseded children failed");
    }
    Ok((rollout, applied.installer))
}

/// The rollout of the Deployment as cached, when nothing was applied this round.
fn live_rollout(ctx: &Context, gc: &GrafanaCluster) -> Option<Rollout> {
    let namespace = gc.namespace().unwrap_or_default();
    ctx.stores
        .deployments
        .get(Some(&namespace), &names::deployment(&gc.name_any()))
        .map(|d| d.facts.rollout)
}

/// What to do next, from what happened.
pub fn outcome(resolution: &Resolution, apply_error: Option<&Error>, ready: bool) -> Outcome {
    if let Some(e) = apply_error {
        return Outcome::Retry(RetryCause::Apply(e.class()));
    }
    if resolution.stale() {
        return Outcome::Retry(RetryCause::Aws);
    }
    if resolution.plan.is_none() {
        let aws = resolution
            .conditions()
            .iter()
            .any(|(_, c)| !c.status && c.reason.is_aws_failure());
        return Outcome::Retry(if aws {
            RetryCause::Aws
        } else {
            RetryCause::Unresolved
        });
    }
    if ready {
        Outcome::Synced
    } else {
        // Rollout in progress: the Deployment's watch events bring us back.
        Outcome::RollingOut
    }
}
