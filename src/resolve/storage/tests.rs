use super::*;
use crate::api::GrafanaCluster;
use crate::fixtures::{self, article};
use crate::gather::Gathered;
use crate::resolve::{Resolution, resolve};
use pretty_assertions::assert_eq;

/// The article's file system with no access point at all.
fn bare_root() -> Gathered {
    let mut g = fixtures::gathered();
    g.storage = fixtures::found(StorageFacts {
        access_point_id: None,
        ..fixtures::file_system()
    });
    g
}

fn with_efs(efs: serde_json::Value, install: bool) -> GrafanaCluster {
    let mut gc = article();
    let plugins = gc.spec.plugins.get_or_insert_default();
    plugins.efs = Some(serde_json::from_value(efs).expect("efs spec"));
    if !install {
        plugins.install = None;
    }
    gc
}

fn expected_request() -> AccessPointRequest {
    AccessPointRequest {
        region: None,
        file_system_id: "fs-0123456789abcdef0".into(),
        client_token: access_point(
            &ClusterRef::of(&article()),
            &article().spec,
            "fs-0123456789abcdef0",
        )
        .client_token,
        root_path: "/grafana/obs/grafana".into(),
        uid: 472,
        gid: 472,
        permissions: "0755".into(),
        tags: [
            ("grafana-ha.io/owner".to_string(), "obs/grafana".to_string()),
            ("Name".to_string(), "grafana-obs-grafana".to_string()),
        ]
        .into(),
    }
}

#[test]
fn plugins_on_a_bare_root_ask_for_an_access_point_and_build_nothing() {
    let r: Resolution = resolve(&article(), &bare_root());
    assert_eq!(r.access_point, Some(expected_request()));
    assert_eq!(r.storage.condition.reason, Reason::CreatingAccessPoint);
    assert!(!r.storage.condition.status);
    assert!(
        r.storage
            .condition
            .message
            .contains("/grafana/obs/grafana owned by 472:472 (mode 0755)")
    );
    assert!(r.plan.is_none(), "no volume before the access point exists");
}

#[test]
fn create_access_point_false_keeps_the_refusal() {
    let gc = with_efs(serde_json::json!({"createAccessPoint": false}), true);
    let r = resolve(&gc, &bare_root());
    assert_eq!(r.access_point, None);
    assert_eq!(r.storage.condition.reason, Reason::AccessPointRequired);
    assert!(r.storage.condition.message.contains("accessPointId"));
    assert!(r.plan.is_none());
}

#[test]
fn nothing_is_created_without_plugins_to_install_or_with_an_access_point() {
    let gc = with_efs(serde_json::json!({"createAccessPoint": true}), false);
    let r = resolve(&gc, &bare_root());
    assert_eq!(r.access_point, None);
    assert!(r.plan.is_some(), "reading plugins from the root is fine");

    let mut found = fixtures::gathered();
    found.storage = fixtures::found(fixtures::file_system());
    let r = resolve(&article(), &found);
    assert_eq!(r.access_point, None);
    assert_eq!(
        r.plan.expect("plan").storage.volume_handle.as_deref(),
        Some("fs-0123456789abcdef0::fsap-0123456789abcdef0")
    );

    let mut sc = article();
    sc.spec.plugins.get_or_insert_default().storage_class_name = Some("efs-ap".into());
    assert_eq!(resolve(&sc, &bare_root()).access_point, None);
}

#[test]
fn a_last_good_target_never_gets_an_access_point() {
    let stale = Resolved {
        target: Some(StorageStatus {
            file_system_id: Some("fs-1".into()),
            claim_name: "c".into(),
            ..StorageStatus::default()
        }),
        condition: ConditionState::failed(Reason::AwsTimeout, "t"),
        stale: true,
    };
    let gc = article();
    let (resolved, request) = check_writable(&ClusterRef::of(&gc), &gc.spec, stale);
    assert_eq!(request, None);
    assert_eq!(resolved.condition.reason, Reason::AccessPointRequired);
    assert!(resolved.target.is_none());
}

#[test]
fn the_client_token_is_stable_per_cluster_and_file_system() {
    let gc = article();
    let me = ClusterRef::of(&gc);
    let token = |c: &ClusterRef, fs: &str| access_point(c, &gc.spec, fs).client_token;
    let first = token(&me, "fs-1");
    assert_eq!(
        first,
        token(&me, "fs-1"),
        "every round sends the same token"
    );
    assert!(first.len() <= 64, "EFS takes at most 64 characters");
    assert_ne!(
        first,
        token(&me, "fs-2"),
        "another file system, another point"
    );
    let other_ns = ClusterRef {
        namespace: "other".into(),
        ..me.clone()
    };
    assert_ne!(first, token(&other_ns, "fs-1"));
    let uid_changed = ClusterRef {
        uid: Some("another-uid".into()),
        ..me.clone()
    };
    assert_eq!(
        first,
        token(&uid_changed, "fs-1"),
        "a re-created GrafanaCluster finds its kept access point again"
    );
}

#[test]
fn the_region_of_the_spec_goes_with_the_request() {
    let mut gc = article();
    gc.spec.aws.get_or_insert_default().region = Some("eu-west-1".into());
    let request = access_point(&ClusterRef::of(&gc), &gc.spec, "fs-1");
    assert_eq!(request.region.as_deref(), Some("eu-west-1"));
}

#[test]
fn the_outcome_of_the_create_is_the_condition() {
    let r = resolve(&article(), &bare_root());
    let request = r.access_point.clone().expect("request");
    let created = after_create(
        r.storage.clone(),
        &request,
        CreateOutcome::Created("fsap-1"),
    );
    assert_eq!(created.condition.reason, Reason::CreatingAccessPoint);
    assert!(
        created
            .condition
            .message
            .contains("created EFS access point fsap-1")
    );

    let denied = after_create(
        r.storage.clone(),
        &request,
        CreateOutcome::Failed(
            Reason::AwsAccessDenied,
            "efs CreateAccessPoint access denied",
        ),
    );
    assert_eq!(denied.condition.reason, Reason::AccessPointCreateFailed);
    assert!(!denied.condition.status);
    assert!(
        denied
            .condition
            .message
            .contains("elasticfilesystem:CreateAccessPoint and elasticfilesystem:TagResource")
    );
    assert!(denied.target.is_none(), "nothing to build, nothing touched");

    let other = after_create(
        r.storage.clone(),
        &request,
        CreateOutcome::Failed(Reason::AwsTimeout, "timed out"),
    );
    assert!(!other.condition.message.contains("TagResource"));

    let disabled = after_create(r.storage, &request, CreateOutcome::Disabled);
    assert_eq!(disabled.condition.reason, Reason::AccessPointRequired);
    assert!(
        disabled
            .condition
            .message
            .contains("--create-access-points=false")
    );
}

#[test]
fn creating_the_access_point_is_reconciling_not_stalled() {
    // kstatus tools (Flux) give up on Stalled: a few seconds of AWS work must not look
    // like a cluster that needs someone to act.
    let r = resolve(&article(), &bare_root());
    let inputs = crate::status::StatusInputs {
        resolution: Some(&r),
        ..Default::default()
    };
    let status = crate::status::compute(
        &article(),
        &inputs,
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    );
    let find = |t: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.reason.clone()))
            .expect("condition")
    };
    assert_eq!(find("Stalled").0, "False");
    assert_eq!(find("Reconciling"), ("True".into(), "WaitingForAws".into()));
    assert_eq!(
        find("StorageResolved"),
        ("False".into(), "CreatingAccessPoint".into())
    );
}
