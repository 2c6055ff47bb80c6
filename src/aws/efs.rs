//! EFS: finding the plugins file system by tag or id, with its mount targets and access
//! point.
//!
//! `DescribeFileSystems` returns tags inline, so the inventory is one paged listing.
//! `DescribeAccessPoints` without a file system id lists the region's access points (with
//! their tags and file system id) in pages, so access points are a second region-wide
//! listing. Only mount targets need a call per file system (`DescribeMountTargets` takes
//! exactly one file system, mount target or access point id): they are read for the file
//! system a lookup selected and kept while the listing's `NumberOfMountTargets` and
//! `LifeCycleState` of that file system stay the same (see [`MountTargets`]). A refresh
//! then costs page counts, whatever the number of file systems.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aws_sdk_efs::types::{
    AccessPointDescription, FileSystemDescription, LifeCycleState, MountTargetDescription, Tag,
};

use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::aws::interest::{Recheck, Refresh, fingerprint};
use crate::aws::inventory::{FetchContext, Inventory};
use crate::aws::select::{Candidate, found_or, select_by_tags, select_one};
use crate::aws::{Discovery, all_pages, lookup_outcome};
use crate::facts::{Lookup, OWNER_TAG, ResourceTags, StorageFacts, Tags};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "efs";
const DESCRIBE_FILE_SYSTEMS: &str = "DescribeFileSystems";
const DESCRIBE_MOUNT_TARGETS: &str = "DescribeMountTargets";
const DESCRIBE_ACCESS_POINTS: &str = "DescribeAccessPoints";

/// EFS caps MaxItems / MaxResults of its list calls at 100 (mount targets: 100 too).
const EFS_MAX_PAGE: i32 = 100;

service_client!(aws_sdk_efs, SERVICE);

mod access_point;
pub use access_point::CREATE_ACCESS_POINT;

impl Discovery {
    /// The EFS file system a query names, with its mount target zones and access point.
    ///
    /// Two steps: the region's file systems (one listing, cached like every inventory) pick
    /// the file system; then its mount targets (read for that one file system, cached by its
    /// id, number of mount targets and state) and its access points (from the region's
    /// listing) finish the lookup.
    pub async fn find_file_system(
        &self,
        region: Option<&str>,
        query: FileSystemQuery<'_>,
    ) -> Result<Lookup<StorageFacts>, AwsError> {
        self.find_file_system_for(region, query, None).await
    }

    /// [`Discovery::find_file_system`] for one GrafanaCluster (`owner`: `<namespace>/<name>`):
    /// without a named access point, the one carrying this owner's [`OWNER_TAG`] (which the
    /// operator created for it) wins over the selector rule, and those of other owners are
    /// never selected.
    pub async fn find_file_system_for(
        &self,
        region: Option<&str>,
        query: FileSystemQuery<'_>,
        owner: Option<&str>,
    ) -> Result<Lookup<StorageFacts>, AwsError> {
        let (region, inventory) = self.inventory::<EfsInventory>(region, ()).await?;
        let lookup = match choose_file_system(&inventory, &query) {
            Err(done) => done,
            Ok(fs) => {
                let (_, mount_targets) = self
                    .inventory::<MountTargets>(
                        Some(&region),
                        (fs.id.clone(), fs.mount_targets, fs.state.clone()),
                    )
                    .await?;
                let (_, listing) = self
                    .inventory::<AccessPointInventory>(Some(&region), ())
                    .await?;
                let details = if self.inner.efs_created.newer_than_listing(
                    &region,
                    &fs.id,
                    listing.listed_from,
                ) {
                    let (_, own) = self
                        .inventory::<FileSystemAccessPoints>(Some(&region), fs.id.clone())
                        .await?;
                    mount_targets.with_access_points(&own.entries)
                } else {
                    mount_targets.with_access_points(listing.of(&fs.id))
                };
                storage_facts_for(fs, &details, &query, owner)
            }
        };
        tracing::debug!(%region, ?query, outcome = lookup_outcome(&lookup), "EFS lookup");
        if self.owner.is_some() {
            self.remember_file_system(region, &query, owner, &lookup);
        }
        Ok(lookup)
    }

    /// Remembers an EFS answer for the change watch (see `interest.rs`).
    fn remember_file_system(
        &self,
        region: String,
        query: &FileSystemQuery<'_>,
        owner: Option<&str>,
        lookup: &Lookup<StorageFacts>,
    ) {
        let owned = OwnedQuery::of(query, owner);
        let key = (
            std::any::TypeId::of::<MountTargets>(),
            region.clone(),
            format!("{owned:?}"),
        );
        let recheck_region = region.clone();
        let recheck: Recheck = Arc::new(move |d: Discovery| {
            let region = recheck_region.clone();
            let owned = owned.clone();
            Box::pin(async move {
                let selector = owned.selector();
                let query = owned.query(selector.as_ref());
                let lookup = d
                    .find_file_system_for(Some(&region), query, owned.owner.as_deref())
                    .await?;
                Ok(fingerprint(&lookup))
            })
        });
        // The watch keeps both region-wide listings fresh; mount targets follow the file
        // system listing's NumberOfMountTargets when the recheck asks again.
        let refresh: Refresh = Arc::new(move |d: Discovery| {
            let region = region.clone();
            Box::pin(async move {
                d.inventory::<EfsInventory>(Some(&region), ()).await?;
                d.inventory::<AccessPointInventory>(Some(&region), ())
                    .await
                    .map(|_| ())
            })
        });
        self.remember(key, fingerprint(lookup), recheck, refresh);
    }
}

/// A [`FileSystemQuery`] and owner that a later recheck can ask again. Kept for as long as
/// the cluster is watched: the selector is a sorted slice, not a map (a `BTreeMap` is a
/// 0.5 KB node however few its tags), and a map again only while a recheck asks.
#[derive(Clone, Debug)]
struct OwnedQuery {
    selector: Option<ResourceTags>,
    file_system_id: Option<String>,
    access_point_id: Option<String>,
    owner: Option<String>,
}

impl OwnedQuery {
    fn of(query: &FileSystemQuery<'_>, owner: Option<&str>) -> OwnedQuery {
        let (selector, file_system_id) = match *query {
            FileSystemQuery::Tags { selector, .. } => (
                Some(
                    selector
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect(),
                ),
                None,
            ),
            FileSystemQuery::Id { file_system_id, .. } => (None, Some(file_system_id.to_string())),
        };
        OwnedQuery {
            selector,
            file_system_id,
            access_point_id: query.access_point_id().map(str::to_string),
            owner: owner.map(str::to_string),
        }
    }

    /// The selector as the query takes it.
    fn selector(&self) -> Option<Tags> {
        let kept = self.selector.as_ref()?;
        Some(
            kept.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The query again; `selector` is [`OwnedQuery::selector`].
    fn query<'a>(&'a self, selector: Option<&'a Tags>) -> FileSystemQuery<'a> {
        let access_point_id = self.access_point_id.as_deref();
        match (selector, &self.file_system_id) {
            (Some(selector), _) => FileSystemQuery::Tags {
                selector,
                access_point_id,
            },
            (None, file_system_id) => FileSystemQuery::Id {
                file_system_id: file_system_id.as_deref().unwrap_or_default(),
                access_point_id,
            },
        }
    }
}

impl Inventory for EfsInventory {
    type Client = aws_sdk_efs::Client;
    type Key = ();
    const OPERATION: &'static str = DESCRIBE_FILE_SYSTEMS;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        fetch_inventory(aws.client, aws.metrics, aws.page_size).await
    }
}

/// Every access point of a region, in one paged listing per refresh.
impl Inventory for AccessPointInventory {
    type Client = aws_sdk_efs::Client;
    type Key = ();
    const OPERATION: &'static str = DESCRIBE_ACCESS_POINTS;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        let listed_from = Instant::now();
        let listed = list_access_points(aws.client, aws.metrics, None).await?;
        let mut inventory = AccessPointInventory::from_descriptions(&listed);
        inventory.listed_from = listed_from;
        tracing::debug!(
            access_points = listed.len(),
            file_systems = inventory.by_file_system.len(),
            "refreshed EFS access points"
        );
        Ok(inventory)
    }
}

/// The access points of one file system, read by its id (one call): only for a file system
/// the operator created an access point on after the region's listing was read, until a
/// listing read after the creation has it. A cluster then sees its new access point in
/// its next round, and creating N access points costs N calls, not N listings.
impl Inventory for FileSystemAccessPoints {
    type Client = aws_sdk_efs::Client;
    type Key = String;
    const OPERATION: &'static str = DESCRIBE_ACCESS_POINTS;

    async fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        file_system_id: &String,
    ) -> Result<Self, AwsError> {
        let listed = list_access_points(aws.client, aws.metrics, Some(file_system_id)).await?;
        Ok(FileSystemAccessPoints {
            entries: listed.iter().filter_map(access_point_entry).collect(),
        })
    }
}

/// Refresh intervals for which settled mount targets are served from the cache, at least.
///
/// Mount targets are the one EFS listing that costs a call per file system, and the file
/// system listing already says when they change: a mount target created or deleted changes
/// the file system's NumberOfMountTargets, which is part of the cache key, so it is read at
/// the next refresh. What the count cannot show is a mount target deleted and another
/// created in a different zone within one refresh interval; this safety refresh (6 hours
/// at the default 60 s) bounds how long such a swap goes unseen, at a cost of N / 360
/// calls per refresh. [`SAFETY_SPREAD`] more refreshes, chosen by file system id, keep the
/// mount targets read together (every cluster's first round) from expiring together.
const SAFETY_REFRESHES: u32 = 360;

/// Up to this many refresh intervals are added to [`SAFETY_REFRESHES`], by file system id.
const SAFETY_SPREAD: u32 = 60;

/// Cached by file system id, NumberOfMountTargets and LifeCycleState (from the region's
/// file system listing): a change in either is read at once.
impl Inventory for MountTargets {
    type Client = aws_sdk_efs::Client;
    type Key = (String, i32, String);
    const OPERATION: &'static str = DESCRIBE_MOUNT_TARGETS;

    async fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        (file_system_id, _, _): &(String, i32, String),
    ) -> Result<Self, AwsError> {
        let listed = list_mount_targets(aws.client, aws.metrics, file_system_id).await?;
        let mount_targets = MountTargets::of(file_system_id, &listed);
        tracing::debug!(
            file_system_id,
            zones = ?mount_targets.zones,
            pending = mount_targets.pending,
            "refreshed EFS mount targets"
        );
        Ok(mount_targets)
    }

    /// Mount targets still being created (or none yet) are read at every refresh: their
    /// count does not move when they become available. Settled ones, see
    /// [`SAFETY_REFRESHES`].
    fn refresh_factor(&self) -> u32 {
        if self.pending > 0 || self.zones.is_empty() {
            1
        } else {
            SAFETY_REFRESHES + self.spread
        }
    }
}

/// How to find the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSystemQuery<'a> {
    /// The one file system carrying every selector tag. Without `access_point_id`, an access
    /// point on it that carries every selector tag is used, else the root.
    Tags {
        selector: &'a Tags,
        access_point_id: Option<&'a str>,
    },
    /// A file system given by id (fs-...). Without `access_point_id`, the root.
    Id {
        file_system_id: &'a str,
        access_point_id: Option<&'a str>,
    },
}

impl<'a> FileSystemQuery<'a> {
    pub fn access_point_id(&self) -> Option<&'a str> {
        match *self {
            FileSystemQuery::Tags {
                access_point_id, ..
            }
            | FileSystemQuery::Id {
                access_point_id, ..
            } => access_point_id,
        }
    }

    fn selector(&self) -> Option<&'a Tags> {
        match *self {
            FileSystemQuery::Tags { selector, .. } => Some(selector),
            FileSystemQuery::Id { .. } => None,
        }
    }
}

/// Every file system of a region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EfsInventory {
    pub file_systems: Vec<FileSystemEntry>,
}

/// One file system, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSystemEntry {
    pub id: String,
    pub arn: String,
    /// LifeCycleState: creating, available, updating, deleting, deleted, error.
    pub state: String,
    /// NumberOfMountTargets: a change re-reads the mount targets at once (see
    /// [`MountTargets`]).
    pub mount_targets: i32,
    pub tags: ResourceTags,
}

/// Every access point of a region, by file system id.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessPointInventory {
    by_file_system: HashMap<String, Vec<AccessPointEntry>>,
    /// When the listing was asked for: what was created before is in it.
    listed_from: Instant,
}

/// The access points of one file system (see [`FileSystemAccessPoints`]'s `Inventory`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileSystemAccessPoints {
    entries: Vec<AccessPointEntry>,
}

/// When the operator last created an access point on each file system, by region, until a
/// later listing of the region's access points has it.
#[derive(Default)]
pub(crate) struct RecentAccessPoints {
    created: Mutex<HashMap<(String, String), Instant>>,
}

impl RecentAccessPoints {
    /// Records a creation on `file_system_id`, now.
    fn record(&self, region: &str, file_system_id: &str) {
        self.lock().insert(
            (region.to_string(), file_system_id.to_string()),
            Instant::now(),
        );
    }

    /// Whether an access point was created on `file_system_id` after the listing asked at
    /// `listed_from` (which may then lack it). A creation the listing has is forgotten.
    fn newer_than_listing(&self, region: &str, file_system_id: &str, listed_from: Instant) -> bool {
        let key = (region.to_string(), file_system_id.to_string());
        let mut created = self.lock();
        match created.get(&key) {
            Some(at) if *at >= listed_from => true,
            Some(_) => {
                created.remove(&key);
                false
            }
            None => false,
        }
    }

    /// Never held across an await, so a panic cannot leave the map half-updated.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Instant>> {
        self.created.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AccessPointInventory {
    /// Groups access points by their file system; those without an id are left out.
    pub fn from_descriptions(access_points: &[AccessPointDescription]) -> AccessPointInventory {
        let mut by_file_system: HashMap<String, Vec<AccessPointEntry>> = HashMap::new();
        for ap in access_points {
            let (Some(file_system_id), Some(entry)) = (ap.file_system_id(), access_point_entry(ap))
            else {
                continue;
            };
            by_file_system
                .entry(file_system_id.to_string())
                .or_default()
                .push(entry);
        }
        AccessPointInventory {
            by_file_system,
            listed_from: Instant::now(),
        }
    }

    /// The access points of one file system.
    pub fn of(&self, file_system_id: &str) -> &[AccessPointEntry] {
        self.by_file_system
            .get(file_system_id)
            .map_or(&[], Vec::as_slice)
    }
}

/// The mount targets of one file system, in plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountTargets {
    /// Availability zones with an available mount target, sorted and unique.
    pub zones: Vec<String>,
    /// Mount targets that exist but are not available yet (being created or deleted).
    pub pending: usize,
    /// Extra refresh intervals before the safety refresh, from the file system id.
    spread: u32,
}

impl MountTargets {
    /// The mount targets `listed` for `file_system_id`.
    pub fn of(file_system_id: &str, listed: &[MountTargetDescription]) -> MountTargets {
        let zones: BTreeSet<String> = listed
            .iter()
            .filter(|mt| is_available(mt.life_cycle_state()))
            .filter_map(|mt| mt.availability_zone_name().map(str::to_string))
            .collect();
        let mut hasher = DefaultHasher::new();
        file_system_id.hash(&mut hasher);
        MountTargets {
            zones: zones.into_iter().collect(),
            pending: listed
                .iter()
                .filter(|mt| !is_available(mt.life_cycle_state()))
                .count(),
            spread: u32::try_from(hasher.finish() % u64::from(SAFETY_SPREAD + 1)).unwrap_or(0),
        }
    }

    /// The details a lookup finishes with.
    pub fn with_access_points(&self, access_points: &[AccessPointEntry]) -> FileSystemDetails {
        FileSystemDetails {
            mount_target_zones: self.zones.clone(),
            pending_mount_targets: self.pending,
            access_points: access_points.to_vec(),
        }
    }
}

/// What is known about the one file system a lookup selected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileSystemDetails {
    /// Availability zones with an available mount target, sorted and unique.
    pub mount_target_zones: Vec<String>,
    /// Mount targets that exist but are not available yet (being created or deleted).
    pub pending_mount_targets: usize,
    pub access_points: Vec<AccessPointEntry>,
}

/// One access point, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessPointEntry {
    pub id: String,
    pub arn: String,
    pub state: String,
    pub tags: ResourceTags,
}

fn tag_map(tags: &[Tag]) -> ResourceTags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

fn is_available(state: &LifeCycleState) -> bool {
    *state == LifeCycleState::Available
}

/// Converts a file system; None without an ARN.
pub fn file_system_entry(fs: &FileSystemDescription) -> Option<FileSystemEntry> {
    Some(FileSystemEntry {
        id: fs.file_system_id().to_string(),
        arn: fs.file_system_arn()?.to_string(),
        state: fs.life_cycle_state().as_str().to_string(),
        mount_targets: fs.number_of_mount_targets(),
        tags: tag_map(fs.tags()),
    })
}

/// Mount targets and access points of one file system, in plain data.
pub fn file_system_details(
    mount_targets: &[MountTargetDescription],
    access_points: &[AccessPointDescription],
) -> FileSystemDetails {
    let access_points: Vec<AccessPointEntry> = access_points
        .iter()
        .filter_map(access_point_entry)
        .collect();
    MountTargets::of("", mount_targets).with_access_points(&access_points)
}

fn access_point_entry(ap: &AccessPointDescription) -> Option<AccessPointEntry> {
    Some(AccessPointEntry {
        id: ap.access_point_id()?.to_string(),
        arn: ap.access_point_arn()?.to_string(),
        state: ap
            .life_cycle_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        tags: tag_map(ap.tags()),
    })
}

impl<'a> Candidate for &'a FileSystemEntry {
    type Facts = &'a FileSystemEntry;

    fn arn(&self) -> &str {
        &self.arn
    }

    fn tags(&self) -> &ResourceTags {
        &self.tags
    }

    /// An available file system is chosen; its mount targets and access points decide the
    /// rest of the lookup.
    fn resolve(self) -> Lookup<&'a FileSystemEntry> {
        when_available(self, &self.arn, &self.state)
    }
}

/// Found while `available`; in any other LifeCycleState (creating, updating, deleting, error)
/// not ready.
fn when_available<T>(entry: T, arn: &str, state: &str) -> Lookup<T> {
    if state == LifeCycleState::Available.as_str() {
        Lookup::Found(entry)
    } else {
        Lookup::NotReady {
            arn: arn.to_string(),
            state: state.to_string(),
        }
    }
}

impl<'a> Candidate for &'a AccessPointEntry {
    type Facts = &'a AccessPointEntry;

    fn arn(&self) -> &str {
        &self.arn
    }

    fn tags(&self) -> &ResourceTags {
        &self.tags
    }

    fn resolve(self) -> Lookup<&'a AccessPointEntry> {
        when_available(self, &self.arn, &self.state)
    }
}

/// The first step of a lookup: the available file system a query names, or the lookup's
/// final answer (not found, ambiguous, not available) when there is none.
pub fn choose_file_system<'a>(
    inventory: &'a EfsInventory,
    query: &FileSystemQuery<'_>,
) -> Result<&'a FileSystemEntry, Lookup<StorageFacts>> {
    let chosen = match query {
        FileSystemQuery::Tags { selector, .. } => select_by_tags(&inventory.file_systems, selector),
        FileSystemQuery::Id { file_system_id, .. } => {
            select_one(&inventory.file_systems, |fs| fs.id == *file_system_id)
        }
    };
    found_or(chosen)
}

/// Finishes a lookup once the chosen file system's mount targets and access points are known.
pub fn storage_facts(
    fs: &FileSystemEntry,
    details: &FileSystemDetails,
    query: &FileSystemQuery<'_>,
) -> Lookup<StorageFacts> {
    storage_facts_for(fs, details, query, None)
}

/// [`storage_facts`] for one owner (see [`Discovery::find_file_system_for`]).
pub fn storage_facts_for(
    fs: &FileSystemEntry,
    details: &FileSystemDetails,
    query: &FileSystemQuery<'_>,
    owner: Option<&str>,
) -> Lookup<StorageFacts> {
    if details.mount_target_zones.is_empty() {
        let state = if details.pending_mount_targets > 0 {
            "mount targets not available yet"
        } else {
            "no mount targets"
        };
        return Lookup::NotReady {
            arn: fs.arn.clone(),
            state: state.into(),
        };
    }
    let access_point = match choose_access_point(fs, details, query, owner) {
        Ok(ap) => ap,
        Err(lookup) => return lookup,
    };
    Lookup::Found(StorageFacts {
        file_system_id: fs.id.clone(),
        arn: fs.arn.clone(),
        access_point_id: access_point.map(|ap| ap.id.clone()),
        mount_target_zones: details.mount_target_zones.clone(),
    })
}

/// The owner tag of an access point the operator created.
fn owned_by(ap: &AccessPointEntry) -> Option<&str> {
    ap.tags.get(OWNER_TAG)
}

/// The access point to mount through (None: the root), or why the lookup cannot finish.
fn choose_access_point<'a>(
    fs: &FileSystemEntry,
    details: &'a FileSystemDetails,
    query: &FileSystemQuery<'_>,
    owner: Option<&str>,
) -> Result<Option<&'a AccessPointEntry>, Lookup<StorageFacts>> {
    let chosen = if let Some(wanted) = query.access_point_id() {
        match select_one(&details.access_points, |ap| ap.id == wanted) {
            // Named explicitly, so its absence is a mistake in the spec, not a wait.
            Lookup::NotFound { .. } => {
                return Err(Lookup::Unsupported {
                    arn: fs.arn.clone(),
                    reason: format!(
                        "access point {wanted} does not exist on file system {}",
                        fs.id
                    ),
                });
            }
            other => other,
        }
    } else if let Some(mine) = owner.and_then(|owner| {
        let owned = select_one(&details.access_points, |ap| owned_by(ap) == Some(owner));
        // The operator created this one for this cluster: it wins over any tagged one.
        (!matches!(owned, Lookup::NotFound { .. })).then_some(owned)
    }) {
        mine
    } else if let Some(selector) = query.selector() {
        // Another cluster's access point may share the file system's tags through
        // spec.aws.tags; it is never this cluster's.
        let unowned = details
            .access_points
            .iter()
            .filter(|ap| owned_by(ap).is_none());
        match select_by_tags(unowned, selector) {
            // Tagging an access point is optional: without one, mount the root.
            Lookup::NotFound { .. } => return Ok(None),
            other => other,
        }
    } else {
        return Ok(None);
    };
    found_or(chosen).map(Some)
}

/// Lists every file system of the region.
pub async fn fetch_inventory(
    client: &aws_sdk_efs::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<EfsInventory, AwsError> {
    let listed: Vec<Option<FileSystemEntry>> = all_pages!(
        metrics,
        DESCRIBE_FILE_SYSTEMS,
        client
            .describe_file_systems()
            .max_items(page_size.min(EFS_MAX_PAGE)),
        file_systems,
        file_system_entry
    )?;
    let file_systems: Vec<FileSystemEntry> = listed.into_iter().flatten().collect();
    tracing::debug!(file_systems = file_systems.len(), "refreshed EFS inventory");
    Ok(EfsInventory { file_systems })
}

async fn list_mount_targets(
    client: &aws_sdk_efs::Client,
    metrics: &Metrics,
    file_system_id: &str,
) -> Result<Vec<MountTargetDescription>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_MOUNT_TARGETS,
        client
            .describe_mount_targets()
            .file_system_id(file_system_id)
            .max_items(EFS_MAX_PAGE),
        mount_targets
    )
}

/// The access points of one file system, or (None) every access point of the region:
/// without a FileSystemId (or AccessPointId), DescribeAccessPoints lists them all, in pages.
async fn list_access_points(
    client: &aws_sdk_efs::Client,
    metrics: &Metrics,
    file_system_id: Option<&str>,
) -> Result<Vec<AccessPointDescription>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_ACCESS_POINTS,
        client
            .describe_access_points()
            .set_file_system_id(file_system_id.map(str::to_string))
            .max_results(EFS_MAX_PAGE),
        access_points
    )
}

#[cfg(test)]
mod tests;
