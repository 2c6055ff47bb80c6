//! The Grafana Deployment: replicas wired to the database, cache, signing key, admin
//! credentials and shared plugins, rolled exactly when a referenced Secret's data changes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::child_meta;
use crate::api::{AlertingHa, CacheEngine, DatabaseEngine, GrafanaClusterSpec};
use crate::hash::sha256_hex;
use crate::names;
use crate::resolve::Wiring;

/// UID and GID of the official Grafana image's user.
const GRAFANA_UID: i64 = 472;
/// Where a CA bundle for the database is mounted.
const DB_CA_DIR: &str = "/etc/grafana/db-ca";

/// A plain env var (never for secrets).
pub fn literal_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// An env var read from a Secret key.
pub fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: Some("v1".into()),
            }),
            ..EnvVarSource::default()
        }),
    }
}

/// Every Grafana setting the operator manages, as env vars, followed by the user's extras.
/// Secrets only ever arrive through secretKeyRef.
pub fn grafana_env(spec: &GrafanaClusterSpec, wiring: &Wiring) -> Vec<EnvVar> {
    let db = &wiring.database;
    let mut env = vec![
        // Declared first so $(POD_IP) below expands.
        field_env("POD_IP", "status.podIP"),
        literal_env("GF_PATHS_PLUGINS", names::PLUGINS_PATH),
        // Replicas must not install anything into the shared volume themselves.
        literal_env("GF_PLUGINS_PREINSTALL_DISABLED", "true"),
        literal_env(
            "GF_DATABASE_TYPE",
            match db.status.engine {
                DatabaseEngine::Postgres => "postgres",
                DatabaseEngine::Mysql => "mysql",
            },
        ),
        literal_env("GF_DATABASE_HOST", &db.status.endpoint),
        literal_env("GF_DATABASE_NAME", &db.status.name),
        secret_env(
            "GF_DATABASE_USER",
            &wiring.database_credentials.secret,
            &wiring.database_credentials.username_key,
        ),
        secret_env(
            "GF_DATABASE_PASSWORD",
            &wiring.database_credentials.secret,
            &wiring.database_credentials.password_key,
        ),
        literal_env("GF_DATABASE_SSL_MODE", &db.ssl_mode),
        // Every replica migrates at start; the lock keeps them from doing it at once.
        literal_env("GF_DATABASE_MIGRATION_LOCKING", "true"),
    ];
    if let Some(ca) = &db.ca_bundle {
        env.push(literal_env(
            "GF_DATABASE_CA_CERT_PATH",
            &format!("{DB_CA_DIR}/{}", ca.key),
        ));
        if db.status.engine == DatabaseEngine::Mysql {
            env.push(literal_env("GF_DATABASE_SERVER_CERT_NAME", &db.status.host));
        }
    }
    match &wiring.cache {
        Some(cache) if cache.status.engine == CacheEngine::Redis => {
            env.push(literal_env("GF_REMOTE_CACHE_TYPE", "redis"));
            env.push(secret_env(
                "GF_REMOTE_CACHE_CONNSTR",
                &names::cache_secret(&wiring.name),
                names::CACHE_CONNSTR_KEY,
            ));
        }
        Some(cache) => {
            env.push(literal_env("GF_REMOTE_CACHE_TYPE", "memcached"));
            env.push(literal_env(
                "GF_REMOTE_CACHE_CONNSTR",
                &cache.status.endpoint,
            ));
        }
        None => env.push(literal_env("GF_REMOTE_CACHE_TYPE", "database")),
    }
    if wiring.cache.is_some() {
        // Several GrafanaClusters may share one cache.
        env.push(literal_env(
            "GF_REMOTE_CACHE_PREFIX",
            &format!("{}/{}:", wiring.namespace, wiring.name),
        ));
    }
    env.push(secret_env(
        "GF_SECURITY_SECRET_KEY",
        &wiring.secret_key.name,
        &wiring.secret_key.key,
    ));
    env.push(secret_env(
        "GF_SECURITY_ADMIN_USER",
        &wiring.admin_credentials.secret,
        &wiring.admin_credentials.username_key,
    ));
    env.push(secret_env(
        "GF_SECURITY_ADMIN_PASSWORD",
        &wiring.admin_credentials.secret,
        &wiring.admin_credentials.password_key,
    ));
    if let Some(server) = &spec.server {
        if let Some(domain) = &server.domain {
            env.push(literal_env("GF_SERVER_DOMAIN", domain));
        }
        if let Some(root_url) = &server.root_url {
            env.push(literal_env("GF_SERVER_ROOT_URL", root_url));
        }
    }
    let auth = spec.auth.clone().unwrap_or_default();
    env.push(literal_env(
        "GF_AUTH_BASIC_ENABLED",
        &auth.basic.unwrap_or(true).to_string(),
    ));
    env.push(literal_env(
        "GF_AUTH_ANONYMOUS_ENABLED",
        &auth.anonymous.unwrap_or(false).to_string(),
    ));
    env.extend(alerting_env(wiring));
    env.extend(spec.env.iter().flatten().cloned());
    env
}

fn alerting_env(wiring: &Wiring) -> Vec<EnvVar> {
    match (wiring.alerting, &wiring.cache) {
        (AlertingHa::Gossip, _) => {
            let gossip = format!("$(POD_IP):{}", names::GOSSIP_PORT);
            vec![
                literal_env(
                    "GF_UNIFIED_ALERTING_HA_PEERS",
                    &format!(
                        "{}.{}.svc:{}",
                        names::alerting_service(&wiring.name),
                        wiring.namespace,
                        names::GOSSIP_PORT
                    ),
                ),
                literal_env("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS", &gossip),
                literal_env("GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS", &gossip),
            ]
        }
        (AlertingHa::Redis, Some(cache)) => {
            let mut env = vec![
                literal_env(
                    "GF_UNIFIED_ALERTING_HA_REDIS_ADDRESS",
                    &cache.status.endpoint,
                ),
                literal_env(
                    "GF_UNIFIED_ALERTING_HA_REDIS_PREFIX",
                    &format!("{}/{}", wiring.namespace, wiring.name),
                ),
                literal_env(
                    "GF_UNIFIED_ALERTING_HA_REDIS_TLS_ENABLED",
                    &cache.status.tls.to_string(),
                ),
            ];
            if let Some(token) = &cache.auth_token {
                env.push(secret_env(
                    "GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD",
                    &token.name,
                    &token.key,
                ));
            }
            env
        }
        _ => Vec::new(),
    }
}

/// One digest over the data of every Secret the pods read: it changes exactly when some
/// referenced value changes, never on a metadata-only update.
pub fn secrets_hash(digests: &BTreeMap<String, String>) -> String {
    let joined: String = digests.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    sha256_hex(joined.as_bytes())
}

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

pub fn plugins_volume(wiring: &Wiring) -> Volume {
    Volume {
        name: "plugins".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: wiring.storage.status.claim_name.clone(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

pub fn plugins_mount() -> VolumeMount {
    VolumeMount {
        name: "plugins".into(),
        mount_path: names::PLUGINS_PATH.into(),
        ..VolumeMount::default()
    }
}

pub fn tmp_volume() -> Volume {
    Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

pub fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..VolumeMount::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
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

fn ports() -> Vec<ContainerPort> {
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

/// The Grafana Deployment.
pub fn deployment(
    spec: &GrafanaClusterSpec,
    wiring: &Wiring,
    secret_digests: &BTreeMap<String, String>,
) -> Deployment {
    let selector = names::selector_labels(&wiring.name);
    let mut pod_labels = names::common_labels(&wiring.name, "server");
    pod_labels.extend(selector.clone());

    let mut annotations = BTreeMap::from([(
        names::SECRETS_HASH_ANNOTATION.to_string(),
        secrets_hash(secret_digests),
    )]);
    let mut init_containers = Vec::new();
    if let Some(set) = &wiring.plugins {
        annotations.insert(names::PLUGINS_HASH_ANNOTATION.to_string(), set.hash.clone());
        init_containers.push(Container {
            name: "wait-for-plugins".into(),
            image: Some(wiring.image.clone()),
            command: Some(super::plugins::wait_command(set)),
            security_context: Some(container_security_context()),
            volume_mounts: Some(vec![plugins_mount()]),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity("10m".into())),
                    ("memory".to_string(), Quantity("16Mi".into())),
                ])),
                limits: Some(BTreeMap::from([
                    ("cpu".to_string(), Quantity("100m".into())),
                    ("memory".to_string(), Quantity("64Mi".into())),
                ])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        });
    }

    let mut mounts = vec![
        plugins_mount(),
        VolumeMount {
            name: "data".into(),
            mount_path: "/var/lib/grafana".into(),
            ..VolumeMount::default()
        },
        tmp_mount(),
    ];
    let mut volumes = vec![
        plugins_volume(wiring),
        Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
        tmp_volume(),
    ];
    if let Some(ca) = &wiring.database.ca_bundle {
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

    let grafana = Container {
        name: "grafana".into(),
        image: Some(wiring.image.clone()),
        ports: Some(ports()),
        env: Some(grafana_env(spec, wiring)),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        // /api/health checks the database: it gates traffic, never restarts.
        readiness_probe: Some(http_probe("/api/health", 10, 3)),
        // /healthz only says the process serves: an RDS failover must not restart pods.
        liveness_probe: Some(http_probe("/healthz", 10, 6)),
        // First start on an empty database runs every migration: allow 10 minutes.
        startup_probe: Some(http_probe("/healthz", 10, 60)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };

    let rolling = spec.rolling_update.clone().unwrap_or_default();
    Deployment {
        metadata: child_meta(wiring, names::deployment(&wiring.name), "server"),
        spec: Some(DeploymentSpec {
            replicas: Some(wiring.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(rolling.max_surge.unwrap_or(IntOrString::Int(1))),
                    max_unavailable: Some(rolling.max_unavailable.unwrap_or(IntOrString::Int(0))),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security_context()),
                    init_containers: if init_containers.is_empty() {
                        None
                    } else {
                        Some(init_containers)
                    },
                    containers: vec![grafana],
                    volumes: Some(volumes),
                    node_selector: spec.node_selector.clone(),
                    tolerations: spec.tolerations.clone(),
                    affinity: spec.affinity.clone(),
                    topology_spread_constraints: Some(
                        spec.topology_spread_constraints
                            .clone()
                            .unwrap_or_else(|| default_spread(&wiring.name)),
                    ),
                    termination_grace_period_seconds: Some(30),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures;

    /// Keys that exist in Grafana 12's conf/defaults.ini, as `GF_<SECTION>_<KEY>`. Grafana
    /// silently ignores an override for a key it does not know, so every managed name must
    /// be here (checked against defaults.ini, not by eye).
    const KNOWN_GRAFANA_KEYS: &[&str] = &[
        "GF_PATHS_PLUGINS",
        "GF_PLUGINS_PREINSTALL_DISABLED",
        "GF_DATABASE_TYPE",
        "GF_DATABASE_HOST",
        "GF_DATABASE_NAME",
        "GF_DATABASE_USER",
        "GF_DATABASE_PASSWORD",
        "GF_DATABASE_SSL_MODE",
        "GF_DATABASE_CA_CERT_PATH",
        "GF_DATABASE_SERVER_CERT_NAME",
        "GF_DATABASE_MIGRATION_LOCKING",
        "GF_REMOTE_CACHE_TYPE",
        "GF_REMOTE_CACHE_CONNSTR",
        "GF_REMOTE_CACHE_PREFIX",
        "GF_SECURITY_SECRET_KEY",
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_SERVER_DOMAIN",
        "GF_SERVER_ROOT_URL",
        "GF_AUTH_BASIC_ENABLED",
        "GF_AUTH_ANONYMOUS_ENABLED",
        "GF_UNIFIED_ALERTING_HA_PEERS",
        "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS",
        "GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS",
        "GF_UNIFIED_ALERTING_HA_REDIS_ADDRESS",
        "GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD",
        "GF_UNIFIED_ALERTING_HA_REDIS_PREFIX",
        "GF_UNIFIED_ALERTING_HA_REDIS_TLS_ENABLED",
    ];

    fn env_of(spec: &GrafanaClusterSpec, w: &Wiring) -> BTreeMap<String, EnvVar> {
        grafana_env(spec, w)
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect()
    }

    fn secret_ref(e: &EnvVar) -> (String, String) {
        let r = e
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap_or_else(|| panic!("{} is not from a Secret", e.name));
        (r.name.clone(), r.key.clone())
    }

    fn all_variants() -> Vec<(GrafanaClusterSpec, Wiring)> {
        let gc = fixtures::article();
        let mut redis_alerting = gc.clone();
        redis_alerting.spec.alerting = Some(crate::api::AlertingSpec {
            ha: Some(AlertingHa::Redis),
        });
        let mut with_ca = gc.clone();
        with_ca
            .spec
            .database
            .as_mut()
            .expect("db")
            .ca_bundle_config_map_ref = Some(crate::api::KeyRef {
            name: "rds-ca".into(),
            key: "global-bundle.pem".into(),
        });
        [gc, redis_alerting, with_ca]
            .into_iter()
            .map(|g| {
                let w = fixtures::wiring_of(&g);
                (g.spec, w)
            })
            .collect()
    }

    #[test]
    fn every_managed_setting_is_a_known_grafana_key() {
        for (spec, w) in all_variants() {
            for e in grafana_env(&spec, &w) {
                if e.name.starts_with("GF_") {
                    assert!(
                        KNOWN_GRAFANA_KEYS.contains(&e.name.as_str()),
                        "unknown Grafana key {}",
                        e.name
                    );
                }
            }
        }
    }

    #[test]
    fn no_secret_is_ever_a_literal() {
        for (spec, w) in all_variants() {
            for e in grafana_env(&spec, &w) {
                let secretish = ["PASSWORD", "SECRET", "CONNSTR", "_USER"]
                    .iter()
                    .any(|s| e.name.contains(s));
                let literal_ok = e.name == "GF_REMOTE_CACHE_CONNSTR"
                    && w.cache
                        .as_ref()
                        .is_some_and(|c| c.status.engine == CacheEngine::Memcached);
                if secretish && !literal_ok {
                    assert!(e.value.is_none(), "{} has a literal value", e.name);
                    secret_ref(&e);
                }
            }
        }
    }

    #[test]
    fn wires_database_cache_and_keys() {
        let gc = fixtures::article();
        let w = fixtures::wiring();
        let env = env_of(&gc.spec, &w);
        let lit = |k: &str| env[k].value.clone().unwrap_or_default();
        assert_eq!(lit("GF_DATABASE_TYPE"), "postgres");
        assert_eq!(lit("GF_DATABASE_HOST"), "grafana-db.rds.local:5432");
        assert_eq!(lit("GF_DATABASE_NAME"), "grafana");
        assert_eq!(lit("GF_DATABASE_SSL_MODE"), "require");
        assert_eq!(
            secret_ref(&env["GF_DATABASE_PASSWORD"]),
            ("grafana-db-credentials".into(), "password".into())
        );
        assert_eq!(lit("GF_REMOTE_CACHE_TYPE"), "redis");
        assert_eq!(
            secret_ref(&env["GF_REMOTE_CACHE_CONNSTR"]),
            ("grafana-cache".into(), "connstr".into())
        );
        assert_eq!(
            secret_ref(&env["GF_SECURITY_SECRET_KEY"]),
            ("grafana-secret-key".into(), "secret_key".into())
        );
        assert_eq!(
            secret_ref(&env["GF_SECURITY_ADMIN_PASSWORD"]),
            ("grafana-admin".into(), "password".into())
        );
        assert_eq!(lit("GF_SERVER_ROOT_URL"), "https://grafana.example.com/");
        assert_eq!(
            lit("GF_UNIFIED_ALERTING_HA_PEERS"),
            "grafana-alerting.obs.svc:9094"
        );
        assert_eq!(
            lit("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS"),
            "$(POD_IP):9094"
        );
        assert!(
            !env.keys().any(|k| k.starts_with("GF_SESSION_")),
            "sessions live in the database since Grafana 6.2"
        );
        assert!(
            !env.keys().any(|k| k == "GF_INSTALL_PLUGINS"),
            "replicas never install plugins"
        );
        // POD_IP must come before its first use for $(POD_IP) to expand.
        let order: Vec<_> = grafana_env(&gc.spec, &w)
            .into_iter()
            .map(|e| e.name)
            .collect();
        let pod_ip = order.iter().position(|n| n == "POD_IP").expect("POD_IP");
        let listen = order
            .iter()
            .position(|n| n == "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS")
            .expect("listen");
        assert!(pod_ip < listen);
    }

    #[test]
    fn redis_alerting_uses_the_cache() {
        let (spec, w) = all_variants().remove(1);
        let env = env_of(&spec, &w);
        assert_eq!(
            env["GF_UNIFIED_ALERTING_HA_REDIS_ADDRESS"].value.as_deref(),
            Some("grafana-cache.cache.local:6379")
        );
        assert_eq!(
            secret_ref(&env["GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD"]),
            ("redis-auth".into(), "token".into())
        );
        assert!(!env.contains_key("GF_UNIFIED_ALERTING_HA_PEERS"));
    }

    #[test]
    fn ca_bundle_is_mounted_and_pointed_at() {
        let (spec, w) = all_variants().remove(2);
        let env = env_of(&spec, &w);
        assert_eq!(
            env["GF_DATABASE_CA_CERT_PATH"].value.as_deref(),
            Some("/etc/grafana/db-ca/global-bundle.pem")
        );
        let d = deployment(&spec, &w, &BTreeMap::new());
        let volumes = d
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .volumes
            .expect("volumes");
        assert!(
            volumes
                .iter()
                .any(|v| v.config_map.as_ref().is_some_and(|c| c.name == "rds-ca"))
        );
    }

    #[test]
    fn deployment_is_ha_shaped() {
        let gc = fixtures::article();
        let w = fixtures::wiring();
        let d = deployment(&gc.spec, &w, &BTreeMap::new());
        assert_eq!(
            d.metadata.owner_references.as_ref().expect("owner")[0].kind,
            "GrafanaCluster"
        );
        let spec = d.spec.expect("spec");
        assert_eq!(spec.replicas, Some(3));
        let rolling = spec
            .strategy
            .expect("strategy")
            .rolling_update
            .expect("rolling");
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        let pod = spec.template.spec.expect("pod");
        let c = &pod.containers[0];
        let path = |p: &Option<Probe>| {
            p.as_ref()
                .and_then(|p| p.http_get.as_ref())
                .and_then(|h| h.path.clone())
        };
        assert_eq!(path(&c.readiness_probe).as_deref(), Some("/api/health"));
        assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
        assert!(c.startup_probe.is_some());
        assert_eq!(
            pod.security_context
                .as_ref()
                .and_then(|s| s.run_as_non_root),
            Some(true)
        );
        let res = c.resources.as_ref().expect("resources");
        assert_eq!(res.requests, res.limits);
        assert_eq!(
            pod.init_containers.as_ref().expect("init")[0].name,
            "wait-for-plugins"
        );
        let claim = pod.volumes.as_ref().expect("volumes")[0]
            .persistent_volume_claim
            .as_ref()
            .expect("pvc");
        assert_eq!(claim.claim_name, w.storage.status.claim_name);
        assert_eq!(
            pod.topology_spread_constraints.as_ref().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn pods_roll_on_secret_data_only() {
        let gc = fixtures::article();
        let w = fixtures::wiring();
        let annotation = |d: &BTreeMap<String, String>| {
            deployment(&gc.spec, &w, d)
                .spec
                .expect("spec")
                .template
                .metadata
                .expect("meta")
                .annotations
                .expect("ann")[names::SECRETS_HASH_ANNOTATION]
                .clone()
        };
        let a = BTreeMap::from([("redis-auth/token".to_string(), "d1".to_string())]);
        let b = BTreeMap::from([("redis-auth/token".to_string(), "d2".to_string())]);
        assert_eq!(annotation(&a), annotation(&a.clone()));
        assert_ne!(annotation(&a), annotation(&b));
    }

    #[test]
    fn user_settings_pass_through() {
        let mut gc = fixtures::article();
        gc.spec.env = Some(vec![literal_env("GF_LOG_LEVEL", "debug")]);
        gc.spec.node_selector = Some(BTreeMap::from([("pool".to_string(), "obs".to_string())]));
        gc.spec.rolling_update = Some(crate::api::RollingUpdateSpec {
            max_surge: Some(IntOrString::Int(6)),
            max_unavailable: Some(IntOrString::Int(1)),
        });
        let w = fixtures::wiring_of(&gc);
        let env = env_of(&gc.spec, &w);
        assert_eq!(env["GF_LOG_LEVEL"].value.as_deref(), Some("debug"));
        let d = deployment(&gc.spec, &w, &BTreeMap::new())
            .spec
            .expect("spec");
        assert_eq!(
            d.template.spec.expect("pod").node_selector,
            gc.spec.node_selector
        );
        assert_eq!(
            d.strategy.expect("s").rolling_update.expect("r").max_surge,
            Some(IntOrString::Int(6))
        );
    }
}
