//! The PodDisruptionBudget around the replicas.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::child_meta;
use crate::api::GrafanaClusterSpec;
use crate::names;
use crate::resolve::Wiring;

/// Default: at most one replica down for voluntary disruptions. It never blocks a drain of
/// a single-replica cluster (maxUnavailable 1 lets that one pod go).
pub fn pdb(spec: &GrafanaClusterSpec, wiring: &Wiring) -> Option<PodDisruptionBudget> {
    let settings = spec.pod_disruption_budget.clone().unwrap_or_default();
    if !settings.enabled.unwrap_or(true) {
        return None;
    }
    let (min_available, max_unavailable) = match (settings.min_available, settings.max_unavailable)
    {
        (Some(min), None) => (Some(min), None),
        (None, Some(max)) => (None, Some(max)),
        _ => (None, Some(IntOrString::Int(1))),
    };
    Some(PodDisruptionBudget {
        metadata: child_meta(wiring, names::pdb(&wiring.name), "server"),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(&wiring.name)),
                ..LabelSelector::default()
            }),
            min_available,
            max_unavailable,
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures;

    #[test]
    fn defaults_to_max_unavailable_one() {
        let gc = fixtures::article();
        let spec = pdb(&gc.spec, &fixtures::wiring())
            .expect("pdb")
            .spec
            .expect("spec");
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert!(spec.min_available.is_none());
    }

    #[test]
    fn honours_min_available_and_disabling() {
        let mut gc = fixtures::article();
        gc.spec.pod_disruption_budget = Some(crate::api::PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::String("50%".into())),
            ..Default::default()
        });
        let spec = pdb(&gc.spec, &fixtures::wiring())
            .expect("pdb")
            .spec
            .expect("spec");
        assert_eq!(spec.min_available, Some(IntOrString::String("50%".into())));
        assert!(spec.max_unavailable.is_none());
        gc.spec.pod_disruption_budget = Some(crate::api::PodDisruptionBudgetSpec {
            enabled: Some(false),
            ..Default::default()
        });
        assert!(pdb(&gc.spec, &fixtures::wiring()).is_none());
    }
}
