use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::api::{CacheEngine, DatabaseEngine};
use crate::facts::{
    CacheFacts, CacheKind, DatabaseFacts, DatabaseKind, ManagedCredentials, SecretValue,
    StorageFacts,
};
use crate::fixtures::{found, fresh};
use crate::gather::{ManagedSecretRead, OperatorSecret, SecretReads};

#[test]
fn parse_defaults_the_namespace_and_requires_a_name() {
    let gc = parse(
        "apiVersion: grafana-ha.io/v1alpha1\nkind: GrafanaCluster\nmetadata:\n  name: g\nspec: {}\n",
    )
    .expect("parses");
    assert_eq!(gc.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(gc.spec.replicas, 2, "CRD default applies");
    let err =
        parse("apiVersion: grafana-ha.io/v1alpha1\nkind: GrafanaCluster\nmetadata: {}\nspec: {}\n")
            .expect_err("no name");
    assert_eq!(err.exit_code(), 2);
    assert!(parse("spec: [").is_err());
}

// Golden files: `render` of the shipped examples over fixed discovery facts. They pin what
// the preview prints, so a change to the pipeline that changes the output shows up as a
// diff of tests/golden/ (refresh with `UPDATE_GOLDEN=1 cargo test --lib golden`).

fn example(file: &str) -> GrafanaCluster {
    let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("example");
    let doc = text
        .split("\n---\n")
        .find(|d| d.contains("kind: GrafanaCluster"))
        .expect("a GrafanaCluster document");
    parse(doc).expect("example parses")
}

const MANAGED_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1";

fn database(engine: DatabaseEngine, rds_engine: &str, port: i32) -> DatabaseFacts {
    DatabaseFacts {
        arn: "arn:aws:rds:us-east-1:123456789012:db:grafana-db".into(),
        identifier: "grafana-db".into(),
        kind: DatabaseKind::Instance,
        rds_engine: rds_engine.into(),
        engine,
        host: "grafana-db.c0ffee.us-east-1.rds.amazonaws.com".into(),
        port,
        db_name: Some("grafana".into()),
        master_username: Some("grafana".into()),
        managed_secret_arn: Some(MANAGED_ARN.into()),
        instance_class: Some("db.t4g.medium".into()),
        single_zone: None,
    }
}

fn cache(engine: CacheEngine, port: i32, tls: bool) -> CacheFacts {
    CacheFacts {
        arn: "arn:aws:elasticache:us-east-1:123456789012:replicationgroup:grafana-cache".into(),
        identifier: "grafana-cache".into(),
        kind: CacheKind::ReplicationGroup,
        engine,
        aws_engine: "redis".into(),
        host: "master.grafana-cache.c0ffee.use1.cache.amazonaws.com".into(),
        port,
        transit_encryption: tls,
        auth_token_enabled: tls,
        nodes: 1,
        single_zone: None,
    }
}

fn efs() -> StorageFacts {
    StorageFacts {
        file_system_id: "fs-0123456789abcdef0".into(),
        arn: "arn:aws:elasticfilesystem:us-east-1:123456789012:file-system/fs-0123456789abcdef0"
            .into(),
        access_point_id: Some("fsap-0123456789abcdef0".into()),
        mount_target_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
    }
}

fn digests(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), crate::hash::sha256_hex(v.as_bytes())))
        .collect()
}

fn check(name: &str, out: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, out).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    pretty_assertions::assert_eq!(want, out, "render output differs from {path}");
}

fn managed() -> ManagedSecretRead {
    ManagedSecretRead::Read(ManagedCredentials {
        secret_arn: MANAGED_ARN.into(),
        username: "grafana".into(),
        password: SecretValue::new("managed-password"),
    })
}

fn postgres(secrets: SecretReads) -> Gathered {
    Gathered {
        database: found(database(DatabaseEngine::Postgres, "postgres", 5432)),
        cache: found(cache(CacheEngine::Redis, 6379, true)),
        storage: found(efs()),
        data_sources: Default::default(),
        secrets,
        deployment: None,
        snapshot: crate::facts::SnapshotRead::NotAsked,
        autoscaler_max: None,
        optional_apis: Default::default(),
        now: crate::fixtures::now(),
        service_account_problem: None,
    }
}

#[test]
fn golden_postgres_redis_efs_without_kubeconfig() {
    let gc = example("grafanacluster-postgres-redis-efs.yaml");
    let mut secrets = SecretReads::unread(fresh());
    secrets.managed = managed();
    let out = render_gathered(&gc, &postgres(secrets)).expect("renders");
    check("postgres-redis-efs.yaml", &out);
}

#[test]
fn golden_postgres_redis_efs_with_kubeconfig() {
    let gc = example("grafanacluster-postgres-redis-efs.yaml");
    let mut secrets = SecretReads::unread(fresh());
    secrets.read = true;
    secrets.managed = managed();
    secrets.cache_auth_token = Some(SecretValue::new("redis-token"));
    secrets.existing = BTreeSet::from([
        OperatorSecret::AdminCredentials,
        OperatorSecret::SigningKey,
        OperatorSecret::DatabaseCredentials,
    ]);
    secrets.digests = digests(&[
        ("grafana-redis-auth/token", "redis-token"),
        ("grafana-admin/username", "admin"),
        ("grafana-admin/password", "admin-password"),
        ("grafana-secret-key/secret_key", "signing-key"),
        ("grafana-db-credentials/username", "grafana"),
        ("grafana-db-credentials/password", "managed-password"),
    ]);
    let out = render_gathered(&gc, &postgres(secrets)).expect("renders");
    assert!(!out.contains("redis-token"), "token redacted");
    assert!(!out.contains("managed-password"));
    check("postgres-redis-efs-kubeconfig.yaml", &out);
}

#[test]
fn golden_mysql_memcached_storage_class() {
    let gc = example("grafanacluster-mysql-memcached.yaml");
    let mut memcached = cache(CacheEngine::Memcached, 11211, false);
    memcached.kind = CacheKind::CacheCluster;
    memcached.aws_engine = "memcached".into();
    memcached.host = "grafana-cache.c0ffee.cfg.use1.cache.amazonaws.com".into();
    let mut db = database(DatabaseEngine::Mysql, "mysql", 3306);
    db.managed_secret_arn = None;
    let mut secrets = SecretReads::unread(fresh());
    secrets.read = true;
    secrets.existing =
        BTreeSet::from([OperatorSecret::AdminCredentials, OperatorSecret::SigningKey]);
    secrets.digests = digests(&[
        ("grafana-mysql/username", "grafana"),
        ("grafana-mysql/password", "change-me"),
    ]);
    let gathered = Gathered {
        database: found(db),
        cache: found(memcached),
        storage: None,
        data_sources: Default::default(),
        secrets,
        deployment: None,
        snapshot: crate::facts::SnapshotRead::NotAsked,
        autoscaler_max: None,
        optional_apis: Default::default(),
        now: crate::fixtures::now(),
        service_account_problem: None,
    };
    let out = render_gathered(&gc, &gathered).expect("renders");
    check("mysql-memcached.yaml", &out);
}

/// Rendering is deterministic: fresh random values never reach the output.
#[test]
fn render_is_deterministic() {
    let gc = example("grafanacluster-postgres-redis-efs.yaml");
    let mut a = SecretReads::unread(crate::gather::FreshValues::random());
    a.managed = managed();
    let mut b = SecretReads::unread(crate::gather::FreshValues::random());
    b.managed = managed();
    assert_eq!(
        render_gathered(&gc, &postgres(a)).expect("a"),
        render_gathered(&gc, &postgres(b)).expect("b")
    );
}

#[test]
fn render_says_which_access_point_the_operator_would_create_and_creates_none() {
    let gc = example("grafanacluster-postgres-redis-efs.yaml");
    let mut secrets = SecretReads::unread(fresh());
    secrets.managed = managed();
    let mut gathered = postgres(secrets);
    gathered.storage = found(StorageFacts {
        access_point_id: None,
        ..efs()
    });
    // render has no AWS client to write with; what it can do is say what would happen.
    let Err(RenderError::Unresolved(out)) = render_gathered(&gc, &gathered) else {
        panic!("no volume can be rendered before the access point exists");
    };
    let ns = gc.metadata.namespace.clone().unwrap_or_default();
    let name = gc.metadata.name.clone().unwrap_or_default();
    assert!(
        out.contains(&format!(
            "the operator would create an EFS access point on fs-0123456789abcdef0 with root directory /grafana/{ns}/{name} owned by 472:472 (mode 0755)"
        )),
        "{out}"
    );
    assert!(out.contains("render creates nothing"), "{out}");
    assert!(out.contains("CreatingAccessPoint"), "{out}");
}

/// The article's cluster with an HTTPRoute, a ServiceMonitor and NetworkPolicies.
fn with_extras() -> GrafanaCluster {
    let mut gc = example("grafanacluster-postgres-redis-efs.yaml");
    let extras: GrafanaCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "x"},
        "spec": {
            "database": {"credentials": {"rdsManagedSecret": true}},
            "httpRoute": {"parentRefs": [{"name": "public"}], "hostnames": ["grafana.example.com"]},
            "monitoring": {"serviceMonitor": {"enabled": true}},
            "networkPolicy": {"enabled": true},
        }
    }))
    .expect("extras");
    gc.spec.http_route = extras.spec.http_route;
    gc.spec.monitoring = extras.spec.monitoring;
    gc.spec.network_policy = extras.spec.network_policy;
    gc
}

#[test]
fn render_shows_optional_children_without_a_cluster_and_policies_first() {
    use crate::optional_api::Availability;
    let gc = with_extras();
    let mut secrets = SecretReads::unread(fresh());
    secrets.managed = managed();
    let mut gathered = postgres(secrets);
    gathered.optional_apis.http_route = Availability::Unchecked;
    gathered.optional_apis.service_monitor = Availability::Unchecked;
    let out = render_gathered(&gc, &gathered).expect("renders");
    let kinds: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(kinds.first(), Some(&"NetworkPolicy"), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "NetworkPolicy").count(), 2);
    assert_eq!(&kinds[kinds.len() - 2..], ["HTTPRoute", "ServiceMonitor"]);
    assert!(out.contains("shown as if their CRDs were installed"));

    // Asked against a cluster without the Gateway API: no route, and the header says why.
    gathered.optional_apis.http_route = Availability::NotServed;
    gathered.optional_apis.service_monitor = Availability::Served;
    let out = render_gathered(&gc, &gathered).expect("renders");
    assert!(!out.contains("kind: HTTPRoute"));
    assert!(out.contains("kind: ServiceMonitor"));
    assert!(out.contains("# optional APIs: spec.httpRoute needs"));
}

/// `render` shows the user's configuration as the pods get it: settings as env, secrets as
/// `$__file{}` names and projected keys, never a value; unknown keys in the header.
#[test]
fn render_shows_the_configuration() {
    let mut gc = example("grafanacluster-postgres-redis-efs.yaml");
    let extra: crate::api::GrafanaClusterSpec = serde_json::from_value(serde_json::json!({
        "database": {"credentials": {"rdsManagedSecret": true}},
        "config": {"smtp": {"enabled": "true", "host": "smtp.example.com:587", "hots": "typo"}},
        "configSecrets": {"smtp": {"password": {"name": "grafana-smtp", "key": "password"}}},
        "envFrom": [{"configMapRef": {"name": "grafana-extra"}}],
    }))
    .expect("spec");
    gc.spec.config = extra.config;
    gc.spec.config_secrets = extra.config_secrets;
    gc.spec.env_from = extra.env_from;
    let mut secrets = SecretReads::unread(fresh());
    secrets.managed = managed();
    let out = render_gathered(&gc, &postgres(secrets)).expect("renders");
    assert!(
        out.contains("# config: 4 settings applied; smtp.hots not in the defaults.ini"),
        "{out}"
    );
    assert!(
        out.contains("name: GF_SMTP_HOST\n          value: smtp.example.com:587"),
        "{out}"
    );
    assert!(
        out.contains("value: $__file{/etc/grafana/secrets/config/smtp/password}"),
        "{out}"
    );
    assert!(out.contains("path: config/smtp/password"), "{out}");
    assert!(out.contains("name: grafana-extra"), "{out}");
}
