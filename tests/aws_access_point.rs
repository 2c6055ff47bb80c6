//! The EFS access point the operator creates for a GrafanaCluster's plugins, through the
//! real AWS SDK against moto: the request resolve builds reaches EFS as it is, discovery
//! finds the created point again at once (the cache is dropped), and clusters sharing a
//! file system each find their own.
//!
//! Run through the test bed (`testbed/with-testbed.sh cargo test --test aws_access_point
//! -- --test-threads=1`): each test resets moto's shared state.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig, FileSystemQuery};
use grafana_ha_operator::facts::{Lookup, OWNER_TAG, StorageFacts, Tags};
use grafana_ha_operator::metrics::{AwsOutcome, Metrics};
use grafana_ha_operator::resolve::{ClusterRef, access_point_request};
use support::aws::{AwsClients, calls, reset_moto, tags};

const APP: (&str, &str) = ("app", "grafana");

/// Discovery as the operator runs it, with a refresh interval long enough that only an
/// invalidation can make a lookup see a new access point.
async fn discovery() -> (Discovery, Metrics) {
    let metrics = Metrics::new();
    let config = DiscoveryConfig {
        refresh_interval: Duration::from_secs(3600),
        default_region: None,
    };
    let d = Discovery::from_env_with(config, ClientOptions::default(), metrics.clone()).await;
    (d, metrics)
}

fn cluster(namespace: &str) -> GrafanaCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": namespace},
        "spec": {"plugins": {"install": ["grafana-clock-panel@2.1.8"]}},
    }))
    .unwrap()
}

/// The storage facts for `owner` on the file system tagged `app=grafana`.
async fn lookup(discovery: &Discovery, selector: &Tags, owner: &str) -> StorageFacts {
    let query = FileSystemQuery::Tags {
        selector,
        access_point_id: None,
    };
    match discovery
        .find_file_system_for(None, query, Some(owner))
        .await
        .unwrap()
    {
        Lookup::Found(facts) => facts,
        other => panic!("expected the file system for {owner}, got {other:?}"),
    }
}

#[tokio::test]
async fn the_created_access_point_has_grafanas_posix_settings_and_is_found_again() {
    reset_moto();
    let aws = AwsClients::new().await;
    let fs = aws.create_file_system("ap-fs", &[APP]).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    let (discovery, metrics) = discovery().await;
    let selector = tags(&[APP]);

    let before = lookup(&discovery, &selector, "obs/grafana").await;
    assert_eq!(
        before.access_point_id, None,
        "nothing to mount but the root"
    );

    let gc = cluster("obs");
    let request = access_point_request(&ClusterRef::of(&gc), &gc.spec, &fs);
    let id = discovery.create_access_point(&request).await.unwrap();
    assert_eq!(
        calls(&metrics, "efs", "CreateAccessPoint", AwsOutcome::Success),
        1
    );

    let points = aws.access_points(&fs).await;
    assert_eq!(points.len(), 1);
    let ap = &points[0];
    assert_eq!(ap.access_point_id(), Some(id.as_str()));
    assert_eq!(ap.client_token(), Some(request.client_token.as_str()));
    let user = ap.posix_user().expect("POSIX user");
    assert_eq!((user.uid(), user.gid()), (472, 472));
    let root = ap.root_directory().expect("root directory");
    assert_eq!(root.path(), Some("/grafana/obs/grafana"));
    let info = root.creation_info().expect("creation info");
    assert_eq!(
        (info.owner_uid(), info.owner_gid(), info.permissions()),
        (472, 472, "0755")
    );
    assert!(
        ap.tags()
            .iter()
            .any(|t| t.key() == OWNER_TAG && t.value() == "obs/grafana")
    );

    // The region's access points were cached without it: after the creation that file
    // system's are read by its id.
    let after = lookup(&discovery, &selector, "obs/grafana").await;
    assert_eq!(after.access_point_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn clusters_sharing_a_file_system_each_find_their_own() {
    reset_moto();
    let aws = AwsClients::new().await;
    let fs = aws.create_file_system("shared-fs", &[APP]).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    let (discovery, _) = discovery().await;
    let selector = tags(&[APP]);

    let a = cluster("team-a");
    let a_id = discovery
        .create_access_point(&access_point_request(&ClusterRef::of(&a), &a.spec, &fs))
        .await
        .unwrap();
    // team-b has none yet: team-a's is not its, and not a second candidate either.
    let b_before = lookup(&discovery, &selector, "team-b/grafana").await;
    assert_eq!(b_before.access_point_id, None);

    let b = cluster("team-b");
    let b_request = access_point_request(&ClusterRef::of(&b), &b.spec, &fs);
    assert_ne!(
        b_request.client_token,
        access_point_request(&ClusterRef::of(&a), &a.spec, &fs).client_token
    );
    let b_id = discovery.create_access_point(&b_request).await.unwrap();
    assert_ne!(a_id, b_id);

    let a_found = lookup(&discovery, &selector, "team-a/grafana").await;
    let b_found = lookup(&discovery, &selector, "team-b/grafana").await;
    assert_eq!(a_found.access_point_id.as_deref(), Some(a_id.as_str()));
    assert_eq!(b_found.access_point_id.as_deref(), Some(b_id.as_str()));
}

/// Issue 11: creating an access point on each of N file systems costs one
/// DescribeAccessPoints by file system id each (so every cluster finds its own in its next
/// round), not one region-wide listing each; once a listing read after the creations has
/// them, lookups are served from it again.
#[tokio::test]
async fn creating_access_points_costs_one_read_each_not_a_listing_each() {
    const N: usize = 4;
    reset_moto();
    let aws = AwsClients::new().await;
    let mut file_systems = Vec::new();
    for i in 0..N {
        let team = format!("team-{i}");
        let fs = aws.create_file_system(&team, &[("team", &team)]).await;
        aws.create_mount_target(&fs, "us-east-1a").await;
        file_systems.push((team, fs));
    }
    let (discovery, metrics) = discovery().await;
    let reads = || calls(&metrics, "efs", "DescribeAccessPoints", AwsOutcome::Success);
    let owner = |team: &str| format!("{team}/grafana");
    for (team, _) in &file_systems {
        let found = lookup(&discovery, &tags(&[("team", team)]), &owner(team)).await;
        assert_eq!(found.access_point_id, None);
    }
    assert_eq!(reads(), 1, "one region-wide listing");

    let mut created = Vec::new();
    for (team, fs) in &file_systems {
        let gc = cluster(team);
        let request = access_point_request(&ClusterRef::of(&gc), &gc.spec, fs);
        created.push(discovery.create_access_point(&request).await.unwrap());
    }
    for _ in 0..2 {
        for ((team, _), id) in file_systems.iter().zip(&created) {
            let found = lookup(&discovery, &tags(&[("team", team)]), &owner(team)).await;
            assert_eq!(found.access_point_id.as_deref(), Some(id.as_str()));
        }
    }
    assert_eq!(
        reads(),
        1 + N as u64,
        "one read by file system id per creation"
    );

    // The next listing (here forced) has them all: back to the listing alone.
    discovery.invalidate();
    for ((team, _), id) in file_systems.iter().zip(&created) {
        let found = lookup(&discovery, &tags(&[("team", team)]), &owner(team)).await;
        assert_eq!(found.access_point_id.as_deref(), Some(id.as_str()));
    }
    assert_eq!(reads(), 2 + N as u64);
}
