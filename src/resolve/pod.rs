//! Pod-level decisions with their defaults: resources, placement, extra env, the rolling
//! update, the disruption budget, the public address and the built-in auth methods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::GrafanaClusterSpec;
use crate::names;

/// What the Grafana pods get besides the wiring.
#[derive(Clone, Debug, PartialEq)]
pub struct PodSettings {
    pub resources: ResourceRequirements,
    pub node_selector: Option<BTreeMap<String, String>>,
    pub tolerations: Option<Vec<Toleration>>,
    pub affinity: Option<Affinity>,
    pub topology_spread: Vec<TopologySpreadConstraint>,
    /// The user's extra env, after the managed settings.
    pub extra_env: Vec<EnvVar>,
}

/// The Deployment's rolling update.
#[derive(Clone, Debug, PartialEq)]
pub struct RollingUpdate {
    pub max_surge: IntOrString,
    pub max_unavailable: IntOrString,
}

/// The PodDisruptionBudget: exactly one of the two is set.
#[derive(Clone, Debug, PartialEq)]
pub enum DisruptionBudget {
    MinAvailable(IntOrString),
    MaxUnavailable(IntOrString),
}

/// Requests = limits of 500m CPU and 512Mi: a guaranteed pod that is not evicted first.
fn default_resources() -> ResourceRequirements {
    let amounts = BTreeMap::from([
        ("cpu".to_string(), Quantity("500m".into())),
        ("memory".to_string(), Quantity("512Mi".into())),
    ]);
    ResourceRequirements {
        requests: Some(amounts.clone()),
        limits: Some(amounts),
        ..ResourceRequirements::default()
    }
}

/// A soft spread over zones and nodes: replicas survive a zone or node loss when the
/// cluster allows it, and still schedule when it does not.
fn default_spread(cluster: &str) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(cluster)),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        })
        .collect()
}

pub fn settings(cluster: &str, spec: &GrafanaClusterSpec) -> PodSettings {
    PodSettings {
        resources: spec
            .resources
            .as_deref()
            .cloned()
            .unwrap_or_else(default_resources),
        node_selector: spec.node_selector.clone(),
        tolerations: spec.tolerations.clone(),
        affinity: spec.affinity.as_deref().cloned(),
        topology_spread: spec
            .topology_spread_constraints
            .clone()
            .unwrap_or_else(|| default_spread(cluster)),
        extra_env: spec.env.clone().unwrap_or_default(),
    }
}

/// maxSurge 1, maxUnavailable 0: full capacity during a rollout, and one new pod at a time
/// racing for the database migration lock.
pub fn rolling_update(spec: &GrafanaClusterSpec) -> RollingUpdate {
    let rolling = spec.rolling_update.clone().unwrap_or_default();
    RollingUpdate {
        max_surge: rolling.max_surge.unwrap_or(IntOrString::Int(1)),
        max_unavailable: rolling.max_unavailable.unwrap_or(IntOrString::Int(0)),
    }
}

/// Default: at most one replica down for voluntary disruptions. It never blocks a drain of
/// a single-replica cluster (maxUnavailable 1 lets that one pod go).
pub fn disruption_budget(spec: &GrafanaClusterSpec) -> Option<DisruptionBudget> {
    let settings = spec.pod_disruption_budget.clone().unwrap_or_default();
    // Scaled to zero, a budget guards nothing and only shows as unhealthy.
    if !settings.enabled.unwrap_or(true) || spec.replicas == 0 {
        return None;
    }
    Some(match (settings.min_available, settings.max_unavailable) {
        (Some(min), None) => DisruptionBudget::MinAvailable(min),
        (None, Some(max)) => DisruptionBudget::MaxUnavailable(max),
        _ => DisruptionBudget::MaxUnavailable(IntOrString::Int(1)),
    })
}

/// The zones of a single-AZ database (weight 50) and cache (25).
pub fn preferred_zones(
    database: &crate::api::DatabaseStatus,
    cache: Option<&crate::api::CacheStatus>,
) -> Vec<(String, i32)> {
    let mut zones: Vec<(String, i32)> = Vec::new();
    let mut prefer = |zone: Option<&String>, weight: i32| {
        if let Some(zone) = zone {
            match zones.iter_mut().find(|(z, _)| z == zone) {
                Some((_, w)) => *w += weight,
                None => zones.push((zone.clone(), weight)),
            }
        }
    };
    prefer(database.availability_zone.as_ref(), 50);
    prefer(cache.and_then(|c| c.availability_zone.as_ref()), 25);
    zones
}
