//! The operator's one EFS write: the access point a GrafanaCluster's plugins live behind,
//! created when `resolve` asks for it (see `crate::resolve::storage`). Never called by
//! `render`.

use aws_sdk_efs::types::{CreationInfo, PosixUser, RootDirectory, Tag};

use super::{FileSystemAccessPoints, SERVICE};
use crate::aws::error::{AwsError, AwsErrorKind};
use crate::aws::{Discovery, observe};
use crate::facts::AccessPointRequest;

/// Metric label and error name of the call.
pub const CREATE_ACCESS_POINT: &str = "CreateAccessPoint";

/// The request's parts in SDK types.
struct Parts {
    posix_user: PosixUser,
    root_directory: RootDirectory,
    tags: Vec<Tag>,
}

/// A builder refused a value: the request was malformed before it was sent.
fn refused(e: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        SERVICE,
        CREATE_ACCESS_POINT,
        AwsErrorKind::Client {
            code: "InvalidRequest".into(),
            message: e.to_string(),
        },
    )
}

fn parts(request: &AccessPointRequest) -> Result<Parts, AwsError> {
    let posix_user = PosixUser::builder()
        .uid(request.uid)
        .gid(request.gid)
        .build()
        .map_err(refused)?;
    // EFS creates the directory on first mount with this owner and mode, so Grafana's user
    // can write where the file system's root (root-owned, 755) would refuse it.
    let creation_info = CreationInfo::builder()
        .owner_uid(request.uid)
        .owner_gid(request.gid)
        .permissions(&request.permissions)
        .build()
        .map_err(refused)?;
    let root_directory = RootDirectory::builder()
        .path(&request.root_path)
        .creation_info(creation_info)
        .build();
    let tags = request
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(refused))
        .collect::<Result<_, _>>()?;
    Ok(Parts {
        posix_user,
        root_directory,
        tags,
    })
}

impl Discovery {
    /// Creates the access point `request` describes and returns its id. The client token
    /// makes a repeated request (a retry, another replica) return the first access point.
    /// The next lookups of that file system read its access points by its id (one call)
    /// until the region's listing has caught up, so the next round finds it; the listing
    /// itself is kept (dropping it at every creation would cost N listings for N clusters).
    pub async fn create_access_point(
        &self,
        request: &AccessPointRequest,
    ) -> Result<String, AwsError> {
        let (region, client) =
            self.client::<aws_sdk_efs::Client>(request.region.as_deref(), CREATE_ACCESS_POINT)?;
        let parts = parts(request)?;
        let sent = client
            .create_access_point()
            .client_token(&request.client_token)
            .file_system_id(&request.file_system_id)
            .posix_user(parts.posix_user)
            .root_directory(parts.root_directory)
            .set_tags(Some(parts.tags))
            .send()
            .await;
        let created = observe(&self.inner.metrics, SERVICE, CREATE_ACCESS_POINT, sent)?;
        self.inner
            .efs_created
            .record(&region, &request.file_system_id);
        self.inner
            .inventories
            .clear_kind::<FileSystemAccessPoints>();
        let id = created.access_point_id().ok_or_else(|| {
            AwsError::new(
                SERVICE,
                CREATE_ACCESS_POINT,
                AwsErrorKind::Malformed {
                    message: "CreateAccessPoint answered without an AccessPointId".into(),
                },
            )
        })?;
        tracing::info!(
            %region,
            file_system_id = %request.file_system_id,
            access_point_id = id,
            root = %request.root_path,
            "created EFS access point"
        );
        Ok(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AccessPointRequest {
        AccessPointRequest {
            region: None,
            file_system_id: "fs-12345678".into(),
            client_token: "token".into(),
            root_path: "/grafana/ns/name".into(),
            uid: 472,
            gid: 472,
            permissions: "0755".into(),
            tags: [("grafana-ha.io/owner".to_string(), "ns/name".to_string())].into(),
        }
    }

    #[test]
    fn the_request_becomes_posix_user_creation_info_and_tags() {
        let parts = parts(&request()).unwrap();
        assert_eq!((parts.posix_user.uid(), parts.posix_user.gid()), (472, 472));
        assert_eq!(parts.root_directory.path(), Some("/grafana/ns/name"));
        let info = parts.root_directory.creation_info().unwrap();
        assert_eq!((info.owner_uid(), info.owner_gid()), (472, 472));
        assert_eq!(info.permissions(), "0755");
        assert_eq!(parts.tags.len(), 1);
        assert_eq!(parts.tags[0].key(), "grafana-ha.io/owner");
        assert_eq!(parts.tags[0].value(), "ns/name");
    }
}
