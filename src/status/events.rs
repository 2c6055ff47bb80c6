//! Events for conditions that changed: what was discovered, and what failed. Steady state
//! records nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::conditions::{ConditionType, Reason};

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

/// Events for conditions whose status or reason changed.
pub fn condition_events(previous: &[Condition], current: &[Condition]) -> Vec<ConditionEvent> {
    let was_degraded = previous
        .iter()
        .any(|p| p.type_ == ConditionType::Degraded.as_str() && p.status == "True");
    current
        .iter()
        .filter(|c| {
            !previous
                .iter()
                .any(|p| p.type_ == c.type_ && p.status == c.status && p.reason == c.reason)
        })
        .filter_map(|c| {
            let condition = ConditionType::parse(&c.type_)?;
            let good = match condition {
                // "Recovered" only means something after a Degraded.
                ConditionType::Degraded if c.status == "False" && !was_degraded => return None,
                ConditionType::Degraded => c.status == "False",
                // Rollouts come and go; Ready and Degraded already tell their outcome, and
                // the kstatus conditions mirror them.
                ConditionType::Progressing
                | ConditionType::Reconciling
                | ConditionType::Stalled => {
                    return None;
                }
                _ => c.status == "True",
            };
            // Not ready because a rollout or the plugin install is under way is progress,
            // not a problem worth a Warning.
            let progress = condition == ConditionType::Ready
                && [Reason::RollingOut, Reason::InstallingPlugins]
                    .iter()
                    .any(|r| r.as_str() == c.reason);
            Some(ConditionEvent {
                warning: !good && !progress,
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
