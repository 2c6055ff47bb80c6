//! Discovery through the real AWS SDK against moto (the local AWS), and the SDK's retry and
//! timeout behaviour through the fault proxy in front of it.
//!
//! Run through `make e2e` (one test at a time: each test resets moto's shared state).
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use grafana_ha_operator::api::{CacheEngine, DatabaseEngine};
use grafana_ha_operator::aws::{ClientOptions, Discovery, DiscoveryConfig, FileSystemQuery};
use grafana_ha_operator::facts::{CacheKind, DatabaseKind, Lookup};
use grafana_ha_operator::metrics::{AwsOutcome, Metrics};
use support::aws::{
    AwsClients, cache_lookups, calls, clear_fault, faults_injected, reset_moto, set_fault, tags,
};

const APP: (&str, &str) = ("app", "grafana");

/// A clean moto and clients to fill it.
async fn fresh_aws() -> AwsClients {
    reset_moto();
    AwsClients::new().await
}

/// Discovery configured from the environment, as the operator runs it.
async fn discovery(refresh_interval: Duration, page_size: i32) -> (Discovery, Metrics) {
    let metrics = Metrics::new();
    let config = DiscoveryConfig {
        refresh_interval,
        default_region: None,
    };
    let options = ClientOptions {
        page_size,
        ..ClientOptions::default()
    };
    let discovery = Discovery::from_env_with(config, options, metrics.clone()).await;
    (discovery, metrics)
}

/// Discovery that talks to AWS through the fault proxy, with quick retries.
async fn discovery_via_proxy(options: ClientOptions) -> (Discovery, Metrics) {
    let metrics = Metrics::new();
    let options = ClientOptions {
        endpoint_url: Some(support::aws::fault_proxy_url()),
        ..options
    };
    let discovery =
        Discovery::from_env_with(DiscoveryConfig::default(), options, metrics.clone()).await;
    (discovery, metrics)
}

fn quick_retries() -> ClientOptions {
    ClientOptions {
        initial_backoff: Duration::from_millis(50),
        ..ClientOptions::default()
    }
}

// ---------------------------------------------------------------------------------------
// RDS

#[tokio::test]
async fn database_is_found_with_its_managed_credentials() {
    let aws = fresh_aws().await;
    let arn = aws
        .create_db_instance("grafana-db", "postgres", &[APP, ("env", "prod")], true)
        .await;
    aws.create_db_instance("other-db", "postgres", &[("app", "other")], false)
        .await;
    aws.create_db_instance("staging-db", "mysql", &[APP, ("env", "staging")], false)
        .await;
    let (discovery, metrics) = discovery(Duration::from_secs(60), 100).await;

    let lookup = discovery
        .find_database(None, &tags(&[APP, ("env", "prod")]))
        .await
        .expect("discovery succeeds");
    let Lookup::Found(db) = lookup else {
        panic!("expected Found, got {lookup:?}");
    };
    assert_eq!(db.arn, arn);
    assert_eq!(db.identifier, "grafana-db");
    assert_eq!(db.kind, DatabaseKind::Instance);
    assert_eq!(db.engine, DatabaseEngine::Postgres);
    assert_eq!(db.rds_engine, "postgres");
    assert!(db.host.starts_with("grafana-db."), "{}", db.host);
    assert_eq!(db.port, 5432);
    assert_eq!(db.db_name.as_deref(), Some("grafana"));
    assert_eq!(db.master_username.as_deref(), Some("admin"));
    let secret_arn = db.managed_secret_arn.expect("RDS manages the password");

    let creds = discovery
        .managed_credentials(None, &secret_arn)
        .await
        .expect("secret is readable");
    assert_eq!(creds.secret_arn, secret_arn);
    assert_eq!(creds.username, "admin");
    assert_eq!(creds.password.expose(), "P@55w0rd!");
    assert!(!format!("{creds:?}").contains("P@55w0rd!"));

    // Read once, then served from the cache (the value and the versions' listing).
    discovery
        .managed_credentials(None, &secret_arn)
        .await
        .expect("cached secret");
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 1);
    assert_eq!(secret_calls(&metrics, "ListSecrets"), 1);
    assert_eq!(cache_lookups(&metrics, "secretsmanager", "hit"), 2);
}

fn secret_calls(metrics: &Metrics, operation: &str) -> u64 {
    calls(metrics, "secretsmanager", operation, AwsOutcome::Success)
}

/// The ARN of the RDS-managed secret of the one database tagged `selector`.
async fn managed_secret_of(discovery: &Discovery, selector: &[(&str, &str)]) -> String {
    match discovery
        .find_database(None, &tags(selector))
        .await
        .unwrap()
    {
        Lookup::Found(db) => db.managed_secret_arn.expect("RDS manages the password"),
        other => panic!("expected Found, got {other:?}"),
    }
}

/// Issue 11: the value of an RDS-managed secret is read once per version, whatever the
/// number of refreshes, and a rotation reaches the cluster that uses it within one refresh
/// at the cost of exactly one GetSecretValue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_read_once_and_reaches_its_cluster_within_one_refresh() {
    let aws = fresh_aws().await;
    aws.create_db_instance("grafana-db", "postgres", &[APP], true)
        .await;
    aws.create_db_instance("other-db", "postgres", &[("app", "other")], true)
        .await;
    let refresh = Duration::from_secs(1);
    let (discovery, metrics) = discovery(refresh, 100).await;
    let mut changes = discovery.subscribe_changes();
    let arn = managed_secret_of(&discovery, &[APP]).await;
    let other = managed_secret_of(&discovery, &[("app", "other")]).await;

    let read = |owner: &'static str, arn: String| {
        let discovery = discovery.for_owner(owner);
        async move { discovery.managed_credentials(None, &arn).await.unwrap() }
    };
    assert_eq!(
        read("ns/a", arn.clone()).await.password.expose(),
        "P@55w0rd!"
    );
    read("ns/b", other.clone()).await;
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 2);

    // Refreshes without a rotation: the listing is read, the values are not.
    tokio::time::sleep(refresh * 3).await;
    read("ns/a", arn.clone()).await;
    read("ns/b", other.clone()).await;
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 2);
    assert!(
        secret_calls(&metrics, "ListSecrets") >= 3,
        "{}",
        metrics.render()
    );
    assert!(changes.try_recv().is_err(), "no rotation, no announcement");

    aws.secrets
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"username":"admin","password":"rotated-Pw-2"}"#)
        .send()
        .await
        .expect("rotate");
    let rotated = std::time::Instant::now();
    let announced = tokio::time::timeout(refresh * 5, changes.recv())
        .await
        .expect("the rotation is announced")
        .expect("channel open");
    let took = rotated.elapsed();
    println!("a rotated secret was announced after {took:?}");
    assert_eq!(&*announced, "ns/a");
    // One refresh interval and one tick of the watch (a quarter), with slack.
    assert!(took < refresh * 3, "took {took:?}");

    let creds = read("ns/a", arn.clone()).await;
    assert_eq!(creds.password.expose(), "rotated-Pw-2");
    read("ns/a", arn.clone()).await;
    read("ns/b", other.clone()).await;
    assert_eq!(
        secret_calls(&metrics, "GetSecretValue"),
        3,
        "exactly one read for the rotation"
    );
    assert!(
        !format!("{creds:?}").contains("rotated-Pw-2"),
        "no value in Debug"
    );
    // Only the owner of the rotated secret was announced.
    tokio::time::sleep(refresh * 2).await;
    while let Ok(owner) = changes.try_recv() {
        assert_eq!(&*owner, "ns/a");
    }
}

/// An IAM policy without secretsmanager:ListSecrets (older installs): the value is read
/// every refresh interval as before, and the refused listing is not asked again at once.
#[tokio::test]
async fn a_refused_secret_listing_falls_back_to_reading_every_interval() {
    let aws = fresh_aws().await;
    clear_fault();
    aws.create_db_instance("grafana-db", "postgres", &[APP], true)
        .await;
    let metrics = Metrics::new();
    let refresh = Duration::from_secs(1);
    let discovery = Discovery::from_env_with(
        DiscoveryConfig {
            refresh_interval: refresh,
            default_region: None,
        },
        ClientOptions {
            endpoint_url: Some(support::aws::fault_proxy_url()),
            ..quick_retries()
        },
        metrics.clone(),
    )
    .await;
    let arn = managed_secret_of(&discovery, &[APP]).await;

    set_fault(r#"{"mode":"access_denied","count":1,"service":"secretsmanager"}"#);
    let creds = discovery.managed_credentials(None, &arn).await;
    clear_fault_after(|| faults_injected("secretsmanager"), 1);
    assert_eq!(creds.unwrap().password.expose(), "P@55w0rd!");
    assert_eq!(
        calls(
            &metrics,
            "secretsmanager",
            "ListSecrets",
            AwsOutcome::ClientError
        ),
        1
    );
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 1);

    discovery.managed_credentials(None, &arn).await.unwrap();
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 1, "cached");
    tokio::time::sleep(refresh + Duration::from_millis(200)).await;
    discovery.managed_credentials(None, &arn).await.unwrap();
    assert_eq!(secret_calls(&metrics, "GetSecretValue"), 2, "re-read");
    assert_eq!(secret_calls(&metrics, "ListSecrets"), 0, "not asked again");
}

#[tokio::test]
async fn database_lookup_reports_not_found_and_ambiguous() {
    let aws = fresh_aws().await;
    let a = aws
        .create_db_instance("db-a", "postgres", &[APP], false)
        .await;
    let b = aws
        .create_db_instance("db-b", "mariadb", &[APP], false)
        .await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    let ambiguous = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(ambiguous, Lookup::Ambiguous { arns: expected });

    let missing = discovery
        .find_database(None, &tags(&[("app", "nothing-has-this")]))
        .await
        .unwrap();
    assert_eq!(missing, Lookup::NotFound { candidates: 2 });
}

#[tokio::test]
async fn non_sql_engines_are_not_candidates() {
    let aws = fresh_aws().await;
    aws.create_db_instance("graph", "neptune", &[APP], false)
        .await;
    // moto's RDS refuses docdb instances (DocumentDB has its own API there); the unit tests
    // cover docdb. Oracle and SQL Server are listed by DescribeDBInstances like Neptune.
    aws.create_db_instance("ora", "oracle-ee", &[APP], false)
        .await;
    aws.create_db_instance("mssql", "sqlserver-se", &[APP], false)
        .await;
    let arn = aws
        .create_db_instance("maria", "mariadb", &[APP], false)
        .await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    let lookup = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    let Lookup::Found(db) = lookup else {
        panic!("expected Found, got {lookup:?}");
    };
    assert_eq!(db.arn, arn);
    assert_eq!(db.engine, DatabaseEngine::Mysql);
    assert_eq!(db.rds_engine, "mariadb");
    assert_eq!(db.port, 3306);
}

#[tokio::test]
async fn aurora_member_and_cluster_resolve_to_the_cluster_once() {
    let aws = fresh_aws().await;
    let cluster_arn = aws
        .create_db_cluster("aurora", "aurora-postgresql", &[APP])
        .await;
    aws.create_cluster_member("aurora-1", "aurora", "aurora-postgresql", &[APP])
        .await;
    aws.create_cluster_member("aurora-2", "aurora", "aurora-postgresql", &[])
        .await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    let lookup = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    let Lookup::Found(db) = lookup else {
        panic!("expected Found, got {lookup:?}");
    };
    assert_eq!(db.arn, cluster_arn);
    assert_eq!(db.kind, DatabaseKind::Cluster);
    assert_eq!(db.engine, DatabaseEngine::Postgres);
    assert_eq!(db.rds_engine, "aurora-postgresql");
    assert!(db.host.starts_with("aurora.cluster-"), "{}", db.host);
    assert!(db.managed_secret_arn.is_some());
}

#[tokio::test]
async fn paging_finds_a_match_on_the_second_page() {
    let aws = fresh_aws().await;
    for i in 0..25 {
        let tag = if i == 22 {
            ("app", "grafana")
        } else {
            ("app", "filler")
        };
        aws.create_db_instance(&format!("db-{i:02}"), "postgres", &[tag], false)
            .await;
    }
    let (discovery, metrics) = discovery(Duration::from_secs(60), 20).await;

    let lookup = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    assert!(
        matches!(&lookup, Lookup::Found(db) if db.identifier == "db-22"),
        "{lookup:?}"
    );
    assert_eq!(
        calls(&metrics, "rds", "DescribeDBInstances", AwsOutcome::Success),
        2,
        "25 instances at 20 per page are two pages"
    );
}

#[tokio::test]
async fn two_matches_on_different_pages_are_ambiguous() {
    let aws = fresh_aws().await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let tagged = i == 1 || i == 23;
        let tag = if tagged { APP } else { ("app", "filler") };
        let arn = aws
            .create_db_instance(&format!("db-{i:02}"), "postgres", &[tag], false)
            .await;
        if tagged {
            expected.push(arn);
        }
    }
    expected.sort();
    let (discovery, _) = discovery(Duration::from_secs(60), 20).await;

    let lookup = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    assert_eq!(lookup, Lookup::Ambiguous { arns: expected });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_share_one_refresh() {
    let aws = fresh_aws().await;
    aws.create_db_instance("grafana-db", "postgres", &[APP], false)
        .await;
    let (discovery, metrics) = discovery(Duration::from_secs(60), 100).await;

    let lookups = (0..10).map(|_| {
        let discovery = discovery.clone();
        tokio::spawn(async move { discovery.find_database(None, &tags(&[APP])).await })
    });
    for result in futures::future::join_all(lookups).await {
        let lookup = result.expect("task").expect("lookup");
        assert!(matches!(lookup, Lookup::Found(_)), "{lookup:?}");
    }
    assert_eq!(
        calls(&metrics, "rds", "DescribeDBInstances", AwsOutcome::Success),
        1
    );
    // One refresh is one DescribeDBInstances and one DescribeDBClusters.
    assert_eq!(metrics.aws_call_count("rds", AwsOutcome::Success), 2);
    assert_eq!(cache_lookups(&metrics, "rds", "miss"), 1);
    assert_eq!(cache_lookups(&metrics, "rds", "hit"), 9);
}

#[tokio::test]
async fn inventory_is_refreshed_after_the_interval_and_on_invalidate() {
    let aws = fresh_aws().await;
    let (discovery, metrics) = discovery(Duration::from_secs(2), 100).await;
    let selector = tags(&[APP]);
    let describes = || calls(&metrics, "rds", "DescribeDBInstances", AwsOutcome::Success);

    assert_eq!(
        discovery.find_database(None, &selector).await.unwrap(),
        Lookup::NotFound { candidates: 0 }
    );
    aws.create_db_instance("late-db", "postgres", &[APP], false)
        .await;
    // Still the cached inventory: the new database is not seen yet.
    assert_eq!(
        discovery.find_database(None, &selector).await.unwrap(),
        Lookup::NotFound { candidates: 0 }
    );
    assert_eq!(describes(), 1);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let lookup = discovery.find_database(None, &selector).await.unwrap();
    assert!(matches!(lookup, Lookup::Found(_)), "{lookup:?}");
    assert_eq!(describes(), 2);

    discovery.invalidate();
    discovery.find_database(None, &selector).await.unwrap();
    assert_eq!(describes(), 3);
}

// ---------------------------------------------------------------------------------------
// ElastiCache

#[tokio::test]
async fn redis_replication_group_is_found() {
    let aws = fresh_aws().await;
    let arn = aws
        .create_replication_group("grafana-cache", "redis", &[APP], false)
        .await;
    aws.create_replication_group("other-cache", "redis", &[("app", "other")], false)
        .await;
    let (discovery, metrics) = discovery(Duration::from_secs(60), 100).await;

    let lookup = discovery.find_cache(None, &tags(&[APP])).await.unwrap();
    let Lookup::Found(cache) = lookup else {
        panic!("expected Found, got {lookup:?}");
    };
    assert_eq!(cache.arn, arn);
    assert_eq!(cache.identifier, "grafana-cache");
    assert_eq!(cache.kind, CacheKind::ReplicationGroup);
    assert_eq!(cache.engine, CacheEngine::Redis);
    assert!(!cache.host.is_empty());
    assert_eq!(cache.port, 6379);
    assert!(cache.transit_encryption);
    // The tags of every group come from one GetResources page, none per group.
    assert_eq!(
        calls(&metrics, "tagging", "GetResources", AwsOutcome::Success),
        1
    );
    assert_eq!(
        calls(
            &metrics,
            "elasticache",
            "ListTagsForResource",
            AwsOutcome::Success
        ),
        0
    );

    // Without the tagging API: one ListTagsForResource per group, same answer.
    let client = aws_sdk_elasticache::Client::new(&support::aws::sdk_config().await);
    let fallback =
        grafana_ha_operator::aws::elasticache::fetch_inventory(&client, None, &metrics, 100)
            .await
            .unwrap();
    let tagged = fallback
        .entries
        .iter()
        .find(|e| e.arn == arn)
        .expect("listed");
    assert_eq!(tagged.tags, tags(&[APP]).into_iter().collect());
    assert_eq!(
        calls(
            &metrics,
            "elasticache",
            "ListTagsForResource",
            AwsOutcome::Success
        ),
        2
    );
}

#[tokio::test]
async fn cluster_mode_redis_is_unsupported() {
    let aws = fresh_aws().await;
    let arn = aws
        .create_replication_group("sharded", "redis", &[APP], true)
        .await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    match discovery.find_cache(None, &tags(&[APP])).await.unwrap() {
        Lookup::Unsupported { arn: got, reason } => {
            assert_eq!(got, arn);
            assert!(reason.contains("cluster mode"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

/// moto returns no endpoint for Memcached, so the furthest discovery gets is NotReady; the
/// endpoint fallback itself is unit-tested.
#[tokio::test]
async fn memcached_cluster_is_discovered() {
    let aws = fresh_aws().await;
    let arn = aws.create_memcached("grafana-mc", &[APP]).await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    match discovery.find_cache(None, &tags(&[APP])).await.unwrap() {
        Lookup::NotReady { arn: got, .. } => assert_eq!(got, arn),
        Lookup::Found(cache) => {
            // A newer moto that fills endpoints in.
            assert_eq!(cache.arn, arn);
            assert_eq!(cache.engine, CacheEngine::Memcached);
        }
        other => panic!("expected NotReady or Found, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// EFS

#[tokio::test]
async fn file_system_is_found_with_zones_and_tagged_access_point() {
    let aws = fresh_aws().await;
    let fs_id = aws.create_file_system("plugins", &[APP]).await;
    aws.create_file_system("other", &[("app", "other")]).await;
    aws.create_mount_target(&fs_id, "us-east-1b").await;
    aws.create_mount_target(&fs_id, "us-east-1a").await;
    aws.create_access_point(&fs_id, "untagged", &[]).await;
    let ap_id = aws.create_access_point(&fs_id, "tagged", &[APP]).await;
    let (discovery, metrics) = discovery(Duration::from_secs(60), 100).await;
    let selector = tags(&[APP]);
    let query = FileSystemQuery::Tags {
        selector: &selector,
        access_point_id: None,
    };

    let lookup = discovery.find_file_system(None, query).await.unwrap();
    let Lookup::Found(storage) = lookup else {
        panic!("expected Found, got {lookup:?}");
    };
    assert_eq!(storage.file_system_id, fs_id);
    assert_eq!(storage.access_point_id.as_deref(), Some(ap_id.as_str()));
    assert_eq!(storage.mount_target_zones, vec!["us-east-1a", "us-east-1b"]);

    // Mount targets and access points are cached like the inventory.
    discovery.find_file_system(None, query).await.unwrap();
    assert_eq!(
        calls(&metrics, "efs", "DescribeMountTargets", AwsOutcome::Success),
        1
    );
    assert_eq!(
        calls(&metrics, "efs", "DescribeAccessPoints", AwsOutcome::Success),
        1
    );
}

/// Issue 11: N file systems cost list pages per refresh, not calls per file system. Access
/// points come from the region's listing; mount targets are read again only for a file
/// system whose NumberOfMountTargets moved.
#[tokio::test]
async fn file_systems_cost_list_pages_per_refresh() {
    const N: usize = 12;
    let aws = fresh_aws().await;
    let mut ids = Vec::new();
    for i in 0..N {
        let team = format!("team-{i}");
        let fs = aws.create_file_system(&team, &[("team", &team)]).await;
        aws.create_mount_target(&fs, "us-east-1a").await;
        aws.create_access_point(&fs, &team, &[("team", &team)])
            .await;
        ids.push(fs);
    }
    let refresh = Duration::from_secs(1);
    // Five file systems per page: three pages of DescribeFileSystems.
    let (discovery, metrics) = discovery(refresh, 5).await;
    let efs_calls = |operation| calls(&metrics, "efs", operation, AwsOutcome::Success);
    let lookup_all = || async {
        let mut found = Vec::new();
        for i in 0..N {
            let selector = tags(&[("team", &format!("team-{i}"))]);
            let query = FileSystemQuery::Tags {
                selector: &selector,
                access_point_id: None,
            };
            match discovery.find_file_system(None, query).await.unwrap() {
                Lookup::Found(storage) => found.push(storage),
                other => panic!("team-{i}: expected Found, got {other:?}"),
            }
        }
        found
    };
    let first = lookup_all().await;
    for (storage, id) in first.iter().zip(&ids) {
        assert_eq!(&storage.file_system_id, id);
        assert!(storage.access_point_id.is_some(), "{storage:?}");
    }
    assert_eq!(
        efs_calls("DescribeMountTargets"),
        N as u64,
        "once per file system"
    );
    assert_eq!(efs_calls("DescribeAccessPoints"), 1);

    let counts = || {
        [
            "DescribeFileSystems",
            "DescribeAccessPoints",
            "DescribeMountTargets",
        ]
        .map(efs_calls)
    };
    let before = counts();
    tokio::time::sleep(refresh + Duration::from_millis(200)).await;
    lookup_all().await;
    let after = counts();
    let per_refresh: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    println!("EFS calls per refresh with {N} file systems: {per_refresh:?}");
    assert_eq!(
        per_refresh,
        [3, 1, 0],
        "file system pages, one access point page, no mount targets"
    );

    // A second mount target changes one file system's NumberOfMountTargets: that one is
    // read at the next refresh, and only it.
    aws.create_mount_target(&ids[0], "us-east-1b").await;
    tokio::time::sleep(refresh + Duration::from_millis(200)).await;
    let before = counts();
    let found = lookup_all().await;
    assert_eq!(found[0].mount_target_zones, ["us-east-1a", "us-east-1b"]);
    assert_eq!(counts()[2] - before[2], 1);
}

#[tokio::test]
async fn two_tagged_access_points_are_ambiguous() {
    let aws = fresh_aws().await;
    let fs_id = aws.create_file_system("plugins", &[APP]).await;
    aws.create_mount_target(&fs_id, "us-east-1a").await;
    aws.create_access_point(&fs_id, "one", &[APP]).await;
    aws.create_access_point(&fs_id, "two", &[APP]).await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;
    let selector = tags(&[APP]);

    let lookup = discovery
        .find_file_system(
            None,
            FileSystemQuery::Tags {
                selector: &selector,
                access_point_id: None,
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&lookup, Lookup::Ambiguous { arns } if arns.len() == 2 && arns.iter().all(|a| a.contains("access-point/"))),
        "{lookup:?}"
    );
}

#[tokio::test]
async fn file_system_without_mount_targets_is_not_ready() {
    let aws = fresh_aws().await;
    let fs_id = aws.create_file_system("plugins", &[APP]).await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;
    let selector = tags(&[APP]);

    let lookup = discovery
        .find_file_system(
            None,
            FileSystemQuery::Tags {
                selector: &selector,
                access_point_id: None,
            },
        )
        .await
        .unwrap();
    match lookup {
        Lookup::NotReady { arn, state } => {
            assert!(arn.ends_with(&fs_id), "{arn}");
            assert_eq!(state, "no mount targets");
        }
        other => panic!("expected NotReady, got {other:?}"),
    }
}

#[tokio::test]
async fn file_system_by_id_checks_the_access_point() {
    let aws = fresh_aws().await;
    let fs_id = aws.create_file_system("plugins", &[]).await;
    aws.create_mount_target(&fs_id, "us-east-1c").await;
    let ap_id = aws.create_access_point(&fs_id, "ap", &[]).await;
    let (discovery, _) = discovery(Duration::from_secs(60), 100).await;

    let found = discovery
        .find_file_system(
            None,
            FileSystemQuery::Id {
                file_system_id: &fs_id,
                access_point_id: Some(&ap_id),
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&found, Lookup::Found(s) if s.access_point_id.as_deref() == Some(ap_id.as_str())
            && s.mount_target_zones == ["us-east-1c"]),
        "{found:?}"
    );

    let missing = discovery
        .find_file_system(
            None,
            FileSystemQuery::Id {
                file_system_id: &fs_id,
                access_point_id: Some("fsap-0123456789abcdef0"),
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(&missing, Lookup::Unsupported { reason, .. } if reason.contains("fsap-0123456789abcdef0")),
        "{missing:?}"
    );

    let unknown = discovery
        .find_file_system(
            None,
            FileSystemQuery::Id {
                file_system_id: "fs-0000000000000000",
                access_point_id: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(unknown, Lookup::NotFound { candidates: 1 });
}

// ---------------------------------------------------------------------------------------
// Faults, through the fault proxy

#[tokio::test]
async fn brief_throttling_is_retried_by_the_sdk() {
    let aws = fresh_aws().await;
    clear_fault();
    aws.create_db_instance("grafana-db", "postgres", &[APP], false)
        .await;
    let (discovery, metrics) = discovery_via_proxy(quick_retries()).await;

    set_fault(r#"{"mode":"throttle","count":2,"service":"rds"}"#);
    let lookup = discovery.find_database(None, &tags(&[APP])).await;
    clear_fault_after(|| faults_injected("rds"), 2);
    let lookup = lookup.expect("the SDK retries throttling");
    assert!(matches!(lookup, Lookup::Found(_)), "{lookup:?}");
    assert_eq!(
        calls(&metrics, "rds", "DescribeDBInstances", AwsOutcome::Success),
        1
    );
    assert_eq!(metrics.aws_call_count("rds", AwsOutcome::Throttled), 0);
}

#[tokio::test]
async fn persistent_throttling_is_reported_as_throttled() {
    fresh_aws().await;
    clear_fault();
    let (discovery, metrics) = discovery_via_proxy(quick_retries()).await;

    set_fault(r#"{"mode":"throttle","count":-1,"service":"rds"}"#);
    let result = discovery.find_database(None, &tags(&[APP])).await;
    let injected = faults_injected("rds");
    clear_fault();
    let err = result.expect_err("throttled through every attempt");
    assert_eq!(err.reason(), "AwsThrottled");
    assert_eq!(err.service(), "rds");
    assert_eq!(err.operation(), "DescribeDBInstances");
    assert!(err.is_transient());
    assert!(
        err.to_string()
            .starts_with("rds DescribeDBInstances throttled by AWS"),
        "{err}"
    );
    assert_eq!(injected, 3, "the SDK makes 3 attempts");
    assert_eq!(
        calls(
            &metrics,
            "rds",
            "DescribeDBInstances",
            AwsOutcome::Throttled
        ),
        1
    );

    // The failure did not poison the cache: with AWS back, the next lookup refreshes.
    let lookup = discovery.find_database(None, &tags(&[APP])).await.unwrap();
    assert_eq!(lookup, Lookup::NotFound { candidates: 0 });
}

#[tokio::test]
async fn server_errors_are_reported_as_unavailable() {
    fresh_aws().await;
    clear_fault();
    let (discovery, metrics) = discovery_via_proxy(quick_retries()).await;

    set_fault(r#"{"mode":"error500","count":-1,"service":"elasticfilesystem"}"#);
    let selector = tags(&[APP]);
    let result = discovery
        .find_file_system(
            None,
            FileSystemQuery::Tags {
                selector: &selector,
                access_point_id: None,
            },
        )
        .await;
    clear_fault();
    let err = result.expect_err("500 through every attempt");
    assert_eq!(err.reason(), "AwsUnavailable");
    assert_eq!(err.outcome(), AwsOutcome::ServerError);
    assert!(err.is_transient());
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(
        calls(
            &metrics,
            "efs",
            "DescribeFileSystems",
            AwsOutcome::ServerError
        ),
        1
    );
}

#[tokio::test]
async fn slow_aws_is_reported_as_timeout() {
    fresh_aws().await;
    clear_fault();
    let options = ClientOptions {
        attempt_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_millis(1500),
        ..quick_retries()
    };
    let (discovery, metrics) = discovery_via_proxy(options).await;

    set_fault(r#"{"mode":"delay","count":-1,"delay_seconds":3,"service":"rds"}"#);
    let started = std::time::Instant::now();
    let result = discovery.find_database(None, &tags(&[APP])).await;
    let elapsed = started.elapsed();
    clear_fault();
    let err = result.expect_err("every attempt times out");
    assert_eq!(err.reason(), "AwsTimeout");
    assert_eq!(err.outcome(), AwsOutcome::Timeout);
    assert!(
        elapsed < Duration::from_millis(2900),
        "the operation timeout bounds the call: {elapsed:?}"
    );
    assert_eq!(
        calls(&metrics, "rds", "DescribeDBInstances", AwsOutcome::Timeout),
        1
    );
}

/// Turns the faults off, then checks how many were injected (so a failing assertion does not
/// leave the proxy faulty for the next test).
fn clear_fault_after(injected: impl Fn() -> u64, expected: u64) {
    let got = injected();
    clear_fault();
    assert_eq!(got, expected, "faults injected");
}
