//! Grafana's own settings: `spec.config` (literal ini values), `spec.configSecrets` (values
//! read from Secret keys) and `spec.envFrom`.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::KeyRef;

/// LDAP authentication: Grafana reads its servers from a TOML file (auth.ldap.config_file).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapSpec {
    /// The Secret key holding ldap.toml. It is mounted read-only into the pods and
    /// auth.ldap is turned on with config_file pointing at it; changing it rolls the pods.
    /// Grafana expands $__env{VAR} and $__file{path} inside the file, so the bind password
    /// may stay in the file (it is a Secret) or come from another Secret through envFrom
    /// (bind_password = "$__env{LDAP_BIND_PASSWORD}").
    pub config_secret_ref: KeyRef,
}

/// `{section: {key: value}}`, as in grafana.ini.
pub type ConfigSections = BTreeMap<String, BTreeMap<String, String>>;

/// `{section: {key: {name, key}}}`: each value read from a Secret key.
pub type ConfigSecretSections = BTreeMap<String, BTreeMap<String, KeyRef>>;

/// Key-name fragments whose literal value would put a secret into the Deployment (the
/// families of the spec.env rule, narrowed to key names: `token_url` and
/// `use_refresh_token` are not secrets). An expansion (`$__file{...}`, `$__env{...}`,
/// `$__vault{...}`, `${VAR}`) is not a literal and passes.
pub const SECRET_LOOKING: &[&str] = &["password", "secret", "connstr", "api_key", "auth_token"];

/// The exact keys the CRD's CEL rule checks at admission. CEL cannot afford a pattern over
/// every key of a map (the API server's cost estimate assumes unbounded key names), so
/// admission catches the common keys and [`validate`] catches every key with a
/// [`SECRET_LOOKING`] fragment before anything is applied.
const SECRET_KEYS_AT_ADMISSION: &[&str] = &[
    "password",
    "client_secret",
    "secret",
    "secret_key",
    "bind_password",
    "connstr",
    "api_key",
    "auth_token",
];

/// A value Grafana expands rather than a literal.
fn is_expansion(value: &str) -> bool {
    ["$__file{", "$__env{", "$__vault{", "${"]
        .iter()
        .any(|p| value.starts_with(p))
}

/// The schema of `spec.config`: bounded maps of bounded strings with the
/// secret-looking-literal rule on each section.
pub(super) fn config_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let keys = SECRET_KEYS_AT_ADMISSION
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let rule = format!(
        "[{keys}].all(n, !(n in self) || self[n] == '' || self[n].matches('^[$](__(file|env|vault))?[{{]'))"
    );
    schemars::json_schema!({
        "type": "object",
        "description": "Grafana settings as {section: {key: value}}, any section of grafana.ini (e.g. smtp, auth.generic_oauth, database for pool settings such as conn_max_lifetime). Each reaches Grafana as the env var GF_<SECTION>_<KEY> (upper case, . and - as _), which Grafana applies only to keys its ini files know: a key the pinned Grafana's defaults.ini lacks is reported in the ConfigResolved condition. Keys the operator sets from other fields are refused, naming the field. Secret-looking keys (password, secret, connstr, api_key, auth_token) take no literal value: use configSecrets, or an expansion such as $__file{/path} or $__env{VAR}.",
        "maxProperties": 64,
        "additionalProperties": {
            "type": "object",
            "maxProperties": 128,
            "additionalProperties": {"type": "string", "maxLength": 4096},
            "x-kubernetes-validations": [{
                "rule": rule,
                "message": "spec.config: a secret-looking key must not hold a literal value: use spec.configSecrets (a Secret key) or $__file{}/$__env{}"
            }]
        }
    })
}

/// The schema of `spec.configSecrets`.
pub(super) fn config_secrets_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let key_ref = generator.subschema_for::<KeyRef>();
    schemars::json_schema!({
        "type": "object",
        "description": "Grafana settings read from Secret keys, as {section: {key: {name, key}}} (e.g. auth.generic_oauth client_secret, smtp password). The operator mounts each key as a file of the pods' read-only Secrets volume and points the setting at it with $__file{}, so no value appears in the Deployment and a value with $ or { reaches Grafana intact. Changing the Secret's data rolls the pods; changing only its labels or annotations does not. A key may not also be in spec.config.",
        "maxProperties": 32,
        "additionalProperties": {
            "type": "object",
            "maxProperties": 64,
            "additionalProperties": key_ref
        }
    })
}

/// What only Rust can check of the configuration: keys the operator sets (by exact env
/// name, so `Database.HOST` is caught like `database.host`), a key set twice (config and
/// configSecrets, or config and env), names Grafana cannot map, envFrom entries naming
/// nothing.
pub(super) fn validate(
    spec: &super::GrafanaClusterSpec,
    out: &mut Vec<super::validation::Violation>,
) {
    use crate::settings::{env_controlled_by, env_name_of};
    let mut refuse =
        |field: String, message: String| out.push(super::validation::Violation { field, message });
    let literal = spec.config.iter().flatten().flat_map(|(section, keys)| {
        keys.keys()
            .map(move |key| ("spec.config", section.as_str(), key.as_str()))
    });
    let secret = spec
        .config_secrets
        .iter()
        .flatten()
        .flat_map(|(section, keys)| {
            keys.keys()
                .map(move |key| ("spec.configSecrets", section.as_str(), key.as_str()))
        });
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (field, section, key) in literal.chain(secret) {
        let path = format!("{field}.{section}.{key}");
        if !valid_name(section) || !valid_name(key) {
            refuse(
                path,
                "sections and keys are letters, digits, '.', '_' and '-' (as in grafana.ini)"
                    .into(),
            );
            continue;
        }
        let env = env_name_of(section, key);
        if spec.ldap.is_some()
            && ["GF_AUTH_LDAP_ENABLED", "GF_AUTH_LDAP_CONFIG_FILE"].contains(&env.as_str())
        {
            refuse(
                path.clone(),
                format!("[{section}] {key} is set by the operator from spec.ldap; remove it here"),
            );
        }
        let value = spec
            .config
            .as_ref()
            .and_then(|c| c.get(section))
            .and_then(|keys| keys.get(key))
            .filter(|_| field == "spec.config");
        if let Some(value) = value
            && !value.is_empty()
            && !is_expansion(value)
            && SECRET_LOOKING
                .iter()
                .any(|f| key.to_ascii_lowercase().contains(f))
        {
            refuse(
                path.clone(),
                "a secret-looking key must not hold a literal value: use spec.configSecrets (a Secret key) or $__file{}/$__env{}".into(),
            );
        }
        if let Some(controller) = env_controlled_by(&env) {
            refuse(
                path.clone(),
                format!("[{section}] {key} is set by the operator from {controller}; set it there"),
            );
        }
        if let Some(first) = seen.insert(env.clone(), path.clone()) {
            refuse(
                path.clone(),
                format!("{first} already sets this setting ({env}); set it once"),
            );
        }
        if let Some(i) = spec
            .env
            .iter()
            .flatten()
            .position(|e| e.name == env || e.name == format!("{env}__FILE"))
        {
            refuse(
                path,
                format!("spec.env[{i}] already sets this setting as {env}; set it in one place"),
            );
        }
    }
    if spec.ldap.is_some() {
        for (i, e) in spec.env.iter().flatten().enumerate() {
            if ["GF_AUTH_LDAP_ENABLED", "GF_AUTH_LDAP_CONFIG_FILE"].contains(&e.name.as_str()) {
                refuse(
                    format!("spec.env[{i}].name"),
                    format!(
                        "{} is set by the operator from spec.ldap; remove it here",
                        e.name
                    ),
                );
            }
        }
    }
    for (i, from) in spec.env_from.iter().flatten().enumerate() {
        if from.config_map_ref.is_some() == from.secret_ref.is_some() {
            refuse(
                format!("spec.envFrom[{i}]"),
                "set exactly one of configMapRef and secretRef".into(),
            );
        }
    }
}

/// A grafana.ini section or key name: what an env var name and Grafana's ini parser both
/// carry without surprise.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::super::GrafanaCluster;
    use super::super::validation::validate;

    fn messages(extra: serde_json::Value) -> Vec<String> {
        let mut spec = serde_json::json!({
            "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": spec,
        }))
        .expect("spec");
        validate(&gc).iter().map(ToString::to_string).collect()
    }

    fn refused(extra: serde_json::Value, needle: &str) {
        let msgs = messages(extra);
        assert!(
            msgs.iter().any(|m| m.contains(needle)),
            "expected {needle:?} in {msgs:?}"
        );
    }

    #[test]
    fn oauth_smtp_and_pool_settings_are_accepted() {
        let msgs = messages(serde_json::json!({
            "config": {
                "auth.generic_oauth": {
                    "enabled": "true", "client_id": "grafana",
                    "auth_url": "https://idp/authorize", "token_url": "https://idp/token",
                    "api_url": "https://idp/userinfo", "use_refresh_token": "true",
                },
                "smtp": {"enabled": "true", "host": "smtp:587", "user": "grafana",
                          "password": "$__env{SMTP_PASSWORD}"},
                "database": {"conn_max_lifetime": "3600"},
            },
            "configSecrets": {
                "auth.generic_oauth": {"client_secret": {"name": "oauth", "key": "client-secret"}},
            },
            "env": [{"name": "GF_DATABASE_CONN_MAX_LIFETIME__X", "value": "1"}],
            "envFrom": [{"secretRef": {"name": "smtp"}}],
        }));
        assert_eq!(msgs, Vec::<String>::new());
    }

    /// The examples of README's Configuration section are valid as written.
    #[test]
    fn the_readme_examples_are_valid() {
        let readme = include_str!("../../README.md");
        let start = readme.find("## Configuration").expect("section");
        let section = &readme[start..];
        let end = section[3..].find("\n## ").map_or(section.len(), |e| e + 3);
        let blocks: Vec<&str> = section[..end]
            .split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 2, "the OAuth/SMTP and the LDAP examples");
        for block in blocks {
            let doc: serde_json::Value = serde_yaml::from_str(block).expect("yaml");
            assert_eq!(
                messages(doc["spec"].clone()),
                Vec::<String>::new(),
                "{block}"
            );
        }
    }

    #[test]
    fn managed_keys_are_refused_naming_the_field() {
        refused(
            serde_json::json!({"config": {"database": {"max_open_conn": "10"}}}),
            "spec.config.database.max_open_conn: [database] max_open_conn is set by the operator from spec.database.connectionBudget",
        );
        refused(
            serde_json::json!({"config": {"Database": {"HOST": "x"}}}),
            "from spec.database;",
        );
        refused(
            serde_json::json!({"configSecrets": {"security": {"secret_key": {"name": "s", "key": "k"}}}}),
            "signing key",
        );
        refused(
            serde_json::json!({"env": [{"name": "GF_DATABASE_MAX_OPEN_CONN", "value": "5"}]}),
            "spec.env[0].name: GF_DATABASE_MAX_OPEN_CONN is set by the operator from spec.database.connectionBudget",
        );
        assert_eq!(
            messages(
                serde_json::json!({"env": [{"name": "GF_DATABASE_CONN_MAX_LIFETIME", "value": "5"}]})
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn secret_literals_are_refused() {
        refused(
            serde_json::json!({"config": {"auth.generic_oauth": {"client_secret": "hunter2"}}}),
            "must not hold a literal value",
        );
        refused(
            serde_json::json!({"config": {"smtp": {"password": "hunter2"}}}),
            "must not hold a literal value",
        );
        // Beyond the keys CEL checks at admission: the Rust rule sees every key.
        refused(
            serde_json::json!({"config": {"external_image_storage.s3": {"secret_access_key": "x"}}}),
            "spec.config.external_image_storage.s3.secret_access_key: a secret-looking key",
        );
    }

    #[test]
    fn a_setting_is_set_in_one_place() {
        refused(
            serde_json::json!({
                "config": {"smtp": {"password": "$__env{P}"}},
                "configSecrets": {"smtp": {"password": {"name": "s", "key": "p"}}},
            }),
            "spec.config.smtp.password already sets this setting",
        );
        refused(
            serde_json::json!({
                "config": {"log": {"level": "debug"}},
                "env": [{"name": "GF_LOG_LEVEL", "value": "info"}],
            }),
            "spec.env[0] already sets this setting as GF_LOG_LEVEL",
        );
        refused(
            serde_json::json!({"config": {"log level": {"x": "y"}}}),
            "sections and keys are letters",
        );
        refused(
            serde_json::json!({"envFrom": [{"prefix": "X_"}]}),
            "exactly one of configMapRef and secretRef",
        );
        refused(
            serde_json::json!({
                "ldap": {"configSecretRef": {"name": "ldap", "key": "ldap.toml"}},
                "config": {"auth.ldap": {"config_file": "/x"}},
            }),
            "from spec.ldap",
        );
        assert_eq!(
            messages(serde_json::json!({
                "ldap": {"configSecretRef": {"name": "ldap", "key": "ldap.toml"}},
                "config": {"auth.ldap": {"allow_sign_up": "false"}},
            })),
            Vec::<String>::new()
        );
    }
}
