use super::*;
use aws_sdk_elasticache::types::{CacheNode, ClusterMode, Endpoint, NodeGroup};
use pretty_assertions::assert_eq;

const ARN: &str = "arn:aws:elasticache:us-east-1:123456789012";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn grafana() -> Tags {
    [("app".to_string(), "grafana".to_string())].into()
}

fn endpoint(host: &str, port: i32) -> Endpoint {
    Endpoint::builder().address(host).port(port).build()
}

fn group(id: &str, engine: &str) -> ReplicationGroup {
    ReplicationGroup::builder()
        .replication_group_id(id)
        .arn(format!("{ARN}:replicationgroup:{id}"))
        .engine(engine)
        .status("available")
        .cluster_enabled(false)
        .node_groups(
            NodeGroup::builder()
                .node_group_id("0001")
                .primary_endpoint(endpoint(
                    &format!("{id}.abc.ng.0001.use1.cache.amazonaws.com"),
                    6379,
                ))
                .build(),
        )
        .transit_encryption_enabled(true)
        .auth_token_enabled(true)
        .build()
}

fn memcached(id: &str) -> CacheCluster {
    CacheCluster::builder()
        .cache_cluster_id(id)
        .arn(format!("{ARN}:cluster:{id}"))
        .engine("memcached")
        .cache_cluster_status("available")
        .build()
}

fn tagged(untagged: Option<Untagged>, pairs: &[(&str, &str)]) -> CacheEntry {
    untagged.expect("usable cache").with_tags(&tags(pairs))
}

fn inventory(entries: Vec<CacheEntry>) -> CacheInventory {
    CacheInventory { entries }
}

#[test]
fn redis_replication_group_is_found() {
    let inv = inventory(vec![
        tagged(
            replication_group_entry(&group("grafana", "redis")),
            &[("app", "grafana")],
        ),
        tagged(
            replication_group_entry(&group("other", "redis")),
            &[("app", "other")],
        ),
    ]);
    assert_eq!(
        select_cache(&inv, &grafana()),
        Lookup::Found(CacheFacts {
            arn: format!("{ARN}:replicationgroup:grafana"),
            identifier: "grafana".into(),
            kind: CacheKind::ReplicationGroup,
            engine: CacheEngine::Redis,
            aws_engine: "redis".into(),
            host: "grafana.abc.ng.0001.use1.cache.amazonaws.com".into(),
            port: 6379,
            transit_encryption: true,
            auth_token_enabled: true,
            nodes: 1,
            single_zone: None,
        })
    );
}

#[test]
fn valkey_is_redis() {
    let inv = inventory(vec![tagged(
        replication_group_entry(&group("vk", "valkey")),
        &[("app", "grafana")],
    )]);
    let Lookup::Found(facts) = select_cache(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(facts.engine, CacheEngine::Redis);
    assert_eq!(facts.aws_engine, "valkey");
}

#[test]
fn group_without_engine_is_redis() {
    let mut g = group("old", "redis");
    g.engine = None;
    assert_eq!(replication_group_entry(&g).unwrap().0.aws_engine, "redis");
}

#[test]
fn cluster_mode_is_unsupported() {
    let mut by_flag = group("sharded", "redis");
    by_flag.cluster_enabled = Some(true);
    let mut by_config_endpoint = group("sharded2", "redis");
    by_config_endpoint.cluster_enabled = None;
    by_config_endpoint.configuration_endpoint = Some(endpoint("cfg.example", 6379));
    let mut by_mode = group("sharded3", "valkey");
    by_mode.cluster_enabled = None;
    by_mode.cluster_mode = Some(ClusterMode::Enabled);
    for g in [by_flag, by_config_endpoint, by_mode] {
        let inv = inventory(vec![tagged(
            replication_group_entry(&g),
            &[("app", "grafana")],
        )]);
        match select_cache(&inv, &grafana()) {
            Lookup::Unsupported { arn, reason } => {
                assert_eq!(arn, g.arn.clone().unwrap());
                assert!(reason.contains("cluster mode"), "{reason}");
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn group_without_primary_endpoint_is_not_ready() {
    let mut g = group("new", "redis");
    g.node_groups = None;
    g.status = Some("creating".into());
    let inv = inventory(vec![tagged(
        replication_group_entry(&g),
        &[("app", "grafana")],
    )]);
    assert_eq!(
        select_cache(&inv, &grafana()),
        Lookup::NotReady {
            arn: format!("{ARN}:replicationgroup:new"),
            state: "creating".into()
        }
    );
}

#[test]
fn memcached_prefers_configuration_endpoint() {
    let mut c = memcached("mc");
    c.configuration_endpoint = Some(endpoint("mc.cfg.use1.cache.amazonaws.com", 11211));
    c.cache_nodes = Some(vec![
        CacheNode::builder()
            .cache_node_id("0001")
            .endpoint(endpoint("mc.0001.use1.cache.amazonaws.com", 11211))
            .build(),
    ]);
    let entry = memcached_entry(&c).unwrap().0;
    assert_eq!(
        entry.endpoint,
        Some(("mc.cfg.use1.cache.amazonaws.com".into(), 11211))
    );
}

#[test]
fn memcached_falls_back_to_first_node_endpoint() {
    let mut c = memcached("mc");
    c.cache_nodes = Some(vec![
        CacheNode::builder()
            .cache_node_id("0001")
            .endpoint(endpoint("mc.0001.use1.cache.amazonaws.com", 11211))
            .build(),
        CacheNode::builder()
            .cache_node_id("0002")
            .endpoint(endpoint("mc.0002.use1.cache.amazonaws.com", 11211))
            .build(),
    ]);
    let inv = inventory(vec![tagged(memcached_entry(&c), &[("app", "grafana")])]);
    let Lookup::Found(facts) = select_cache(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(facts.engine, CacheEngine::Memcached);
    assert_eq!(facts.kind, CacheKind::CacheCluster);
    assert_eq!(facts.host, "mc.0001.use1.cache.amazonaws.com");
    assert!(!facts.auth_token_enabled);
}

#[test]
fn memcached_without_endpoint_is_not_ready() {
    let inv = inventory(vec![tagged(
        memcached_entry(&memcached("mc")),
        &[("app", "grafana")],
    )]);
    assert!(matches!(
        select_cache(&inv, &grafana()),
        Lookup::NotReady { state, .. } if state == "available"
    ));
}

#[test]
fn only_memcached_clusters_outside_groups_are_entries() {
    let mut redis = memcached("r");
    redis.engine = Some("redis".into());
    assert_eq!(memcached_entry(&redis), None);
    let mut member = memcached("m");
    member.replication_group_id = Some("group".into());
    assert_eq!(memcached_entry(&member), None);
}

#[test]
fn several_matches_are_ambiguous_with_sorted_arns() {
    let inv = inventory(vec![
        tagged(
            replication_group_entry(&group("zz", "redis")),
            &[("app", "grafana")],
        ),
        tagged(memcached_entry(&memcached("aa")), &[("app", "grafana")]),
    ]);
    assert_eq!(
        select_cache(&inv, &grafana()),
        Lookup::Ambiguous {
            arns: vec![
                format!("{ARN}:cluster:aa"),
                format!("{ARN}:replicationgroup:zz")
            ]
        }
    );
}

#[test]
fn no_match_counts_candidates() {
    let inv = inventory(vec![tagged(
        replication_group_entry(&group("a", "redis")),
        &[("app", "other")],
    )]);
    assert_eq!(
        select_cache(&inv, &grafana()),
        Lookup::NotFound { candidates: 1 }
    );
}

#[test]
fn vanished_resources_are_recognised() {
    let gone = AwsError::new(
        SERVICE,
        LIST_TAGS_FOR_RESOURCE,
        AwsErrorKind::Client {
            code: "ReplicationGroupNotFoundFault".into(),
            message: String::new(),
        },
    );
    assert!(is_gone(&gone));
    let throttled = AwsError::new(
        SERVICE,
        LIST_TAGS_FOR_RESOURCE,
        AwsErrorKind::Throttled {
            message: String::new(),
        },
    );
    assert!(!is_gone(&throttled));
}
