//! Grafana's own settings from `spec.config`, `spec.configSecrets` and `spec.envFrom`.
//!
//! Delivery: every setting is an env var `GF_<SECTION>_<KEY>`, like the managed wiring, and
//! not a generated grafana.ini. Grafana loads defaults.ini, then the image's grafana.ini,
//! then applies `GF_*` overrides to every key those files have (pkg/setting, setting.go
//! `applyEnvVariableOverrides`), then expands `$__file{}`/`$__env{}`/`${}` in every value.
//! Env keeps each setting visible in the Deployment (and in `render`), needs no extra child
//! or RBAC, and ranks above any ini file, so the managed settings can never be undone by a
//! user's file. Its one limit, a key missing from Grafana's ini files is ignored, is
//! reported: keys the pinned Grafana's defaults.ini lacks are named in the ConfigResolved
//! condition instead of being silently dropped (they are not refused: a newer image may
//! know them).
//!
//! Secret values are files of the pods' read-only Secrets volume, named by `$__file{}`, as
//! the managed credentials are: an env value from secretKeyRef would pass through Grafana's
//! `${VAR}` expansion (a client secret with `$` would change) and keep a trailing newline;
//! `$__file{}` reads the file as it is and trims it.

use k8s_openapi::api::core::v1::EnvFromSource;

use crate::api::{GrafanaClusterSpec, KeyRef};
use crate::gather::SecretProblems;
use crate::settings::{env_name_of, known_key};
use crate::status::{ConditionState, Reason};

/// A setting whose value Grafana reads from a file of the Secrets volume.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretSetting {
    /// `GF_<SECTION>_<KEY>`.
    pub env: String,
    /// The file's path under the Secrets volume, `config/<section>/<key>`.
    pub path: String,
    pub from: KeyRef,
}

/// The user's configuration, ready for the builders.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigPlan {
    /// `(GF_<SECTION>_<KEY>, value)`, in section and key order.
    pub settings: Vec<(String, String)>,
    pub secret_settings: Vec<SecretSetting>,
    pub env_from: Vec<EnvFromSource>,
    /// `section.key` of the settings the pinned Grafana's defaults.ini lacks.
    pub unknown_keys: Vec<String>,
    /// The Secret key holding ldap.toml (spec.ldap).
    pub ldap: Option<KeyRef>,
}

/// Where ldap.toml lands under the Secrets volume.
pub const LDAP_FILE: &str = "ldap/ldap.toml";

pub fn plan(spec: &GrafanaClusterSpec) -> ConfigPlan {
    let mut plan = ConfigPlan {
        env_from: spec.env_from.clone().unwrap_or_default(),
        ldap: spec.ldap.as_ref().map(|l| l.config_secret_ref.clone()),
        ..ConfigPlan::default()
    };
    for (section, keys) in spec.config.iter().flatten() {
        for (key, value) in keys {
            plan.settings
                .push((env_name_of(section, key), value.clone()));
        }
    }
    for (section, keys) in spec.config_secrets.iter().flatten() {
        for (key, from) in keys {
            plan.secret_settings.push(SecretSetting {
                env: env_name_of(section, key),
                path: format!("config/{section}/{key}"),
                from: from.clone(),
            });
        }
    }
    let literal = spec.config.iter().flatten();
    let secret = spec
        .config_secrets
        .iter()
        .flatten()
        .map(|(s, keys)| (s, keys.keys().cloned().collect::<Vec<_>>()));
    let mut unknown: Vec<String> = literal
        .map(|(s, keys)| (s, keys.keys().cloned().collect::<Vec<_>>()))
        .chain(secret)
        .flat_map(|(s, keys)| {
            keys.into_iter()
                .filter(|k| !known_key(s, k))
                .map(|k| format!("{s}.{k}"))
                .collect::<Vec<_>>()
        })
        .collect();
    unknown.sort();
    plan.unknown_keys = unknown;
    plan
}

/// The ConfigResolved condition: False while a Secret or ConfigMap the settings read is
/// missing (the Deployment is left as it runs); True otherwise, naming the keys Grafana
/// would ignore.
pub fn condition(plan: &ConfigPlan, problems: &SecretProblems) -> ConditionState {
    if let Some(problem) = &problems.config {
        return ConditionState::failed(Reason::SecretNotFound, problem);
    }
    if let Some(problem) = &problems.config_refused {
        return ConditionState::failed(Reason::ManagedVariable, problem);
    }
    let count = plan.settings.len() + plan.secret_settings.len();
    if !plan.unknown_keys.is_empty() {
        return ConditionState::ok(
            Reason::UnknownKeys,
            format!(
                "{count} settings applied; {} not in the defaults.ini of Grafana {}: Grafana ignores an override for a key its ini files lack, so check the spelling (or that your image knows it)",
                plan.unknown_keys.join(", "),
                crate::api::defaults::GRAFANA_IMAGE
                    .rsplit(':')
                    .next()
                    .unwrap_or_default(),
            ),
        );
    }
    let message = match (count, plan.env_from.len()) {
        (0, 0) => "no settings beyond the operator's".to_string(),
        (settings, sources) => format!("{settings} settings and {sources} envFrom sources applied"),
    };
    ConditionState::ok(Reason::Applied, message)
}

/// Names of the Secrets and ConfigMaps that `spec.envFrom` and `spec.configSecrets` read,
/// with whether the whole object is read (envFrom) and whether it may be missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeObject {
    pub name: String,
    pub config_map: bool,
    pub optional: bool,
    /// Prepended to each key to make the variable name.
    pub prefix: String,
}

/// The objects envFrom reads whole.
pub fn env_from_objects(spec: &GrafanaClusterSpec) -> Vec<WholeObject> {
    spec.env_from
        .iter()
        .flatten()
        .filter_map(|from| {
            if let Some(cm) = &from.config_map_ref {
                Some(WholeObject {
                    name: cm.name.clone(),
                    config_map: true,
                    optional: cm.optional.unwrap_or(false),
                    prefix: from.prefix.clone().unwrap_or_default(),
                })
            } else {
                from.secret_ref.as_ref().map(|s| WholeObject {
                    name: s.name.clone(),
                    config_map: false,
                    optional: s.optional.unwrap_or(false),
                    prefix: from.prefix.clone().unwrap_or_default(),
                })
            }
        })
        .collect()
}

/// Names of the ConfigMaps the pods read (envFrom and the database CA bundle), for mapping
/// ConfigMap events to clusters.
pub fn referenced_config_maps(spec: &GrafanaClusterSpec) -> Vec<String> {
    let mut names: Vec<String> = env_from_objects(spec)
        .into_iter()
        .filter(|o| o.config_map)
        .map(|o| o.name)
        .collect();
    if let Some(ca) = spec
        .database
        .as_ref()
        .and_then(|d| d.ca_bundle_config_map_ref.as_ref())
    {
        names.push(ca.name.clone());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: serde_json::Value) -> GrafanaClusterSpec {
        serde_json::from_value(value).expect("spec")
    }

    #[test]
    fn settings_become_env_names_and_secret_files() {
        let s = spec(serde_json::json!({
            "config": {
                "auth.generic_oauth": {"enabled": "true", "client_id": "grafana", "no_such": "x"},
                "database": {"conn_max_lifetime": "3600"},
            },
            "configSecrets": {
                "auth.generic_oauth": {"client_secret": {"name": "oauth", "key": "secret"}},
            },
            "envFrom": [{"configMapRef": {"name": "extra"}}, {"secretRef": {"name": "creds", "optional": true}}],
        }));
        let p = plan(&s);
        assert_eq!(
            p.settings,
            vec![
                (
                    "GF_AUTH_GENERIC_OAUTH_CLIENT_ID".to_string(),
                    "grafana".to_string()
                ),
                ("GF_AUTH_GENERIC_OAUTH_ENABLED".into(), "true".into()),
                ("GF_AUTH_GENERIC_OAUTH_NO_SUCH".into(), "x".into()),
                ("GF_DATABASE_CONN_MAX_LIFETIME".into(), "3600".into()),
            ]
        );
        assert_eq!(
            p.secret_settings,
            vec![SecretSetting {
                env: "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET".into(),
                path: "config/auth.generic_oauth/client_secret".into(),
                from: KeyRef {
                    name: "oauth".into(),
                    key: "secret".into()
                },
            }]
        );
        assert_eq!(p.unknown_keys, vec!["auth.generic_oauth.no_such"]);
        assert_eq!(p.env_from.len(), 2);
        let whole = env_from_objects(&s);
        assert_eq!(
            whole,
            vec![
                WholeObject {
                    name: "extra".into(),
                    config_map: true,
                    optional: false,
                    prefix: String::new(),
                },
                WholeObject {
                    name: "creds".into(),
                    config_map: false,
                    optional: true,
                    prefix: String::new(),
                },
            ]
        );
        assert_eq!(referenced_config_maps(&s), vec!["extra"]);
    }
}
