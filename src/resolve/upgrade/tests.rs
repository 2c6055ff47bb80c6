use super::*;
use crate::fixtures;

const OLD: &str = "docker.io/grafana/grafana:12.4.5";
const NEW: &str = "docker.io/grafana/grafana:13.3.0";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("ts")
}

fn rollout(replicas: i32, ready: i32, updated: i32) -> Rollout {
    Rollout {
        replicas,
        ready,
        updated,
        available: ready,
        observed: true,
    }
}

fn live(image: &str, r: Rollout) -> LiveDeployment {
    LiveDeployment {
        image: image.into(),
        rollout: r,
    }
}

struct Case {
    spec: GrafanaClusterSpec,
    previous: GrafanaClusterStatus,
    live: Option<LiveDeployment>,
    snapshot: SnapshotRead,
    database: DatabaseStatus,
}

impl Case {
    /// Running OLD at 3 replicas, the database at 12.4.5, the spec asking for NEW.
    fn upgrade() -> Case {
        let plan = fixtures::plan();
        let mut spec = fixtures::article().spec;
        spec.image = Some(NEW.into());
        Case {
            spec,
            previous: GrafanaClusterStatus {
                image: Some(OLD.into()),
                database_version: Some("12.4.5".into()),
                ..Default::default()
            },
            live: Some(live(OLD, rollout(3, 3, 3))),
            snapshot: SnapshotRead::NotAsked,
            database: plan.database.status,
        }
    }

    fn decide(&self) -> UpgradeDecision {
        decide(&UpgradeInputs {
            cluster: "my--grafana",
            spec: &self.spec,
            previous: Some(&self.previous),
            live: self.live.as_ref(),
            snapshot: &self.snapshot,
            database: &self.database,
            target: self.spec.image.as_deref().unwrap_or(NEW),
            now: now(),
        })
    }

    /// The next round after `d` was applied and the Deployment reached `r`.
    fn next(&mut self, d: &UpgradeDecision, r: Rollout) {
        self.previous.upgrade = d.status.clone().map(Box::new);
        self.previous.database_version = d.database_version.clone();
        self.previous.image = Some(d.image.clone());
        self.live = Some(live(&d.image, r));
    }
}

#[test]
fn a_minor_upgrade_stops_migrates_with_one_pod_then_scales_out() {
    let mut c = Case::upgrade();
    let d = c.decide();
    assert_eq!(
        (d.image.as_str(), d.replicas),
        (NEW, 0),
        "old version stopped first"
    );
    assert_eq!(d.condition.reason, Reason::Stopping);
    assert_eq!(d.status.as_ref().expect("up").phase, UpgradePhase::Stopping);
    // Old pods still terminating: hold.
    c.next(&d, rollout(2, 2, 0));
    assert_eq!(c.decide().replicas, 0);
    c.next(&d, rollout(0, 0, 0));
    let d = c.decide();
    assert_eq!((d.replicas, d.condition.reason), (1, Reason::Migrating));
    assert_eq!(
        d.database_version.as_deref(),
        Some("13.3.0"),
        "migration may start"
    );
    c.next(&d, rollout(1, 0, 1));
    assert_eq!(c.decide().replicas, 1, "wait for the migrator to be ready");
    c.next(&d, rollout(1, 1, 1));
    let d = c.decide();
    assert_eq!((d.replicas, d.condition.reason), (3, Reason::ScalingOut));
    c.next(&d, rollout(3, 3, 3));
    let d = c.decide();
    assert!(d.status.is_none());
    assert_eq!(d.condition.reason, Reason::UpToDate);
    assert!(d.condition.message.contains("upgraded from"));
    assert_eq!(d.database_version.as_deref(), Some("13.3.0"));
}

#[test]
fn a_patch_rolls_normally_and_records_the_version_once_done() {
    let mut c = Case::upgrade();
    c.previous.image = Some("docker.io/grafana/grafana:13.3.0".into());
    c.previous.database_version = Some("13.3.0".into());
    c.live = Some(live(NEW, rollout(3, 3, 3)));
    c.spec.image = Some("docker.io/grafana/grafana:13.3.1".into());
    let d = c.decide();
    assert_eq!(d.replicas, 3);
    assert!(d.status.is_none());
    assert_eq!(d.database_version.as_deref(), Some("13.3.0"));
    c.live = Some(live("docker.io/grafana/grafana:13.3.1", rollout(3, 3, 3)));
    assert_eq!(c.decide().database_version.as_deref(), Some("13.3.1"));
}

#[test]
fn rolling_upgrade_keeps_todays_behaviour() {
    let mut c = Case::upgrade();
    c.spec.upgrade = Some(crate::api::UpgradeSpec {
        strategy: Some(UpgradeStrategy::RollingUpgrade),
        ..Default::default()
    });
    let d = c.decide();
    assert_eq!((d.image.as_str(), d.replicas), (NEW, 3));
    assert!(d.status.is_none());
}

#[test]
fn a_downgrade_below_the_database_is_refused_unless_accepted() {
    let mut c = Case::upgrade();
    c.previous.image = Some(NEW.into());
    c.previous.database_version = Some("13.3.0".into());
    c.live = Some(live(NEW, rollout(3, 3, 3)));
    c.spec.image = Some(OLD.into());
    let d = c.decide();
    assert_eq!(d.image, NEW, "keeps running what runs");
    let blocked = d.blocked.expect("refused");
    assert_eq!(blocked.reason, Reason::DowngradeRefused);
    assert!(blocked.message.contains("12.4.5") && blocked.message.contains("13.3.0"));
    assert!(blocked.message.contains("acceptDowngradeFrom: \"13.3.0\""));
    c.spec.upgrade = Some(crate::api::UpgradeSpec {
        accept_downgrade_from: Some("13.3.0".into()),
        ..Default::default()
    });
    let d = c.decide();
    assert!(d.blocked.is_none());
    assert_eq!(d.image, OLD);
}

#[test]
fn the_snapshot_comes_first_and_its_failure_blocks() {
    let mut c = Case::upgrade();
    c.spec.upgrade = Some(crate::api::UpgradeSpec {
        snapshot: Some(true),
        ..Default::default()
    });
    let d = c.decide();
    assert_eq!(
        (d.image.as_str(), d.replicas),
        (OLD, 3),
        "old version serves meanwhile"
    );
    assert_eq!(d.condition.reason, Reason::Snapshotting);
    let request = d.snapshot.clone().expect("create the snapshot");
    assert!(
        request
            .snapshot_id
            .starts_with("grafana-my-grafana-12-4-5-to-13-3-0-"),
        "{}",
        request.snapshot_id
    );
    c.next(&d, rollout(3, 3, 3));
    c.live = Some(live(OLD, rollout(3, 3, 3)));
    c.snapshot = SnapshotRead::Creating;
    assert!(c.decide().snapshot.is_none(), "asked once, then waited for");
    c.snapshot = SnapshotRead::Available {
        arn: "arn:aws:rds:us-east-1:1:snapshot:s".into(),
    };
    let d = c.decide();
    assert_eq!(d.condition.reason, Reason::Stopping);
    assert_eq!(
        d.status.as_ref().and_then(|s| s.snapshot_arn.as_deref()),
        Some("arn:aws:rds:us-east-1:1:snapshot:s")
    );
    c.snapshot = SnapshotRead::Failed("AccessDenied".into());
    let mut failed = Case::upgrade();
    failed.spec = c.spec.clone();
    let first = failed.decide();
    failed.next(&first, rollout(3, 3, 3));
    failed.live = Some(live(OLD, rollout(3, 3, 3)));
    failed.snapshot = SnapshotRead::Failed("AccessDenied".into());
    let d = failed.decide();
    assert_eq!(d.image, OLD);
    assert_eq!(d.blocked.expect("blocked").reason, Reason::SnapshotFailed);
}

#[test]
fn an_unknown_version_is_treated_as_a_minor_upgrade_and_says_so() {
    let mut c = Case::upgrade();
    c.spec.image = Some("docker.io/grafana/grafana:latest".into());
    let d = c.decide();
    assert_eq!(d.replicas, 0);
    assert!(d.condition.message.contains("treated as a minor upgrade"));
}

#[test]
fn a_first_install_just_runs() {
    let mut c = Case::upgrade();
    c.previous = GrafanaClusterStatus::default();
    c.live = None;
    let d = c.decide();
    assert_eq!((d.image.as_str(), d.replicas), (NEW, 3));
    assert!(d.status.is_none() && d.blocked.is_none());
}

/// The status a round reads can be older than what the Deployment shows (a status write not
/// yet in the cache): the upgrade must never step back, e.g. stop the migrator again.
#[test]
fn a_stale_step_never_goes_back() {
    let mut c = Case::upgrade();
    let stopping = c.decide();
    c.next(&stopping, rollout(0, 0, 0));
    let migrating = c.decide();
    assert_eq!(migrating.replicas, 1);
    // The status still says Stopping, but the migrator runs and is ready.
    c.previous.upgrade = stopping.status.clone().map(Box::new);
    c.live = Some(live(NEW, rollout(1, 1, 1)));
    let d = c.decide();
    assert_eq!((d.replicas, d.condition.reason), (3, Reason::ScalingOut));
    // The status still says Migrating, but scaling out has begun.
    c.previous.upgrade = migrating.status.clone().map(Box::new);
    c.live = Some(live(NEW, rollout(2, 2, 2)));
    assert_eq!(c.decide().replicas, 3, "never back to one pod");
}
