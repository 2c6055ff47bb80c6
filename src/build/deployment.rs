//! The Grafana Deployment: replicas wired to the database, cache, signing key, admin
//! credentials and shared plugins, rolled exactly when a referenced Secret's data changes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, PodSpec, PodTemplateSpec, ResourceRequirements, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::env::{DB_CA_DIR, grafana_env};
use super::meta::child_meta;
use super::pod::{
    container_security_context, grafana_ports, http_probe, plugins_mount, plugins_volume,
    pod_security_context, scratch,
};
use super::secret_files;
use crate::hash::sha256_hex;
use crate::names::{self, Component};
use crate::resolve::{DatabaseCa, Plan, PluginSet};

/// One digest over the data of every Secret the pods read: it changes exactly when some
/// referenced value changes, never on a metadata-only update.
pub fn secrets_hash(digests: &BTreeMap<String, String>) -> String {
    let joined: String = digests.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    sha256_hex(joined.as_bytes())
}

/// The init container that holds a replica until the installer has filled the volume.
fn wait_for_plugins(plan: &Plan, set: &PluginSet) -> Container {
    let amounts = |cpu: &str, memory: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(memory.into())),
        ])
    };
    Container {
        name: "wait-for-plugins".into(),
        image: Some(plan.image.clone()),
        command: Some(super::plugins::wait_command(set)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![plugins_mount(true)]),
        resources: Some(ResourceRequirements {
            requests: Some(amounts("10m", "16Mi")),
            limits: Some(amounts("100m", "64Mi")),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    }
}

/// The Grafana container's volumes and their mounts: plugins, the data directory, /tmp and
/// the database CA bundle when one is given.
fn volumes(plan: &Plan) -> (Vec<Volume>, Vec<VolumeMount>) {
    let (data, data_mount) = scratch("data", "/var/lib/grafana");
    let (tmp, tmp_mount) = scratch("tmp", "/tmp");
    // Grafana only reads the shared plugins: the installer Job is the one writer.
    let mut volumes = vec![plugins_volume(plan), data, tmp, secret_files::volume(plan)];
    let mut mounts = vec![
        plugins_mount(true),
        data_mount,
        tmp_mount,
        secret_files::mount(),
    ];
    if let Some((volume, mount)) = super::datasources::volume(plan) {
        volumes.push(volume);
        mounts.push(mount);
    }
    if let Some(DatabaseCa::Bundle(ca)) = &plan.database.ca {
        mounts.push(VolumeMount {
            name: "db-ca".into(),
            mount_path: DB_CA_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        volumes.push(Volume {
            name: "db-ca".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: ca.name.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    // The user's additions after the operator's (validation keeps their names and paths
    // apart).
    volumes.extend(plan.access.pod.volumes.iter().cloned());
    mounts.extend(plan.access.pod.mounts.iter().cloned());
    (volumes, mounts)
}

fn grafana_container(plan: &Plan, mounts: Vec<VolumeMount>) -> Container {
    let sub_path = &plan.server.sub_path;
    Container {
        name: crate::names::GRAFANA_CONTAINER.into(),
        image: Some(plan.image.clone()),
        ports: Some(
            grafana_ports()
                .into_iter()
                .chain(plan.access.pod.ports.iter().cloned())
                .collect(),
        ),
        env: Some(grafana_env(plan)),
        // Container env wins over envFrom: a managed variable cannot be overridden here.
        env_from: (!plan.config.env_from.is_empty()).then(|| plan.config.env_from.clone()),
        resources: Some(plan.pod.resources.clone()),
        // Under a served sub-path Grafana redirects /healthz to the public URL (and the
        // kubelet counts a redirect to another host as success): every probe carries it.
        // /api/health checks the database: it gates traffic, never restarts.
        readiness_probe: Some(http_probe(&format!("{sub_path}/api/health"), 10, 3)),
        // /healthz only says the process serves: an RDS failover must not restart pods.
        liveness_probe: Some(http_probe(&format!("{sub_path}/healthz"), 10, 6)),
        // First start on an empty database runs every migration: allow 10 minutes.
        startup_probe: Some(http_probe(&format!("{sub_path}/healthz"), 10, 60)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn pod_template(plan: &Plan, secret_digests: &BTreeMap<String, String>) -> PodTemplateSpec {
    let name = &plan.cluster.name;
    let extras = &plan.access.pod;
    // The user's labels and annotations first, the operator's over them: the selector
    // and the hashes always hold (validation also refuses such keys).
    let mut labels = extras.labels.clone();
    labels.extend(names::common_labels(name, Component::Server));
    labels.extend(names::selector_labels(name));
    let mut annotations = extras.annotations.clone();
    annotations.insert(
        names::SECRETS_HASH_ANNOTATION.to_string(),
        secrets_hash(secret_digests),
    );
    let mut init_containers = Vec::new();
    if let Some(set) = &plan.plugins {
        annotations.insert(names::PLUGINS_HASH_ANNOTATION.to_string(), set.hash.clone());
        init_containers.push(wait_for_plugins(plan, set));
    }
    // The user's init containers run once the plugins are in place.
    init_containers.extend(extras.init_containers.iter().cloned());
    let (volumes, mounts) = volumes(plan);
    let mut containers = vec![grafana_container(plan, mounts)];
    containers.extend(extras.containers.iter().cloned());
    let pod = &plan.pod;
    let mut spec = PodSpec {
        enable_service_links: Some(false),
        security_context: Some(pod_security_context()),
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        containers,
        volumes: Some(volumes),
        node_selector: pod.node_selector.clone(),
        tolerations: pod.tolerations.clone(),
        affinity: super::pod::affinity(plan),
        topology_spread_constraints: Some(pod.topology_spread.clone()),
        termination_grace_period_seconds: Some(30),
        ..PodSpec::default()
    };
    super::access::identity(plan, &mut spec);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    }
}

/// The Grafana Deployment.
pub fn deployment(plan: &Plan, secret_digests: &BTreeMap<String, String>) -> Deployment {
    let name = &plan.cluster.name;
    Deployment {
        metadata: child_meta(&plan.cluster, names::deployment(name), Component::Server),
        spec: Some(DeploymentSpec {
            replicas: Some(plan.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(names::selector_labels(name)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(plan.rolling_update.max_surge.clone()),
                    max_unavailable: Some(plan.rolling_update.max_unavailable.clone()),
                }),
            }),
            template: pod_template(plan, secret_digests),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
