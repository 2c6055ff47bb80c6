//! Fuzz target: arbitrary spec JSON and discovery facts through the pure middle
//! (`pipeline::validate`, `pipeline::plan` = resolve + build, `render::render_gathered`).
//! Nothing may panic, and render must give the same bytes twice.
//!
//! Input: the first 8 bytes choose the discovery facts (per component: found with which
//! engine and options, not found, ambiguous, not ready, unsupported, AWS failing; which of
//! the operator's Secrets exist); the rest is the `spec` as JSON.
#![no_main]

use std::collections::BTreeSet;

use grafana_ha_operator::api::{CacheEngine, DatabaseEngine, GrafanaCluster};
use grafana_ha_operator::facts::{
    CacheFacts, CacheKind, DatabaseFacts, DatabaseKind, Lookup, ManagedCredentials, SecretValue,
    SnapshotRead, StorageFacts,
};
use grafana_ha_operator::gather::{
    FreshValues, Gathered, ManagedSecretRead, OperatorSecret, SecretReads,
};
use grafana_ha_operator::resolve::Discovered;
use grafana_ha_operator::status::Reason;
use grafana_ha_operator::{pipeline, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (facts, spec) = data.split_at(8);
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(spec) else {
        return;
    };
    let object = serde_json::json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "grafana", "namespace": "obs", "uid": "uid-1"},
        "spec": spec,
    });
    let Ok(gc) = serde_json::from_value::<GrafanaCluster>(object) else {
        return;
    };
    if pipeline::validate(&gc).is_some() {
        // Refused: the controller stops here too. Resolve anyway: the pure middle must not
        // panic on a spec that slipped past validation either.
    }
    let gathered = gathered(facts);
    let _ = pipeline::plan(&gc, &gathered);
    let first = render::render_gathered(&gc, &gathered).map_err(|e| e.to_string());
    let second = render::render_gathered(&gc, &gathered).map_err(|e| e.to_string());
    assert_eq!(first, second, "render is not deterministic");
});

fn discovered<T>(choice: u8, found: T) -> Option<Discovered<T>> {
    let arn = "arn:aws:x:us-east-1:1:thing".to_string();
    Some(match choice % 8 {
        0 => return None,
        1 => Discovered::Lookup(Lookup::NotFound { candidates: 2 }),
        2 => Discovered::Lookup(Lookup::Ambiguous {
            arns: vec![arn.clone(), format!("{arn}-2")],
        }),
        3 => Discovered::Lookup(Lookup::NotReady {
            arn,
            state: "creating".into(),
        }),
        4 => Discovered::Lookup(Lookup::Unsupported {
            arn,
            reason: "cluster mode".into(),
        }),
        5 => Discovered::Failed {
            reason: Reason::AwsUnavailable,
            message: "503".into(),
        },
        _ => Discovered::Lookup(Lookup::Found(found)),
    })
}

fn gathered(f: &[u8]) -> Gathered {
    let bit = |byte: usize, n: u8| f[byte] >> n & 1 == 1;
    let mysql = bit(0, 4);
    let database = DatabaseFacts {
        arn: "arn:aws:rds:us-east-1:1:db:grafana-db".into(),
        identifier: "grafana-db".into(),
        kind: if bit(0, 5) {
            DatabaseKind::Cluster
        } else {
            DatabaseKind::Instance
        },
        rds_engine: if mysql { "mysql" } else { "postgres" }.into(),
        engine: if mysql {
            DatabaseEngine::Mysql
        } else {
            DatabaseEngine::Postgres
        },
        host: "grafana-db.rds.local".into(),
        port: if mysql { 3306 } else { 5432 },
        db_name: bit(0, 6).then(|| "grafana".into()),
        master_username: bit(0, 7).then(|| "grafana".into()),
        managed_secret_arn: bit(3, 0)
            .then(|| "arn:aws:secretsmanager:us-east-1:1:secret:rds!db".into()),
        instance_class: bit(3, 1).then(|| "db.r6g.large".into()),
        single_zone: bit(3, 2).then(|| "us-east-1a".into()),
    };
    let memcached = bit(1, 4);
    let cache = CacheFacts {
        arn: "arn:aws:elasticache:us-east-1:1:replicationgroup:grafana-cache".into(),
        identifier: "grafana-cache".into(),
        kind: if memcached {
            CacheKind::CacheCluster
        } else {
            CacheKind::ReplicationGroup
        },
        engine: if memcached {
            CacheEngine::Memcached
        } else {
            CacheEngine::Redis
        },
        aws_engine: if memcached { "memcached" } else { "redis" }.into(),
        host: "grafana-cache.cache.local".into(),
        port: if memcached { 11211 } else { 6379 },
        transit_encryption: bit(1, 5),
        auth_token_enabled: bit(1, 6),
        nodes: i32::from(f[4] % 4),
        single_zone: bit(1, 7).then(|| "us-east-1b".into()),
    };
    let storage = StorageFacts {
        file_system_id: "fs-0123456789abcdef0".into(),
        arn: "arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-0123456789abcdef0".into(),
        access_point_id: bit(2, 4).then(|| "fsap-0123456789abcdef0".into()),
        mount_target_zones: (0..f[5] % 4)
            .map(|i| format!("us-east-1{}", char::from(b'a' + i)))
            .collect(),
    };
    let mut secrets = SecretReads::unread(FreshValues {
        admin_password: SecretValue::new("generated-admin-password"),
        signing_key: SecretValue::new("generated-signing-key"),
    });
    secrets.read = bit(2, 5);
    secrets.cache_auth_token = bit(2, 6).then(|| SecretValue::new("tok"));
    secrets.managed = match f[6] % 3 {
        0 => ManagedSecretRead::NotAsked,
        1 => ManagedSecretRead::Read(ManagedCredentials {
            secret_arn: "arn:aws:secretsmanager:us-east-1:1:secret:rds!db".into(),
            username: "grafana".into(),
            password: SecretValue::new("P@55w0rd!"),
        }),
        _ => ManagedSecretRead::Unavailable("AccessDenied".into()),
    };
    secrets.existing = [
        OperatorSecret::DatabaseCredentials,
        OperatorSecret::CacheConnection,
        OperatorSecret::AdminCredentials,
        OperatorSecret::SigningKey,
    ]
    .into_iter()
    .enumerate()
    .filter(|(i, _)| f[7] >> i & 1 == 1)
    .map(|(_, s)| s)
    .collect::<BTreeSet<_>>();
    Gathered {
        database: discovered(f[0], database),
        cache: discovered(f[1], cache),
        storage: discovered(f[2], storage),
        data_sources: Default::default(),
        secrets,
        deployment: None,
        snapshot: match f[7] >> 4 & 3 {
            0 => SnapshotRead::NotAsked,
            1 => SnapshotRead::Missing,
            2 => SnapshotRead::Creating,
            _ => SnapshotRead::Failed("quota".into()),
        },
        autoscaler_max: (f[6] > 128).then(|| i32::from(f[6] - 128)),
        optional_apis: Default::default(),
        service_account_problem: bit(2, 7).then(|| "ServiceAccount grafana not found".into()),
        now: k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).unwrap_or_default(),
    }
}
