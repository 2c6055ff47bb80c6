//! Pieces of pod specs shared by the Grafana pods and the plugin installer: security
//! contexts, the shared plugins volume, scratch space, probes and ports.

use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, NodeAffinity,
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PreferredSchedulingTerm, Probe, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::names;
use crate::resolve::Plan;

/// UID and GID of the official Grafana image's user.
pub const GRAFANA_UID: i64 = 472;

pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(GRAFANA_UID),
        run_as_group: Some(GRAFANA_UID),
        fs_group: Some(GRAFANA_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

pub fn plugins_volume(plan: &Plan) -> Volume {
    Volume {
        name: "plugins".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: plan.storage.status.claim_name.clone(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

/// The shared plugins volume; read-only everywhere but in the installer.
pub fn plugins_mount(read_only: bool) -> VolumeMount {
    VolumeMount {
        name: "plugins".into(),
        mount_path: names::PLUGINS_PATH.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// An emptyDir volume and where it is mounted: writable scratch space under a read-only
/// root filesystem.
pub fn scratch(name: &str, path: &str) -> (Volume, VolumeMount) {
    (
        Volume {
            name: name.into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            ..VolumeMount::default()
        },
    )
}

pub fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

pub fn grafana_ports() -> Vec<ContainerPort> {
    let port = |name: &str, port: i32, protocol: &str| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some(protocol.into()),
        ..ContainerPort::default()
    };
    vec![
        port("http", names::HTTP_PORT, "TCP"),
        port("gossip-tcp", names::GOSSIP_PORT, "TCP"),
        port("gossip-udp", names::GOSSIP_PORT, "UDP"),
    ]
}

/// The node label of a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The user's affinity with the plan's required zones added to every required term (terms
/// are alternatives, so each must carry the zone rule), or as the only term.
pub fn affinity(plan: &Plan) -> Option<Affinity> {
    let mut affinity = plan.pod.affinity.clone();
    if !plan.preferred_zones.is_empty() {
        let node = affinity
            .get_or_insert_with(Affinity::default)
            .node_affinity
            .get_or_insert_with(NodeAffinity::default);
        let preferred = node
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new);
        preferred.extend(plan.preferred_zones.iter().map(|(zone, weight)| {
            PreferredSchedulingTerm {
                weight: *weight,
                preference: NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: ZONE_LABEL.into(),
                        operator: "In".into(),
                        values: Some(vec![zone.clone()]),
                    }]),
                    ..NodeSelectorTerm::default()
                },
            }
        }));
    }
    if plan.required_zones.is_empty() {
        return affinity;
    }
    let in_zones = NodeSelectorRequirement {
        key: ZONE_LABEL.into(),
        operator: "In".into(),
        values: Some(plan.required_zones.clone()),
    };
    let node = affinity
        .get_or_insert_with(Affinity::default)
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(NodeSelector::default);
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_expressions
            .get_or_insert_with(Vec::new)
            .push(in_zones.clone());
    }
    affinity
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn zone_terms(a: &Affinity) -> Vec<Vec<NodeSelectorRequirement>> {
        a.node_affinity
            .as_ref()
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| {
                r.node_selector_terms
                    .iter()
                    .map(|t| t.match_expressions.clone().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn pods_stay_in_zones_with_a_mount_target() {
        let plan = fixtures::plan();
        let a = affinity(&plan).expect("affinity");
        let terms = zone_terms(&a);
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0][0].key, ZONE_LABEL);
        assert_eq!(terms[0][0].values, Some(vec!["us-east-1a".to_string()]));
    }

    #[test]
    fn the_users_terms_each_get_the_zone_rule() {
        let mut gc = fixtures::article();
        gc.spec.affinity = Some(serde_json::from_value(serde_json::json!({
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]},
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["b"]}]}
            ]}},
            "podAntiAffinity": {}
        })).expect("affinity"));
        let a = affinity(&fixtures::plan_of(&gc)).expect("affinity");
        let terms = zone_terms(&a);
        assert_eq!(terms.len(), 2);
        for term in terms {
            assert_eq!(term.len(), 2, "the user's rule and the zone rule, together");
            assert_eq!(term[1].key, ZONE_LABEL);
        }
        assert!(
            a.pod_anti_affinity.is_some(),
            "the rest of the user's affinity is kept"
        );
    }

    #[test]
    fn single_az_database_and_cache_zones_are_preferred() {
        let mut gathered = fixtures::gathered();
        let mut db = fixtures::database();
        db.single_zone = Some("us-east-1a".into());
        gathered.database = fixtures::found(db);
        let mut cache = fixtures::cache();
        cache.single_zone = Some("us-east-1b".into());
        gathered.cache = fixtures::found(cache);
        let plan = crate::resolve::resolve(&fixtures::article(), &gathered)
            .plan
            .expect("plan");
        let a = affinity(&plan).expect("affinity");
        let preferred = a
            .node_affinity
            .and_then(|n| n.preferred_during_scheduling_ignored_during_execution)
            .expect("preferred");
        let weights: Vec<(i32, Vec<String>)> = preferred
            .iter()
            .map(|p| {
                (
                    p.weight,
                    p.preference.match_expressions.clone().unwrap_or_default()[0]
                        .values
                        .clone()
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            weights,
            vec![
                (50, vec!["us-east-1a".to_string()]),
                (25, vec!["us-east-1b".to_string()])
            ]
        );
    }

    #[test]
    fn a_storage_class_leaves_placement_to_the_user() {
        let gc = fixtures::cluster(serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"enabled": false},
            "plugins": {"storageClassName": "efs"},
        }));
        assert!(affinity(&fixtures::plan_of(&gc)).is_none());
    }
}
