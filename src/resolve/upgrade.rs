//! Version-aware rollouts: the database's schema only moves forward, so a minor or major
//! upgrade stops the old version, lets one new pod migrate, then scales out (optionally
//! after an RDS snapshot), and an image older than the database is refused. Pure: the
//! controller carries out the snapshot request and applies the image and replicas decided
//! here; each round moves at most as far as the live Deployment shows.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{
    DatabaseStatus, GrafanaClusterSpec, GrafanaClusterStatus, UpgradePhase, UpgradeStatus,
    UpgradeStrategy,
};
use crate::status::{ConditionState, Reason, Rollout};

use super::version::{Change, Version, change};
pub use crate::facts::SnapshotRead;

/// How long a pre-upgrade snapshot may take before the upgrade reports it failed.
const SNAPSHOT_TIMEOUT: SignedDuration = SignedDuration::from_mins(60);

/// The Grafana Deployment as it runs before this round.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveDeployment {
    pub image: String,
    pub rollout: Rollout,
}

/// An RDS snapshot the controller must create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// The DB instance or cluster to snapshot, by its ARN.
    pub database_arn: String,
    pub snapshot_id: String,
}

/// What runs this round, and what the status records.
#[derive(Clone, Debug, PartialEq)]
pub struct UpgradeDecision {
    /// The image the Deployment runs this round.
    pub image: String,
    /// The replicas the Deployment runs this round.
    pub replicas: i32,
    /// `status.upgrade`: the safe upgrade in progress, if any.
    pub status: Option<UpgradeStatus>,
    /// `status.databaseVersion`.
    pub database_version: Option<String>,
    /// The Upgrading condition.
    pub condition: ConditionState,
    /// Why the cluster cannot go on without someone acting (a refused downgrade, a failed
    /// snapshot); the Deployment keeps what it runs.
    pub blocked: Option<ConditionState>,
    pub snapshot: Option<SnapshotRequest>,
}

/// What the decision reads.
pub struct UpgradeInputs<'a> {
    /// The GrafanaCluster's name: snapshots are named after it.
    pub cluster: &'a str,
    pub spec: &'a GrafanaClusterSpec,
    pub previous: Option<&'a GrafanaClusterStatus>,
    pub live: Option<&'a LiveDeployment>,
    pub snapshot: &'a SnapshotRead,
    pub database: &'a DatabaseStatus,
    pub target: &'a str,
    pub now: Timestamp,
}

fn idle(image: &str, replicas: i32, database_version: Option<String>) -> UpgradeDecision {
    UpgradeDecision {
        image: image.to_string(),
        replicas,
        status: None,
        database_version,
        condition: ConditionState::failed(Reason::UpToDate, "no upgrade in progress"),
        blocked: None,
        snapshot: None,
    }
}

/// The version the database holds: the recorded one, or what the running image migrated
/// it to, whichever is newer.
fn database_version(inputs: &UpgradeInputs<'_>, running: Option<&str>) -> Option<Version> {
    let recorded = inputs
        .previous
        .and_then(|s| s.database_version.as_deref())
        .and_then(Version::parse);
    recorded.max(running.and_then(Version::of_image))
}

pub fn decide(inputs: &UpgradeInputs<'_>) -> UpgradeDecision {
    let desired = inputs.spec.replicas;
    let target = inputs.target;
    let running = inputs
        .live
        .map(|l| l.image.clone())
        .or_else(|| inputs.previous.and_then(|s| s.image.clone()));
    let db_version = database_version(inputs, running.as_deref());
    let recorded = db_version.map(|v| v.to_string());
    if let Some(refused) = refused_downgrade(inputs, db_version, running.as_deref()) {
        return refused;
    }
    if let Some(up) = inputs.previous.and_then(|s| s.upgrade.as_deref().cloned())
        && up.to_image == target
    {
        return step(inputs, up, recorded);
    }
    let Some(running) = running.filter(|r| r != target) else {
        return settled(inputs, recorded);
    };
    let strategy = inputs
        .spec
        .upgrade
        .as_ref()
        .and_then(|u| u.strategy)
        .unwrap_or(UpgradeStrategy::Safe);
    let kind = change(Version::of_image(&running), Version::of_image(target));
    match (kind, strategy) {
        (Change::Same | Change::Patch, _) | (_, UpgradeStrategy::RollingUpgrade) => {
            idle(target, desired, recorded)
        }
        (Change::Upgrade | Change::Unknown | Change::Downgrade, UpgradeStrategy::Safe) => {
            let snapshot = inputs
                .spec
                .upgrade
                .as_ref()
                .and_then(|u| u.snapshot)
                .unwrap_or(false);
            let up = UpgradeStatus {
                from_image: running.clone(),
                to_image: target.to_string(),
                phase: if snapshot {
                    UpgradePhase::Snapshotting
                } else {
                    UpgradePhase::Stopping
                },
                started: Time(inputs.now),
                snapshot_id: snapshot.then(|| snapshot_id(inputs, &running, target)),
                snapshot_arn: None,
            };
            let mut decision = step(inputs, up, recorded);
            if kind == Change::Unknown {
                decision.condition.message = format!(
                    "{} (the version of {running} or {target} is not known: treated as a minor upgrade)",
                    decision.condition.message
                );
            }
            decision
        }
    }
}

/// Nothing to upgrade: record the version the database reached once the rollout is done.
fn settled(inputs: &UpgradeInputs<'_>, recorded: Option<String>) -> UpgradeDecision {
    let done = inputs
        .live
        .is_some_and(|l| l.image == inputs.target && l.rollout.complete(inputs.spec.replicas));
    let version = match (done, Version::of_image(inputs.target)) {
        (true, Some(v)) => Some(v.to_string()).max(recorded),
        _ => recorded,
    };
    idle(inputs.target, inputs.spec.replicas, version)
}

fn refused_downgrade(
    inputs: &UpgradeInputs<'_>,
    db_version: Option<Version>,
    running: Option<&str>,
) -> Option<UpgradeDecision> {
    let (db, target) = (db_version?, Version::of_image(inputs.target)?);
    let accepted = inputs
        .spec
        .upgrade
        .as_ref()
        .and_then(|u| u.accept_downgrade_from.as_deref())
        .and_then(Version::parse);
    if target >= db || accepted == Some(db) {
        return None;
    }
    let message = format!(
        "spec.image {} is Grafana {target}, older than the database, which Grafana {db} migrated; Grafana's migrations only move forward. Restore a snapshot taken before the upgrade, or set spec.upgrade.acceptDowngradeFrom: \"{db}\" to run it anyway",
        inputs.target
    );
    let condition = ConditionState::failed(Reason::DowngradeRefused, message.clone());
    Some(UpgradeDecision {
        image: running.unwrap_or(inputs.target).to_string(),
        replicas: inputs.spec.replicas,
        status: None,
        database_version: Some(db.to_string()),
        condition,
        blocked: Some(ConditionState::ok(Reason::DowngradeRefused, message)),
        snapshot: None,
    })
}

/// A snapshot name RDS accepts (letters, digits and single hyphens, starting with a letter,
/// at most 255), named after the cluster and both versions, unique per attempt.
fn snapshot_id(inputs: &UpgradeInputs<'_>, from: &str, to: &str) -> String {
    let cluster: String = inputs
        .cluster
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(100)
        .collect();
    let version = |image: &str| {
        Version::of_image(image)
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".into())
            .replace('.', "-")
    };
    let hash = crate::hash::short_hash(
        format!("{}|{from}|{to}|{}", inputs.database.endpoint, inputs.now).as_bytes(),
        6,
    );
    let id = format!(
        "grafana-{cluster}-{}-to-{}-{hash}",
        version(from),
        version(to)
    );
    // RDS refuses two hyphens in a row.
    let mut out = String::with_capacity(id.len());
    for c in id.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out
}

/// Moves the upgrade as far as the live Deployment allows this round.
fn step(
    inputs: &UpgradeInputs<'_>,
    mut up: UpgradeStatus,
    mut recorded: Option<String>,
) -> UpgradeDecision {
    if up.phase == UpgradePhase::Snapshotting {
        match waiting_for_snapshot(inputs, &mut up, &recorded) {
            Some(decision) => return decision,
            None => up.phase = UpgradePhase::Stopping,
        }
    }
    loop {
        if up.phase == UpgradePhase::Migrating {
            // From here on the database may carry the new schema.
            recorded = Version::of_image(&up.to_image)
                .map(|v| v.to_string())
                .max(recorded);
        }
        let t = target(inputs, &up);
        if !t.done {
            return in_progress(&up, t.image, t.replicas, t.reason, t.message, recorded);
        }
        up.phase = match up.phase {
            UpgradePhase::Stopping => UpgradePhase::Migrating,
            UpgradePhase::Migrating => UpgradePhase::ScalingOut,
            UpgradePhase::ScalingOut | UpgradePhase::Snapshotting => {
                let mut done = idle(&up.to_image, inputs.spec.replicas, recorded);
                done.condition = ConditionState::failed(
                    Reason::UpToDate,
                    format!("upgraded from {} to {}", up.from_image, up.to_image),
                );
                return done;
            }
        };
    }
}

/// What one step after the snapshot runs, and whether the live Deployment shows it done.
struct StepTarget {
    image: String,
    replicas: i32,
    reason: Reason,
    message: String,
    done: bool,
}

fn target(inputs: &UpgradeInputs<'_>, up: &UpgradeStatus) -> StepTarget {
    let desired = inputs.spec.replicas;
    let live = inputs.live;
    let to = up.to_image.clone();
    match up.phase {
        // The snapshot is handled before; a status that still says so stops the old version.
        UpgradePhase::Snapshotting | UpgradePhase::Stopping => StepTarget {
            message: format!("stopping {} before the migrations", up.from_image),
            image: to,
            replicas: 0,
            reason: Reason::Stopping,
            // Also done when a new pod already exists: the status read this round may be
            // older than the step the Deployment shows, and a step must never go back.
            done: live.is_some_and(|l| {
                l.rollout.observed
                    && (l.rollout.replicas == 0
                        || (l.image == up.to_image && l.rollout.updated >= 1))
            }),
        },
        UpgradePhase::Migrating => StepTarget {
            message: format!("one pod of {to} runs the database migrations"),
            // Only new pods, one of them ready (more when the step read is older than the
            // Deployment: scaling out has begun, never scale back).
            done: live.is_some_and(|l| {
                l.image == to
                    && l.rollout.observed
                    && l.rollout.replicas == l.rollout.updated
                    && l.rollout.updated >= 1
                    && l.rollout.ready >= 1
            }),
            image: to,
            replicas: 1,
            reason: Reason::Migrating,
        },
        UpgradePhase::ScalingOut => StepTarget {
            message: format!("migrated; scaling {to} out to {desired} replicas"),
            done: live.is_some_and(|l| l.image == to && l.rollout.complete(desired)),
            image: to,
            replicas: desired,
            reason: Reason::ScalingOut,
        },
    }
}

/// While the snapshot is not available: the decision for this round (the old version keeps
/// serving, the snapshot is asked for once). None once it is available (recorded in `up`).
fn waiting_for_snapshot(
    inputs: &UpgradeInputs<'_>,
    up: &mut UpgradeStatus,
    recorded: &Option<String>,
) -> Option<UpgradeDecision> {
    match snapshotting(inputs, up) {
        Ok(true) => return None,
        Ok(false) => {}
        Err(failed) => return Some(*failed),
    }
    let request = SnapshotRequest {
        database_arn: inputs.database.arn.clone().unwrap_or_default(),
        snapshot_id: up.snapshot_id.clone().unwrap_or_default(),
    };
    let wanted = matches!(
        inputs.snapshot,
        SnapshotRead::Missing | SnapshotRead::NotAsked
    );
    let mut d = in_progress(
        up,
        up.from_image.clone(),
        inputs.spec.replicas,
        Reason::Snapshotting,
        format!(
            "taking snapshot {} of the database before upgrading to {}; {} keeps serving",
            request.snapshot_id, up.to_image, up.from_image
        ),
        recorded.clone(),
    );
    d.snapshot = wanted.then_some(request);
    Some(d)
}

/// Ok(true) when the snapshot is available (recorded in `up`), Ok(false) while waiting,
/// Err with the blocked decision when it failed or took too long.
fn snapshotting(
    inputs: &UpgradeInputs<'_>,
    up: &mut UpgradeStatus,
) -> Result<bool, Box<UpgradeDecision>> {
    let failure = match inputs.snapshot {
        SnapshotRead::Available { arn } => {
            up.snapshot_arn = Some(arn.clone());
            return Ok(true);
        }
        SnapshotRead::Failed(why) => format!("the pre-upgrade snapshot failed: {why}"),
        _ if inputs.now.duration_since(up.started.0) > SNAPSHOT_TIMEOUT => format!(
            "the pre-upgrade snapshot {} was not available after {} minutes",
            up.snapshot_id.as_deref().unwrap_or_default(),
            SNAPSHOT_TIMEOUT.as_mins()
        ),
        _ => return Ok(false),
    };
    let message = format!(
        "{failure}; {} keeps serving and the upgrade to {} waits: fix the cause, or set spec.upgrade.snapshot: false",
        up.from_image, up.to_image
    );
    let mut blocked = in_progress(
        up,
        up.from_image.clone(),
        inputs.spec.replicas,
        Reason::SnapshotFailed,
        message.clone(),
        None,
    );
    blocked.database_version = inputs.previous.and_then(|s| s.database_version.clone());
    blocked.blocked = Some(ConditionState::ok(Reason::SnapshotFailed, message));
    Err(Box::new(blocked))
}

fn in_progress(
    up: &UpgradeStatus,
    image: String,
    replicas: i32,
    reason: Reason,
    message: String,
    database_version: Option<String>,
) -> UpgradeDecision {
    UpgradeDecision {
        image,
        replicas,
        status: Some(up.clone()),
        database_version,
        condition: ConditionState::ok(reason, message),
        blocked: None,
        snapshot: None,
    }
}

#[cfg(test)]
mod tests;
