//! The change watch over a fake service: a refresh that changes what one cluster's selector
//! matches announces that cluster, and only it; an unchanged refresh announces nobody.

use super::*;
use crate::aws::clients::ServiceClient;
use crate::aws::inventory::{FetchContext, Inventory, TagLookup};
use crate::aws::select::{Candidate, select_by_tags};
use crate::aws::{ClientOptions, DiscoveryConfig};
use crate::facts::{Lookup, ResourceTags, Tags};
use crate::metrics::Metrics;
use aws_config::{Region, SdkConfig};
use std::sync::Mutex as StdMutex;

#[derive(Clone)]
struct FakeClient;

impl ServiceClient for FakeClient {
    const SERVICE: &'static str = "fake-watch";
    fn build(_: &SdkConfig, _: Region, _: Option<&str>) -> Self {
        FakeClient
    }
}

/// What the fake AWS holds: (arn, tag value of `team`).
static RESOURCES: StdMutex<Vec<(String, String)>> = StdMutex::new(Vec::new());

#[derive(Debug)]
struct Things(Vec<(String, ResourceTags)>);

impl Inventory for Things {
    type Client = FakeClient;
    type Key = ();
    const OPERATION: &'static str = "ListThings";

    async fn fetch(_: &FetchContext<'_, FakeClient>, _: &()) -> Result<Self, AwsError> {
        let resources = RESOURCES.lock().unwrap().clone();
        Ok(Things(
            resources
                .into_iter()
                .map(|(arn, team)| (arn, [("team".to_string(), team)].into()))
                .collect(),
        ))
    }
}

struct Thing<'a>(&'a (String, ResourceTags));

impl Candidate for Thing<'_> {
    type Facts = String;
    fn arn(&self) -> &str {
        &self.0.0
    }
    fn tags(&self) -> &ResourceTags {
        &self.0.1
    }
    fn resolve(self) -> Lookup<String> {
        Lookup::Found(self.0.0.clone())
    }
}

impl TagLookup for Things {
    type Facts = String;
    const WHAT: &'static str = "thing";
    fn select(&self, selector: &Tags) -> Lookup<String> {
        select_by_tags(self.0.iter().map(Thing), selector)
    }
}

fn team(value: &str) -> Tags {
    [("team".to_string(), value.to_string())].into()
}

#[tokio::test]
async fn a_refresh_that_changes_an_answer_announces_that_cluster_only() {
    *RESOURCES.lock().unwrap() = vec![("arn:a".into(), "a".into()), ("arn:b".into(), "b".into())];
    let config = DiscoveryConfig {
        // Always stale: every read refreshes, as after each refresh interval.
        refresh_interval: Duration::ZERO,
        default_region: Some("us-east-1".into()),
    };
    let metrics = Metrics::new();
    let sdk = SdkConfig::builder().build();
    let discovery =
        Discovery::from_sdk_config(config, &ClientOptions::default(), sdk, metrics.clone());
    let mut changes = discovery.inner.interests.subscribe();

    for (owner, selector) in [("ns/a", team("a")), ("ns/b", team("b"))] {
        let found = discovery
            .for_owner(owner)
            .lookup::<Things>(None, &selector)
            .await
            .unwrap();
        assert!(matches!(found, Lookup::Found(_)), "{found:?}");
    }
    // render (no owner) is never remembered.
    discovery.lookup::<Things>(None, &team("c")).await.unwrap();
    assert_eq!(discovery.watched_owners(), 2);

    // Nothing changed in AWS: a pass refreshes, rechecks and announces nobody.
    let seen = discovery.check_once(0).await;
    assert!(changes.try_recv().is_err());

    // A second resource tagged team=a appears: cluster a's lookup becomes ambiguous.
    RESOURCES
        .lock()
        .unwrap()
        .push(("arn:a2".into(), "a".into()));
    let seen = discovery.check_once(seen).await;
    assert_eq!(changes.try_recv().unwrap().as_ref(), "ns/a");
    assert!(changes.try_recv().is_err(), "b's answer did not change");
    assert!(
        metrics
            .render()
            .contains("grafana_ha_operator_discovery_triggers_total 1")
    );

    // Announced once per change: the next pass finds the answer it remembered.
    discovery.check_once(seen).await;
    assert!(changes.try_recv().is_err());

    // A deleted cluster is forgotten; a new round replaces the previous questions.
    discovery.forget_owner("ns/b");
    assert_eq!(discovery.watched_owners(), 1);
    let again = discovery.for_owner("ns/a");
    assert_eq!(discovery.watched_owners(), 0);
    again.lookup::<Things>(None, &team("a")).await.unwrap();
    assert_eq!(discovery.watched_owners(), 1);
}

/// A service the fake AWS can fail, counting its listings (its own statics: the test above
/// runs in parallel).
static FLAKY_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static FLAKY_FETCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Debug)]
struct Flaky(Vec<(String, ResourceTags)>);

impl Inventory for Flaky {
    type Client = FakeClient;
    type Key = ();
    const OPERATION: &'static str = "ListFlaky";

    async fn fetch(_: &FetchContext<'_, FakeClient>, _: &()) -> Result<Self, AwsError> {
        FLAKY_FETCHES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if FLAKY_DOWN.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AwsError::new(
                "fake-watch",
                "ListFlaky",
                crate::aws::AwsErrorKind::AccessDenied {
                    code: "AccessDenied".into(),
                    message: "denied".into(),
                },
            ));
        }
        Ok(Flaky(vec![("arn:f".into(), [("team", "f")].into())]))
    }
}

impl TagLookup for Flaky {
    type Facts = String;
    const WHAT: &'static str = "flaky";
    fn select(&self, selector: &Tags) -> Lookup<String> {
        select_by_tags(self.0.iter().map(Thing), selector)
    }
}

/// During an outage the watch asks AWS once per refresh interval, not at every tick, and
/// does not recheck each cluster's question against the failing service.
#[tokio::test]
async fn an_outage_is_not_retried_at_every_tick_or_per_cluster() {
    let config = DiscoveryConfig {
        refresh_interval: Duration::from_secs(3600),
        default_region: Some("us-east-1".into()),
    };
    let sdk = SdkConfig::builder().build();
    let discovery =
        Discovery::from_sdk_config(config, &ClientOptions::default(), sdk, Metrics::new());
    for owner in ["ns/a", "ns/b", "ns/c"] {
        discovery
            .for_owner(owner)
            .lookup::<Flaky>(None, &team("f"))
            .await
            .unwrap();
    }
    // Another service keeps working: its refresh bumps the generation, so the watch
    // rechecks every remembered question.
    discovery
        .for_owner("ns/d")
        .lookup::<Things>(None, &team("a"))
        .await
        .unwrap();
    let fetches = || FLAKY_FETCHES.load(std::sync::atomic::Ordering::SeqCst);
    let before = fetches();

    FLAKY_DOWN.store(true, std::sync::atomic::Ordering::SeqCst);
    discovery.invalidate();
    let seen = discovery.check_once(0).await;
    assert_eq!(
        fetches(),
        before + 1,
        "one refresh attempt, and no recheck per cluster against the failing service"
    );
    for _ in 0..5 {
        discovery.invalidate();
        discovery.check_once(seen).await;
    }
    assert_eq!(
        fetches(),
        before + 1,
        "the failing service rests until the next refresh"
    );
    FLAKY_DOWN.store(false, std::sync::atomic::Ordering::SeqCst);
}
