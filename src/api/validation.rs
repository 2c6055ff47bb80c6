//! Client-side validation of a GrafanaCluster: the same rules admission applies.
//!
//! The CEL rules are not restated here: they are read from the generated CRD schema and
//! evaluated with kube's CEL interpreter, so the CRD and this module cannot disagree. The
//! OpenAPI bounds that matter for correctness (ranges, patterns) and the rules that need
//! knowledge the schema does not have (operator-managed env names) are checked in Rust.

use std::sync::OnceLock;

use kube::CustomResourceExt;
use kube::core::cel::{CompiledSchema, Validator, compile_schema};

use super::{GrafanaCluster, GrafanaClusterSpec};

/// One reason a spec is refused, naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.starts_with(&self.field) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Joins violations into one message for a condition or an error.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

struct CelRules {
    validator: Validator,
    schema: CompiledSchema,
}

fn cel_rules() -> &'static CelRules {
    static RULES: OnceLock<CelRules> = OnceLock::new();
    RULES.get_or_init(|| {
        let crd = GrafanaCluster::crd();
        let schema = crd
            .spec
            .versions
            .first()
            .and_then(|v| v.schema.as_ref())
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(serde_json::Value::Null);
        CelRules {
            validator: Validator::new(),
            schema: compile_schema(&schema),
        }
    })
}

pub use crate::settings::is_managed_env_name;

/// Every reason `gc` would be refused, empty when it is valid.
pub fn validate(gc: &GrafanaCluster) -> Vec<Violation> {
    let mut out = Vec::new();
    validate_cel(gc, &mut out);
    validate_spec(&gc.spec, &mut out);
    validate_access(&gc.spec, &mut out);
    out
}

fn validate_cel(gc: &GrafanaCluster, out: &mut Vec<Violation>) {
    let rules = cel_rules();
    let Ok(object) = serde_json::to_value(gc) else {
        out.push(Violation {
            field: "spec".into(),
            message: "cannot be serialized".into(),
        });
        return;
    };
    if let Err(errors) = rules
        .validator
        .validate_compiled(&rules.schema, &object, None)
    {
        for e in errors.into_vec() {
            out.push(Violation {
                field: e.field_path.clone(),
                message: e.message.clone(),
            });
        }
    }
}

fn validate_spec(spec: &GrafanaClusterSpec, out: &mut Vec<Violation>) {
    let mut refuse = |field: &str, message: String| {
        out.push(Violation {
            field: field.to_string(),
            message,
        })
    };
    if !(0..=1000).contains(&spec.replicas) {
        refuse(
            "spec.replicas",
            format!("must be between 0 and 1000, got {}", spec.replicas),
        );
    }
    if let Some(image) = &spec.image
        && image.trim().is_empty()
    {
        refuse("spec.image", "must not be empty".into());
    }
    for (field, endpoint) in [
        (
            "spec.database.endpoint.port",
            spec.database.as_ref().and_then(|d| d.endpoint.as_ref()),
        ),
        (
            "spec.cache.endpoint.port",
            spec.cache.as_ref().and_then(|c| c.endpoint.as_ref()),
        ),
    ] {
        if let Some(e) = endpoint
            && !(1..=65535).contains(&e.port)
        {
            refuse(
                field,
                format!("must be between 1 and 65535, got {}", e.port),
            );
        }
    }
    if let Some(efs) = spec.plugins.as_ref().and_then(|p| p.efs.as_ref()) {
        if let Some(id) = &efs.file_system_id
            && !is_aws_id(id, "fs-")
        {
            refuse(
                "spec.plugins.efs.fileSystemId",
                format!("{id:?} is not an EFS file system id (fs-...)"),
            );
        }
        if let Some(id) = &efs.access_point_id
            && !is_aws_id(id, "fsap-")
        {
            refuse(
                "spec.plugins.efs.accessPointId",
                format!("{id:?} is not an EFS access point id (fsap-...)"),
            );
        }
    }
    for (i, env) in spec.env.iter().flatten().enumerate() {
        if let Some(controller) = crate::settings::env_controlled_by(&env.name) {
            refuse(
                &format!("spec.env[{i}].name"),
                format!(
                    "{} is set by the operator from {controller}; set it there",
                    env.name
                ),
            );
        }
    }
    super::config::validate(spec, out);
}

/// The access and pod-customisation rules (src/api/access.rs).
fn validate_access(spec: &GrafanaClusterSpec, out: &mut Vec<Violation>) {
    super::access::validate(
        spec.service_account.as_deref(),
        spec.service.as_deref(),
        spec.ingress.as_deref(),
        spec.pod.as_deref(),
        out,
    );
}

fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (8..=40).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(spec: serde_json::Value) -> GrafanaCluster {
        let value = serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "g", "namespace": "ns"},
            "spec": spec,
        });
        serde_json::from_value(value).expect("test spec deserializes")
    }

    fn messages(spec: serde_json::Value) -> Vec<String> {
        validate(&cluster(spec))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "aws": {"tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        })
    }

    fn with(
        mut spec: serde_json::Value,
        path: &[&str],
        value: serde_json::Value,
    ) -> serde_json::Value {
        let mut cur = &mut spec;
        for key in &path[..path.len() - 1] {
            cur = cur
                .as_object_mut()
                .expect("object")
                .entry(key.to_string())
                .or_insert_with(|| serde_json::json!({}));
        }
        cur[path[path.len() - 1]] = value;
        spec
    }

    fn assert_refused(spec: serde_json::Value, needle: &str) {
        let msgs = messages(spec);
        assert!(
            msgs.iter().any(|m| m.contains(needle)),
            "expected a violation containing {needle:?}, got {msgs:?}"
        );
    }

    #[test]
    fn the_articles_setup_is_valid() {
        let spec = serde_json::json!({
            "replicas": 3,
            "aws": {"region": "eu-west-1", "tags": {"grafana-ha.io/cluster": "demo"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"authTokenSecretRef": {"name": "redis", "key": "token"}},
            "plugins": {"install": ["grafana-clock-panel@2.1.8", "grafana-piechart-panel@1.6.4"]},
            "alerting": {"ha": "redis"},
        });
        assert_eq!(messages(spec), Vec::<String>::new());
    }

    #[test]
    fn no_selector_anywhere_is_refused() {
        let spec = serde_json::json!({"database": {"credentials": {"rdsManagedSecret": true}}});
        let msgs = messages(spec);
        assert!(msgs.iter().any(|m| m.contains("spec.database")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("spec.cache")), "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("spec.plugins")), "{msgs:?}");
    }

    #[test]
    fn explicit_endpoints_need_no_tags() {
        let spec = serde_json::json!({
            "database": {"endpoint": {"host": "db", "port": 5432}, "engine": "postgres",
                          "credentials": {"secretRef": {"name": "db"}}},
            "cache": {"enabled": false},
            "plugins": {"storageClassName": "efs-sc"},
        });
        assert_eq!(messages(spec), Vec::<String>::new());
    }

    #[test]
    fn tags_and_endpoint_together_are_refused() {
        let spec = with(
            base(),
            &["database", "endpoint"],
            serde_json::json!({"host": "db", "port": 5432}),
        );
        let spec = with(spec, &["database", "tags"], serde_json::json!({"a": "b"}));
        assert_refused(spec, "at most one of tags and endpoint");
    }

    #[test]
    fn prometheus_data_sources_need_one_selector() {
        let ds = |v: serde_json::Value| with(base(), &["dataSources"], v);
        assert_refused(
            ds(serde_json::json!({"prometheus": {}})),
            "set workspaceId or a tag selector",
        );
        assert_refused(
            ds(serde_json::json!({"prometheus": {"tags": {}}})),
            "set workspaceId or a tag selector",
        );
        assert_refused(
            ds(serde_json::json!({"prometheus": {"workspaceId": "ws-1", "tags": {"a": "b"}}})),
            "at most one of workspaceId and tags",
        );
        for ok in [
            serde_json::json!({"prometheus": {"tags": {"team": "obs"}}, "cloudwatch": {}}),
            serde_json::json!({"prometheus": {"workspaceId": "ws-1"}}),
            serde_json::json!({"prometheus": {"enabled": false}}),
        ] {
            assert_eq!(messages(ds(ok)), Vec::<String>::new());
        }
    }

    #[test]
    fn empty_tag_map_is_refused() {
        assert_refused(
            with(base(), &["database", "tags"], serde_json::json!({})),
            "empty selector",
        );
    }

    #[test]
    fn credentials_need_exactly_one_source() {
        let none = with(base(), &["database", "credentials"], serde_json::json!({}));
        assert_refused(none, "exactly one of secretRef");
        let both = with(
            base(),
            &["database", "credentials", "secretRef"],
            serde_json::json!({"name": "db"}),
        );
        assert_refused(both, "exactly one of secretRef");
    }

    #[test]
    fn managed_secret_needs_discovery() {
        let spec = with(
            base(),
            &["database", "endpoint"],
            serde_json::json!({"host": "db", "port": 5432}),
        );
        let spec = with(spec, &["database", "engine"], serde_json::json!("postgres"));
        assert_refused(spec, "rdsManagedSecret needs discovery");
    }

    #[test]
    fn read_write_once_with_replicas_is_refused() {
        let spec = with(
            base(),
            &["plugins", "accessMode"],
            serde_json::json!("ReadWriteOnce"),
        );
        let spec = with(spec, &["replicas"], serde_json::json!(3));
        assert_refused(spec, "ReadWriteOnce cannot be shared");
        let single = with(
            base(),
            &["plugins", "accessMode"],
            serde_json::json!("ReadWriteOnce"),
        );
        let single = with(single, &["replicas"], serde_json::json!(1));
        assert_eq!(messages(single), Vec::<String>::new());
    }

    #[test]
    fn plugins_must_be_pinned_and_unique() {
        assert_refused(
            with(
                base(),
                &["plugins", "install"],
                serde_json::json!(["grafana-clock-panel"]),
            ),
            "pinned id@version",
        );
        assert_refused(
            with(
                base(),
                &["plugins", "install"],
                serde_json::json!(["a-panel@1.0.0", "a-panel@2.0.0"]),
            ),
            "may appear once",
        );
    }

    #[test]
    fn ssl_mode_must_fit_the_engine() {
        let spec = with(base(), &["database", "engine"], serde_json::json!("mysql"));
        let spec = with(spec, &["database", "sslMode"], serde_json::json!("require"));
        assert_refused(spec, "mysql takes true");
    }

    #[test]
    fn verifying_tls_needs_a_ca_bundle() {
        let spec = with(
            base(),
            &["database", "sslMode"],
            serde_json::json!("verify-full"),
        );
        assert_refused(spec.clone(), "spec.database.caBundleConfigMapRef");
        let spec = with(
            spec,
            &["database", "caBundleConfigMapRef"],
            serde_json::json!({"name": "rds-ca", "key": "global-bundle.pem"}),
        );
        assert!(messages(spec).is_empty());
    }

    #[test]
    fn redis_alerting_needs_redis() {
        let spec = with(base(), &["alerting", "ha"], serde_json::json!("redis"));
        let spec = with(spec, &["cache", "engine"], serde_json::json!("memcached"));
        assert_refused(spec, "redis needs a Redis cache");
    }

    #[test]
    fn literal_secret_env_is_refused() {
        let spec = with(
            base(),
            &["env"],
            serde_json::json!([{"name": "MY_API_TOKEN", "value": "abc"}]),
        );
        assert_refused(spec, "must use valueFrom");
        let ok = with(
            base(),
            &["env"],
            serde_json::json!([{"name": "GF_LOG_LEVEL", "value": "debug"}]),
        );
        assert_eq!(messages(ok), Vec::<String>::new());
    }

    #[test]
    fn managed_env_names_are_refused() {
        let spec = with(
            base(),
            &["env"],
            serde_json::json!([{"name": "GF_DATABASE_TYPE", "value": "sqlite3"}]),
        );
        assert_refused(spec, "set by the operator");
    }

    #[test]
    fn replicas_and_ids_are_bounded() {
        assert_refused(
            with(base(), &["replicas"], serde_json::json!(1001)),
            "spec.replicas",
        );
        assert_refused(
            with(
                base(),
                &["plugins", "efs", "fileSystemId"],
                serde_json::json!("nope"),
            ),
            "not an EFS file system id",
        );
    }

    #[test]
    fn endpoints_need_an_engine() {
        let spec = serde_json::json!({
            "database": {"endpoint": {"host": "db", "port": 5432},
                          "credentials": {"secretRef": {"name": "db"}}},
            "cache": {"endpoint": {"host": "c", "port": 6379}},
            "plugins": {"storageClassName": "efs-sc"},
        });
        let msgs = messages(spec);
        assert!(
            msgs.iter().any(|m| m.contains("spec.database.engine")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("spec.cache.engine")),
            "{msgs:?}"
        );
    }
}
