//! The vocabulary of the status: condition types and reasons as enums, and the state of one
//! condition before timestamps are attached. Every reason the operator can report is a
//! variant here, so a reason is never a typo and metric labels derive from the same value.

use std::fmt;

/// The conditions of a GrafanaCluster, in the order they are listed in the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionType {
    Ready,
    DatabaseResolved,
    CacheResolved,
    StorageResolved,
    /// The AWS data sources (Amazon Managed Prometheus, CloudWatch) are provisioned.
    DataSourcesResolved,
    /// spec.config, spec.configSecrets and spec.envFrom: applied, or what they read is
    /// missing.
    ConfigResolved,
    /// The replicas' pools fit the database's max_connections.
    ConnectionBudget,
    /// A minor or major upgrade is in progress (safe strategy).
    Upgrading,
    Progressing,
    Degraded,
    /// kstatus' abnormal-true conditions: Flux and kstatus-based tools read these (and
    /// observedGeneration), not Ready.
    Reconciling,
    Stalled,
    /// The HTTPRoute and ServiceMonitor the spec asks for can be written: their APIs
    /// (CRDs) are served. False never blocks the rest of the cluster.
    OptionalApis,
}

impl ConditionType {
    /// The order of `status.conditions`.
    pub const ORDER: [ConditionType; 13] = [
        ConditionType::Ready,
        ConditionType::DatabaseResolved,
        ConditionType::CacheResolved,
        ConditionType::StorageResolved,
        ConditionType::DataSourcesResolved,
        ConditionType::ConfigResolved,
        ConditionType::ConnectionBudget,
        ConditionType::OptionalApis,
        ConditionType::Upgrading,
        ConditionType::Progressing,
        ConditionType::Degraded,
        ConditionType::Reconciling,
        ConditionType::Stalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::DatabaseResolved => "DatabaseResolved",
            ConditionType::CacheResolved => "CacheResolved",
            ConditionType::StorageResolved => "StorageResolved",
            ConditionType::DataSourcesResolved => "DataSourcesResolved",
            ConditionType::ConfigResolved => "ConfigResolved",
            ConditionType::ConnectionBudget => "ConnectionBudget",
            ConditionType::Upgrading => "Upgrading",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
            ConditionType::Reconciling => "Reconciling",
            ConditionType::Stalled => "Stalled",
            ConditionType::OptionalApis => "OptionalAPIs",
        }
    }

    pub fn parse(s: &str) -> Option<ConditionType> {
        ConditionType::ORDER.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a condition has its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    // A component (database, cache, storage) resolved.
    Found,
    Endpoint,
    Disabled,
    StorageClass,
    // A component did not resolve: what AWS holds.
    NotFound,
    Ambiguous,
    NotReady,
    Unsupported,
    NotDiscovered,
    // A component did not resolve: what the spec or a referenced Secret says.
    EngineMismatch,
    NoManagedSecret,
    SecretNotFound,
    AuthTokenRequired,
    InvalidSslMode,
    CaBundleRequired,
    PasswordNotUsable,
    AccessPointRequired,
    /// No access point yet: the operator creates one (progress, not a problem).
    CreatingAccessPoint,
    /// Creating the access point failed (e.g. a missing IAM permission).
    AccessPointCreateFailed,
    // The connection budget.
    WithinBudget,
    OverBudget,
    NoKnownLimit,
    // Upgrades.
    UpToDate,
    Snapshotting,
    Stopping,
    Migrating,
    ScalingOut,
    DowngradeRefused,
    SnapshotFailed,
    // AWS could not be asked.
    AwsThrottled,
    AwsUnavailable,
    AwsTimeout,
    AwsAccessDenied,
    AwsError,
    AwsMalformedResponse,
    // The cluster as a whole.
    InvalidSpec,
    Unresolved,
    ApplyFailed,
    Available,
    ScaledDown,
    RollingOut,
    InstallingPlugins,
    PluginInstallFailed,
    RolloutComplete,
    Waiting,
    WaitingForAws,
    UsingLastKnownConfiguration,
    AsExpected,
    // Optional APIs (HTTPRoute, ServiceMonitor).
    /// Every optional API the spec asks for is served.
    Served,
    /// The spec asks for no child of an optional API.
    NotRequested,
    /// An optional API the spec asks for is not served (its CRD is not installed).
    ApiNotServed,
    /// Discovery could not tell whether an optional API is served.
    ApiCheckFailed,
    // The user's configuration.
    Applied,
    /// Applied, but some keys are unknown to the pinned Grafana.
    UnknownKeys,
    /// An envFrom object sets a variable the operator sets.
    ManagedVariable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Found => "Found",
            Reason::Endpoint => "Endpoint",
            Reason::Disabled => "Disabled",
            Reason::StorageClass => "StorageClass",
            Reason::NotFound => "NotFound",
            Reason::Ambiguous => "Ambiguous",
            Reason::NotReady => "NotReady",
            Reason::Unsupported => "Unsupported",
            Reason::NotDiscovered => "NotDiscovered",
            Reason::EngineMismatch => "EngineMismatch",
            Reason::NoManagedSecret => "NoManagedSecret",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::AuthTokenRequired => "AuthTokenRequired",
            Reason::InvalidSslMode => "InvalidSslMode",
            Reason::CaBundleRequired => "CaBundleRequired",
            Reason::PasswordNotUsable => "PasswordNotUsable",
            Reason::AccessPointRequired => "AccessPointRequired",
            Reason::CreatingAccessPoint => "CreatingAccessPoint",
            Reason::AccessPointCreateFailed => "AccessPointCreateFailed",
            Reason::WithinBudget => "WithinBudget",
            Reason::OverBudget => "OverBudget",
            Reason::NoKnownLimit => "NoKnownLimit",
            Reason::UpToDate => "UpToDate",
            Reason::Snapshotting => "Snapshotting",
            Reason::Stopping => "Stopping",
            Reason::Migrating => "Migrating",
            Reason::ScalingOut => "ScalingOut",
            Reason::DowngradeRefused => "DowngradeRefused",
            Reason::SnapshotFailed => "SnapshotFailed",
            Reason::AwsThrottled => "AwsThrottled",
            Reason::AwsUnavailable => "AwsUnavailable",
            Reason::AwsTimeout => "AwsTimeout",
            Reason::AwsAccessDenied => "AwsAccessDenied",
            Reason::AwsError => "AwsError",
            Reason::AwsMalformedResponse => "AwsMalformedResponse",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::Unresolved => "Unresolved",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::Available => "Available",
            Reason::ScaledDown => "ScaledDown",
            Reason::RollingOut => "RollingOut",
            Reason::InstallingPlugins => "InstallingPlugins",
            Reason::PluginInstallFailed => "PluginInstallFailed",
            Reason::RolloutComplete => "RolloutComplete",
            Reason::Waiting => "Waiting",
            Reason::WaitingForAws => "WaitingForAws",
            Reason::UsingLastKnownConfiguration => "UsingLastKnownConfiguration",
            Reason::AsExpected => "AsExpected",
            Reason::Served => "Served",
            Reason::NotRequested => "NotRequested",
            Reason::ApiNotServed => "APINotServed",
            Reason::ApiCheckFailed => "APICheckFailed",
            Reason::Applied => "Applied",
            Reason::UnknownKeys => "UnknownKeys",
            Reason::ManagedVariable => "ManagedVariable",
        }
    }

    /// AWS could not be asked: retrying may help without anyone acting.
    pub fn is_aws_failure(self) -> bool {
        matches!(
            self,
            Reason::AwsThrottled
                | Reason::AwsUnavailable
                | Reason::AwsTimeout
                | Reason::AwsAccessDenied
                | Reason::AwsError
                | Reason::AwsMalformedResponse
        )
    }

    /// Not ready for a reason that is progress, not a problem worth a Warning.
    pub fn is_progress(self) -> bool {
        matches!(
            self,
            Reason::RollingOut | Reason::InstallingPlugins | Reason::CreatingAccessPoint
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of one condition, before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    pub status: bool,
    pub reason: Reason,
    pub message: String,
}

impl ConditionState {
    pub fn ok(reason: Reason, message: impl Into<String>) -> Self {
        ConditionState {
            status: true,
            reason,
            message: message.into(),
        }
    }

    pub fn failed(reason: Reason, message: impl Into<String>) -> Self {
        ConditionState {
            status: false,
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_types_round_trip() {
        for t in ConditionType::ORDER {
            assert_eq!(ConditionType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ConditionType::parse("Nope"), None);
    }

    #[test]
    fn aws_reasons_are_recognised_by_variant() {
        assert!(Reason::AwsThrottled.is_aws_failure());
        assert!(!Reason::NotFound.is_aws_failure());
        assert!(Reason::RollingOut.is_progress());
    }
}
