//! Names and labels of everything the operator creates, in one place.

use std::collections::BTreeMap;

use crate::hash::short_hash;

/// Field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "grafana-ha-operator";

/// The name of the Grafana container in the pod template.
pub const GRAFANA_CONTAINER: &str = "grafana";
/// `app.kubernetes.io/managed-by` value; watches are scoped to it.
pub const MANAGED_BY: &str = "grafana-ha-operator";
/// Label carrying the owning GrafanaCluster's name.
pub const CLUSTER_LABEL: &str = "grafana-ha.io/cluster";
/// Pod-template annotation: digest of the data of every Secret the pods read.
pub const SECRETS_HASH_ANNOTATION: &str = "grafana-ha.io/secrets-hash";
/// Pod-template annotation: the plugin set the pods load.
pub const PLUGINS_HASH_ANNOTATION: &str = "grafana-ha.io/plugins-hash";
/// Key of the signing key in its Secret.
pub const SECRET_KEY_KEY: &str = "secret_key";
/// Key of the Redis connection string in the cache Secret.
pub const CACHE_CONNSTR_KEY: &str = "connstr";
/// Key of the trimmed Redis AUTH token in the cache Secret (alerting over Redis).
pub const CACHE_PASSWORD_KEY: &str = "password";
/// Where the Secrets Grafana reads are mounted as files.
pub const SECRETS_PATH: &str = "/etc/grafana/secrets";

/// Port of the Grafana HTTP server.
pub const HTTP_PORT: i32 = 3000;
/// Port of unified-alerting gossip (TCP and UDP).
pub const GOSSIP_PORT: i32 = 9094;
/// Where the shared plugins volume is mounted.
pub const PLUGINS_PATH: &str = "/var/lib/grafana/plugins";
/// Directory on the plugins volume where the installer leaves one marker per plugin set.
pub const PLUGINS_MARKER_DIR: &str = "/var/lib/grafana/plugins/.grafana-ha";
/// Where the database CA bundle is mounted.
pub const DB_CA_DIR: &str = "/etc/grafana/db-ca";
/// Volume names of the Grafana pods (a build test keeps this list complete).
pub const MANAGED_VOLUMES: [&str; 5] = ["plugins", "data", "tmp", "grafana-secrets", "db-ca"];
/// Mount paths of the Grafana container (a build test keeps this list complete).
pub const MANAGED_MOUNT_PATHS: [&str; 5] = [
    PLUGINS_PATH,
    "/var/lib/grafana",
    "/tmp",
    SECRETS_PATH,
    DB_CA_DIR,
];

/// Longest Kubernetes name that is also a valid label value and DNS-1035 label.
const MAX_SHORT_NAME: usize = 63;

/// `base-suffix`, shortened with a hash when longer than `max`.
fn bounded(base: &str, suffix: &str, max: usize) -> String {
    let full = if suffix.is_empty() {
        base.to_string()
    } else {
        format!("{base}-{suffix}")
    };
    if full.len() <= max {
        return full;
    }
    let tag = short_hash(full.as_bytes(), 8);
    let keep = max.saturating_sub(tag.len() + 1);
    let head: String = full.chars().take(keep).collect();
    format!("{}-{tag}", head.trim_end_matches('-'))
}

pub fn deployment(cluster: &str) -> String {
    bounded(cluster, "", MAX_SHORT_NAME)
}

pub fn service(cluster: &str) -> String {
    bounded(cluster, "", MAX_SHORT_NAME)
}

/// The NetworkPolicy around the Grafana pods (also the HTTPRoute's and ServiceMonitor's
/// name: each kind has one per cluster).
pub fn network_policy(cluster: &str) -> String {
    bounded(cluster, "", MAX_SHORT_NAME)
}

/// The NetworkPolicy around the plugin installer's pods.
pub fn installer_network_policy(cluster: &str) -> String {
    bounded(cluster, "plugins-installer", MAX_SHORT_NAME)
}

pub fn alerting_service(cluster: &str) -> String {
    bounded(cluster, "alerting", MAX_SHORT_NAME)
}

/// The ServiceAccount the operator creates for a cluster's pods.
pub fn service_account(cluster: &str) -> String {
    bounded(cluster, "", 253)
}

pub fn ingress(cluster: &str) -> String {
    bounded(cluster, "", 253)
}

pub fn pdb(cluster: &str) -> String {
    bounded(cluster, "", MAX_SHORT_NAME)
}

pub fn admin_secret(cluster: &str) -> String {
    bounded(cluster, "admin", 253)
}

pub fn secret_key_secret(cluster: &str) -> String {
    bounded(cluster, "secret-key", 253)
}

pub fn db_credentials_secret(cluster: &str) -> String {
    bounded(cluster, "db-credentials", 253)
}

pub fn cache_secret(cluster: &str) -> String {
    bounded(cluster, "cache", 253)
}

/// The plugins claim is named after its source so that switching file system or class
/// makes a new claim (a bound claim's volume cannot change) instead of a stuck apply.
pub fn plugins_claim(cluster: &str, source: &str) -> String {
    bounded(
        cluster,
        &format!("plugins-{}", short_hash(source.as_bytes(), 6)),
        253,
    )
}

/// PersistentVolumes are cluster-scoped: the name carries namespace and cluster.
pub fn plugins_volume(namespace: &str, cluster: &str, source: &str) -> String {
    let hash = short_hash(format!("{namespace}/{cluster}/{source}").as_bytes(), 8);
    bounded(&format!("gfc-{namespace}-{cluster}"), &hash, 253)
}

/// Job names become pod labels: at most 63 characters.
/// The ConfigMap holding Grafana's data source provisioning file.
pub fn datasources_config_map(cluster: &str) -> String {
    bounded(cluster, "datasources", MAX_SHORT_NAME)
}

pub fn plugins_job(cluster: &str, plugin_set_hash: &str) -> String {
    bounded(
        cluster,
        &format!("plugins-{plugin_set_hash}"),
        MAX_SHORT_NAME,
    )
}

/// Labels that select the Grafana server pods (immutable once a Deployment exists).
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "grafana".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            cluster.to_string(),
        ),
        (
            COMPONENT_LABEL.to_string(),
            Component::Server.as_str().to_string(),
        ),
    ])
}

/// Label naming which part of a cluster an object is.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label on the cluster-scoped static volume naming its cluster's namespace.
pub const NAMESPACE_LABEL: &str = "grafana-ha.io/namespace";
/// Label on installer Jobs naming their plugin set.
pub const PLUGIN_SET_LABEL: &str = "grafana-ha.io/plugin-set";

/// The part of a GrafanaCluster an object belongs to: the `app.kubernetes.io/component`
/// label of every child, and what the retention rules of cleanup look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Server,
    Alerting,
    PluginsStorage,
    PluginsInstaller,
    DatabaseCredentials,
    CacheConnection,
    AdminCredentials,
    SecretKey,
    DataSources,
}

impl Component {
    pub const ALL: [Component; 9] = [
        Component::Server,
        Component::Alerting,
        Component::PluginsStorage,
        Component::PluginsInstaller,
        Component::DatabaseCredentials,
        Component::CacheConnection,
        Component::AdminCredentials,
        Component::SecretKey,
        Component::DataSources,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Component::Server => "server",
            Component::Alerting => "alerting",
            Component::PluginsStorage => "plugins-storage",
            Component::PluginsInstaller => "plugins-installer",
            Component::DatabaseCredentials => "database-credentials",
            Component::CacheConnection => "cache-connection",
            Component::AdminCredentials => "admin-credentials",
            Component::SecretKey => "secret-key",
            Component::DataSources => "datasources",
        }
    }

    /// The component an object's labels name, if any.
    pub fn of_labels(labels: &BTreeMap<String, String>) -> Option<Component> {
        let value = labels.get(COMPONENT_LABEL)?;
        Component::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

/// Labels on every object the operator creates for `cluster`.
pub fn common_labels(cluster: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "grafana".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            cluster.to_string(),
        ),
        (COMPONENT_LABEL.to_string(), component.as_str().to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
        (CLUSTER_LABEL.to_string(), cluster.to_string()),
    ])
}

/// The label selector string of the server pods, as the scale subresource reports it.
pub fn selector_string(cluster: &str) -> String {
    selector_labels(cluster)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The label selector that scopes the operator's watches to its own objects.
pub fn managed_selector() -> String {
    format!("app.kubernetes.io/managed-by={MANAGED_BY}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_stay_short_and_distinct() {
        let long = "a".repeat(80);
        let a = alerting_service(&long);
        assert!(a.len() <= 63, "{a}");
        assert_ne!(a, deployment(&long));
        assert_eq!(alerting_service("grafana"), "grafana-alerting");
        assert!(plugins_job(&long, "0123456789").len() <= 63);
    }

    #[test]
    fn volume_names_differ_by_namespace_and_source() {
        let a = plugins_volume("a", "grafana", "fs-1");
        assert_ne!(a, plugins_volume("b", "grafana", "fs-1"));
        assert_ne!(a, plugins_volume("a", "grafana", "fs-2"));
        assert!(a.starts_with("gfc-a-grafana-"));
        assert_ne!(plugins_claim("g", "fs-1"), plugins_claim("g", "fs-2"));
    }

    #[test]
    fn selector_is_a_subset_of_common_labels() {
        let common = common_labels("g", Component::Server);
        for (k, v) in selector_labels("g") {
            assert_eq!(common.get(&k), Some(&v));
        }
        assert_eq!(
            selector_string("g"),
            "app.kubernetes.io/component=server,app.kubernetes.io/instance=g,app.kubernetes.io/name=grafana"
        );
    }
}
