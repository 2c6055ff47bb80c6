//! Generated GrafanaCluster specs and discovery facts for the property tests
//! (tests/spec_properties.rs) and their server-side dry run (tests/e2e_generated_specs.rs).
//!
//! Specs are built field by field from the shapes the CRD describes (discovery by tags or an
//! endpoint, either credential source, Redis or Memcached or none, EFS or a storage class,
//! pinned plugins, env, budgets, upgrade settings), mostly valid, and sometimes broken by one
//! known rule violation so that refusals are exercised too. The discovery facts are drawn
//! per component (found with varying engines and options, not found, ambiguous, not ready,
//! unsupported, AWS failing) and made to agree with what the spec pins (a spec that names
//! an engine is not handed another one: that disagreement is a refusal of its own).

#![allow(dead_code)]

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
use proptest::prelude::*;
use serde_json::{Value, json};

/// One generated case: a spec and what discovery found for it.
#[derive(Clone, Debug)]
pub struct Case {
    pub spec: Value,
    pub facts: Facts,
}

/// What discovery answers, per component, before it is fitted to the spec.
#[derive(Clone, Debug)]
pub struct Facts {
    pub database: Outcome,
    pub database_mysql: bool,
    pub database_cluster: bool,
    pub cache: Outcome,
    pub cache_memcached: bool,
    pub cache_tls: bool,
    pub cache_nodes: i32,
    pub storage: Outcome,
    pub access_point: bool,
    pub managed_secret_readable: bool,
    pub existing: Vec<bool>,
    pub autoscaler_max: Option<i32>,
}

#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Found,
    NotFound,
    Ambiguous,
    NotReady,
    Unsupported,
    Failed,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    // Mostly found: the interesting work (building children) happens then.
    prop_oneof![
        40 => Just(Outcome::Found),
        1 => Just(Outcome::NotFound),
        1 => Just(Outcome::Ambiguous),
        1 => Just(Outcome::NotReady),
        1 => Just(Outcome::Unsupported),
        1 => Just(Outcome::Failed),
    ]
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        (outcome(), any::<bool>(), any::<bool>()),
        (outcome(), any::<bool>(), any::<bool>(), 1..4i32),
        (outcome(), prop::bool::weighted(0.8)),
        prop::bool::weighted(0.9),
        prop::collection::vec(any::<bool>(), 4),
        prop::option::of(1..20i32),
    )
        .prop_map(
            |(
                (database, database_mysql, database_cluster),
                (cache, cache_memcached, cache_tls, cache_nodes),
                (storage, access_point),
                managed_secret_readable,
                existing,
                autoscaler_max,
            )| Facts {
                database,
                database_mysql,
                database_cluster,
                cache,
                cache_memcached,
                cache_tls,
                cache_nodes,
                storage,
                access_point,
                managed_secret_readable,
                existing,
                autoscaler_max,
            },
        )
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "team", "env", "app", "obs", "grafana", "prod", "a-b.c_d",
    ])
    .prop_map(str::to_string)
}

fn tags() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(word(), word(), 1..4).prop_map(|m| json!(m))
}

fn secret_name() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec!["db", "grafana-db", "creds-1", "x"]).prop_map(str::to_string)
}

fn endpoint(port: u16) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["db.example", "10.0.0.5", "my-host.internal"]),
        prop_oneof![Just(port), 1..=65535u16],
    )
        .prop_map(|(host, port)| json!({"host": host, "port": port}))
}

/// spec.database: by discovery (its own tags, or none so that aws.tags select) or by
/// endpoint; credentials from a Secret or the RDS-managed secret (discovery only).
fn database() -> impl Strategy<Value = Value> {
    let engine = prop::option::of(prop::sample::select(vec!["postgres", "mysql"]));
    let secret_ref = || {
        (
            secret_name(),
            prop::option::of(Just("user")),
            prop::option::of(Just("pass")),
        )
            .prop_map(|(name, u, p)| {
                let mut r = json!({"name": name});
                if let Some(u) = u {
                    r["usernameKey"] = json!(u);
                }
                if let Some(p) = p {
                    r["passwordKey"] = json!(p);
                }
                json!({"secretRef": r})
            })
    };
    let secret_ref_value = secret_ref;
    let discovered = (
        prop::option::of(tags()),
        engine.clone(),
        prop_oneof![Just(json!({"rdsManagedSecret": true})), secret_ref_value()],
    )
        .prop_map(|(tags, engine, credentials)| {
            let mut db = json!({"credentials": credentials});
            if let Some(t) = tags {
                db["tags"] = t;
            }
            if let Some(e) = engine {
                db["engine"] = json!(e);
            }
            db
        });
    let given = (
        endpoint(5432),
        prop::sample::select(vec!["postgres", "mysql"]),
        secret_ref_value(),
    )
        .prop_map(|(endpoint, engine, credentials)| {
            json!({"endpoint": endpoint, "engine": engine, "credentials": credentials})
        });
    (
        prop_oneof![3 => discovered, 1 => given],
        prop::option::of(prop::sample::select(vec!["grafana", "g_db"])),
        0..4u8,
        prop::option::of((prop::option::of(1..=100i32), prop::option::of(1..=10000i32))),
    )
        .prop_map(|(mut db, name, tls, budget)| {
            if let Some(n) = name {
                db["name"] = json!(n);
            }
            // An sslMode that fits the engine when the spec names one; verifying modes
            // come with a CA bundle.
            let mysql = db["engine"] == "mysql";
            match (tls, db["engine"].is_string()) {
                (1, true) => db["sslMode"] = json!(if mysql { "false" } else { "require" }),
                (2, true) => {
                    db["sslMode"] = json!(if mysql { "true" } else { "verify-full" });
                    db["caBundleConfigMapRef"] = json!({"name": "rds-ca", "key": "ca.pem"});
                }
                _ => {}
            }
            if let Some((share, max)) = budget {
                let mut b = json!({});
                if let Some(s) = share {
                    b["sharePercent"] = json!(s);
                }
                if let Some(m) = max {
                    b["maxOpenPerReplica"] = json!(m);
                }
                db["connectionBudget"] = b;
            }
            db
        })
}

/// spec.cache: absent (discovery by aws.tags), disabled, by its own tags, or by endpoint.
fn cache() -> impl Strategy<Value = Option<Value>> {
    let engine = prop::sample::select(vec!["redis", "memcached"]);
    let token = prop::option::of(Just(json!({"name": "redis-auth", "key": "token"})));
    prop_oneof![
        Just(None),
        Just(Some(json!({"enabled": false}))),
        (tags(), prop::option::of(engine.clone()), token.clone()).prop_map(|(t, e, tok)| {
            let mut c = json!({"tags": t});
            if let Some(e) = e {
                c["engine"] = json!(e);
            }
            if let Some(tok) = tok.filter(|_| e != Some("memcached")) {
                c["authTokenSecretRef"] = tok;
            }
            Some(c)
        }),
        (
            endpoint(6379),
            engine,
            token,
            prop::option::of(any::<bool>())
        )
            .prop_map(|(ep, e, tok, tls)| {
                let mut c = json!({"endpoint": ep, "engine": e});
                if let Some(tok) = tok.filter(|_| e == "redis") {
                    c["authTokenSecretRef"] = tok;
                }
                if let Some(tls) = tls {
                    c["tls"] = json!(tls);
                }
                Some(c)
            }),
    ]
}

fn plugin_ids() -> impl Strategy<Value = Vec<String>> {
    prop::sample::subsequence(
        vec![
            "grafana-clock-panel",
            "grafana-piechart-panel",
            "yesoreyeram-infinity-datasource",
            "marcusolsson-json-datasource",
        ],
        0..4,
    )
    .prop_flat_map(|ids| {
        let n = ids.len();
        (
            Just(ids),
            prop::collection::vec(
                prop::sample::select(vec!["1.0.0", "2.1.8", "3.0.0-beta.1", "10.4"]),
                n,
            ),
        )
    })
    .prop_map(|(ids, versions)| {
        ids.into_iter()
            .zip(versions)
            .map(|(i, v)| format!("{i}@{v}"))
            .collect()
    })
}

/// spec.plugins: absent (EFS by aws.tags), EFS by id or tags, or a storage class.
fn plugins() -> impl Strategy<Value = Option<Value>> {
    let source = prop_oneof![
        Just(json!({})),
        (
            Just("fs-0123456789abcdef0"),
            prop::option::of(Just("fsap-0123456789abcdef0")),
            prop::option::of(any::<bool>()),
        )
            .prop_map(|(fs, ap, create)| {
                let mut efs = json!({"fileSystemId": fs});
                if let Some(ap) = ap {
                    efs["accessPointId"] = json!(ap);
                }
                if let Some(c) = create {
                    efs["createAccessPoint"] = json!(c);
                }
                json!({"efs": efs})
            }),
        tags().prop_map(|t| json!({"efs": {"tags": t}})),
        prop::sample::select(vec!["gp3", "efs-sc"]).prop_map(|s| json!({"storageClassName": s})),
    ];
    prop::option::of(
        (
            source,
            plugin_ids(),
            prop::option::of(prop::sample::select(vec!["ReadWriteMany", "ReadWriteOnce"])),
            prop::option::of(prop::sample::select(vec!["1Gi", "500Mi"])),
        )
            .prop_map(|(mut p, install, mode, size)| {
                if !install.is_empty() {
                    p["install"] = json!(install);
                }
                if let Some(m) = mode {
                    p["accessMode"] = json!(m);
                }
                if let Some(s) = size {
                    p["size"] = json!(s);
                }
                p
            }),
    )
}

fn env() -> impl Strategy<Value = Option<Value>> {
    let var = prop_oneof![
        (
            prop::sample::select(vec!["GF_LOG_LEVEL", "GF_FEATURE_TOGGLES_ENABLE", "TZ"]),
            prop::sample::select(vec!["debug", "x", ""])
        )
            .prop_map(|(n, v)| json!({"name": n, "value": v})),
        prop::sample::select(vec!["GF_SMTP_PASSWORD", "MY_API_TOKEN"]).prop_map(|n| {
            json!({"name": n, "valueFrom": {"secretKeyRef": {"name": "smtp", "key": "password"}}})
        }),
    ];
    prop::option::of(prop::collection::vec(var, 1..4).prop_map(|v| {
        // Distinct names: Kubernetes keys env by name.
        let mut seen = BTreeSet::new();
        json!(
            v.into_iter()
                .filter(|e| seen.insert(e["name"].to_string()))
                .collect::<Vec<_>>()
        )
    }))
}

/// The rest: replicas, aws, server, PDB, rolling update, alerting, upgrade, admin, image.
fn rest() -> impl Strategy<Value = Value> {
    (
        prop_oneof![4 => 1..=3i32, 1 => 0..=12i32],
        (
            prop::option::weighted(0.85, tags()),
            prop::option::of(Just("eu-west-1")),
        ),
        prop::option::of(Just(
            json!({"domain": "grafana.example.com", "rootUrl": "https://grafana.example.com/"}),
        )),
        prop_oneof![
            Just(None),
            (0..3i32).prop_map(|n| Some(json!({"minAvailable": n}))),
            Just(Some(json!({"maxUnavailable": "50%"}))),
            Just(Some(json!({"enabled": false}))),
        ],
        prop::option::of(Just(json!({"maxSurge": 1, "maxUnavailable": 0}))),
        prop::option::of(prop::sample::select(vec!["gossip", "redis"])),
        prop::option::of((
            prop::sample::select(vec!["Safe", "RollingUpgrade"]),
            any::<bool>(),
        )),
        prop::option::of(Just(json!({"secretRef": {"name": "admin"}}))),
        prop::option::of(prop::sample::select(vec![
            "grafana/grafana:12.1.0",
            "grafana/grafana:13.0.1",
            "registry.local/grafana@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ])),
    )
        .prop_map(
            |(replicas, (aws_tags, region), server, pdb, rolling, ha, upgrade, admin, image)| {
                let mut s = json!({"replicas": replicas});
                let mut aws = json!({});
                if let Some(t) = aws_tags {
                    aws["tags"] = t;
                }
                if let Some(r) = region {
                    aws["region"] = json!(r);
                }
                if aws != json!({}) {
                    s["aws"] = aws;
                }
                let fields = [
                    ("server", server),
                    ("podDisruptionBudget", pdb),
                    ("rollingUpdate", rolling),
                    ("alerting", ha.map(|h| json!({"ha": h}))),
                    (
                        "upgrade",
                        upgrade.map(|(st, snap)| json!({"strategy": st, "snapshot": snap})),
                    ),
                    ("adminCredentials", admin),
                    ("image", image.map(|i| json!(i))),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        s[k] = v;
                    }
                }
                s
            },
        )
}

/// The production fields (issue 9): identity, a way in, pod customisation, telemetry,
/// network policy, Grafana settings and AWS data sources, each present now and then.
fn production() -> impl Strategy<Value = Value> {
    (
        (
            prop::option::of(prop_oneof![
                Just(json!({"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/g"}})),
                Just(json!({"create": false, "name": "mine"})),
                Just(json!({"automountToken": true})),
            ]),
            prop::option::of(prop_oneof![
                Just(json!({"type": "LoadBalancer", "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "external"}})),
                Just(json!({"type": "NodePort", "labels": {"team": "obs"}})),
            ]),
            prop::option::of(prop_oneof![
                Just(json!({"className": "alb", "hosts": ["grafana.example.com"], "tls": {"secretName": "cert"}})),
                Just(json!({"hosts": ["g.example.com", "h.example.com"], "path": "/grafana"})),
            ]),
            prop::option::of(Just(json!({
                "parentRefs": [{"name": "gw", "namespace": "infra"}],
                "hostnames": ["grafana.example.com"],
            }))),
        ),
        (
            prop::option::of(Just(json!({"serviceMonitor": {"enabled": true, "interval": "30s"}}))),
            prop::option::of(prop_oneof![
                Just(json!({"enabled": true})),
                Just(json!({"enabled": true, "awsCidrs": ["10.0.0.0/16"],
                    "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "ingress"}}}]})),
            ]),
            prop::option::of(prop_oneof![
                Just(json!({
                    "labels": {"team": "obs"},
                    "annotations": {"example.com/owner": "obs"},
                    "imagePullSecrets": [{"name": "regcred"}],
                    "priorityClassName": "high",
                })),
                Just(json!({
                    "extraVolumes": [{"name": "scratch", "emptyDir": {}}],
                    "extraVolumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                    "extraContainers": [{"name": "proxy", "image": "proxy:1", "ports": [{"containerPort": 8080}]}],
                    "extraPorts": [{"name": "extra", "containerPort": 8081}],
                })),
            ]),
        ),
        (
            prop::option::of(prop_oneof![
                Just(json!({"smtp": {"enabled": "true", "host": "smtp.example.com:587"}})),
                Just(json!({"database": {"conn_max_lifetime": "3600"}, "users": {"default_theme": "light"}})),
            ]),
            // Not smtp.password: env() may set GF_SMTP_PASSWORD, and one setting twice is refused.
            prop::option::of(Just(json!({"auth.generic_oauth": {"client_secret": {"name": "oauth", "key": "secret"}}}))),
            prop::option::of(prop_oneof![
                Just(json!({"cloudwatch": {"defaultRegion": "eu-west-1"}})),
                Just(json!({"prometheus": {"tags": {"team": "obs"}}})),
            ]),
        ),
    )
        .prop_map(
            |(
                (service_account, service, ingress, http_route),
                (monitoring, network_policy, pod),
                (config, config_secrets, data_sources),
            )| {
                let mut s = json!({});
                let fields = [
                    ("serviceAccount", service_account),
                    ("service", service),
                    ("ingress", ingress),
                    ("httpRoute", http_route),
                    ("monitoring", monitoring),
                    ("networkPolicy", network_policy),
                    ("pod", pod),
                    ("config", config),
                    ("configSecrets", config_secrets),
                    ("dataSources", data_sources),
                ];
                for (k, v) in fields {
                    if let Some(v) = v {
                        s[k] = v;
                    }
                }
                s
            },
        )
}

/// One known violation of a rule (or none, most of the time).
fn breaker() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        20 => Just(None),
        1 => Just(Some(json!({"replicas": 3, "plugins": {"accessMode": "ReadWriteOnce"}}))),
        1 => Just(Some(json!({"database": {"tags": {}}}))),
        1 => Just(Some(json!({"plugins": {"install": ["grafana-clock-panel"]}}))),
        1 => Just(Some(json!({"env": [{"name": "GF_DATABASE_PASSWORD", "value": "x"}]}))),
        1 => Just(Some(json!({"database": {"engine": "postgres", "sslMode": "skip-verify"}}))),
        1 => Just(Some(json!({"cache": {"endpoint": {"host": "c", "port": 6379}, "tags": {"a": "b"}}}))),
        1 => Just(Some(json!({"pod": {"extraContainers": [{"name": "side", "image": "x", "securityContext": {"privileged": true}}]}}))),
        1 => Just(Some(json!({"pod": {"extraVolumeMounts": [{"name": "plugins", "mountPath": "/var/lib/grafana/plugins"}]}}))),
        1 => Just(Some(json!({"config": {"database": {"max_open_conn": "50"}}}))),
        1 => Just(Some(json!({"config": {"auth.generic_oauth": {"client_secret": "literal"}}}))),
    ]
}

/// A whole spec.
pub fn spec() -> impl Strategy<Value = Value> {
    (
        rest(),
        database(),
        cache(),
        plugins(),
        env(),
        production(),
        breaker(),
    )
        .prop_map(|(mut s, db, cache, plugins, env, production, breaker)| {
            merge(&mut s, &production);
            s["database"] = db;
            if let Some(c) = cache {
                s["cache"] = c;
            }
            if let Some(p) = plugins {
                s["plugins"] = p;
            }
            if let Some(e) = env {
                s["env"] = e;
            }
            // The rules that tie fields together, kept (the breaker below breaks one).
            if s["plugins"]["accessMode"] == "ReadWriteOnce" && s["replicas"].as_i64() > Some(1) {
                s["plugins"]["accessMode"] = json!("ReadWriteMany");
            }
            let redis =
                s["cache"]["enabled"] != json!(false) && s["cache"]["engine"] != "memcached";
            if s["alerting"]["ha"] == "redis" && !redis {
                s["alerting"]["ha"] = json!("gossip");
            }
            if s["database"]["endpoint"].is_object() && s["upgrade"]["snapshot"] == json!(true) {
                s["upgrade"]["snapshot"] = json!(false);
            }
            if let Some(b) = breaker {
                merge(&mut s, &b);
            }
            s
        })
}

pub fn case() -> impl Strategy<Value = Case> {
    (spec(), facts()).prop_map(|(spec, facts)| Case { spec, facts })
}

/// RFC 7386 merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Some(map) = target.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

impl Case {
    /// The GrafanaCluster, or None when serde refuses the generated JSON (which the CRD's
    /// schema would refuse as well).
    pub fn cluster(&self) -> Option<GrafanaCluster> {
        serde_json::from_value(json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "grafana", "namespace": "obs", "uid": "uid-1"},
            "spec": self.spec,
        }))
        .ok()
    }

    /// What the gatherer would have produced for this spec, given the drawn facts.
    pub fn gathered(&self) -> Gathered {
        let f = &self.facts;
        let s = &self.spec;
        let mut g = base_gathered();
        g.database = (!s["database"]["endpoint"].is_object()).then(|| {
            let mysql = match s["database"]["engine"].as_str() {
                Some(e) => e == "mysql",
                None => f.database_mysql,
            };
            let mut db = database_facts();
            if mysql {
                db.rds_engine = "mysql".into();
                db.engine = DatabaseEngine::Mysql;
                db.port = 3306;
            }
            if f.database_cluster {
                db.kind = DatabaseKind::Cluster;
                db.arn = "arn:aws:rds:us-east-1:1:cluster:grafana-db".into();
            }
            discovered(f.database, db)
        });
        let cache_off = s["cache"]["enabled"] == json!(false);
        g.cache = (!cache_off && !s["cache"]["endpoint"].is_object()).then(|| {
            let memcached = match s["cache"]["engine"].as_str() {
                Some(e) => e == "memcached",
                None => f.cache_memcached,
            };
            let mut c = cache_facts();
            c.transit_encryption = f.cache_tls;
            c.auth_token_enabled = f.cache_tls && s["cache"]["authTokenSecretRef"].is_object();
            c.nodes = f.cache_nodes;
            if memcached {
                c.engine = CacheEngine::Memcached;
                c.aws_engine = "memcached".into();
                c.kind = CacheKind::CacheCluster;
                c.port = 11211;
                c.auth_token_enabled = false;
            }
            discovered(f.cache, c)
        });
        g.storage = (!s["plugins"]["storageClassName"].is_string()).then(|| {
            let mut st = file_system_facts();
            if !f.access_point {
                st.access_point_id = None;
            }
            discovered(f.storage, st)
        });
        let managed = s["database"]["credentials"]["rdsManagedSecret"] == json!(true);
        g.secrets.managed = match (managed, f.managed_secret_readable) {
            (false, _) => ManagedSecretRead::NotAsked,
            (true, true) => g.secrets.managed.clone(),
            (true, false) => ManagedSecretRead::Unavailable("AccessDenied".into()),
        };
        if !s["cache"]["authTokenSecretRef"].is_object() {
            g.secrets.cache_auth_token = None;
        } else {
            g.secrets.cache_auth_token = Some(SecretValue::new("tok"));
        }
        g.secrets.existing = ALL_OPERATOR_SECRETS
            .into_iter()
            .zip(&f.existing)
            .filter(|(_, keep)| **keep)
            .map(|(s, _)| s)
            .collect::<BTreeSet<OperatorSecret>>();
        g.autoscaler_max = f.autoscaler_max;
        g
    }
}

// What discovery finds for the article's setup (as src/fixtures.rs has it for the unit
// tests, which tests/ cannot reach: it is cfg(test)).
const MANAGED_SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:1:secret:rds!db";
const ALL_OPERATOR_SECRETS: [OperatorSecret; 4] = [
    OperatorSecret::DatabaseCredentials,
    OperatorSecret::CacheConnection,
    OperatorSecret::AdminCredentials,
    OperatorSecret::SigningKey,
];

fn database_facts() -> DatabaseFacts {
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

fn cache_facts() -> CacheFacts {
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

fn file_system_facts() -> StorageFacts {
    StorageFacts {
        file_system_id: "fs-0123456789abcdef0".into(),
        arn: "arn:aws:elasticfilesystem:us-east-1:1:file-system/fs-0123456789abcdef0".into(),
        access_point_id: Some("fsap-0123456789abcdef0".into()),
        mount_target_zones: vec!["us-east-1a".into()],
    }
}

fn base_gathered() -> Gathered {
    let mut secrets = SecretReads::unread(FreshValues {
        admin_password: SecretValue::new("generated-admin-password"),
        signing_key: SecretValue::new("generated-signing-key"),
    });
    secrets.read = true;
    secrets.managed = ManagedSecretRead::Read(ManagedCredentials {
        secret_arn: MANAGED_SECRET_ARN.into(),
        username: "grafana".into(),
        password: SecretValue::new("P@55w0rd!"),
    });
    Gathered {
        database: None,
        cache: None,
        storage: None,
        secrets,
        deployment: None,
        snapshot: SnapshotRead::NotAsked,
        autoscaler_max: None,
        now: k8s_openapi::jiff::Timestamp::from_second(1_800_000_000).expect("a timestamp"),
        data_sources: Default::default(),
        optional_apis: Default::default(),
        service_account_problem: None,
    }
}

fn discovered<T>(outcome: Outcome, found: T) -> Discovered<T> {
    let arn = "arn:aws:x:us-east-1:1:thing".to_string();
    match outcome {
        Outcome::Found => Discovered::Lookup(Lookup::Found(found)),
        Outcome::NotFound => Discovered::Lookup(Lookup::NotFound { candidates: 3 }),
        Outcome::Ambiguous => Discovered::Lookup(Lookup::Ambiguous {
            arns: vec![arn.clone(), format!("{arn}-2")],
        }),
        Outcome::NotReady => Discovered::Lookup(Lookup::NotReady {
            arn,
            state: "creating".into(),
        }),
        Outcome::Unsupported => Discovered::Lookup(Lookup::Unsupported {
            arn,
            reason: "cluster mode".into(),
        }),
        Outcome::Failed => Discovered::Failed {
            reason: Reason::AwsUnavailable,
            message: "RDS answered 503".into(),
        },
    }
}
