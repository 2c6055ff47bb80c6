//! Amazon Managed Service for Prometheus workspaces found by tag through the real AWS SDK
//! against moto, through the shared discovery cache.
//!
//! Run through the test bed (one test at a time: each test resets moto's shared state).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::time::Duration;

use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig, WorkspaceQuery};
use grafana_ha_operator::facts::Lookup;
use grafana_ha_operator::metrics::{AwsOutcome, Metrics};
use support::aws::{cache_lookups, calls, reset_moto, sdk_config, tags};

/// A workspace in moto; returns its id.
async fn create_workspace(amp: &aws_sdk_amp::Client, alias: &str, tags: &[(&str, &str)]) -> String {
    let tags: HashMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    amp.create_workspace()
        .alias(alias)
        .set_tags(Some(tags))
        .send()
        .await
        .expect("create workspace")
        .workspace_id()
        .to_string()
}

async fn discovery(page_size: i32) -> (Discovery, Metrics) {
    let metrics = Metrics::new();
    let config = DiscoveryConfig {
        refresh_interval: Duration::from_secs(60),
        default_region: None,
    };
    let options = ClientOptions {
        page_size,
        ..ClientOptions::default()
    };
    (
        Discovery::from_env_with(config, options, metrics.clone()).await,
        metrics,
    )
}

#[tokio::test]
async fn workspaces_are_found_by_tag_through_the_shared_cache() {
    reset_moto();
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    let a = create_workspace(&amp, "prod-a", &[("team", "obs"), ("env", "prod")]).await;
    let b = create_workspace(&amp, "prod-b", &[("team", "obs"), ("env", "prod")]).await;
    create_workspace(&amp, "staging", &[("team", "obs"), ("env", "staging")]).await;
    let (discovery, metrics) = discovery(100).await;

    let selector = tags(&[("team", "obs"), ("env", "prod")]);
    // Several clusters asking at once cost one listing.
    let lookups = futures::future::join_all(
        (0..5).map(|_| discovery.find_workspaces(None, WorkspaceQuery::Tags(&selector))),
    )
    .await;
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    for lookup in lookups {
        let Lookup::Found(found) = lookup.expect("discovery succeeds") else {
            panic!("expected both workspaces");
        };
        let ids: Vec<_> = found.iter().map(|w| w.id.clone()).collect();
        assert_eq!(ids, expected);
        let first = &found[0];
        assert_eq!(
            first.url,
            format!(
                "https://aps-workspaces.{}.amazonaws.com/workspaces/{}/",
                first.region, first.id
            )
        );
        assert!(
            first
                .alias
                .as_deref()
                .is_some_and(|a| a.starts_with("prod-"))
        );
    }
    assert_eq!(
        calls(&metrics, "amp", "ListWorkspaces", AwsOutcome::Success),
        1
    );
    assert_eq!(cache_lookups(&metrics, "amp", "miss"), 1);
    assert_eq!(cache_lookups(&metrics, "amp", "hit"), 4);

    // By id, from the same cached listing.
    let by_id = discovery
        .find_workspaces(None, WorkspaceQuery::Id(&b))
        .await
        .expect("discovery succeeds");
    assert!(matches!(by_id, Lookup::Found(ref v) if v.len() == 1 && v[0].id == b));
    let missing = discovery
        .find_workspaces(None, WorkspaceQuery::Id("ws-missing"))
        .await
        .expect("discovery succeeds");
    assert_eq!(missing, Lookup::NotFound { candidates: 3 });
    assert_eq!(
        calls(&metrics, "amp", "ListWorkspaces", AwsOutcome::Success),
        1
    );
}

#[tokio::test]
async fn every_page_of_workspaces_is_read() {
    reset_moto();
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    for i in 0..3 {
        create_workspace(&amp, &format!("ws{i}"), &[("team", "obs")]).await;
    }
    let (discovery, metrics) = discovery(1).await;
    let lookup = discovery
        .find_workspaces(None, WorkspaceQuery::Tags(&tags(&[("team", "obs")])))
        .await
        .expect("discovery succeeds");
    assert!(
        matches!(lookup, Lookup::Found(ref v) if v.len() == 3),
        "{lookup:?}"
    );
    // moto pages ListWorkspaces like AWS: one call per workspace at maxResults 1 (and a
    // last, empty page or not, depending on the token).
    let pages = calls(&metrics, "amp", "ListWorkspaces", AwsOutcome::Success);
    assert!(pages >= 3, "{pages} pages");
}

/// A workspace tagged after a cluster looked is announced for that cluster at the next
/// refresh, like a database: its provisioning file then changes within one refresh, not at
/// the next resync.
#[tokio::test]
async fn a_new_workspace_is_announced_to_the_cluster_that_selects_it() {
    reset_moto();
    let amp = aws_sdk_amp::Client::new(&sdk_config().await);
    create_workspace(&amp, "first", &[("team", "obs")]).await;
    create_workspace(&amp, "theirs", &[("team", "other")]).await;
    let metrics = Metrics::new();
    let config = DiscoveryConfig {
        refresh_interval: Duration::from_secs(1),
        default_region: None,
    };
    let discovery = Discovery::from_env_with(config, ClientOptions::default(), metrics).await;
    let mut changes = discovery.subscribe_changes();
    let selector = tags(&[("team", "obs")]);
    let cluster = discovery.for_owner("ns/grafana");
    cluster
        .find_workspaces(None, WorkspaceQuery::Tags(&selector))
        .await
        .expect("discovery succeeds");
    // Another cluster finds its own workspace, which a new "obs" one does not change: it
    // must not be announced. (A NotFound answer would change: it counts the candidates.)
    let other = tags(&[("team", "other")]);
    discovery
        .for_owner("ns/other")
        .find_workspaces(None, WorkspaceQuery::Tags(&other))
        .await
        .expect("discovery succeeds");

    create_workspace(&amp, "second", &[("team", "obs")]).await;
    let announced = tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("announced within a few refreshes")
        .expect("the change channel is open");
    assert_eq!(&*announced, "ns/grafana");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        changes.try_recv().is_err(),
        "only the cluster whose answer changed is announced"
    );
}
