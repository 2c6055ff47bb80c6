//! Every validation rule of the GrafanaCluster CRD, tested at admission on the real
//! kube-apiserver (issue 12, "every CEL/validation rule has a test at `kubectl apply`").
//!
//! The rules are read from crds/grafanacluster.yaml, not listed by hand: every
//! `x-kubernetes-validations` rule (by its message) and every structural constraint of the
//! operator's own fields (`required`, `minLength`, `maxLength`, `minimum`, `maximum`,
//! `enum`, `pattern`, `maxItems`, `maxProperties`). [`CASES`] holds one violating spec per
//! rule, as a JSON merge patch over a valid base. The test fails when a rule has no case
//! (add one), and when a case names no rule (a rule changed its message or went away).
//! Each case is sent as a server-side dry run (`dryRun=All`), so nothing is stored and the
//! whole file runs in a few seconds.
//!
//! Run alone: `testbed/with-testbed.sh cargo test --test e2e_validation_rules`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use grafana_ha_operator::api::GrafanaCluster;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use support::kube::{client, install_crd, namespace, repo_file};

/// Schema paths whose types are Kubernetes' own (k8s-openapi): the apiserver validates
/// them as it does for a Pod, and they are not the operator's rules to test.
const KUBERNETES_TYPES: &[&str] = &[
    "spec.affinity",
    "spec.tolerations",
    "spec.topologySpreadConstraints",
    "spec.resources",
    "spec.env[].valueFrom",
];

/// Structural keywords checked per field; `format` and int-or-string are type checks.
const KEYWORDS: &[&str] = &[
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "enum",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
];

/// The valid spec every case starts from: discovery by tag, RDS-managed credentials.
fn base() -> Value {
    json!({
        "replicas": 1,
        "aws": {"tags": {"team": "obs"}},
        "database": {"credentials": {"rdsManagedSecret": true}},
    })
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

fn tags(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
}

/// A database given by endpoint (so with an engine and a Secret for the credentials).
fn db_endpoint(patch: Value) -> Value {
    let mut db = json!({
        "endpoint": {"host": "db.example", "port": 5432},
        "engine": "postgres",
        "credentials": {"rdsManagedSecret": null, "secretRef": {"name": "db"}},
    });
    merge(&mut db, &patch);
    json!({ "database": db })
}

/// A cache given by endpoint (so with an engine).
fn cache_endpoint(patch: Value) -> Value {
    let mut cache = json!({"endpoint": {"host": "cache.example", "port": 6379}, "engine": "redis"});
    merge(&mut cache, &patch);
    json!({ "cache": cache })
}

/// `n` entries `k0`, `k1`, ... each holding `value`.
fn entries(n: usize, value: Value) -> Value {
    Value::Object((0..n).map(|i| (format!("k{i}"), value.clone())).collect())
}

/// `n` list items named `n0`, `n1`, ..., each otherwise `value`.
fn named(n: usize, value: Value) -> Vec<Value> {
    (0..n)
        .map(|i| merged(value.clone(), json!({"name": format!("n{i}")})))
        .collect()
}

/// An HTTPRoute with its one required parent Gateway.
fn http_route(patch: Value) -> Value {
    json!({"httpRoute": merged(json!({"parentRefs": [{"name": "gw"}]}), patch)})
}

/// One extra egress rule towards one peer.
fn egress_to(peer: Value) -> Value {
    json!({"networkPolicy": {"extraEgress": [{"to": [peer]}]}})
}

/// One violating spec per rule: (rule id, merge patch over [`base`]). A CEL rule's id is
/// its message; a structural rule's id is `<path> <keyword>` (`[]` for list items).
fn cases() -> Vec<(String, Value)> {
    let cel = |m: &str, p: Value| (m.to_string(), p);
    let st = |id: &str, p: Value| (id.to_string(), p);
    vec![
        // --- CEL rules on the whole spec ---
        cel(
            "spec.database is required: at least database.credentials",
            json!({"database": null}),
        ),
        cel(
            "spec.plugins.accessMode ReadWriteOnce cannot be shared by several replicas: use ReadWriteMany (EFS) or set replicas to 1",
            json!({"replicas": 2, "plugins": {"accessMode": "ReadWriteOnce"}}),
        ),
        cel(
            "spec.database: set database.endpoint, or a tag selector in database.tags or aws.tags (discovery with an empty selector would match every database)",
            json!({"aws": null, "cache": {"enabled": false}, "plugins": {"storageClassName": "gp3"}}),
        ),
        cel(
            "spec.database.credentials.rdsManagedSecret needs discovery (the secret ARN comes from RDS): remove database.endpoint or use credentials.secretRef",
            json!({"database": {"endpoint": {"host": "db.example", "port": 5432}, "engine": "postgres"}}),
        ),
        cel(
            "spec.cache: set cache.endpoint, a tag selector in cache.tags or aws.tags, or cache.enabled: false",
            json!({"aws": null, "database": {"tags": {"a": "b"}}, "plugins": {"storageClassName": "gp3"}}),
        ),
        cel(
            "spec.plugins: set plugins.storageClassName, plugins.efs.fileSystemId, a tag selector in plugins.efs.tags or aws.tags",
            json!({"aws": null, "database": {"tags": {"a": "b"}}, "cache": {"enabled": false}}),
        ),
        cel(
            "spec.upgrade.snapshot needs an RDS database found by discovery: it cannot snapshot spec.database.endpoint; take the snapshot yourself and set snapshot: false",
            merged(
                db_endpoint(json!({})),
                json!({"upgrade": {"snapshot": true}}),
            ),
        ),
        cel(
            "spec.alerting.ha: redis needs a Redis cache (cache.engine redis and cache.enabled)",
            json!({"alerting": {"ha": "redis"}, "cache": {"enabled": false}}),
        ),
        // --- CEL rules on the cache ---
        cel(
            "spec.cache: set at most one of tags and endpoint",
            cache_endpoint(json!({"tags": {"a": "b"}})),
        ),
        cel(
            "spec.cache.tags: an empty selector would match every cache; remove it or add a tag",
            json!({"cache": {"tags": {}}}),
        ),
        cel(
            "spec.cache.engine: required with cache.endpoint (discovery cannot tell the engine)",
            cache_endpoint(json!({"engine": null})),
        ),
        cel(
            "spec.cache.authTokenSecretRef: Memcached has no auth token",
            json!({"cache": {"engine": "memcached", "authTokenSecretRef": {"name": "t", "key": "k"}}}),
        ),
        // --- CEL rules on the database ---
        cel(
            "spec.database: set at most one of tags and endpoint",
            db_endpoint(json!({"tags": {"a": "b"}})),
        ),
        cel(
            "spec.database.tags: an empty selector would match every database; remove it or add a tag",
            json!({"database": {"tags": {}}}),
        ),
        cel(
            "spec.database.engine: required with database.endpoint (discovery cannot tell the engine)",
            db_endpoint(json!({"engine": null})),
        ),
        cel(
            "spec.database.sslMode: postgres takes disable, require, verify-ca or verify-full; mysql takes true, false or skip-verify",
            json!({"database": {"engine": "postgres", "sslMode": "skip-verify"}}),
        ),
        cel(
            "spec.database.caBundleConfigMapRef: sslMode verify-ca, verify-full and true verify the server against a CA the Grafana image does not trust; name a ConfigMap holding the CA bundle (e.g. the RDS global bundle)",
            json!({"database": {"engine": "postgres", "sslMode": "verify-full"}}),
        ),
        cel(
            "spec.database.credentials: set exactly one of secretRef and rdsManagedSecret: true",
            json!({"database": {"credentials": {"secretRef": {"name": "db"}}}}),
        ),
        // --- CEL rules on env, plugins, the PDB ---
        cel(
            "spec.env: a secret-looking variable (PASSWORD, SECRET, TOKEN, *_KEY, CONNSTR, *_URL) must use valueFrom.secretKeyRef, not a literal value",
            json!({"env": [{"name": "GF_SMTP_PASSWORD", "value": "hunter2"}]}),
        ),
        cel(
            "spec.plugins: set at most one of efs and storageClassName",
            json!({"plugins": {"storageClassName": "gp3", "efs": {"fileSystemId": "fs-0123456789abcdef0"}}}),
        ),
        cel(
            "spec.plugins.install: each entry must be a pinned id@version, e.g. grafana-clock-panel@2.1.8",
            json!({"plugins": {"install": ["grafana-clock-panel"]}}),
        ),
        cel(
            "spec.plugins.install: each plugin id may appear once",
            json!({"plugins": {"install": ["grafana-clock-panel@2.1.8", "grafana-clock-panel@2.1.9"]}}),
        ),
        cel(
            "spec.plugins.efs: set at most one of tags and fileSystemId",
            json!({"plugins": {"efs": {"tags": {"a": "b"}, "fileSystemId": "fs-0123456789abcdef0"}}}),
        ),
        cel(
            "spec.plugins.efs.tags: an empty selector would match every file system; remove it or add a tag",
            json!({"plugins": {"efs": {"tags": {}}}}),
        ),
        cel(
            "spec.podDisruptionBudget: set at most one of minAvailable and maxUnavailable",
            json!({"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}}),
        ),
        // --- structural: the admin Secret reference ---
        st(
            "spec.adminCredentials.secretRef.name required",
            json!({"adminCredentials": {"secretRef": {"passwordKey": "p"}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.name minLength",
            json!({"adminCredentials": {"secretRef": {"name": ""}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.name maxLength",
            json!({"adminCredentials": {"secretRef": {"name": long(254)}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.passwordKey minLength",
            json!({"adminCredentials": {"secretRef": {"name": "a", "passwordKey": ""}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.passwordKey maxLength",
            json!({"adminCredentials": {"secretRef": {"name": "a", "passwordKey": long(254)}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.usernameKey minLength",
            json!({"adminCredentials": {"secretRef": {"name": "a", "usernameKey": ""}}}),
        ),
        st(
            "spec.adminCredentials.secretRef.usernameKey maxLength",
            json!({"adminCredentials": {"secretRef": {"name": "a", "usernameKey": long(254)}}}),
        ),
        // --- structural: alerting, aws ---
        st("spec.alerting.ha enum", json!({"alerting": {"ha": "raft"}})),
        st("spec.aws.region minLength", json!({"aws": {"region": ""}})),
        st(
            "spec.aws.region maxLength",
            json!({"aws": {"region": long(65)}}),
        ),
        st(
            "spec.aws.tags maxProperties",
            json!({"aws": {"tags": tags(51)}}),
        ),
        // --- structural: the cache ---
        st(
            "spec.cache.authTokenSecretRef.key required",
            json!({"cache": {"authTokenSecretRef": {"name": "t"}}}),
        ),
        st(
            "spec.cache.authTokenSecretRef.name required",
            json!({"cache": {"authTokenSecretRef": {"key": "k"}}}),
        ),
        st(
            "spec.cache.authTokenSecretRef.key minLength",
            json!({"cache": {"authTokenSecretRef": {"name": "t", "key": ""}}}),
        ),
        st(
            "spec.cache.authTokenSecretRef.key maxLength",
            json!({"cache": {"authTokenSecretRef": {"name": "t", "key": long(254)}}}),
        ),
        st(
            "spec.cache.authTokenSecretRef.name minLength",
            json!({"cache": {"authTokenSecretRef": {"name": "", "key": "k"}}}),
        ),
        st(
            "spec.cache.authTokenSecretRef.name maxLength",
            json!({"cache": {"authTokenSecretRef": {"name": long(254), "key": "k"}}}),
        ),
        st(
            "spec.cache.endpoint.host required",
            cache_endpoint(json!({"endpoint": {"host": null}})),
        ),
        st(
            "spec.cache.endpoint.port required",
            cache_endpoint(json!({"endpoint": {"port": null}})),
        ),
        st(
            "spec.cache.endpoint.host minLength",
            cache_endpoint(json!({"endpoint": {"host": ""}})),
        ),
        st(
            "spec.cache.endpoint.host maxLength",
            cache_endpoint(json!({"endpoint": {"host": long(254)}})),
        ),
        st(
            "spec.cache.endpoint.port minimum",
            cache_endpoint(json!({"endpoint": {"port": 0}})),
        ),
        st(
            "spec.cache.endpoint.port maximum",
            cache_endpoint(json!({"endpoint": {"port": 65536}})),
        ),
        st(
            "spec.cache.engine enum",
            json!({"cache": {"engine": "valkey-cluster"}}),
        ),
        st(
            "spec.cache.tags maxProperties",
            json!({"cache": {"tags": tags(51)}}),
        ),
        // --- structural: the database ---
        st(
            "spec.database.credentials required",
            json!({"database": {"credentials": null, "tags": {"a": "b"}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.key required",
            json!({"database": {"caBundleConfigMapRef": {"name": "ca"}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.name required",
            json!({"database": {"caBundleConfigMapRef": {"key": "ca.pem"}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.key minLength",
            json!({"database": {"caBundleConfigMapRef": {"name": "ca", "key": ""}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.key maxLength",
            json!({"database": {"caBundleConfigMapRef": {"name": "ca", "key": long(254)}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.name minLength",
            json!({"database": {"caBundleConfigMapRef": {"name": "", "key": "k"}}}),
        ),
        st(
            "spec.database.caBundleConfigMapRef.name maxLength",
            json!({"database": {"caBundleConfigMapRef": {"name": long(254), "key": "k"}}}),
        ),
        st(
            "spec.database.connectionBudget.maxOpenPerReplica minimum",
            json!({"database": {"connectionBudget": {"maxOpenPerReplica": 0}}}),
        ),
        st(
            "spec.database.connectionBudget.maxOpenPerReplica maximum",
            json!({"database": {"connectionBudget": {"maxOpenPerReplica": 10001}}}),
        ),
        st(
            "spec.database.connectionBudget.sharePercent minimum",
            json!({"database": {"connectionBudget": {"sharePercent": 0}}}),
        ),
        st(
            "spec.database.connectionBudget.sharePercent maximum",
            json!({"database": {"connectionBudget": {"sharePercent": 101}}}),
        ),
        st(
            "spec.database.credentials.secretRef.name required",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"passwordKey": "p"}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.name minLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": ""}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.name maxLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": long(254)}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.passwordKey minLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": "db", "passwordKey": ""}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.passwordKey maxLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": "db", "passwordKey": long(254)}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.usernameKey minLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": "db", "usernameKey": ""}}}}),
        ),
        st(
            "spec.database.credentials.secretRef.usernameKey maxLength",
            json!({"database": {"credentials": {"rdsManagedSecret": null, "secretRef": {"name": "db", "usernameKey": long(254)}}}}),
        ),
        st(
            "spec.database.endpoint.host required",
            db_endpoint(json!({"endpoint": {"host": null}})),
        ),
        st(
            "spec.database.endpoint.port required",
            db_endpoint(json!({"endpoint": {"port": null}})),
        ),
        st(
            "spec.database.endpoint.host minLength",
            db_endpoint(json!({"endpoint": {"host": ""}})),
        ),
        st(
            "spec.database.endpoint.host maxLength",
            db_endpoint(json!({"endpoint": {"host": long(254)}})),
        ),
        st(
            "spec.database.endpoint.port minimum",
            db_endpoint(json!({"endpoint": {"port": 0}})),
        ),
        st(
            "spec.database.endpoint.port maximum",
            db_endpoint(json!({"endpoint": {"port": 65536}})),
        ),
        st(
            "spec.database.engine enum",
            json!({"database": {"engine": "oracle"}}),
        ),
        st(
            "spec.database.name minLength",
            json!({"database": {"name": ""}}),
        ),
        st(
            "spec.database.name maxLength",
            json!({"database": {"name": long(64)}}),
        ),
        st(
            "spec.database.sslMode minLength",
            json!({"database": {"sslMode": ""}}),
        ),
        st(
            "spec.database.sslMode maxLength",
            json!({"database": {"sslMode": long(17)}}),
        ),
        st(
            "spec.database.tags maxProperties",
            json!({"database": {"tags": tags(51)}}),
        ),
        // --- structural: env, image ---
        st(
            "spec.env maxItems",
            json!({"env": (0..65).map(|i| json!({"name": format!("V{i}"), "value": "x"})).collect::<Vec<_>>()}),
        ),
        st("spec.env[].name required", json!({"env": [{"value": "x"}]})),
        st(
            "spec.env[].name maxLength",
            json!({"env": [{"name": long(257)}]}),
        ),
        st(
            "spec.env[].value maxLength",
            json!({"env": [{"name": "V", "value": long(32769)}]}),
        ),
        st("spec.image minLength", json!({"image": ""})),
        st("spec.image maxLength", json!({"image": long(513)})),
        // --- structural: plugins ---
        st(
            "spec.plugins.accessMode enum",
            json!({"plugins": {"accessMode": "ReadOnlyMany"}}),
        ),
        st(
            "spec.plugins.efs.accessPointId pattern",
            json!({"plugins": {"efs": {"accessPointId": "ap-1"}}}),
        ),
        st(
            "spec.plugins.efs.fileSystemId pattern",
            json!({"plugins": {"efs": {"fileSystemId": "fs-XYZ"}}}),
        ),
        st(
            "spec.plugins.efs.tags maxProperties",
            json!({"plugins": {"efs": {"tags": tags(51)}}}),
        ),
        st(
            "spec.plugins.install maxItems",
            json!({"plugins": {"install": (0..33).map(|i| format!("p{i}@1")).collect::<Vec<_>>()}}),
        ),
        st(
            "spec.plugins.install[] minLength",
            json!({"plugins": {"install": ["a@"]}}),
        ),
        st(
            "spec.plugins.install[] maxLength",
            json!({"plugins": {"install": [format!("{}@1", long(127))]}}),
        ),
        st(
            "spec.plugins.size minLength",
            json!({"plugins": {"size": ""}}),
        ),
        st(
            "spec.plugins.size maxLength",
            json!({"plugins": {"size": long(33)}}),
        ),
        st(
            "spec.plugins.storageClassName minLength",
            json!({"plugins": {"storageClassName": ""}}),
        ),
        st(
            "spec.plugins.storageClassName maxLength",
            json!({"plugins": {"storageClassName": long(254)}}),
        ),
        // --- structural: replicas, server, upgrade ---
        st("spec.replicas minimum", json!({"replicas": -1})),
        st("spec.replicas maximum", json!({"replicas": 1001})),
        st(
            "spec.server.domain minLength",
            json!({"server": {"domain": ""}}),
        ),
        st(
            "spec.server.domain maxLength",
            json!({"server": {"domain": long(254)}}),
        ),
        st(
            "spec.server.rootUrl minLength",
            json!({"server": {"rootUrl": ""}}),
        ),
        st(
            "spec.server.rootUrl maxLength",
            json!({"server": {"rootUrl": long(2049)}}),
        ),
        st(
            "spec.upgrade.acceptDowngradeFrom minLength",
            json!({"upgrade": {"acceptDowngradeFrom": ""}}),
        ),
        st(
            "spec.upgrade.acceptDowngradeFrom maxLength",
            json!({"upgrade": {"acceptDowngradeFrom": long(65)}}),
        ),
        st(
            "spec.upgrade.strategy enum",
            json!({"upgrade": {"strategy": "YOLO"}}),
        ),
        // --- spec.config, configSecrets, envFrom, ldap ---
        cel(
            "spec.config: a secret-looking key must not hold a literal value: use spec.configSecrets (a Secret key) or $__file{}/$__env{}",
            json!({"config": {"k": {"password": "hunter2"}}}),
        ),
        st(
            "spec.config maxProperties",
            json!({"config": entries(65, json!({}))}),
        ),
        st(
            "spec.config{} maxProperties",
            json!({"config": {"k": tags(129)}}),
        ),
        st(
            "spec.config{}{} maxLength",
            json!({"config": {"k": {"k": long(4097)}}}),
        ),
        st(
            "spec.configSecrets maxProperties",
            json!({"configSecrets": entries(33, json!({}))}),
        ),
        st(
            "spec.configSecrets{} maxProperties",
            json!({"configSecrets": {"k": entries(65, json!({"name": "s", "key": "k"}))}}),
        ),
        st(
            "spec.configSecrets{}{}.key required",
            json!({"configSecrets": {"k": {"k": {"name": "s"}}}}),
        ),
        st(
            "spec.configSecrets{}{}.name required",
            json!({"configSecrets": {"k": {"k": {"key": "k"}}}}),
        ),
        st(
            "spec.configSecrets{}{}.key minLength",
            json!({"configSecrets": {"k": {"k": {"name": "s", "key": ""}}}}),
        ),
        st(
            "spec.configSecrets{}{}.key maxLength",
            json!({"configSecrets": {"k": {"k": {"name": "s", "key": long(254)}}}}),
        ),
        st(
            "spec.configSecrets{}{}.name minLength",
            json!({"configSecrets": {"k": {"k": {"name": "", "key": "k"}}}}),
        ),
        st(
            "spec.configSecrets{}{}.name maxLength",
            json!({"configSecrets": {"k": {"k": {"name": long(254), "key": "k"}}}}),
        ),
        cel(
            "spec.envFrom: each entry names exactly one of configMapRef and secretRef",
            json!({"envFrom": [{"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}]}),
        ),
        st(
            "spec.envFrom maxItems",
            json!({"envFrom": vec![json!({"secretRef": {"name": "s"}}); 17]}),
        ),
        st(
            "spec.envFrom[].configMapRef.name required",
            json!({"envFrom": [{"configMapRef": {"optional": true}}]}),
        ),
        st(
            "spec.envFrom[].secretRef.name required",
            json!({"envFrom": [{"secretRef": {"optional": true}}]}),
        ),
        st(
            "spec.ldap.configSecretRef required",
            json!({"ldap": {"configSecretRef": null}}),
        ),
        st(
            "spec.ldap.configSecretRef.key required",
            json!({"ldap": {"configSecretRef": {"name": "l"}}}),
        ),
        st(
            "spec.ldap.configSecretRef.name required",
            json!({"ldap": {"configSecretRef": {"key": "k"}}}),
        ),
        st(
            "spec.ldap.configSecretRef.key minLength",
            json!({"ldap": {"configSecretRef": {"name": "l", "key": ""}}}),
        ),
        st(
            "spec.ldap.configSecretRef.key maxLength",
            json!({"ldap": {"configSecretRef": {"name": "l", "key": long(254)}}}),
        ),
        st(
            "spec.ldap.configSecretRef.name minLength",
            json!({"ldap": {"configSecretRef": {"name": "", "key": "k"}}}),
        ),
        st(
            "spec.ldap.configSecretRef.name maxLength",
            json!({"ldap": {"configSecretRef": {"name": long(254), "key": "k"}}}),
        ),
        // --- spec.dataSources ---
        cel(
            "spec.dataSources.prometheus: set workspaceId or a tag selector in tags (an empty selector would match every workspace)",
            json!({"dataSources": {"prometheus": {"enabled": true, "tags": {}}}}),
        ),
        cel(
            "spec.dataSources.prometheus: set at most one of workspaceId and tags",
            json!({"dataSources": {"prometheus": {"workspaceId": "ws-1", "tags": {"a": "b"}}}}),
        ),
        st(
            "spec.dataSources.cloudwatch.defaultRegion minLength",
            json!({"dataSources": {"cloudwatch": {"defaultRegion": ""}}}),
        ),
        st(
            "spec.dataSources.cloudwatch.defaultRegion maxLength",
            json!({"dataSources": {"cloudwatch": {"defaultRegion": long(65)}}}),
        ),
        st(
            "spec.dataSources.prometheus.tags maxProperties",
            json!({"dataSources": {"prometheus": {"tags": tags(51)}}}),
        ),
        st(
            "spec.dataSources.prometheus.workspaceId minLength",
            json!({"dataSources": {"prometheus": {"workspaceId": ""}}}),
        ),
        st(
            "spec.dataSources.prometheus.workspaceId maxLength",
            json!({"dataSources": {"prometheus": {"workspaceId": long(65)}}}),
        ),
        // --- spec.httpRoute ---
        cel(
            "spec.httpRoute.path must start with /",
            http_route(json!({"path": "grafana"})),
        ),
        cel(
            "spec.httpRoute.hostnames: each entry must be a lower-case DNS name, optionally starting with *.",
            http_route(json!({"hostnames": ["Grafana.example"]})),
        ),
        st(
            "spec.httpRoute.parentRefs required",
            json!({"httpRoute": {"hostnames": ["grafana.example"]}}),
        ),
        st(
            "spec.httpRoute.annotations maxProperties",
            http_route(json!({"annotations": tags(65)})),
        ),
        st(
            "spec.httpRoute.hostnames maxItems",
            http_route(json!({"hostnames": vec!["grafana.example"; 17]})),
        ),
        st(
            "spec.httpRoute.hostnames[] minLength",
            http_route(json!({"hostnames": [""]})),
        ),
        st(
            "spec.httpRoute.hostnames[] maxLength",
            http_route(json!({"hostnames": [long(254)]})),
        ),
        st(
            "spec.httpRoute.labels maxProperties",
            http_route(json!({"labels": tags(65)})),
        ),
        st(
            "spec.httpRoute.parentRefs minItems",
            json!({"httpRoute": {"parentRefs": []}}),
        ),
        st(
            "spec.httpRoute.parentRefs maxItems",
            json!({"httpRoute": {"parentRefs": vec![json!({"name": "gw"}); 33]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].name required",
            json!({"httpRoute": {"parentRefs": [{"namespace": "gw"}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].name minLength",
            json!({"httpRoute": {"parentRefs": [{"name": ""}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].name maxLength",
            json!({"httpRoute": {"parentRefs": [{"name": long(254)}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].namespace minLength",
            json!({"httpRoute": {"parentRefs": [{"name": "gw", "namespace": ""}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].namespace maxLength",
            json!({"httpRoute": {"parentRefs": [{"name": "gw", "namespace": long(64)}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].sectionName minLength",
            json!({"httpRoute": {"parentRefs": [{"name": "gw", "sectionName": ""}]}}),
        ),
        st(
            "spec.httpRoute.parentRefs[].sectionName maxLength",
            json!({"httpRoute": {"parentRefs": [{"name": "gw", "sectionName": long(254)}]}}),
        ),
        st(
            "spec.httpRoute.path minLength",
            http_route(json!({"path": ""})),
        ),
        st(
            "spec.httpRoute.path maxLength",
            http_route(json!({"path": format!("/{}", long(1024))})),
        ),
        // --- spec.ingress ---
        cel(
            "spec.ingress.path must start with /",
            json!({"ingress": {"path": "grafana"}}),
        ),
        st(
            "spec.ingress.annotations maxProperties",
            json!({"ingress": {"annotations": tags(65)}}),
        ),
        st(
            "spec.ingress.className minLength",
            json!({"ingress": {"className": ""}}),
        ),
        st(
            "spec.ingress.className maxLength",
            json!({"ingress": {"className": long(254)}}),
        ),
        st(
            "spec.ingress.hosts maxItems",
            json!({"ingress": {"hosts": vec!["grafana.example"; 17]}}),
        ),
        st(
            "spec.ingress.hosts[] minLength",
            json!({"ingress": {"hosts": [""]}}),
        ),
        st(
            "spec.ingress.hosts[] maxLength",
            json!({"ingress": {"hosts": [long(254)]}}),
        ),
        st(
            "spec.ingress.labels maxProperties",
            json!({"ingress": {"labels": tags(65)}}),
        ),
        st(
            "spec.ingress.path minLength",
            json!({"ingress": {"path": ""}}),
        ),
        st(
            "spec.ingress.path maxLength",
            json!({"ingress": {"path": format!("/{}", long(1024))}}),
        ),
        st(
            "spec.ingress.tls.hosts maxItems",
            json!({"ingress": {"tls": {"hosts": vec!["grafana.example"; 17]}}}),
        ),
        st(
            "spec.ingress.tls.hosts[] minLength",
            json!({"ingress": {"tls": {"hosts": [""]}}}),
        ),
        st(
            "spec.ingress.tls.hosts[] maxLength",
            json!({"ingress": {"tls": {"hosts": [long(254)]}}}),
        ),
        st(
            "spec.ingress.tls.secretName minLength",
            json!({"ingress": {"tls": {"secretName": ""}}}),
        ),
        st(
            "spec.ingress.tls.secretName maxLength",
            json!({"ingress": {"tls": {"secretName": long(254)}}}),
        ),
        // --- spec.monitoring ---
        cel(
            "spec.monitoring.serviceMonitor.interval: a duration such as 30s or 1m",
            json!({"monitoring": {"serviceMonitor": {"interval": "thirty"}}}),
        ),
        st(
            "spec.monitoring.serviceMonitor.interval minLength",
            json!({"monitoring": {"serviceMonitor": {"interval": "1"}}}),
        ),
        st(
            "spec.monitoring.serviceMonitor.interval maxLength",
            json!({"monitoring": {"serviceMonitor": {"interval": format!("{}s", "1".repeat(16))}}}),
        ),
        st(
            "spec.monitoring.serviceMonitor.labels maxProperties",
            json!({"monitoring": {"serviceMonitor": {"labels": tags(65)}}}),
        ),
        // --- spec.networkPolicy ---
        cel(
            "spec.networkPolicy.ingressFrom: an empty list would let no one reach Grafana; remove it (anyone) or name the peers",
            json!({"networkPolicy": {"ingressFrom": []}}),
        ),
        st(
            "spec.networkPolicy.awsCidrs minItems",
            json!({"networkPolicy": {"awsCidrs": []}}),
        ),
        st(
            "spec.networkPolicy.awsCidrs maxItems",
            json!({"networkPolicy": {"awsCidrs": vec!["10.0.0.0/16"; 17]}}),
        ),
        st(
            "spec.networkPolicy.awsCidrs[] minLength",
            json!({"networkPolicy": {"awsCidrs": ["10.0/8"]}}),
        ),
        st(
            "spec.networkPolicy.awsCidrs[] maxLength",
            json!({"networkPolicy": {"awsCidrs": [long(44)]}}),
        ),
        st(
            "spec.networkPolicy.extraEgress maxItems",
            json!({"networkPolicy": {"extraEgress": vec![json!({}); 33]}}),
        ),
        st(
            "spec.networkPolicy.extraEgress[].to[].ipBlock.cidr required",
            json!({"networkPolicy": {"extraEgress": [{"to": [{"ipBlock": {}}]}]}}),
        ),
        st(
            "spec.networkPolicy.extraEgress[].to[].namespaceSelector.matchExpressions[].key required",
            egress_to(json!({"namespaceSelector": {"matchExpressions": [{"operator": "Exists"}]}})),
        ),
        st(
            "spec.networkPolicy.extraEgress[].to[].namespaceSelector.matchExpressions[].operator required",
            egress_to(json!({"namespaceSelector": {"matchExpressions": [{"key": "a"}]}})),
        ),
        st(
            "spec.networkPolicy.extraEgress[].to[].podSelector.matchExpressions[].key required",
            egress_to(json!({"podSelector": {"matchExpressions": [{"operator": "Exists"}]}})),
        ),
        st(
            "spec.networkPolicy.extraEgress[].to[].podSelector.matchExpressions[].operator required",
            egress_to(json!({"podSelector": {"matchExpressions": [{"key": "a"}]}})),
        ),
        st(
            "spec.networkPolicy.ingressFrom minItems",
            json!({"networkPolicy": {"ingressFrom": []}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom maxItems",
            json!({"networkPolicy": {"ingressFrom": vec![json!({"ipBlock": {"cidr": "10.0.0.0/8"}}); 33]}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom[].ipBlock.cidr required",
            json!({"networkPolicy": {"ingressFrom": [{"ipBlock": {}}]}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom[].namespaceSelector.matchExpressions[].key required",
            json!({"networkPolicy": {"ingressFrom": [{"namespaceSelector": {"matchExpressions": [{"operator": "Exists"}]}}]}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom[].namespaceSelector.matchExpressions[].operator required",
            json!({"networkPolicy": {"ingressFrom": [{"namespaceSelector": {"matchExpressions": [{"key": "a"}]}}]}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom[].podSelector.matchExpressions[].key required",
            json!({"networkPolicy": {"ingressFrom": [{"podSelector": {"matchExpressions": [{"operator": "Exists"}]}}]}}),
        ),
        st(
            "spec.networkPolicy.ingressFrom[].podSelector.matchExpressions[].operator required",
            json!({"networkPolicy": {"ingressFrom": [{"podSelector": {"matchExpressions": [{"key": "a"}]}}]}}),
        ),
        // --- spec.pod ---
        cel(
            "spec.pod.extraContainers: grafana and wait-for-plugins are the operator's containers; name yours otherwise",
            json!({"pod": {"extraContainers": [{"name": "grafana", "image": "busybox"}]}}),
        ),
        cel(
            "spec.pod.extraInitContainers: grafana and wait-for-plugins are the operator's containers; name yours otherwise",
            json!({"pod": {"extraInitContainers": [{"name": "wait-for-plugins", "image": "busybox"}]}}),
        ),
        cel(
            "spec.pod.extraPorts: 3000 and 9094 are Grafana's HTTP and gossip ports",
            json!({"pod": {"extraPorts": [{"containerPort": 9094}]}}),
        ),
        st(
            "spec.pod.annotations maxProperties",
            json!({"pod": {"annotations": tags(65)}}),
        ),
        st(
            "spec.pod.extraContainers maxItems",
            json!({"pod": {"extraContainers": named(9, json!({"image": "busybox"}))}}),
        ),
        st(
            "spec.pod.extraContainers[].name required",
            json!({"pod": {"extraContainers": [{"image": "busybox"}]}}),
        ),
        st(
            "spec.pod.extraContainers[].name minLength",
            json!({"pod": {"extraContainers": [{"name": ""}]}}),
        ),
        st(
            "spec.pod.extraContainers[].name maxLength",
            json!({"pod": {"extraContainers": [{"name": long(254)}]}}),
        ),
        st(
            "spec.pod.extraInitContainers maxItems",
            json!({"pod": {"extraInitContainers": named(9, json!({"image": "busybox"}))}}),
        ),
        st(
            "spec.pod.extraInitContainers[].name required",
            json!({"pod": {"extraInitContainers": [{"image": "busybox"}]}}),
        ),
        st(
            "spec.pod.extraInitContainers[].name minLength",
            json!({"pod": {"extraInitContainers": [{"name": ""}]}}),
        ),
        st(
            "spec.pod.extraInitContainers[].name maxLength",
            json!({"pod": {"extraInitContainers": [{"name": long(254)}]}}),
        ),
        st(
            "spec.pod.extraPorts maxItems",
            json!({"pod": {"extraPorts": (8000..8017).map(|p| json!({"containerPort": p})).collect::<Vec<_>>()}}),
        ),
        st(
            "spec.pod.extraPorts[].containerPort required",
            json!({"pod": {"extraPorts": [{"name": "extra"}]}}),
        ),
        st(
            "spec.pod.extraVolumeMounts maxItems",
            json!({"pod": {"extraVolumeMounts": (0..33).map(|i| json!({"name": "v", "mountPath": format!("/m{i}")})).collect::<Vec<_>>()}}),
        ),
        st(
            "spec.pod.extraVolumeMounts[].mountPath required",
            json!({"pod": {"extraVolumeMounts": [{"name": "v"}]}}),
        ),
        st(
            "spec.pod.extraVolumeMounts[].name required",
            json!({"pod": {"extraVolumeMounts": [{"mountPath": "/m"}]}}),
        ),
        st(
            "spec.pod.extraVolumes maxItems",
            json!({"pod": {"extraVolumes": named(33, json!({"emptyDir": {}}))}}),
        ),
        st(
            "spec.pod.extraVolumes[].name required",
            json!({"pod": {"extraVolumes": [{"emptyDir": {}}]}}),
        ),
        st(
            "spec.pod.extraVolumes[].name minLength",
            json!({"pod": {"extraVolumes": [{"name": "", "emptyDir": {}}]}}),
        ),
        st(
            "spec.pod.extraVolumes[].name maxLength",
            json!({"pod": {"extraVolumes": [{"name": long(254), "emptyDir": {}}]}}),
        ),
        st(
            "spec.pod.imagePullSecrets maxItems",
            json!({"pod": {"imagePullSecrets": named(17, json!({}))}}),
        ),
        st(
            "spec.pod.imagePullSecrets[].name required",
            json!({"pod": {"imagePullSecrets": [{}]}}),
        ),
        st(
            "spec.pod.labels maxProperties",
            json!({"pod": {"labels": tags(65)}}),
        ),
        st(
            "spec.pod.priorityClassName minLength",
            json!({"pod": {"priorityClassName": ""}}),
        ),
        st(
            "spec.pod.priorityClassName maxLength",
            json!({"pod": {"priorityClassName": long(254)}}),
        ),
        // --- spec.service ---
        cel(
            "spec.service: loadBalancerClass and loadBalancerSourceRanges need type: LoadBalancer",
            json!({"service": {"type": "ClusterIP", "loadBalancerClass": "service.k8s.aws/nlb"}}),
        ),
        st(
            "spec.service.annotations maxProperties",
            json!({"service": {"annotations": tags(65)}}),
        ),
        st(
            "spec.service.labels maxProperties",
            json!({"service": {"labels": tags(65)}}),
        ),
        st(
            "spec.service.loadBalancerClass minLength",
            json!({"service": {"type": "LoadBalancer", "loadBalancerClass": ""}}),
        ),
        st(
            "spec.service.loadBalancerClass maxLength",
            json!({"service": {"type": "LoadBalancer", "loadBalancerClass": long(254)}}),
        ),
        st(
            "spec.service.loadBalancerSourceRanges maxItems",
            json!({"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": vec!["10.0.0.0/8"; 65]}}),
        ),
        st(
            "spec.service.loadBalancerSourceRanges[] minLength",
            json!({"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": [""]}}),
        ),
        st(
            "spec.service.loadBalancerSourceRanges[] maxLength",
            json!({"service": {"type": "LoadBalancer", "loadBalancerSourceRanges": [long(65)]}}),
        ),
        st(
            "spec.service.type enum",
            json!({"service": {"type": "ExternalName"}}),
        ),
        // --- spec.serviceAccount ---
        cel(
            "spec.serviceAccount.name is required when create is false: name the existing ServiceAccount to use",
            json!({"serviceAccount": {"create": false}}),
        ),
        cel(
            "spec.serviceAccount: annotations and labels apply only to a ServiceAccount the operator creates; with create: false, annotate your own ServiceAccount",
            json!({"serviceAccount": {"create": false, "name": "grafana", "annotations": {"a": "b"}}}),
        ),
        st(
            "spec.serviceAccount.annotations maxProperties",
            json!({"serviceAccount": {"annotations": tags(65)}}),
        ),
        st(
            "spec.serviceAccount.labels maxProperties",
            json!({"serviceAccount": {"labels": tags(65)}}),
        ),
        st(
            "spec.serviceAccount.name minLength",
            json!({"serviceAccount": {"name": ""}}),
        ),
        st(
            "spec.serviceAccount.name maxLength",
            json!({"serviceAccount": {"name": long(254)}}),
        ),
    ]
}

/// A rule of the schema and what the apiserver's refusal must say.
#[derive(Debug)]
struct Rule {
    /// The `x-kubernetes-validations` message, or the field path and keyword.
    id: String,
    /// Substrings of the refusal: the message, or the field and the keyword's wording.
    expect: Vec<String>,
}

/// Every rule of the CRD's spec schema, in schema order.
fn rules_of_crd() -> Vec<Rule> {
    let crd: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_file("crds/grafanacluster.yaml")).expect("the CRD"),
    )
    .expect("the CRD parses");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut rules = Vec::new();
    walk(spec, "spec", &mut rules);
    rules
}

fn walk(node: &Value, path: &str, rules: &mut Vec<Rule>) {
    if KUBERNETES_TYPES.iter().any(|k| path.starts_with(k)) {
        return;
    }
    // The field path as the apiserver prints it: list items by index, map entries by
    // key (the cases use the key `k`).
    let at = shown(path);
    for keyword in KEYWORDS {
        if node.get(keyword).is_some() {
            let wording = match *keyword {
                "minLength" => "should be at least",
                "maxLength" => "Too long",
                "minimum" => "greater than or equal to",
                "maximum" => "less than or equal to",
                "enum" => "Unsupported value",
                "pattern" => "should match",
                "minItems" | "minProperties" => "should have at least",
                _ => "Too many",
            };
            rules.push(Rule {
                id: format!("{path} {keyword}"),
                expect: vec![at.clone(), wording.into()],
            });
        }
    }
    for required in node["required"].as_array().into_iter().flatten() {
        let field = format!("{path}.{}", required.as_str().expect("a field name"));
        rules.push(Rule {
            id: format!("{field} required"),
            expect: vec![shown(&field), "Required value".into()],
        });
    }
    for rule in node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let message = rule["message"]
            .as_str()
            .unwrap_or_else(|| panic!("the CEL rule at {path} has no message: {rule}"));
        rules.push(Rule {
            id: message.into(),
            expect: vec![message.into()],
        });
    }
    for (name, child) in node["properties"].as_object().into_iter().flatten() {
        walk(child, &format!("{path}.{name}"), rules);
    }
    if let Some(items) = node.get("items") {
        walk(items, &format!("{path}[]"), rules);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(values, &format!("{path}{{}}"), rules);
    }
}

/// A schema path as the apiserver prints it for the cases: `[]` as the first item,
/// `{}` as the entry `k`.
fn shown(path: &str) -> String {
    path.replace("[]", "[0]").replace("{}", ".k")
}

/// RFC 7386 merge patch: objects merge, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("an object");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, &b);
    a
}

fn object(ns: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "grafana-ha.io/v1alpha1",
        "kind": "GrafanaCluster",
        "metadata": {"name": "rules", "namespace": ns},
        "spec": spec,
    }))
    .expect("a GrafanaCluster object")
}

/// A server-side dry run of a create: Ok, or the apiserver's refusal message.
async fn dry_run(api: &Api<DynamicObject>, ns: &str, spec: Value) -> Result<(), String> {
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &object(ns, spec)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status.message),
        Err(other) => panic!("the dry run failed other than by a refusal: {other}"),
    }
}

async fn api_in(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<GrafanaCluster>(&()),
    )
}

#[test]
fn every_rule_of_the_crd_has_a_case_and_every_case_a_rule() {
    let rules = rules_of_crd();
    let cases: BTreeMap<String, Value> = cases().into_iter().collect();
    let mut ids = std::collections::BTreeSet::new();
    for rule in &rules {
        assert!(
            ids.insert(rule.id.clone()),
            "two rules share the id {:?}: give the CEL rules distinct messages",
            rule.id
        );
    }
    let missing: Vec<&str> = rules
        .iter()
        .filter(|r| !cases.contains_key(&r.id))
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "validation rules of crds/grafanacluster.yaml without a case in \
         tests/e2e_validation_rules.rs: add a violating spec for each to `cases()` \
         (keyed by the rule's message, or `<path> <keyword>` for a structural rule):\n  {}",
        missing.join("\n  ")
    );
    let stale: Vec<&String> = cases.keys().filter(|id| !ids.contains(*id)).collect();
    assert!(
        stale.is_empty(),
        "cases in tests/e2e_validation_rules.rs for no rule of the CRD (renamed message or \
         removed rule?): {stale:#?}"
    );
}

#[tokio::test]
async fn every_validation_rule_refuses_its_case_at_admission() {
    let started = std::time::Instant::now();
    let client = client().await;
    install_crd(&client).await;
    let ns = namespace(&client, "rules").await;
    let api = api_in(&client, &ns).await;

    // The base is accepted (so each refusal below is its case's doing); its CRD may have
    // just been established: retry briefly while the resource is not yet served.
    let mut accepted = Err(String::new());
    for _ in 0..40 {
        accepted = dry_run(&api, &ns, base()).await;
        if accepted.is_ok() || !accepted.as_ref().unwrap_err().contains("could not find") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    accepted.expect("the valid base spec is accepted");

    let cases: BTreeMap<String, Value> = cases().into_iter().collect();
    let mut failures = Vec::new();
    let rules = rules_of_crd();
    for rule in &rules {
        let Some(patch) = cases.get(&rule.id) else {
            continue; // every_rule_of_the_crd_has_a_case_and_every_case_a_rule says so
        };
        let spec = merged(base(), patch.clone());
        match dry_run(&api, &ns, spec).await {
            Ok(()) => failures.push(format!("{}: accepted", rule.id)),
            Err(message) => {
                let absent: Vec<&String> = rule
                    .expect
                    .iter()
                    .filter(|e| !message.contains(e.as_str()))
                    .collect();
                if !absent.is_empty() {
                    failures.push(format!(
                        "{}: refused without {absent:?}; the refusal: {message}",
                        rule.id
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rules not enforced as expected:\n{}",
        failures.len(),
        rules.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} rules, each refused at admission, in {:?}",
        rules.len(),
        started.elapsed()
    );
}
