//! Credentials: where the database user, the admin user and the signing key come from.
//! Decided here once; the gatherer reads what [`references`] lists, the builders wire what
//! the plan holds, and the watches map Secret events through [`referenced_user_secrets`].

use crate::api::GrafanaClusterSpec;
use crate::gather::{Gathered, ManagedSecretRead, OperatorSecret, SecretReads};
use crate::names;

use super::{AdminCredentials, DatabaseCredentials, Generated, SecretKeyPair};

/// Keys of every Secret the operator writes with a user and a password.
const USERNAME_KEY: &str = "username";
const PASSWORD_KEY: &str = "password";

/// The keys of an operator-made user/password Secret.
pub fn generated_pair(secret: &str) -> SecretKeyPair {
    SecretKeyPair {
        secret: secret.to_string(),
        username_key: USERNAME_KEY.into(),
        password_key: PASSWORD_KEY.into(),
    }
}

/// Which part of Grafana reads a Secret: a problem with it blocks that part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretUser {
    Database,
    Cache,
    Admin,
    /// spec.configSecrets and spec.envFrom.
    Config,
}

/// A Secret the pods read, and which of its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretUse {
    pub name: String,
    pub keys: Vec<String>,
    pub user: SecretUser,
    /// Which of `keys` is a password.
    pub password_key: Option<String>,
    /// Made by the operator: when it is missing, the operator creates it.
    pub made_by: Option<OperatorSecret>,
}

enum DatabaseSource {
    User(SecretKeyPair),
    RdsManaged(SecretKeyPair),
}

fn database_source(cluster: &str, spec: &GrafanaClusterSpec) -> DatabaseSource {
    match spec
        .database
        .as_ref()
        .and_then(|d| d.credentials.secret_ref.as_ref())
    {
        Some(r) => DatabaseSource::User(SecretKeyPair {
            secret: r.name.clone(),
            username_key: r.username_key.clone(),
            password_key: r.password_key.clone(),
        }),
        None => DatabaseSource::RdsManaged(generated_pair(&names::db_credentials_secret(cluster))),
    }
}

fn admin_source(cluster: &str, spec: &GrafanaClusterSpec) -> Result<SecretKeyPair, SecretKeyPair> {
    match spec
        .admin_credentials
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
    {
        Some(r) => Ok(SecretKeyPair {
            secret: r.name.clone(),
            username_key: r.username_key.clone(),
            password_key: r.password_key.clone(),
        }),
        None => Err(generated_pair(&names::admin_secret(cluster))),
    }
}

/// The database credentials, or why they cannot be used now.
pub fn database(
    cluster: &str,
    spec: &GrafanaClusterSpec,
    gathered: &Gathered,
) -> Result<DatabaseCredentials, String> {
    let secrets = &gathered.secrets;
    match database_source(cluster, spec) {
        DatabaseSource::User(keys) => Ok(DatabaseCredentials::UserSecret(keys)),
        DatabaseSource::RdsManaged(copy) => match &secrets.managed {
            ManagedSecretRead::Read(current) => Ok(DatabaseCredentials::RdsManaged {
                copy,
                current: Some(current.clone()),
            }),
            // Secrets Manager failed, and no copy exists to keep serving.
            ManagedSecretRead::Unavailable(error)
                if !secrets
                    .existing
                    .contains(&OperatorSecret::DatabaseCredentials) =>
            {
                Err(format!(
                    "cannot read the RDS-managed master user secret: {error}"
                ))
            }
            ManagedSecretRead::Unavailable(_) | ManagedSecretRead::NotAsked => {
                Ok(DatabaseCredentials::RdsManaged {
                    copy,
                    current: None,
                })
            }
        },
    }
}

/// The initial admin user.
pub fn admin(cluster: &str, spec: &GrafanaClusterSpec, secrets: &SecretReads) -> AdminCredentials {
    match admin_source(cluster, spec) {
        Ok(keys) => AdminCredentials::UserSecret(keys),
        Err(keys) => AdminCredentials::Generated(Generated {
            secret: keys.secret,
            value: secrets.fresh.admin_password.clone(),
            new: secrets.read && !secrets.existing.contains(&OperatorSecret::AdminCredentials),
        }),
    }
}

/// The shared signing key, generated once.
pub fn signing_key(cluster: &str, secrets: &SecretReads) -> Generated {
    Generated {
        secret: names::secret_key_secret(cluster),
        value: secrets.fresh.signing_key.clone(),
        new: secrets.read && !secrets.existing.contains(&OperatorSecret::SigningKey),
    }
}

/// Every Secret the pods of `cluster` read, with its keys.
pub fn references(cluster: &str, spec: &GrafanaClusterSpec) -> Vec<SecretUse> {
    let pair = |keys: SecretKeyPair, user, made_by| SecretUse {
        name: keys.secret,
        keys: vec![keys.username_key, keys.password_key.clone()],
        user,
        password_key: Some(keys.password_key),
        made_by,
    };
    let mut uses = vec![match database_source(cluster, spec) {
        DatabaseSource::User(keys) => pair(keys, SecretUser::Database, None),
        DatabaseSource::RdsManaged(keys) => pair(
            keys,
            SecretUser::Database,
            Some(OperatorSecret::DatabaseCredentials),
        ),
    }];
    if super::cache_enabled(spec) {
        if let Some(r) = spec
            .cache
            .as_ref()
            .and_then(|c| c.auth_token_secret_ref.as_ref())
        {
            uses.push(SecretUse {
                name: r.name.clone(),
                keys: vec![r.key.clone()],
                user: SecretUser::Cache,
                password_key: Some(r.key.clone()),
                made_by: None,
            });
        }
        // The connection string, and the trimmed AUTH token for alerting over Redis.
        let mut keys = vec![names::CACHE_CONNSTR_KEY.to_string()];
        if spec
            .cache
            .as_ref()
            .is_some_and(|c| c.auth_token_secret_ref.is_some())
        {
            keys.push(names::CACHE_PASSWORD_KEY.to_string());
        }
        uses.push(SecretUse {
            name: names::cache_secret(cluster),
            keys,
            user: SecretUser::Cache,
            password_key: None,
            made_by: Some(OperatorSecret::CacheConnection),
        });
    }
    uses.push(match admin_source(cluster, spec) {
        Ok(keys) => pair(keys, SecretUser::Admin, None),
        Err(keys) => pair(
            keys,
            SecretUser::Admin,
            Some(OperatorSecret::AdminCredentials),
        ),
    });
    uses.push(SecretUse {
        name: names::secret_key_secret(cluster),
        keys: vec![names::SECRET_KEY_KEY.into()],
        user: SecretUser::Admin,
        password_key: None,
        made_by: Some(OperatorSecret::SigningKey),
    });
    // spec.configSecrets and spec.ldap, one use per Secret with every key it gives.
    let ldap = spec.ldap.iter().map(|l| &l.config_secret_ref);
    for from in spec
        .config_secrets
        .iter()
        .flatten()
        .flat_map(|(_, keys)| keys.values())
        .chain(ldap)
    {
        {
            match uses
                .iter_mut()
                .find(|u| u.user == SecretUser::Config && u.name == from.name)
            {
                Some(u) if u.keys.contains(&from.key) => {}
                Some(u) => u.keys.push(from.key.clone()),
                None => uses.push(SecretUse {
                    name: from.name.clone(),
                    keys: vec![from.key.clone()],
                    user: SecretUser::Config,
                    password_key: None,
                    made_by: None,
                }),
            }
        }
    }
    uses
}

/// Names of the user Secrets `cluster` references (for mapping Secret events to clusters).
/// Includes the Secrets spec.envFrom reads whole.
pub fn referenced_user_secrets(cluster: &str, spec: &GrafanaClusterSpec) -> Vec<String> {
    references(cluster, spec)
        .into_iter()
        .filter(|u| u.made_by.is_none())
        .map(|u| u.name)
        .chain(
            super::config::env_from_objects(spec)
                .into_iter()
                .filter(|o| !o.config_map)
                .map(|o| o.name),
        )
        .collect()
}
