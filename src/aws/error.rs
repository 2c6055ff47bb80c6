//! What can go wrong when talking to AWS, in categories the operator acts on.
//!
//! The SDK's `SdkError` is generic over every operation's error type and mixes "AWS said no"
//! with "we never reached AWS". The reconciler needs neither detail: it needs to know whether
//! to retry soon (throttling, 5xx, timeouts, network), whether a human must act (access
//! denied, a bad request), and a one-line message for a condition. [`AwsError`] is that.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::ProvideErrorMetadata;

use crate::metrics::AwsOutcome;

/// The SDK's error type. Every service crate aliases the same generic type from
/// `aws-smithy-runtime-api`; the RDS alias is used only to name it.
pub type SdkError<E> = aws_sdk_rds::error::SdkError<E, HttpResponse>;

/// Error codes AWS services use for throttling (query, JSON and REST protocols).
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Error codes that mean the caller's identity or permissions are the problem.
const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "NotAuthorized",
    "MissingAuthenticationToken",
];

/// Why an AWS call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// AWS kept throttling after the SDK's retries.
    Throttled { message: String },
    /// AWS answered with a 5xx (after retries).
    ServerError {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The operation (or every attempt) ran out of time.
    Timeout { message: String },
    /// AWS could not be reached (DNS, connect, TLS, connection reset).
    Transport { message: String },
    /// The operator's credentials were refused or lack a permission.
    AccessDenied { code: String, message: String },
    /// Any other error: a 4xx AWS error, or a request that could not be built or sent
    /// (no region, no credentials).
    Client { code: String, message: String },
    /// AWS answered, but with something discovery cannot use (e.g. a secret that is not the
    /// expected JSON). The message never contains a secret value.
    Malformed { message: String },
}

/// A failed AWS call: which service and operation, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} {kind}")]
pub struct AwsError {
    service: &'static str,
    operation: &'static str,
    kind: AwsErrorKind,
}

impl AwsError {
    pub fn new(service: &'static str, operation: &'static str, kind: AwsErrorKind) -> Self {
        AwsError {
            service,
            operation,
            kind,
        }
    }

    /// A response discovery cannot use.
    pub fn malformed(
        service: &'static str,
        operation: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::new(
            service,
            operation,
            AwsErrorKind::Malformed {
                message: message.into(),
            },
        )
    }

    /// Classifies an SDK error. Call it after the SDK's own retries: a throttling error here
    /// means AWS kept throttling through all attempts.
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: &SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        Self::new(service, operation, classify_sdk_error(err))
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn operation(&self) -> &'static str {
        self.operation
    }

    pub fn kind(&self) -> &AwsErrorKind {
        &self.kind
    }

    /// The metric label of this failure.
    pub fn outcome(&self) -> AwsOutcome {
        match self.kind {
            AwsErrorKind::Throttled { .. } => AwsOutcome::Throttled,
            AwsErrorKind::ServerError { .. } => AwsOutcome::ServerError,
            AwsErrorKind::Timeout { .. } => AwsOutcome::Timeout,
            AwsErrorKind::Transport { .. } => AwsOutcome::Transport,
            // A malformed answer is closest to a client-side problem: retrying the same call
            // returns the same thing.
            AwsErrorKind::AccessDenied { .. }
            | AwsErrorKind::Client { .. }
            | AwsErrorKind::Malformed { .. } => AwsOutcome::ClientError,
        }
    }

    /// The CamelCase reason for a status condition or an Event.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            AwsErrorKind::Throttled { .. } => "AwsThrottled",
            AwsErrorKind::ServerError { .. } | AwsErrorKind::Transport { .. } => "AwsUnavailable",
            AwsErrorKind::Timeout { .. } => "AwsTimeout",
            AwsErrorKind::AccessDenied { .. } => "AwsAccessDenied",
            AwsErrorKind::Client { .. } => "AwsError",
            AwsErrorKind::Malformed { .. } => "AwsMalformedResponse",
        }
    }

    /// True when the same call may well succeed shortly: requeue soon rather than wait for a
    /// human.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            AwsErrorKind::Throttled { .. }
                | AwsErrorKind::ServerError { .. }
                | AwsErrorKind::Timeout { .. }
                | AwsErrorKind::Transport { .. }
        )
    }
}

impl fmt::Display for AwsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AwsErrorKind::Throttled { message } => {
                f.write_str("throttled by AWS (after retries)")?;
                write_message(f, message)
            }
            AwsErrorKind::ServerError {
                status,
                code,
                message,
            } => {
                write!(f, "failed on the AWS side (HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                f.write_str(", after retries)")?;
                write_message(f, message)
            }
            AwsErrorKind::Timeout { message } => {
                f.write_str("timed out")?;
                write_message(f, message)
            }
            AwsErrorKind::Transport { message } => {
                f.write_str("could not reach AWS")?;
                write_message(f, message)
            }
            AwsErrorKind::AccessDenied { code, message } => {
                write!(
                    f,
                    "was denied ({code}); check the operator's IAM permissions"
                )?;
                write_message(f, message)
            }
            AwsErrorKind::Client { code, message } => {
                write!(f, "failed ({code})")?;
                write_message(f, message)
            }
            AwsErrorKind::Malformed { message } => {
                f.write_str("returned an unusable response")?;
                write_message(f, message)
            }
        }
    }
}

fn write_message(f: &mut fmt::Formatter<'_>, message: &str) -> fmt::Result {
    if message.is_empty() {
        Ok(())
    } else {
        write!(f, ": {message}")
    }
}

fn classify_sdk_error<E>(err: &SdkError<E>) -> AwsErrorKind
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    match err {
        aws_sdk_rds::error::SdkError::ServiceError(service_err) => classify_service_error(
            service_err.err().code(),
            service_err.err().message(),
            service_err.raw().status().as_u16(),
        ),
        aws_sdk_rds::error::SdkError::TimeoutError(_) => AwsErrorKind::Timeout {
            message: error_chain(err),
        },
        aws_sdk_rds::error::SdkError::DispatchFailure(dispatch) => {
            let message = error_chain(err);
            if dispatch.is_timeout() {
                AwsErrorKind::Timeout { message }
            } else if dispatch.is_io() {
                AwsErrorKind::Transport { message }
            } else {
                // "user" and "other" dispatch failures are raised before anything is sent:
                // no credentials, no region, an endpoint that cannot be resolved.
                AwsErrorKind::Client {
                    code: "RequestNotSent".to_string(),
                    message,
                }
            }
        }
        aws_sdk_rds::error::SdkError::ResponseError(response) => {
            classify_unparsed_response(response.raw().status().as_u16(), error_chain(err))
        }
        aws_sdk_rds::error::SdkError::ConstructionFailure(_) => AwsErrorKind::Client {
            code: "RequestNotBuilt".to_string(),
            message: error_chain(err),
        },
        // SdkError is non-exhaustive.
        _ => AwsErrorKind::Client {
            code: "Unknown".to_string(),
            message: error_chain(err),
        },
    }
}

/// Classifies an error AWS answered with, from its code and HTTP status. Pure, so the rules
/// are unit-tested without a network.
pub fn classify_service_error(
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
) -> AwsErrorKind {
    let message = message.unwrap_or_default().to_string();
    let code_in = |list: &[&str]| code.is_some_and(|c| list.contains(&c));
    if code_in(THROTTLING_CODES) || status == 429 {
        AwsErrorKind::Throttled { message }
    } else if code_in(ACCESS_DENIED_CODES) || status == 401 || status == 403 {
        AwsErrorKind::AccessDenied {
            code: code.unwrap_or("AccessDenied").to_string(),
            message,
        }
    } else if status >= 500 {
        AwsErrorKind::ServerError {
            status,
            code: code.map(str::to_string),
            message,
        }
    } else {
        AwsErrorKind::Client {
            code: code.unwrap_or("Unknown").to_string(),
            message: if message.is_empty() {
                format!("HTTP {status}")
            } else {
                message
            },
        }
    }
}

/// A response the SDK could not parse at all (e.g. an HTML page from a proxy).
fn classify_unparsed_response(status: u16, message: String) -> AwsErrorKind {
    match status {
        429 => AwsErrorKind::Throttled { message },
        500.. => AwsErrorKind::ServerError {
            status,
            code: None,
            message,
        },
        _ => AwsErrorKind::Malformed {
            message: format!("HTTP {status}: {message}"),
        },
    }
}

/// The error and its sources on one line, without repeating a message a wrapper copied
/// from its source.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string().replace('\n', " ");
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::error::ErrorMetadata;
    use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: &str, message: &str, status: u16) -> SdkError<DescribeDBInstancesError> {
        let err = DescribeDBInstancesError::generic(
            ErrorMetadata::builder().code(code).message(message).build(),
        );
        let raw = HttpResponse::new(status.try_into().expect("valid status"), SdkBody::empty());
        aws_sdk_rds::error::SdkError::service_error(err, raw)
    }

    #[test]
    fn throttling_is_named_with_service_and_operation() {
        let err = AwsError::from_sdk(
            "rds",
            "DescribeDBInstances",
            &service_error("Throttling", "Rate exceeded", 400),
        );
        assert_eq!(err.outcome(), AwsOutcome::Throttled);
        assert_eq!(err.reason(), "AwsThrottled");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "rds DescribeDBInstances throttled by AWS (after retries): Rate exceeded"
        );
    }

    #[test]
    fn http_429_without_a_known_code_is_throttling() {
        let kind = classify_service_error(Some("SomethingNew"), None, 429);
        assert!(matches!(kind, AwsErrorKind::Throttled { .. }));
    }

    #[test]
    fn server_errors_are_unavailable_and_transient() {
        let err = AwsError::from_sdk(
            "efs",
            "DescribeFileSystems",
            &service_error("InternalFailure", "boom", 500),
        );
        assert_eq!(err.outcome(), AwsOutcome::ServerError);
        assert_eq!(err.reason(), "AwsUnavailable");
        assert!(err.is_transient());
        assert_eq!(
            err.to_string(),
            "efs DescribeFileSystems failed on the AWS side (HTTP 500 InternalFailure, after retries): boom"
        );
    }

    #[test]
    fn access_denied_by_code_or_status() {
        for (code, status) in [("AccessDenied", 400), ("Whatever", 403)] {
            let err = AwsError::from_sdk(
                "rds",
                "DescribeDBClusters",
                &service_error(code, "not allowed", status),
            );
            assert_eq!(err.reason(), "AwsAccessDenied");
            assert_eq!(err.outcome(), AwsOutcome::ClientError);
            assert!(!err.is_transient());
            assert!(err.to_string().contains("IAM"), "{err}");
        }
    }

    #[test]
    fn other_client_errors_keep_code_and_message() {
        let err = AwsError::from_sdk(
            "rds",
            "DescribeDBInstances",
            &service_error("InvalidParameterValue", "bad marker", 400),
        );
        assert_eq!(err.reason(), "AwsError");
        assert_eq!(err.outcome(), AwsOutcome::ClientError);
        assert_eq!(
            err.to_string(),
            "rds DescribeDBInstances failed (InvalidParameterValue): bad marker"
        );
    }

    #[test]
    fn timeouts_are_transient() {
        let sdk: SdkError<DescribeDBInstancesError> =
            aws_sdk_rds::error::SdkError::timeout_error("operation timeout (all attempts)");
        let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
        assert_eq!(err.reason(), "AwsTimeout");
        assert_eq!(err.outcome(), AwsOutcome::Timeout);
        assert!(err.is_transient());
        assert!(
            err.to_string()
                .starts_with("rds DescribeDBInstances timed out")
        );
    }

    #[test]
    fn connection_failures_are_transport() {
        let sdk: SdkError<DescribeDBInstancesError> =
            aws_sdk_rds::error::SdkError::dispatch_failure(aws_sdk_rds::error::ConnectorError::io(
                "connection refused".into(),
            ));
        let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
        assert_eq!(err.outcome(), AwsOutcome::Transport);
        assert_eq!(err.reason(), "AwsUnavailable");
        assert!(err.to_string().contains("connection refused"), "{err}");

        let sdk: SdkError<DescribeDBInstancesError> =
            aws_sdk_rds::error::SdkError::dispatch_failure(
                aws_sdk_rds::error::ConnectorError::timeout("connect timeout".into()),
            );
        let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
        assert_eq!(err.reason(), "AwsTimeout");
    }

    #[test]
    fn requests_never_sent_are_client_errors() {
        let sdk: SdkError<DescribeDBInstancesError> =
            aws_sdk_rds::error::SdkError::dispatch_failure(
                aws_sdk_rds::error::ConnectorError::other("no credentials".into(), None),
            );
        let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
        assert_eq!(err.reason(), "AwsError");
        assert!(!err.is_transient());
        assert!(err.to_string().contains("no credentials"), "{err}");
    }

    #[test]
    fn malformed_is_not_transient() {
        let err = AwsError::malformed("secretsmanager", "GetSecretValue", "no SecretString");
        assert_eq!(err.reason(), "AwsMalformedResponse");
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "secretsmanager GetSecretValue returned an unusable response: no SecretString"
        );
    }
}
