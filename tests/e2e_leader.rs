//! Leader election through a real coordination.k8s.io Lease. Run through `make e2e`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use grafana_ha_operator::leader::{LeaderElector, LeaseConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

fn config(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: ns.to_string(),
        name: "grafana-ha-operator".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_secs(1),
    }
}

async fn holder(api: &Api<Lease>) -> Option<String> {
    api.get("grafana-ha-operator")
        .await
        .ok()?
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time_and_a_standby_takes_over() {
    let client = support::kube::client().await;
    let ns = support::kube::namespace(&client, "lease").await;
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    // The electors run as the chart's ServiceAccount with the chart's leader-election Role
    // (bound in this namespace, as the chart binds it in its release namespace).
    support::rbac::bind_leader_role(&client, &ns).await;
    let operator = support::rbac::operator_client().await;
    let first = LeaderElector::new(operator.clone(), config(&ns, "first"));
    let second = LeaderElector::new(operator.clone(), config(&ns, "second"));

    let acquired = first
        .acquire()
        .await
        .expect("first acquires the free lease");
    assert_eq!(holder(&api).await.as_deref(), Some("first"));

    // The standby keeps waiting while the leader renews.
    let standby = tokio::spawn(async move {
        second.acquire().await.expect("second acquires");
        second
    });
    let leader = tokio::spawn(async move {
        let lost = tokio::time::timeout(Duration::from_secs(6), first.hold(acquired)).await;
        (first, lost.is_err())
    });
    let (first, still_leading) = leader.await.expect("leader task");
    assert!(still_leading, "the leader kept its lease while renewing");
    assert!(
        !standby.is_finished(),
        "the standby did not take a held lease"
    );
    assert_eq!(holder(&api).await.as_deref(), Some("first"));

    // The leader stops renewing (it died): the standby takes over after the lease expires.
    drop(first);
    let started = std::time::Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(10), standby)
        .await
        .expect("standby took over in time")
        .expect("standby task");
    assert!(
        started.elapsed() <= Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(holder(&api).await.as_deref(), Some("second"));
    let lease = api.get("grafana-ha-operator").await.expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.lease_transitions), Some(1));

    // A graceful stop releases the lease so a successor does not wait for expiry.
    second.release().await;
    let third = LeaderElector::new(operator.clone(), config(&ns, "third"));
    tokio::time::timeout(Duration::from_secs(3), third.acquire())
        .await
        .expect("a released lease is taken at once")
        .expect("third acquires");
    assert_eq!(holder(&api).await.as_deref(), Some("third"));
}
