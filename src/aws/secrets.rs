//! Secrets Manager: the master user credentials RDS manages.
//!
//! RDS keeps them as a JSON SecretString `{"username": ..., "password": ...}` and rotates the
//! password (every 7 days by default), so the value is re-read every refresh interval. The
//! password only ever travels inside a [`SecretValue`]: no log line, error message or Debug
//! output contains it.

use serde::Deserialize;

use crate::aws::clients::service_client;
use crate::aws::error::AwsError;
use crate::aws::inventory::{FetchContext, Inventory};
use crate::aws::{Discovery, observe};
use crate::facts::{ManagedCredentials, SecretValue};
use crate::metrics::Metrics;

/// Metric label of the service.
pub const SERVICE: &str = "secretsmanager";
const GET_SECRET_VALUE: &str = "GetSecretValue";

service_client!(aws_sdk_secretsmanager, SERVICE);

impl Discovery {
    /// The master user credentials RDS keeps in Secrets Manager under `secret_arn`. Cached
    /// for `refresh_interval`, so a rotated password is picked up within one interval. The
    /// secret is read in the region its ARN names; `region` is used only when the ARN has
    /// none.
    pub async fn managed_credentials(
        &self,
        region: Option<&str>,
        secret_arn: &str,
    ) -> Result<ManagedCredentials, AwsError> {
        let region = region_of_arn(secret_arn).or(region);
        let (_, credentials) = self
            .inventory::<ManagedCredentials>(region, secret_arn.to_string())
            .await?;
        Ok(ManagedCredentials::clone(&credentials))
    }
}

/// Cached by secret ARN.
impl Inventory for ManagedCredentials {
    type Client = aws_sdk_secretsmanager::Client;
    type Key = String;
    const OPERATION: &'static str = GET_SECRET_VALUE;

    async fn fetch(
        aws: &FetchContext<'_, Self::Client>,
        secret_arn: &String,
    ) -> Result<Self, AwsError> {
        fetch_credentials(aws.client, aws.metrics, secret_arn).await
    }
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
    let result = client.get_secret_value().secret_id(secret_arn).send().await;
    let output = observe(metrics, SERVICE, GET_SECRET_VALUE, result)?;
    let credentials = parse_credentials(secret_arn, output.secret_string())?;
    tracing::debug!(secret_arn, version = ?output.version_id(), "read RDS-managed credentials");
    Ok(credentials)
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
}
