//! Events for conditions that changed: what was discovered, and what failed. Steady state
//! records nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::conditions::{ConditionType, Reason};
use crate::api::StorageStatus;

/// The reason of an Event: short CamelCase that names the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventReason {
    Ready,
    NotReady,
    Degraded,
    Recovered,
    /// A component resolved (`DatabaseResolved`, ...).
    Resolved(ConditionType),
    /// A component failed to resolve (`DatabaseFailed`, ...).
    Failed(ConditionType),
    AdminPasswordGenerated,
    SecretKeyGenerated,
    MountTargetZonesChanged,
    /// The operator created the EFS access point for the plugins.
    AccessPointCreated,
    /// A safe upgrade moved to a step, or finished.
    Upgrade(Option<crate::api::UpgradePhase>),
    SnapshotRequested,
}

impl EventReason {
    pub fn as_string(self) -> String {
        match self {
            EventReason::Ready => "Ready".into(),
            EventReason::NotReady => "NotReady".into(),
            EventReason::Degraded => "Degraded".into(),
            EventReason::Recovered => "Recovered".into(),
            EventReason::Resolved(t) => t.as_str().into(),
            EventReason::Failed(t) => format!("{}Failed", t.as_str().trim_end_matches("Resolved")),
            EventReason::AdminPasswordGenerated => "AdminPasswordGenerated".into(),
            EventReason::SecretKeyGenerated => "SecretKeyGenerated".into(),
            EventReason::MountTargetZonesChanged => "MountTargetZonesChanged".into(),
            EventReason::AccessPointCreated => "AccessPointCreated".into(),
            EventReason::Upgrade(Some(phase)) => format!("Upgrade{phase:?}"),
            EventReason::Upgrade(None) => "Upgraded".into(),
            EventReason::SnapshotRequested => "SnapshotRequested".into(),
        }
    }
}

/// An Event worth recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionEvent {
    pub warning: bool,
    pub reason: EventReason,
    pub note: String,
}

fn event_reason(condition: ConditionType, good: bool) -> EventReason {
    match (condition, good) {
        (ConditionType::Degraded, false) => EventReason::Degraded,
        (ConditionType::Degraded, true) => EventReason::Recovered,
        (ConditionType::Ready, true) => EventReason::Ready,
        (ConditionType::Ready, false) => EventReason::NotReady,
        (t, true) => EventReason::Resolved(t),
        (t, false) => EventReason::Failed(t),
    }
}

/// Events for conditions whose status or reason changed, and for problems whose message
/// changed: a second, different problem under the same reason (a NotReady for another
/// component, another missing Secret) is news, while a good condition's message (replica
/// counts, endpoints) moving is not worth an Event.
pub fn condition_events(previous: &[Condition], current: &[Condition]) -> Vec<ConditionEvent> {
    let was_degraded = previous
        .iter()
        .any(|p| p.type_ == ConditionType::Degraded.as_str() && p.status == "True");
    current
        .iter()
        .filter_map(|c| {
            let before = previous.iter().find(|p| p.type_ == c.type_);
            let same_state = before.is_some_and(|p| p.status == c.status && p.reason == c.reason);
            let same_message = before.is_some_and(|p| p.message == c.message);
            let condition = ConditionType::parse(&c.type_)?;
            let good = match condition {
                // "Recovered" only means something after a Degraded.
                ConditionType::Degraded if c.status == "False" && !was_degraded => return None,
                ConditionType::Degraded => c.status == "False",
                // Rollouts come and go; Ready and Degraded already tell their outcome, and
                // the kstatus conditions mirror them.
                // Upgrades have their own Events (upgrade_event), per step.
                ConditionType::Progressing
                | ConditionType::Reconciling
                | ConditionType::Stalled
                | ConditionType::Upgrading => {
                    return None;
                }
                _ => c.status == "True",
            };
            // The controller records AccessPointCreated itself; "StorageFailed" for a step
            // that is going well would only alarm.
            if c.reason == Reason::CreatingAccessPoint.as_str() {
                return None;
            }
            // A cluster that asks for no optional child has nothing to be told about it.
            if c.reason == Reason::NotRequested.as_str() {
                return None;
            }
            // Not ready because a rollout or the plugin install is under way is progress,
            // not a problem worth a Warning.
            let progress = condition == ConditionType::Ready
                && [Reason::RollingOut, Reason::InstallingPlugins]
                    .iter()
                    .any(|r| r.as_str() == c.reason);
            let warning = !good && !progress;
            if same_state && (same_message || !warning) {
                return None;
            }
            Some(ConditionEvent {
                warning,
                reason: event_reason(condition, good),
                note: if c.message.is_empty() {
                    c.reason.clone()
                } else {
                    format!("{}: {}", c.reason, c.message)
                },
            })
        })
        .collect()
}

/// An Event when the zones with an EFS mount target changed: the pods are kept in them, so
/// the change moves pods (the pod template changes with it).
pub fn zone_event(
    previous: Option<&StorageStatus>,
    current: Option<&StorageStatus>,
) -> Option<ConditionEvent> {
    let (before, after) = (previous?, current?);
    if before.mount_target_zones == after.mount_target_zones
        || before.file_system_id != after.file_system_id
    {
        return None;
    }
    let list = |z: &[String]| {
        if z.is_empty() {
            "none".to_string()
        } else {
            z.join(", ")
        }
    };
    Some(ConditionEvent {
        warning: after.mount_target_zones.len() < before.mount_target_zones.len(),
        reason: EventReason::MountTargetZonesChanged,
        note: format!(
            "EFS mount targets are now in {} (were in {}): Grafana pods are kept in these zones and move with the rollout",
            list(&after.mount_target_zones),
            list(&before.mount_target_zones)
        ),
    })
}

/// An Event when a safe upgrade starts a step or finishes.
pub fn upgrade_event(
    previous: Option<&crate::api::UpgradeStatus>,
    current: Option<&crate::api::UpgradeStatus>,
    condition: &super::ConditionState,
) -> Option<ConditionEvent> {
    let phase = |u: Option<&crate::api::UpgradeStatus>| u.map(|u| u.phase);
    if phase(previous) == phase(current) {
        return None;
    }
    Some(ConditionEvent {
        warning: false,
        reason: EventReason::Upgrade(phase(current)),
        note: match (previous, current) {
            (Some(before), None) => {
                format!("upgraded from {} to {}", before.from_image, before.to_image)
            }
            _ => condition.message.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(zones: &[&str]) -> StorageStatus {
        StorageStatus {
            file_system_id: Some("fs-1".into()),
            mount_target_zones: zones.iter().map(|z| z.to_string()).collect(),
            claim_name: "c".into(),
            ..StorageStatus::default()
        }
    }

    #[test]
    fn creating_the_access_point_records_no_storage_failure() {
        let storage = |reason: Reason| Condition {
            type_: ConditionType::StorageResolved.as_str().into(),
            status: "False".into(),
            reason: reason.as_str().into(),
            message: "m".into(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        };
        assert!(condition_events(&[], &[storage(Reason::CreatingAccessPoint)]).is_empty());
        let failed = condition_events(&[], &[storage(Reason::AccessPointCreateFailed)]);
        assert_eq!(failed.len(), 1);
        assert!(failed[0].warning);
    }

    #[test]
    fn optional_apis_warn_when_missing_and_stay_quiet_when_not_asked_for() {
        let optional = |status: &str, reason: Reason| Condition {
            type_: ConditionType::OptionalApis.as_str().into(),
            status: status.into(),
            reason: reason.as_str().into(),
            message: "m".into(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        };
        assert!(condition_events(&[], &[optional("True", Reason::NotRequested)]).is_empty());
        let missing = condition_events(&[], &[optional("False", Reason::ApiNotServed)]);
        assert_eq!(missing.len(), 1);
        assert!(missing[0].warning);
        assert_eq!(missing[0].reason.as_string(), "OptionalAPIsFailed");
    }

    fn ready(status: &str, reason: Reason, message: &str) -> Condition {
        Condition {
            type_: ConditionType::Ready.as_str().into(),
            status: status.into(),
            reason: reason.as_str().into(),
            message: message.into(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: None,
        }
    }

    #[test]
    fn a_different_problem_under_the_same_reason_is_a_new_event() {
        let first = [ready("False", Reason::Waiting, "waiting for the database")];
        let second = [ready("False", Reason::Waiting, "waiting for the cache")];
        let events = condition_events(&first, &second);
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(events[0].warning);
        assert_eq!(events[0].reason, EventReason::NotReady);
        assert!(
            events[0].note.contains("waiting for the cache"),
            "{events:?}"
        );
        // The same problem again is no news.
        assert!(condition_events(&second, &second).is_empty());
    }

    #[test]
    fn good_or_progressing_messages_that_move_record_nothing() {
        let two = [ready("True", Reason::Available, "2 of 2 replicas ready")];
        let three = [ready("True", Reason::Available, "3 of 3 replicas ready")];
        assert!(condition_events(&two, &three).is_empty());
        let rolling = |m: &str| [ready("False", Reason::RollingOut, m)];
        assert!(
            condition_events(&rolling("1 of 2 updated"), &rolling("2 of 2 updated")).is_empty()
        );
        // A change of state is still reported, good or not.
        let back = condition_events(&rolling("2 of 2 updated"), &two);
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].reason, EventReason::Ready);
    }

    #[test]
    fn a_zone_change_is_reported_once() {
        let (a, ab) = (storage(&["a"]), storage(&["a", "b"]));
        assert!(zone_event(Some(&a), Some(&a)).is_none());
        let lost = zone_event(Some(&ab), Some(&a)).expect("event");
        assert!(lost.warning && lost.note.contains("now in a (were in a, b)"));
        assert!(!zone_event(Some(&a), Some(&ab)).expect("event").warning);
        assert!(
            zone_event(None, Some(&a)).is_none(),
            "the first status is no change"
        );
    }
}
