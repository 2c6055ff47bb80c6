//! What can go wrong when talking to AWS, in categories the operator acts on.
//!
//! The SDK's `SdkError` is generic over every operation's error type and mixes "AWS said no"
//! with "we never reached AWS". The reconciler needs neither detail: it needs to know whether
//! to retry soon (throttling, 5xx, timeouts, network), whether a human must act (access
//! denied, a bad request), and a one-line message for a condition. [`AwsError`] is that.
//!
//! Its `Display` is that one line, for conditions and Events: service, operation, what went
//! wrong and AWS's code and message, or for a call that never got an answer the innermost
//! cause ("tcp connect error: Connection refused"). The SDK's whole error chain, five layers
//! deep for a refused connection, is kept apart in [`AwsError::chain`] for debug logs.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_types::request_id::RequestId;

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

/// The longest message a one-line error keeps, in characters. AWS's own messages fit (an
/// access denial names the principal, the action and the resource in about 250); anything
/// longer is cut rather than let one error fill an Event.
const MAX_MESSAGE_CHARS: usize = 400;

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

impl AwsErrorKind {
    /// Why, on one trimmed line: AWS's message when it answered, else the innermost cause.
    pub fn message(&self) -> &str {
        match self {
            AwsErrorKind::Throttled { message }
            | AwsErrorKind::ServerError { message, .. }
            | AwsErrorKind::Timeout { message }
            | AwsErrorKind::Transport { message }
            | AwsErrorKind::AccessDenied { message, .. }
            | AwsErrorKind::Client { message, .. }
            | AwsErrorKind::Malformed { message } => message,
        }
    }
}

/// A failed AWS call: which service and operation, and why. Displays as one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} {kind}")]
pub struct AwsError {
    service: &'static str,
    operation: &'static str,
    kind: AwsErrorKind,
    /// The SDK's error with every source and AWS's request id; None when discovery raised the
    /// error itself.
    chain: Option<String>,
}

impl AwsError {
    pub fn new(service: &'static str, operation: &'static str, kind: AwsErrorKind) -> Self {
        AwsError {
            service,
            operation,
            kind,
            chain: None,
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
        let mut chain = error_chain(err);
        let request_id = match err {
            aws_sdk_rds::error::SdkError::ServiceError(service_err) => err
                .request_id()
                .or_else(|| service_err.err().meta().request_id()),
            _ => err.request_id(),
        };
        // Query-protocol errors (RDS, ElastiCache) already print it within the chain.
        if let Some(id) = request_id
            && !chain.contains(id)
        {
            chain.push_str(&format!(" (request id {id})"));
        }
        AwsError {
            chain: Some(chain),
            ..Self::new(service, operation, classify_sdk_error(err))
        }
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

    /// Everything the SDK said, for a debug log: its error and every source (the
    /// connector's, hyper's, the OS's), and AWS's request id when it answered. For an error
    /// discovery raised itself (no region, an unusable answer) there is nothing beyond the
    /// message, and that is what it returns.
    pub fn chain(&self) -> &str {
        self.chain.as_deref().unwrap_or_else(|| self.kind.message())
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
        // The kind already says "timed out"; the innermost cause says which timeout.
        aws_sdk_rds::error::SdkError::TimeoutError(_) => AwsErrorKind::Timeout {
            message: innermost_causes(err, 1),
        },
        aws_sdk_rds::error::SdkError::DispatchFailure(dispatch) => {
            if dispatch.is_timeout() {
                AwsErrorKind::Timeout {
                    message: innermost_causes(err, 1),
                }
            } else if dispatch.is_io() {
                AwsErrorKind::Transport {
                    message: innermost_causes(err, 2),
                }
            } else {
                // "user" and "other" dispatch failures are raised before anything is sent:
                // no credentials, no region, an endpoint that cannot be resolved.
                AwsErrorKind::Client {
                    code: "RequestNotSent".to_string(),
                    message: innermost_causes(err, 2),
                }
            }
        }
        aws_sdk_rds::error::SdkError::ResponseError(response) => {
            classify_unparsed_response(response.raw().status().as_u16(), innermost_causes(err, 2))
        }
        aws_sdk_rds::error::SdkError::ConstructionFailure(_) => AwsErrorKind::Client {
            code: "RequestNotBuilt".to_string(),
            message: innermost_causes(err, 2),
        },
        // SdkError is non-exhaustive.
        _ => AwsErrorKind::Client {
            code: "Unknown".to_string(),
            message: innermost_causes(err, 2),
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
    let message = one_line(message.unwrap_or_default());
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

/// The messages of an error and its sources, outermost first, without a message a wrapper
/// copied from its source.
fn links(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut links: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = single_spaced(&e.to_string());
        if !text.is_empty() && !links.last().is_some_and(|last| last.contains(&text)) {
            links.push(text);
        }
        current = e.source();
    }
    links
}

/// The error and all its sources on one line.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    links(err).join(": ")
}

/// The innermost `count` messages of the chain: the outer layers only name the SDK's own
/// machinery ("dispatch failure: io error: client error (Connect)"); the cause and the step
/// that hit it ("tcp connect error: Connection refused") say what happened.
fn innermost_causes(err: &(dyn StdError + 'static), count: usize) -> String {
    let links = links(err);
    let start = links.len().saturating_sub(count);
    one_line(&links[start..].join(": "))
}

/// `text` with every whitespace run (newlines too) as one space, trimmed.
fn single_spaced(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` on one line, and anything past [`MAX_MESSAGE_CHARS`] cut and marked with an
/// ellipsis.
fn one_line(text: &str) -> String {
    let mut line = single_spaced(text);
    if let Some((cut, _)) = line.char_indices().nth(MAX_MESSAGE_CHARS) {
        line.truncate(cut);
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests;
