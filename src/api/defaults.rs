//! Defaults of the GrafanaCluster API that live in the operator rather than in the CRD.

/// Grafana image used when spec.image is not set: a pinned, current release.
pub const GRAFANA_IMAGE: &str = "docker.io/grafana/grafana:12.2.1";

pub fn replicas() -> i32 {
    2
}

pub fn username_key() -> String {
    "username".to_string()
}

pub fn password_key() -> String {
    "password".to_string()
}
