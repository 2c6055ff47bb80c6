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

/// An error with an optional source, to build chains like the SDK's connector's.
#[derive(Debug)]
struct Layer(&'static str, Option<Box<Layer>>);

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for Layer {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.1.as_deref().map(|l| l as &(dyn StdError + 'static))
    }
}

fn layers(messages: &[&'static str]) -> Layer {
    let (last, outer) = messages.split_last().expect("at least one layer");
    outer.iter().rev().fold(Layer(last, None), |inner, m| {
        Layer(m, Some(Box::new(inner)))
    })
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
    let sdk: SdkError<DescribeDBInstancesError> = aws_sdk_rds::error::SdkError::dispatch_failure(
        aws_sdk_rds::error::ConnectorError::io("connection refused".into()),
    );
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert_eq!(err.outcome(), AwsOutcome::Transport);
    assert_eq!(err.reason(), "AwsUnavailable");
    assert!(err.to_string().contains("connection refused"), "{err}");

    let sdk: SdkError<DescribeDBInstancesError> = aws_sdk_rds::error::SdkError::dispatch_failure(
        aws_sdk_rds::error::ConnectorError::timeout("connect timeout".into()),
    );
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert_eq!(err.reason(), "AwsTimeout");
}

#[test]
fn requests_never_sent_are_client_errors() {
    let sdk: SdkError<DescribeDBInstancesError> = aws_sdk_rds::error::SdkError::dispatch_failure(
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

#[test]
fn display_names_the_innermost_cause_and_the_chain_keeps_every_layer() {
    let cause = layers(&[
        "client error (Connect)",
        "tcp connect error",
        "Connection refused (os error 111)",
    ]);
    let sdk: SdkError<DescribeDBInstancesError> = aws_sdk_rds::error::SdkError::dispatch_failure(
        aws_sdk_rds::error::ConnectorError::io(Box::new(cause)),
    );
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert_eq!(
        err.to_string(),
        "rds DescribeDBInstances could not reach AWS: tcp connect error: Connection refused \
         (os error 111)"
    );
    assert_eq!(
        err.chain(),
        "dispatch failure: io error: client error (Connect): tcp connect error: Connection \
         refused (os error 111)"
    );
}

#[test]
fn timeouts_name_only_the_timeout_that_fired() {
    let sdk: SdkError<DescribeDBInstancesError> =
        aws_sdk_rds::error::SdkError::timeout_error(Box::new(layers(&[
            "operation attempt timeout (single attempt) occurred after 10s",
        ])));
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert_eq!(
        err.to_string(),
        "rds DescribeDBInstances timed out: operation attempt timeout (single attempt) \
         occurred after 10s"
    );
    assert!(
        err.chain().contains("occurred after 10s"),
        "{}",
        err.chain()
    );
}

#[test]
fn aws_messages_are_one_trimmed_line_and_the_chain_has_the_request_id() {
    let message = format!(
        "User: arn:aws:sts::123456789012:assumed-role/grafana-ha/operator\n   is not \
         authorized to perform: rds:DescribeDBInstances {}",
        "because no identity-based policy allows it ".repeat(20)
    );
    let meta = ErrorMetadata::builder()
        .code("AccessDenied")
        .message(&message)
        .build();
    let mut raw = HttpResponse::new(403.try_into().expect("valid status"), SdkBody::empty());
    raw.headers_mut()
        .insert("x-amzn-RequestId", "c5e6bd48-header-id");
    let sdk: SdkError<DescribeDBInstancesError> =
        aws_sdk_rds::error::SdkError::service_error(DescribeDBInstancesError::generic(meta), raw);
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with(
            "rds DescribeDBInstances was denied (AccessDenied); check the operator's IAM \
             permissions: User: arn:aws:sts::123456789012:assumed-role/grafana-ha/operator \
             is not authorized to perform: rds:DescribeDBInstances because"
        ),
        "{line}"
    );
    assert!(line.ends_with('…'), "{line}");
    assert!(!line.contains("request id"), "{line}");
    assert_eq!(err.kind().message().chars().count(), MAX_MESSAGE_CHARS + 1);
    // The chain has AWS's whole message, uncut, and the id to quote to AWS support.
    assert_eq!(
        err.chain()
            .matches("because no identity-based policy allows it")
            .count(),
        20
    );
    assert!(
        err.chain().ends_with("(request id c5e6bd48-header-id)"),
        "{}",
        err.chain()
    );
}

#[test]
fn the_request_id_from_the_error_body_is_in_the_chain_once() {
    // Query-protocol services (RDS, ElastiCache) also put it in the error document.
    let meta = ErrorMetadata::builder()
        .code("Throttling")
        .message("Rate exceeded")
        .custom("aws_request_id", "body-id")
        .build();
    let raw = HttpResponse::new(400.try_into().expect("valid status"), SdkBody::empty());
    let sdk: SdkError<DescribeDBInstancesError> =
        aws_sdk_rds::error::SdkError::service_error(DescribeDBInstancesError::generic(meta), raw);
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert_eq!(err.chain().matches("body-id").count(), 1, "{}", err.chain());

    // A modelled error prints only its code and message (the SDK parses the message into
    // both): the id is added after the chain.
    let fault = aws_sdk_rds::types::error::DbInstanceNotFoundFault::builder()
        .message("DBInstance db-1 not found.")
        .meta(
            ErrorMetadata::builder()
                .code("DBInstanceNotFound")
                .message("DBInstance db-1 not found.")
                .custom("aws_request_id", "modelled-id")
                .build(),
        )
        .build();
    let raw = HttpResponse::new(404.try_into().expect("valid status"), SdkBody::empty());
    let sdk: SdkError<DescribeDBInstancesError> = aws_sdk_rds::error::SdkError::service_error(
        DescribeDBInstancesError::DbInstanceNotFoundFault(fault),
        raw,
    );
    let err = AwsError::from_sdk("rds", "DescribeDBInstances", &sdk);
    assert!(
        err.chain().ends_with("(request id modelled-id)"),
        "{}",
        err.chain()
    );
    assert_eq!(
        err.to_string(),
        "rds DescribeDBInstances failed (DBInstanceNotFound): DBInstance db-1 not found."
    );
}

#[test]
fn errors_raised_by_discovery_are_their_own_chain() {
    let err = AwsError::malformed("secretsmanager", "GetSecretValue", "no SecretString");
    assert_eq!(err.chain(), "no SecretString");
}

#[test]
fn one_line_collapses_whitespace_and_cuts_long_text_on_a_char_boundary() {
    assert_eq!(one_line("  a\n\t b  "), "a b");
    let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
    let cut = one_line(&long);
    assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
    assert!(cut.ends_with("é…"));
}
