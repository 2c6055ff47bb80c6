use super::*;
use aws_sdk_efs::types::{LifeCycleState, PerformanceMode};
use aws_smithy_types::DateTime;
use pretty_assertions::assert_eq;

const ARN: &str = "arn:aws:elasticfilesystem:us-east-1:123456789012";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect()
}

fn grafana() -> Tags {
    [("app".to_string(), "grafana".to_string())].into()
}

fn fs(id: &str, state: LifeCycleState, tag_pairs: &[(&str, &str)]) -> FileSystemDescription {
    FileSystemDescription::builder()
        .owner_id("123456789012")
        .creation_token(id)
        .file_system_id(id)
        .file_system_arn(format!("{ARN}:file-system/{id}"))
        .creation_time(DateTime::from_secs(0))
        .life_cycle_state(state)
        .number_of_mount_targets(0)
        .size_in_bytes(
            aws_sdk_efs::types::FileSystemSize::builder()
                .value(0)
                .build(),
        )
        .performance_mode(PerformanceMode::GeneralPurpose)
        .set_tags(Some(tags(tag_pairs)))
        .build()
        .unwrap()
}

fn mount_target(fs_id: &str, zone: &str, state: LifeCycleState) -> MountTargetDescription {
    MountTargetDescription::builder()
        .mount_target_id(format!("fsmt-{zone}"))
        .file_system_id(fs_id)
        .subnet_id("subnet-1")
        .life_cycle_state(state)
        .availability_zone_name(zone)
        .build()
        .unwrap()
}

fn access_point(id: &str, tag_pairs: &[(&str, &str)]) -> AccessPointDescription {
    AccessPointDescription::builder()
        .access_point_id(id)
        .access_point_arn(format!("{ARN}:access-point/{id}"))
        .life_cycle_state(LifeCycleState::Available)
        .set_tags(Some(tags(tag_pairs)))
        .build()
}

fn inventory(file_systems: &[FileSystemDescription]) -> EfsInventory {
    EfsInventory {
        file_systems: file_systems.iter().filter_map(file_system_entry).collect(),
    }
}

fn two_zones(fs_id: &str) -> Vec<MountTargetDescription> {
    vec![
        mount_target(fs_id, "us-east-1b", LifeCycleState::Available),
        mount_target(fs_id, "us-east-1a", LifeCycleState::Available),
    ]
}

/// Runs a whole lookup over an inventory and the chosen file system's details.
fn lookup(
    inv: &EfsInventory,
    details: &FileSystemDetails,
    query: FileSystemQuery<'_>,
) -> Lookup<StorageFacts> {
    match choose_file_system(inv, &query) {
        Ok(fs) => storage_facts(fs, details, &query),
        Err(lookup) => lookup,
    }
}

fn by_tags(selector: &Tags) -> FileSystemQuery<'_> {
    FileSystemQuery::Tags {
        selector,
        access_point_id: None,
    }
}

#[test]
fn tagged_file_system_is_found_with_sorted_zones_and_root() {
    let inv = inventory(&[
        fs(
            "fs-11111111",
            LifeCycleState::Available,
            &[("app", "grafana")],
        ),
        fs(
            "fs-22222222",
            LifeCycleState::Available,
            &[("app", "other")],
        ),
    ]);
    let details = file_system_details(&two_zones("fs-11111111"), &[]);
    let selector = grafana();
    assert_eq!(
        lookup(&inv, &details, by_tags(&selector)),
        Lookup::Found(StorageFacts {
            file_system_id: "fs-11111111".into(),
            arn: format!("{ARN}:file-system/fs-11111111"),
            access_point_id: None,
            mount_target_zones: vec!["us-east-1a".into(), "us-east-1b".into()],
        })
    );
}

#[test]
fn file_system_being_created_is_not_ready() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Creating, &[("app", "grafana")])]);
    let selector = grafana();
    assert_eq!(
        choose_file_system(&inv, &by_tags(&selector)),
        Err(Lookup::NotReady {
            arn: format!("{ARN}:file-system/fs-1"),
            state: "creating".into()
        })
    );
}

#[test]
fn no_mount_targets_is_not_ready() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let selector = grafana();
    assert_eq!(
        lookup(&inv, &FileSystemDetails::default(), by_tags(&selector)),
        Lookup::NotReady {
            arn: format!("{ARN}:file-system/fs-1"),
            state: "no mount targets".into()
        }
    );
}

#[test]
fn mount_targets_being_created_are_not_ready() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let details = file_system_details(
        &[mount_target("fs-1", "us-east-1a", LifeCycleState::Creating)],
        &[],
    );
    let selector = grafana();
    assert!(matches!(
        lookup(&inv, &details, by_tags(&selector)),
        Lookup::NotReady { state, .. } if state == "mount targets not available yet"
    ));
}

#[test]
fn several_tagged_file_systems_are_ambiguous() {
    let inv = inventory(&[
        fs("fs-b", LifeCycleState::Available, &[("app", "grafana")]),
        fs("fs-a", LifeCycleState::Available, &[("app", "grafana")]),
    ]);
    let selector = grafana();
    assert_eq!(
        choose_file_system(&inv, &by_tags(&selector)),
        Err(Lookup::Ambiguous {
            arns: vec![
                format!("{ARN}:file-system/fs-a"),
                format!("{ARN}:file-system/fs-b")
            ]
        })
    );
}

#[test]
fn no_tagged_file_system_is_not_found() {
    let inv = inventory(&[fs("fs-a", LifeCycleState::Available, &[("app", "x")])]);
    let selector = grafana();
    assert_eq!(
        choose_file_system(&inv, &by_tags(&selector)),
        Err(Lookup::NotFound { candidates: 1 })
    );
}

#[test]
fn requested_access_point_must_exist() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let details = file_system_details(&two_zones("fs-1"), &[access_point("fsap-other", &[])]);
    let selector = grafana();
    let query = FileSystemQuery::Tags {
        selector: &selector,
        access_point_id: Some("fsap-missing"),
    };
    match lookup(&inv, &details, query) {
        Lookup::Unsupported { arn, reason } => {
            assert_eq!(arn, format!("{ARN}:file-system/fs-1"));
            assert_eq!(
                reason,
                "access point fsap-missing does not exist on file system fs-1"
            );
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn requested_access_point_is_used() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[])]);
    let details = file_system_details(&two_zones("fs-1"), &[access_point("fsap-1", &[])]);
    let query = FileSystemQuery::Id {
        file_system_id: "fs-1",
        access_point_id: Some("fsap-1"),
    };
    assert!(matches!(
        lookup(&inv, &details, query),
        Lookup::Found(f) if f.access_point_id.as_deref() == Some("fsap-1")
    ));
}

#[test]
fn tagged_access_point_is_chosen() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let details = file_system_details(
        &two_zones("fs-1"),
        &[
            access_point("fsap-untagged", &[]),
            access_point("fsap-grafana", &[("app", "grafana")]),
        ],
    );
    let selector = grafana();
    assert!(matches!(
        lookup(&inv, &details, by_tags(&selector)),
        Lookup::Found(f) if f.access_point_id.as_deref() == Some("fsap-grafana")
    ));
}

#[test]
fn two_tagged_access_points_are_ambiguous() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let details = file_system_details(
        &two_zones("fs-1"),
        &[
            access_point("fsap-2", &[("app", "grafana")]),
            access_point("fsap-1", &[("app", "grafana")]),
        ],
    );
    let selector = grafana();
    assert_eq!(
        lookup(&inv, &details, by_tags(&selector)),
        Lookup::Ambiguous {
            arns: vec![
                format!("{ARN}:access-point/fsap-1"),
                format!("{ARN}:access-point/fsap-2")
            ]
        }
    );
}

#[test]
fn by_id_ignores_tagged_access_points_and_mounts_the_root() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let details = file_system_details(
        &two_zones("fs-1"),
        &[access_point("fsap-1", &[("app", "grafana")])],
    );
    let query = FileSystemQuery::Id {
        file_system_id: "fs-1",
        access_point_id: None,
    };
    assert!(matches!(
        lookup(&inv, &details, query),
        Lookup::Found(f) if f.access_point_id.is_none()
    ));
}

#[test]
fn unknown_id_is_not_found() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[])]);
    let query = FileSystemQuery::Id {
        file_system_id: "fs-2",
        access_point_id: None,
    };
    assert_eq!(
        choose_file_system(&inv, &query),
        Err(Lookup::NotFound { candidates: 1 })
    );
}

#[test]
fn access_point_being_created_is_not_ready() {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[])]);
    let mut ap = access_point("fsap-1", &[]);
    ap.life_cycle_state = Some(LifeCycleState::Creating);
    let details = file_system_details(&two_zones("fs-1"), &[ap]);
    let query = FileSystemQuery::Id {
        file_system_id: "fs-1",
        access_point_id: Some("fsap-1"),
    };
    assert!(matches!(
        lookup(&inv, &details, query),
        Lookup::NotReady { state, .. } if state == "creating"
    ));
}

/// Two clusters share one file system: each created its own access point.
fn shared_details() -> FileSystemDetails {
    file_system_details(
        &two_zones("fs-1"),
        &[
            access_point("fsap-a", &[("app", "grafana"), (OWNER_TAG, "obs/a")]),
            access_point("fsap-b", &[(OWNER_TAG, "obs/b")]),
        ],
    )
}

fn lookup_for(
    details: &FileSystemDetails,
    query: FileSystemQuery<'_>,
    owner: &str,
) -> Option<String> {
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    let fs = choose_file_system(&inv, &query).expect("file system");
    match storage_facts_for(fs, details, &query, Some(owner)) {
        Lookup::Found(f) => f.access_point_id,
        other => panic!("expected Found, got {other:?}"),
    }
}

#[test]
fn the_owners_access_point_wins_over_the_selector() {
    let selector = grafana();
    let mut details = shared_details();
    details.access_points.push(
        file_system_details(&[], &[access_point("fsap-tagged", &[("app", "grafana")])])
            .access_points[0]
            .clone(),
    );
    assert_eq!(
        lookup_for(&details, by_tags(&selector), "obs/b").as_deref(),
        Some("fsap-b"),
        "its own, not the one the selector alone would pick"
    );
    let by_id = FileSystemQuery::Id {
        file_system_id: "fs-1",
        access_point_id: None,
    };
    assert_eq!(
        lookup_for(&details, by_id, "obs/a").as_deref(),
        Some("fsap-a"),
        "a file system given by id finds the access point created for it too"
    );
}

#[test]
fn another_clusters_access_point_is_never_selected_or_ambiguous() {
    let selector = grafana();
    // obs/c has none yet: fsap-a carries the selector's tag but belongs to obs/a, so c
    // mounts the root (and creates its own) instead of seeing two or taking a's.
    assert_eq!(
        lookup_for(&shared_details(), by_tags(&selector), "obs/c"),
        None
    );
    // Without an owner (the plain lookup), an owned point is still not anyone's pick.
    let inv = inventory(&[fs("fs-1", LifeCycleState::Available, &[("app", "grafana")])]);
    assert!(matches!(
        lookup(&inv, &shared_details(), by_tags(&selector)),
        Lookup::Found(f) if f.access_point_id.is_none()
    ));
}

#[test]
fn a_named_access_point_wins_over_the_owned_one() {
    let query = FileSystemQuery::Id {
        file_system_id: "fs-1",
        access_point_id: Some("fsap-b"),
    };
    assert_eq!(
        lookup_for(&shared_details(), query, "obs/a").as_deref(),
        Some("fsap-b")
    );
}

// Region-wide access points and cached mount targets (the calls per refresh).

fn access_point_on(fs_id: &str, id: &str) -> AccessPointDescription {
    AccessPointDescription::builder()
        .access_point_id(id)
        .access_point_arn(format!("{ARN}:access-point/{id}"))
        .file_system_id(fs_id)
        .life_cycle_state(LifeCycleState::Available)
        .build()
}

#[test]
fn the_region_listing_gives_each_file_system_its_own_access_points() {
    let listing = AccessPointInventory::from_descriptions(&[
        access_point_on("fs-a", "fsap-a1"),
        access_point_on("fs-b", "fsap-b1"),
        access_point_on("fs-a", "fsap-a2"),
        // No file system id: cannot be placed, so it is nobody's.
        access_point("fsap-orphan", &[]),
    ]);
    let ids = |fs: &str| -> Vec<String> { listing.of(fs).iter().map(|a| a.id.clone()).collect() };
    assert_eq!(ids("fs-a"), ["fsap-a1", "fsap-a2"]);
    assert_eq!(ids("fs-b"), ["fsap-b1"]);
    assert!(ids("fs-none").is_empty());

    // The lookup over the listing answers as over one file system's own call.
    let inv = inventory(&[fs("fs-a", LifeCycleState::Available, &[("app", "grafana")])]);
    let details =
        MountTargets::of("fs-a", &two_zones("fs-a")).with_access_points(listing.of("fs-a"));
    let found = lookup(
        &inv,
        &details,
        FileSystemQuery::Id {
            file_system_id: "fs-a",
            access_point_id: Some("fsap-a2"),
        },
    );
    assert!(
        matches!(&found, Lookup::Found(s) if s.access_point_id.as_deref() == Some("fsap-a2")),
        "{found:?}"
    );
    let elsewhere = lookup(
        &inv,
        &details,
        FileSystemQuery::Id {
            file_system_id: "fs-a",
            access_point_id: Some("fsap-b1"),
        },
    );
    assert!(
        matches!(elsewhere, Lookup::Unsupported { .. }),
        "{elsewhere:?}"
    );
}

#[test]
fn settled_mount_targets_are_kept_for_the_safety_refresh_and_pending_ones_not() {
    let settled = MountTargets::of("fs-a", &two_zones("fs-a"));
    assert_eq!(settled.zones, ["us-east-1a", "us-east-1b"]);
    let factor = settled.refresh_factor();
    assert!(
        (SAFETY_REFRESHES..=SAFETY_REFRESHES + SAFETY_SPREAD).contains(&factor),
        "{factor}"
    );
    // The spread depends on the id only, so it is the same at every read of one file system
    // and differs between file systems.
    assert_eq!(
        MountTargets::of(
            "fs-a",
            &[mount_target("fs-a", "z", LifeCycleState::Available)]
        )
        .refresh_factor(),
        factor
    );
    let spreads: std::collections::BTreeSet<u32> = (0..50)
        .map(|i| MountTargets::of(&format!("fs-{i:08x}"), &two_zones("x")).refresh_factor())
        .collect();
    assert!(spreads.len() > 10, "{spreads:?}");

    let creating = MountTargets::of(
        "fs-a",
        &[
            mount_target("fs-a", "us-east-1a", LifeCycleState::Available),
            mount_target("fs-a", "us-east-1b", LifeCycleState::Creating),
        ],
    );
    assert_eq!(creating.pending, 1);
    assert_eq!(creating.refresh_factor(), 1);
    assert_eq!(MountTargets::of("fs-a", &[]).refresh_factor(), 1);
}

#[test]
fn a_created_access_point_is_read_by_file_system_until_a_later_listing_has_it() {
    let recent = RecentAccessPoints::default();
    let before_creation = Instant::now();
    assert!(!recent.newer_than_listing("r", "fs-a", before_creation));
    recent.record("r", "fs-a");
    // A listing asked before the creation may lack it: read that file system by id.
    assert!(recent.newer_than_listing("r", "fs-a", before_creation));
    assert!(
        recent.newer_than_listing("r", "fs-a", before_creation),
        "until a later one"
    );
    // Other file systems and regions are served from the listing.
    assert!(!recent.newer_than_listing("r", "fs-b", before_creation));
    assert!(!recent.newer_than_listing("other", "fs-a", before_creation));
    // A listing asked after the creation has it: the creation is forgotten.
    std::thread::sleep(std::time::Duration::from_millis(2));
    let after_creation = Instant::now();
    assert!(!recent.newer_than_listing("r", "fs-a", after_creation));
    assert!(!recent.newer_than_listing("r", "fs-a", before_creation));
}
