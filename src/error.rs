//! Errors of the reconcile path, each with a metric label.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),

    #[error("serializing {what}: {source}")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("{0}")]
    Config(String),
}

impl Error {
    /// Low-cardinality label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(e)) if e.code == 409 => "kube_conflict",
            Error::Kube(kube::Error::Api(e)) if e.code == 403 => "kube_forbidden",
            Error::Kube(kube::Error::Api(e)) if e.code == 422 => "kube_invalid",
            Error::Kube(_) => "kube",
            Error::Serialize { .. } => "serialize",
            Error::Config(_) => "config",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
