//! The plugin installer: one Job per plugin set, the single writer of the shared volume.
//!
//! Several replicas installing into one EFS directory at once race ("file in use"), so the
//! replicas never install: this Job does, once per set, and leaves a marker file that the
//! replicas' init container waits for.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::env::literal;
use super::meta::child_meta;
use super::pod::{
    container_security_context, plugins_mount, plugins_volume, pod_security_context, scratch,
};
use crate::names::{self, Component};
use crate::resolve::{Plan, PluginSet};

/// The script the installer runs; plugins arrive as positional arguments (validated as
/// `id@version`), never spliced into the script text.
const INSTALL_SCRIPT: &str = r#"set -eu
# One installer per plugin set and volume. Other sets' markers go first, so replicas of an
# older set (a rollback) wait for this run instead of trusting a marker of a volume state
# that no longer holds; grafana cli skips a plugin already at the exact version and replaces
# another version; this set's marker is written last, once everything is in place.
mkdir -p "$MARKER_DIR"
find "$MARKER_DIR" -mindepth 1 -maxdepth 1 ! -name "$PLUGIN_SET_HASH" -exec rm -f {} +
for plugin in "$@"; do
  id="${plugin%@*}"; version="${plugin#*@}"
  echo "installing $id $version"
  grafana cli --pluginsDir "$PLUGINS_DIR" plugins install "$id" "$version"
done
touch "$MARKER_DIR/$PLUGIN_SET_HASH"
echo "plugin set $PLUGIN_SET_HASH installed"
"#;

/// The shell command an init container runs to wait for `set` to be installed.
pub fn wait_command(set: &PluginSet) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "until [ -f {dir}/{hash} ]; do echo waiting for plugin set {hash}; sleep 2; done",
            dir = names::PLUGINS_MARKER_DIR,
            hash = set.hash
        ),
    ]
}

/// The installer Job for the plan's plugin set.
pub fn job(plan: &Plan) -> Option<Job> {
    let set = plan.plugins.as_ref()?;
    let mut labels = names::common_labels(&plan.cluster.name, Component::PluginsInstaller);
    labels.insert(names::PLUGIN_SET_LABEL.into(), set.hash.clone());
    let mut command = vec![
        "sh".to_string(),
        "-c".to_string(),
        INSTALL_SCRIPT.to_string(),
        "install-plugins".to_string(),
    ];
    command.extend(set.plugins.iter().cloned());
    let env = vec![
        literal("PLUGINS_DIR", names::PLUGINS_PATH),
        literal("MARKER_DIR", names::PLUGINS_MARKER_DIR),
        literal("PLUGIN_SET_HASH", &set.hash),
    ];
    let (tmp, tmp_mount) = scratch("tmp", "/tmp");
    let mut metadata = child_meta(
        &plan.cluster,
        set.job_name.clone(),
        Component::PluginsInstaller,
    );
    metadata.labels = Some(labels.clone());
    let mut pod = PodSpec {
        restart_policy: Some("OnFailure".into()),
        security_context: Some(pod_security_context()),
        node_selector: plan.pod.node_selector.clone(),
        tolerations: plan.pod.tolerations.clone(),
        // The installer mounts the same EFS volume as the replicas.
        affinity: super::pod::affinity(plan),
        containers: vec![k8s_openapi::api::core::v1::Container {
            name: "install-plugins".into(),
            image: Some(plan.image.clone()),
            command: Some(command),
            env: Some(env),
            security_context: Some(container_security_context()),
            volume_mounts: Some(vec![plugins_mount(false), tmp_mount]),
            ..Default::default()
        }],
        volumes: Some(vec![plugins_volume(plan), tmp]),
        ..PodSpec::default()
    };
    // The same identity as the replicas: a plugin source behind IAM (or a private
    // registry's pull secret) works for both.
    super::access::identity(plan, &mut pod);
    Some(Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(4),
            active_deadline_seconds: Some(900),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn one_job_per_plugin_set_passing_plugins_as_arguments() {
        let w = fixtures::plan();
        let job = job(&w).expect("job");
        let set = w.plugins.as_ref().expect("set");
        assert_eq!(job.metadata.name.as_deref(), Some(set.job_name.as_str()));
        let pod = job.spec.expect("spec").template.spec.expect("pod");
        let container = &pod.containers[0];
        let command = container.command.as_ref().expect("command");
        assert_eq!(
            command.last().map(String::as_str),
            Some("grafana-clock-panel@2.1.8")
        );
        assert!(
            !command[2].contains("grafana-clock-panel"),
            "plugins are arguments, not script text"
        );
        let claim = pod.volumes.expect("volumes")[0]
            .persistent_volume_claim
            .clone()
            .expect("pvc");
        assert_eq!(claim.claim_name, w.storage.status.claim_name);
        assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
    }

    #[test]
    fn no_plugins_no_job() {
        let gc = fixtures::cluster(serde_json::json!({
            "aws": {"tags": {"a": "b"}},
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
        }));
        assert!(job(&fixtures::plan_of(&gc)).is_none());
    }

    #[test]
    fn the_installer_never_trusts_an_old_marker() {
        // A rollback to a set installed before must install again: no early exit on the
        // marker, other sets' markers removed first, this set's marker written last.
        assert!(!INSTALL_SCRIPT.contains("exit 0"));
        let remove = INSTALL_SCRIPT.find("rm -f").expect("removes other markers");
        let install = INSTALL_SCRIPT.find("plugins install").expect("installs");
        let touch = INSTALL_SCRIPT.find("touch").expect("writes the marker");
        assert!(remove < install && install < touch);
        let job = job(&fixtures::plan()).expect("job");
        let c = &job
            .spec
            .expect("spec")
            .template
            .spec
            .expect("pod")
            .containers[0];
        let plugins = &c.volume_mounts.as_ref().expect("mounts")[0];
        assert_ne!(
            plugins.read_only,
            Some(true),
            "the installer is the one writer"
        );
    }

    #[test]
    fn init_wait_names_the_marker() {
        let w = fixtures::plan();
        let set = w.plugins.as_ref().expect("set");
        assert!(wait_command(set)[2].contains(&format!(
            "/var/lib/grafana/plugins/.grafana-ha/{}",
            set.hash
        )));
    }
}
