//! ElastiCache: finding the Redis/Valkey replication group or Memcached cluster by tag.
//!
//! ElastiCache's describe calls do not return tags, so a refresh lists the replication groups
//! and the Memcached cache clusters and then reads every ElastiCache tag of the region from
//! the Resource Groups Tagging API (`ListTagsForResource` per resource only as a fallback).
//! Selection is the pure [`select_cache`] over the resulting inventory.

use aws_sdk_elasticache::types::{CacheCluster, ReplicationGroup, Tag};
use futures::{StreamExt, TryStreamExt};

use crate::api::CacheEngine;
use crate::aws::clients::service_client;
use crate::aws::error::{AwsError, AwsErrorKind};
use crate::aws::inventory::{FetchContext, Inventory, TagLookup};
use crate::aws::select::{Candidate, select_by_tags};
use crate::aws::{Discovery, all_pages, observe};
use crate::facts::{CacheFacts, CacheKind, Lookup, ResourceTags, Tags};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "elasticache";
const DESCRIBE_REPLICATION_GROUPS: &str = "DescribeReplicationGroups";
const DESCRIBE_CACHE_CLUSTERS: &str = "DescribeCacheClusters";
const LIST_TAGS_FOR_RESOURCE: &str = "ListTagsForResource";

/// ListTagsForResource calls in flight at once during a refresh: enough to keep a refresh
/// of a few dozen caches short, few enough not to trip ElastiCache's rate limits.
const TAG_CONCURRENCY: usize = 4;

service_client!(aws_sdk_elasticache, SERVICE);

impl Discovery {
    /// The one ElastiCache replication group or Memcached cluster carrying every selector tag.
    pub async fn find_cache(
        &self,
        region: Option<&str>,
        selector: &Tags,
    ) -> Result<Lookup<CacheFacts>, AwsError> {
        self.lookup::<CacheInventory>(region, selector).await
    }
}

impl Inventory for CacheInventory {
    type Client = aws_sdk_elasticache::Client;
    type Key = ();
    const OPERATION: &'static str = DESCRIBE_REPLICATION_GROUPS;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        let tagging = aws.client_of::<aws_sdk_resourcegroupstagging::Client>();
        fetch_inventory(aws.client, Some(&tagging), aws.metrics, aws.page_size).await
    }
}

impl TagLookup for CacheInventory {
    type Facts = CacheFacts;
    const WHAT: &'static str = "cache";

    fn select(&self, selector: &Tags) -> Lookup<CacheFacts> {
        select_cache(self, selector)
    }
}

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
    /// Cache nodes (Memcached); 1 for a replication group, whose primary endpoint is one
    /// address.
    pub nodes: i32,
    /// The zone of a cache without a standby elsewhere.
    pub single_zone: Option<String>,
    pub tags: ResourceTags,
}

/// What a resource is before its tags are known.
#[derive(Clone, Debug, PartialEq)]
pub struct Untagged(pub CacheEntry);

fn tag_map(tags: &[Tag]) -> ResourceTags {
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

/// The primary's zone when the group has no Multi-AZ standby to fail over to.
fn single_zone_of_group(group: &ReplicationGroup) -> Option<String> {
    let multi_az = group
        .multi_az()
        .is_some_and(|m| m.as_str().eq_ignore_ascii_case("enabled"));
    if multi_az {
        return None;
    }
    group
        .node_groups()
        .first()?
        .node_group_members()
        .iter()
        .find(|m| m.current_role() == Some("primary"))?
        .preferred_availability_zone()
        .filter(|z| !z.is_empty())
        .map(str::to_string)
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
        nodes: 1,
        single_zone: single_zone_of_group(group),
        tags: ResourceTags::default(),
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
        nodes: cluster
            .num_cache_nodes()
            .unwrap_or(cluster.cache_nodes().len() as i32)
            .max(1),
        single_zone: cluster
            .preferred_availability_zone()
            .filter(|z| !z.is_empty() && *z != "Multiple")
            .map(str::to_string),
        tags: ResourceTags::default(),
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

    fn tags(&self) -> &ResourceTags {
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
        nodes: entry.nodes,
        single_zone: entry.single_zone.clone(),
    })
}

/// Lists replication groups and Memcached clusters, then their tags: from the tagging API
/// (`tagging`, a few calls for the whole region) when it answers, else one
/// `ListTagsForResource` per resource (an IAM policy without tag:GetResources, an endpoint
/// without the tagging API).
pub async fn fetch_inventory(
    client: &aws_sdk_elasticache::Client,
    tagging: Option<&aws_sdk_resourcegroupstagging::Client>,
    metrics: &Metrics,
    page_size: i32,
) -> Result<CacheInventory, AwsError> {
    let groups = list_replication_groups(client, metrics, page_size).await?;
    let clusters = list_cache_clusters(client, metrics, page_size).await?;
    let listed_groups = groups.len();
    let untagged: Vec<Untagged> = groups
        .into_iter()
        .flatten()
        .chain(clusters.iter().filter_map(memcached_entry))
        .collect();
    let by_arn = match tagging {
        Some(tagging) if !untagged.is_empty() => {
            match crate::aws::tagging::tags_by_arn(tagging, metrics, SERVICE).await {
                Ok(by_arn) => Some(by_arn),
                Err(e) => {
                    tracing::warn!(error = %e, "the tagging API failed; reading ElastiCache tags per resource");
                    None
                }
            }
        }
        _ => None,
    };
    let entries: Vec<CacheEntry> = match by_arn {
        Some(mut by_arn) => untagged
            .into_iter()
            .map(|u| {
                let tags = by_arn.remove(&u.0.arn).unwrap_or_default();
                CacheEntry { tags, ..u.0 }
            })
            .collect(),
        None => {
            let entries: Vec<Option<CacheEntry>> = futures::stream::iter(untagged)
                .map(|u| tag_entry(client, metrics, u))
                .buffered(TAG_CONCURRENCY)
                .try_collect()
                .await?;
            entries.into_iter().flatten().collect()
        }
    };
    tracing::debug!(
        replication_groups = listed_groups,
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
) -> Result<Vec<Option<Untagged>>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_REPLICATION_GROUPS,
        client.describe_replication_groups().max_records(page_size),
        replication_groups,
        replication_group_entry
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
mod tests;
