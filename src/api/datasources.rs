//! `spec.dataSources`: AWS data sources the operator provisions into Grafana, found by tag
//! like the database, and `status.dataSources`: what it provisioned.

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// AWS data sources provisioned into Grafana (file provisioning, read-only in the UI).
/// Grafana queries them with its pods' AWS identity (IRSA or EKS Pod Identity, through the
/// default credential chain): give that role the permissions listed in the README.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourcesSpec {
    /// Amazon Managed Service for Prometheus workspaces, one Prometheus data source each
    /// (SigV4-signed queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusDataSources>,

    /// A CloudWatch data source (metrics and logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<CloudWatchDataSource>,
}

/// Which Amazon Managed Service for Prometheus workspaces to provision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(has(self.enabled) && !self.enabled) || has(self.workspaceId) || (has(self.tags) && size(self.tags) > 0)").message("spec.dataSources.prometheus: set workspaceId or a tag selector in tags (an empty selector would match every workspace)"),
    validation = Rule::new("!(has(self.workspaceId) && has(self.tags))").message("spec.dataSources.prometheus: set at most one of workspaceId and tags")
)]
pub struct PrometheusDataSources {
    /// Provision the workspaces (default true when this section is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// Every ACTIVE workspace carrying all of these tags becomes a data source; several
    /// matches are fine (each is its own data source). spec.aws.tags are not merged in:
    /// workspaces are usually shared by more than one Grafana.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: Option<BTreeMap<String, String>>,

    /// Exactly this workspace (ws-...), instead of a tag selector: reported like the
    /// database when it does not exist or is not ACTIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub workspace_id: Option<String>,
}

/// The CloudWatch data source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudWatchDataSource {
    /// Provision it (default true when this section is present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// The data source's default region. Defaults to spec.aws.region, else the operator's
    /// region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub default_region: Option<String>,
}

/// The data sources the operator provisioned.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourcesStatus {
    /// One entry per provisioned Amazon Managed Service for Prometheus workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prometheus: Vec<PrometheusWorkspaceStatus>,
    /// The CloudWatch data source's default region, when one is provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudwatch_region: Option<String>,
    /// Names of data sources provisioned before and gone since (their workspace was deleted
    /// or untagged): the provisioning file asks Grafana to delete them. Bounded, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
}

/// One provisioned workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusWorkspaceStatus {
    /// Workspace id (ws-...).
    pub workspace_id: String,
    /// The workspace's alias, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Region of the workspace.
    pub region: String,
    /// The query endpoint the data source uses.
    pub url: String,
    /// The data source's uid: derived from the workspace id, so dashboards keep working.
    pub uid: String,
    /// The data source's name in Grafana.
    pub name: String,
}
