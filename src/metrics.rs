//! Prometheus metrics of the operator, served on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AwsCallLabels {
    service: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    service: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OptionalApiLabels {
    api: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApplyLabels {
    kind: String,
    result: String,
}

/// How an AWS call ended, as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsOutcome {
    Success,
    Throttled,
    ServerError,
    ClientError,
    Timeout,
    Transport,
}

impl AwsOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AwsOutcome::Success => "success",
            AwsOutcome::Throttled => "throttled",
            AwsOutcome::ServerError => "server_error",
            AwsOutcome::ClientError => "client_error",
            AwsOutcome::Timeout => "timeout",
            AwsOutcome::Transport => "transport",
        }
    }
}

/// All metrics, cheap to clone (shared counters).
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Counter,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    aws_calls: Family<AwsCallLabels, Counter>,
    discovery_cache: Family<CacheLabels, Counter>,
    applies: Family<ApplyLabels, Counter>,
    optional_api_checks: Family<OptionalApiLabels, Counter>,
    discovery_triggers: Counter,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("grafana_ha_operator");
        let reconciles = Counter::default();
        registry.register(
            "reconciles",
            "Reconciliations of GrafanaClusters",
            reconciles.clone(),
        );
        let reconcile_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciliations, by reason",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        ]);
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciliations",
            reconcile_duration.clone(),
        );
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        registry.register(
            "aws_calls",
            "AWS API calls, by service, operation and outcome",
            aws_calls.clone(),
        );
        let discovery_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "discovery_cache_lookups",
            "Discovery cache lookups, by service and result (hit or miss)",
            discovery_cache.clone(),
        );
        let applies = Family::<ApplyLabels, Counter>::default();
        registry.register(
            "applies",
            "Server-side applies of child objects, by kind and result (applied, unchanged, error)",
            applies.clone(),
        );
        let optional_api_checks = Family::<OptionalApiLabels, Counter>::default();
        registry.register(
            "optional_api_checks",
            "Discovery checks of optional APIs (Gateway API, Prometheus Operator), by api and result (served, not_served, error)",
            optional_api_checks.clone(),
        );
        let discovery_triggers = Counter::default();
        registry.register(
            "discovery_triggers",
            "Reconciles triggered because a discovery refresh changed what a cluster sees",
            discovery_triggers.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this instance holds the leader lease",
            leader.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            reconcile_errors,
            reconcile_duration,
            aws_calls,
            discovery_cache,
            applies,
            optional_api_checks,
            discovery_triggers,
            leader,
        }
    }

    pub fn reconcile_started(&self) {
        self.reconciles.inc();
    }

    pub fn reconcile_finished(&self, duration: Duration) {
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn aws_call(&self, service: &str, operation: &str, outcome: AwsOutcome) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                service: service.to_string(),
                operation: operation.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    pub fn discovery_cache(&self, service: &str, hit: bool) {
        self.discovery_cache
            .get_or_create(&CacheLabels {
                service: service.to_string(),
                result: if hit { "hit" } else { "miss" }.to_string(),
            })
            .inc();
    }

    pub fn apply(&self, kind: &str, result: &str) {
        self.applies
            .get_or_create(&ApplyLabels {
                kind: kind.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    pub fn optional_api_check(&self, api: &str, result: &str) {
        self.optional_api_checks
            .get_or_create(&OptionalApiLabels {
                api: api.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Discovery checks of optional APIs so far, for tests.
    pub fn optional_api_check_count(&self, api: &str, result: &str) -> u64 {
        self.optional_api_checks
            .get(&OptionalApiLabels {
                api: api.to_string(),
                result: result.to_string(),
            })
            .map(|c| c.get())
            .unwrap_or(0)
    }

    pub fn discovery_trigger(&self) {
        self.discovery_triggers.inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Total AWS calls so far, for tests and benchmarks.
    pub fn aws_call_count(&self, service: &str, outcome: AwsOutcome) -> u64 {
        let mut total = 0;
        for operation in crate::metrics::KNOWN_AWS_OPERATIONS {
            total += self
                .aws_calls
                .get(&AwsCallLabels {
                    service: service.to_string(),
                    operation: operation.to_string(),
                    outcome: outcome.as_str().to_string(),
                })
                .map(|c| c.get())
                .unwrap_or(0);
        }
        total
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The AWS operations discovery makes (for counting in tests).
pub const KNOWN_AWS_OPERATIONS: &[&str] = &[
    "DescribeDBInstances",
    "DescribeDBClusters",
    "DescribeReplicationGroups",
    "DescribeCacheClusters",
    "ListTagsForResource",
    "GetResources",
    "DescribeFileSystems",
    "DescribeMountTargets",
    "DescribeAccessPoints",
    "GetSecretValue",
    "ListSecrets",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::new();
        m.reconcile_started();
        m.aws_call("rds", "DescribeDBInstances", AwsOutcome::Throttled);
        m.discovery_cache("rds", true);
        m.reconcile_failed("aws");
        let text = m.render();
        assert!(text.contains("grafana_ha_operator_reconciles_total 1"));
        assert!(text.contains(
            "grafana_ha_operator_aws_calls_total{service=\"rds\",operation=\"DescribeDBInstances\",outcome=\"throttled\"} 1"
        ));
        assert!(text.contains("result=\"hit\""));
        assert_eq!(m.aws_call_count("rds", AwsOutcome::Throttled), 1);
        assert_eq!(m.aws_call_count("rds", AwsOutcome::Success), 0);
    }
}

#[cfg(test)]
mod dashboard_tests;
