//! Secrets Manager: the master user credentials RDS manages.
//!
//! RDS keeps them as a JSON SecretString `{"username": ..., "password": ...}` and rotates the
//! password (every 7 days by default). Reading every cluster's secret every refresh interval
//! would cost one `GetSecretValue` per cluster per interval; instead one paged `ListSecrets`
//! per region and interval (filtered to the secrets RDS owns) tells which version of each
//! secret is `AWSCURRENT`, and a value is read again only when that version moved. The
//! listing is also what the change watch rechecks (`interest.rs`), so a rotation reaches
//! the cluster within one refresh at the cost of one `GetSecretValue`.
//!
//! The password only ever travels inside a [`SecretValue`]: no log line, error message or
//! Debug output contains it. The listing carries no value at all.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use serde::Deserialize;

use crate::aws::clients::service_client;
use crate::aws::error::{AwsError, AwsErrorKind};
use crate::aws::interest::{Recheck, fingerprint};
use crate::aws::inventory::{FetchContext, Inventory};
use crate::aws::{Discovery, all_pages, observe, refresh_of};
use crate::facts::{ManagedCredentials, SecretValue};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "secretsmanager";
const GET_SECRET_VALUE: &str = "GetSecretValue";
const LIST_SECRETS: &str = "ListSecrets";

/// ListSecrets returns at most 100 secrets per page.
const LIST_MAX_PAGE: i32 = 100;

/// The staging label of the version a GetSecretValue without VersionId returns.
const CURRENT_STAGE: &str = "AWSCURRENT";

/// Refresh intervals between attempts at ListSecrets once it was refused (an IAM policy
/// without `secretsmanager:ListSecrets`): values are then re-read every interval, as
/// before the listing existed, and the refusal is not repeated on every lookup.
const DENIED_REFRESHES: u32 = 10;

service_client!(aws_sdk_secretsmanager, SERVICE);

impl Discovery {
    /// The master user credentials RDS keeps in Secrets Manager under `secret_arn`. The value
    /// is read once per version: the region's listing (refreshed every `refresh_interval`)
    /// says when the `AWSCURRENT` version changed, so a rotated password is picked up within
    /// one interval. Where the listing cannot say (ListSecrets refused, or the secret not
    /// listed yet) the value is re-read every interval. The secret is read in the region its
    /// ARN names; `region` is used only when the ARN has none.
    pub async fn managed_credentials(
        &self,
        region: Option<&str>,
        secret_arn: &str,
    ) -> Result<ManagedCredentials, AwsError> {
        let region = region_of_arn(secret_arn).or(region);
        let listed = match self.inventory::<SecretVersions>(region, ()).await {
            Ok((region, versions)) => {
                let listed = versions.listed(secret_arn);
                if self.owner.is_some() {
                    self.remember_secret(region, secret_arn, &listed);
                }
                listed
            }
            Err(e) => {
                // The value's own read decides: it fails too during an outage, else it is
                // served as before the listing existed.
                tracing::debug!(error = %e, "listing the RDS-managed secrets failed");
                Listed::Unknown
            }
        };
        let (_, stored) = self
            .inventory_by::<StoredCredentials, _>(
                region,
                secret_arn.to_string(),
                |cached, interval| value_ttl(cached.version_id.as_deref(), &listed, interval),
            )
            .await?;
        Ok(stored.credentials.clone())
    }

    /// Remembers which version of a secret this discovery's owner was given, so a rotation
    /// seen by the next listing triggers its reconcile (see `interest.rs`).
    fn remember_secret(&self, region: String, secret_arn: &str, listed: &Listed) {
        let key = (
            std::any::TypeId::of::<SecretVersions>(),
            region.clone(),
            secret_arn.to_string(),
        );
        let recheck_region = region.clone();
        let arn = secret_arn.to_string();
        let recheck: Recheck = Arc::new(move |d: Discovery| {
            let region = recheck_region.clone();
            let arn = arn.clone();
            Box::pin(async move {
                let (_, versions) = d.inventory::<SecretVersions>(Some(&region), ()).await?;
                Ok(fingerprint(&versions.listed(&arn)))
            })
        });
        self.remember(
            key,
            fingerprint(listed),
            recheck,
            refresh_of::<SecretVersions>(region),
        );
    }
}

/// The `AWSCURRENT` version of every RDS-owned secret of a region, from ListSecrets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecretVersions {
    /// Version id by secret ARN; None when ListSecrets was refused.
    current: Option<HashMap<String, String>>,
}

/// What the listing says about one secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// Its `AWSCURRENT` version id.
    Version(String),
    /// Not in the listing (created after it, being deleted, or not owned by RDS).
    Missing,
    /// No listing: ListSecrets was refused or failed.
    Unknown,
}

impl SecretVersions {
    /// A listing from ListSecrets' entries.
    pub fn from_entries(entries: &[SecretListEntry]) -> SecretVersions {
        SecretVersions {
            current: Some(current_versions(entries)),
        }
    }

    /// The listing when ListSecrets is refused.
    pub fn refused() -> SecretVersions {
        SecretVersions { current: None }
    }

    /// What the listing says about `secret_arn`.
    pub fn listed(&self, secret_arn: &str) -> Listed {
        match &self.current {
            None => Listed::Unknown,
            Some(versions) => versions
                .get(secret_arn)
                .map_or(Listed::Missing, |v| Listed::Version(v.clone())),
        }
    }
}

/// The `AWSCURRENT` version id of each listed secret (by ARN). Secrets without an ARN or
/// without a current version (never true for a secret RDS manages) are left out.
pub fn current_versions(entries: &[SecretListEntry]) -> HashMap<String, String> {
    entries
        .iter()
        .filter_map(|entry| {
            let arn = entry.arn()?;
            let version = entry
                .secret_versions_to_stages()?
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == CURRENT_STAGE))
                .map(|(version, _)| version)?;
            Some((arn.to_string(), version.clone()))
        })
        .collect()
}

/// How long a value read at version `cached` may be served: for ever while the listing
/// names the same current version, not at all once it names another, and one refresh
/// interval when the listing cannot tell (no listing, or the secret not in it).
pub fn value_ttl(cached: Option<&str>, listed: &Listed, interval: Duration) -> Duration {
    match listed {
        Listed::Version(current) if cached == Some(current.as_str()) => Duration::MAX,
        Listed::Version(_) => Duration::ZERO,
        Listed::Missing | Listed::Unknown => interval,
    }
}

/// One listing per region, every refresh interval.
impl Inventory for SecretVersions {
    type Client = aws_sdk_secretsmanager::Client;
    type Key = ();
    const OPERATION: &'static str = LIST_SECRETS;

    async fn fetch(aws: &FetchContext<'_, Self::Client>, _: &()) -> Result<Self, AwsError> {
        match list_rds_secrets(aws.client, aws.metrics).await {
            Ok(entries) => {
                let versions = SecretVersions::from_entries(&entries);
                tracing::debug!(
                    secrets = versions.current.as_ref().map_or(0, HashMap::len),
                    "refreshed the RDS-managed secrets' versions"
                );
                Ok(versions)
            }
            Err(e) if matches!(e.kind(), AwsErrorKind::AccessDenied { .. }) => {
                tracing::warn!(
                    error = %e,
                    "ListSecrets is refused: RDS-managed secrets are re-read every refresh \
                     interval; allow secretsmanager:ListSecrets (resource \"*\") to read them \
                     only when they rotate"
                );
                Ok(SecretVersions::refused())
            }
            Err(e) => Err(e),
        }
    }

    fn refresh_factor(&self) -> u32 {
        if self.current.is_some() {
            1
        } else {
            DENIED_REFRESHES
        }
    }
}

/// A secret's value and the version it was read at. Cached by secret ARN.
#[derive(Clone, Debug)]
pub struct StoredCredentials {
    version_id: Option<String>,
    credentials: ManagedCredentials,
}

impl Inventory for StoredCredentials {
    type Client = aws_sdk_secretsmanager::Client;
    type Key = String;
    const OPERATION: &'static str = GET_SECRET_VALUE;

    async fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        secret_arn: &String,
    ) -> Result<Self, AwsError> {
        let (credentials, version_id) =
            fetch_versioned_credentials(aws.client, aws.metrics, secret_arn).await?;
        Ok(StoredCredentials {
            version_id,
            credentials,
        })
    }
}

/// Every secret RDS owns in the client's region, in pages.
async fn list_rds_secrets(
    client: &aws_sdk_secretsmanager::Client,
    metrics: &Metrics,
) -> Result<Vec<SecretListEntry>, AwsError> {
    let owned_by_rds = Filter::builder()
        .key(FilterNameStringType::OwningService)
        .values("rds")
        .build();
    all_pages!(
        metrics,
        LIST_SECRETS,
        client
            .list_secrets()
            .filters(owned_by_rds)
            .max_results(LIST_MAX_PAGE),
        secret_list
    )
}

/// The shape of an RDS-managed secret. Deliberately without Debug.
#[derive(Deserialize)]
struct RdsSecret {
    username: String,
    password: String,
}

/// Parses an RDS-managed secret. Errors describe what is wrong with the shape, never the
/// content: serde's own messages can quote the offending value, so they are not used.
pub fn parse_credentials(
    secret_arn: &str,
    secret_string: Option<&str>,
) -> Result<ManagedCredentials, AwsError> {
    let Some(text) = secret_string else {
        return Err(AwsError::malformed(
            SERVICE,
            GET_SECRET_VALUE,
            format!("secret {secret_arn} has no SecretString"),
        ));
    };
    let parsed: RdsSecret = serde_json::from_str(text).map_err(|e| {
        AwsError::malformed(
            SERVICE,
            GET_SECRET_VALUE,
            format!(
                "secret {secret_arn} is not a JSON object with string fields username and \
                 password ({:?} error)",
                e.classify()
            ),
        )
    })?;
    if parsed.username.is_empty() || parsed.password.is_empty() {
        return Err(AwsError::malformed(
            SERVICE,
            GET_SECRET_VALUE,
            format!("secret {secret_arn} has an empty username or password"),
        ));
    }
    Ok(ManagedCredentials {
        secret_arn: secret_arn.to_string(),
        username: parsed.username,
        password: SecretValue::new(parsed.password),
    })
}

/// The region in a secret's ARN (`arn:aws:secretsmanager:<region>:...`): the secret lives
/// there, whatever region the lookup was asked for.
pub fn region_of_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    if parts.next()? != "arn" {
        return None;
    }
    parts.nth(2).filter(|r| !r.is_empty())
}

/// Reads and parses one RDS-managed secret.
pub async fn fetch_credentials(
    client: &aws_sdk_secretsmanager::Client,
    metrics: &Metrics,
    secret_arn: &str,
) -> Result<ManagedCredentials, AwsError> {
    fetch_versioned_credentials(client, metrics, secret_arn)
        .await
        .map(|(credentials, _)| credentials)
}

/// Reads and parses one RDS-managed secret; also returns the version read.
async fn fetch_versioned_credentials(
    client: &aws_sdk_secretsmanager::Client,
    metrics: &Metrics,
    secret_arn: &str,
) -> Result<(ManagedCredentials, Option<String>), AwsError> {
    let result = client.get_secret_value().secret_id(secret_arn).send().await;
    let output = observe(metrics, SERVICE, GET_SECRET_VALUE, result)?;
    let credentials = parse_credentials(secret_arn, output.secret_string())?;
    tracing::debug!(secret_arn, version = ?output.version_id(), "read RDS-managed credentials");
    Ok((credentials, output.version_id().map(str::to_string)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc";

    #[test]
    fn parses_username_and_password() {
        let creds = parse_credentials(
            ARN,
            Some(r#"{"username":"admin","password":"P@55w0rd!","engine":"postgres"}"#),
        )
        .unwrap();
        assert_eq!(creds.secret_arn, ARN);
        assert_eq!(creds.username, "admin");
        assert_eq!(creds.password.expose(), "P@55w0rd!");
        assert!(!format!("{creds:?}").contains("P@55w0rd!"));
    }

    #[test]
    fn bad_json_is_malformed_and_never_quotes_the_secret() {
        let cases = [
            r#"{"username":"admin","password":"hunter2-secret""#,
            r#"{"username":"admin","password":97531864}"#,
            r#"{"username":"admin"}"#,
            "hunter2-secret",
            r#"["hunter2-secret"]"#,
        ];
        for text in cases {
            let err = parse_credentials(ARN, Some(text)).unwrap_err();
            assert_eq!(err.reason(), "AwsMalformedResponse");
            let message = err.to_string();
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains("97531864"), "{message}");
            assert!(!format!("{err:?}").contains("hunter2"));
            assert!(message.contains(ARN), "{message}");
        }
    }

    #[test]
    fn missing_secret_string_is_malformed() {
        let err = parse_credentials(ARN, None).unwrap_err();
        assert_eq!(err.reason(), "AwsMalformedResponse");
        assert!(err.to_string().contains("no SecretString"));
    }

    #[test]
    fn empty_password_is_malformed() {
        let err =
            parse_credentials(ARN, Some(r#"{"username":"admin","password":""}"#)).unwrap_err();
        assert_eq!(err.reason(), "AwsMalformedResponse");
    }

    #[test]
    fn region_comes_from_the_arn() {
        assert_eq!(region_of_arn(ARN), Some("eu-west-1"));
        assert_eq!(region_of_arn("arn:aws:secretsmanager::123:secret:x"), None);
        assert_eq!(region_of_arn("rds!db-abc"), None);
    }

    fn entry(arn: &str, versions: &[(&str, &[&str])]) -> SecretListEntry {
        let stages = versions
            .iter()
            .map(|(v, st)| (v.to_string(), st.iter().map(|s| s.to_string()).collect()))
            .collect();
        SecretListEntry::builder()
            .arn(arn)
            .set_secret_versions_to_stages(Some(stages))
            .build()
    }

    #[test]
    fn the_current_version_is_the_one_staged_awscurrent() {
        let other = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-other";
        let entries = [
            entry(
                ARN,
                &[
                    ("v1", &[]),
                    ("v2", &["AWSPREVIOUS"]),
                    ("v3", &["AWSCURRENT", "custom"]),
                ],
            ),
            // Mid-rotation: AWSPENDING is not what GetSecretValue returns.
            entry(other, &[("a", &["AWSCURRENT"]), ("b", &["AWSPENDING"])]),
            entry("arn:no-current", &[("x", &["AWSPENDING"])]),
            SecretListEntry::builder().name("no-arn").build(),
        ];
        let listing = SecretVersions::from_entries(&entries);
        assert_eq!(listing.listed(ARN), Listed::Version("v3".into()));
        assert_eq!(listing.listed(other), Listed::Version("a".into()));
        assert_eq!(listing.listed("arn:no-current"), Listed::Missing);
        assert_eq!(listing.listed("arn:never-listed"), Listed::Missing);
        assert_eq!(SecretVersions::refused().listed(ARN), Listed::Unknown);
    }

    #[test]
    fn a_value_is_kept_until_the_listing_names_another_version() {
        let interval = Duration::from_secs(60);
        let v1 = Listed::Version("v1".into());
        let v2 = Listed::Version("v2".into());
        assert_eq!(value_ttl(Some("v1"), &v1, interval), Duration::MAX);
        // Rotated: read again at once, and only once (the new value carries v2).
        assert_eq!(value_ttl(Some("v1"), &v2, interval), Duration::ZERO);
        assert_eq!(value_ttl(Some("v2"), &v2, interval), Duration::MAX);
        // GetSecretValue answered without a version: never trusted for ever.
        assert_eq!(value_ttl(None, &v1, interval), Duration::ZERO);
        // The listing cannot tell: re-read every interval, as without it.
        assert_eq!(value_ttl(Some("v1"), &Listed::Missing, interval), interval);
        assert_eq!(value_ttl(Some("v1"), &Listed::Unknown, interval), interval);
    }

    #[test]
    fn listing_fingerprints_move_only_with_the_current_version() {
        use crate::aws::interest::fingerprint;
        let before = SecretVersions::from_entries(&[entry(ARN, &[("v1", &["AWSCURRENT"])])]);
        let same = SecretVersions::from_entries(&[
            entry(ARN, &[("v1", &["AWSCURRENT"])]),
            entry("arn:another", &[("z", &["AWSCURRENT"])]),
        ]);
        let rotated = SecretVersions::from_entries(&[entry(
            ARN,
            &[("v1", &["AWSPREVIOUS"]), ("v2", &["AWSCURRENT"])],
        )]);
        let of = |l: &SecretVersions| fingerprint(&l.listed(ARN));
        assert_eq!(of(&before), of(&same));
        assert_ne!(of(&before), of(&rotated));
    }
}
