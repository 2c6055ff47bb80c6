//! The Resource Groups Tagging API: the tags of every resource of one service in pages of
//! 100, so a refresh costs a few calls whatever the number of resources. Services whose
//! describe calls carry no tags (ElastiCache) read them here instead of one
//! `ListTagsForResource` per resource.

use std::collections::HashMap;

use crate::aws::all_pages;
use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::facts::ResourceTags;
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "tagging";
pub const GET_RESOURCES: &str = "GetResources";

/// GetResources returns at most 100 resources per page.
const MAX_PAGE: i32 = 100;

service_client!(aws_sdk_resourcegroupstagging, SERVICE);

/// Tags by ARN of every resource of `service` ("elasticache", ...) in the client's region.
/// Resources without tags may be missing: they match no selector anyway.
pub async fn tags_by_arn(
    client: &aws_sdk_resourcegroupstagging::Client,
    metrics: &Metrics,
    service: &str,
) -> Result<HashMap<String, ResourceTags>, AwsError> {
    let mappings = all_pages!(
        metrics,
        GET_RESOURCES,
        client
            .get_resources()
            .resource_type_filters(service)
            .resources_per_page(MAX_PAGE),
        resource_tag_mapping_list
    )?;
    Ok(mappings
        .iter()
        .filter_map(|m| {
            let tags = m
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            Some((m.resource_arn()?.to_string(), tags))
        })
        .collect())
}
