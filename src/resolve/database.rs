//! The database: an endpoint from the spec, or the one RDS database the tags select; its
//! TLS mode and CA bundle.

use crate::api::{DatabaseEngine, DatabaseStatus, GrafanaClusterSpec, GrafanaClusterStatus};
use crate::facts::{DatabaseFacts, Lookup};
use crate::status::{ConditionState, Reason};

use super::component::{Discovered, Resolved, lookup_failure};
use super::{DatabaseCa, DatabaseCredentials, DatabasePlan, merged_selector};
use crate::gather::SecretReads;

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
            instance_class: None,
            availability_zone: None,
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
        instance_class: facts.instance_class.clone(),
        availability_zone: facts.single_zone.clone(),
    };
    let message = format!(
        "found {} {} at {} ({})",
        facts.rds_engine, facts.identifier, status.endpoint, facts.arn
    );
    Ok((status, message))
}

/// The modes Grafana passes on for each engine: lib/pq's sslmode for Postgres, the MySQL
/// driver's tls parameter for MySQL (anything else silently means no TLS there).
fn ssl_modes(engine: DatabaseEngine) -> &'static [&'static str] {
    match engine {
        DatabaseEngine::Postgres => &["disable", "require", "verify-ca", "verify-full"],
        DatabaseEngine::Mysql => &["true", "false", "skip-verify"],
    }
}

/// The TLS mode and CA file for the engine in use, or why they cannot work.
fn tls(
    spec: &GrafanaClusterSpec,
    engine: DatabaseEngine,
) -> Result<(String, Option<DatabaseCa>), ConditionState> {
    let db_spec = spec.database.clone().unwrap_or_default();
    let mode = db_spec
        .ssl_mode
        .clone()
        .unwrap_or_else(|| default_ssl_mode(engine).to_string());
    if !ssl_modes(engine).contains(&mode.as_str()) {
        return Err(ConditionState::failed(
            Reason::InvalidSslMode,
            format!(
                "spec.database.sslMode {mode} does not fit the {} database in use: use one of {}",
                engine_name(engine),
                ssl_modes(engine).join(", ")
            ),
        ));
    }
    let bundle = db_spec
        .ca_bundle_config_map_ref
        .clone()
        .map(DatabaseCa::Bundle);
    let verifies = matches!(mode.as_str(), "verify-ca" | "verify-full" | "true");
    let ca = match (engine, mode.as_str()) {
        (_, _) if verifies && bundle.is_none() => {
            return Err(ConditionState::failed(
                Reason::CaBundleRequired,
                format!(
                    "spec.database.sslMode {mode} verifies the server against a CA that the image does not trust: set spec.database.caBundleConfigMapRef to a ConfigMap holding the RDS CA bundle (global-bundle.pem)"
                ),
            ));
        }
        // Grafana's MySQL client reads ca_cert_path for every TLS mode.
        (DatabaseEngine::Mysql, "skip-verify") => bundle.or(Some(DatabaseCa::System)),
        _ => bundle,
    };
    Ok((mode, ca))
}

/// Postgres: Grafana writes the password unquoted into a lib/pq `key=value` connection
/// string, so whitespace, a backslash or a quote break it.
fn password_problem(engine: DatabaseEngine, secrets: &SecretReads) -> Option<ConditionState> {
    let finding = secrets.unquotable_password.as_ref()?;
    (engine == DatabaseEngine::Postgres).then(|| {
        ConditionState::failed(
            Reason::PasswordNotUsable,
            format!(
                "the database password in {} contains {}, which Grafana cannot pass to PostgreSQL (it puts the password unquoted into a key=value connection string): change the password",
                finding.source,
                finding.characters.join(" and ")
            ),
        )
    })
}

/// The database part of the plan (TLS defaults for the engine in use), or the condition
/// that says why the resolved database cannot be wired.
pub fn plan(
    spec: &GrafanaClusterSpec,
    previous_pool: Option<i32>,
    autoscaler_max: Option<i32>,
    mut resolved: Resolved<DatabaseStatus>,
    credentials: Result<DatabaseCredentials, String>,
    secrets: &SecretReads,
) -> (Resolved<DatabaseStatus>, Option<DatabasePlan>) {
    let credentials = match credentials {
        Ok(credentials) => credentials,
        Err(problem) => return (resolved.with_secret_problem(Some(&problem)), None),
    };
    let Some(status) = resolved.target.clone() else {
        return (resolved, None);
    };
    let checked =
        tls(spec, status.engine).and_then(|tls| match password_problem(status.engine, secrets) {
            Some(problem) => Err(problem),
            None => Ok(tls),
        });
    match checked {
        Ok((ssl_mode, ca)) => {
            let (pool, budget) = super::budget::pool(spec, &status, previous_pool, autoscaler_max);
            let plan = DatabasePlan {
                budget,
                ssl_mode,
                ca,
                credentials,
                pool,
                status,
            };
            (resolved, Some(plan))
        }
        Err(condition) => {
            resolved.condition = condition;
            resolved.target = None;
            resolved.stale = false;
            (resolved, None)
        }
    }
}
