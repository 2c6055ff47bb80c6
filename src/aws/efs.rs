//! EFS: finding the plugins file system by tag or id, with its mount targets and access
//! point.
//!
//! `DescribeFileSystems` returns tags inline, so the inventory is one paged listing. Mount
//! targets and access points need one call each per file system: they are fetched only for
//! the file system a lookup selected, and cached separately (see `Discovery`).

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_efs::types::{
    AccessPointDescription, FileSystemDescription, LifeCycleState, MountTargetDescription, Tag,
};

use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::aws::interest::{Recheck, fingerprint};
use crate::aws::inventory::{FetchContext, Inventory};
use crate::aws::select::{Candidate, found_or, select_by_tags, select_one};
use crate::aws::{Discovery, all_pages, lookup_outcome, refresh_of};
use crate::facts::{Lookup, OWNER_TAG, StorageFacts, Tags};
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
    /// the file system; then its mount targets and access points, fetched for that one file
    /// system only and cached by its id, finish the lookup.
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
                let (_, details) = self
                    .inventory::<FileSystemDetails>(
                        Some(&region),
                        (fs.id.clone(), fs.mount_targets),
                    )
                    .await?;
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
            std::any::TypeId::of::<FileSystemDetails>(),
            region.clone(),
            format!("{owned:?}"),
        );
        let recheck_region = region.clone();
        let recheck: Recheck = Arc::new(move |d: Discovery| {
            let region = recheck_region.clone();
            let owned = owned.clone();
            Box::pin(async move {
                let lookup = d
                    .find_file_system_for(Some(&region), owned.query(), owned.owner.as_deref())
                    .await?;
                Ok(fingerprint(&lookup))
            })
        });
        self.remember(
            key,
            fingerprint(lookup),
            recheck,
            refresh_of::<EfsInventory>(region),
        );
    }
}

/// A [`FileSystemQuery`] and owner that a later recheck can ask again.
#[derive(Clone, Debug)]
struct OwnedQuery {
    selector: Option<Tags>,
    file_system_id: Option<String>,
    access_point_id: Option<String>,
    owner: Option<String>,
}

impl OwnedQuery {
    fn of(query: &FileSystemQuery<'_>, owner: Option<&str>) -> OwnedQuery {
        let (selector, file_system_id) = match *query {
            FileSystemQuery::Tags { selector, .. } => (Some(selector.clone()), None),
            FileSystemQuery::Id { file_system_id, .. } => (None, Some(file_system_id.to_string())),
        };
        OwnedQuery {
            selector,
            file_system_id,
            access_point_id: query.access_point_id().map(str::to_string),
            owner: owner.map(str::to_string),
        }
    }

    fn query(&self) -> FileSystemQuery<'_> {
        let access_point_id = self.access_point_id.as_deref();
        match (&self.selector, &self.file_system_id) {
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

/// Refreshes for which settled mount targets and access points are served from the cache.
const SETTLED_REFRESHES: u32 = 10;

/// Cached by file system id and its number of mount targets.
impl Inventory for FileSystemDetails {
    type Client = aws_sdk_efs::Client;
    type Key = (String, i32);
    const OPERATION: &'static str = DESCRIBE_MOUNT_TARGETS;

    async fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        (file_system_id, _): &(String, i32),
    ) -> Result<Self, AwsError> {
        fetch_details(aws.client, aws.metrics, file_system_id).await
    }

    /// Two calls per file system, so settled details are kept for [`SETTLED_REFRESHES`]
    /// refreshes: a new or deleted mount target changes the key (the file system's
    /// NumberOfMountTargets, from the region-wide listing) and is read at once, an access
    /// point the operator creates drops this cache, and mount targets still being created
    /// are read at every refresh.
    fn refresh_factor(&self) -> u32 {
        if self.pending_mount_targets > 0 || self.mount_target_zones.is_empty() {
            1
        } else {
            SETTLED_REFRESHES
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
    /// NumberOfMountTargets: a change re-reads the mount targets at once.
    pub mount_targets: i32,
    pub tags: Tags,
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
    pub tags: Tags,
}

fn tag_map(tags: &[Tag]) -> Tags {
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
    let zones: BTreeSet<String> = mount_targets
        .iter()
        .filter(|mt| is_available(mt.life_cycle_state()))
        .filter_map(|mt| mt.availability_zone_name().map(str::to_string))
        .collect();
    let pending_mount_targets = mount_targets
        .iter()
        .filter(|mt| !is_available(mt.life_cycle_state()))
        .count();
    FileSystemDetails {
        mount_target_zones: zones.into_iter().collect(),
        pending_mount_targets,
        access_points: access_points
            .iter()
            .filter_map(access_point_entry)
            .collect(),
    }
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

    fn tags(&self) -> &Tags {
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

    fn tags(&self) -> &Tags {
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
    ap.tags.get(OWNER_TAG).map(String::as_str)
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
    let listed: Vec<FileSystemDescription> = all_pages!(
        metrics,
        DESCRIBE_FILE_SYSTEMS,
        client
            .describe_file_systems()
            .max_items(page_size.min(EFS_MAX_PAGE)),
        file_systems
    )?;
    let file_systems: Vec<FileSystemEntry> = listed.iter().filter_map(file_system_entry).collect();
    tracing::debug!(file_systems = file_systems.len(), "refreshed EFS inventory");
    Ok(EfsInventory { file_systems })
}

/// Mount targets and access points of one file system.
pub async fn fetch_details(
    client: &aws_sdk_efs::Client,
    metrics: &Metrics,
    file_system_id: &str,
) -> Result<FileSystemDetails, AwsError> {
    let mount_targets = list_mount_targets(client, metrics, file_system_id).await?;
    let access_points = list_access_points(client, metrics, file_system_id).await?;
    let details = file_system_details(&mount_targets, &access_points);
    tracing::debug!(
        file_system_id,
        zones = ?details.mount_target_zones,
        access_points = details.access_points.len(),
        "refreshed EFS mount targets and access points"
    );
    Ok(details)
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

async fn list_access_points(
    client: &aws_sdk_efs::Client,
    metrics: &Metrics,
    file_system_id: &str,
) -> Result<Vec<AccessPointDescription>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_ACCESS_POINTS,
        client
            .describe_access_points()
            .file_system_id(file_system_id)
            .max_results(EFS_MAX_PAGE),
        access_points
    )
}

#[cfg(test)]
mod tests;
