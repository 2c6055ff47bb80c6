//! The remote cache (an endpoint from the spec, or the one ElastiCache cache the tags
//! select), how Grafana connects to it, and the alerting HA that may run through it.

use crate::api::{
    AlertingHa, CacheEngine, CacheStatus, GrafanaClusterSpec, GrafanaClusterStatus, KeyRef,
};
use crate::facts::{CacheFacts, Lookup};
use crate::gather::SecretReads;
use crate::names;
use crate::status::{ConditionState, Reason};

use super::component::{Discovered, Resolved, lookup_failure};
use super::{AlertingPlan, CacheConnection, CachePlan, ClusterRef, RedisAuth, merged_selector};

pub fn engine_name(engine: CacheEngine) -> &'static str {
    match engine {
        CacheEngine::Redis => "redis",
        CacheEngine::Memcached => "memcached",
    }
}

pub fn resolve(
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<CacheFacts>>,
    last: Option<&GrafanaClusterStatus>,
) -> Resolved<CacheStatus> {
    let cache_spec = spec.cache.clone().unwrap_or_default();
    if !super::cache_enabled(spec) {
        return Resolved {
            target: None,
            condition: ConditionState::ok(
                Reason::Disabled,
                "spec.cache.enabled is false: Grafana caches in the database",
            ),
            stale: false,
        };
    }
    if let Some(endpoint) = &cache_spec.endpoint {
        let engine = cache_spec.engine.unwrap_or(CacheEngine::Redis);
        let status = CacheStatus {
            engine,
            endpoint: format!("{}:{}", endpoint.host, endpoint.port),
            host: endpoint.host.clone(),
            port: endpoint.port,
            tls: cache_spec.tls.unwrap_or(false) && engine == CacheEngine::Redis,
            arn: None,
            availability_zone: None,
        };
        let message = format!(
            "using {} at {} from spec.cache.endpoint",
            engine_name(engine),
            status.endpoint
        );
        return Resolved::given(status, Reason::Endpoint, message);
    }
    let selector = merged_selector(spec, cache_spec.tags.as_ref());
    let found = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => found(spec, facts),
        other => Err(lookup_failure(
            "cache",
            "ElastiCache cache",
            &selector,
            other,
        )),
    };
    Resolved::finish(found, last.and_then(|s| s.cache.clone()))
}

fn found(
    spec: &GrafanaClusterSpec,
    facts: &CacheFacts,
) -> Result<(CacheStatus, String), ConditionState> {
    let cache_spec = spec.cache.clone().unwrap_or_default();
    if let Some(engine) = cache_spec.engine
        && engine != facts.engine
    {
        return Err(ConditionState::failed(
            Reason::EngineMismatch,
            format!(
                "spec.cache.engine is {} but {} runs {}",
                engine_name(engine),
                facts.arn,
                facts.aws_engine
            ),
        ));
    }
    if facts.auth_token_enabled && cache_spec.auth_token_secret_ref.is_none() {
        return Err(ConditionState::failed(
            Reason::AuthTokenRequired,
            format!(
                "{} requires an AUTH token, which AWS never reveals: set spec.cache.authTokenSecretRef",
                facts.arn
            ),
        ));
    }
    if facts.engine == CacheEngine::Memcached && cache_spec.auth_token_secret_ref.is_some() {
        return Err(ConditionState::failed(
            Reason::EngineMismatch,
            format!(
                "{} is Memcached, which has no AUTH token: remove spec.cache.authTokenSecretRef",
                facts.arn
            ),
        ));
    }
    if facts.engine == CacheEngine::Memcached && facts.transit_encryption {
        return Err(ConditionState::failed(
            Reason::Unsupported,
            format!(
                "{} has in-transit encryption, and Grafana's Memcached client has no TLS: use a Memcached cluster without it, or Redis",
                facts.arn
            ),
        ));
    }
    if facts.engine == CacheEngine::Memcached && facts.nodes > 1 {
        return Err(ConditionState::failed(
            Reason::Unsupported,
            format!(
                "{} has {} nodes, and Grafana's Memcached client takes one server: each replica would resolve the configuration endpoint to a different node and the replicas would not share a cache; use a one-node cluster, or Redis",
                facts.arn, facts.nodes
            ),
        ));
    }
    let status = CacheStatus {
        engine: facts.engine,
        endpoint: format!("{}:{}", facts.host, facts.port),
        host: facts.host.clone(),
        port: facts.port,
        tls: cache_spec.tls.unwrap_or(facts.transit_encryption)
            && facts.engine == CacheEngine::Redis,
        arn: Some(facts.arn.clone()),
        availability_zone: facts.single_zone.clone(),
    };
    let message = format!(
        "found {} {} at {}{} ({})",
        facts.aws_engine,
        facts.identifier,
        status.endpoint,
        if status.tls { " with TLS" } else { "" },
        facts.arn
    );
    Ok((status, message))
}

/// The cache part of the plan: the connection and the key prefix.
pub fn plan(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    status: CacheStatus,
    secrets: &SecretReads,
) -> CachePlan {
    let connection = match status.engine {
        CacheEngine::Redis => CacheConnection::Redis {
            secret: names::cache_secret(&cluster.name),
            auth: spec
                .cache
                .as_ref()
                .and_then(|c| c.auth_token_secret_ref.clone())
                .map(|token_ref| RedisAuth {
                    token_ref,
                    token: secrets.cache_auth_token.clone(),
                }),
        },
        CacheEngine::Memcached => CacheConnection::Memcached,
    };
    CachePlan {
        status,
        connection,
        // Disjoint from the alerting prefix: the Redis alerting peer scans its prefix and
        // would count cache keys as cluster members.
        prefix: format!("{}/{}/cache:", cluster.namespace, cluster.name),
    }
}

/// Alerting HA as it will run: `redis` needs a Redis cache, and without one falls back to
/// gossip (validation refuses the combinations it can see in the spec; this covers an
/// engine only discovery could tell).
pub fn alerting(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    cache: Option<&CachePlan>,
) -> AlertingPlan {
    let asked = spec
        .alerting
        .as_ref()
        .and_then(|a| a.ha)
        .unwrap_or(AlertingHa::Gossip);
    let redis = cache.filter(|c| c.engine() == CacheEngine::Redis);
    match (asked, redis) {
        (AlertingHa::Off, _) => AlertingPlan::Off,
        (AlertingHa::Redis, Some(cache)) => AlertingPlan::Redis {
            address: cache.status.endpoint.clone(),
            prefix: format!("{}/{}/alerting", cluster.namespace, cluster.name),
            tls: cache.status.tls,
            // The operator's trimmed copy: the user's Secret may end in a newline, which
            // Grafana would send as part of the password.
            password: match &cache.connection {
                CacheConnection::Redis {
                    auth: Some(_),
                    secret,
                } => Some(KeyRef {
                    name: secret.clone(),
                    key: names::CACHE_PASSWORD_KEY.into(),
                }),
                _ => None,
            },
        },
        (AlertingHa::Gossip | AlertingHa::Redis, _) => {
            let service = names::alerting_service(&cluster.name);
            AlertingPlan::Gossip {
                peers: format!("{service}.{}.svc:{}", cluster.namespace, names::GOSSIP_PORT),
                service,
                label: format!("{}/{}", cluster.namespace, cluster.name),
            }
        }
    }
}
