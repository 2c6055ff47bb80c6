//! Pieces of pod specs shared by the Grafana pods and the plugin installer: security
//! contexts, the shared plugins volume, scratch space, probes and ports.

use k8s_openapi::api::core::v1::{
    Capabilities, ContainerPort, EmptyDirVolumeSource, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, Probe, SeccompProfile, SecurityContext,
    Volume, VolumeMount,
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
