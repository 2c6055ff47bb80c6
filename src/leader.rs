//! Leader election through a coordination.k8s.io Lease, so that of several operator replicas
//! exactly one reconciles while the others stand by.
//!
//! The holder renews the Lease every `retry_period`; a candidate takes it over once
//! `renewTime + leaseDurationSeconds` has passed. Every write carries the resourceVersion it
//! read, so two candidates can never both win. A holder that could not renew for
//! `renew_deadline` (shorter than the lease duration) steps down: the caller stops every
//! reconcile at once, so its last write lands before any candidate may take the Lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::time::Instant;

use crate::error::{Error, Result};

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This instance's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal: a candidate takes it over this long
    /// after the holder's last renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps leading without a successful renewal. Shorter than
    /// `lease_duration`: the difference is the time the holder has to stop its writes
    /// before a candidate may take over.
    pub renew_deadline: Duration,
    /// How often the holder renews, and a candidate retries.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// controller-runtime's default renew deadline (10 s for a 15 s lease), scaled to the
    /// lease duration: two thirds of it.
    pub fn default_renew_deadline(lease_duration: Duration) -> Duration {
        lease_duration * 2 / 3
    }

    /// controller-runtime's default retry period, 2 s, or half the renew deadline when
    /// that is shorter, so a holder gets at least two tries before it steps down.
    pub fn default_retry_period(renew_deadline: Duration) -> Duration {
        (renew_deadline / 2).min(Duration::from_secs(2))
    }

    /// Refuses timings under which two instances could lead at once, or a holder could
    /// never renew in time.
    pub fn validate(&self) -> Result<()> {
        if self.lease_duration < Duration::from_secs(1) {
            return Err(Error::Config(
                "the leader lease must last at least 1 second".into(),
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(Error::Config(format!(
                "the leader renew deadline ({:?}) must be shorter than the lease duration ({:?}): \
                 otherwise a standby can take over while the leader still writes",
                self.renew_deadline, self.lease_duration
            )));
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return Err(Error::Config(format!(
                "the leader retry period ({:?}) must be above zero and shorter than the renew \
                 deadline ({:?})",
                self.retry_period, self.renew_deadline
            )));
        }
        Ok(())
    }
}

/// What the holder does next, given when its last successful renewal began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Renew; the attempt must end by this instant (the renew deadline).
    Renew { by: Instant },
    /// The renew deadline has passed: stop leading now. A candidate may take the Lease
    /// only `lease_duration - renew_deadline` later.
    StepDown,
}

/// The holder's timing decision. `renewed_at` is taken before the renewal request is
/// built, so it is never later than the renewTime the server stored: the deadline is
/// measured from no later than what candidates measure the lease from.
pub fn next_step(renewed_at: Instant, now: Instant, renew_deadline: Duration) -> Next {
    let deadline = renewed_at + renew_deadline;
    if now >= deadline {
        Next::StepDown
    } else {
        Next::Renew { by: deadline }
    }
}

/// A participant in the election.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

enum Attempt {
    Acquired,
    HeldByOther(String),
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Waits until this instance holds the Lease; returns when the winning attempt began
    /// (what [`LeaderElector::hold`] measures the renew deadline from).
    pub async fn acquire(&self) -> Result<Instant> {
        let mut last_holder = None;
        loop {
            let started = Instant::now();
            match self.try_acquire().await {
                Ok(Attempt::Acquired) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return Ok(started);
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, "standing by: another instance leads");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "leader election attempt failed"),
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews the Lease every retry period; returns (leadership is lost) when another
    /// instance took it or no renewal succeeded within the renew deadline. A renewal that
    /// hangs (a partitioned network) is cut off at the deadline too. `acquired_at` is
    /// what [`LeaderElector::acquire`] returned.
    pub async fn hold(&self, acquired_at: Instant) -> Error {
        let mut renewed_at = acquired_at;
        loop {
            let Next::Renew { by } =
                next_step(renewed_at, Instant::now(), self.config.renew_deadline)
            else {
                return self.step_down();
            };
            tokio::time::sleep_until((Instant::now() + self.config.retry_period).min(by)).await;
            let started = Instant::now();
            let Next::Renew { by } = next_step(renewed_at, started, self.config.renew_deadline)
            else {
                return self.step_down();
            };
            match tokio::time::timeout_at(by, self.try_acquire()).await {
                Ok(Ok(Attempt::Acquired)) => renewed_at = started,
                Ok(Ok(Attempt::HeldByOther(holder))) => {
                    tracing::warn!(%holder, "the leader lease was taken over");
                    return Error::Config(format!("leadership lost to {holder}"));
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "renewing the leader lease failed"),
                Err(_) => tracing::warn!("renewing the leader lease did not finish in time"),
            }
        }
    }

    fn step_down(&self) -> Error {
        tracing::warn!(
            renew_deadline = ?self.config.renew_deadline,
            "the leader lease could not be renewed in time: stepping down"
        );
        Error::Config("leader lease could not be renewed within the renew deadline".into())
    }

    /// Gives the Lease up so a standby takes over at once (on graceful shutdown).
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() == Some(self.config.identity.as_str()) {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                if let Err(e) = self
                    .api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                {
                    tracing::debug!(error = %e, "releasing the leader lease failed");
                } else {
                    tracing::info!("released the leader lease");
                }
            }
        }
    }

    async fn try_acquire(&self) -> Result<Attempt> {
        let now = Timestamp::now();
        let me = &self.config.identity;
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Acquired),
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    Ok(Attempt::HeldByOther("unknown".into()))
                }
                Err(e) => Err(e.into()),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let expires = spec.renew_time.as_ref().map(|t| {
            t.0.saturating_add(SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(0),
            )))
            .unwrap_or(t.0)
        });
        let expired = expires.is_none_or(|e| e <= now);
        if holder != *me && !holder.is_empty() && !expired {
            return Ok(Attempt::HeldByOther(holder));
        }
        if holder != *me {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(me.clone());
        spec.lease_duration_seconds = Some(self.lease_seconds());
        spec.renew_time = Some(MicroTime(now));
        // replace carries the resourceVersion we read: a concurrent winner makes this 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Acquired),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::HeldByOther(holder)),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, deadline_ms: u64, retry_ms: u64) -> LeaseConfig {
        LeaseConfig {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_millis(deadline_ms),
            retry_period: Duration::from_millis(retry_ms),
        }
    }

    #[test]
    fn the_holder_steps_down_at_the_renew_deadline_before_the_lease_expires() {
        let lease = Duration::from_secs(15);
        let deadline = LeaseConfig::default_renew_deadline(lease);
        let retry = LeaseConfig::default_retry_period(deadline);
        assert_eq!(deadline, Duration::from_secs(10));
        assert_eq!(retry, Duration::from_secs(2));
        let renewed = Instant::now();
        // Renewals keep it leading while the deadline is ahead, bounded by it.
        assert_eq!(
            next_step(renewed, renewed + Duration::from_secs(9), deadline),
            Next::Renew {
                by: renewed + deadline
            }
        );
        // At the deadline it stops, while candidates still see the lease as held: they
        // may take it only at renewTime + lease, and renewTime >= renewed.
        assert_eq!(
            next_step(renewed, renewed + deadline, deadline),
            Next::StepDown
        );
        assert!(renewed + deadline < renewed + lease);
        assert_eq!(
            next_step(renewed, renewed + Duration::from_secs(12), deadline),
            Next::StepDown
        );
    }

    #[test]
    fn short_leases_scale_the_deadline_and_retry() {
        let deadline = LeaseConfig::default_renew_deadline(Duration::from_secs(3));
        assert_eq!(deadline, Duration::from_secs(2));
        assert_eq!(
            LeaseConfig::default_retry_period(deadline),
            Duration::from_secs(1)
        );
        for lease in 1..=60 {
            let renew_deadline = LeaseConfig::default_renew_deadline(Duration::from_secs(lease));
            let c = LeaseConfig {
                renew_deadline,
                retry_period: LeaseConfig::default_retry_period(renew_deadline),
                ..config(lease, 0, 0)
            };
            assert!(c.validate().is_ok(), "{lease} s: {c:?}");
        }
        // A deadline given alone still gets a retry period that fits into it.
        let c = LeaseConfig {
            retry_period: LeaseConfig::default_retry_period(Duration::from_secs(1)),
            ..config(15, 1_000, 0)
        };
        assert!(c.validate().is_ok(), "{c:?}");
    }

    #[test]
    fn timings_that_allow_two_leaders_are_refused() {
        assert!(config(15, 10_000, 2_000).validate().is_ok());
        // The old behaviour: leading until the lease itself runs out.
        assert!(config(15, 15_000, 2_000).validate().is_err());
        assert!(config(15, 20_000, 2_000).validate().is_err());
        assert!(config(15, 10_000, 0).validate().is_err());
        assert!(config(15, 10_000, 10_000).validate().is_err());
        assert!(config(0, 0, 0).validate().is_err());
    }
}
