//! What every component (database, cache, storage) shares: the discovery outcome it is
//! resolved from, the fallback to the last good target, and the condition for a lookup
//! that did not find exactly one usable resource.

use crate::facts::{Lookup, Tags, format_tags};
use crate::status::{ConditionState, Reason};

/// What a discovery call produced for one component.
#[derive(Clone, Debug, PartialEq)]
pub enum Discovered<T> {
    /// AWS answered.
    Lookup(Lookup<T>),
    /// AWS could not be asked (throttled, unreachable, denied...).
    Failed { reason: Reason, message: String },
}

/// A resolved component: the target to wire (current or last good), and how it came about.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved<T> {
    pub target: Option<T>,
    pub condition: ConditionState,
    /// True when `target` is the last good one from the status because discovery failed now.
    pub stale: bool,
}

impl<T> Resolved<T> {
    /// A target given by the spec itself (an endpoint, a StorageClass): no discovery.
    pub fn given(target: T, reason: Reason, message: String) -> Self {
        Resolved {
            target: Some(target),
            condition: ConditionState::ok(reason, message),
            stale: false,
        }
    }

    /// A referenced Secret that is missing overrides a found target: the pods could not
    /// start.
    pub fn with_secret_problem(mut self, problem: Option<&str>) -> Self {
        if let Some(problem) = problem {
            self.condition = ConditionState::failed(Reason::SecretNotFound, problem);
            self.target = None;
        }
        self
    }

    /// Turns a found target or a failure into a [`Resolved`], falling back to the last good
    /// target when there is one.
    pub fn finish(found: Result<(T, String), ConditionState>, last: Option<T>) -> Self {
        match found {
            Ok((target, message)) => Resolved {
                target: Some(target),
                condition: ConditionState::ok(Reason::Found, message),
                stale: false,
            },
            Err(mut condition) => match last {
                Some(last) => {
                    condition.message =
                        format!("{}; keeping the last good configuration", condition.message);
                    Resolved {
                        target: Some(last),
                        condition,
                        stale: true,
                    }
                }
                None => Resolved {
                    target: None,
                    condition,
                    stale: false,
                },
            },
        }
    }
}

/// The condition for a lookup that did not find exactly one usable resource.
pub fn lookup_failure<T>(
    component: &str,
    what: &str,
    selector: &Tags,
    observed: Option<&Discovered<T>>,
) -> ConditionState {
    let by = if selector.is_empty() {
        String::new()
    } else {
        format!(" tagged {}", format_tags(selector))
    };
    match observed {
        None => ConditionState::failed(
            Reason::NotDiscovered,
            format!("{component} discovery has not run"),
        ),
        Some(Discovered::Failed { reason, message }) => {
            ConditionState::failed(*reason, format!("looking up the {what}{by}: {message}"))
        }
        Some(Discovered::Lookup(lookup)) => match lookup {
            Lookup::Found(_) => ConditionState::ok(Reason::Found, ""),
            Lookup::NotFound { candidates } => ConditionState::failed(
                Reason::NotFound,
                format!("no {what}{by} among {candidates} in the region"),
            ),
            Lookup::Ambiguous { arns } => ConditionState::failed(
                Reason::Ambiguous,
                format!(
                    "{} resources match {what}{by}, refusing to pick one: {}; add a tag to tell them apart",
                    arns.len(),
                    arns.join(", ")
                ),
            ),
            Lookup::NotReady { arn, state } => ConditionState::failed(
                Reason::NotReady,
                format!("{what} {arn} is not ready yet ({state}); waiting"),
            ),
            Lookup::Unsupported { arn, reason } => {
                ConditionState::failed(Reason::Unsupported, format!("{what} {arn}: {reason}"))
            }
        },
    }
}
