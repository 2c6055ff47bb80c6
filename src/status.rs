//! Pure: the status of a GrafanaCluster from what resolution found and what the Deployment
//! reports, shaped as metav1 Conditions that kstatus (Flux) and Argo CD read.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{GrafanaCluster, GrafanaClusterStatus, PluginsStatus};
use crate::names;
use crate::resolve::{ConditionState, Resolution, image};

pub const READY: &str = "Ready";
pub const DATABASE_RESOLVED: &str = "DatabaseResolved";
pub const CACHE_RESOLVED: &str = "CacheResolved";
pub const STORAGE_RESOLVED: &str = "StorageResolved";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";
/// kstatus' abnormal-true conditions: Flux and kstatus-based tools read these (and
/// observedGeneration), not Ready.
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// How far the Grafana Deployment's rollout has come.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The Deployment controller has seen the latest spec.
    pub observed: bool,
}

impl Rollout {
    pub fn of(deployment: &Deployment) -> Rollout {
        let generation = deployment.metadata.generation.unwrap_or(0);
        let status = deployment.status.clone().unwrap_or_default();
        Rollout {
            replicas: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed: status.observed_generation.unwrap_or(0) >= generation,
        }
    }

    /// Every desired replica runs the current template and is available, and no old pod is
    /// left.
    pub fn complete(&self, desired: i32) -> bool {
        self.observed
            && self.updated >= desired
            && self.available >= desired
            && self.replicas == self.updated
    }
}

/// Whether a plugin installer Job has succeeded or failed for good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub fn of(job: &Job) -> JobState {
        let conditions = job
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let is = |t: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == t && c.status == "True")
        };
        if is("Complete") || job.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0) > 0 {
            JobState::Succeeded
        } else if is("Failed") {
            JobState::Failed
        } else {
            JobState::Running
        }
    }
}

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

fn condition(type_: &str, state: &ConditionState) -> (String, ConditionState) {
    (type_.to_string(), state.clone())
}

/// The status for `gc`: conditions keep their lastTransitionTime while their status holds.
pub fn compute(
    gc: &GrafanaCluster,
    inputs: &StatusInputs<'_>,
    now: Timestamp,
) -> GrafanaClusterStatus {
    let previous = gc.status.clone().unwrap_or_default();
    let generation = gc.metadata.generation;
    let name = gc.metadata.name.clone().unwrap_or_default();
    let desired = gc.spec.replicas;
    let mut states: Vec<(String, ConditionState)> = Vec::new();

    let mut status = GrafanaClusterStatus {
        observed_generation: generation,
        selector: Some(names::selector_string(&name)),
        image: previous.image.clone(),
        database: previous.database.clone(),
        cache: previous.cache.clone(),
        storage: previous.storage.clone(),
        plugins: previous.plugins.clone(),
        replicas: inputs
            .rollout
            .as_ref()
            .map(|r| r.replicas)
            .or(previous.replicas),
        ready_replicas: inputs
            .rollout
            .as_ref()
            .map(|r| r.ready)
            .or(previous.ready_replicas),
        updated_replicas: inputs
            .rollout
            .as_ref()
            .map(|r| r.updated)
            .or(previous.updated_replicas),
        conditions: Vec::new(),
    };

    if let Some(invalid) = &inputs.invalid {
        let state = ConditionState {
            status: false,
            reason: "InvalidSpec".into(),
            message: invalid.clone(),
        };
        states.push(condition(READY, &state));
        states.push(condition(
            DEGRADED,
            &ConditionState {
                status: true,
                reason: "InvalidSpec".into(),
                message: invalid.clone(),
            },
        ));
        states.push(condition(
            PROGRESSING,
            &ConditionState {
                status: false,
                reason: "InvalidSpec".into(),
                message: "fix the spec to continue".into(),
            },
        ));
        states.push(condition(
            RECONCILING,
            &ConditionState {
                status: false,
                reason: "InvalidSpec".into(),
                message: "nothing to do until the spec changes".into(),
            },
        ));
        states.push(condition(
            STALLED,
            &ConditionState {
                status: true,
                reason: "InvalidSpec".into(),
                message: invalid.clone(),
            },
        ));
        status.conditions = merge_conditions(&previous.conditions, states, generation, now);
        return status;
    }

    let Some(resolution) = inputs.resolution else {
        status.conditions = previous.conditions;
        return status;
    };
    states.push(condition(DATABASE_RESOLVED, &resolution.database.condition));
    states.push(condition(CACHE_RESOLVED, &resolution.cache.condition));
    states.push(condition(STORAGE_RESOLVED, &resolution.storage.condition));

    if let Some(wiring) = &resolution.wiring {
        status.image = Some(wiring.image.clone());
        status.database = Some(wiring.database.status.clone());
        status.cache = wiring.cache.as_ref().map(|c| c.status.clone());
        status.storage = Some(wiring.storage.status.clone());
        status.plugins = wiring.plugins.as_ref().map(|set| PluginsStatus {
            hash: set.hash.clone(),
            job_name: set.job_name.clone(),
            installed: inputs.plugins_job == Some(JobState::Succeeded),
        });
    } else {
        status.image = status.image.or_else(|| Some(image(&gc.spec)));
    }

    let mut unresolved: Vec<String> = [
        (DATABASE_RESOLVED, &resolution.database.condition),
        (CACHE_RESOLVED, &resolution.cache.condition),
        (STORAGE_RESOLVED, &resolution.storage.condition),
    ]
    .iter()
    .filter(|(_, c)| !c.status)
    .map(|(t, _)| t.to_string())
    .collect();
    if let Some(problem) = &resolution.admin_problem {
        unresolved.push(format!("the admin credentials ({problem})"));
    }

    let rollout = inputs.rollout.clone();
    let complete = rollout.as_ref().is_some_and(|r| r.complete(desired));
    let plugins_pending = resolution
        .wiring
        .as_ref()
        .is_some_and(|w| w.plugins.is_some())
        && inputs.plugins_job != Some(JobState::Succeeded);

    // Progressing: the operator is still moving the cluster towards the spec.
    let progressing = if resolution.wiring.is_none() {
        ConditionState {
            status: false,
            reason: "Waiting".into(),
            message: format!("waiting for {}", unresolved.join(", ")),
        }
    } else if inputs.plugins_job == Some(JobState::Failed) {
        ConditionState {
            status: false,
            reason: "PluginInstallFailed".into(),
            message: "the plugin installer Job failed; see its logs".into(),
        }
    } else if plugins_pending {
        ConditionState {
            status: true,
            reason: "InstallingPlugins".into(),
            message: "installing the plugin set into the shared volume".into(),
        }
    } else if complete {
        ConditionState {
            status: false,
            reason: "RolloutComplete".into(),
            message: format!("{desired} of {desired} replicas run the current configuration"),
        }
    } else {
        let r = rollout.clone().unwrap_or_default();
        ConditionState {
            status: true,
            reason: "RollingOut".into(),
            message: format!(
                "{} of {desired} replicas updated, {} available",
                r.updated, r.available
            ),
        }
    };

    // Degraded: something is wrong that the operator cannot fix by waiting on a rollout.
    let degraded = if let Some(err) = &inputs.apply_error {
        ConditionState {
            status: true,
            reason: "ApplyFailed".into(),
            message: err.clone(),
        }
    } else if resolution.stale() {
        ConditionState {
            status: true,
            reason: "UsingLastKnownConfiguration".into(),
            message: format!(
                "running on the last good configuration: {} could not be resolved now",
                unresolved.join(", ")
            ),
        }
    } else if inputs.plugins_job == Some(JobState::Failed) {
        ConditionState {
            status: true,
            reason: "PluginInstallFailed".into(),
            message: "the plugin installer Job failed".into(),
        }
    } else if resolution.wiring.is_none() && !unresolved.is_empty() {
        ConditionState {
            status: true,
            reason: "Unresolved".into(),
            message: format!("cannot run Grafana: {} not resolved", unresolved.join(", ")),
        }
    } else {
        ConditionState {
            status: false,
            reason: "AsExpected".into(),
            message: "no problem found".into(),
        }
    };

    // Ready: Grafana serves the current spec with every replica available.
    let ready = if resolution.wiring.is_none() {
        ConditionState {
            status: false,
            reason: "Unresolved".into(),
            message: format!("waiting for {}", unresolved.join(", ")),
        }
    } else if let Some(err) = &inputs.apply_error {
        ConditionState {
            status: false,
            reason: "ApplyFailed".into(),
            message: err.clone(),
        }
    } else if complete && !plugins_pending {
        ConditionState {
            status: true,
            reason: "Available".into(),
            message: format!("{desired} of {desired} replicas ready"),
        }
    } else {
        ConditionState {
            status: false,
            reason: progressing.reason.clone(),
            message: progressing.message.clone(),
        }
    };

    // kstatus: Reconciling while the cluster is moving towards the spec (a rollout, the
    // plugin install, a resource AWS is still creating); Stalled when it cannot get there
    // without someone acting.
    let waiting_on_aws = [
        &resolution.database.condition,
        &resolution.cache.condition,
        &resolution.storage.condition,
    ]
    .iter()
    .any(|c| !c.status && c.reason == "NotReady");
    let stalled = !ready.status && degraded.status && !waiting_on_aws;
    let reconciling = if progressing.status || (waiting_on_aws && !ready.status) {
        ConditionState {
            status: true,
            reason: if progressing.status {
                progressing.reason.clone()
            } else {
                "WaitingForAws".into()
            },
            message: if progressing.status {
                progressing.message.clone()
            } else {
                format!("waiting for {}", unresolved.join(", "))
            },
        }
    } else {
        ConditionState {
            status: false,
            reason: if ready.status {
                "Available".into()
            } else {
                degraded.reason.clone()
            },
            message: if ready.status {
                "up to date".into()
            } else {
                degraded.message.clone()
            },
        }
    };
    let stalled = ConditionState {
        status: stalled,
        reason: if stalled {
            degraded.reason.clone()
        } else {
            "AsExpected".into()
        },
        message: if stalled {
            degraded.message.clone()
        } else {
            "no problem found".into()
        },
    };

    states.push(condition(READY, &ready));
    states.push(condition(PROGRESSING, &progressing));
    states.push(condition(DEGRADED, &degraded));
    states.push(condition(RECONCILING, &reconciling));
    states.push(condition(STALLED, &stalled));
    status.conditions = merge_conditions(&previous.conditions, states, generation, now);
    status
}

/// Builds the condition list in a fixed order, keeping each condition's
/// lastTransitionTime while its status is unchanged.
pub fn merge_conditions(
    previous: &[Condition],
    states: Vec<(String, ConditionState)>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let order = [
        READY,
        DATABASE_RESOLVED,
        CACHE_RESOLVED,
        STORAGE_RESOLVED,
        PROGRESSING,
        DEGRADED,
    ];
    let mut out: Vec<Condition> = states
        .into_iter()
        .map(|(type_, state)| {
            let status = if state.status { "True" } else { "False" }.to_string();
            let last_transition_time = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_,
                status,
                reason: state.reason,
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
    out.sort_by_key(|c| {
        order
            .iter()
            .position(|t| *t == c.type_)
            .unwrap_or(order.len())
    });
    out
}

/// An Event worth recording for a condition that changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionEvent {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

/// Events for conditions whose status or reason changed: what was discovered, and what
/// failed. Steady state records nothing.
pub fn condition_events(previous: &[Condition], current: &[Condition]) -> Vec<ConditionEvent> {
    current
        .iter()
        .filter(|c| {
            !previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason)
        })
        .filter_map(|c| {
            let was_degraded = previous
                .iter()
                .any(|p| p.type_ == DEGRADED && p.status == "True");
            let good = match c.type_.as_str() {
                // "Recovered" only means something after a Degraded.
                DEGRADED if c.status == "False" && !was_degraded => return None,
                DEGRADED => c.status == "False",
                // Rollouts come and go; Ready and Degraded already tell their outcome, and
                // the kstatus conditions mirror them.
                PROGRESSING | RECONCILING | STALLED => return None,
                _ => c.status == "True",
            };
            // Not ready because a rollout or the plugin install is under way is progress,
            // not a problem worth a Warning.
            let progress =
                c.type_ == READY && matches!(c.reason.as_str(), "RollingOut" | "InstallingPlugins");
            Some(ConditionEvent {
                warning: !good && !progress,
                reason: event_reason(&c.type_, good),
                note: if c.message.is_empty() {
                    c.reason.clone()
                } else {
                    format!("{}: {}", c.reason, c.message)
                },
            })
        })
        .collect()
}

/// Short CamelCase Event reasons that name the outcome.
fn event_reason(condition_type: &str, good: bool) -> String {
    match (condition_type, good) {
        (DEGRADED, false) => "Degraded".into(),
        (DEGRADED, true) => "Recovered".into(),
        (READY, true) => "Ready".into(),
        (READY, false) => "NotReady".into(),
        (t, true) => t.to_string(),
        (t, false) => format!("{}Failed", t.trim_end_matches("Resolved")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures;
    use crate::resolve::{Discovered, resolve};

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).expect("ts")
    }

    fn cond<'a>(s: &'a GrafanaClusterStatus, t: &str) -> &'a Condition {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .unwrap_or_else(|| panic!("no {t}"))
    }

    fn complete(n: i32) -> Rollout {
        Rollout {
            replicas: n,
            ready: n,
            updated: n,
            available: n,
            observed: true,
        }
    }

    #[test]
    fn ready_when_rollout_complete_and_plugins_installed() {
        let mut gc = fixtures::article();
        gc.metadata.generation = Some(4);
        let r = resolve(&gc, &fixtures::observed());
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(complete(3)),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, READY).observed_generation, Some(4));
        assert_eq!(cond(&s, PROGRESSING).status, "False");
        assert_eq!(cond(&s, DEGRADED).status, "False");
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.ready_replicas, Some(3));
        assert!(s.plugins.as_ref().expect("plugins").installed);
        assert_eq!(
            s.database.as_ref().expect("db").endpoint,
            "grafana-db.rds.local:5432"
        );
        assert_eq!(
            s.selector.as_deref(),
            Some(
                "app.kubernetes.io/component=server,app.kubernetes.io/instance=grafana,app.kubernetes.io/name=grafana"
            )
        );
        let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            vec![
                READY,
                DATABASE_RESOLVED,
                CACHE_RESOLVED,
                STORAGE_RESOLVED,
                PROGRESSING,
                DEGRADED,
                RECONCILING,
                STALLED
            ]
        );
        // kstatus: Current.
        assert_eq!(cond(&s, RECONCILING).status, "False");
        assert_eq!(cond(&s, STALLED).status, "False");
    }

    #[test]
    fn not_ready_while_rolling_out_or_installing() {
        let gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        let rolling = Rollout {
            replicas: 4,
            ready: 3,
            updated: 1,
            available: 3,
            observed: true,
        };
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(rolling),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, PROGRESSING).reason, "RollingOut");
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(complete(3)),
                plugins_job: Some(JobState::Running),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, PROGRESSING).reason, "InstallingPlugins");
    }

    #[test]
    fn unresolved_database_is_not_ready_and_degraded() {
        let gc = fixtures::article();
        let mut obs = fixtures::observed();
        obs.database = Some(Discovered::Lookup(crate::facts::Lookup::NotFound {
            candidates: 2,
        }));
        let r = resolve(&gc, &obs);
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "False");
        assert_eq!(cond(&s, DATABASE_RESOLVED).reason, "NotFound");
        assert_eq!(cond(&s, DEGRADED).status, "True");
        assert!(s.database.is_none());
    }

    #[test]
    fn stale_configuration_stays_ready_but_degraded() {
        let mut gc = fixtures::article();
        let first = resolve(&gc, &fixtures::observed());
        gc.status = Some(compute(
            &gc,
            &StatusInputs {
                resolution: Some(&first),
                rollout: Some(complete(3)),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        ));
        let mut obs = fixtures::observed();
        obs.database = Some(Discovered::Failed {
            reason: "AwsThrottled",
            message: "slow down".into(),
        });
        let r = resolve(&gc, &obs);
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(complete(3)),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "True");
        assert_eq!(cond(&s, DEGRADED).status, "True");
        assert_eq!(cond(&s, DEGRADED).reason, "UsingLastKnownConfiguration");
        assert_eq!(cond(&s, DATABASE_RESOLVED).reason, "AwsThrottled");
        assert_eq!(
            s.database,
            gc.status.as_ref().expect("status").database,
            "last good database kept"
        );
    }

    #[test]
    fn invalid_spec_keeps_other_conditions() {
        let mut gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        gc.status = Some(compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            now(),
        ));
        let s = compute(
            &gc,
            &StatusInputs {
                invalid: Some("spec.replicas: bad".into()),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).reason, "InvalidSpec");
        assert_eq!(cond(&s, DATABASE_RESOLVED).status, "True");
    }

    #[test]
    fn transition_time_holds_while_status_holds() {
        let mut gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        let t0 = now();
        gc.status = Some(compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            t0,
        ));
        let later = Timestamp::from_second(1_700_000_100).expect("ts");
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            later,
        );
        assert_eq!(cond(&s, DATABASE_RESOLVED).last_transition_time, Time(t0));
        assert_eq!(
            s,
            compute(
                &gc,
                &StatusInputs {
                    resolution: Some(&r),
                    ..Default::default()
                },
                later
            ),
            "a steady state computes the same status"
        );
    }

    #[test]
    fn events_only_on_change() {
        let gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(complete(3)),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        );
        let first = condition_events(&[], &s.conditions);
        assert!(first.iter().any(|e| e.reason == "DatabaseResolved"
            && !e.warning
            && e.note.contains("grafana-db")));
        assert!(condition_events(&s.conditions, &s.conditions).is_empty());
        let mut obs = fixtures::observed();
        obs.database = Some(Discovered::Lookup(crate::facts::Lookup::Ambiguous {
            arns: vec!["arn:1".into(), "arn:2".into()],
        }));
        let r2 = resolve(&gc, &obs);
        let s2 = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r2),
                ..Default::default()
            },
            now(),
        );
        let events = condition_events(&s.conditions, &s2.conditions);
        assert!(
            events
                .iter()
                .any(|e| e.reason == "DatabaseFailed" && e.warning && e.note.contains("arn:1")),
            "{events:?}"
        );
    }

    #[test]
    fn first_rollout_is_not_a_warning_and_recovery_needs_a_degradation() {
        let gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        let rolling = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(Rollout::default()),
                plugins_job: Some(JobState::Running),
                ..Default::default()
            },
            now(),
        );
        let events = condition_events(&[], &rolling.conditions);
        assert!(events.iter().all(|e| !e.warning), "{events:?}");
        assert!(
            !events.iter().any(|e| e.reason == "Recovered"),
            "{events:?}"
        );

        let mut obs = fixtures::observed();
        obs.cache = Some(Discovered::Lookup(crate::facts::Lookup::NotFound {
            candidates: 0,
        }));
        let r2 = resolve(&gc, &obs);
        let broken = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r2),
                ..Default::default()
            },
            now(),
        );
        let events = condition_events(&rolling.conditions, &broken.conditions);
        assert!(
            events.iter().any(|e| e.reason == "Degraded" && e.warning),
            "{events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.reason == "CacheFailed" && e.warning),
            "{events:?}"
        );
        let events = condition_events(&broken.conditions, &rolling.conditions);
        assert!(
            events.iter().any(|e| e.reason == "Recovered" && !e.warning),
            "{events:?}"
        );
    }

    #[test]
    fn kstatus_conditions_follow_the_lifecycle() {
        let gc = fixtures::article();
        let r = resolve(&gc, &fixtures::observed());
        let rolling = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                rollout: Some(Rollout::default()),
                plugins_job: Some(JobState::Succeeded),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&rolling, RECONCILING).status, "True");
        assert_eq!(cond(&rolling, STALLED).status, "False");

        let mut obs = fixtures::observed();
        obs.database = Some(Discovered::Lookup(crate::facts::Lookup::NotReady {
            arn: "arn:db".into(),
            state: "creating".into(),
        }));
        let r = resolve(&gc, &obs);
        let creating = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(
            cond(&creating, RECONCILING).status,
            "True",
            "waiting for AWS to finish is progress"
        );
        assert_eq!(cond(&creating, STALLED).status, "False");

        obs.database = Some(Discovered::Lookup(crate::facts::Lookup::Ambiguous {
            arns: vec!["a".into(), "b".into()],
        }));
        let r = resolve(&gc, &obs);
        let stuck = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(
            cond(&stuck, STALLED).status,
            "True",
            "an ambiguous selector needs a person"
        );
        assert_eq!(cond(&stuck, RECONCILING).status, "False");

        let invalid = compute(
            &gc,
            &StatusInputs {
                invalid: Some("bad".into()),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&invalid, STALLED).reason, "InvalidSpec");
    }

    #[test]
    fn a_missing_admin_secret_is_named() {
        let gc = fixtures::article();
        let mut obs = fixtures::observed();
        obs.secret_problems.admin = Some("Secret obs/admin does not exist".into());
        let r = resolve(&gc, &obs);
        assert!(r.wiring.is_none());
        let s = compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(cond(&s, READY).status, "False");
        assert!(
            cond(&s, READY)
                .message
                .contains("Secret obs/admin does not exist"),
            "{:?}",
            cond(&s, READY)
        );
        assert_eq!(cond(&s, DEGRADED).status, "True");
        assert_eq!(cond(&s, STALLED).status, "True");
    }
}
