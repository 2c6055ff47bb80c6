//! The I/O that gathers facts for one GrafanaCluster: AWS discovery and, when a Kubernetes
//! client is at hand, the data of the Secrets the pods will read. Shared by the controller
//! and `render`, so a preview takes exactly the path the controller takes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

use crate::api::GrafanaCluster;
use crate::aws::{Discovery, FileSystemQuery};
use crate::build::SecretInputs;
use crate::build::secrets::digest_entry;
use crate::facts::{Lookup, SecretValue};
use crate::names;
use crate::resolve::{Discovered, Observed, cache_enabled, merged_selector};

fn discovered<T>(result: Result<Lookup<T>, crate::aws::AwsError>) -> Discovered<T> {
    match result {
        Ok(lookup) => Discovered::Lookup(lookup),
        Err(e) => {
            tracing::warn!(error = %e, "AWS discovery failed");
            Discovered::Failed {
                reason: e.reason(),
                message: e.to_string(),
            }
        }
    }
}

/// Asks AWS about every component of `gc` that is not given explicitly.
pub async fn discover(gc: &GrafanaCluster, discovery: &Discovery) -> Observed {
    let spec = &gc.spec;
    let region = spec.aws.as_ref().and_then(|a| a.region.as_deref());
    let db_spec = spec.database.clone().unwrap_or_default();
    let cache_spec = spec.cache.clone().unwrap_or_default();
    let plugins = spec.plugins.clone().unwrap_or_default();
    let efs = plugins.efs.clone().unwrap_or_default();

    let db_selector = merged_selector(spec, db_spec.tags.as_ref());
    let cache_selector = merged_selector(spec, cache_spec.tags.as_ref());
    let efs_selector = merged_selector(spec, efs.tags.as_ref());

    let database = async {
        if db_spec.endpoint.is_some() {
            None
        } else {
            Some(discovered(
                discovery.find_database(region, &db_selector).await,
            ))
        }
    };
    let cache = async {
        if !cache_enabled(spec) || cache_spec.endpoint.is_some() {
            None
        } else {
            Some(discovered(
                discovery.find_cache(region, &cache_selector).await,
            ))
        }
    };
    let storage = async {
        if plugins.storage_class_name.is_some() {
            return None;
        }
        let access_point_id = efs.access_point_id.as_deref();
        let query = match efs.file_system_id.as_deref() {
            Some(file_system_id) => FileSystemQuery::Id {
                file_system_id,
                access_point_id,
            },
            None => FileSystemQuery::Tags {
                selector: &efs_selector,
                access_point_id,
            },
        };
        Some(discovered(discovery.find_file_system(region, query).await))
    };
    let (database, cache, storage) = tokio::join!(database, cache, storage);
    Observed {
        database,
        cache,
        storage,
        ..Observed::default()
    }
}

/// Reads the RDS-managed master credentials when the spec asks for them and discovery found
/// the database's secret, into `inputs`. When Secrets Manager cannot be read, an existing
/// copy (seen by [`read_secrets`]) keeps serving; without one, the database cannot be wired.
pub async fn read_managed_credentials(
    gc: &GrafanaCluster,
    discovery: &Discovery,
    observed: &mut Observed,
    inputs: &mut SecretInputs,
) {
    let wants = gc
        .spec
        .database
        .as_ref()
        .and_then(|d| d.credentials.rds_managed_secret)
        .unwrap_or(false);
    let Some(Discovered::Lookup(Lookup::Found(db))) = &observed.database else {
        return;
    };
    let Some(arn) = db.managed_secret_arn.clone().filter(|_| wants) else {
        return;
    };
    let region = gc.spec.aws.as_ref().and_then(|a| a.region.as_deref());
    match discovery.managed_credentials(region, &arn).await {
        Ok(creds) => inputs.managed_credentials = Some(creds),
        Err(e) => {
            let name = gc.metadata.name.clone().unwrap_or_default();
            let copy = format!("{}/password", names::db_credentials_secret(&name));
            if observed.secret_digests.contains_key(&copy) {
                tracing::warn!(cluster = %name, error = %e, "keeping the last copy of the RDS-managed credentials");
            } else {
                observed.secret_problems.database = Some(format!(
                    "cannot read the RDS-managed master user secret: {e}"
                ));
            }
        }
    }
}

/// A Secret the pods read, and which of its keys.
#[derive(Clone, Debug)]
struct SecretUse {
    name: String,
    keys: Vec<String>,
    component: Component,
    /// The operator creates it: missing is not a problem.
    operator_made: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Component {
    Database,
    Cache,
    Admin,
}

fn secret_uses(gc: &GrafanaCluster) -> Vec<SecretUse> {
    let name = gc.metadata.name.clone().unwrap_or_default();
    let spec = &gc.spec;
    let mut uses = Vec::new();
    let db = spec.database.clone().unwrap_or_default();
    match &db.credentials.secret_ref {
        Some(r) => uses.push(SecretUse {
            name: r.name.clone(),
            keys: vec![r.username_key.clone(), r.password_key.clone()],
            component: Component::Database,
            operator_made: false,
        }),
        None => uses.push(SecretUse {
            name: names::db_credentials_secret(&name),
            keys: vec!["username".into(), "password".into()],
            component: Component::Database,
            operator_made: true,
        }),
    }
    if cache_enabled(spec) {
        if let Some(r) = spec
            .cache
            .as_ref()
            .and_then(|c| c.auth_token_secret_ref.as_ref())
        {
            uses.push(SecretUse {
                name: r.name.clone(),
                keys: vec![r.key.clone()],
                component: Component::Cache,
                operator_made: false,
            });
        }
        uses.push(SecretUse {
            name: names::cache_secret(&name),
            keys: vec![names::CACHE_CONNSTR_KEY.into()],
            component: Component::Cache,
            operator_made: true,
        });
    }
    match spec
        .admin_credentials
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
    {
        Some(r) => uses.push(SecretUse {
            name: r.name.clone(),
            keys: vec![r.username_key.clone(), r.password_key.clone()],
            component: Component::Admin,
            operator_made: false,
        }),
        None => uses.push(SecretUse {
            name: names::admin_secret(&name),
            keys: vec!["username".into(), "password".into()],
            component: Component::Admin,
            operator_made: true,
        }),
    }
    uses.push(SecretUse {
        name: names::secret_key_secret(&name),
        keys: vec![names::SECRET_KEY_KEY.into()],
        component: Component::Admin,
        operator_made: true,
    });
    uses
}

/// Names of the user Secrets `gc` references (for mapping Secret events to clusters).
pub fn referenced_user_secrets(gc: &GrafanaCluster) -> Vec<String> {
    secret_uses(gc)
        .into_iter()
        .filter(|u| !u.operator_made)
        .map(|u| u.name)
        .collect()
}

/// Reads every Secret the pods will reference: records the digest of each referenced key
/// (for the pod-template hash), the problems that would keep pods from starting, and the
/// Redis AUTH token the connection-string Secret needs.
/// `cached` is the controller's label-scoped Secret cache: the operator's own Secrets are
/// read from it, so a reconcile asks the API server only for the user's Secrets (and for an
/// operator Secret the cache has not seen yet).
pub async fn read_secrets(
    gc: &GrafanaCluster,
    client: &Client,
    cached: Option<&Store<Secret>>,
    observed: &mut Observed,
    inputs: &mut SecretInputs,
) -> Result<(), kube::Error> {
    let namespace = gc.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let token_ref = gc
        .spec
        .cache
        .as_ref()
        .and_then(|c| c.auth_token_secret_ref.clone());
    let mut digests = BTreeMap::new();
    for secret_use in secret_uses(gc) {
        let from_cache = cached
            .filter(|_| secret_use.operator_made)
            .and_then(|store| store.get(&ObjectRef::new(&secret_use.name).within(&namespace)))
            .map(|s| s.as_ref().clone());
        let secret = match from_cache {
            Some(secret) => Some(secret),
            None => api.get_opt(&secret_use.name).await?,
        };
        let problem = match &secret {
            None if secret_use.operator_made => None,
            None => Some(format!(
                "Secret {}/{} does not exist",
                namespace, secret_use.name
            )),
            Some(secret) => {
                let data = secret.data.clone().unwrap_or_default();
                let missing: Vec<_> = secret_use
                    .keys
                    .iter()
                    .filter(|k| !data.contains_key(*k))
                    .cloned()
                    .collect();
                for key in &secret_use.keys {
                    if let Some(value) = data.get(key) {
                        let (k, v) = digest_entry(&secret_use.name, key, &value.0);
                        digests.insert(k, v);
                    }
                }
                if let Some(token) = &token_ref
                    && token.name == secret_use.name
                    && let Some(value) = data.get(&token.key)
                {
                    let text = String::from_utf8_lossy(&value.0).trim_end().to_string();
                    if text.contains(',') {
                        observed.secret_problems.cache = Some(format!(
                            "the Redis AUTH token in Secret {}/{} key {} contains a comma, which Grafana's connection string cannot carry",
                            namespace, token.name, token.key
                        ));
                    } else {
                        inputs.cache_auth_token = Some(SecretValue::new(text));
                    }
                }
                (!missing.is_empty() && !secret_use.operator_made).then(|| {
                    format!(
                        "Secret {}/{} has no key {}",
                        namespace,
                        secret_use.name,
                        missing.join(", ")
                    )
                })
            }
        };
        if let Some(problem) = problem {
            let slot = match secret_use.component {
                Component::Database => &mut observed.secret_problems.database,
                Component::Cache => &mut observed.secret_problems.cache,
                Component::Admin => &mut observed.secret_problems.admin,
            };
            slot.get_or_insert(problem);
        }
    }
    observed.secret_digests = digests;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_secret_references_are_listed() {
        let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": {
                "aws": {"tags": {"a": "b"}},
                "database": {"credentials": {"secretRef": {"name": "db"}}},
                "cache": {"authTokenSecretRef": {"name": "redis", "key": "token"}},
                "adminCredentials": {"secretRef": {"name": "admin"}},
            }
        }))
        .expect("spec");
        assert_eq!(referenced_user_secrets(&gc), vec!["db", "redis", "admin"]);
    }
}
