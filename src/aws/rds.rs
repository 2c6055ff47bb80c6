//! RDS: finding the SQL database by tag.
//!
//! No RDS describe call filters by tag, so discovery lists every DB instance and DB cluster of
//! the region (both carry their `TagList` inline), keeps the SQL engines Grafana can use, and
//! selects by selector in [`select_database`], a pure function over that inventory.

use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};

use crate::api::DatabaseEngine;
use crate::aws::Discovery;
use crate::aws::all_pages;
use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::aws::inventory::{FetchContext, Inventory, TagLookup};
use crate::aws::select::{Candidate, select_by_tags};
use crate::facts::{DatabaseFacts, DatabaseKind, Lookup, ResourceTags, Tags};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "rds";
const DESCRIBE_DB_INSTANCES: &str = "DescribeDBInstances";
const DESCRIBE_DB_CLUSTERS: &str = "DescribeDBClusters";

/// States in which a database has an endpoint that will not accept connections (or soon
/// will not): report them as not ready rather than hand Grafana a dead endpoint.
const UNUSABLE_STATES: &[&str] = &[
    "deleting",
    "failed",
    "stopped",
    "stopping",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
];

service_client!(aws_sdk_rds, SERVICE);

impl Discovery {
    /// The one RDS database (instance or cluster) carrying every selector tag.
    pub async fn find_database(
        &self,
        region: Option<&str>,
        selector: &Tags,
    ) -> Result<Lookup<DatabaseFacts>, AwsError> {
        self.lookup::<RdsInventory>(region, selector).await
    }
}

impl Inventory for RdsInventory {
    type Client = aws_sdk_rds::Client;
    type Key = ();
    const OPERATION: &'static str = DESCRIBE_DB_INSTANCES;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        fetch_inventory(aws.client, aws.metrics, aws.page_size).await
    }
}

impl TagLookup for RdsInventory {
    type Facts = DatabaseFacts;
    const WHAT: &'static str = "database";

    fn select(&self, selector: &Tags) -> Lookup<DatabaseFacts> {
        select_database(self, selector)
    }
}

/// Every SQL database of a region, as discovery saw it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RdsInventory {
    pub instances: Vec<DatabaseEntry>,
    pub clusters: Vec<DatabaseEntry>,
    /// Instances and clusters of other engines (Neptune, DocumentDB, Oracle, SQL Server):
    /// never candidates, but named when the selector matches nothing else, so that whoever
    /// tagged one learns why it is not used.
    pub other_engines: Vec<OtherEngine>,
}

/// An RDS resource whose engine Grafana cannot use.
#[derive(Clone, Debug, PartialEq)]
pub struct OtherEngine {
    pub arn: String,
    pub rds_engine: String,
    pub tags: ResourceTags,
}

fn other_engine(arn: Option<&str>, rds_engine: Option<&str>, tags: &[Tag]) -> Option<OtherEngine> {
    let rds_engine = rds_engine?;
    sql_engine(rds_engine).is_none().then(|| OtherEngine {
        arn: arn.unwrap_or_default().to_string(),
        rds_engine: rds_engine.to_string(),
        tags: tag_map(tags),
    })
}

/// One DB instance or DB cluster, in plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseEntry {
    pub kind: DatabaseKind,
    pub arn: String,
    pub identifier: String,
    pub rds_engine: String,
    pub engine: DatabaseEngine,
    /// DBInstanceStatus / Status.
    pub status: Option<String>,
    /// Writer endpoint; absent while the database is being created.
    pub endpoint: Option<(String, i32)>,
    pub db_name: Option<String>,
    pub master_username: Option<String>,
    pub managed_secret_arn: Option<String>,
    /// For an instance that is a member of a cluster (Aurora, Multi-AZ DB cluster): the
    /// cluster, whose writer endpoint must be used instead of the member's own.
    pub cluster_identifier: Option<String>,
    /// DBInstanceClass; for a cluster, its writer's.
    pub instance_class: Option<String>,
    /// The zone of a single-AZ instance.
    pub single_zone: Option<String>,
    pub tags: ResourceTags,
}

/// The engines Grafana can use, by RDS engine name. `DescribeDBInstances` also returns
/// Neptune, DocumentDB, Oracle and SQL Server: those are not candidates at all.
pub fn sql_engine(rds_engine: &str) -> Option<DatabaseEngine> {
    match rds_engine {
        "postgres" | "aurora-postgresql" => Some(DatabaseEngine::Postgres),
        // "aurora" is the engine name of Aurora MySQL 5.6-compatible clusters.
        "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Some(DatabaseEngine::Mysql),
        _ => None,
    }
}

fn default_port(engine: DatabaseEngine) -> i32 {
    match engine {
        DatabaseEngine::Postgres => 5432,
        DatabaseEngine::Mysql => 3306,
    }
}

fn tag_map(tags: &[Tag]) -> ResourceTags {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

/// Converts a DB instance; None when it is not a SQL database Grafana can use, or lacks an
/// ARN or identifier.
pub fn instance_entry(db: &DbInstance) -> Option<DatabaseEntry> {
    let rds_engine = db.engine()?;
    let engine = sql_engine(rds_engine)?;
    let endpoint = db.endpoint().and_then(|e| {
        let host = non_empty(e.address())?;
        Some((host, e.port().unwrap_or_else(|| default_port(engine))))
    });
    Some(DatabaseEntry {
        kind: DatabaseKind::Instance,
        arn: db.db_instance_arn()?.to_string(),
        identifier: db.db_instance_identifier()?.to_string(),
        rds_engine: rds_engine.to_string(),
        engine,
        status: non_empty(db.db_instance_status()),
        endpoint,
        db_name: non_empty(db.db_name()),
        master_username: non_empty(db.master_username()),
        managed_secret_arn: db
            .master_user_secret()
            .and_then(|s| non_empty(s.secret_arn())),
        cluster_identifier: non_empty(db.db_cluster_identifier()),
        instance_class: non_empty(db.db_instance_class()),
        single_zone: if db.multi_az().unwrap_or(false) {
            None
        } else {
            non_empty(db.availability_zone())
        },
        tags: tag_map(db.tag_list()),
    })
}

/// Converts a DB cluster; None when it is not a SQL database Grafana can use, or lacks an
/// ARN or identifier.
pub fn cluster_entry(cluster: &DbCluster) -> Option<DatabaseEntry> {
    let rds_engine = cluster.engine()?;
    let engine = sql_engine(rds_engine)?;
    let endpoint = non_empty(cluster.endpoint())
        .map(|host| (host, cluster.port().unwrap_or_else(|| default_port(engine))));
    Some(DatabaseEntry {
        kind: DatabaseKind::Cluster,
        arn: cluster.db_cluster_arn()?.to_string(),
        identifier: cluster.db_cluster_identifier()?.to_string(),
        rds_engine: rds_engine.to_string(),
        engine,
        status: non_empty(cluster.status()),
        endpoint,
        db_name: non_empty(cluster.database_name()),
        master_username: non_empty(cluster.master_username()),
        managed_secret_arn: cluster
            .master_user_secret()
            .and_then(|s| non_empty(s.secret_arn())),
        cluster_identifier: None,
        // Multi-AZ DB clusters name their class; Aurora's is its writer instance's.
        instance_class: non_empty(cluster.db_cluster_instance_class()),
        // A cluster's writer can fail over to another zone.
        single_zone: None,
        tags: tag_map(cluster.tag_list()),
    })
}

/// What the inventory takes of one listed DB instance, reduced as its page arrives.
pub struct ListedInstance {
    entry: Option<DatabaseEntry>,
    other_engine: Option<OtherEngine>,
}

fn listed_instance(db: &DbInstance) -> ListedInstance {
    ListedInstance {
        entry: instance_entry(db),
        other_engine: other_engine(db.db_instance_arn(), db.engine(), db.tag_list()),
    }
}

/// Builds the inventory from what the describe calls returned.
pub fn inventory(instances: &[DbInstance], clusters: &[DbCluster]) -> RdsInventory {
    inventory_of(instances.iter().map(listed_instance).collect(), clusters)
}

fn inventory_of(instances: Vec<ListedInstance>, clusters: &[DbCluster]) -> RdsInventory {
    let mut instance_entries = Vec::with_capacity(instances.len());
    let mut other_engines = Vec::new();
    for listed in instances {
        instance_entries.extend(listed.entry);
        other_engines.extend(listed.other_engine);
    }
    let other_engines = other_engines
        .into_iter()
        .chain(
            clusters
                .iter()
                .filter_map(|c| other_engine(c.db_cluster_arn(), c.engine(), c.tag_list())),
        )
        .collect();
    let clusters = clusters
        .iter()
        .filter_map(|c| {
            let mut entry = cluster_entry(c)?;
            entry.instance_class = entry
                .instance_class
                .take()
                .or_else(|| writer_class(c, &instance_entries));
            Some(entry)
        })
        .collect();
    RdsInventory {
        instances: instance_entries,
        clusters,
        other_engines,
    }
}

/// The instance class of a cluster's writer, from the listed instances.
fn writer_class(cluster: &DbCluster, instances: &[DatabaseEntry]) -> Option<String> {
    let writer = cluster
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer().unwrap_or(false))?
        .db_instance_identifier()?;
    instances
        .iter()
        .find(|i| i.identifier == writer)?
        .instance_class
        .clone()
}

/// An RDS resource as the selection sees it: its own tags, but counted as what Grafana would
/// connect to. A cluster member stands for its cluster (Grafana must write through the writer
/// endpoint), so a cluster and its members matching together count once.
struct Selectable<'a> {
    tags: &'a ResourceTags,
    target: Target<'a>,
}

enum Target<'a> {
    Database(&'a DatabaseEntry),
    /// A cluster member whose cluster was not listed (created or deleted between the two
    /// describe calls): wait for the next refresh.
    MissingCluster {
        cluster_arn: String,
        cluster_identifier: &'a str,
    },
}

impl Candidate for Selectable<'_> {
    type Facts = DatabaseFacts;

    fn arn(&self) -> &str {
        match &self.target {
            Target::Database(entry) => &entry.arn,
            Target::MissingCluster { cluster_arn, .. } => cluster_arn,
        }
    }

    fn tags(&self) -> &ResourceTags {
        self.tags
    }

    fn resolve(self) -> Lookup<DatabaseFacts> {
        match self.target {
            Target::Database(entry) => database_facts(entry),
            Target::MissingCluster {
                cluster_arn,
                cluster_identifier,
            } => Lookup::NotReady {
                arn: cluster_arn,
                state: format!(
                    "member of DB cluster {cluster_identifier}, which is not listed yet"
                ),
            },
        }
    }
}

/// What an instance counts as: itself, or the cluster it is a member of.
fn target_of<'a>(inventory: &'a RdsInventory, instance: &'a DatabaseEntry) -> Target<'a> {
    let Some(cluster_id) = instance.cluster_identifier.as_deref() else {
        return Target::Database(instance);
    };
    match inventory
        .clusters
        .iter()
        .find(|c| c.identifier == cluster_id)
    {
        Some(cluster) => Target::Database(cluster),
        None => Target::MissingCluster {
            cluster_arn: cluster_arn_for_member(&instance.arn, cluster_id),
            cluster_identifier: cluster_id,
        },
    }
}

/// The ARN a cluster member's cluster has: the member's ARN with `db:<member>` replaced by
/// `cluster:<cluster>`. Falls back to the member's ARN when it does not look like one.
fn cluster_arn_for_member(member_arn: &str, cluster_identifier: &str) -> String {
    match member_arn.rsplit_once(":db:") {
        Some((prefix, _)) => format!("{prefix}:cluster:{cluster_identifier}"),
        None => member_arn.to_string(),
    }
}

/// Selects the one database carrying every selector tag; several distinct databases are
/// ambiguous: never guess.
pub fn select_database(inventory: &RdsInventory, selector: &Tags) -> Lookup<DatabaseFacts> {
    let instances = inventory.instances.iter().map(|instance| Selectable {
        tags: &instance.tags,
        target: target_of(inventory, instance),
    });
    let clusters = inventory.clusters.iter().map(|cluster| Selectable {
        tags: &cluster.tags,
        target: Target::Database(cluster),
    });
    let lookup = select_by_tags(instances.chain(clusters), selector);
    if let Lookup::NotFound { .. } = lookup
        && !selector.is_empty()
        && let Some(other) = inventory
            .other_engines
            .iter()
            .filter(|o| crate::facts::tags_match(selector, &o.tags))
            .min_by(|a, b| a.arn.cmp(&b.arn))
    {
        return Lookup::Unsupported {
            arn: other.arn.clone(),
            reason: format!(
                "runs {}, which Grafana cannot use as its database: use PostgreSQL, MySQL, MariaDB or Aurora",
                other.rds_engine
            ),
        };
    }
    lookup
}

/// The facts of one selected database, or why it cannot be used yet.
pub fn database_facts(entry: &DatabaseEntry) -> Lookup<DatabaseFacts> {
    let status = entry.status.as_deref();
    if let Some(state) = status.filter(|s| UNUSABLE_STATES.contains(s)) {
        return Lookup::NotReady {
            arn: entry.arn.clone(),
            state: state.to_string(),
        };
    }
    let Some((host, port)) = entry.endpoint.clone() else {
        return Lookup::NotReady {
            arn: entry.arn.clone(),
            state: status.unwrap_or("creating").to_string(),
        };
    };
    Lookup::Found(DatabaseFacts {
        arn: entry.arn.clone(),
        identifier: entry.identifier.clone(),
        kind: entry.kind,
        rds_engine: entry.rds_engine.clone(),
        engine: entry.engine,
        host,
        port,
        db_name: entry.db_name.clone(),
        master_username: entry.master_username.clone(),
        managed_secret_arn: entry.managed_secret_arn.clone(),
        instance_class: entry.instance_class.clone(),
        single_zone: entry.single_zone.clone(),
    })
}

/// Lists every DB instance and DB cluster of the client's region, `page_size` per call.
pub async fn fetch_inventory(
    client: &aws_sdk_rds::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<RdsInventory, AwsError> {
    let instances = list_db_instances(client, metrics, page_size).await?;
    let clusters = list_db_clusters(client, metrics, page_size).await?;
    let listed_instances = instances.len();
    let inventory = inventory_of(instances, &clusters);
    tracing::debug!(
        listed_instances,
        listed_clusters = clusters.len(),
        sql_instances = inventory.instances.len(),
        sql_clusters = inventory.clusters.len(),
        "refreshed RDS inventory"
    );
    Ok(inventory)
}

async fn list_db_instances(
    client: &aws_sdk_rds::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<Vec<ListedInstance>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_DB_INSTANCES,
        client.describe_db_instances().max_records(page_size),
        db_instances,
        listed_instance
    )
}

async fn list_db_clusters(
    client: &aws_sdk_rds::Client,
    metrics: &Metrics,
    page_size: i32,
) -> Result<Vec<DbCluster>, AwsError> {
    all_pages!(
        metrics,
        DESCRIBE_DB_CLUSTERS,
        client.describe_db_clusters().max_records(page_size),
        db_clusters
    )
}

#[cfg(test)]
mod tests;
