//! The ServiceAccount, the Ingress, and the user's additions to the Grafana pods and the
//! installer's pod.

use k8s_openapi::api::core::v1::{PodSpec, ServiceAccount};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::meta::child_meta;
use crate::names::{self, Component};
use crate::resolve::Plan;

/// The ServiceAccount the operator creates (absent when the user brings their own).
pub fn service_account(plan: &Plan) -> Option<ServiceAccount> {
    let sa = &plan.access.service_account;
    let created = sa.created.as_ref()?;
    let mut metadata = child_meta(&plan.cluster, sa.name.clone(), Component::Server);
    // The operator's labels last: validation refuses the user's overriding them anyway.
    let mut labels = created.labels.clone();
    labels.extend(metadata.labels.take().unwrap_or_default());
    metadata.labels = Some(labels);
    metadata.annotations = (!created.annotations.is_empty()).then(|| created.annotations.clone());
    Some(ServiceAccount {
        metadata,
        automount_service_account_token: Some(sa.automount_token),
        ..ServiceAccount::default()
    })
}

/// The Ingress to the HTTP Service, one rule per host (or one for every host).
pub fn ingress(plan: &Plan) -> Option<Ingress> {
    let ing = plan.access.ingress.as_ref()?;
    let mut metadata = child_meta(&plan.cluster, ing.name.clone(), Component::Server);
    let mut labels = ing.labels.clone();
    labels.extend(metadata.labels.take().unwrap_or_default());
    metadata.labels = Some(labels);
    metadata.annotations = (!ing.annotations.is_empty()).then(|| ing.annotations.clone());
    let http = HTTPIngressRuleValue {
        paths: vec![HTTPIngressPath {
            path: Some(ing.path.clone()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: names::service(&plan.cluster.name),
                    port: Some(ServiceBackendPort {
                        name: Some("http".into()),
                        number: None,
                    }),
                }),
                resource: None,
            },
        }],
    };
    let rules = if ing.hosts.is_empty() {
        vec![IngressRule {
            host: None,
            http: Some(http),
        }]
    } else {
        ing.hosts
            .iter()
            .map(|h| IngressRule {
                host: Some(h.clone()),
                http: Some(http.clone()),
            })
            .collect()
    };
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: ing.class_name.clone(),
            rules: Some(rules),
            tls: ing.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: (!tls.hosts.is_empty()).then(|| tls.hosts.clone()),
                    secret_name: tls.secret_name.clone(),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    })
}

/// What every pod of the cluster (Grafana and installer) shares: identity, pull secrets,
/// priority.
pub fn identity(plan: &Plan, pod: &mut PodSpec) {
    let access = &plan.access;
    pod.service_account_name = Some(access.service_account.name.clone());
    pod.automount_service_account_token = Some(access.service_account.automount_token);
    if !access.pod.image_pull_secrets.is_empty() {
        pod.image_pull_secrets = Some(access.pod.image_pull_secrets.clone());
    }
    pod.priority_class_name = access.pod.priority_class_name.clone();
}

#[cfg(test)]
mod tests;
