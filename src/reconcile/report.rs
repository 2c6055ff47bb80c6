//! Reporting: the status subresource (written only when it changed) and Events for the
//! conditions that changed.

use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};

use super::context::Context;
use crate::api::{GrafanaCluster, GrafanaClusterStatus};
use crate::error::Result;
use crate::names;
use crate::status::{self, EventReason};

/// Writes the status when it differs from what is stored, and records Events for the
/// conditions that changed.
pub async fn write_status(
    gc: &GrafanaCluster,
    ctx: &Context,
    status: GrafanaClusterStatus,
) -> Result<()> {
    let previous = gc.status.clone().unwrap_or_default();
    if previous == status {
        return Ok(());
    }
    let mut events = status::condition_events(&previous.conditions, &status.conditions);
    events.extend(status::zone_event(
        previous.storage.as_ref(),
        status.storage.as_ref(),
    ));
    let upgrading = status
        .conditions
        .iter()
        .find(|c| c.type_ == status::ConditionType::Upgrading.as_str())
        .map(|c| status::ConditionState::ok(status::Reason::UpToDate, c.message.clone()))
        .unwrap_or_else(|| status::ConditionState::ok(status::Reason::UpToDate, ""));
    events.extend(status::upgrade_event(
        previous.upgrade.as_deref(),
        status.upgrade.as_deref(),
        &upgrading,
    ));
    let api: Api<GrafanaCluster> = ctx.api(&gc.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": format!("{}/v1alpha1", crate::api::GROUP),
        "kind": "GrafanaCluster",
        "status": status,
    });
    api.patch_status(
        &gc.name_any(),
        &PatchParams::apply(names::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    for event in events {
        publish(ctx, gc, event.warning, event.reason, event.note).await;
    }
    Ok(())
}

/// Records an Event on the GrafanaCluster; failing to record one never fails a reconcile.
pub async fn publish(
    ctx: &Context,
    gc: &GrafanaCluster,
    warning: bool,
    reason: EventReason,
    note: String,
) {
    let event = Event {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.as_string(),
        note: Some(note),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &gc.object_ref(&())).await {
        tracing::debug!(error = %e, "recording an Event failed");
    }
}
