//! The generic discovery path (region, client, cache, metrics) with a fake service, so it is
//! tested without a network. The SDK-backed services are tested against moto in
//! tests/aws_discovery.rs.

use super::*;
use crate::facts::tags_match;
use aws_config::SdkConfig;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone)]
struct FakeClient {
    region: String,
}

impl ServiceClient for FakeClient {
    const SERVICE: &'static str = "fake";
    fn build(_: &SdkConfig, region: Region, _: Option<&str>) -> Self {
        FakeClient {
            region: region.as_ref().to_string(),
        }
    }
}

/// Fetches so far, by every test: each fetch returns a new number, so two values are the
/// same fetch exactly when their numbers are equal.
static FETCHES: AtomicUsize = AtomicUsize::new(0);

/// A value per (region, key): which region's client fetched it, and which fetch it was.
#[derive(Debug)]
struct Fake {
    region: String,
    key: u8,
    fetch: usize,
}

impl Inventory for Fake {
    type Client = FakeClient;
    type Key = u8;
    const OPERATION: &'static str = "ListFakes";

    async fn fetch(aws: &FetchContext<'_, FakeClient>, key: &u8) -> Result<Self, AwsError> {
        Ok(Fake {
            region: aws.client.region.clone(),
            key: *key,
            fetch: FETCHES.fetch_add(1, Ordering::SeqCst),
        })
    }
}

/// A second kind with the same client and key type, to show kinds are cached apart.
struct Other(usize);

impl Inventory for Other {
    type Client = FakeClient;
    type Key = u8;
    const OPERATION: &'static str = "ListOthers";

    async fn fetch(_: &FetchContext<'_, FakeClient>, _: &u8) -> Result<Self, AwsError> {
        Ok(Other(FETCHES.fetch_add(1, Ordering::SeqCst)))
    }
}

/// A region-wide listing to select from: resources named by ARN, all tagged app=<arn>.
struct Listing(Vec<ResourceTags>);

impl Inventory for Listing {
    type Client = FakeClient;
    type Key = ();
    const OPERATION: &'static str = "ListListings";

    async fn fetch(_: &FetchContext<'_, FakeClient>, _: &()) -> Result<Self, AwsError> {
        let tagged = |app: &str| ResourceTags::from([("app", app)]);
        Ok(Listing(vec![tagged("a"), tagged("b"), tagged("b")]))
    }
}

impl TagLookup for Listing {
    type Facts = usize;
    const WHAT: &'static str = "listing";

    fn select(&self, selector: &Tags) -> Lookup<usize> {
        let matching = self.0.iter().filter(|t| tags_match(selector, t)).count();
        match matching {
            0 => Lookup::NotFound {
                candidates: self.0.len(),
            },
            n => Lookup::Found(n),
        }
    }
}

fn discovery(default_region: Option<&str>) -> (Discovery, Metrics) {
    let metrics = Metrics::new();
    let config = DiscoveryConfig {
        refresh_interval: Duration::from_secs(3600),
        default_region: default_region.map(str::to_string),
    };
    let sdk = SdkConfig::builder().build();
    let discovery =
        Discovery::from_sdk_config(config, &ClientOptions::default(), sdk, metrics.clone());
    (discovery, metrics)
}

fn cache_lookups(metrics: &Metrics, result: &str) -> u64 {
    let prefix = format!(
        "grafana_ha_operator_discovery_cache_lookups_total{{service=\"fake\",result=\"{result}\"}} "
    );
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn values_are_cached_per_region_and_key() {
    let (discovery, metrics) = discovery(None);
    let (region, first) = discovery.inventory::<Fake>(Some("r1"), 1).await.unwrap();
    assert_eq!(region, "r1");
    assert_eq!((first.region.as_str(), first.key), ("r1", 1));
    let (_, again) = discovery.inventory::<Fake>(Some("r1"), 1).await.unwrap();
    assert_eq!(again.fetch, first.fetch);
    assert_eq!(
        (
            cache_lookups(&metrics, "miss"),
            cache_lookups(&metrics, "hit")
        ),
        (1, 1)
    );

    let (_, other_region) = discovery.inventory::<Fake>(Some("r2"), 1).await.unwrap();
    assert_eq!(other_region.region, "r2");
    assert_ne!(other_region.fetch, first.fetch);
    let (_, other_key) = discovery.inventory::<Fake>(Some("r1"), 2).await.unwrap();
    assert_eq!(other_key.key, 2);
    assert_ne!(other_key.fetch, first.fetch);
    assert_eq!(cache_lookups(&metrics, "miss"), 3);
}

#[tokio::test]
async fn kinds_are_cached_apart_and_invalidated_together() {
    let (discovery, _) = discovery(Some("r1"));
    let (_, fake) = discovery.inventory::<Fake>(None, 1).await.unwrap();
    let (_, other) = discovery.inventory::<Other>(None, 1).await.unwrap();
    assert_ne!(other.0, fake.fetch);
    let (_, fake_again) = discovery.inventory::<Fake>(None, 1).await.unwrap();
    let (_, other_again) = discovery.inventory::<Other>(None, 1).await.unwrap();
    assert_eq!(fake_again.fetch, fake.fetch);
    assert_eq!(other_again.0, other.0);

    discovery.invalidate();
    let (_, fake_after) = discovery.inventory::<Fake>(None, 1).await.unwrap();
    let (_, other_after) = discovery.inventory::<Other>(None, 1).await.unwrap();
    assert_ne!(fake_after.fetch, fake.fetch);
    assert_ne!(other_after.0, other.0);
}

#[tokio::test]
async fn the_region_falls_back_to_the_default_and_is_required() {
    let (with_default, _) = discovery(Some("eu-west-3"));
    for asked in [None, Some("")] {
        let (region, value) = with_default.inventory::<Fake>(asked, 1).await.unwrap();
        assert_eq!(region, "eu-west-3");
        assert_eq!(value.region, "eu-west-3");
    }

    let (without, _) = discovery(None);
    let err = without.inventory::<Fake>(None, 1).await.unwrap_err();
    assert_eq!(
        (err.service(), err.operation(), err.reason()),
        ("fake", "ListFakes", "AwsError")
    );
    assert!(!err.is_transient());
    assert!(err.to_string().contains("no AWS region"), "{err}");
}

#[tokio::test]
async fn lookup_selects_from_the_cached_listing() {
    let (discovery, metrics) = discovery(Some("r1"));
    let app = |v: &str| Tags::from([("app".to_string(), v.to_string())]);
    let found = discovery.lookup::<Listing>(None, &app("b")).await.unwrap();
    assert_eq!(found, Lookup::Found(2));
    let missing = discovery.lookup::<Listing>(None, &app("c")).await.unwrap();
    assert_eq!(missing, Lookup::NotFound { candidates: 3 });
    assert_eq!(
        (
            cache_lookups(&metrics, "miss"),
            cache_lookups(&metrics, "hit")
        ),
        (1, 1)
    );
}
