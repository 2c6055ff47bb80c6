//! The status of a GrafanaCluster: what is in use, the rollout counts, and the conditions,
//! each decided by its own small function from the same facts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::conditions::{ConditionState, ConditionType, Reason};
use super::rollout::{JobState, Rollout};
use crate::api::{GrafanaCluster, GrafanaClusterStatus, PluginsStatus};
use crate::names;
use crate::resolve::{Resolution, image};

/// Everything the status is computed from.
#[derive(Clone, Debug, Default)]
pub struct StatusInputs<'a> {
    /// Why the spec is refused, if it is.
    pub invalid: Option<String>,
    pub resolution: Option<&'a Resolution>,
    pub rollout: Option<Rollout>,
    pub plugins_job: Option<JobState>,
    /// A failure writing the children this time.
    pub apply_error: Option<String>,
}

type States = Vec<(ConditionType, ConditionState)>;

/// The status for `gc`: conditions keep their lastTransitionTime while their status holds.
pub fn compute(
    gc: &GrafanaCluster,
    inputs: &StatusInputs<'_>,
    now: Timestamp,
) -> GrafanaClusterStatus {
    let previous = gc.status.clone().unwrap_or_default();
    let generation = gc.metadata.generation;
    let mut status = carried_over(gc, &previous, inputs.rollout.as_ref());
    let states = if let Some(invalid) = &inputs.invalid {
        invalid_states(invalid)
    } else if let Some(resolution) = inputs.resolution {
        record_in_use(&mut status, gc, resolution, inputs.plugins_job);
        cluster_states(gc.spec.replicas, resolution, inputs)
    } else {
        status.conditions = previous.conditions;
        return status;
    };
    status.conditions = merge_conditions(&previous.conditions, states, generation, now);
    status
}

/// The status fields that hold until something newer is known.
fn carried_over(
    gc: &GrafanaCluster,
    previous: &GrafanaClusterStatus,
    rollout: Option<&Rollout>,
) -> GrafanaClusterStatus {
    let name = gc.metadata.name.clone().unwrap_or_default();
    GrafanaClusterStatus {
        observed_generation: gc.metadata.generation,
        selector: Some(names::selector_string(&name)),
        image: previous.image.clone(),
        database: previous.database.clone(),
        cache: previous.cache.clone(),
        storage: previous.storage.clone(),
        plugins: previous.plugins.clone(),
        database_version: previous.database_version.clone(),
        upgrade: previous.upgrade.clone(),
        pre_upgrade_snapshot_arn: previous.pre_upgrade_snapshot_arn.clone(),
        data_sources: previous.data_sources.clone(),
        connections_per_replica: previous.connections_per_replica,
        replicas: rollout.map(|r| r.replicas).or(previous.replicas),
        ready_replicas: rollout.map(|r| r.ready).or(previous.ready_replicas),
        updated_replicas: rollout.map(|r| r.updated).or(previous.updated_replicas),
        conditions: Vec::new(),
    }
}

/// What is in use, from the plan (the last good targets included).
fn record_in_use(
    status: &mut GrafanaClusterStatus,
    gc: &GrafanaCluster,
    resolution: &Resolution,
    plugins_job: Option<JobState>,
) {
    let Some(plan) = &resolution.plan else {
        status.image = status.image.take().or_else(|| Some(image(&gc.spec)));
        return;
    };
    // What the provisioning file holds; None once there is nothing to provision or retire.
    status.data_sources = plan
        .data_sources
        .as_ref()
        .map(|d| Box::new(d.status.clone()));
    status.image = Some(plan.image.clone());
    status.database = Some(plan.database.status.clone());
    status.cache = plan.cache.as_ref().map(|c| c.status.clone());
    status.storage = Some(plan.storage.status.clone());
    status.database_version = plan.upgrade.database_version.clone();
    status.connections_per_replica = i32::try_from(plan.database.pool.max_open).ok();
    status.upgrade = plan.upgrade.status.clone().map(Box::new);
    if let Some(arn) = plan
        .upgrade
        .status
        .as_ref()
        .and_then(|u| u.snapshot_arn.clone())
    {
        status.pre_upgrade_snapshot_arn = Some(arn);
    }
    status.plugins = plan.plugins.as_ref().map(|set| PluginsStatus {
        hash: set.hash.clone(),
        job_name: set.job_name.clone(),
        installed: plugins_job == Some(JobState::Succeeded),
    });
}

fn invalid_states(invalid: &str) -> States {
    let reason = Reason::InvalidSpec;
    vec![
        (
            ConditionType::Ready,
            ConditionState::failed(reason, invalid),
        ),
        (ConditionType::Degraded, ConditionState::ok(reason, invalid)),
        (
            ConditionType::Progressing,
            ConditionState::failed(reason, "fix the spec to continue"),
        ),
        (
            ConditionType::Reconciling,
            ConditionState::failed(reason, "nothing to do until the spec changes"),
        ),
        (ConditionType::Stalled, ConditionState::ok(reason, invalid)),
    ]
}

/// The facts every cluster-level condition looks at.
struct Facts<'a> {
    desired: i32,
    resolution: &'a Resolution,
    inputs: &'a StatusInputs<'a>,
    /// What did not resolve, for messages.
    unresolved: String,
    complete: bool,
    plugins_pending: bool,
}

impl Facts<'_> {
    fn planned(&self) -> bool {
        self.resolution.plan.is_some()
    }

    fn plugin_install_failed(&self) -> bool {
        self.inputs.plugins_job == Some(JobState::Failed)
    }

    /// What keeps the cluster from going on without someone acting (a refused downgrade, a
    /// failed pre-upgrade snapshot).
    fn blocked(&self) -> Option<&ConditionState> {
        self.resolution.plan.as_ref()?.upgrade.blocked.as_ref()
    }

    /// The step of a safe upgrade in progress.
    fn upgrading(&self) -> Option<&ConditionState> {
        let upgrade = &self.resolution.plan.as_ref()?.upgrade;
        upgrade.status.as_ref().map(|_| &upgrade.condition)
    }
}

fn cluster_states(desired: i32, resolution: &Resolution, inputs: &StatusInputs<'_>) -> States {
    let mut unresolved: Vec<String> = resolution
        .conditions()
        .iter()
        .filter(|(_, c)| !c.status)
        .map(|(t, _)| t.as_str().to_string())
        .collect();
    if let Some(problem) = &resolution.admin_problem {
        unresolved.push(format!("the admin credentials ({problem})"));
    }
    if let Some(problem) = &resolution.service_account_problem {
        unresolved.push(format!("the ServiceAccount ({problem})"));
    }
    let facts = Facts {
        desired,
        resolution,
        inputs,
        unresolved: unresolved.join(", "),
        complete: inputs.rollout.as_ref().is_some_and(|r| r.complete(desired)),
        plugins_pending: resolution
            .plan
            .as_ref()
            .is_some_and(|p| p.plugins.is_some())
            && inputs.plugins_job != Some(JobState::Succeeded),
    };
    let progressing = progressing(&facts);
    let degraded = degraded(&facts);
    let ready = ready(&facts, &progressing);
    let (reconciling, stalled) = kstatus(&facts, &ready, &progressing, &degraded);
    let mut states: States = resolution
        .conditions()
        .into_iter()
        .map(|(t, c)| (t, c.clone()))
        .collect();
    if let Some(plan) = &resolution.plan {
        states.push((
            ConditionType::ConnectionBudget,
            plan.database.budget.clone(),
        ));
        states.push((ConditionType::Upgrading, plan.upgrade.condition.clone()));
    }
    states.push((
        ConditionType::OptionalApis,
        resolution.optional_apis.clone(),
    ));
    // A missing optional API leaves Ready as it is; its message points at it.
    let ready = if resolution.optional_apis.status {
        ready
    } else {
        ConditionState {
            message: format!("{} (see OptionalAPIs)", ready.message),
            ..ready
        }
    };
    states.extend([
        (ConditionType::Ready, ready),
        (ConditionType::Progressing, progressing),
        (ConditionType::Degraded, degraded),
        (ConditionType::Reconciling, reconciling),
        (ConditionType::Stalled, stalled),
    ]);
    states
}

/// Progressing: the operator is still moving the cluster towards the spec.
fn progressing(f: &Facts<'_>) -> ConditionState {
    let desired = f.desired;
    if !f.planned() {
        ConditionState::failed(Reason::Waiting, format!("waiting for {}", f.unresolved))
    } else if f.plugin_install_failed() {
        ConditionState::failed(
            Reason::PluginInstallFailed,
            "the plugin installer Job failed; see its logs",
        )
    } else if let Some(blocked) = f.blocked() {
        ConditionState::failed(blocked.reason, blocked.message.clone())
    } else if let Some(upgrade) = f.upgrading() {
        ConditionState::ok(upgrade.reason, upgrade.message.clone())
    } else if f.plugins_pending {
        ConditionState::ok(
            Reason::InstallingPlugins,
            "installing the plugin set into the shared volume",
        )
    } else if f.complete {
        ConditionState::failed(
            Reason::RolloutComplete,
            format!("{desired} of {desired} replicas run the current configuration"),
        )
    } else {
        let r = f.inputs.rollout.clone().unwrap_or_default();
        ConditionState::ok(
            Reason::RollingOut,
            format!(
                "{} of {desired} replicas updated, {} available",
                r.updated, r.available
            ),
        )
    }
}

/// Degraded: something is wrong that the operator cannot fix by waiting on a rollout.
fn degraded(f: &Facts<'_>) -> ConditionState {
    if let Some(err) = &f.inputs.apply_error {
        ConditionState::ok(Reason::ApplyFailed, err.clone())
    } else if let Some(blocked) = f.blocked() {
        blocked.clone()
    } else if f.resolution.stale() {
        ConditionState::ok(
            Reason::UsingLastKnownConfiguration,
            format!(
                "running on the last good configuration: {} could not be resolved now",
                f.unresolved
            ),
        )
    } else if f.plugin_install_failed() {
        ConditionState::ok(
            Reason::PluginInstallFailed,
            "the plugin installer Job failed",
        )
    } else if !f.planned() && !f.unresolved.is_empty() {
        ConditionState::ok(
            Reason::Unresolved,
            format!("cannot run Grafana: {} not resolved", f.unresolved),
        )
    } else {
        ConditionState::failed(Reason::AsExpected, "no problem found")
    }
}

/// Ready: Grafana serves the current spec with every replica available.
fn ready(f: &Facts<'_>, progressing: &ConditionState) -> ConditionState {
    let desired = f.desired;
    if !f.planned() {
        ConditionState::failed(Reason::Unresolved, format!("waiting for {}", f.unresolved))
    } else if let Some(err) = &f.inputs.apply_error {
        ConditionState::failed(Reason::ApplyFailed, err.clone())
    } else if let Some(blocked) = f.blocked() {
        ConditionState::failed(blocked.reason, blocked.message.clone())
    } else if f.upgrading().is_some() {
        ConditionState::failed(progressing.reason, progressing.message.clone())
    } else if f.complete && !f.plugins_pending && desired == 0 {
        ConditionState::ok(
            Reason::ScaledDown,
            "scaled to zero (spec.replicas: 0): no replica serves; everything else is kept",
        )
    } else if f.complete && !f.plugins_pending {
        ConditionState::ok(
            Reason::Available,
            format!("{desired} of {desired} replicas ready"),
        )
    } else {
        ConditionState::failed(progressing.reason, progressing.message.clone())
    }
}

/// kstatus: Reconciling while the cluster is moving towards the spec (a rollout, the plugin
/// install, a resource AWS is still creating); Stalled when it cannot get there without
/// someone acting.
fn kstatus(
    f: &Facts<'_>,
    ready: &ConditionState,
    progressing: &ConditionState,
    degraded: &ConditionState,
) -> (ConditionState, ConditionState) {
    let waiting_on_aws = f
        .resolution
        .conditions()
        .iter()
        // An access point the operator is creating is AWS work in progress too.
        .any(|(_, c)| {
            !c.status && matches!(c.reason, Reason::NotReady | Reason::CreatingAccessPoint)
        });
    let reconciling = if progressing.status {
        ConditionState::ok(progressing.reason, progressing.message.clone())
    } else if waiting_on_aws && !ready.status {
        ConditionState::ok(
            Reason::WaitingForAws,
            format!("waiting for {}", f.unresolved),
        )
    } else if ready.status {
        ConditionState::failed(Reason::Available, "up to date")
    } else {
        ConditionState::failed(degraded.reason, degraded.message.clone())
    };
    let stalled = if !ready.status && degraded.status && !waiting_on_aws {
        ConditionState::ok(degraded.reason, degraded.message.clone())
    } else {
        ConditionState::failed(Reason::AsExpected, "no problem found")
    };
    (reconciling, stalled)
}

/// Builds the condition list in a fixed order, keeping each condition's
/// lastTransitionTime while its status is unchanged.
pub fn merge_conditions(
    previous: &[Condition],
    states: States,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = states
        .into_iter()
        .map(|(condition, state)| {
            let type_ = condition.as_str().to_string();
            let status = if state.status { "True" } else { "False" }.to_string();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_,
                status,
                reason: state.reason.as_str().to_string(),
                message: state.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect();
    // Conditions not computed this time (e.g. the resolved ones while the spec is invalid)
    // are kept as they were.
    for old in previous {
        if !out.iter().any(|c| c.type_ == old.type_) {
            out.push(old.clone());
        }
    }
    let order = |c: &Condition| {
        ConditionType::parse(&c.type_)
            .and_then(|t| ConditionType::ORDER.iter().position(|o| *o == t))
            .unwrap_or(ConditionType::ORDER.len())
    };
    out.sort_by_key(order);
    out
}

#[cfg(test)]
mod tests;
