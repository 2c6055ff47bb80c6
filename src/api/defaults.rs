//! Defaults of the GrafanaCluster API that live in the operator rather than in the CRD.

/// Grafana image used when spec.image is not set: the current stable release when this
/// operator version was made. Its conf/defaults.ini keys are in src/settings/.
pub const GRAFANA_IMAGE: &str = "docker.io/grafana/grafana:13.3.0";

pub fn replicas() -> i32 {
    2
}

pub fn username_key() -> String {
    "username".to_string()
}

pub fn password_key() -> String {
    "password".to_string()
}
