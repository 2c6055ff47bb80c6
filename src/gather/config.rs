//! Reading what spec.envFrom and the database CA bundle give the pods: a digest of the data
//! of each (never its metadata, so a label change rolls nothing), and the problem when a
//! required one is missing.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use super::SecretReads;
use super::secrets::record_problem;
use crate::api::GrafanaCluster;
use crate::hash::sha256_hex;
use crate::resolve::{SecretUser, env_from_objects};

/// One digest over every key and value of an object's data: it changes exactly when the
/// data does.
pub fn data_digest<'a>(entries: impl IntoIterator<Item = (&'a String, &'a [u8])>) -> String {
    let mut lines: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}={}", sha256_hex(v)))
        .collect();
    lines.sort();
    sha256_hex(lines.join("\n").as_bytes())
}

fn config_map_entries(cm: &ConfigMap) -> Vec<(&String, &[u8])> {
    let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = cm
        .binary_data
        .iter()
        .flatten()
        .map(|(k, v): (&String, &ByteString)| (k, v.0.as_slice()));
    text.chain(binary).collect()
}

/// Adds the digests of the envFrom objects and the CA bundle key to `reads`, and the
/// problems of missing ones.
pub(super) async fn read(
    gc: &GrafanaCluster,
    client: &Client,
    reads: &mut SecretReads,
) -> Result<(), kube::Error> {
    let namespace = gc.metadata.namespace.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    for object in env_from_objects(&gc.spec) {
        let (kind, read) = if object.config_map {
            let cm = config_maps.get_opt(&object.name).await?;
            (
                "ConfigMap",
                cm.map(|cm| {
                    let entries = config_map_entries(&cm);
                    let keys = entries.iter().map(|(k, _)| (*k).clone()).collect();
                    (data_digest(entries), keys)
                }),
            )
        } else {
            let secret = secrets.get_opt(&object.name).await?;
            (
                "Secret",
                secret.map(|s| {
                    let data: BTreeMap<String, ByteString> = s.data.unwrap_or_default();
                    let keys: Vec<String> = data.keys().cloned().collect();
                    (
                        data_digest(data.iter().map(|(k, v)| (k, v.0.as_slice()))),
                        keys,
                    )
                }),
            )
        };
        if let Some((_, keys)) = &read
            && let Some(problem) = managed_variable(&object.prefix, keys)
        {
            reads.problems.config_refused.get_or_insert(format!(
                "{kind} {namespace}/{} (spec.envFrom) {problem}",
                object.name
            ));
        }
        let digest = read.map(|(digest, _)| digest);
        // `kind:name` never collides with a `secret/key` digest: names have no colon.
        let id = format!("{}:{}", kind.to_ascii_lowercase(), object.name);
        match digest {
            Some(digest) => {
                reads.digests.insert(id, digest);
            }
            None if object.optional => {}
            None => record_problem(
                &mut reads.problems,
                SecretUser::Config,
                format!(
                    "{kind} {namespace}/{} (spec.envFrom) does not exist",
                    object.name
                ),
            ),
        }
    }
    if let Some(ca) = gc
        .spec
        .database
        .as_ref()
        .and_then(|d| d.ca_bundle_config_map_ref.as_ref())
    {
        let value = config_maps.get_opt(&ca.name).await?.and_then(|cm| {
            config_map_entries(&cm)
                .into_iter()
                .find(|(k, _)| **k == ca.key)
                .map(|(_, v)| sha256_hex(v))
        });
        match value {
            Some(digest) => {
                reads
                    .digests
                    .insert(format!("configmap:{}/{}", ca.name, ca.key), digest);
            }
            None => record_problem(
                &mut reads.problems,
                SecretUser::Database,
                format!(
                    "ConfigMap {namespace}/{} has no key {} (spec.database.caBundleConfigMapRef)",
                    ca.name, ca.key
                ),
            ),
        }
    }
    Ok(())
}

/// The first variable an envFrom object would set that the operator sets itself. The
/// container's own env wins over envFrom, but a `__FILE` twin of a managed variable makes
/// the official image's entrypoint refuse to start, and a shadowed value misleads: refuse
/// both alike. Keys only, never values.
fn managed_variable(prefix: &str, keys: &[String]) -> Option<String> {
    keys.iter().find_map(|key| {
        let name = format!("{prefix}{key}");
        crate::settings::env_controlled_by(&name)
            .map(|field| format!("sets {name}, which the operator sets from {field}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envfrom_may_not_set_managed_variables() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            managed_variable("", &keys(&["GF_LOG_LEVEL", "LDAP_BIND_PASSWORD"])),
            None
        );
        let found =
            managed_variable("", &keys(&["A", "GF_DATABASE_PASSWORD__FILE"])).expect("found");
        assert!(
            found.contains("GF_DATABASE_PASSWORD__FILE")
                && found.contains("spec.database.credentials"),
            "{found}"
        );
        assert!(
            managed_variable("GF_DATABASE_", &keys(&["HOST"])).is_some(),
            "with the prefix"
        );
    }

    #[test]
    fn the_digest_follows_data_only() {
        let a = ("a".to_string(), b"1".to_vec());
        let b = ("b".to_string(), b"2".to_vec());
        let one = data_digest([(&a.0, a.1.as_slice()), (&b.0, b.1.as_slice())]);
        let reordered = data_digest([(&b.0, b.1.as_slice()), (&a.0, a.1.as_slice())]);
        assert_eq!(one, reordered);
        let changed = ("b".to_string(), b"3".to_vec());
        assert_ne!(
            one,
            data_digest([(&a.0, a.1.as_slice()), (&changed.0, changed.1.as_slice())])
        );
        let renamed = ("c".to_string(), b"2".to_vec());
        assert_ne!(
            one,
            data_digest([(&a.0, a.1.as_slice()), (&renamed.0, renamed.1.as_slice())])
        );
    }
}
