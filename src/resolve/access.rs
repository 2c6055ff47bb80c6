//! Identity, the way in and pod customisation, defaults applied: the ServiceAccount, the
//! HTTP Service's exposure, the Ingress, and what the user adds to the Grafana pods.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, LocalObjectReference, SecurityContext, Volume,
    VolumeMount,
};

use crate::api::{GrafanaClusterSpec, ServiceType};
use crate::names;

/// The ServiceAccount the pods and the installer run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountPlan {
    pub name: String,
    /// Present when the operator creates it: its extra annotations and labels.
    pub created: Option<CreatedServiceAccount>,
    /// Mount the Kubernetes API token (pod and ServiceAccount).
    pub automount_token: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreatedServiceAccount {
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// How the HTTP Service is exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePlan {
    pub type_: String,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub load_balancer_class: Option<String>,
    pub load_balancer_source_ranges: Option<Vec<String>>,
}

/// The Ingress to the HTTP Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressPlan {
    pub name: String,
    pub class_name: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub hosts: Vec<String>,
    pub path: String,
    pub tls: Option<IngressTls>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressTls {
    pub secret_name: Option<String>,
    pub hosts: Vec<String>,
}

/// What the user adds to the Grafana pods, validated and with the restricted security
/// profile filled into every extra container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodExtras {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub image_pull_secrets: Vec<LocalObjectReference>,
    pub priority_class_name: Option<String>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    pub containers: Vec<Container>,
    pub init_containers: Vec<Container>,
    pub ports: Vec<ContainerPort>,
}

/// Identity, exposure and pod customisation of one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessPlan {
    pub service_account: ServiceAccountPlan,
    pub service: ServicePlan,
    pub ingress: Option<IngressPlan>,
    pub pod: PodExtras,
}

pub fn plan(cluster: &str, spec: &GrafanaClusterSpec) -> AccessPlan {
    AccessPlan {
        service_account: service_account(cluster, spec),
        service: service(spec),
        ingress: ingress(cluster, spec),
        pod: pod(spec),
    }
}

fn service_account(cluster: &str, spec: &GrafanaClusterSpec) -> ServiceAccountPlan {
    let sa = spec.service_account.clone().unwrap_or_default();
    let create = sa.create.unwrap_or(true);
    ServiceAccountPlan {
        name: sa
            .name
            .clone()
            .unwrap_or_else(|| names::service_account(cluster)),
        created: create.then(|| CreatedServiceAccount {
            annotations: sa.annotations.clone().unwrap_or_default(),
            labels: sa.labels.clone().unwrap_or_default(),
        }),
        automount_token: sa.automount_token.unwrap_or(false),
    }
}

fn service(spec: &GrafanaClusterSpec) -> ServicePlan {
    let svc = spec.service.clone().unwrap_or_default();
    let type_ = match svc.type_.unwrap_or(ServiceType::ClusterIP) {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    ServicePlan {
        type_: type_.into(),
        annotations: svc.annotations.unwrap_or_default(),
        labels: svc.labels.unwrap_or_default(),
        load_balancer_class: svc.load_balancer_class,
        load_balancer_source_ranges: svc.load_balancer_source_ranges,
    }
}

fn ingress(cluster: &str, spec: &GrafanaClusterSpec) -> Option<IngressPlan> {
    let ing = spec.ingress.clone()?;
    let hosts = ing.hosts.unwrap_or_default();
    Some(IngressPlan {
        name: names::ingress(cluster),
        class_name: ing.class_name,
        annotations: ing.annotations.unwrap_or_default(),
        labels: ing.labels.unwrap_or_default(),
        path: ing.path.unwrap_or_else(|| "/".into()),
        tls: ing.tls.map(|tls| IngressTls {
            secret_name: tls.secret_name,
            hosts: tls.hosts.unwrap_or_else(|| hosts.clone()),
        }),
        hosts,
    })
}

fn pod(spec: &GrafanaClusterSpec) -> PodExtras {
    let pod = spec.pod.clone().unwrap_or_default();
    let restrict = |c: Container| Container {
        security_context: Some(restricted(c.security_context.clone())),
        ..c
    };
    PodExtras {
        labels: pod.labels.unwrap_or_default(),
        annotations: pod.annotations.unwrap_or_default(),
        image_pull_secrets: pod.image_pull_secrets.unwrap_or_default(),
        priority_class_name: pod.priority_class_name,
        volumes: pod.extra_volumes.unwrap_or_default(),
        mounts: pod.extra_volume_mounts.unwrap_or_default(),
        containers: pod
            .extra_containers
            .unwrap_or_default()
            .into_iter()
            .map(restrict)
            .collect(),
        init_containers: pod
            .extra_init_containers
            .unwrap_or_default()
            .into_iter()
            .map(restrict)
            .collect(),
        ports: pod.extra_ports.unwrap_or_default(),
    }
}

/// The user's securityContext with what Pod Security `restricted` needs filled in where
/// unset: the pods must stay admissible in a restricted namespace. Weakened values never
/// get here (validation refuses them).
fn restricted(user: Option<SecurityContext>) -> SecurityContext {
    let mut sc = user.unwrap_or_default();
    sc.allow_privilege_escalation.get_or_insert(false);
    sc.run_as_non_root.get_or_insert(true);
    let caps = sc.capabilities.get_or_insert_with(Capabilities::default);
    caps.drop.get_or_insert_with(|| vec!["ALL".into()]);
    sc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn spec(extra: serde_json::Value) -> GrafanaClusterSpec {
        let mut base = serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        fixtures::cluster(base).spec
    }

    #[test]
    fn a_service_account_is_created_per_cluster_without_the_api_token() {
        let p = plan("grafana", &spec(serde_json::json!({})));
        assert_eq!(p.service_account.name, "grafana");
        assert_eq!(
            p.service_account.created,
            Some(CreatedServiceAccount::default())
        );
        assert!(!p.service_account.automount_token);
        assert_eq!(p.service.type_, "ClusterIP");
        assert!(p.ingress.is_none());
    }

    #[test]
    fn an_existing_service_account_is_only_referenced() {
        let p = plan(
            "grafana",
            &spec(
                serde_json::json!({"serviceAccount": {"create": false, "name": "mine", "automountToken": true}}),
            ),
        );
        assert_eq!(p.service_account.name, "mine");
        assert!(p.service_account.created.is_none());
        assert!(p.service_account.automount_token);
    }

    #[test]
    fn ingress_tls_hosts_default_to_the_hosts() {
        let s = spec(serde_json::json!({"ingress": {
            "hosts": ["g.example.com", "h.example.com"], "tls": {"secretName": "cert"}}}));
        let p = plan("grafana", &s);
        let ing = p.ingress.expect("ingress");
        assert_eq!(ing.path, "/");
        assert_eq!(
            ing.tls.expect("tls").hosts,
            vec!["g.example.com".to_string(), "h.example.com".to_string()]
        );
    }

    #[test]
    fn extra_containers_get_the_restricted_profile_where_unset() {
        let s = spec(serde_json::json!({"pod": {"extraContainers": [
            {"name": "side", "image": "busybox"},
            {"name": "own", "image": "busybox", "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": true}}
        ]}}));
        let p = plan("grafana", &s);
        let sc = p.pod.containers[0].security_context.clone().expect("sc");
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(
            sc.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
        let own = p.pod.containers[1].security_context.clone().expect("sc");
        assert_eq!(own.run_as_user, Some(1000));
        assert_eq!(own.read_only_root_filesystem, Some(true));
        assert_eq!(own.allow_privilege_escalation, Some(false));
    }

    #[test]
    fn a_missing_user_service_account_builds_nothing_and_says_so() {
        let mut gathered = fixtures::gathered();
        let mut fs = fixtures::file_system();
        fs.access_point_id = Some("fsap-0123456789abcdef0".into());
        gathered.storage = fixtures::found(fs);
        gathered.service_account_problem =
            Some("ServiceAccount obs/mine (spec.serviceAccount.name) does not exist".into());
        let resolution = crate::resolve::resolve(&fixtures::article(), &gathered);
        assert!(
            resolution.plan.is_none(),
            "no plan: the Deployment is left as it is"
        );
        let status = crate::status::compute(
            &fixtures::article(),
            &crate::status::StatusInputs {
                resolution: Some(&resolution),
                ..crate::status::StatusInputs::default()
            },
            fixtures::now(),
        );
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("spec.serviceAccount.name"),
            "{}",
            ready.message
        );
    }
}
