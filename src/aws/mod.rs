//! The AWS edge: discovers the RDS database, the ElastiCache cache and the EFS file system by
//! tag, and reads RDS-managed credentials, turning SDK output into [`crate::facts`].
//!
//! One [`Discovery`] is shared by every GrafanaCluster. It caches the whole inventory of each
//! service per region for `refresh_interval` and refreshes it single-flight, so the number
//! of AWS calls depends on the number of regions, not on the number of clusters. Selecting
//! by tag is a pure function over the cached inventory (see each service module).

pub mod efs;
pub mod elasticache;
pub mod error;
pub mod rds;
pub mod secrets;

mod cache;
mod select;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_rds::error::ProvideErrorMetadata;

use crate::facts::{CacheFacts, DatabaseFacts, Lookup, ManagedCredentials, StorageFacts, Tags};
use crate::metrics::{AwsOutcome, Metrics};

use cache::TtlCache;
pub use efs::FileSystemQuery;
pub use error::{AwsError, AwsErrorKind};

/// Drains one of the SDK's paginators into a Vec of the items `$items` returns per page,
/// recording every page's call in the metrics. The SDK's paginator follows the Marker or
/// NextToken and stops when the service repeats a token, so a broken listing cannot loop.
macro_rules! all_pages {
    ($metrics:expr, $operation:expr, $request:expr, $items:ident) => {{
        let mut pages = $request.into_paginator().send();
        let mut all = Vec::new();
        let mut result = Ok(());
        while let Some(page) = pages.next().await {
            match crate::aws::observe($metrics, SERVICE, $operation, page) {
                Ok(page) => all.extend_from_slice(page.$items()),
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

/// The SDK clients of one region. Cloning a client is cheap (it is an Arc).
#[derive(Clone)]
struct RegionClients {
    rds: aws_sdk_rds::Client,
    elasticache: aws_sdk_elasticache::Client,
    efs: aws_sdk_efs::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

struct Inner {
    config: DiscoveryConfig,
    page_size: i32,
    endpoint_url: Option<String>,
    metrics: Metrics,
    sdk: SdkConfig,
    clients: Mutex<HashMap<String, RegionClients>>,
    rds: TtlCache<String, rds::RdsInventory, AwsError>,
    caches: TtlCache<String, elasticache::CacheInventory, AwsError>,
    file_systems: TtlCache<String, efs::EfsInventory, AwsError>,
    /// Mount targets and access points by (region, file system id).
    file_system_details: TtlCache<(String, String), efs::FileSystemDetails, AwsError>,
    /// Managed credentials by (region, secret ARN).
    credentials: TtlCache<(String, String), ManagedCredentials, AwsError>,
}

/// Shared, cached discovery of AWS resources. Cheap to clone.
#[derive(Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
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
                endpoint_url: options.endpoint_url.clone(),
                metrics,
                sdk,
                clients: Mutex::new(HashMap::new()),
                rds: TtlCache::new(),
                caches: TtlCache::new(),
                file_systems: TtlCache::new(),
                file_system_details: TtlCache::new(),
                credentials: TtlCache::new(),
            }),
        }
    }

    /// The one RDS database (instance or cluster) carrying every selector tag.
    pub async fn find_database(
        &self,
        region: Option<&str>,
        selector: &Tags,
    ) -> Result<Lookup<DatabaseFacts>, AwsError> {
        let (region, clients) = self.clients(region, rds::SERVICE, "DescribeDBInstances")?;
        let inner = &self.inner;
        let fetched = inner
            .rds
            .get_or_refresh(&region, inner.config.refresh_interval, || {
                rds::fetch_inventory(&clients.rds, &inner.metrics, inner.page_size)
            })
            .await?;
        inner.metrics.discovery_cache(rds::SERVICE, fetched.hit);
        let lookup = rds::select_database(&fetched.value, selector);
        log_lookup("database", &region, selector, &lookup);
        Ok(lookup)
    }

    /// The one ElastiCache replication group or Memcached cluster carrying every selector tag.
    pub async fn find_cache(
        &self,
        region: Option<&str>,
        selector: &Tags,
    ) -> Result<Lookup<CacheFacts>, AwsError> {
        let (region, clients) =
            self.clients(region, elasticache::SERVICE, "DescribeReplicationGroups")?;
        let inner = &self.inner;
        let fetched = inner
            .caches
            .get_or_refresh(&region, inner.config.refresh_interval, || {
                elasticache::fetch_inventory(&clients.elasticache, &inner.metrics, inner.page_size)
            })
            .await?;
        inner
            .metrics
            .discovery_cache(elasticache::SERVICE, fetched.hit);
        let lookup = elasticache::select_cache(&fetched.value, selector);
        log_lookup("cache", &region, selector, &lookup);
        Ok(lookup)
    }

    /// The EFS file system a query names, with its mount target zones and access point.
    pub async fn find_file_system(
        &self,
        region: Option<&str>,
        query: FileSystemQuery<'_>,
    ) -> Result<Lookup<StorageFacts>, AwsError> {
        let (region, clients) = self.clients(region, efs::SERVICE, "DescribeFileSystems")?;
        let inner = &self.inner;
        let ttl = inner.config.refresh_interval;
        let inventory = inner
            .file_systems
            .get_or_refresh(&region, ttl, || {
                efs::fetch_inventory(&clients.efs, &inner.metrics, inner.page_size)
            })
            .await?;
        inner.metrics.discovery_cache(efs::SERVICE, inventory.hit);
        let fs = match efs::choose_file_system(&inventory.value, &query) {
            Ok(fs) => fs,
            Err(lookup) => {
                tracing::debug!(%region, ?query, outcome = lookup_outcome(&lookup), "EFS lookup");
                return Ok(lookup);
            }
        };
        let key = (region.clone(), fs.id.clone());
        let details = inner
            .file_system_details
            .get_or_refresh(&key, ttl, || {
                efs::fetch_details(&clients.efs, &inner.metrics, &fs.id)
            })
            .await?;
        inner.metrics.discovery_cache(efs::SERVICE, details.hit);
        let lookup = efs::storage_facts(fs, &details.value, &query);
        tracing::debug!(%region, ?query, outcome = lookup_outcome(&lookup), "EFS lookup");
        Ok(lookup)
    }

    /// The master user credentials RDS keeps in Secrets Manager under `secret_arn`. Cached
    /// for `refresh_interval`, so a rotated password is picked up within one interval. The
    /// secret is read in the region its ARN names; `region` is used only when the ARN has
    /// none.
    pub async fn managed_credentials(
        &self,
        region: Option<&str>,
        secret_arn: &str,
    ) -> Result<ManagedCredentials, AwsError> {
        let region = secrets::region_of_arn(secret_arn).or(region);
        let (region, clients) = self.clients(region, secrets::SERVICE, "GetSecretValue")?;
        let inner = &self.inner;
        let key = (region, secret_arn.to_string());
        let fetched = inner
            .credentials
            .get_or_refresh(&key, inner.config.refresh_interval, || {
                secrets::fetch_credentials(&clients.secrets, &inner.metrics, secret_arn)
            })
            .await?;
        inner.metrics.discovery_cache(secrets::SERVICE, fetched.hit);
        Ok(ManagedCredentials::clone(&fetched.value))
    }

    /// Drop every cached inventory (next lookups call AWS).
    pub fn invalidate(&self) {
        let inner = &self.inner;
        inner.rds.clear();
        inner.caches.clear();
        inner.file_systems.clear();
        inner.file_system_details.clear();
        inner.credentials.clear();
        tracing::debug!("discovery cache invalidated");
    }

    /// The region to use and its clients. A region given by the GrafanaCluster wins over
    /// the configured default, which wins over the SDK's own.
    fn clients(
        &self,
        region: Option<&str>,
        service: &'static str,
        operation: &'static str,
    ) -> Result<(String, RegionClients), AwsError> {
        let inner = &self.inner;
        let region = region
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .or_else(|| inner.config.default_region.clone())
            .or_else(|| inner.sdk.region().map(|r| r.as_ref().to_string()))
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
            })?;
        let mut clients = inner.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = clients
            .entry(region.clone())
            .or_insert_with(|| self.build_clients(&region));
        Ok((region, entry.clone()))
    }

    fn build_clients(&self, region: &str) -> RegionClients {
        let sdk = &self.inner.sdk;
        let region = Region::new(region.to_string());
        let endpoint = self.inner.endpoint_url.as_deref();
        // An explicit endpoint is set on each service too: a service-specific
        // AWS_ENDPOINT_URL_<SERVICE> would otherwise win over the shared config's.
        macro_rules! client {
            ($krate:ident) => {{
                let mut builder = $krate::config::Builder::from(sdk).region(region.clone());
                if let Some(url) = endpoint {
                    builder = builder.endpoint_url(url);
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        RegionClients {
            rds: client!(aws_sdk_rds),
            elasticache: client!(aws_sdk_elasticache),
            efs: client!(aws_sdk_efs),
            secrets: client!(aws_sdk_secretsmanager),
        }
    }
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
            tracing::debug!(error = %err, "AWS call failed");
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
