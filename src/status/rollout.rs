//! What the status reads from the live children: the Deployment's rollout and the plugin
//! installer Job.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;

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
