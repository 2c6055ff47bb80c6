//! Plain data about what exists in AWS: what discovery found, in terms the rest of the
//! operator understands. No AWS SDK type crosses this line, so `resolve` and `build` compile,
//! run and test without a network.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::{CacheEngine, DatabaseEngine};

/// A tag selector: a resource matches when it carries every one of these tags.
pub type Tags = BTreeMap<String, String>;

/// The tags a discovered resource carries, sorted by key, with one allocation for the list
/// and one per string. The inventories hold a set per resource in the account, and a
/// BTreeMap's first node is half a kilobyte however few its entries
/// (bench/results/profile-2026-11-26.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceTags(Box<[(Box<str>, Box<str>)]>);

impl ResourceTags {
    /// The value of tag `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As a BTreeMap collects: sorted by key, the last value of a repeated key kept.
impl<K: Into<Box<str>>, V: Into<Box<str>>> FromIterator<(K, V)> for ResourceTags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut tags: Vec<(Box<str>, Box<str>)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        // Stable: equal keys stay in arrival order, so keeping the last of each run keeps
        // the last value given.
        tags.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deduped: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(tags.len());
        for (k, v) in tags {
            match deduped.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => deduped.push((k, v)),
            }
        }
        ResourceTags(deduped.into_boxed_slice())
    }
}

impl<K: Into<Box<str>>, V: Into<Box<str>>, const N: usize> From<[(K, V); N]> for ResourceTags {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// True when `resource_tags` carries every tag of `selector`. An empty selector matches
/// nothing: validation refuses it, and this is the last line of defence against picking
/// "any database".
pub fn tags_match(selector: &Tags, resource_tags: &ResourceTags) -> bool {
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| resource_tags.get(k) == Some(v.as_str()))
}

/// Renders a selector for messages: `k1=v1,k2=v2`.
pub fn format_tags(tags: &Tags) -> String {
    tags.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The outcome of looking one resource up by tag. Each case is a distinct, reportable state:
/// the operator never picks one of several matches.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<T> {
    /// Exactly one usable match.
    Found(T),
    /// Nothing carries the selector's tags.
    NotFound {
        /// How many resources of this kind were looked at.
        candidates: usize,
    },
    /// Several resources match; their ARNs (sorted).
    Ambiguous { arns: Vec<String> },
    /// The single match exists but cannot be used yet (being created: no endpoint yet).
    NotReady { arn: String, state: String },
    /// The single match can never be used as it is (e.g. Redis in cluster mode).
    Unsupported { arn: String, reason: String },
}

/// Whether an RDS endpoint belongs to a DB instance or to a cluster (Aurora, Multi-AZ cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Instance,
    Cluster,
}

/// A usable RDS database.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseFacts {
    pub arn: String,
    /// DBInstanceIdentifier or DBClusterIdentifier.
    pub identifier: String,
    pub kind: DatabaseKind,
    /// Engine as AWS names it: postgres, mysql, mariadb, aurora-postgresql, aurora-mysql.
    pub rds_engine: String,
    pub engine: DatabaseEngine,
    /// Writer endpoint.
    pub host: String,
    pub port: i32,
    /// DBName / DatabaseName, when RDS knows one.
    pub db_name: Option<String>,
    pub master_username: Option<String>,
    /// MasterUserSecret.SecretArn when RDS manages the master password.
    pub managed_secret_arn: Option<String>,
    /// DBInstanceClass (the writer's for a cluster), for the connection budget.
    pub instance_class: Option<String>,
    /// The zone of a single-AZ DB instance (None when Multi-AZ or a cluster).
    pub single_zone: Option<String>,
}

/// Whether a cache endpoint belongs to a replication group (Redis/Valkey) or a cache cluster
/// (Memcached).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheKind {
    ReplicationGroup,
    CacheCluster,
}

/// A usable ElastiCache cache.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheFacts {
    pub arn: String,
    /// ReplicationGroupId or CacheClusterId.
    pub identifier: String,
    pub kind: CacheKind,
    pub engine: CacheEngine,
    /// Engine as AWS names it: redis, valkey, memcached.
    pub aws_engine: String,
    /// Primary endpoint (Redis) or configuration endpoint (Memcached).
    pub host: String,
    pub port: i32,
    pub transit_encryption: bool,
    pub auth_token_enabled: bool,
    /// Cache nodes: a Memcached cluster with several gives each client one of them through
    /// its configuration endpoint.
    pub nodes: i32,
    /// The zone of a cache without a standby in another zone.
    pub single_zone: Option<String>,
}

/// A usable EFS file system.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageFacts {
    pub file_system_id: String,
    pub arn: String,
    /// Access point to mount through, when one was asked for or found.
    pub access_point_id: Option<String>,
    /// Availability zones that have a mount target, sorted.
    pub mount_target_zones: Vec<String>,
}

/// The tag an access point the operator created carries: `<namespace>/<name>` of its
/// GrafanaCluster. Discovery prefers the access point with this cluster's value, and skips
/// those of other clusters, so clusters sharing one file system never see each other's.
pub const OWNER_TAG: &str = "grafana-ha.io/owner";

/// An EFS access point to create for one GrafanaCluster's plugins: what `resolve` decides
/// and the AWS edge sends as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPointRequest {
    /// Region of the file system (None: the operator's default).
    pub region: Option<String>,
    pub file_system_id: String,
    /// Idempotency token: the same cluster and file system always send the same one, so a
    /// retry, a restarted operator or a second replica gets the first access point back.
    pub client_token: String,
    /// Directory on the file system the access point exposes as its root.
    pub root_path: String,
    /// POSIX user (and group) every file operation through the access point runs as.
    pub uid: i64,
    pub gid: i64,
    /// Mode EFS gives `root_path` when it creates it (octal, e.g. 0755).
    pub permissions: String,
    /// Tags, the owner tag among them, by which discovery finds it again.
    pub tags: Tags,
}

/// What a pre-upgrade RDS snapshot looks like in AWS.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SnapshotRead {
    /// No upgrade is snapshotting.
    #[default]
    NotAsked,
    /// Asked, not there: the controller creates it.
    Missing,
    Creating,
    Available {
        arn: String,
    },
    Failed(String),
}

/// A string that must never be printed: Debug and Display redact it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }
    /// The secret itself, for writing into a Kubernetes Secret and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The master user credentials RDS keeps in Secrets Manager.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedCredentials {
    pub secret_arn: String,
    pub username: String,
    pub password: SecretValue,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resource_tags(pairs: &[(&str, &str)]) -> ResourceTags {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn every_selector_tag_must_match() {
        let resource = resource_tags(&[("env", "prod"), ("app", "grafana"), ("team", "obs")]);
        assert!(tags_match(&tags(&[("app", "grafana")]), &resource));
        assert!(tags_match(
            &tags(&[("app", "grafana"), ("env", "prod")]),
            &resource
        ));
        assert!(!tags_match(
            &tags(&[("app", "grafana"), ("env", "dev")]),
            &resource
        ));
        assert!(!tags_match(&tags(&[("missing", "x")]), &resource));
    }

    #[test]
    fn empty_selector_matches_nothing() {
        assert!(!tags_match(
            &Tags::new(),
            &resource_tags(&[("app", "grafana")])
        ));
    }

    #[test]
    fn resource_tags_sort_by_key_and_keep_the_last_value_of_a_key() {
        let t = resource_tags(&[("b", "1"), ("a", "2"), ("b", "3")]);
        assert_eq!(t.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
        assert_eq!(t.get("b"), Some("3"));
        assert_eq!(t.get("c"), None);
        assert_eq!(t.len(), 2);
        let map: Tags = [("b", "1"), ("a", "2"), ("b", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(
            map.iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .eq(t.iter())
        );
    }

    #[test]
    fn secret_value_is_redacted() {
        let s = SecretValue::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}

/// A usable Amazon Managed Service for Prometheus workspace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceFacts {
    /// ws-...
    pub id: String,
    pub arn: String,
    pub alias: Option<String>,
    /// The region it was listed in (where its query endpoint lives).
    pub region: String,
    /// The Prometheus-compatible query endpoint, ending in `/workspaces/<id>/`.
    pub url: String,
}
