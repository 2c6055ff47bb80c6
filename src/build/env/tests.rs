use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;

use super::*;
use crate::api::AlertingHa;
use crate::fixtures;
use crate::resolve::Plan;

fn env_of(plan: &Plan) -> BTreeMap<String, EnvVar> {
    grafana_env(plan)
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect()
}

/// The Secret key a setting reads through its `$__file{}` file.
fn secret_ref(plan: &Plan, e: &EnvVar) -> (String, String) {
    let value = e.value.clone().unwrap_or_default();
    let (_, from) = crate::build::secret_files::files(plan)
        .into_iter()
        .find(|(file, _)| file.expansion() == value)
        .unwrap_or_else(|| panic!("{} is not read from a Secret file: {value:?}", e.name));
    (from.name, from.key)
}

/// The article, with Redis alerting, and with a CA bundle.
fn all_variants() -> Vec<Plan> {
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
        .iter()
        .map(fixtures::plan_of)
        .collect()
}

/// One table drives the env: every GF_ name the builder emits is a managed setting.
#[test]
fn every_emitted_setting_is_in_the_managed_table() {
    let managed: Vec<String> = settings::MANAGED.iter().map(Setting::env_name).collect();
    for plan in all_variants() {
        for e in grafana_env(&plan) {
            if e.name.starts_with("GF_") {
                assert!(
                    managed.contains(&e.name),
                    "{} is not in settings::MANAGED",
                    e.name
                );
                assert!(
                    settings::is_managed_env_name(&e.name),
                    "validation would let spec.env override {}",
                    e.name
                );
            }
        }
    }
}

#[test]
fn no_secret_is_ever_a_literal() {
    for plan in all_variants() {
        for e in grafana_env(&plan) {
            let secretish = ["PASSWORD", "SECRET", "CONNSTR", "_USER"]
                .iter()
                .any(|s| e.name.contains(s));
            let memcached = plan
                .cache
                .as_ref()
                .is_some_and(|c| matches!(c.connection, CacheConnection::Memcached));
            let literal_ok = e.name == settings::REMOTE_CACHE_CONNSTR.env_name() && memcached;
            if secretish && !literal_ok {
                assert!(
                    e.value_from.is_none(),
                    "{} is an env value, not a file",
                    e.name
                );
                secret_ref(&plan, &e);
            }
        }
    }
}

#[test]
fn wires_database_cache_and_keys() {
    let plan = fixtures::plan();
    let env = env_of(&plan);
    let lit = |k: &str| env[k].value.clone().unwrap_or_default();
    assert_eq!(lit("GF_DATABASE_TYPE"), "postgres");
    assert_eq!(lit("GF_DATABASE_HOST"), "grafana-db.rds.local:5432");
    assert_eq!(lit("GF_DATABASE_NAME"), "grafana");
    assert_eq!(lit("GF_DATABASE_SSL_MODE"), "require");
    assert_eq!(
        secret_ref(&plan, &env["GF_DATABASE_PASSWORD"]),
        ("grafana-db-credentials".into(), "password".into())
    );
    assert_eq!(lit("GF_REMOTE_CACHE_TYPE"), "redis");
    assert_eq!(
        secret_ref(&plan, &env["GF_REMOTE_CACHE_CONNSTR"]),
        ("grafana-cache".into(), "connstr".into())
    );
    assert_eq!(lit("GF_REMOTE_CACHE_PREFIX"), "obs/grafana/cache:");
    assert_eq!(
        secret_ref(&plan, &env["GF_SECURITY_SECRET_KEY"]),
        ("grafana-secret-key".into(), "secret_key".into())
    );
    assert_eq!(
        secret_ref(&plan, &env["GF_SECURITY_ADMIN_PASSWORD"]),
        ("grafana-admin".into(), "password".into())
    );
    assert_eq!(lit("GF_SERVER_ROOT_URL"), "https://grafana.example.com/");
    assert_eq!(
        lit("GF_UNIFIED_ALERTING_HA_PEERS"),
        "grafana-alerting.obs.svc:9094"
    );
    assert_eq!(
        lit("GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS"),
        "[$(POD_IP)]:9094",
        "brackets: valid for IPv4, required for IPv6"
    );
    assert_eq!(lit("GF_UNIFIED_ALERTING_HA_LABEL"), "obs/grafana");
    assert_eq!(lit("GF_UNIFIED_ALERTING_HA_RECONNECT_TIMEOUT"), "2m");
    assert_eq!(lit("GF_PLUGINS_PLUGIN_ADMIN_ENABLED"), "false");
    assert_eq!(
        lit("GF_DATABASE_MAX_OPEN_CONN"),
        "337",
        "75% of 1802 (db.r6g.large) over 3 + 1 pods"
    );
    assert_eq!(
        lit("GF_DATABASE_PASSWORD"),
        "$__file{/etc/grafana/secrets/database/password}"
    );
    assert!(!env.keys().any(|k| k.starts_with("GF_SESSION_")));
    assert!(!env.keys().any(|k| k == "GF_INSTALL_PLUGINS"));
    // POD_IP must come before its first use for $(POD_IP) to expand.
    let order: Vec<_> = grafana_env(&plan).into_iter().map(|e| e.name).collect();
    let pod_ip = order.iter().position(|n| n == "POD_IP").expect("POD_IP");
    let listen = order
        .iter()
        .position(|n| n == "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS")
        .expect("listen");
    assert!(pod_ip < listen);
}

#[test]
fn redis_alerting_uses_the_cache() {
    let plan = all_variants().remove(1);
    let env = env_of(&plan);
    assert_eq!(
        env["GF_UNIFIED_ALERTING_HA_REDIS_ADDRESS"].value.as_deref(),
        Some("grafana-cache.cache.local:6379")
    );
    assert_eq!(
        secret_ref(&plan, &env["GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD"]),
        ("grafana-cache".into(), "password".into()),
        "the operator's trimmed copy of the token"
    );
    assert_eq!(
        env["GF_UNIFIED_ALERTING_HA_REDIS_PREFIX"].value.as_deref(),
        Some("obs/grafana/alerting"),
        "disjoint from the cache prefix"
    );
    assert!(!env.contains_key("GF_UNIFIED_ALERTING_HA_PEERS"));
}

#[test]
fn ca_bundle_is_pointed_at() {
    let plan = all_variants().remove(2);
    assert_eq!(
        env_of(&plan)["GF_DATABASE_CA_CERT_PATH"].value.as_deref(),
        Some("/etc/grafana/db-ca/global-bundle.pem")
    );
}

#[test]
fn user_env_comes_last() {
    let mut gc = fixtures::article();
    gc.spec.env = Some(vec![literal("GF_LOG_LEVEL", "debug")]);
    let env = grafana_env(&fixtures::plan_of(&gc));
    assert_eq!(env.last().map(|e| e.name.as_str()), Some("GF_LOG_LEVEL"));
}
