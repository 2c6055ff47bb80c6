//! `render`: the child objects the controller would apply for a GrafanaCluster file, as
//! multi-document YAML, in apply order. It takes the controller's own path ([`gather`] ->
//! [`pipeline::plan`]) and prints [`Children::into_ordered`], the iterator the applier
//! walks, so a preview cannot differ from what is applied. Secret values never reach the
//! output.

use std::fmt::Write as _;

use kube::Client;
use serde::Serialize;

use crate::api::GrafanaCluster;
use crate::aws::Discovery;
use crate::build::{Child, Children, secrets};
use crate::gather::{self, Gathered, Sources};
use crate::pipeline::{self, Planned};

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
/// set the pod-template hash, exactly as in the controller); without one they are not.
pub async fn render(
    gc: &GrafanaCluster,
    discovery: &Discovery,
    client: Option<&Client>,
) -> Result<String, RenderError> {
    if let Some(invalid) = pipeline::validate(gc) {
        return Err(RenderError::Invalid(invalid));
    }
    let sources = Sources {
        discovery,
        client,
        secret_cache: None,
        deployment_cache: None,
        autoscaler_cache: None,
        snapshots_allowed: false,
        optional_apis: None,
    };
    let gathered = gather::gather(gc, sources).await?;
    render_gathered(gc, &gathered)
}

/// The pure half of [`render`]: the output for what was gathered.
pub fn render_gathered(gc: &GrafanaCluster, gathered: &Gathered) -> Result<String, RenderError> {
    let Planned {
        resolution,
        children,
    } = pipeline::plan(gc, gathered);
    let mut header = String::from("# Rendered by grafana-ha-operator render\n");
    for (what, c) in header_conditions(&resolution) {
        let _ = writeln!(header, "# {what}: {} ({})", c.message, c.reason);
    }
    if let Some(line) = would_create(&resolution) {
        let _ = writeln!(header, "# {line}");
    }
    let Some(children) = children else {
        return Err(RenderError::Unresolved(unresolved(&resolution)));
    };
    if gc.metadata.uid.is_none() {
        header.push_str(
            "# ownerReferences are set once the GrafanaCluster exists (it has no uid yet)\n",
        );
    }
    if !gathered.secrets.read {
        header.push_str("# without --kubeconfig: referenced Secrets were not read (the secrets hash leaves them out; the Redis password shows as <redacted>)\n");
    }
    if [
        &gathered.optional_apis.http_route,
        &gathered.optional_apis.service_monitor,
    ]
    .contains(&&crate::optional_api::Availability::Unchecked)
    {
        header.push_str("# without --kubeconfig: the HTTPRoute and ServiceMonitor are shown as if their CRDs were installed\n");
    } else if !resolution.optional_apis.status {
        let _ = writeln!(
            header,
            "# optional APIs: {}",
            resolution.optional_apis.message
        );
    }
    header.push_str("# Secret values are redacted\n");
    let docs = documents(children)?;
    Ok(format!("{header}---\n{}", docs.join("---\n")))
}

/// What the controller would create in AWS before it can build the cluster; render itself
/// never creates anything.
fn would_create(resolution: &crate::resolve::Resolution) -> Option<String> {
    let ap = resolution.access_point.as_ref()?;
    Some(format!(
        "the operator would create an EFS access point on {} with root directory {} owned by {}:{} (mode {}), tagged {}; render creates nothing",
        ap.file_system_id,
        ap.root_path,
        ap.uid,
        ap.gid,
        ap.permissions,
        crate::facts::format_tags(&ap.tags)
    ))
}

/// The component conditions the header shows, each under a short label; data sources only
/// when asked for.
fn header_conditions(
    resolution: &crate::resolve::Resolution,
) -> impl Iterator<Item = (&'static str, &crate::status::ConditionState)> {
    use crate::status::{ConditionType, Reason};
    resolution.conditions().into_iter().filter_map(|(t, c)| {
        let what = match t {
            ConditionType::DatabaseResolved => "database",
            ConditionType::CacheResolved => "cache",
            ConditionType::StorageResolved => "storage",
            ConditionType::DataSourcesResolved if c.reason == Reason::Disabled => return None,
            ConditionType::DataSourcesResolved => "data sources",
            ConditionType::ConfigResolved => "config",
            _ => t.as_str(),
        };
        Some((what, c))
    })
}

fn unresolved(resolution: &crate::resolve::Resolution) -> String {
    let reasons: Vec<String> = would_create(resolution)
        .map(|line| format!("  {line}"))
        .into_iter()
        .chain(
            header_conditions(resolution)
                .filter(|(_, c)| !c.status)
                .map(|(w, c)| format!("  {w}: {} ({})", c.message, c.reason)),
        )
        .collect();
    if reasons.is_empty() {
        [
            resolution
                .admin_problem
                .as_ref()
                .map(|p| format!("  admin: {p}")),
            resolution
                .service_account_problem
                .as_ref()
                .map(|p| format!("  serviceAccount: {p}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
    } else {
        reasons.join("\n")
    }
}

/// One YAML document per child, in apply order. No wildcard: a new kind of child must be
/// rendered here.
fn documents(children: Children) -> Result<Vec<String>, RenderError> {
    children
        .into_ordered()
        .into_iter()
        .map(|child| match child {
            Child::GeneratedSecret(s) | Child::Secret(s) => yaml(&secrets::redacted(s)),
            Child::ConfigMap(c) => yaml(&c),
            Child::ServiceAccount(a) => yaml(&a),
            Child::Volume(v) => yaml(&v),
            Child::Claim(c) => yaml(&c),
            Child::InstallerJob(j) => yaml(&j),
            Child::Service(s) => yaml(&s),
            Child::Ingress(i) => yaml(&i),
            Child::DisruptionBudget(p) => yaml(&p),
            Child::Deployment(d) => yaml(&d),
            Child::NetworkPolicy(p) => yaml(&p),
            Child::HttpRoute(r) => yaml(&r),
            Child::ServiceMonitor(s) => yaml(&s),
        })
        .collect()
}

fn yaml<T: Serialize>(value: &T) -> Result<String, RenderError> {
    serde_yaml::to_string(value).map_err(|e| RenderError::Output(e.to_string()))
}

#[cfg(test)]
mod tests;
