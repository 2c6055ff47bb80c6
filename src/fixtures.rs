//! Test fixtures shared by every unit test: the article's GrafanaCluster, what discovery
//! finds for it, and the plan it resolves to.

use std::collections::BTreeSet;

use crate::api::{CacheEngine, DatabaseEngine, GrafanaCluster};
use crate::facts::{
    CacheFacts, CacheKind, DatabaseFacts, DatabaseKind, Lookup, ManagedCredentials, SecretValue,
    StorageFacts,
};
use crate::gather::{FreshValues, Gathered, ManagedSecretRead, OperatorSecret, SecretReads};
use crate::resolve::{Discovered, Plan, resolve};

pub fn cluster(spec: serde_json::Value) -> GrafanaCluster {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": "obs", "uid": "uid-1"},
        "spec": spec,
    }))
    .expect("fixture deserializes")
}

/// The article's setup: 3 replicas, RDS-managed Postgres, Redis with TLS and AUTH, EFS,
/// one plugin.
pub fn article() -> GrafanaCluster {
    cluster(serde_json::json!({
        "replicas": 3,
        "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
        "database": {"credentials": {"rdsManagedSecret": true}},
        "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
        "plugins": {"install": ["grafana-clock-panel@2.1.8"]},
        "server": {"domain": "grafana.example.com", "rootUrl": "https://grafana.example.com/"},
    }))
}

pub const MANAGED_SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:1:secret:rds!db";

pub fn database() -> DatabaseFacts {
    DatabaseFacts {
        arn: "arn:aws:rds:us-east-1:1:db:grafana-db".into(),
        identifier: "grafana-db".into(),
        kind: DatabaseKind::Instance,
        rds_engine: "postgres".into(),
        engine: DatabaseEngine::Postgres,
        host: "grafana-db.rds.local".into(),
        port: 5432,
        db_name: Some("grafana".into()),
        master_username: Some("grafana".into()),
        managed_secret_arn: Some(MANAGED_SECRET_ARN.into()),
        instance_class: Some("db.r6g.large".into()),
        single_zone: None,
    }
}

pub fn cache() -> CacheFacts {
    CacheFacts {
        arn: "arn:aws:elasticache:us-east-1:1:replicationgroup:grafana-cache".into(),
        identifier: "grafana-cache".into(),
        kind: CacheKind::ReplicationGroup,
        engine: CacheEngine::Redis,
        aws_engine: "redis".into(),
        host: "grafana-cache.cache.local".into(),
        port: 6379,
        transit_encryption: true,
        auth_token_enabled: true,
        nodes: 1,
        single_zone: None,
    }
}

pub fn file_system() -> StorageFacts {
    StorageFacts {
        file_system_id: "fs-0123456789abcdef0".into(),
        arn: "arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-0123456789abcdef0".into(),
        // Plugins are installed: the root of a file system is not writable for Grafana.
        access_point_id: Some("fsap-0123456789abcdef0".into()),
        mount_target_zones: vec!["us-east-1a".into()],
    }
}

pub fn found<T>(t: T) -> Option<Discovered<T>> {
    Some(Discovered::Lookup(Lookup::Found(t)))
}

pub fn fresh() -> FreshValues {
    FreshValues {
        admin_password: SecretValue::new("generated-admin-password"),
        signing_key: SecretValue::new("generated-signing-key"),
    }
}

/// Secrets as read from a cluster where the user's Secrets exist and the operator's own
/// do not yet; the RDS-managed secret and the Redis token were read.
pub fn secret_reads() -> SecretReads {
    let mut reads = SecretReads::unread(fresh());
    reads.read = true;
    reads.cache_auth_token = Some(SecretValue::new("tok"));
    reads.managed = ManagedSecretRead::Read(ManagedCredentials {
        secret_arn: MANAGED_SECRET_ARN.into(),
        username: "grafana".into(),
        password: SecretValue::new("P@55w0rd!"),
    });
    reads.existing = BTreeSet::new();
    reads
}

/// Everything found: the article's database, cache and file system.
pub fn gathered() -> Gathered {
    Gathered {
        database: found(database()),
        cache: found(cache()),
        storage: found(file_system()),
        data_sources: Default::default(),
        secrets: secret_reads(),
        deployment: None,
        snapshot: crate::facts::SnapshotRead::NotAsked,
        autoscaler_max: None,
        optional_apis: Default::default(),
        now: crate::fixtures::now(),
        service_account_problem: None,
    }
}

/// The existing operator Secrets, all of them.
pub fn all_operator_secrets() -> BTreeSet<OperatorSecret> {
    BTreeSet::from([
        OperatorSecret::DatabaseCredentials,
        OperatorSecret::CacheConnection,
        OperatorSecret::AdminCredentials,
        OperatorSecret::SigningKey,
    ])
}

pub fn plan_of(gc: &GrafanaCluster) -> Plan {
    resolve(gc, &gathered()).plan.expect("fixture resolves")
}

pub fn plan() -> Plan {
    plan_of(&article())
}

/// A fixed clock for the pure middle.
pub fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("timestamp")
}
