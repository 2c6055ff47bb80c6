use pretty_assertions::assert_eq;

use super::*;
use crate::fixtures::{self, article, gathered};
use crate::resolve::resolve as resolve_all;

fn workspace(id: &str) -> WorkspaceFacts {
    WorkspaceFacts {
        id: id.into(),
        arn: format!("arn:aws:aps:eu-west-1:1:workspace/{id}"),
        alias: Some(format!("alias-{id}")),
        region: "eu-west-1".into(),
        url: format!("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/{id}/"),
    }
}

fn with_data_sources(data_sources: serde_json::Value) -> crate::api::GrafanaCluster {
    let mut gc = article();
    gc.spec.data_sources = serde_json::from_value(data_sources).expect("data sources");
    gc
}

fn found(ids: &[&str]) -> DataSourceFacts {
    DataSourceFacts {
        workspaces: Some(Discovered::Lookup(Lookup::Found(
            ids.iter().map(|id| workspace(id)).collect(),
        ))),
        region: Some("us-east-1".into()),
    }
}

fn resolve_with(
    gc: &crate::api::GrafanaCluster,
    facts: DataSourceFacts,
) -> crate::resolve::Resolution {
    let mut g = gathered();
    g.data_sources = facts;
    resolve_all(gc, &g)
}

#[test]
fn every_matching_workspace_and_cloudwatch_are_provisioned() {
    let gc = with_data_sources(serde_json::json!({
        "prometheus": {"tags": {"team": "obs"}},
        "cloudwatch": {},
    }));
    let r = resolve_with(&gc, found(&["ws-a", "ws-b"]));
    assert!(r.data_sources.condition.status);
    assert_eq!(r.data_sources.condition.reason, Reason::Found);
    assert_eq!(
        r.data_sources.condition.message,
        "provisioned 2 Amazon Managed Prometheus workspaces (ws-a, ws-b), CloudWatch in us-east-1"
    );
    let plan = r.plan.expect("plan").data_sources.expect("data sources");
    assert_eq!(plan.config_map, "grafana-datasources");
    assert_eq!(plan.status.prometheus.len(), 2);
    assert_eq!(
        plan.status.prometheus[0].name,
        "Amazon Managed Prometheus ws-a"
    );
}

#[test]
fn uids_depend_on_the_workspace_only() {
    let uid = workspace_uid("eu-west-1", "ws-12345678-1234-1234-1234-123456789012");
    assert_eq!(
        uid,
        workspace_uid("eu-west-1", "ws-12345678-1234-1234-1234-123456789012")
    );
    assert_ne!(uid, workspace_uid("eu-west-1", "ws-other"));
    assert_ne!(
        uid,
        workspace_uid("us-east-1", "ws-12345678-1234-1234-1234-123456789012")
    );
    // Grafana refuses uids over 40 characters.
    assert!(uid.len() <= 40, "{uid}");
}

#[test]
fn cloudwatch_region_prefers_its_own_then_the_clusters() {
    let gc = with_data_sources(serde_json::json!({"cloudwatch": {"defaultRegion": "ap-south-1"}}));
    let r = resolve_with(
        &gc,
        DataSourceFacts {
            workspaces: None,
            region: Some("us-east-1".into()),
        },
    );
    let plan = r.plan.expect("plan").data_sources.expect("data sources");
    assert_eq!(plan.status.cloudwatch_region.as_deref(), Some("ap-south-1"));

    let gc = with_data_sources(serde_json::json!({"cloudwatch": {}}));
    let r = resolve_with(
        &gc,
        DataSourceFacts {
            workspaces: None,
            region: None,
        },
    );
    assert!(!r.data_sources.condition.status);
    assert!(r.plan.expect("plan").data_sources.is_none());
}

#[test]
fn no_workspace_is_reported_like_the_database_but_grafana_still_runs() {
    let gc = with_data_sources(serde_json::json!({"prometheus": {"tags": {"team": "obs"}}}));
    let facts = DataSourceFacts {
        workspaces: Some(Discovered::Lookup(Lookup::NotFound { candidates: 3 })),
        region: None,
    };
    let r = resolve_with(&gc, facts);
    assert!(!r.data_sources.condition.status);
    assert_eq!(r.data_sources.condition.reason, Reason::NotFound);
    assert!(
        r.data_sources.condition.message.contains("among 3"),
        "{}",
        r.data_sources.condition.message
    );
    let plan = r.plan.expect("Grafana is planned without its data sources");
    assert!(plan.data_sources.is_none());
}

#[test]
fn a_missing_workspace_id_is_not_found() {
    let gc = with_data_sources(serde_json::json!({"prometheus": {"workspaceId": "ws-x"}}));
    let facts = DataSourceFacts {
        workspaces: Some(Discovered::Lookup(Lookup::NotFound { candidates: 1 })),
        region: None,
    };
    let r = resolve_with(&gc, facts);
    assert_eq!(r.data_sources.condition.reason, Reason::NotFound);
    assert!(r.data_sources.condition.message.contains("ws-x"));
}

#[test]
fn an_aws_failure_keeps_the_last_good_data_sources() {
    let gc = with_data_sources(serde_json::json!({"prometheus": {"tags": {"team": "obs"}}}));
    let first = resolve_with(&gc, found(&["ws-a"]));
    let mut gc = gc;
    gc.status = Some(crate::api::GrafanaClusterStatus {
        database: first.database.target.clone(),
        data_sources: first.data_sources.target.clone().map(Box::new),
        ..Default::default()
    });
    let facts = DataSourceFacts {
        workspaces: Some(Discovered::Failed {
            reason: Reason::AwsThrottled,
            message: "Rate exceeded".into(),
        }),
        region: None,
    };
    let r = resolve_with(&gc, facts);
    assert!(r.data_sources.stale);
    assert!(r.stale());
    assert_eq!(r.data_sources.condition.reason, Reason::AwsThrottled);
    assert!(
        r.data_sources
            .condition
            .message
            .contains("keeping the last good"),
        "{}",
        r.data_sources.condition.message
    );
    let plan = r.plan.expect("plan").data_sources.expect("kept");
    assert_eq!(plan.status.prometheus[0].workspace_id, "ws-a");
}

#[test]
fn a_workspace_that_went_away_is_retired_and_stays_retired() {
    let gc = with_data_sources(serde_json::json!({"prometheus": {"tags": {"team": "obs"}}}));
    let first = resolve_with(&gc, found(&["ws-a", "ws-b"]));
    let mut gc = gc;
    gc.status = Some(crate::api::GrafanaClusterStatus {
        data_sources: first.data_sources.target.clone().map(Box::new),
        ..Default::default()
    });
    let second = resolve_with(&gc, found(&["ws-b"]));
    let plan = second.plan.expect("plan").data_sources.expect("ds");
    assert_eq!(plan.status.retired, ["Amazon Managed Prometheus ws-a"]);
    // The next round carries the same list: the file (and the pod template) stay put.
    gc.status = Some(crate::api::GrafanaClusterStatus {
        data_sources: Some(Box::new(plan.status.clone())),
        ..Default::default()
    });
    let third = resolve_with(&gc, found(&["ws-b"]));
    assert_eq!(third.plan.expect("plan").data_sources.expect("ds"), plan);
    // A workspace that comes back is no longer retired.
    let back = resolve_with(&gc, found(&["ws-a", "ws-b"]));
    let back = back.plan.expect("plan").data_sources.expect("ds");
    assert!(back.status.retired.is_empty());
}

#[test]
fn the_retired_list_is_bounded() {
    let last = DataSourcesStatus {
        retired: (0..MAX_RETIRED + 5).map(|i| format!("old-{i}")).collect(),
        ..Default::default()
    };
    let names = retired(Some(&last), &DataSourcesStatus::default());
    assert_eq!(names.len(), MAX_RETIRED);
    assert_eq!(names.last().map(String::as_str), Some("old-36"));
}

#[test]
fn without_data_sources_the_condition_says_disabled() {
    let r = resolve_with(&fixtures::article(), DataSourceFacts::default());
    assert!(r.data_sources.condition.status);
    assert_eq!(r.data_sources.condition.reason, Reason::Disabled);
    assert!(r.plan.expect("plan").data_sources.is_none());
}
