//! Errors of the reconcile path, each with a class that becomes the metric label.

/// The class of a failure, as the `reason` label of the error metric. Kubernetes API errors
/// keep their HTTP status class, so a 403 (RBAC), a 409 (conflict) and a 422 (invalid
/// object) are told apart on a dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// RBAC (or another admission plugin) refused the request.
    KubeForbidden,
    /// A 403 whose cause is that the namespace is being deleted: the cluster is going away
    /// with it, not a missing permission (kept apart so RBAC alerts stay meaningful).
    KubeNamespaceTerminating,
    KubeNotFound,
    KubeConflict,
    KubeInvalid,
    KubeTooManyRequests,
    KubeClientError,
    KubeServerError,
    /// No HTTP answer: connection, TLS, timeout, decoding.
    KubeTransport,
    Serialize,
    Config,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::KubeForbidden => "kube_forbidden",
            ErrorClass::KubeNamespaceTerminating => "kube_namespace_terminating",
            ErrorClass::KubeNotFound => "kube_not_found",
            ErrorClass::KubeConflict => "kube_conflict",
            ErrorClass::KubeInvalid => "kube_invalid",
            ErrorClass::KubeTooManyRequests => "kube_too_many_requests",
            ErrorClass::KubeClientError => "kube_client_error",
            ErrorClass::KubeServerError => "kube_server_error",
            ErrorClass::KubeTransport => "kube_transport",
            ErrorClass::Serialize => "serialize",
            ErrorClass::Config => "config",
        }
    }

    /// The class of an HTTP status code from the API server.
    pub fn of_status(code: u16) -> ErrorClass {
        match code {
            403 => ErrorClass::KubeForbidden,
            404 => ErrorClass::KubeNotFound,
            409 => ErrorClass::KubeConflict,
            422 => ErrorClass::KubeInvalid,
            429 => ErrorClass::KubeTooManyRequests,
            500..=599 => ErrorClass::KubeServerError,
            _ => ErrorClass::KubeClientError,
        }
    }
}

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
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Kube(kube::Error::Api(e)) if namespace_terminating(e) => {
                ErrorClass::KubeNamespaceTerminating
            }
            Error::Kube(kube::Error::Api(e)) => ErrorClass::of_status(e.code),
            Error::Kube(_) => ErrorClass::KubeTransport,
            Error::Serialize { .. } => ErrorClass::Serialize,
            Error::Config(_) => ErrorClass::Config,
        }
    }

    /// Low-cardinality label for the reconcile error metric.
    pub fn metric_label(&self) -> &'static str {
        self.class().as_str()
    }
}

/// The API server's NamespaceLifecycle refusal: 403 with the `NamespaceTerminating` cause.
fn namespace_terminating(status: &kube::core::Status) -> bool {
    status.code == 403
        && status
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_classes_are_kept() {
        assert_eq!(ErrorClass::of_status(403), ErrorClass::KubeForbidden);
        assert_eq!(ErrorClass::of_status(409), ErrorClass::KubeConflict);
        assert_eq!(ErrorClass::of_status(422), ErrorClass::KubeInvalid);
        assert_eq!(ErrorClass::of_status(503), ErrorClass::KubeServerError);
        assert_eq!(ErrorClass::of_status(400), ErrorClass::KubeClientError);
        let status = kube::core::Status::failure("denied", "Forbidden").with_code(403);
        let e = Error::Kube(kube::Error::Api(Box::new(status)));
        assert_eq!(e.metric_label(), "kube_forbidden");
    }

    #[test]
    fn a_terminating_namespace_is_not_an_rbac_refusal() {
        // The body kube-apiserver's NamespaceLifecycle admission answers with.
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "deployments.apps \"grafana\" is forbidden: unable to create new content in namespace x because it is being terminated",
            "reason": "Forbidden",
            "details": {"name": "grafana", "group": "apps", "kind": "deployments", "causes": [
                {"reason": "NamespaceTerminating", "message": "namespace x is being terminated", "field": "metadata.namespace"}
            ]},
            "code": 403
        }))
        .unwrap();
        let e = Error::Kube(kube::Error::Api(Box::new(status)));
        assert_eq!(e.metric_label(), "kube_namespace_terminating");
    }
}
