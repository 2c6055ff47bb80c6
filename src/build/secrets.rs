//! Secrets the operator writes: the copy of the RDS-managed credentials, the Redis
//! connection string, and the generated-once admin password and signing key; and the
//! digests of Secret data that roll the pods.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::meta::child_meta;
use crate::facts::SecretValue;
use crate::hash::sha256_hex;
use crate::names::{self, Component};
use crate::resolve::{
    AdminCredentials, CacheConnection, ClusterRef, DatabaseCredentials, Generated, Plan,
};

/// Annotation on the credentials copy naming the Secrets Manager secret it copies.
pub const SOURCE_SECRET_ANNOTATION: &str = "grafana-ha.io/source-secret-arn";
/// Annotation on the signing key saying why it outlives the cluster.
pub const RETAIN_ANNOTATION: &str = "grafana-ha.io/retain";
/// What `render` shows instead of a secret inside a value that is otherwise shown.
pub const REDACTED: &str = "<redacted>";

fn secret(
    cluster: &ClusterRef,
    name: String,
    component: Component,
    data: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: child_meta(cluster, name, component),
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
/// Absent unless the credentials are RDS-managed and were read now (the existing copy then
/// keeps serving).
pub fn db_credentials(plan: &Plan) -> Option<Secret> {
    let DatabaseCredentials::RdsManaged {
        copy,
        current: Some(creds),
    } = &plan.database.credentials
    else {
        return None;
    };
    let mut s = secret(
        &plan.cluster,
        copy.secret.clone(),
        Component::DatabaseCredentials,
        BTreeMap::from([
            (copy.username_key.clone(), creds.username.clone()),
            (
                copy.password_key.clone(),
                creds.password.expose().to_string(),
            ),
        ]),
    );
    s.metadata.annotations = Some(BTreeMap::from([(
        SOURCE_SECRET_ANNOTATION.to_string(),
        creds.secret_arn.clone(),
    )]));
    Some(s)
}

/// The Redis connection string for `GF_REMOTE_CACHE_CONNSTR`. It carries the AUTH token, so
/// it lives in a Secret and reaches the pods through secretKeyRef, never as a literal.
/// Absent without Redis. When the token was not read (render without a kubeconfig) the
/// password is [`REDACTED`].
pub fn cache_connection(plan: &Plan) -> Option<Secret> {
    let cache = plan.cache.as_ref()?;
    let CacheConnection::Redis { secret: name, auth } = &cache.connection else {
        return None;
    };
    let placeholder = SecretValue::new(REDACTED);
    let token = auth
        .as_ref()
        .map(|a| a.token.as_ref().unwrap_or(&placeholder));
    let mut data = BTreeMap::from([(
        names::CACHE_CONNSTR_KEY.to_string(),
        redis_connstr(
            &cache.status.host,
            cache.status.port,
            token,
            cache.status.tls,
        ),
    )]);
    // The trimmed token on its own, for alerting over Redis: the user's Secret may end in
    // a newline that Grafana would send as part of the password.
    if let Some(token) = token {
        data.insert(
            names::CACHE_PASSWORD_KEY.to_string(),
            token.expose().to_string(),
        );
    }
    Some(secret(
        &plan.cluster,
        name.clone(),
        Component::CacheConnection,
        data,
    ))
}

/// True when the connection Secret holds the real token (or needs none).
fn cache_connection_complete(plan: &Plan) -> bool {
    !plan.cache.as_ref().is_some_and(|c| {
        matches!(&c.connection, CacheConnection::Redis { auth: Some(a), .. } if a.token.is_none())
    })
}

/// Grafana's Redis connection string: comma-separated `key=value` pairs. The gatherer makes
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

/// The Secrets generated once: the admin credentials (unless the user gives them) and the
/// signing key.
pub fn generated(plan: &Plan) -> Vec<Secret> {
    let mut out = Vec::new();
    if let AdminCredentials::Generated(admin) = &plan.admin {
        out.push(secret(
            &plan.cluster,
            admin.secret.clone(),
            Component::AdminCredentials,
            BTreeMap::from([
                ("username".to_string(), "admin".to_string()),
                ("password".to_string(), admin.value.expose().to_string()),
            ]),
        ));
    }
    out.push(signing_key(plan));
    out
}

/// The shared signing key Secret. It has no owner reference on purpose: the key encrypts
/// data-source secrets stored in the database, which outlives the GrafanaCluster; deleting
/// the key with the cluster would make that data unreadable to a re-created one.
fn signing_key(plan: &Plan) -> Secret {
    let key = &plan.signing_key;
    let mut s = secret(
        &plan.cluster,
        key.secret.clone(),
        Component::SecretKey,
        BTreeMap::from([(
            names::SECRET_KEY_KEY.to_string(),
            key.value.expose().to_string(),
        )]),
    );
    s.metadata.owner_references = None;
    s.metadata.annotations = Some(BTreeMap::from([(
        RETAIN_ANNOTATION.to_string(),
        "kept when the GrafanaCluster is deleted: it encrypts secrets stored in the database"
            .to_string(),
    )]));
    s
}

/// Digests of every key of a Secret, keyed `secret/key`, as they enter the pod-template hash.
pub fn digests_of(secret: &Secret) -> BTreeMap<String, String> {
    let name = secret.metadata.name.clone().unwrap_or_default();
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (format!("{name}/{k}"), sha256_hex(&v.0)))
        .collect()
}

/// The digests the pod template is hashed over: what was read from the cluster, overridden
/// by the Secrets built now (so a rotated password rolls the pods in the same reconcile that
/// writes it), plus the generated Secrets this round creates.
pub fn pod_digests(
    plan: &Plan,
    generated: &[Secret],
    built: &[Secret],
) -> BTreeMap<String, String> {
    let mut digests = plan.secret_digests.clone();
    let created_now = |name: &str| {
        let is = |g: &Generated| g.new && g.secret == name;
        is(&plan.signing_key) || matches!(&plan.admin, AdminCredentials::Generated(a) if is(a))
    };
    for secret in generated {
        if created_now(&secret.metadata.name.clone().unwrap_or_default()) {
            digests.extend(digests_of(secret));
        }
    }
    let complete = cache_connection_complete(plan);
    for secret in built {
        let is_cache = secret.metadata.name.as_deref()
            == Some(names::cache_secret(&plan.cluster.name).as_str());
        if complete || !is_cache {
            digests.extend(digests_of(secret));
        }
    }
    digests
}

/// The Secret as `render` prints it: keys kept, values dropped; in the Redis connection
/// string only the password is hidden, so the address, TLS and db stay readable.
pub fn redacted(mut secret: Secret) -> Secret {
    let is_connection = Component::of_labels(secret.labels()) == Some(Component::CacheConnection);
    if let Some(data) = secret.data.as_mut() {
        for (key, value) in data.iter_mut() {
            if is_connection && key == names::CACHE_CONNSTR_KEY {
                // Shown as text, so the address, TLS and db can be read in the preview.
                let shown = redact_connstr(&String::from_utf8_lossy(&value.0));
                secret
                    .string_data
                    .get_or_insert_with(Default::default)
                    .insert(key.clone(), shown);
            }
            *value = ByteString(Vec::new());
        }
    }
    if let Some(shown) = &secret.string_data {
        let data = secret.data.get_or_insert_with(Default::default);
        for key in shown.keys() {
            data.remove(key);
        }
    }
    secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("grafana-ha.io/render".into(), "values redacted".into());
    secret
}

fn redact_connstr(connstr: &str) -> String {
    connstr
        .split(',')
        .map(|part| match part.split_once('=') {
            Some(("password", _)) => format!("password={REDACTED}"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests;
