//! The AWS edge: discovers the RDS database, the ElastiCache cache and the EFS file system by
//! tag, and reads RDS-managed credentials, turning SDK output into [`crate::facts`].
//!
//! One [`Discovery`] is shared by every GrafanaCluster. It caches the whole inventory of each
//! service per region for `refresh_interval` and refreshes it single-flight, so the number
//! of AWS calls depends on the number of regions, not on the number of clusters. Selecting
//! by tag is a pure function over the cached inventory.
//!
//! The shared machinery, which no service names:
//! - `clients.rs`: SDK clients built on first use, per region and service;
//! - `inventory.rs`: the `Inventory` trait (what a service lists and how) and one TTL cache
//!   per inventory kind (`cache.rs`), behind `Discovery::inventory` and
//!   `Discovery::lookup`;
//! - `select.rs`: the "exactly one resource matches" rule;
//! - `error.rs`: what went wrong, in categories the reconciler acts on.
//!
//! Each service module registers itself: `service_client!` for its client, `impl Inventory`
//! (and `TagLookup`) for what it lists, and its public lookups as an `impl Discovery` block
//! (`find_database` lives in rds.rs). Adding a service is a new module and its `mod` line.

pub mod amp;
pub mod efs;
pub mod elasticache;
pub mod rds;
pub mod secrets;
pub mod snapshots;
pub mod tagging;

pub mod error;

mod cache;
mod clients;
mod interest;
mod inventory;
mod select;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::error::ProvideErrorMetadata;

use crate::facts::{Lookup, ResourceTags, Tags};
use crate::metrics::{AwsOutcome, Metrics};

pub use amp::WorkspaceQuery;
use clients::{Clients, ServiceClient};
pub use efs::FileSystemQuery;
pub use error::{AwsError, AwsErrorKind};
use inventory::{FetchContext, Inventories, Inventory, TagLookup};

/// Drains one of the SDK's paginators into a Vec of the items `$items` returns per page,
/// recording every page's call in the metrics. The SDK's paginator follows the Marker or
/// NextToken and stops when the service repeats a token, so a broken listing cannot loop.
macro_rules! all_pages {
    ($metrics:expr, $operation:expr, $request:expr, $items:ident) => {
        crate::aws::all_pages!($metrics, $operation, $request, $items, Clone::clone)
    };
    // Each item reduced by `$keep` as its page arrives: a refresh then holds one page of
    // SDK structs (a few KB each for an RDS DBInstance) instead of all of them.
    ($metrics:expr, $operation:expr, $request:expr, $items:ident, $keep:expr) => {{
        let mut pages = $request.into_paginator().send();
        let mut all = Vec::new();
        let mut result = Ok(());
        while let Some(page) = pages.next().await {
            match crate::aws::observe($metrics, SERVICE, $operation, page) {
                Ok(page) => all.extend(page.$items().iter().map($keep)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        result.map(|()| all)
    }};
}
pub(crate) use all_pages;

/// How discovery caches.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// How long an inventory (and a managed secret) is served from the cache.
    pub refresh_interval: Duration,
    /// Region used when a GrafanaCluster names none; None: the SDK's (AWS_REGION, profile).
    pub default_region: Option<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            refresh_interval: Duration::from_secs(60),
            default_region: None,
        }
    }
}

/// How the SDK clients talk to AWS. The defaults suit production; tests shorten them.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Send every call here instead of the endpoint the environment configures
    /// (AWS_ENDPOINT_URL...). None: the environment decides.
    pub endpoint_url: Option<String>,
    /// MaxRecords / MaxItems per page of the list calls (RDS and ElastiCache accept 20..100).
    pub page_size: i32,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for one attempt of an operation.
    pub attempt_timeout: Duration,
    /// Time for an operation, all attempts and backoff included.
    pub operation_timeout: Duration,
    /// Attempts per operation (standard retry mode: jittered backoff, throttling-aware).
    pub max_attempts: u32,
    /// Base of the exponential backoff between attempts.
    pub initial_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            endpoint_url: None,
            page_size: 100,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
            initial_backoff: Duration::from_secs(1),
        }
    }
}

struct Inner {
    config: DiscoveryConfig,
    page_size: i32,
    metrics: Metrics,
    clients: Clients,
    inventories: Inventories,
    interests: interest::Interests,
    efs_created: efs::RecentAccessPoints,
}

/// Shared, cached discovery of AWS resources. Cheap to clone.
///
/// Each service module adds its own lookups (`find_database` in rds.rs, ...) as thin
/// wrappers over `Discovery::inventory` and `Discovery::lookup`.
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
    /// The GrafanaCluster whose lookups are remembered (see `interest.rs`); None for
    /// `render` and for the change watch itself.
    owner: Option<Arc<str>>,
}

impl Discovery {
    /// Loads the AWS config from the environment: AWS_ENDPOINT_URL and
    /// AWS_ENDPOINT_URL_<SERVICE> (how moto stands in for AWS), AWS_REGION, and the credential
    /// chain (env, profile, IRSA web identity, EKS Pod Identity, IMDS). Timeouts (connect 3s,
    /// attempt 10s, operation 30s) and standard retries (3 attempts) bound every call, so a
    /// hung AWS never blocks a reconcile forever.
    pub async fn from_env(config: DiscoveryConfig, metrics: Metrics) -> Discovery {
        Self::from_env_with(config, ClientOptions::default(), metrics).await
    }

    /// [`Discovery::from_env`] with explicit client options (endpoint override, page size,
    /// timeouts, retries).
    pub async fn from_env_with(
        config: DiscoveryConfig,
        options: ClientOptions,
        metrics: Metrics,
    ) -> Discovery {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .operation_attempt_timeout(options.attempt_timeout)
            .operation_timeout(options.operation_timeout)
            .build();
        let retries = RetryConfig::standard()
            .with_max_attempts(options.max_attempts.max(1))
            .with_initial_backoff(options.initial_backoff);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(timeouts)
            .retry_config(retries);
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(region) = &config.default_region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        tracing::info!(
            region = ?sdk.region().map(|r| r.as_ref().to_string()),
            endpoint_url = ?options.endpoint_url.as_deref().or(sdk.endpoint_url()),
            refresh_interval_seconds = config.refresh_interval.as_secs(),
            "AWS discovery configured"
        );
        Self::from_sdk_config(config, &options, sdk, metrics)
    }

    /// Discovery over an already loaded SDK config (its timeouts and retries are used as
    /// they are; `options` gives the endpoint override and the page size).
    pub fn from_sdk_config(
        config: DiscoveryConfig,
        options: &ClientOptions,
        sdk: SdkConfig,
        metrics: Metrics,
    ) -> Discovery {
        Discovery {
            inner: Arc::new(Inner {
                config,
                page_size: options.page_size.max(1),
                metrics,
                clients: Clients::new(sdk, options.endpoint_url.clone()),
                inventories: Inventories::new(),
                interests: interest::Interests::new(),
                efs_created: efs::RecentAccessPoints::default(),
            }),
            owner: None,
        }
    }

    /// The value of kind `I` for `key` in a region, from the cache while younger than the
    /// refresh interval, else read from AWS (once, however many callers ask at the same
    /// time). Also returns the region used.
    pub(crate) async fn inventory<I: Inventory>(
        &self,
        region: Option<&str>,
        key: I::Key,
    ) -> Result<(String, Arc<I>), AwsError> {
        self.inventory_by(region, key, |value: &I, interval| {
            interval.saturating_mul(value.refresh_factor().max(1))
        })
        .await
    }

    /// [`Discovery::inventory`] with the time a cached value is served decided by the
    /// caller, from the value and the refresh interval (a secret's value is kept while its
    /// version is current, however old).
    pub(crate) async fn inventory_by<I: Inventory, T>(
        &self,
        region: Option<&str>,
        key: I::Key,
        ttl: T,
    ) -> Result<(String, Arc<I>), AwsError>
    where
        T: FnOnce(&I, Duration) -> Duration,
    {
        let inner = &self.inner;
        let (region, client) = self.client::<I::Client>(region, I::OPERATION)?;
        let aws = FetchContext {
            client: &client,
            metrics: &inner.metrics,
            page_size: inner.page_size,
            region: &region,
            clients: &inner.clients,
        };
        let store = inner.inventories.store::<I>();
        let interval = inner.config.refresh_interval;
        let slot = (region.clone(), key);
        let fetched = store
            .get_or_refresh_by(
                &slot,
                |value| ttl(value, interval),
                || I::fetch(&aws, &slot.1),
            )
            .await?;
        inner
            .metrics
            .discovery_cache(I::Client::SERVICE, fetched.hit);
        if !fetched.hit {
            inner.interests.bump_generation();
        }
        Ok((region, fetched.value))
    }

    /// The one resource of a region-wide listing that carries every selector tag.
    pub(crate) async fn lookup<I: TagLookup>(
        &self,
        region: Option<&str>,
        selector: &Tags,
    ) -> Result<Lookup<I::Facts>, AwsError> {
        let (region, inventory) = self.inventory::<I>(region, ()).await?;
        let lookup = inventory.select(selector);
        log_lookup(I::WHAT, &region, selector, &lookup);
        if self.owner.is_some() {
            let key = (
                std::any::TypeId::of::<I>(),
                region.clone(),
                crate::facts::format_tags(selector),
            );
            // Kept compact for as long as the cluster is watched (a BTreeMap is a 0.5 KB
            // node per cluster and kind); a map again only when a refresh rechecks it.
            let kept: ResourceTags = selector
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let recheck_region = region.clone();
            let recheck: interest::Recheck = Arc::new(move |d: Discovery| {
                let region = recheck_region.clone();
                let selector: Tags = kept
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                Box::pin(async move {
                    let (_, inventory) = d.inventory::<I>(Some(&region), ()).await?;
                    Ok(interest::fingerprint(&inventory.select(&selector)))
                })
            });
            self.remember(
                key,
                interest::fingerprint(&lookup),
                recheck,
                refresh_of::<I>(region),
            );
        }
        Ok(lookup)
    }

    /// Drop every cached inventory (next lookups call AWS).
    pub fn invalidate(&self) {
        self.inner.inventories.clear();
        tracing::debug!("discovery cache invalidated");
    }

    /// The region to use and the client of service `C` there: for calls that are not cached
    /// (writes), and for every inventory refresh. `operation` names the failure when no
    /// region is known.
    pub(crate) fn client<C: ServiceClient>(
        &self,
        region: Option<&str>,
        operation: &'static str,
    ) -> Result<(String, C), AwsError> {
        let region = self.region(region, C::SERVICE, operation)?;
        let client = self.inner.clients.get::<C>(&region);
        Ok((region, client))
    }

    /// The region a GrafanaCluster naming `region` (or none) works in, when one is known.
    pub fn effective_region(&self, region: Option<&str>) -> Option<String> {
        self.region(region, "", "").ok()
    }

    /// The region to use. A region given by the GrafanaCluster wins over the configured
    /// default, which wins over the SDK's own.
    fn region(
        &self,
        region: Option<&str>,
        service: &'static str,
        operation: &'static str,
    ) -> Result<String, AwsError> {
        let inner = &self.inner;
        region
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .or_else(|| inner.config.default_region.clone())
            .or_else(|| inner.clients.sdk_region())
            .ok_or_else(|| {
                AwsError::new(
                    service,
                    operation,
                    AwsErrorKind::Client {
                        code: "MissingRegion".into(),
                        message: "no AWS region: set spec.aws.region, the operator's default \
                                  region or AWS_REGION"
                            .into(),
                    },
                )
            })
    }
}

/// Reads the region-wide inventory `I` (a refresh when stale), for the change watch.
pub(crate) fn refresh_of<I: Inventory<Key = ()>>(region: String) -> interest::Refresh {
    Arc::new(move |d: Discovery| {
        let region = region.clone();
        Box::pin(async move { d.inventory::<I>(Some(&region), ()).await.map(|_| ()) })
    })
}

/// Records the outcome of one SDK call and classifies a failure.
pub(crate) fn observe<T, E>(
    metrics: &Metrics,
    service: &'static str,
    operation: &'static str,
    result: Result<T, error::SdkError<E>>,
) -> Result<T, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(output) => {
            metrics.aws_call(service, operation, AwsOutcome::Success);
            Ok(output)
        }
        Err(sdk_error) => {
            let err = AwsError::from_sdk(service, operation, &sdk_error);
            metrics.aws_call(service, operation, err.outcome());
            // The Display is the one line conditions and Events show; the chain (every layer
            // of the SDK's error, the request id) is for whoever debugs it.
            tracing::debug!(error = %err, chain = err.chain(), "AWS call failed");
            Err(err)
        }
    }
}

fn lookup_outcome<T>(lookup: &Lookup<T>) -> &'static str {
    match lookup {
        Lookup::Found(_) => "found",
        Lookup::NotFound { .. } => "not_found",
        Lookup::Ambiguous { .. } => "ambiguous",
        Lookup::NotReady { .. } => "not_ready",
        Lookup::Unsupported { .. } => "unsupported",
    }
}

fn log_lookup<T>(what: &str, region: &str, selector: &Tags, lookup: &Lookup<T>) {
    tracing::debug!(
        what,
        region,
        selector = %crate::facts::format_tags(selector),
        outcome = lookup_outcome(lookup),
        "discovery lookup"
    );
}

#[cfg(test)]
mod tests;
