//! AWS data sources: the Amazon Managed Service for Prometheus workspaces the tags select
//! (or the one `workspaceId` names) and CloudWatch, turned into the data sources Grafana's
//! file provisioning creates.
//!
//! Unlike the database, several workspaces matching the tags are fine: each becomes its own
//! data source. `workspaceId` asks for exactly one, reported like the database when missing
//! or not active. Data sources never hold Grafana back: when they cannot be resolved, the
//! cluster is still planned, with the last good data sources when AWS could not be asked
//! (an AWS hiccup must not remove them), without them when AWS says they are gone.

use crate::api::{
    DataSourcesStatus, GrafanaClusterSpec, GrafanaClusterStatus, PrometheusWorkspaceStatus,
};
use crate::facts::{Lookup, Tags, WorkspaceFacts, format_tags};
use crate::hash::short_hash;
use crate::names;
use crate::status::{ConditionState, Reason};

use super::ClusterRef;
use super::component::{Discovered, Resolved};

/// How many names of retired data sources the status (and the provisioning file's
/// deleteDatasources) remembers: enough for workspaces coming and going, bounded so the
/// status cannot grow without end.
pub const MAX_RETIRED: usize = 32;

/// The CloudWatch data source's uid and name: one per Grafana, stable across region changes
/// so that dashboards keep working.
pub const CLOUDWATCH_UID: &str = "aws-cloudwatch";
pub const CLOUDWATCH_NAME: &str = "CloudWatch";

/// What gather learnt for the data sources.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DataSourceFacts {
    /// The workspace lookup; None when no Prometheus data source is asked for.
    pub workspaces: Option<Discovered<Vec<WorkspaceFacts>>>,
    /// The region the operator works in for this cluster (spec.aws.region, else its own).
    pub region: Option<String>,
}

/// The data sources to provision, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSourcesPlan {
    /// The ConfigMap holding the provisioning file.
    pub config_map: String,
    /// Workspaces (current or last good), sorted by id, and names Grafana should delete.
    pub status: DataSourcesStatus,
}

impl DataSourcesPlan {}

fn prometheus_enabled(spec: &GrafanaClusterSpec) -> bool {
    spec.data_sources
        .as_ref()
        .and_then(|d| d.prometheus.as_ref())
        .is_some_and(|p| p.enabled.unwrap_or(true))
}

fn cloudwatch_enabled(spec: &GrafanaClusterSpec) -> bool {
    spec.data_sources
        .as_ref()
        .and_then(|d| d.cloudwatch.as_ref())
        .is_some_and(|c| c.enabled.unwrap_or(true))
}

/// What the workspace lookup asks for: `Ok(workspace id)` or `Err(tags)`; None when no
/// Prometheus data source is wanted.
/// The data source plugin for Amazon Managed Prometheus. SigV4 on Grafana's core Prometheus
/// type is deprecated, and Grafana 13 migrates such data sources to this plugin at startup
/// (`prometheusTypeMigration`): provisioning the core type would have Grafana rewrite the
/// operator's file on every start. The plugin is not bundled with the image, and the
/// operator turns Grafana's own preinstall off, so it is installed by the cluster's
/// single-writer installer like any listed plugin.
pub const AMP_PLUGIN_ID: &str = "grafana-amazonprometheus-datasource";
/// Pinned like every plugin the operator installs; `spec.plugins.install` may name another
/// version of the same id, which then wins.
pub const AMP_PLUGIN_VERSION: &str = "3.3.5";

/// Plugins the data sources need, as `id@version`: decided from the spec, never from what
/// discovery found, so the plugin set (and the installer Job) does not change with AWS.
pub fn required_plugins(spec: &GrafanaClusterSpec) -> Vec<String> {
    if prometheus_enabled(spec) {
        vec![format!("{AMP_PLUGIN_ID}@{AMP_PLUGIN_VERSION}")]
    } else {
        Vec::new()
    }
}

pub fn workspace_query(spec: &GrafanaClusterSpec) -> Option<Result<String, Tags>> {
    if !prometheus_enabled(spec) {
        return None;
    }
    let prometheus = spec.data_sources.as_ref()?.prometheus.as_ref()?;
    Some(match &prometheus.workspace_id {
        Some(id) => Ok(id.clone()),
        None => Err(prometheus.tags.clone().unwrap_or_default()),
    })
}

/// The data source uid of a workspace: from its region and id only, so the same workspace
/// always gets the same uid (dashboards and alert rules refer to it) and the uid fits
/// Grafana's 40-character limit.
pub fn workspace_uid(region: &str, id: &str) -> String {
    format!(
        "amp-{}",
        short_hash(format!("{region}/{id}").as_bytes(), 16)
    )
}

/// The data source name of a workspace. Grafana's provisioning finds an existing data
/// source by name, so the name must not change with the workspace's alias.
pub fn workspace_name(id: &str) -> String {
    format!("Amazon Managed Prometheus {id}")
}

fn workspace_status(ws: &WorkspaceFacts) -> PrometheusWorkspaceStatus {
    PrometheusWorkspaceStatus {
        workspace_id: ws.id.clone(),
        alias: ws.alias.clone(),
        region: ws.region.clone(),
        url: ws.url.clone(),
        uid: workspace_uid(&ws.region, &ws.id),
        name: workspace_name(&ws.id),
    }
}

/// The workspaces to provision and how that came about.
fn workspaces(
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<Vec<WorkspaceFacts>>>,
    last: Option<&DataSourcesStatus>,
) -> Resolved<Vec<PrometheusWorkspaceStatus>> {
    let Some(query) = workspace_query(spec) else {
        return Resolved::given(Vec::new(), Reason::Disabled, String::new());
    };
    let what = match &query {
        Ok(id) => format!("Amazon Managed Prometheus workspace {id}"),
        Err(tags) => format!(
            "Amazon Managed Prometheus workspaces tagged {}",
            format_tags(tags)
        ),
    };
    let last_good = last.map(|l| l.prometheus.clone()).filter(|p| !p.is_empty());
    match observed {
        Some(Discovered::Lookup(Lookup::Found(found))) => Resolved {
            target: Some(found.iter().map(workspace_status).collect()),
            condition: ConditionState::ok(Reason::Found, String::new()),
            stale: false,
        },
        // AWS could not be asked: keep what was provisioned.
        Some(Discovered::Failed { reason, message }) => {
            let condition =
                ConditionState::failed(*reason, format!("looking up {what}: {message}"));
            Resolved::finish(Err(condition), last_good)
        }
        None => Resolved {
            target: last_good.clone(),
            condition: ConditionState::failed(
                Reason::NotDiscovered,
                "data source discovery has not run",
            ),
            stale: last_good.is_some(),
        },
        // AWS answered: what is gone is gone.
        Some(Discovered::Lookup(lookup)) => {
            let condition = match lookup {
                Lookup::NotFound { candidates } => ConditionState::failed(
                    Reason::NotFound,
                    format!("no {what} among {candidates} in the region"),
                ),
                Lookup::NotReady { arn, state } => ConditionState::failed(
                    Reason::NotReady,
                    format!("{arn} is not active yet ({state}); waiting"),
                ),
                Lookup::Ambiguous { arns } => ConditionState::failed(
                    Reason::Ambiguous,
                    format!("several resources match {what}: {}", arns.join(", ")),
                ),
                Lookup::Unsupported { arn, reason } => {
                    ConditionState::failed(Reason::Unsupported, format!("{arn}: {reason}"))
                }
                Lookup::Found(_) => ConditionState::ok(Reason::Found, String::new()),
            };
            Resolved {
                target: Some(Vec::new()),
                condition,
                stale: false,
            }
        }
    }
}

/// Names provisioned before and not now: Grafana keeps a provisioned data source whose
/// entry left the file, so the file asks for its deletion (deleteDatasources). The list is
/// kept in the status so that the file, and so the pod template, stay the same from one
/// round to the next.
fn retired(last: Option<&DataSourcesStatus>, current: &DataSourcesStatus) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    };
    if let Some(last) = last {
        last.retired.iter().for_each(|n| push(n));
        last.prometheus.iter().for_each(|p| push(&p.name));
        if last.cloudwatch_region.is_some() {
            push(CLOUDWATCH_NAME);
        }
    }
    let in_use = |n: &String| {
        current.prometheus.iter().any(|p| &p.name == n)
            || (current.cloudwatch_region.is_some() && n == CLOUDWATCH_NAME)
    };
    names.retain(|n| !in_use(n));
    let excess = names.len().saturating_sub(MAX_RETIRED);
    names.drain(..excess);
    names
}

/// The condition's message: what is provisioned.
fn summary(status: &DataSourcesStatus) -> String {
    let mut parts = Vec::new();
    match status.prometheus.len() {
        0 => {}
        n => {
            let ids: Vec<&str> = status
                .prometheus
                .iter()
                .map(|p| p.workspace_id.as_str())
                .collect();
            let noun = if n == 1 { "workspace" } else { "workspaces" };
            parts.push(format!(
                "{n} Amazon Managed Prometheus {noun} ({})",
                ids.join(", ")
            ));
        }
    }
    if let Some(region) = &status.cloudwatch_region {
        parts.push(format!("CloudWatch in {region}"));
    }
    if parts.is_empty() {
        "no data source provisioned".into()
    } else {
        format!("provisioned {}", parts.join(", "))
    }
}

/// The data sources of `spec`: the condition, and the plan when there is anything to write
/// (data sources, or names of retired ones for Grafana to delete).
pub fn resolve(
    cluster: &ClusterRef,
    spec: &GrafanaClusterSpec,
    facts: &DataSourceFacts,
    last: Option<&GrafanaClusterStatus>,
) -> (Resolved<DataSourcesStatus>, Option<DataSourcesPlan>) {
    let last = last.and_then(|s| s.data_sources.as_deref());
    let prometheus = workspaces(spec, facts.workspaces.as_ref(), last);
    let cloudwatch = cloudwatch_enabled(spec).then(|| {
        spec.data_sources
            .as_ref()
            .and_then(|d| d.cloudwatch.as_ref())
            .and_then(|c| c.default_region.clone())
            .or_else(|| facts.region.clone())
    });
    let mut status = DataSourcesStatus {
        prometheus: prometheus.target.clone().unwrap_or_default(),
        cloudwatch_region: cloudwatch.clone().flatten(),
        retired: Vec::new(),
    };
    status.retired = retired(last, &status);

    let condition = if cloudwatch == Some(None) {
        ConditionState::failed(
            Reason::NotFound,
            "spec.dataSources.cloudwatch: no region known; set defaultRegion, spec.aws.region or the operator's region",
        )
    } else if !prometheus.condition.status {
        let mut c = prometheus.condition.clone();
        if !status.prometheus.is_empty() || status.cloudwatch_region.is_some() {
            c.message = format!("{}; {}", c.message, summary(&status));
        }
        c
    } else if workspace_query(spec).is_none() && !cloudwatch_enabled(spec) {
        ConditionState::ok(Reason::Disabled, "no AWS data source asked for")
    } else {
        ConditionState::ok(Reason::Found, summary(&status))
    };
    let resolved = Resolved {
        target: Some(status.clone()),
        condition,
        stale: prometheus.stale,
    };
    let empty = status.prometheus.is_empty()
        && status.cloudwatch_region.is_none()
        && status.retired.is_empty();
    let plan = (!empty).then(|| DataSourcesPlan {
        config_map: names::datasources_config_map(&cluster.name),
        status,
    });
    (resolved, plan)
}

#[cfg(test)]
mod tests;
