//! RDS snapshots before a minor or major Grafana upgrade: created once (idempotent by
//! name) and read back until available. The only RDS writes the operator makes, behind
//! `spec.upgrade.snapshot`.

use aws_sdk_rds::types::Tag;

use crate::aws::error::{AwsError, AwsErrorKind};
use crate::aws::{Discovery, observe};
use crate::facts::SnapshotRead;

use super::rds::SERVICE;

const CREATE_DB_SNAPSHOT: &str = "CreateDBSnapshot";
const CREATE_DB_CLUSTER_SNAPSHOT: &str = "CreateDBClusterSnapshot";
const DESCRIBE_DB_SNAPSHOTS: &str = "DescribeDBSnapshots";
const DESCRIBE_DB_CLUSTER_SNAPSHOTS: &str = "DescribeDBClusterSnapshots";

/// What an RDS ARN names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotSource {
    Instance(String),
    Cluster(String),
}

impl SnapshotSource {
    /// `arn:aws:rds:<region>:<account>:db:<id>` or `...:cluster:<id>`.
    pub fn of_arn(arn: &str) -> Option<SnapshotSource> {
        let mut parts = arn.rsplitn(3, ':');
        let id = parts.next()?.to_string();
        match parts.next()? {
            "db" => Some(SnapshotSource::Instance(id)),
            "cluster" => Some(SnapshotSource::Cluster(id)),
            _ => None,
        }
    }
}

fn not_found(err: &AwsError) -> bool {
    matches!(err.kind(), AwsErrorKind::Client { code, .. } if code.ends_with("NotFoundFault") || code.ends_with("NotFound"))
}

fn already_exists(err: &AwsError) -> bool {
    matches!(err.kind(), AwsErrorKind::Client { code, .. } if code.contains("AlreadyExists"))
}

/// The state RDS reports for a snapshot.
fn read_state(status: Option<&str>, arn: Option<&str>) -> SnapshotRead {
    match status {
        Some("available") => SnapshotRead::Available {
            arn: arn.unwrap_or_default().to_string(),
        },
        Some(s @ ("failed" | "error" | "incompatible-restore" | "deleted")) => {
            SnapshotRead::Failed(format!("RDS reports the snapshot {s}"))
        }
        _ => SnapshotRead::Creating,
    }
}

impl Discovery {
    /// Creates snapshot `id` of the database `database_arn` names, tagged as the operator's;
    /// a snapshot of that name already there counts as created.
    pub async fn create_snapshot(
        &self,
        region: Option<&str>,
        database_arn: &str,
        id: &str,
    ) -> Result<(), AwsError> {
        let source = SnapshotSource::of_arn(database_arn).ok_or_else(|| {
            AwsError::malformed(
                SERVICE,
                CREATE_DB_SNAPSHOT,
                format!("not an RDS ARN: {database_arn}"),
            )
        })?;
        let tag = Tag::builder()
            .key("grafana-ha.io/purpose")
            .value("pre-upgrade")
            .build();
        let (_, client) = self.client::<aws_sdk_rds::Client>(region, CREATE_DB_SNAPSHOT)?;
        let metrics = &self.inner.metrics;
        let result = match &source {
            SnapshotSource::Instance(db) => observe(
                metrics,
                SERVICE,
                CREATE_DB_SNAPSHOT,
                client
                    .create_db_snapshot()
                    .db_instance_identifier(db)
                    .db_snapshot_identifier(id)
                    .tags(tag)
                    .send()
                    .await,
            )
            .map(drop),
            SnapshotSource::Cluster(cluster) => observe(
                metrics,
                SERVICE,
                CREATE_DB_CLUSTER_SNAPSHOT,
                client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(cluster)
                    .db_cluster_snapshot_identifier(id)
                    .tags(tag)
                    .send()
                    .await,
            )
            .map(drop),
        };
        match result {
            Err(e) if already_exists(&e) => Ok(()),
            other => other,
        }
    }

    /// How snapshot `id` of the database `database_arn` names is doing.
    pub async fn snapshot_state(
        &self,
        region: Option<&str>,
        database_arn: &str,
        id: &str,
    ) -> Result<SnapshotRead, AwsError> {
        let Some(source) = SnapshotSource::of_arn(database_arn) else {
            return Ok(SnapshotRead::Failed(format!(
                "{database_arn} is not an RDS database ARN"
            )));
        };
        let (_, client) = self.client::<aws_sdk_rds::Client>(region, DESCRIBE_DB_SNAPSHOTS)?;
        let metrics = &self.inner.metrics;
        let read = match source {
            SnapshotSource::Instance(_) => observe(
                metrics,
                SERVICE,
                DESCRIBE_DB_SNAPSHOTS,
                client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(id)
                    .send()
                    .await,
            )
            .map(|out| {
                out.db_snapshots()
                    .first()
                    .map(|s| read_state(s.status(), s.db_snapshot_arn()))
                    .unwrap_or(SnapshotRead::Missing)
            }),
            SnapshotSource::Cluster(_) => observe(
                metrics,
                SERVICE,
                DESCRIBE_DB_CLUSTER_SNAPSHOTS,
                client
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(id)
                    .send()
                    .await,
            )
            .map(|out| {
                out.db_cluster_snapshots()
                    .first()
                    .map(|s| read_state(s.status(), s.db_cluster_snapshot_arn()))
                    .unwrap_or(SnapshotRead::Missing)
            }),
        };
        match read {
            Err(e) if not_found(&e) => Ok(SnapshotRead::Missing),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_from_arns() {
        assert_eq!(
            SnapshotSource::of_arn("arn:aws:rds:us-east-1:123:db:grafana-db"),
            Some(SnapshotSource::Instance("grafana-db".into()))
        );
        assert_eq!(
            SnapshotSource::of_arn("arn:aws:rds:us-east-1:123:cluster:aurora-1"),
            Some(SnapshotSource::Cluster("aurora-1".into()))
        );
        assert_eq!(SnapshotSource::of_arn("fs-123"), None);
    }

    #[test]
    fn states_from_rds() {
        assert_eq!(read_state(Some("creating"), None), SnapshotRead::Creating);
        assert_eq!(
            read_state(Some("available"), Some("arn:s")),
            SnapshotRead::Available {
                arn: "arn:s".into()
            }
        );
        assert!(matches!(
            read_state(Some("failed"), None),
            SnapshotRead::Failed(_)
        ));
    }
}
