//! The Kubernetes edge: watches, the reconcile loop, apply, cleanup, status and Events.
//!
//! - [`context`]: what every reconcile shares, and the backoff;
//! - [`pipeline`]: one round (validate -> gather -> plan -> apply -> cleanup -> report);
//! - [`apply`]: server-side apply of the children, in order;
//! - [`cleanup`]: generic removal of superseded children, with named retention rules;
//! - [`report`]: the status subresource and Events;
//! - [`watches`]: the controller and what triggers a reconcile.

pub mod apply;
pub mod cleanup;
pub mod context;
pub mod events;
pub mod optional;
pub mod owned;
pub mod pipeline;
pub mod records;
pub mod report;
pub mod slim;
pub mod watches;

use std::sync::Arc;
use std::time::Instant;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::Instrument;

use crate::api::GrafanaCluster;
use crate::error::{Error, ErrorClass, Result};

pub use context::{Context, ControllerConfig, Stores};
pub use watches::run;

/// Why a round asks to be retried with backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryCause {
    /// Writing a child failed, with the API server's status class.
    Apply(ErrorClass),
    /// AWS could not be asked, or the last good configuration is in use.
    Aws,
    /// Something the spec names is missing (a resource, a Secret); it may appear.
    Unresolved,
}

impl RetryCause {
    /// The `reason` label of the reconcile error metric.
    pub fn metric_label(self) -> &'static str {
        match self {
            RetryCause::Apply(class) => class.as_str(),
            RetryCause::Aws => "aws",
            RetryCause::Unresolved => "unresolved",
        }
    }
}

/// What a round decided about the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Being deleted: the garbage collector removes the children.
    Deleting,
    /// The spec is refused: nothing to do until it changes.
    InvalidSpec,
    /// Applied; the rollout goes on, and the Deployment's events bring us back.
    RollingOut,
    /// Ready: check again after the resync interval.
    Synced,
    /// Something failed or is not there yet: retry with backoff.
    Retry(RetryCause),
    /// An AWS resource the cluster needs was just created: look again soon, without
    /// counting a failure.
    Created,
}

/// The key of a cluster's failure count: `namespace/name`.
pub(crate) fn key<K: kube::Resource>(gc: &K) -> String {
    format!("{}/{}", gc.namespace().unwrap_or_default(), gc.name_any())
}

/// Reconciles one GrafanaCluster.
pub async fn reconcile(gc: Arc<GrafanaCluster>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    let key = key(gc.as_ref());
    let span = tracing::info_span!("reconcile", cluster = %key);
    let result = pipeline::reconcile_cluster(&gc, &ctx)
        .instrument(span)
        .await;
    ctx.metrics.reconcile_finished(started.elapsed());
    let outcome =
        result.inspect_err(|e| tracing::warn!(cluster = %key, error = %e, "reconcile failed"))?;
    tracing::debug!(cluster = %key, ?outcome, "reconciled");
    Ok(match outcome {
        Outcome::Deleting | Outcome::InvalidSpec => {
            ctx.forget_failures(&key);
            Action::await_change()
        }
        Outcome::RollingOut | Outcome::Synced => Action::requeue(ctx.backoff(&key, false)),
        Outcome::Created => Action::requeue(ctx.config.retry_base),
        Outcome::Retry(cause) => {
            ctx.metrics.reconcile_failed(cause.metric_label());
            Action::requeue(ctx.backoff(&key, true))
        }
    })
}

/// The error policy: back off per cluster.
pub fn error_policy(gc: Arc<GrafanaCluster>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error.metric_label());
    Action::requeue(ctx.backoff(&key(gc.as_ref()), true))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod api_tests;
