//! Secrets the operator writes: the copy of the RDS-managed credentials, the Redis
//! connection string, and the generated-once admin password and signing key.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::Owner;
use crate::api::CacheEngine;
use crate::facts::{ManagedCredentials, SecretValue};
use crate::hash::sha256_hex;
use crate::names;
use crate::resolve::Wiring;

fn secret(owner: &Owner, name: String, component: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: owner.child_meta(name, component),
        type_: Some("Opaque".into()),
        string_data: None,
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// The operator-owned copy of the RDS-managed master credentials, refreshed on rotation.
pub fn db_credentials(wiring: &Wiring, creds: &ManagedCredentials) -> Secret {
    let mut s = secret(
        &Owner::of(wiring),
        names::db_credentials_secret(&wiring.name),
        "database-credentials",
        BTreeMap::from([
            ("username".to_string(), creds.username.clone()),
            ("password".to_string(), creds.password.expose().to_string()),
        ]),
    );
    s.metadata.annotations = Some(BTreeMap::from([(
        "grafana-ha.io/source-secret-arn".to_string(),
        creds.secret_arn.clone(),
    )]));
    s
}

/// The Redis connection string for `GF_REMOTE_CACHE_CONNSTR`. It carries the AUTH token, so
/// it lives in a Secret and reaches the pods through secretKeyRef, never as a literal.
/// Absent without Redis, or when a token is required but could not be read.
pub fn cache_connection(wiring: &Wiring, token: Option<&SecretValue>) -> Option<Secret> {
    let cache = wiring.cache.as_ref()?;
    if cache.status.engine != CacheEngine::Redis {
        return None;
    }
    if cache.auth_token.is_some() && token.is_none() {
        return None;
    }
    Some(secret(
        &Owner::of(wiring),
        names::cache_secret(&wiring.name),
        "cache-connection",
        BTreeMap::from([(
            names::CACHE_CONNSTR_KEY.to_string(),
            redis_connstr(
                &cache.status.host,
                cache.status.port,
                token,
                cache.status.tls,
            ),
        )]),
    ))
}

/// Grafana's Redis connection string: comma-separated `key=value` pairs. The caller makes
/// sure the token holds no comma (Grafana splits on it).
pub fn redis_connstr(host: &str, port: i32, token: Option<&SecretValue>, tls: bool) -> String {
    let mut parts = vec![format!("addr={host}:{port}")];
    if let Some(token) = token {
        parts.push(format!("password={}", token.expose()));
    }
    parts.push("db=0".into());
    parts.push("pool_size=100".into());
    parts.push(format!("ssl={tls}"));
    parts.join(",")
}

/// The generated admin credentials Secret (created once, never rewritten).
pub fn generated_admin(owner: &Owner, password: &SecretValue) -> Secret {
    secret(
        owner,
        names::admin_secret(&owner.name),
        "admin-credentials",
        BTreeMap::from([
            ("username".to_string(), "admin".to_string()),
            ("password".to_string(), password.expose().to_string()),
        ]),
    )
}

/// The shared signing key Secret (created once, never rewritten). It has no owner
/// reference on purpose: the key encrypts data-source secrets stored in the database, which
/// outlives the GrafanaCluster; deleting the key with the cluster would make that data
/// unreadable to a re-created one.
pub fn generated_secret_key(owner: &Owner, key: &SecretValue) -> Secret {
    let mut s = secret(
        owner,
        names::secret_key_secret(&owner.name),
        "secret-key",
        BTreeMap::from([(names::SECRET_KEY_KEY.to_string(), key.expose().to_string())]),
    );
    s.metadata.owner_references = None;
    s.metadata.annotations = Some(BTreeMap::from([(
        "grafana-ha.io/retain".to_string(),
        "kept when the GrafanaCluster is deleted: it encrypts secrets stored in the database"
            .to_string(),
    )]));
    s
}

/// Digest of one Secret value, keyed `secret/key`, as it enters the pod-template hash.
pub fn digest_entry(secret: &str, key: &str, value: &[u8]) -> (String, String) {
    (format!("{secret}/{key}"), sha256_hex(value))
}

/// Digests of every key of a Secret the operator builds.
pub fn digests_of(secret: &Secret) -> BTreeMap<String, String> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| digest_entry(&name, k, &v.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures;

    fn value(s: &Secret, key: &str) -> String {
        String::from_utf8(s.data.as_ref().expect("data")[key].0.clone()).expect("utf8")
    }

    #[test]
    fn managed_credentials_are_copied_with_owner() {
        let w = fixtures::wiring();
        let s = db_credentials(
            &w,
            &ManagedCredentials {
                secret_arn: "arn:sm".into(),
                username: "admin".into(),
                password: SecretValue::new("P@55w0rd!"),
            },
        );
        assert_eq!(s.metadata.name.as_deref(), Some("grafana-db-credentials"));
        assert_eq!(value(&s, "password"), "P@55w0rd!");
        assert_eq!(value(&s, "username"), "admin");
        let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(owner.uid, "uid-1");
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn redis_connstr_carries_token_and_tls() {
        let token = SecretValue::new("tok");
        assert_eq!(
            redis_connstr("h", 6379, Some(&token), true),
            "addr=h:6379,password=tok,db=0,pool_size=100,ssl=true"
        );
        assert_eq!(
            redis_connstr("h", 6380, None, false),
            "addr=h:6380,db=0,pool_size=100,ssl=false"
        );
    }

    #[test]
    fn cache_secret_waits_for_a_required_token() {
        let w = fixtures::wiring();
        assert!(cache_connection(&w, None).is_none());
        let s = cache_connection(&w, Some(&SecretValue::new("tok"))).expect("secret");
        assert!(value(&s, "connstr").contains("password=tok"));
        assert!(value(&s, "connstr").contains("ssl=true"));
    }

    #[test]
    fn signing_key_outlives_the_cluster() {
        let w = fixtures::wiring();
        let owner = Owner::of(&w);
        let s = generated_secret_key(&owner, &SecretValue::new("k"));
        assert!(s.metadata.owner_references.is_none());
        assert_eq!(value(&s, "secret_key"), "k");
        let a = generated_admin(&owner, &SecretValue::new("p"));
        assert!(a.metadata.owner_references.is_some());
    }

    #[test]
    fn digests_change_with_data_only() {
        let w = fixtures::wiring();
        let a = cache_connection(&w, Some(&SecretValue::new("one"))).expect("a");
        let mut b = cache_connection(&w, Some(&SecretValue::new("one"))).expect("b");
        b.metadata.annotations = Some(BTreeMap::from([("x".to_string(), "y".to_string())]));
        assert_eq!(digests_of(&a), digests_of(&b));
        let c = cache_connection(&w, Some(&SecretValue::new("two"))).expect("c");
        assert_ne!(digests_of(&a), digests_of(&c));
    }
}
