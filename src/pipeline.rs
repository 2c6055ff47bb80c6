//! The pure middle that the controller and `render` share: validate, then (after
//! [`crate::gather`]) resolve into one plan and build the children from it. Only applying
//! and reporting differ between the two, so a preview cannot drift from what is applied.

use crate::api::{GrafanaCluster, validation};
use crate::build::{self, Children};
use crate::gather::Gathered;
use crate::resolve::{self, Resolution};

/// Why the spec is refused, in one message that names every field; None when valid.
pub fn validate(gc: &GrafanaCluster) -> Option<String> {
    let violations = validation::validate(gc);
    (!violations.is_empty()).then(|| validation::describe(&violations))
}

/// What the pure middle made of one GrafanaCluster.
#[derive(Clone, Debug)]
pub struct Planned {
    pub resolution: Resolution,
    /// Present exactly when the resolution has a plan.
    pub children: Option<Children>,
}

/// Resolves and builds: the whole pure middle after gathering.
pub fn plan(gc: &GrafanaCluster, gathered: &Gathered) -> Planned {
    let resolution = resolve::resolve(gc, gathered);
    let children = resolution.plan.as_ref().map(build::build);
    Planned {
        resolution,
        children,
    }
}
