//! The PodDisruptionBudget around the replicas.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::meta::child_meta;
use crate::names::{self, Component};
use crate::resolve::{DisruptionBudget, Plan};

/// The budget the plan asks for, if any.
pub fn pdb(plan: &Plan) -> Option<PodDisruptionBudget> {
    let (min_available, max_unavailable) = match plan.disruption_budget.clone()? {
        DisruptionBudget::MinAvailable(min) => (Some(min), None),
        DisruptionBudget::MaxUnavailable(max) => (None, Some(max)),
    };
    let name = &plan.cluster.name;
    Some(PodDisruptionBudget {
        metadata: child_meta(&plan.cluster, names::pdb(name), Component::Server),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(names::selector_labels(name)),
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
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::fixtures;

    #[test]
    fn defaults_to_max_unavailable_one() {
        let spec = pdb(&fixtures::plan()).expect("pdb").spec.expect("spec");
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert!(spec.min_available.is_none());
    }

    #[test]
    fn honours_min_available_and_disabling() {
        let mut gc = fixtures::article();
        gc.spec.pod_disruption_budget = Some(Box::new(crate::api::PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::String("50%".into())),
            ..Default::default()
        }));
        let spec = pdb(&fixtures::plan_of(&gc))
            .expect("pdb")
            .spec
            .expect("spec");
        assert_eq!(spec.min_available, Some(IntOrString::String("50%".into())));
        assert!(spec.max_unavailable.is_none());
        gc.spec.pod_disruption_budget = Some(Box::new(crate::api::PodDisruptionBudgetSpec {
            enabled: Some(false),
            ..Default::default()
        }));
        assert!(pdb(&fixtures::plan_of(&gc)).is_none());
    }
}
