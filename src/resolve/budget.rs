//! The database connection budget: each replica's pool sized so that every replica, plus
//! the extra pods of a rolling update, stays within a share of the database's
//! max_connections (RDS's default formula for the engine and the instance class's memory).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{DatabaseStatus, GrafanaClusterSpec};
use crate::status::{ConditionState, Reason};

use super::ConnectionPool;
use super::pod::rolling_update;

/// Memory of RDS instance classes in GiB, with its source in the header.
const INSTANCE_MEMORY: &str = include_str!("rds-instance-memory.txt");

/// Connections per replica when no limit is known (Grafana's own default is no limit).
pub const DEFAULT_MAX_OPEN: u32 = 20;
/// Idle connections kept per replica, at most.
const MAX_IDLE: u32 = 4;
/// Percent of max_connections Grafana may use by default.
const DEFAULT_SHARE_PERCENT: u32 = 75;

/// Memory of `class` in bytes, when the table knows it.
fn memory_bytes(class: &str) -> Option<u64> {
    INSTANCE_MEMORY
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .find(|(c, _)| *c == class)
        .and_then(|(_, gib)| gib.trim().parse::<u64>().ok())
        .map(|gib| gib * 1024 * 1024 * 1024)
}

/// RDS's default max_connections for an engine and class: Postgres
/// `LEAST(DBInstanceClassMemory/9531392, 5000)`, MySQL and MariaDB
/// `DBInstanceClassMemory/12582880`. Aurora MySQL uses another formula: unknown here.
pub fn default_max_connections(rds_engine: &str, class: &str) -> Option<u64> {
    let memory = memory_bytes(class)?;
    match rds_engine {
        "postgres" | "aurora-postgresql" => Some((memory / 9_531_392).min(5000)),
        "mysql" | "mariadb" => Some(memory / 12_582_880),
        _ => None,
    }
}

/// Pods that may run at once: the replicas (an autoscaler's maximum when one targets the
/// cluster) plus the rolling update's surge.
fn peak_pods(spec: &GrafanaClusterSpec, autoscaler_max: Option<i32>) -> u32 {
    let replicas = u32::try_from(spec.replicas.max(autoscaler_max.unwrap_or(0))).unwrap_or(0);
    let surge = match rolling_update(spec).max_surge {
        IntOrString::Int(n) => u32::try_from(n).unwrap_or(0),
        IntOrString::String(s) => {
            let percent: u32 = s.trim_end_matches('%').parse().unwrap_or(0);
            (replicas * percent).div_ceil(100)
        }
    };
    (replicas + surge).max(1)
}

/// The pool of each replica and the condition that says how it relates to the budget.
/// `previous` is the pool the pods run with: kept while it fits, since a new value changes
/// the pod template and so restarts every replica (scaling down never does; scaling up
/// does only when the budget would be exceeded).
pub fn pool(
    spec: &GrafanaClusterSpec,
    database: &DatabaseStatus,
    previous: Option<i32>,
    autoscaler_max: Option<i32>,
) -> (ConnectionPool, ConditionState) {
    let budget = spec
        .database
        .as_ref()
        .and_then(|d| d.connection_budget.clone())
        .unwrap_or_default();
    let explicit = budget
        .max_open_per_replica
        .and_then(|n| u32::try_from(n).ok());
    let share = budget
        .share_percent
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(DEFAULT_SHARE_PERCENT);
    let peak = peak_pods(spec, autoscaler_max);
    let limit = database
        .rds_engine
        .as_deref()
        .zip(database.instance_class.as_deref())
        .and_then(|(engine, class)| default_max_connections(engine, class));
    let Some(max_connections) = limit else {
        let max_open = explicit.unwrap_or(DEFAULT_MAX_OPEN);
        let condition = ConditionState::ok(
            Reason::NoKnownLimit,
            format!(
                "max_connections of the database is not known (instance class {}): {max_open} connections per replica",
                database.instance_class.as_deref().unwrap_or("unknown")
            ),
        );
        return (with_idle(max_open), condition);
    };
    let allowed = u32::try_from(max_connections * u64::from(share) / 100).unwrap_or(u32::MAX);
    let kept = previous
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p >= 1 && p.saturating_mul(peak) <= allowed);
    let max_open = explicit.or(kept).unwrap_or_else(|| (allowed / peak).max(1));
    let used = max_open.saturating_mul(peak);
    let numbers = format!(
        "{peak} pods at most ({} and the rollout's surge) x {max_open} connections = {used}; {share}% of max_connections {max_connections} ({}) is {allowed}",
        match autoscaler_max {
            Some(max) if max > spec.replicas =>
                format!("the autoscaler's maximum of {max} replicas"),
            _ => format!("{} replicas", spec.replicas),
        },
        database.instance_class.as_deref().unwrap_or_default()
    );
    let condition = if used <= allowed {
        ConditionState::ok(Reason::WithinBudget, numbers)
    } else {
        ConditionState::failed(
            Reason::OverBudget,
            format!(
                "{numbers}: lower spec.database.connectionBudget.maxOpenPerReplica or replicas, or use a larger instance class"
            ),
        )
    };
    (with_idle(max_open), condition)
}

fn with_idle(max_open: u32) -> ConnectionPool {
    ConnectionPool {
        max_open,
        max_idle: max_open.min(MAX_IDLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn status(engine: &str, class: &str) -> DatabaseStatus {
        DatabaseStatus {
            engine: crate::api::DatabaseEngine::Postgres,
            endpoint: "h:5432".into(),
            host: "h".into(),
            port: 5432,
            name: "grafana".into(),
            arn: None,
            rds_engine: Some(engine.into()),
            managed_secret_arn: None,
            instance_class: Some(class.into()),
            availability_zone: None,
        }
    }

    #[test]
    fn rds_formulas_by_engine_and_class() {
        // 16 GiB: 17179869184 / 9531392 = 1802; MySQL / 12582880 = 1365.
        assert_eq!(
            default_max_connections("postgres", "db.r6g.large"),
            Some(1802)
        );
        assert_eq!(default_max_connections("mysql", "db.r6g.large"), Some(1365));
        assert_eq!(
            default_max_connections("postgres", "db.t3.micro"),
            Some(112)
        );
        assert_eq!(
            default_max_connections("postgres", "db.r7i.48xlarge"),
            Some(5000)
        );
        assert_eq!(
            default_max_connections("aurora-mysql", "db.r6g.large"),
            None
        );
        assert_eq!(default_max_connections("postgres", "db.x99.huge"), None);
    }

    #[test]
    fn replicas_and_surge_share_the_budget() {
        let mut spec = fixtures::article().spec; // 3 replicas, surge 1
        let (p, c) = pool(&spec, &status("postgres", "db.t3.micro"), None, None);
        // 75% of 112 = 84, over 4 pods = 21 each.
        assert_eq!(p.max_open, 21);
        assert_eq!(p.max_idle, 4);
        assert_eq!(c.reason, Reason::WithinBudget);
        assert!(c.message.contains("max_connections 112"), "{}", c.message);
        spec.replicas = 100;
        let (p, c) = pool(&spec, &status("postgres", "db.t3.micro"), None, None);
        assert_eq!(p.max_open, 1);
        assert_eq!(c.reason, Reason::OverBudget, "101 pods x 1 > 84");
    }

    #[test]
    fn the_running_pool_is_kept_while_it_fits() {
        let mut spec = fixtures::article().spec;
        let micro = status("postgres", "db.t3.micro"); // 84 allowed
        spec.replicas = 2;
        let (p, _) = pool(&spec, &micro, Some(21), None);
        assert_eq!(p.max_open, 21, "scaling down keeps the pool: no restart");
        spec.replicas = 5;
        let (p, c) = pool(&spec, &micro, Some(21), None);
        assert_eq!(p.max_open, 14, "6 x 21 would exceed 84: resized");
        assert_eq!(c.reason, Reason::WithinBudget);
    }

    #[test]
    fn an_autoscalers_maximum_sizes_the_pool() {
        let spec = fixtures::article().spec; // 3 replicas
        let micro = status("postgres", "db.t3.micro"); // 84 allowed
        let (p, c) = pool(&spec, &micro, None, Some(10));
        assert_eq!(p.max_open, 7, "84 over 10 + 1 pods");
        assert!(
            c.message.contains("the autoscaler's maximum of 10"),
            "{}",
            c.message
        );
    }

    #[test]
    fn an_explicit_pool_wins_but_is_checked() {
        let mut spec = fixtures::article().spec;
        spec.database.as_mut().expect("db").connection_budget =
            Some(crate::api::ConnectionBudgetSpec {
                share_percent: None,
                max_open_per_replica: Some(50),
            });
        let (p, c) = pool(&spec, &status("postgres", "db.t3.micro"), None, None);
        assert_eq!(p.max_open, 50);
        assert!(!c.status && c.reason == Reason::OverBudget);
        assert!(c.message.contains("4 pods at most") && c.message.contains("= 200"));
    }

    #[test]
    fn an_unknown_limit_keeps_a_bounded_default() {
        let spec = fixtures::article().spec;
        let (p, c) = pool(&spec, &status("aurora-mysql", "db.r6g.large"), None, None);
        assert_eq!(p.max_open, DEFAULT_MAX_OPEN);
        assert_eq!(c.reason, Reason::NoKnownLimit);
    }
}
