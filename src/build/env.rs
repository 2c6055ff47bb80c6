//! The Grafana container's environment: every managed setting (named in
//! [`crate::settings`]) from the plan, then the user's extras. Secrets only ever arrive
//! through secretKeyRef.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, SecretKeySelector};

use crate::api::DatabaseEngine;
use crate::names;
use crate::resolve::{AlertingPlan, CacheConnection, Plan, SecretKeyPair};
use crate::settings::{self, Setting};

/// Where a CA bundle for the database is mounted.
pub const DB_CA_DIR: &str = "/etc/grafana/db-ca";

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

fn setting_from_secret(setting: Setting, secret: &str, key: &str) -> EnvVar {
    from_secret(&setting.env_name(), secret, key)
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
        // Replicas must not install anything into the shared volume themselves.
        setting(settings::PLUGINS_PREINSTALL_DISABLED, "true"),
    ];
    env.extend(database_env(plan));
    env.extend(cache_env(plan));
    let admin = plan.admin.keys();
    env.extend([
        setting_from_secret(
            settings::SECURITY_SECRET_KEY,
            &plan.signing_key.secret,
            names::SECRET_KEY_KEY,
        ),
        setting_from_secret(
            settings::SECURITY_ADMIN_USER,
            &admin.secret,
            &admin.username_key,
        ),
        setting_from_secret(
            settings::SECURITY_ADMIN_PASSWORD,
            &admin.secret,
            &admin.password_key,
        ),
    ]);
    let server = &plan.server;
    if let Some(domain) = &server.domain {
        env.push(setting(settings::SERVER_DOMAIN, domain));
    }
    if let Some(root_url) = &server.root_url {
        env.push(setting(settings::SERVER_ROOT_URL, root_url));
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
    env.extend(plan.pod.extra_env.iter().cloned());
    env
}

fn database_env(plan: &Plan) -> Vec<EnvVar> {
    let db = &plan.database;
    let SecretKeyPair {
        secret,
        username_key,
        password_key,
    } = db.credentials.keys();
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
        setting_from_secret(settings::DATABASE_USER, secret, username_key),
        setting_from_secret(settings::DATABASE_PASSWORD, secret, password_key),
        setting(settings::DATABASE_SSL_MODE, &db.ssl_mode),
        // Every replica migrates at start; the lock keeps them from doing it at once.
        setting(settings::DATABASE_MIGRATION_LOCKING, "true"),
    ];
    if let Some(ca) = &db.ca_bundle {
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
    env
}

fn cache_env(plan: &Plan) -> Vec<EnvVar> {
    let Some(cache) = &plan.cache else {
        return vec![setting(settings::REMOTE_CACHE_TYPE, "database")];
    };
    let mut env = match &cache.connection {
        CacheConnection::Redis { secret, .. } => vec![
            setting(settings::REMOTE_CACHE_TYPE, "redis"),
            setting_from_secret(
                settings::REMOTE_CACHE_CONNSTR,
                secret,
                names::CACHE_CONNSTR_KEY,
            ),
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
        AlertingPlan::Gossip { peers, .. } => {
            let gossip = format!("$({}):{}", settings::POD_IP, names::GOSSIP_PORT);
            vec![
                setting(settings::ALERTING_HA_PEERS, peers),
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
            if let Some(token) = password {
                env.push(setting_from_secret(
                    settings::ALERTING_HA_REDIS_PASSWORD,
                    &token.name,
                    &token.key,
                ));
            }
            env
        }
        AlertingPlan::Off => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
