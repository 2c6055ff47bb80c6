//! The Grafana container's environment: every managed setting (named in
//! [`crate::settings`]) from the plan, then the user's extras. Secrets only ever arrive
//! through secretKeyRef.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector};

use super::secret_files::SecretFile;
use crate::api::DatabaseEngine;
use crate::names;
use crate::resolve::{AlertingPlan, CacheConnection, DatabaseCa, Plan};
use crate::settings::{self, Setting};

/// Where a CA bundle for the database is mounted.
pub use crate::names::DB_CA_DIR;
/// The system CA bundle of Grafana's images (Alpine and Ubuntu alike).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// How long a MySQL replica waits for another's migration lock: longer than a first start's
/// migrations take, shorter than the startup probe's 10 minutes.
const MYSQL_LOCK_WAIT_SECONDS: &str = "300";
/// How long a gossip peer that left is tried again: Grafana recommends under 15 minutes on
/// Kubernetes, where a pod IP is soon reused by another pod.
const GOSSIP_RECONNECT_TIMEOUT: &str = "2m";

/// A plain env var (never for secrets).
pub fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn setting(setting: Setting, value: &str) -> EnvVar {
    literal(&setting.env_name(), value)
}

/// An env var read from a Secret key.
pub fn from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
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

/// A setting Grafana reads from a file of the Secrets volume.
fn setting_from_file(setting: Setting, file: SecretFile) -> EnvVar {
    literal(&setting.env_name(), &file.expansion())
}

fn from_field(name: &str, path: &str) -> EnvVar {
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
pub fn grafana_env(plan: &Plan) -> Vec<EnvVar> {
    // Declared first so $(POD_IP) below expands.
    let mut env = vec![
        from_field(settings::POD_IP, "status.podIP"),
        setting(settings::PATHS_PLUGINS, names::PLUGINS_PATH),
        // Replicas must not write into the shared volume: the installer Job is its only
        // writer, so no preinstall and no installing from the plugin catalog.
        setting(settings::PLUGINS_PREINSTALL_DISABLED, "true"),
        setting(settings::PLUGINS_PLUGIN_ADMIN_ENABLED, "false"),
    ];
    env.extend(database_env(plan));
    env.extend(cache_env(plan));
    env.extend([
        setting_from_file(settings::SECURITY_SECRET_KEY, SecretFile::SigningKey),
        setting_from_file(settings::SECURITY_ADMIN_USER, SecretFile::AdminUser),
        setting_from_file(settings::SECURITY_ADMIN_PASSWORD, SecretFile::AdminPassword),
    ]);
    let server = &plan.server;
    if let Some(domain) = &server.domain {
        env.push(setting(settings::SERVER_DOMAIN, domain));
    }
    if let Some(root_url) = &server.root_url {
        env.push(setting(settings::SERVER_ROOT_URL, root_url));
    }
    if server.serve_from_sub_path {
        env.push(setting(settings::SERVER_SERVE_FROM_SUB_PATH, "true"));
    }
    env.push(setting(
        settings::AUTH_BASIC_ENABLED,
        &server.basic_auth.to_string(),
    ));
    env.push(setting(
        settings::AUTH_ANONYMOUS_ENABLED,
        &server.anonymous_auth.to_string(),
    ));
    env.extend(alerting_env(&plan.alerting));
    env.extend(config_env(plan));
    env.extend(plan.pod.extra_env.iter().cloned());
    env
}

/// The user's settings (validation keeps them apart from the managed ones): literals as
/// given, secrets through `$__file{}` on the Secrets volume (see resolve/config.rs).
fn config_env(plan: &Plan) -> Vec<EnvVar> {
    let config = &plan.config;
    let literals = config
        .settings
        .iter()
        .map(|(name, value)| literal(name, value));
    let files = config.secret_settings.iter().map(|s| {
        literal(
            &s.env,
            &format!("$__file{{{}/{}}}", names::SECRETS_PATH, s.path),
        )
    });
    // ldap.toml from its Secret (spec.ldap): Grafana expands $__env{}/$__file{} in it too.
    let ldap = config.ldap.iter().flat_map(|_| {
        [
            literal("GF_AUTH_LDAP_ENABLED", "true"),
            literal(
                "GF_AUTH_LDAP_CONFIG_FILE",
                &format!("{}/{}", names::SECRETS_PATH, crate::resolve::LDAP_FILE),
            ),
        ]
    });
    literals.chain(files).chain(ldap).collect()
}

fn database_env(plan: &Plan) -> Vec<EnvVar> {
    let db = &plan.database;
    let mut env = vec![
        setting(
            settings::DATABASE_TYPE,
            match db.status.engine {
                DatabaseEngine::Postgres => "postgres",
                DatabaseEngine::Mysql => "mysql",
            },
        ),
        setting(settings::DATABASE_HOST, &db.status.endpoint),
        setting(settings::DATABASE_NAME, &db.status.name),
        setting_from_file(settings::DATABASE_USER, SecretFile::DatabaseUser),
        setting_from_file(settings::DATABASE_PASSWORD, SecretFile::DatabasePassword),
        setting(settings::DATABASE_SSL_MODE, &db.ssl_mode),
        // Every replica migrates at start; the lock keeps them from doing it at once.
        // Postgres' loser exits and restarts; MySQL's waits for the lock.
        setting(settings::DATABASE_MIGRATION_LOCKING, "true"),
        setting(
            settings::DATABASE_MAX_OPEN_CONN,
            &db.pool.max_open.to_string(),
        ),
        setting(
            settings::DATABASE_MAX_IDLE_CONN,
            &db.pool.max_idle.to_string(),
        ),
    ];
    if db.status.engine == DatabaseEngine::Mysql {
        env.push(setting(
            settings::DATABASE_LOCKING_ATTEMPT_TIMEOUT_SEC,
            MYSQL_LOCK_WAIT_SECONDS,
        ));
    }
    match &db.ca {
        Some(DatabaseCa::Bundle(ca)) => {
            env.push(setting(
                settings::DATABASE_CA_CERT_PATH,
                &format!("{DB_CA_DIR}/{}", ca.key),
            ));
            if db.status.engine == DatabaseEngine::Mysql {
                env.push(setting(
                    settings::DATABASE_SERVER_CERT_NAME,
                    &db.status.host,
                ));
            }
        }
        Some(DatabaseCa::System) => {
            env.push(setting(settings::DATABASE_CA_CERT_PATH, SYSTEM_CA_FILE))
        }
        None => {}
    }
    env
}

fn cache_env(plan: &Plan) -> Vec<EnvVar> {
    let Some(cache) = &plan.cache else {
        return vec![setting(settings::REMOTE_CACHE_TYPE, "database")];
    };
    let mut env = match &cache.connection {
        CacheConnection::Redis { .. } => vec![
            setting(settings::REMOTE_CACHE_TYPE, "redis"),
            setting_from_file(settings::REMOTE_CACHE_CONNSTR, SecretFile::CacheConnstr),
        ],
        CacheConnection::Memcached => vec![
            setting(settings::REMOTE_CACHE_TYPE, "memcached"),
            setting(settings::REMOTE_CACHE_CONNSTR, &cache.status.endpoint),
        ],
    };
    env.push(setting(settings::REMOTE_CACHE_PREFIX, &cache.prefix));
    env
}

fn alerting_env(alerting: &AlertingPlan) -> Vec<EnvVar> {
    match alerting {
        AlertingPlan::Gossip { peers, label, .. } => {
            // Brackets: valid for IPv4 and required for IPv6 (EKS IPv6 clusters); the
            // gossip library splits host and port with the standard rules.
            let gossip = format!("[$({})]:{}", settings::POD_IP, names::GOSSIP_PORT);
            vec![
                setting(settings::ALERTING_HA_PEERS, peers),
                setting(settings::ALERTING_HA_LABEL, label),
                setting(
                    settings::ALERTING_HA_RECONNECT_TIMEOUT,
                    GOSSIP_RECONNECT_TIMEOUT,
                ),
                setting(settings::ALERTING_HA_LISTEN_ADDRESS, &gossip),
                setting(settings::ALERTING_HA_ADVERTISE_ADDRESS, &gossip),
            ]
        }
        AlertingPlan::Redis {
            address,
            prefix,
            tls,
            password,
        } => {
            let mut env = vec![
                setting(settings::ALERTING_HA_REDIS_ADDRESS, address),
                setting(settings::ALERTING_HA_REDIS_PREFIX, prefix),
                setting(settings::ALERTING_HA_REDIS_TLS_ENABLED, &tls.to_string()),
            ];
            if password.is_some() {
                env.push(setting_from_file(
                    settings::ALERTING_HA_REDIS_PASSWORD,
                    SecretFile::AlertingRedisPassword,
                ));
            }
            env
        }
        AlertingPlan::Off => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
