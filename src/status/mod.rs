//! Pure: the status of a GrafanaCluster from what resolution found and what the Deployment
//! reports, shaped as metav1 Conditions that kstatus (Flux) and Argo CD read, and the Events
//! worth recording when a condition changes.

mod compute;
mod conditions;
mod events;
mod rollout;

pub use compute::{StatusInputs, compute, merge_conditions};
pub use conditions::{ConditionState, ConditionType, Reason};
pub use events::{ConditionEvent, EventReason, condition_events, upgrade_event, zone_event};
pub use rollout::{JobState, Rollout};
