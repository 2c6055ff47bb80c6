//! ElastiCache: finding the Redis/Valkey replication group or Memcached cluster by tag.
//!
//! ElastiCache's describe calls do not return tags, so a refresh lists the replication groups
//! and the Memcached cache clusters and then asks `ListTagsForResource` once per resource.
//! Selection is the pure [`select_cache`] over the resulting inventory.

use aws_sdk_elasticache::types::{CacheCluster, ReplicationGroup, Tag};
use futures::{StreamExt, TryStreamExt};

use crate::api::CacheEngine;
use crate::aws::error::{AwsError, AwsErrorKind};
use crate::aws::select::{Candidate, select_by_tags};
use crate::aws::{all_pages, observe};
use crate::facts::{CacheFacts, CacheKind, Lookup, Tags};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "elasticache";
const DESCRIBE_REPLICATION_GROUPS: &str = "DescribeReplicationGroups";
const DESCRIBE_CACHE_CLUSTERS: &str = "DescribeCacheClusters";
const LIST_TAGS_FOR_RESOURCE: &str = "ListTagsForResource";

/// ListTagsForResource calls in flight at once during a refresh: enough to keep a refresh
/// of a few dozen caches short, few enough not to trip ElastiCache's rate limits.
const TAG_CONCURRENCY: usize = 4;

/// Every Redis/Valkey replication group and Memcached cluster of a region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheInventory {
    pub entries: Vec<CacheEntry>,
}

/// One replication group or Memcached cluster, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheEntry {
    pub kind: CacheKind,
    pub arn: String,
    pub identifier: String,
    /// redis, valkey or memcached.
    pub aws_engine: String,
    pub engine: CacheEngine,
    pub status: Option<String>,
    /// Primary endpoint (Redis) or configuration / first node endpoint (Memcached).
    pub endpoint: Option<(String, i32)>,
    /// Redis cluster mode (sharded): Grafana's remote cache cannot use it.
    pub cluster_mode: bool,
    pub transit_encryption: bool,
    pub auth_token_enabled: bool,
    pub tags: Tags,
}

/// What a resource is before its tags are known.
#[derive(Clone, Debug, PartialEq)]
pub struct Untagged(pub CacheEntry);

fn tag_map(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn endpoint_of(e: Option<&aws_sdk_elasticache::types::Endpoint>) -> Option<(String, i32)> {
    let e = e?;
    let host = e.address().filter(|a| !a.is_empty())?;
    Some((host.to_string(), e.port()?))
}

/// Maps the engine name to what Grafana's remote_cache speaks. Valkey speaks the Redis
/// protocol.
fn cache_engine(aws_engine: &str) -> Option<CacheEngine> {
    match aws_engine {
        "redis" | "valkey" => Some(CacheEngine::Redis),
        "memcached" => Some(CacheEngine::Memcached),
        _ => None,
    }
}

/// Converts a replication group (tags come later); None without an ARN or id, or for an
/// engine Grafana cannot use.
pub fn replication_group_entry(group: &ReplicationGroup) -> Option<Untagged> {
    // Replication groups created before ElastiCache supported Valkey carry no engine: Redis.
    let aws_engine = group.engine().unwrap_or("redis").to_ascii_lowercase();
    let engine = cache_engine(&aws_engine).filter(|e| *e == CacheEngine::Redis)?;
    let cluster_mode = group.cluster_enabled() == Some(true)
        || group.configuration_endpoint().is_some()
        || group
            .cluster_mode()
            .is_some_and(|m| m.as_str().eq_ignore_ascii_case("enabled"));
    let endpoint = group
        .node_groups()
        .first()
        .and_then(|ng| endpoint_of(ng.primary_endpoint()));
    Some(Untagged(CacheEntry {
        kind: CacheKind::ReplicationGroup,
        arn: group.arn()?.to_string(),
        identifier: group.replication_group_id()?.to_string(),
        aws_engine,
        engine,
        status: group.status().map(str::to_string),
        endpoint,
        cluster_mode,
        transit_encryption: group.transit_encryption_enabled().unwrap_or(false),
        auth_token_enabled: group.auth_token_enabled().unwrap_or(false),
        tags: Tags::new(),
    }))
}

/// Converts a Memcached cluster (tags come later); None for other engines and for clusters
/// that belong to a replication group (those are counted through their group).
///
/// The endpoint is the configuration endpoint (auto discovery), else the first node's. Note
/// that moto returns null endpoints for Memcached, so under moto Memcached discovery can only
/// reach `NotReady`.
pub fn memcached_entry(cluster: &CacheCluster) -> Option<Untagged> {
    let aws_engine = cluster.engine()?.to_ascii_lowercase();
    if aws_engine != "memcached" || cluster.replication_group_id().is_some() {
        return None;
    }
    let endpoint = endpoint_of(cluster.configuration_endpoint()).or_else(|| {
        cluster
            .cache_nodes()
            .first()
            .and_then(|node| endpoint_of(node.endpoint()))
    });
    Some(Untagged(CacheEntry {
        kind: CacheKind::CacheCluster,
        arn: cluster.arn()?.to_string(),
        identifier: cluster.cache_cluster_id()?.to_string(),
        aws_engine,
        engine: CacheEngine::Memcached,
        status: cluster.cache_cluster_status().map(str::to_string),
        endpoint,
        cluster_mode: false,
        transit_encryption: cluster.transit_encryption_enabled().unwrap_or(false),
        auth_token_enabled: false,
        tags: Tags::new(),
    }))
}

impl Untagged {
    pub fn with_tags(self, tags: &[Tag]) -> CacheEntry {
        CacheEntry {
            tags: tag_map(tags),
            ..self.0
        }
    }
}

impl Candidate for &CacheEntry {
    type Facts = CacheFacts;

    fn arn(&self) -> &str {
        &self.arn
    }

    fn tags(&self) -> &Tags {
        &self.tags
    }

    fn resolve(self) -> Lookup<CacheFacts> {
        cache_facts(self)
    }
}

/// Selects the one cache carrying every selector tag; several are ambiguous.
pub fn select_cache(inventory: &CacheInventory, selector: &Tags) -> Lookup<CacheFacts> {
    select_by_tags(&inventory.entries, selector)
}

/// The facts of one selected cache, or why it cannot be used (yet).
pub fn cache_facts(entry: &CacheEntry) -> Lookup<CacheFacts> {
    if entry.cluster_mode {
        return Lookup::Unsupported {
            arn: entry.arn.clone(),
            reason: format!(
                "replication group {} runs in Redis cluster mode; Grafana's remote_cache \
                 needs a non-clustered Redis (cluster mode disabled)",
                entry.identifier
            ),
        };
    }
    let Some((host, port)) = entry.endpoint.clone() else {
        return Lookup::NotReady {
            arn: entry.arn.clone(),
            state: entry.status.clone().unwrap_or_else(|| "creating".into()),
        };
    };
    if entry.status.as_deref() == Some("deleting") {
        return Lookup::NotReady {
            arn: entry.arn.clone(),
            state: "deleting".into(),
        };
    }
    Lookup::Found(CacheFacts {
        arn: entry.arn.clone(),
        identifier: entry.identifier.clone(),
        kind: entry.kind,
        engine: entry.engine,
        aws_engine: entry.aws_engine.clone(),
        host,
        port,
        transit_encryption: entry.transit_encryption,
        auth_token_enabled: entry.auth_token_enabled,
    })
}

/// Lists replication groups and Memcached clusters, then their tags.
pub async fn fetch_inventory(
    client: &aws_sdk_elasticache::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<CacheInventory, AwsError> {
    let groups = list_replication_groups(client, metrics, page_size).await?;
    let clusters = list_cache_clusters(client, metrics, page_size).await?;
    let untagged: Vec<Untagged> = groups
        .iter()
        .filter_map(replication_group_entry)
        .chain(clusters.iter().filter_map(memcached_entry))
        .collect();
    let entries: Vec<Option<CacheEntry>> = futures::stream::iter(untagged)
        .map(|u| tag_entry(client, metrics, u))
        .buffered(TAG_CONCURRENCY)
        .try_collect()
        .await?;
    let entries: Vec<CacheEntry> = entries.into_iter().flatten().collect();
    tracing::debug!(
        replication_groups = groups.len(),
        cache_clusters = clusters.len(),
        usable = entries.len(),
        "refreshed ElastiCache inventory"
    );
    Ok(CacheInventory { entries })
}

/// Reads the tags of one resource; None when it vanished since it was listed.
async fn tag_entry(
    client: &aws_sdk_elasticache::Client,
    metrics: &Metrics,
    untagged: Untagged,
) -> Result<Option<CacheEntry>, AwsError> {
    let result = client
        .list_tags_for_resource()
        .resource_name(&untagged.0.arn)
        .send()
        .await;
    match observe(metrics, SERVICE, LIST_TAGS_FOR_RESOURCE, result) {
        Ok(out) => Ok(Some(untagged.with_tags(out.tag_list()))),
        Err(err) if is_gone(&err) => {
            tracing::debug!(arn = %untagged.0.arn, "cache vanished while listing its tags");
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// A resource deleted between the describe call and ListTagsForResource.
fn is_gone(err: &AwsError) -> bool {
    matches!(err.kind(), AwsErrorKind::Client { code, .. } if code.ends_with("NotFoundFault"))
}

async fn list_replication_groups(
    client: &aws_sdk_elasticache::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<Vec<ReplicationGroup>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_REPLICATION_GROUPS,
        client.describe_replication_groups().max_records(page_size),
        replication_groups
    )
}

async fn list_cache_clusters(
    client: &aws_sdk_elasticache::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<Vec<CacheCluster>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_CACHE_CLUSTERS,
        client
            .describe_cache_clusters()
            .show_cache_node_info(true)
            .show_cache_clusters_not_in_replication_groups(true)
            .max_records(page_size),
        cache_clusters
    )
}

#[cfg(test)]
mod tests {
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
}
