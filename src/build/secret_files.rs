//! Secrets reach Grafana as files, never as env values: one read-only projected volume
//! holds every Secret key Grafana reads, and each setting names its file through Grafana's
//! `$__file{path}` expander. An env value would pass through Grafana's `${VAR}` expansion
//! (a password with `$` or `{` would change) and keep a trailing newline; a file is read
//! verbatim and trimmed.

use k8s_openapi::api::core::v1::{
    KeyToPath, ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
};

use crate::api::KeyRef;
use crate::names;
use crate::resolve::{AlertingPlan, CacheConnection, Plan};

/// Name of the projected volume.
pub const VOLUME: &str = "grafana-secrets";
/// Files readable by the pod's group (fsGroup) only.
const FILE_MODE: i32 = 0o440;

/// Every file Grafana may read from the Secrets volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFile {
    DatabaseUser,
    DatabasePassword,
    AdminUser,
    AdminPassword,
    SigningKey,
    CacheConnstr,
    AlertingRedisPassword,
}

impl SecretFile {
    /// The file's path under the volume.
    pub fn path(self) -> &'static str {
        match self {
            SecretFile::DatabaseUser => "database/user",
            SecretFile::DatabasePassword => "database/password",
            SecretFile::AdminUser => "admin/user",
            SecretFile::AdminPassword => "admin/password",
            SecretFile::SigningKey => "security/secret_key",
            SecretFile::CacheConnstr => "cache/connstr",
            SecretFile::AlertingRedisPassword => "alerting/redis_password",
        }
    }

    /// The setting value that makes Grafana read this file.
    pub fn expansion(self) -> String {
        format!("$__file{{{}/{}}}", names::SECRETS_PATH, self.path())
    }
}

fn key(secret: &str, key: &str) -> KeyRef {
    KeyRef {
        name: secret.into(),
        key: key.into(),
    }
}

/// The files of the plan and the Secret key each one holds, in a fixed order.
pub fn files(plan: &Plan) -> Vec<(SecretFile, KeyRef)> {
    let db = plan.database.credentials.keys();
    let admin = plan.admin.keys();
    let mut files = vec![
        (SecretFile::DatabaseUser, key(&db.secret, &db.username_key)),
        (
            SecretFile::DatabasePassword,
            key(&db.secret, &db.password_key),
        ),
        (
            SecretFile::AdminUser,
            key(&admin.secret, &admin.username_key),
        ),
        (
            SecretFile::AdminPassword,
            key(&admin.secret, &admin.password_key),
        ),
        (
            SecretFile::SigningKey,
            key(&plan.signing_key.secret, names::SECRET_KEY_KEY),
        ),
    ];
    if let Some(CacheConnection::Redis { secret, .. }) = plan.cache.as_ref().map(|c| &c.connection)
    {
        files.push((
            SecretFile::CacheConnstr,
            key(secret, names::CACHE_CONNSTR_KEY),
        ));
    }
    if let AlertingPlan::Redis {
        password: Some(password),
        ..
    } = &plan.alerting
    {
        files.push((SecretFile::AlertingRedisPassword, password.clone()));
    }
    files
}

/// The projected volume: one source per Secret, in first-use order; the managed files,
/// then the user's spec.configSecrets under `config/`.
pub fn volume(plan: &Plan) -> Volume {
    let mut sources: Vec<SecretProjection> = Vec::new();
    let managed = files(plan)
        .into_iter()
        .map(|(file, from)| (file.path().to_string(), from));
    let config = plan
        .config
        .secret_settings
        .iter()
        .map(|s| (s.path.clone(), s.from.clone()));
    let ldap = plan
        .config
        .ldap
        .iter()
        .map(|from| (crate::resolve::LDAP_FILE.to_string(), from.clone()));
    for (path, from) in managed.chain(config).chain(ldap) {
        let item = KeyToPath {
            key: from.key.clone(),
            path,
            mode: None,
        };
        match sources.iter_mut().find(|s| s.name == from.name) {
            Some(source) => source.items.get_or_insert_with(Vec::new).push(item),
            None => sources.push(SecretProjection {
                name: from.name.clone(),
                items: Some(vec![item]),
                optional: Some(false),
            }),
        }
    }
    Volume {
        name: VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(FILE_MODE),
            sources: Some(
                sources
                    .into_iter()
                    .map(|secret| VolumeProjection {
                        secret: Some(secret),
                        ..VolumeProjection::default()
                    })
                    .collect(),
            ),
        }),
        ..Volume::default()
    }
}

pub fn mount() -> VolumeMount {
    VolumeMount {
        name: VOLUME.into(),
        mount_path: names::SECRETS_PATH.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn every_secret_file_comes_from_one_projected_volume() {
        let plan = fixtures::plan();
        let v = volume(&plan);
        let projected = v.projected.expect("projected");
        let paths: Vec<String> = projected
            .sources
            .expect("sources")
            .iter()
            .flat_map(|s| s.secret.clone().expect("secret").items.expect("items"))
            .map(|i| i.path)
            .collect();
        assert_eq!(
            paths,
            vec![
                "database/user",
                "database/password",
                "admin/user",
                "admin/password",
                "security/secret_key",
                "cache/connstr"
            ]
        );
        assert_eq!(projected.default_mode, Some(0o440));
        assert_eq!(mount().read_only, Some(true));
        assert_eq!(
            SecretFile::DatabasePassword.expansion(),
            "$__file{/etc/grafana/secrets/database/password}"
        );
    }
}
