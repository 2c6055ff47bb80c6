use super::*;
use crate::api::{AlertingHa, CacheEngine, DatabaseEngine};
use crate::facts::{CacheFacts, DatabaseFacts, Lookup, format_tags};
use crate::gather::ManagedSecretRead;
use crate::status::Reason;

use crate::fixtures::{self, cluster};

fn article() -> GrafanaCluster {
    cluster(serde_json::json!({
        "replicas": 3,
        "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
        "database": {"credentials": {"rdsManagedSecret": true}},
        "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
        "plugins": {"install": ["b-panel@1.0.0", "a-panel@2.0.0"]},
    }))
}

fn db() -> DatabaseFacts {
    fixtures::database()
}

fn cache() -> CacheFacts {
    fixtures::cache()
}

fn found() -> Gathered {
    let mut g = fixtures::gathered();
    let mut fs = fixtures::file_system();
    fs.access_point_id = Some("fsap-0123456789abcdef0".into());
    g.storage = fixtures::found(fs);
    g
}

#[test]
fn article_setup_resolves_everything() {
    let r = resolve(&article(), &found());
    let w = r.plan.clone().expect("wiring");
    assert_eq!(w.replicas, 3);
    assert_eq!(w.database.status.endpoint, "grafana-db.rds.local:5432");
    assert_eq!(w.database.ssl_mode, "require");
    assert_eq!(
        w.database.credentials.keys().secret,
        "grafana-db-credentials"
    );
    assert!(w.database.status.managed_secret_arn.is_some());
    let c = w.cache.expect("cache");
    assert!(c.status.tls);
    match &c.connection {
        CacheConnection::Redis {
            auth: Some(auth), ..
        } => {
            assert_eq!(auth.token_ref.name, "redis-auth")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.storage.volume_handle.as_deref(),
        Some("fs-0123456789abcdef0::fsap-0123456789abcdef0")
    );
    let plugins = w.plugins.expect("plugins");
    assert_eq!(plugins.plugins, vec!["a-panel@2.0.0", "b-panel@1.0.0"]);
    assert!(plugins.job_name.starts_with("grafana-plugins-"));
    assert_eq!(w.alerting.mode(), AlertingHa::Gossip);
    assert!(r.database.condition.status && r.cache.condition.status && r.storage.condition.status);
    assert!(!r.stale());
}

#[test]
fn plugin_hash_ignores_order() {
    let a = plugin_set("g", &article().spec, "claim-1").expect("set");
    let mut spec = article().spec;
    spec.plugins.as_mut().expect("plugins").install =
        Some(vec!["a-panel@2.0.0".into(), "b-panel@1.0.0".into()]);
    assert_eq!(plugin_set("g", &spec, "claim-1").expect("set").hash, a.hash);
    assert_ne!(
        plugin_set("g", &spec, "claim-2").expect("set").hash,
        a.hash,
        "the same list on a new volume is installed again"
    );
    spec.plugins.as_mut().expect("plugins").install = Some(vec!["a-panel@2.0.1".into()]);
    assert_ne!(plugin_set("g", &spec, "claim-1").expect("set").hash, a.hash);
}

#[test]
fn ambiguous_database_names_every_arn_and_builds_nothing() {
    let mut obs = found();
    obs.database = Some(Discovered::Lookup(Lookup::Ambiguous {
        arns: vec!["arn:a".into(), "arn:b".into()],
    }));
    let r = resolve(&article(), &obs);
    assert!(r.plan.is_none());
    assert_eq!(r.database.condition.reason, Reason::Ambiguous);
    assert!(r.database.condition.message.contains("arn:a, arn:b"));
    assert!(
        r.database
            .condition
            .message
            .contains("grafana-ha.io/cluster=demo")
    );
}

#[test]
fn not_found_and_creating_are_distinct() {
    let mut obs = found();
    obs.database = Some(Discovered::Lookup(Lookup::NotFound { candidates: 4 }));
    let r = resolve(&article(), &obs);
    assert_eq!(r.database.condition.reason, Reason::NotFound);
    assert!(r.database.condition.message.contains("among 4"));
    obs.database = Some(Discovered::Lookup(Lookup::NotReady {
        arn: "arn:db".into(),
        state: "creating".into(),
    }));
    let r = resolve(&article(), &obs);
    assert_eq!(r.database.condition.reason, Reason::NotReady);
    assert!(r.database.condition.message.contains("creating"));
}

#[test]
fn aws_failure_after_setup_keeps_last_good_target() {
    let mut gc = article();
    let first = resolve(&gc, &found());
    gc.status = Some(crate::api::GrafanaClusterStatus {
        database: Some(first.database.target.clone().expect("db")),
        cache: Some(first.cache.target.clone().expect("cache")),
        storage: Some(first.storage.target.clone().expect("storage")),
        ..Default::default()
    });
    let mut obs = found();
    obs.database = Some(Discovered::Failed {
        reason: Reason::AwsThrottled,
        message: "rds DescribeDBInstances throttled".into(),
    });
    let r = resolve(&gc, &obs);
    assert!(r.stale());
    assert_eq!(r.database.condition.reason, Reason::AwsThrottled);
    assert!(
        r.database
            .condition
            .message
            .contains("keeping the last good configuration")
    );
    let w = r.plan.expect("wiring from last good");
    assert_eq!(w, first.plan.expect("first wiring"));
}

#[test]
fn aws_failure_before_setup_builds_nothing() {
    let mut obs = found();
    obs.storage = Some(Discovered::Failed {
        reason: Reason::AwsUnavailable,
        message: "efs 500".into(),
    });
    let r = resolve(&article(), &obs);
    assert!(r.plan.is_none());
    assert!(!r.storage.condition.status);
    assert!(!r.stale());
}

#[test]
fn cache_with_auth_needs_a_token_secret() {
    let mut gc = article();
    gc.spec.cache = None;
    let r = resolve(&gc, &found());
    assert_eq!(r.cache.condition.reason, Reason::AuthTokenRequired);
    assert!(r.plan.is_none());
}

#[test]
fn disabled_cache_needs_no_discovery() {
    let mut gc = article();
    gc.spec.cache = Some(Box::new(crate::api::CacheSpec {
        enabled: Some(false),
        ..Default::default()
    }));
    let mut obs = found();
    obs.cache = None;
    let r = resolve(&gc, &obs);
    assert!(r.plan.expect("wiring").cache.is_none());
    assert_eq!(r.cache.condition.reason, Reason::Disabled);
}

#[test]
fn redis_alerting_without_redis_falls_back_to_gossip() {
    let mut gc = article();
    gc.spec.alerting = Some(crate::api::AlertingSpec {
        ha: Some(AlertingHa::Redis),
    });
    gc.spec.cache = None;
    let mut obs = found();
    let mut memcached = cache();
    memcached.engine = CacheEngine::Memcached;
    memcached.auth_token_enabled = false;
    memcached.transit_encryption = false;
    obs.cache = Some(Discovered::Lookup(Lookup::Found(memcached)));
    let w = resolve(&gc, &obs).plan.expect("wiring");
    assert_eq!(w.alerting.mode(), AlertingHa::Gossip);
    assert!(!w.cache.expect("cache").status.tls, "memcached has no TLS");
}

#[test]
fn engine_mismatch_is_reported() {
    let mut gc = article();
    gc.spec.database.as_mut().expect("db").engine = Some(DatabaseEngine::Mysql);
    let r = resolve(&gc, &found());
    assert_eq!(r.database.condition.reason, Reason::EngineMismatch);
}

#[test]
fn managed_secret_must_exist_on_the_database() {
    let mut obs = found();
    let mut facts = db();
    facts.managed_secret_arn = None;
    obs.database = Some(Discovered::Lookup(Lookup::Found(facts)));
    let r = resolve(&article(), &obs);
    assert_eq!(r.database.condition.reason, Reason::NoManagedSecret);
}

#[test]
fn endpoints_and_storage_class_skip_discovery() {
    let gc = cluster(serde_json::json!({
        "database": {"endpoint": {"host": "mysql.internal", "port": 3306}, "engine": "mysql",
                      "credentials": {"secretRef": {"name": "db", "usernameKey": "u", "passwordKey": "p"}}},
        "cache": {"endpoint": {"host": "memcached.internal", "port": 11211}, "engine": "memcached"},
        "plugins": {"storageClassName": "efs-sc"},
    }));
    let r = resolve(
        &gc,
        &Gathered {
            database: None,
            cache: None,
            storage: None,
            data_sources: Default::default(),
            secrets: fixtures::secret_reads(),
            deployment: None,
            snapshot: crate::facts::SnapshotRead::NotAsked,
            autoscaler_max: None,
            optional_apis: Default::default(),
            now: crate::fixtures::now(),
            service_account_problem: None,
        },
    );
    let w = r.plan.expect("wiring");
    assert_eq!(w.database.ssl_mode, "skip-verify");
    assert_eq!(w.database.status.name, "grafana");
    assert_eq!(w.database.credentials.keys().username_key, "u");
    assert_eq!(
        w.cache.expect("cache").status.engine,
        CacheEngine::Memcached
    );
    assert_eq!(
        w.storage.status.storage_class_name.as_deref(),
        Some("efs-sc")
    );
    assert!(w.storage.volume_handle.is_none());
}

#[test]
fn missing_referenced_secret_blocks_the_rollout() {
    let mut obs = found();
    obs.secrets.problems.cache = Some("Secret redis-auth not found".into());
    let r = resolve(&article(), &obs);
    assert_eq!(r.cache.condition.reason, Reason::SecretNotFound);
    assert!(r.plan.is_none());
}

#[test]
fn merged_selector_lets_component_tags_win() {
    let gc = cluster(serde_json::json!({
        "aws": {"tags": {"app": "grafana", "env": "prod"}},
        "database": {"tags": {"env": "prod-db"}, "credentials": {"rdsManagedSecret": true}},
    }));
    let sel = merged_selector(
        &gc.spec,
        gc.spec.database.as_ref().and_then(|d| d.tags.as_ref()),
    );
    assert_eq!(format_tags(&sel), "app=grafana,env=prod-db");
}

#[test]
fn unresolved_spec_plans_no_generated_secret() {
    let mut obs = found();
    obs.database = Some(Discovered::Lookup(Lookup::NotFound { candidates: 0 }));
    let r = resolve(&article(), &obs);
    assert!(
        r.plan.is_none(),
        "nothing is built, so nothing is generated"
    );
}

#[test]
fn managed_secret_unreadable_keeps_an_existing_copy() {
    let mut obs = found();
    obs.secrets.managed = ManagedSecretRead::Unavailable("sm 500".into());
    let r = resolve(&article(), &obs);
    assert_eq!(r.database.condition.reason, Reason::SecretNotFound);
    assert!(r.database.condition.message.contains("sm 500"));
    assert!(r.plan.is_none());
    obs.secrets.existing = fixtures::all_operator_secrets();
    let plan = resolve(&article(), &obs).plan.expect("copy keeps serving");
    assert!(matches!(
        plan.database.credentials,
        DatabaseCredentials::RdsManaged { current: None, .. }
    ));
}

#[test]
fn generated_secrets_are_new_only_when_read_and_absent() {
    let plan = resolve(&article(), &found()).plan.expect("plan");
    assert!(plan.signing_key.new);
    let mut obs = found();
    obs.secrets.existing = fixtures::all_operator_secrets();
    assert!(
        !resolve(&article(), &obs)
            .plan
            .expect("plan")
            .signing_key
            .new
    );
    obs.secrets = crate::gather::SecretReads::unread(fixtures::fresh());
    obs.secrets.managed = found().secrets.managed;
    assert!(
        !resolve(&article(), &obs)
            .plan
            .expect("plan")
            .signing_key
            .new
    );
}

// The wiring review (shared/notes/grafana-wiring-review.md): one test per refusal.

fn mysql_found() -> Gathered {
    let mut obs = found();
    let mut db = db();
    db.engine = DatabaseEngine::Mysql;
    db.rds_engine = "mysql".into();
    obs.database = fixtures::found(db);
    obs
}

#[test]
fn ssl_mode_is_checked_against_the_engine_discovery_found() {
    let mut gc = article();
    gc.spec.database.as_mut().expect("db").ssl_mode = Some("require".into());
    let r = resolve(&gc, &mysql_found());
    assert_eq!(r.database.condition.reason, Reason::InvalidSslMode);
    assert!(
        r.database
            .condition
            .message
            .contains("spec.database.sslMode require")
    );
    assert!(r.plan.is_none());
}

#[test]
fn verifying_modes_need_a_ca_bundle() {
    for (mode, obs) in [("verify-full", found()), ("true", mysql_found())] {
        let mut gc = article();
        gc.spec.database.as_mut().expect("db").ssl_mode = Some(mode.into());
        let r = resolve(&gc, &obs);
        assert_eq!(
            r.database.condition.reason,
            Reason::CaBundleRequired,
            "{mode}"
        );
        assert!(
            r.database
                .condition
                .message
                .contains("caBundleConfigMapRef")
        );
        gc.spec
            .database
            .as_mut()
            .expect("db")
            .ca_bundle_config_map_ref = Some(crate::api::KeyRef {
            name: "rds-ca".into(),
            key: "global-bundle.pem".into(),
        });
        let plan = resolve(&gc, &obs).plan.expect("plan");
        assert!(matches!(plan.database.ca, Some(DatabaseCa::Bundle(_))));
    }
}

#[test]
fn mysql_skip_verify_without_a_bundle_reads_the_system_bundle() {
    let plan = resolve(&article(), &mysql_found()).plan.expect("plan");
    assert_eq!(plan.database.ssl_mode, "skip-verify");
    assert_eq!(plan.database.ca, Some(DatabaseCa::System));
}

#[test]
fn a_postgres_password_grafana_cannot_quote_is_refused_not_for_mysql() {
    let finding = crate::gather::unquotable("p w", "Secret obs/db key password".into());
    let mut obs = found();
    obs.secrets.unquotable_password = finding.clone();
    let r = resolve(&article(), &obs);
    assert_eq!(r.database.condition.reason, Reason::PasswordNotUsable);
    assert!(
        r.database
            .condition
            .message
            .contains("Secret obs/db key password")
    );
    assert!(
        !r.database.condition.message.contains("p w"),
        "never the value"
    );
    let mut obs = mysql_found();
    obs.secrets.unquotable_password = finding;
    assert!(resolve(&article(), &obs).plan.is_some());
}

#[test]
fn plugins_on_an_efs_root_are_refused_with_what_to_do() {
    let mut obs = found();
    obs.storage = fixtures::found(crate::facts::StorageFacts {
        access_point_id: None,
        ..fixtures::file_system()
    });
    let mut refuse = article();
    if let Some(p) = refuse.spec.plugins.as_mut() {
        p.efs = Some(crate::api::EfsSpec {
            create_access_point: Some(false),
            ..Default::default()
        });
    }
    let r = resolve(&refuse, &obs);
    assert_eq!(r.storage.condition.reason, Reason::AccessPointRequired);
    assert!(r.storage.condition.message.contains("accessPointId"));
    assert!(r.plan.is_none());
    let mut no_plugins = article();
    no_plugins.spec.plugins = None;
    assert!(
        resolve(&no_plugins, &obs).plan.is_some(),
        "reading only is fine"
    );
}

#[test]
fn memcached_with_tls_or_several_nodes_is_refused() {
    let mut gc = article();
    gc.spec.cache = None;
    let memcached = || CacheFacts {
        engine: CacheEngine::Memcached,
        aws_engine: "memcached".into(),
        auth_token_enabled: false,
        transit_encryption: false,
        nodes: 1,
        ..cache()
    };
    let mut obs = found();
    obs.cache = fixtures::found(CacheFacts {
        transit_encryption: true,
        ..memcached()
    });
    let r = resolve(&gc, &obs);
    assert_eq!(r.cache.condition.reason, Reason::Unsupported);
    assert!(r.cache.condition.message.contains("no TLS"));
    obs.cache = fixtures::found(CacheFacts {
        nodes: 3,
        ..memcached()
    });
    let r = resolve(&gc, &obs);
    assert!(r.cache.condition.message.contains("3 nodes"));
    obs.cache = fixtures::found(memcached());
    assert!(resolve(&gc, &obs).plan.is_some());
}

#[test]
fn the_domain_alone_gives_an_https_root_url() {
    let mut gc = article();
    gc.spec.server = Some(Box::new(crate::api::ServerSpec {
        domain: Some("grafana.example.com".into()),
        root_url: None,
    }));
    let plan = resolve(&gc, &found()).plan.expect("plan");
    assert_eq!(
        plan.server.root_url.as_deref(),
        Some("https://grafana.example.com/")
    );
}

#[test]
fn cache_and_alerting_prefixes_are_disjoint() {
    let mut gc = article();
    gc.spec.alerting = Some(crate::api::AlertingSpec {
        ha: Some(AlertingHa::Redis),
    });
    let plan = resolve(&gc, &found()).plan.expect("plan");
    let cache = plan.cache.expect("cache").prefix;
    let AlertingPlan::Redis { prefix, .. } = plan.alerting else {
        panic!("redis alerting");
    };
    assert!(!cache.starts_with(&prefix) && !prefix.starts_with(cache.trim_end_matches(':')));
}

#[test]
fn prometheus_data_sources_bring_their_plugin_unless_the_user_pins_it() {
    let mut spec = article().spec;
    spec.data_sources = serde_json::from_value(serde_json::json!({
        "prometheus": {"tags": {"team": "obs"}}
    }))
    .expect("data sources");
    let set = plugin_set("g", &spec, "claim-1").expect("set");
    let needed = format!(
        "{}@{}",
        super::datasources::AMP_PLUGIN_ID,
        super::datasources::AMP_PLUGIN_VERSION
    );
    assert!(set.plugins.contains(&needed), "{:?}", set.plugins);
    assert!(set.plugins.contains(&"a-panel@2.0.0".to_string()));

    let pinned = format!("{}@3.0.0", super::datasources::AMP_PLUGIN_ID);
    spec.plugins.as_mut().expect("plugins").install = Some(vec![pinned.clone()]);
    let set = plugin_set("g", &spec, "claim-1").expect("set");
    assert_eq!(set.plugins, vec![pinned], "the user's version wins");

    spec.plugins = None;
    spec.data_sources = None;
    assert!(plugin_set("g", &spec, "claim-1").is_none());
}
