//! Amazon Managed Service for Prometheus: the workspaces Grafana gets a data source for.
//!
//! `ListWorkspaces` returns each workspace's tags inline (WorkspaceSummary.tags), so the
//! inventory is one paged listing per region, cached and refreshed single-flight like every
//! other inventory. Unlike the database, several matches are not ambiguous: each workspace
//! becomes its own data source, so selection keeps every usable match.
//!
//! The query endpoint is not in the listing (only DescribeWorkspace has
//! `prometheusEndpoint`); it is derived from the region and the workspace id in the form AWS
//! documents (`https://aps-workspaces.<region>.<dns suffix>/workspaces/<id>/`), which saves a
//! call (and an IAM permission) per workspace and refresh.

use aws_sdk_amp::types::{WorkspaceStatusCode, WorkspaceSummary};

use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::aws::inventory::{FetchContext, Inventory};
use std::sync::Arc;

use crate::aws::{Discovery, all_pages, lookup_outcome};
use crate::facts::{Lookup, ResourceTags, Tags, WorkspaceFacts, format_tags, tags_match};

/// Metric label of the service.
pub const SERVICE: &str = "amp";
const LIST_WORKSPACES: &str = "ListWorkspaces";

// ListWorkspaces accepts maxResults up to 1000; the shared page size (100) is well inside.
service_client!(aws_sdk_amp, SERVICE);

/// How to pick the workspaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkspaceQuery<'a> {
    /// Every usable workspace carrying all of these tags.
    Tags(&'a Tags),
    /// Exactly this workspace.
    Id(&'a str),
}

/// A [`WorkspaceQuery`] that owns its data, for the discovery trigger's recheck.
#[derive(Clone, Debug)]
enum OwnedQuery {
    Tags(Tags),
    Id(String),
}

impl OwnedQuery {
    fn of(query: WorkspaceQuery<'_>) -> OwnedQuery {
        match query {
            WorkspaceQuery::Tags(tags) => OwnedQuery::Tags(tags.clone()),
            WorkspaceQuery::Id(id) => OwnedQuery::Id(id.to_string()),
        }
    }

    fn borrowed(&self) -> WorkspaceQuery<'_> {
        match self {
            OwnedQuery::Tags(tags) => WorkspaceQuery::Tags(tags),
            OwnedQuery::Id(id) => WorkspaceQuery::Id(id),
        }
    }
}

/// Every workspace of a region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AmpInventory {
    pub region: String,
    pub workspaces: Vec<WorkspaceEntry>,
}

/// One workspace, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkspaceEntry {
    pub id: String,
    pub arn: String,
    pub alias: Option<String>,
    /// CREATING, ACTIVE, UPDATING, DELETING, CREATION_FAILED.
    pub status: String,
    pub tags: ResourceTags,
}

impl WorkspaceEntry {
    /// ACTIVE, or UPDATING (an alias or configuration change): queries work in both.
    fn usable(&self) -> bool {
        self.status == WorkspaceStatusCode::Active.as_str()
            || self.status == WorkspaceStatusCode::Updating.as_str()
    }
}

impl Inventory for AmpInventory {
    type Client = aws_sdk_amp::Client;
    type Key = ();
    const OPERATION: &'static str = LIST_WORKSPACES;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        let request = aws
            .client
            .list_workspaces()
            .max_results(aws.page_size.clamp(1, 1000));
        let summaries: Vec<WorkspaceSummary> =
            all_pages!(aws.metrics, LIST_WORKSPACES, request, workspaces)?;
        let region = aws
            .client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default();
        Ok(AmpInventory {
            region,
            workspaces: summaries.iter().map(workspace_entry).collect(),
        })
    }
}

/// Converts one summary.
pub fn workspace_entry(ws: &WorkspaceSummary) -> WorkspaceEntry {
    WorkspaceEntry {
        id: ws.workspace_id().to_string(),
        arn: ws.arn().to_string(),
        alias: ws.alias().filter(|a| !a.is_empty()).map(str::to_string),
        status: ws
            .status()
            .map(|s| s.status_code().as_str().to_string())
            .unwrap_or_default(),
        tags: ws
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

/// The query endpoint of workspace `id` in `region`; the ARN's partition picks the DNS
/// suffix (China regions live under amazonaws.com.cn).
pub fn query_endpoint(arn: &str, region: &str, id: &str) -> String {
    let suffix = if arn.starts_with("arn:aws-cn:") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://aps-workspaces.{region}.{suffix}/workspaces/{id}/")
}

impl AmpInventory {
    fn facts(&self, ws: &WorkspaceEntry) -> WorkspaceFacts {
        WorkspaceFacts {
            id: ws.id.clone(),
            arn: ws.arn.clone(),
            alias: ws.alias.clone(),
            region: self.region.clone(),
            url: query_endpoint(&ws.arn, &self.region, &ws.id),
        }
    }

    /// The workspaces a query selects: every usable match (sorted by id), `NotReady` when
    /// only unusable ones match, `NotFound` when none does.
    pub fn select(&self, query: WorkspaceQuery<'_>) -> Lookup<Vec<WorkspaceFacts>> {
        let mut matches: Vec<&WorkspaceEntry> = self
            .workspaces
            .iter()
            .filter(|ws| match query {
                WorkspaceQuery::Tags(selector) => tags_match(selector, &ws.tags),
                WorkspaceQuery::Id(id) => ws.id == id,
            })
            .collect();
        matches.sort_by(|a, b| a.id.cmp(&b.id));
        matches.dedup_by(|a, b| a.id == b.id);
        let usable: Vec<WorkspaceFacts> = matches
            .iter()
            .filter(|ws| ws.usable())
            .map(|ws| self.facts(ws))
            .collect();
        match (usable.is_empty(), matches.first()) {
            (false, _) => Lookup::Found(usable),
            (true, Some(first)) => Lookup::NotReady {
                arn: first.arn.clone(),
                state: first.status.clone(),
            },
            (true, None) => Lookup::NotFound {
                candidates: self.workspaces.len(),
            },
        }
    }
}

impl Discovery {
    /// The Amazon Managed Service for Prometheus workspaces a query selects in a region.
    pub async fn find_workspaces(
        &self,
        region: Option<&str>,
        query: WorkspaceQuery<'_>,
    ) -> Result<Lookup<Vec<WorkspaceFacts>>, AwsError> {
        let (region, inventory) = self.inventory::<AmpInventory>(region, ()).await?;
        let lookup = inventory.select(query);
        let by = match query {
            WorkspaceQuery::Tags(selector) => format_tags(selector),
            WorkspaceQuery::Id(id) => format!("id={id}"),
        };
        // Like every tag lookup: remembered for this cluster, so a refresh that adds or
        // retires a workspace it selects reconciles it (and rolls its provisioning file)
        // within one discovery refresh rather than at the next resync.
        if self.owner.is_some() {
            let owned = OwnedQuery::of(query);
            let recheck_region = region.clone();
            let recheck: crate::aws::interest::Recheck = Arc::new(move |d: Discovery| {
                let region = recheck_region.clone();
                let query = owned.clone();
                Box::pin(async move {
                    let (_, inventory) = d.inventory::<AmpInventory>(Some(&region), ()).await?;
                    Ok(crate::aws::interest::fingerprint(
                        &inventory.select(query.borrowed()),
                    ))
                })
            });
            self.remember(
                (
                    std::any::TypeId::of::<AmpInventory>(),
                    region.clone(),
                    by.clone(),
                ),
                crate::aws::interest::fingerprint(&lookup),
                recheck,
                crate::aws::refresh_of::<AmpInventory>(region.clone()),
            );
        }
        tracing::debug!(
            %region,
            query = %by,
            outcome = lookup_outcome(&lookup),
            "AMP workspace lookup"
        );
        Ok(lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ws(id: &str, status: &str, app: &str) -> WorkspaceEntry {
        WorkspaceEntry {
            id: id.into(),
            arn: format!("arn:aws:aps:eu-west-1:123456789012:workspace/{id}"),
            alias: None,
            status: status.into(),
            tags: [("app".to_string(), app.to_string())].into(),
        }
    }

    fn inventory(workspaces: Vec<WorkspaceEntry>) -> AmpInventory {
        AmpInventory {
            region: "eu-west-1".into(),
            workspaces,
        }
    }

    fn grafana() -> Tags {
        [("app".to_string(), "grafana".to_string())].into()
    }

    #[test]
    fn every_usable_match_is_kept_in_id_order() {
        let inv = inventory(vec![
            ws("ws-b", "ACTIVE", "grafana"),
            ws("ws-c", "CREATING", "grafana"),
            ws("ws-a", "UPDATING", "grafana"),
            ws("ws-d", "ACTIVE", "other"),
        ]);
        let Lookup::Found(found) = inv.select(WorkspaceQuery::Tags(&grafana())) else {
            panic!("expected Found");
        };
        let ids: Vec<_> = found.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["ws-a", "ws-b"]);
        assert_eq!(
            found[1].url,
            "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-b/"
        );
        assert_eq!(found[1].region, "eu-west-1");
    }

    #[test]
    fn only_unusable_matches_are_not_ready_and_none_is_not_found() {
        let inv = inventory(vec![
            ws("ws-c", "CREATING", "grafana"),
            ws("ws-d", "ACTIVE", "other"),
        ]);
        assert!(matches!(
            inv.select(WorkspaceQuery::Tags(&grafana())),
            Lookup::NotReady { state, .. } if state == "CREATING"
        ));
        assert_eq!(
            inv.select(WorkspaceQuery::Tags(&Tags::new())),
            Lookup::NotFound { candidates: 2 }
        );
        assert_eq!(
            inv.select(WorkspaceQuery::Id("ws-x")),
            Lookup::NotFound { candidates: 2 }
        );
        assert!(matches!(
            inv.select(WorkspaceQuery::Id("ws-d")),
            Lookup::Found(v) if v.len() == 1
        ));
    }

    #[test]
    fn china_regions_use_their_dns_suffix() {
        assert_eq!(
            query_endpoint(
                "arn:aws-cn:aps:cn-north-1:1:workspace/ws-1",
                "cn-north-1",
                "ws-1"
            ),
            "https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-1/"
        );
    }
}
