//! Identity, a way in and pod customisation: `spec.serviceAccount`, `spec.service`,
//! `spec.ingress` and `spec.pod`, and the client-side rules over them that need knowledge
//! the CRD schema does not have (the operator's own labels, volumes, paths and ports).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, LocalObjectReference, SecurityContext, Volume, VolumeMount,
};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::Violation;
use crate::names;

/// The ServiceAccount of the Grafana pods and the plugin installer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.create) || self.create || has(self.name)").message("spec.serviceAccount.name is required when create is false: name the existing ServiceAccount to use"),
    validation = Rule::new("!has(self.create) || self.create || (!has(self.annotations) && !has(self.labels))").message("spec.serviceAccount: annotations and labels apply only to a ServiceAccount the operator creates; with create: false, annotate your own ServiceAccount")
)]
pub struct ServiceAccountSpec {
    /// Create a ServiceAccount for this cluster (default true), named after the cluster
    /// unless name is set. false uses the existing ServiceAccount `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<bool>,

    /// Name of the ServiceAccount: the one to create, or the existing one (required with
    /// create: false). Defaults to the cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub name: Option<String>,

    /// Annotations of the created ServiceAccount, e.g. `eks.amazonaws.com/role-arn` for IAM
    /// roles for service accounts (IRSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Extra labels of the created ServiceAccount. The operator's own labels cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,

    /// Mount the Kubernetes API token into the pods (default false: Grafana never calls
    /// the Kubernetes API). IRSA and EKS Pod Identity tokens are projected by their own
    /// webhooks and reach the pods either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_token: Option<bool>,
}

/// Kubernetes Service type of the HTTP Service.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// The HTTP Service in front of the replicas (never the headless gossip Service).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(!has(self.loadBalancerClass) && !has(self.loadBalancerSourceRanges)) || (has(self.type) && self.type == 'LoadBalancer')").message("spec.service: loadBalancerClass and loadBalancerSourceRanges need type: LoadBalancer"))]
pub struct HttpServiceSpec {
    /// ClusterIP (default), NodePort or LoadBalancer.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<ServiceType>,

    /// Annotations of the Service, e.g. for the AWS Load Balancer Controller
    /// (`service.beta.kubernetes.io/aws-load-balancer-type: external`,
    /// `service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Extra labels of the Service. The operator's own labels cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,

    /// The load balancer implementation (e.g. `service.k8s.aws/nlb`); LoadBalancer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub load_balancer_class: Option<String>,

    /// Client CIDRs allowed through the load balancer; LoadBalancer only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64)))]
    pub load_balancer_source_ranges: Option<Vec<String>>,
}

/// TLS of the Ingress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressTlsSpec {
    /// Secret with the certificate and key (kubernetes.io/tls). Leave it out when the
    /// controller terminates TLS itself (the ALB with an ACM certificate annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,

    /// Hosts the certificate covers. Defaults to the Ingress hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub hosts: Option<Vec<String>>,
}

/// A networking.k8s.io/v1 Ingress to the HTTP Service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.path) || self.path.startsWith('/')").message("spec.ingress.path must start with /"))]
pub struct IngressSpec {
    /// IngressClass (e.g. `alb`, `nginx`). Defaults to the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// Annotations of the Ingress (e.g. `alb.ingress.kubernetes.io/target-type: ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Extra labels of the Ingress. The operator's own labels cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,

    /// Host names routed to Grafana. Without any, every host is. The first one sets
    /// server.domain and server.rootUrl (https with tls) unless server sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16), inner(length(min = 1, max = 253)))]
    pub hosts: Option<Vec<String>>,

    /// Path routed to Grafana, a Prefix match (default `/`). Under a sub-path the default
    /// server.rootUrl carries it and Grafana serves from it (server.serve_from_sub_path,
    /// unless spec.config sets it), with the probes and the scrape path under it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: Option<String>,

    /// Terminate TLS for the hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTlsSpec>,
}

/// What the Grafana pods get besides what the operator sets. Anything that would break the
/// operator's guarantees (its labels, volumes, mount paths, ports, container names, the
/// restricted security profile) is refused with the field named.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.extraContainers) || self.extraContainers.all(c, c.name != 'grafana' && c.name != 'wait-for-plugins')").message("spec.pod.extraContainers: grafana and wait-for-plugins are the operator's containers; name yours otherwise"),
    validation = Rule::new("!has(self.extraInitContainers) || self.extraInitContainers.all(c, c.name != 'grafana' && c.name != 'wait-for-plugins')").message("spec.pod.extraInitContainers: grafana and wait-for-plugins are the operator's containers; name yours otherwise"),
    validation = Rule::new("!has(self.extraPorts) || self.extraPorts.all(p, p.containerPort != 3000 && p.containerPort != 9094)").message("spec.pod.extraPorts: 3000 and 9094 are Grafana's HTTP and gossip ports")
)]
pub struct PodCustomization {
    /// Extra labels of the Grafana pods. The selector and operator labels cannot be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: Option<BTreeMap<String, String>>,

    /// Extra annotations of the Grafana pods (not `grafana-ha.io/` ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: Option<BTreeMap<String, String>>,

    /// Secrets to pull images with, for the Grafana pods and the plugin installer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,

    /// PriorityClass of the Grafana pods and the plugin installer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub priority_class_name: Option<String>,

    /// Extra volumes of the Grafana pods. Only the kinds Pod Security `restricted` allows
    /// (configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim, csi,
    /// ephemeral); names must differ from the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_volumes")]
    pub extra_volumes: Option<Vec<Volume>>,

    /// Extra mounts of the Grafana container, of extra volumes. Paths may not hide or sit
    /// inside the operator's mounts (plugins, secrets, database CA); under
    /// /var/lib/grafana (e.g. dashboards) is fine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub extra_volume_mounts: Option<Vec<VolumeMount>>,

    /// Sidecar containers. An unset securityContext gets the restricted profile (no
    /// privilege escalation, non-root, all capabilities dropped); a weaker one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_containers")]
    pub extra_containers: Option<Vec<Container>>,

    /// Init containers, run after the operator's; same rules as extraContainers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "opaque_containers")]
    pub extra_init_containers: Option<Vec<Container>>,

    /// Extra ports of the Grafana container (not 3000 or 9094, nor the names http,
    /// gossip-tcp, gossip-udp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub extra_ports: Option<Vec<ContainerPort>>,
}

/// A list of Kubernetes objects kept opaque in the CRD: the full Container and Volume
/// schemas would make the CRD about 400 KB, past what `kubectl apply` (client-side) can
/// store in its annotation. The operator still reads each item as a Container or Volume,
/// so a malformed one is reported as an unreadable object, and the rules in [`validate`]
/// hold as for any other field.
fn opaque_named_list(max_items: u32) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "maxItems": max_items,
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 253}},
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}

fn opaque_volumes(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    opaque_named_list(32)
}

fn opaque_containers(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    opaque_named_list(8)
}

/// The container names the operator uses in the Grafana pods.
pub const MANAGED_CONTAINERS: [&str; 2] = ["grafana", "wait-for-plugins"];
/// The port names of the Grafana container.
const MANAGED_PORT_NAMES: [&str; 3] = ["http", "gossip-tcp", "gossip-udp"];
/// The volume kinds Pod Security `restricted` allows.
const RESTRICTED_VOLUME_KINDS: [&str; 8] = [
    "configMap",
    "secret",
    "emptyDir",
    "projected",
    "downwardAPI",
    "persistentVolumeClaim",
    "csi",
    "ephemeral",
];
/// Mount paths inside which nothing may be mounted: the operator's read-only volumes.
const SEALED_PATHS: [&str; 3] = [names::PLUGINS_PATH, names::SECRETS_PATH, names::DB_CA_DIR];

/// Every refusal over serviceAccount, service, ingress and pod.
pub fn validate(
    service_account: Option<&ServiceAccountSpec>,
    service: Option<&HttpServiceSpec>,
    ingress: Option<&IngressSpec>,
    pod: Option<&PodCustomization>,
    out: &mut Vec<Violation>,
) {
    let mut refuse = |field: String, message: String| out.push(Violation { field, message });
    let mut labels = |field: &str, map: Option<&BTreeMap<String, String>>| {
        for key in map.into_iter().flat_map(BTreeMap::keys) {
            if is_operator_key(key) {
                refuse(
                    format!("{field}.labels[{key}]"),
                    format!("{key} is the operator's own label (selectors and cleanup rely on it)"),
                );
            }
        }
    };
    labels(
        "spec.serviceAccount",
        service_account.and_then(|s| s.labels.as_ref()),
    );
    labels("spec.service", service.and_then(|s| s.labels.as_ref()));
    labels("spec.ingress", ingress.and_then(|s| s.labels.as_ref()));
    labels("spec.pod", pod.and_then(|s| s.labels.as_ref()));
    for (field, map) in [
        (
            "spec.serviceAccount",
            service_account.and_then(|s| s.annotations.as_ref()),
        ),
        ("spec.service", service.and_then(|s| s.annotations.as_ref())),
        ("spec.ingress", ingress.and_then(|s| s.annotations.as_ref())),
        ("spec.pod", pod.and_then(|s| s.annotations.as_ref())),
    ] {
        for key in map.into_iter().flat_map(BTreeMap::keys) {
            if key.starts_with(OPERATOR_PREFIX) {
                refuse(
                    format!("{field}.annotations[{key}]"),
                    format!("{OPERATOR_PREFIX} annotations are the operator's own"),
                );
            }
        }
    }
    if let Some(pod) = pod {
        validate_pod(pod, &mut refuse);
    }
}

const OPERATOR_PREFIX: &str = "grafana-ha.io/";

/// A label key the operator sets on its children and selects or sweeps by.
fn is_operator_key(key: &str) -> bool {
    key.starts_with(OPERATOR_PREFIX)
        || names::common_labels("x", names::Component::Server).contains_key(key)
}

fn validate_pod(pod: &PodCustomization, refuse: &mut impl FnMut(String, String)) {
    let extra_volumes: Vec<&str> = pod
        .extra_volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    for (i, volume) in pod.extra_volumes.iter().flatten().enumerate() {
        let field = format!("spec.pod.extraVolumes[{i}]");
        if names::MANAGED_VOLUMES.contains(&volume.name.as_str()) {
            refuse(
                format!("{field}.name"),
                format!("{} is a volume of the operator", volume.name),
            );
        }
        if extra_volumes.iter().filter(|n| **n == volume.name).count() > 1 {
            refuse(
                format!("{field}.name"),
                format!("{} appears more than once", volume.name),
            );
        }
        let kinds = volume_kinds(volume);
        if kinds.is_empty()
            || kinds
                .iter()
                .any(|k| !RESTRICTED_VOLUME_KINDS.contains(&k.as_str()))
        {
            refuse(
                field,
                format!(
                    "volume {} must be one of {} (the pods run under Pod Security restricted)",
                    volume.name,
                    RESTRICTED_VOLUME_KINDS.join(", ")
                ),
            );
        }
    }
    for (i, mount) in pod.extra_volume_mounts.iter().flatten().enumerate() {
        let field = format!("spec.pod.extraVolumeMounts[{i}]");
        if !extra_volumes.contains(&mount.name.as_str()) {
            refuse(
                format!("{field}.name"),
                format!(
                    "{} is not in spec.pod.extraVolumes (the operator's volumes are mounted by the operator)",
                    mount.name
                ),
            );
        }
        if let Some(problem) = path_problem(&mount.mount_path) {
            refuse(format!("{field}.mountPath"), problem);
        }
    }
    for (i, port) in pod.extra_ports.iter().flatten().enumerate() {
        let field = format!("spec.pod.extraPorts[{i}]");
        if let Some(problem) = port_problem(port) {
            refuse(field, problem);
        }
    }
    let containers: Vec<(String, &Container)> = [
        ("extraInitContainers", &pod.extra_init_containers),
        ("extraContainers", &pod.extra_containers),
    ]
    .into_iter()
    .flat_map(|(list, items)| {
        items
            .iter()
            .flatten()
            .enumerate()
            .map(move |(i, c)| (format!("spec.pod.{list}[{i}]"), c))
    })
    .collect();
    // Managed container names and Grafana's port numbers in extraPorts are CEL rules on
    // PodCustomization.
    for (field, c) in &containers {
        if containers.iter().filter(|(_, o)| o.name == c.name).count() > 1 {
            refuse(
                format!("{field}.name"),
                format!("{} is used by more than one extra container", c.name),
            );
        }
        for (j, port) in c.ports.iter().flatten().enumerate() {
            if [names::HTTP_PORT, names::GOSSIP_PORT].contains(&port.container_port) {
                refuse(
                    format!("{field}.ports[{j}]"),
                    format!(
                        "port {} is Grafana's (containers of a pod share its network)",
                        port.container_port
                    ),
                );
            }
        }
        for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
            if m.name == "plugins" && m.read_only != Some(true) {
                refuse(
                    format!("{field}.volumeMounts[{j}]"),
                    "the plugins volume has one writer, the installer Job: mount it readOnly"
                        .into(),
                );
            }
        }
        if let Some(sc) = &c.security_context {
            for problem in weakened(sc) {
                refuse(format!("{field}.securityContext"), problem);
            }
        }
    }
}

/// The keys of a Volume besides its name: its kind (hostPath, nfs, ...).
fn volume_kinds(volume: &Volume) -> Vec<String> {
    match serde_json::to_value(volume) {
        Ok(serde_json::Value::Object(map)) => {
            map.keys().filter(|k| *k != "name").cloned().collect()
        }
        _ => Vec::new(),
    }
}

/// Why an extra mount path would break one of the operator's mounts.
fn path_problem(path: &str) -> Option<String> {
    let path = path.trim_end_matches('/');
    for managed in names::MANAGED_MOUNT_PATHS {
        if path == managed {
            return Some(format!("{managed} is mounted by the operator"));
        }
        if path.is_empty() || managed.starts_with(&format!("{path}/")) {
            return Some(format!("{path} would hide the operator's mount {managed}"));
        }
    }
    SEALED_PATHS
        .iter()
        .find(|sealed| path.starts_with(&format!("{sealed}/")))
        .map(|sealed| format!("{path} is inside the operator's read-only mount {sealed}"))
}

fn port_problem(port: &ContainerPort) -> Option<String> {
    match &port.name {
        Some(name) if MANAGED_PORT_NAMES.contains(&name.as_str()) => {
            Some(format!("port name {name} is the operator's"))
        }
        _ => None,
    }
}

/// What in a container's securityContext falls below Pod Security `restricted`.
fn weakened(sc: &SecurityContext) -> Vec<String> {
    let mut out = Vec::new();
    if sc.privileged == Some(true) {
        out.push("privileged is not allowed".to_string());
    }
    if sc.allow_privilege_escalation == Some(true) {
        out.push("allowPrivilegeEscalation: true is not allowed".to_string());
    }
    if sc.run_as_non_root == Some(false) {
        out.push("runAsNonRoot: false is not allowed".to_string());
    }
    if sc.run_as_user == Some(0) {
        out.push("runAsUser: 0 (root) is not allowed".to_string());
    }
    let added: Vec<&String> = sc
        .capabilities
        .iter()
        .flat_map(|c| c.add.iter().flatten())
        .filter(|c| c.as_str() != "NET_BIND_SERVICE")
        .collect();
    if !added.is_empty() {
        out.push(format!(
            "adding capabilities {added:?} is not allowed (only NET_BIND_SERVICE)"
        ));
    }
    if sc
        .seccomp_profile
        .as_ref()
        .is_some_and(|p| p.type_ == "Unconfined")
    {
        out.push("seccompProfile Unconfined is not allowed".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::api::GrafanaCluster;
    use crate::api::validation::validate;

    fn messages(extra: serde_json::Value) -> Vec<String> {
        let mut spec = serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1", "kind": "GrafanaCluster",
            "metadata": {"name": "g", "namespace": "ns"}, "spec": spec,
        }))
        .expect("deserializes");
        validate(&gc).iter().map(ToString::to_string).collect()
    }

    fn assert_refused(extra: serde_json::Value, field: &str, needle: &str) {
        let msgs = messages(extra);
        assert!(
            msgs.iter().any(|m| m.contains(field) && m.contains(needle)),
            "expected {field} refused with {needle:?}, got {msgs:?}"
        );
    }

    #[test]
    fn a_full_customisation_is_valid() {
        let msgs = messages(serde_json::json!({
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/g"}},
            "service": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
            "ingress": {"className": "alb", "hosts": ["g.example.com"], "tls": {}},
            "pod": {
                "labels": {"team": "obs", "app.kubernetes.io/part-of": "observability"},
                "extraVolumes": [{"name": "dash", "configMap": {"name": "d"}}],
                "extraVolumeMounts": [{"name": "dash", "mountPath": "/var/lib/grafana/dashboards"}],
                "extraContainers": [{"name": "side", "image": "busybox",
                    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
                    "volumeMounts": [{"name": "plugins", "mountPath": "/p", "readOnly": true}]}],
                "extraPorts": [{"containerPort": 6060}]
            }
        }));
        assert_eq!(msgs, Vec::<String>::new());
    }

    #[test]
    fn an_existing_service_account_needs_a_name_and_takes_no_annotations() {
        assert_refused(
            serde_json::json!({"serviceAccount": {"create": false}}),
            "spec.serviceAccount.name",
            "required when create is false",
        );
        assert_refused(
            serde_json::json!({"serviceAccount": {"create": false, "name": "x",
                "annotations": {"eks.amazonaws.com/role-arn": "r"}}}),
            "spec.serviceAccount",
            "annotate your own",
        );
    }

    #[test]
    fn load_balancer_fields_need_a_load_balancer() {
        assert_refused(
            serde_json::json!({"service": {"loadBalancerClass": "service.k8s.aws/nlb"}}),
            "spec.service",
            "need type: LoadBalancer",
        );
    }

    #[test]
    fn ingress_path_must_be_absolute() {
        assert_refused(
            serde_json::json!({"ingress": {"path": "grafana"}}),
            "spec.ingress.path",
            "start with /",
        );
    }

    #[test]
    fn the_operators_labels_and_annotations_are_refused() {
        for (field, label) in [
            ("pod", "app.kubernetes.io/instance"),
            ("pod", "app.kubernetes.io/component"),
            ("service", "grafana-ha.io/cluster"),
            ("serviceAccount", "app.kubernetes.io/managed-by"),
            ("ingress", "app.kubernetes.io/name"),
        ] {
            assert_refused(
                serde_json::json!({field: {"labels": {label: "x"}}}),
                &format!("spec.{field}.labels[{label}]"),
                "operator's own label",
            );
        }
        assert_refused(
            serde_json::json!({"pod": {"annotations": {"grafana-ha.io/secrets-hash": "x"}}}),
            "spec.pod.annotations",
            "operator's own",
        );
    }

    #[test]
    fn volumes_and_mounts_may_not_touch_the_operators() {
        assert_refused(
            serde_json::json!({"pod": {"extraVolumes": [{"name": "plugins", "emptyDir": {}}]}}),
            "spec.pod.extraVolumes[0].name",
            "volume of the operator",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraVolumes": [{"name": "h", "hostPath": {"path": "/"}}]}}),
            "spec.pod.extraVolumes[0]",
            "Pod Security restricted",
        );
        let vol = serde_json::json!([{"name": "x", "emptyDir": {}}]);
        for (path, needle) in [
            ("/var/lib/grafana/plugins", "mounted by the operator"),
            ("/etc/grafana", "would hide"),
            ("/var/lib", "would hide"),
            (
                "/etc/grafana/secrets/extra",
                "inside the operator's read-only mount",
            ),
            (
                "/var/lib/grafana/plugins/mine",
                "inside the operator's read-only mount",
            ),
        ] {
            assert_refused(
                serde_json::json!({"pod": {"extraVolumes": vol,
                    "extraVolumeMounts": [{"name": "x", "mountPath": path}]}}),
                "spec.pod.extraVolumeMounts[0].mountPath",
                needle,
            );
        }
        assert_refused(
            serde_json::json!({"pod": {"extraVolumeMounts": [{"name": "data", "mountPath": "/d"}]}}),
            "spec.pod.extraVolumeMounts[0].name",
            "not in spec.pod.extraVolumes",
        );
    }

    #[test]
    fn containers_and_ports_may_not_collide_with_the_operators() {
        assert_refused(
            serde_json::json!({"pod": {"extraContainers": [{"name": "grafana", "image": "x"}]}}),
            "spec.pod.extraContainers",
            "operator's containers",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraInitContainers": [{"name": "wait-for-plugins", "image": "x"}]}}),
            "spec.pod.extraInitContainers",
            "operator's containers",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraContainers": [{"name": "a", "image": "x"}],
                "extraInitContainers": [{"name": "a", "image": "x"}]}}),
            "spec.pod.extraContainers[0].name",
            "more than one",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraPorts": [{"containerPort": 9094}]}}),
            "spec.pod.extraPorts",
            "9094",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraPorts": [{"name": "http", "containerPort": 8080}]}}),
            "spec.pod.extraPorts[0]",
            "port name http",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraContainers": [{"name": "a", "image": "x",
                "ports": [{"containerPort": 3000}]}]}}),
            "spec.pod.extraContainers[0].ports[0]",
            "Grafana's",
        );
        assert_refused(
            serde_json::json!({"pod": {"extraContainers": [{"name": "a", "image": "x",
                "volumeMounts": [{"name": "plugins", "mountPath": "/p"}]}]}}),
            "spec.pod.extraContainers[0].volumeMounts[0]",
            "readOnly",
        );
    }

    #[test]
    fn weakened_security_contexts_are_refused() {
        for (sc, needle) in [
            (serde_json::json!({"privileged": true}), "privileged"),
            (
                serde_json::json!({"allowPrivilegeEscalation": true}),
                "allowPrivilegeEscalation",
            ),
            (serde_json::json!({"runAsNonRoot": false}), "runAsNonRoot"),
            (serde_json::json!({"runAsUser": 0}), "runAsUser: 0"),
            (
                serde_json::json!({"capabilities": {"add": ["SYS_ADMIN"]}}),
                "SYS_ADMIN",
            ),
            (
                serde_json::json!({"seccompProfile": {"type": "Unconfined"}}),
                "Unconfined",
            ),
        ] {
            assert_refused(
                serde_json::json!({"pod": {"extraInitContainers": [{"name": "a", "image": "x",
                    "securityContext": sc}]}}),
                "spec.pod.extraInitContainers[0].securityContext",
                needle,
            );
        }
    }
}
