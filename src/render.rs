//! `render`: the child objects the controller would apply for a GrafanaCluster file, as
//! multi-document YAML. It takes the controller's own path (discover -> validate -> resolve
//! -> build), so a preview cannot differ from what is applied. Secret values never reach
//! the output.

use std::fmt::Write as _;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use serde::Serialize;

use crate::api::{GrafanaCluster, validation};
use crate::aws::Discovery;
use crate::build::{self, Children, Owner, SecretInputs};
use crate::facts::SecretValue;
use crate::observe;
use crate::resolve;

/// Why rendering failed; `exit_code` tells the shell.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read the GrafanaCluster: {0}")]
    Parse(String),
    #[error("the GrafanaCluster is invalid: {0}")]
    Invalid(String),
    #[error("cannot build the cluster:\n{0}")]
    Unresolved(String),
    #[error("reading referenced Secrets: {0}")]
    Kube(#[from] kube::Error),
    #[error("serializing the output: {0}")]
    Output(String),
}

impl RenderError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RenderError::Parse(_) | RenderError::Invalid(_) => 2,
            _ => 1,
        }
    }
}

/// Parses a GrafanaCluster manifest; the namespace defaults to `default` like kubectl's.
pub fn parse(manifest: &str) -> Result<GrafanaCluster, RenderError> {
    let mut gc: GrafanaCluster =
        serde_yaml::from_str(manifest).map_err(|e| RenderError::Parse(e.to_string()))?;
    if gc.metadata.name.is_none() {
        return Err(RenderError::Parse("metadata.name is required".into()));
    }
    gc.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    Ok(gc)
}

/// Renders the children of `gc`. With a client, referenced Secrets are read (their digests
/// set the pod-template hash, exactly as in the controller); without one they are left out.
pub async fn render(
    gc: &GrafanaCluster,
    discovery: &Discovery,
    client: Option<&Client>,
) -> Result<String, RenderError> {
    let violations = validation::validate(gc);
    if !violations.is_empty() {
        return Err(RenderError::Invalid(validation::describe(&violations)));
    }
    let mut observed = observe::discover(gc, discovery).await;
    let mut inputs = SecretInputs::default();
    if let Some(client) = client {
        observe::read_secrets(gc, client, None, &mut observed, &mut inputs).await?;
    }
    observe::read_managed_credentials(gc, discovery, &mut observed, &mut inputs).await;
    let resolution = resolve::resolve(gc, &observed);
    let mut header = String::from("# Rendered by grafana-ha-operator render\n");
    for (what, c) in [
        ("database", &resolution.database.condition),
        ("cache", &resolution.cache.condition),
        ("storage", &resolution.storage.condition),
    ] {
        let _ = writeln!(header, "# {what}: {} ({})", c.message, c.reason);
    }
    let Some(wiring) = &resolution.wiring else {
        let reasons: Vec<String> = [
            ("database", &resolution.database.condition),
            ("cache", &resolution.cache.condition),
            ("storage", &resolution.storage.condition),
        ]
        .iter()
        .filter(|(_, c)| !c.status)
        .map(|(w, c)| format!("  {w}: {} ({})", c.message, c.reason))
        .collect();
        let reasons = if reasons.is_empty() {
            observed
                .secret_problems
                .admin
                .clone()
                .map(|p| format!("  admin: {p}"))
                .unwrap_or_default()
        } else {
            reasons.join("\n")
        };
        return Err(RenderError::Unresolved(reasons));
    };
    if gc.metadata.uid.is_none() {
        header.push_str(
            "# ownerReferences are set once the GrafanaCluster exists (it has no uid yet)\n",
        );
    }
    if client.is_none() {
        header.push_str("# without --kubeconfig: referenced Secrets were not read (the secrets hash and the Redis connection Secret are left out)\n");
    }
    header.push_str("# Secret values are redacted\n");

    let children = build::build_all(&gc.spec, wiring, &inputs);
    let owner = Owner::of(wiring);
    let mut docs = Vec::new();
    let Children {
        db_credentials,
        cache_secret,
        volume,
        claim,
        plugins_job,
        deployment,
        service,
        alerting_service,
        pdb,
    } = children;
    let wants_admin = gc
        .spec
        .admin_credentials
        .as_ref()
        .and_then(|a| a.secret_ref.as_ref())
        .is_none();
    let placeholder = SecretValue::new("");
    if wants_admin {
        docs.push(yaml(&redact(build::secrets::generated_admin(
            &owner,
            &placeholder,
        )))?);
    }
    docs.push(yaml(&redact(build::secrets::generated_secret_key(
        &owner,
        &placeholder,
    )))?);
    for secret in [db_credentials, cache_secret].into_iter().flatten() {
        docs.push(yaml(&redact(secret))?);
    }
    if let Some(v) = volume {
        docs.push(yaml(&v)?);
    }
    docs.push(yaml(&claim)?);
    if let Some(j) = plugins_job {
        docs.push(yaml(&j)?);
    }
    docs.push(yaml(&service)?);
    if let Some(s) = alerting_service {
        docs.push(yaml(&s)?);
    }
    if let Some(p) = pdb {
        docs.push(yaml(&p)?);
    }
    docs.push(yaml(&deployment)?);
    Ok(format!("{header}---\n{}", docs.join("---\n")))
}

/// Keeps a Secret's keys and drops its values.
fn redact(mut secret: Secret) -> Secret {
    if let Some(data) = secret.data.as_mut() {
        for value in data.values_mut() {
            *value = ByteString(Vec::new());
        }
    }
    secret
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("grafana-ha.io/render".into(), "values redacted".into());
    secret
}

fn yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    serde_yaml::to_string(value).map_err(|e| RenderError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_defaults_the_namespace_and_requires_a_name() {
        let gc = parse("apiVersion: grafana-ha.io/v1alpha1\nkind: GrafanaCluster\nmetadata:\n  name: g\nspec: {}\n")
            .expect("parses");
        assert_eq!(gc.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(gc.spec.replicas, 2, "CRD default applies");
        let err = parse(
            "apiVersion: grafana-ha.io/v1alpha1\nkind: GrafanaCluster\nmetadata: {}\nspec: {}\n",
        )
        .expect_err("no name");
        assert_eq!(err.exit_code(), 2);
        assert!(parse("spec: [").is_err());
    }

    #[test]
    fn redaction_keeps_keys_only() {
        let owner = Owner {
            name: "g".into(),
            namespace: "ns".into(),
            uid: None,
        };
        let s = redact(build::secrets::generated_admin(
            &owner,
            &SecretValue::new("hunter2"),
        ));
        let out = yaml(&s).expect("yaml");
        assert!(!out.contains("hunter2"));
        assert!(
            !out.contains("aHVudGVyMg"),
            "base64 of the value must not appear"
        );
        assert!(out.contains("password"));
    }
}
