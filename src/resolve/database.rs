//! The database: an endpoint from the spec, or the one RDS database the tags select; its
//! TLS mode and CA bundle.

use crate::api::{DatabaseEngine, DatabaseStatus, GrafanaClusterSpec, GrafanaClusterStatus};
use crate::facts::{DatabaseFacts, Lookup};
use crate::status::{ConditionState, Reason};

use super::component::{Discovered, Resolved, lookup_failure};
use super::{DatabaseCredentials, DatabasePlan, merged_selector};

/// Name of Grafana's database when neither the spec nor RDS names one.
const DEFAULT_DATABASE_NAME: &str = "grafana";

pub fn engine_name(engine: DatabaseEngine) -> &'static str {
    match engine {
        DatabaseEngine::Postgres => "postgres",
        DatabaseEngine::Mysql => "mysql",
    }
}

fn default_ssl_mode(engine: DatabaseEngine) -> &'static str {
    match engine {
        // Encrypted; verification needs the RDS CA bundle (caBundleConfigMapRef).
        DatabaseEngine::Postgres => "require",
        // Grafana's mysql "true" verifies against a CA bundle it must be given.
        DatabaseEngine::Mysql => "skip-verify",
    }
}

/// Whether the spec asks for the RDS-managed master secret.
pub fn wants_managed_secret(spec: &GrafanaClusterSpec) -> bool {
    spec.database
        .as_ref()
        .and_then(|d| d.credentials.rds_managed_secret)
        .unwrap_or(false)
}

pub fn resolve(
    spec: &GrafanaClusterSpec,
    observed: Option<&Discovered<DatabaseFacts>>,
    last: Option<&GrafanaClusterStatus>,
) -> Resolved<DatabaseStatus> {
    let db_spec = spec.database.clone().unwrap_or_default();
    if let Some(endpoint) = &db_spec.endpoint {
        let engine = db_spec.engine.unwrap_or(DatabaseEngine::Postgres);
        let status = DatabaseStatus {
            engine,
            endpoint: format!("{}:{}", endpoint.host, endpoint.port),
            host: endpoint.host.clone(),
            port: endpoint.port,
            name: db_spec
                .name
                .clone()
                .unwrap_or_else(|| DEFAULT_DATABASE_NAME.into()),
            arn: None,
            rds_engine: None,
            managed_secret_arn: None,
        };
        let message = format!(
            "using {} at {} from spec.database.endpoint",
            engine_name(engine),
            status.endpoint
        );
        return Resolved::given(status, Reason::Endpoint, message);
    }
    let selector = merged_selector(spec, db_spec.tags.as_ref());
    let found = match observed {
        Some(Discovered::Lookup(Lookup::Found(facts))) => found(spec, facts),
        other => Err(lookup_failure("database", "RDS database", &selector, other)),
    };
    Resolved::finish(found, last.and_then(|s| s.database.clone()))
}

fn found(
    spec: &GrafanaClusterSpec,
    facts: &DatabaseFacts,
) -> Result<(DatabaseStatus, String), ConditionState> {
    let db_spec = spec.database.clone().unwrap_or_default();
    let rds_managed = wants_managed_secret(spec);
    if let Some(engine) = db_spec.engine
        && engine != facts.engine
    {
        return Err(ConditionState::failed(
            Reason::EngineMismatch,
            format!(
                "spec.database.engine is {} but {} runs {}",
                engine_name(engine),
                facts.arn,
                facts.rds_engine
            ),
        ));
    }
    if rds_managed && facts.managed_secret_arn.is_none() {
        return Err(ConditionState::failed(
            Reason::NoManagedSecret,
            format!(
                "spec.database.credentials.rdsManagedSecret is set but {} has no RDS-managed master user secret (ManageMasterUserPassword)",
                facts.arn
            ),
        ));
    }
    let status = DatabaseStatus {
        engine: facts.engine,
        endpoint: format!("{}:{}", facts.host, facts.port),
        host: facts.host.clone(),
        port: facts.port,
        name: db_spec
            .name
            .clone()
            .or_else(|| facts.db_name.clone())
            .unwrap_or_else(|| DEFAULT_DATABASE_NAME.into()),
        arn: Some(facts.arn.clone()),
        rds_engine: Some(facts.rds_engine.clone()),
        managed_secret_arn: if rds_managed {
            facts.managed_secret_arn.clone()
        } else {
            None
        },
    };
    let message = format!(
        "found {} {} at {} ({})",
        facts.rds_engine, facts.identifier, status.endpoint, facts.arn
    );
    Ok((status, message))
}

/// The database part of the plan: TLS defaults for the engine in use.
pub fn plan(
    spec: &GrafanaClusterSpec,
    status: DatabaseStatus,
    credentials: DatabaseCredentials,
) -> DatabasePlan {
    let db_spec = spec.database.clone().unwrap_or_default();
    DatabasePlan {
        ssl_mode: db_spec
            .ssl_mode
            .clone()
            .unwrap_or_else(|| default_ssl_mode(status.engine).to_string()),
        ca_bundle: db_spec.ca_bundle_config_map_ref.clone(),
        credentials,
        status,
    }
}
