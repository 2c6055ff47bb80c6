//! Reading the Secrets the pods reference: digests for the pod-template hash, the problems
//! that would keep a pod from starting, which of the operator's own Secrets exist, the Redis
//! AUTH token, and whether the database password can be carried at all.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};

use super::{FreshValues, SecretProblems, SecretReads};
use crate::api::GrafanaCluster;
use crate::facts::SecretValue;
use crate::hash::sha256_hex;
use crate::reconcile::records::Records;
use crate::resolve::{SecretUse, SecretUser, cache_enabled, references};

/// A password with characters some client cannot carry; never the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordFinding {
    /// Where it is, e.g. `Secret ns/db key password`.
    pub source: String,
    /// What it contains, e.g. `a space`.
    pub characters: Vec<&'static str>,
}

/// The characters of `password` that an unquoted `key=value` connection string cannot
/// carry; None when there are none.
pub fn unquotable(password: &str, source: String) -> Option<PasswordFinding> {
    let mut characters = Vec::new();
    if password
        .trim_end_matches(['\n', '\r'])
        .chars()
        .any(char::is_whitespace)
    {
        characters.push("whitespace");
    }
    if password.contains('\\') {
        characters.push("a backslash");
    }
    if password.contains('\'') {
        characters.push("a single quote");
    }
    (!characters.is_empty()).then_some(PasswordFinding { source, characters })
}

/// Reads every Secret the pods will reference: the digest of each referenced key (for the
/// pod-template hash), the problems that would keep pods from starting, which of the
/// operator's own Secrets exist, and the Redis AUTH token the connection string needs.
pub(super) async fn read(
    gc: &GrafanaCluster,
    client: &Client,
    cached: Option<&Records<Secret>>,
    fresh: FreshValues,
) -> Result<SecretReads, kube::Error> {
    let namespace = gc.metadata.namespace.clone().unwrap_or_default();
    let cluster = gc.metadata.name.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let token_ref = gc
        .spec
        .cache
        .as_ref()
        .filter(|_| cache_enabled(&gc.spec))
        .and_then(|c| c.auth_token_secret_ref.clone());
    let mut reads = SecretReads::unread(fresh);
    reads.read = true;
    for secret_use in references(&cluster, &gc.spec) {
        // The operator's own Secrets: the watch keeps the digest of each value, which is all
        // the pod-template hash needs (their values are not checked: they are rewritten).
        if let Some(made_by) = secret_use.made_by
            && let Some(kept) =
                cached.and_then(|store| store.get(Some(&namespace), &secret_use.name))
        {
            reads.existing.insert(made_by);
            for key in &secret_use.keys {
                if let Some(digest) = kept.facts.get(key) {
                    reads
                        .digests
                        .insert(format!("{}/{key}", secret_use.name), digest.to_hex());
                }
            }
            continue;
        }
        let data = match (api.get_opt(&secret_use.name).await?, secret_use.made_by) {
            (None, Some(_)) => continue,
            (None, None) => {
                let problem = format!("Secret {namespace}/{} does not exist", secret_use.name);
                record_problem(&mut reads.problems, secret_use.user, problem);
                continue;
            }
            (Some(secret), made_by) => {
                if let Some(made_by) = made_by {
                    reads.existing.insert(made_by);
                }
                secret.data.unwrap_or_default()
            }
        };
        for key in &secret_use.keys {
            if let Some(value) = data.get(key) {
                reads
                    .digests
                    .insert(format!("{}/{key}", secret_use.name), sha256_hex(&value.0));
            }
        }
        if let Some(token) = &token_ref
            && token.name == secret_use.name
            && let Some(value) = data.get(&token.key)
        {
            let text = String::from_utf8_lossy(&value.0).trim_end().to_string();
            if text.contains(',') {
                let problem = format!(
                    "the Redis AUTH token in Secret {namespace}/{} key {} contains a comma, which Grafana's connection string cannot carry",
                    token.name, token.key
                );
                record_problem(&mut reads.problems, SecretUser::Cache, problem);
            } else {
                reads.cache_auth_token = Some(SecretValue::new(text));
            }
        }
        if secret_use.user == SecretUser::Database
            && secret_use.made_by.is_none()
            && let Some(key) = &secret_use.password_key
            && let Some(value) = data.get(key)
        {
            let source = format!("Secret {namespace}/{} key {key}", secret_use.name);
            reads.unquotable_password = unquotable(&String::from_utf8_lossy(&value.0), source);
        }
        if let Some(problem) = missing_keys(&namespace, &secret_use, &data) {
            record_problem(&mut reads.problems, secret_use.user, problem);
        }
    }
    Ok(reads)
}

/// The user's Secret lacks a referenced key (the operator's own are rewritten anyway).
fn missing_keys(
    namespace: &str,
    secret_use: &SecretUse,
    data: &BTreeMap<String, k8s_openapi::ByteString>,
) -> Option<String> {
    if secret_use.made_by.is_some() {
        return None;
    }
    let missing: Vec<_> = secret_use
        .keys
        .iter()
        .filter(|k| !data.contains_key(*k))
        .cloned()
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "Secret {namespace}/{} has no key {}",
            secret_use.name,
            missing.join(", ")
        )
    })
}

pub(super) fn record_problem(problems: &mut SecretProblems, user: SecretUser, problem: String) {
    let slot = match user {
        SecretUser::Database => &mut problems.database,
        SecretUser::Cache => &mut problems.cache,
        SecretUser::Admin => &mut problems.admin,
        SecretUser::Config => &mut problems.config,
    };
    slot.get_or_insert(problem);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotable_passwords_are_named_by_class_never_by_value() {
        let f = unquotable("xyz q\\w'e", "Secret ns/db key password".into()).expect("finding");
        assert_eq!(
            f.characters,
            vec!["whitespace", "a backslash", "a single quote"]
        );
        assert!(!format!("{f:?}").contains("xyz"));
        assert!(
            unquotable("p${x}@#!", "s".into()).is_none(),
            "$ and braces are fine in a file"
        );
        assert!(
            unquotable("secret\n", "s".into()).is_none(),
            "a trailing newline is trimmed"
        );
    }
}
