use super::*;
use crate::fixtures;
use crate::resolve::{Discovered, resolve};
use crate::status::condition_events;

const READY: &str = "Ready";
const DATABASE_RESOLVED: &str = "DatabaseResolved";
const CACHE_RESOLVED: &str = "CacheResolved";
const STORAGE_RESOLVED: &str = "StorageResolved";
const PROGRESSING: &str = "Progressing";
const DEGRADED: &str = "Degraded";
const RECONCILING: &str = "Reconciling";
const STALLED: &str = "Stalled";

fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("ts")
}

fn cond<'a>(s: &'a GrafanaClusterStatus, t: &str) -> &'a Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == t)
        .unwrap_or_else(|| panic!("no {t}"))
}

fn complete(n: i32) -> Rollout {
    Rollout {
        replicas: n,
        ready: n,
        updated: n,
        available: n,
        observed: true,
    }
}

#[test]
fn ready_when_rollout_complete_and_plugins_installed() {
    let mut gc = fixtures::article();
    gc.metadata.generation = Some(4);
    let r = resolve(&gc, &fixtures::gathered());
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, READY).observed_generation, Some(4));
    assert_eq!(cond(&s, PROGRESSING).status, "False");
    assert_eq!(cond(&s, DEGRADED).status, "False");
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.ready_replicas, Some(3));
    assert!(s.plugins.as_ref().expect("plugins").installed);
    assert_eq!(
        s.database.as_ref().expect("db").endpoint,
        "grafana-db.rds.local:5432"
    );
    assert_eq!(
        s.selector.as_deref(),
        Some(
            "app.kubernetes.io/component=server,app.kubernetes.io/instance=grafana,app.kubernetes.io/name=grafana"
        )
    );
    let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types,
        vec![
            READY,
            DATABASE_RESOLVED,
            CACHE_RESOLVED,
            STORAGE_RESOLVED,
            "DataSourcesResolved",
            "ConfigResolved",
            "ConnectionBudget",
            "OptionalAPIs",
            "Upgrading",
            PROGRESSING,
            DEGRADED,
            RECONCILING,
            STALLED
        ]
    );
    // kstatus: Current.
    assert_eq!(cond(&s, RECONCILING).status, "False");
    assert_eq!(cond(&s, STALLED).status, "False");
}

#[test]
fn not_ready_while_rolling_out_or_installing() {
    let gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    let rolling = Rollout {
        replicas: 4,
        ready: 3,
        updated: 1,
        available: 3,
        observed: true,
    };
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(rolling),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, PROGRESSING).reason, "RollingOut");
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Running),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, PROGRESSING).reason, "InstallingPlugins");
}

#[test]
fn unresolved_database_is_not_ready_and_degraded() {
    let gc = fixtures::article();
    let mut obs = fixtures::gathered();
    obs.database = Some(Discovered::Lookup(crate::facts::Lookup::NotFound {
        candidates: 2,
    }));
    let r = resolve(&gc, &obs);
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "False");
    assert_eq!(cond(&s, DATABASE_RESOLVED).reason, "NotFound");
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert!(s.database.is_none());
}

#[test]
fn stale_configuration_stays_ready_but_degraded() {
    let mut gc = fixtures::article();
    let first = resolve(&gc, &fixtures::gathered());
    gc.status = Some(compute(
        &gc,
        &StatusInputs {
            resolution: Some(&first),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    ));
    let mut obs = fixtures::gathered();
    obs.database = Some(Discovered::Failed {
        reason: Reason::AwsThrottled,
        message: "slow down".into(),
    });
    let r = resolve(&gc, &obs);
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert_eq!(cond(&s, DEGRADED).reason, "UsingLastKnownConfiguration");
    assert_eq!(cond(&s, DATABASE_RESOLVED).reason, "AwsThrottled");
    assert_eq!(
        s.database,
        gc.status.as_ref().expect("status").database,
        "last good database kept"
    );
}

#[test]
fn invalid_spec_keeps_other_conditions() {
    let mut gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    gc.status = Some(compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        now(),
    ));
    let s = compute(
        &gc,
        &StatusInputs {
            invalid: Some("spec.replicas: bad".into()),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).reason, "InvalidSpec");
    assert_eq!(cond(&s, DATABASE_RESOLVED).status, "True");
}

#[test]
fn transition_time_holds_while_status_holds() {
    let mut gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    let t0 = now();
    gc.status = Some(compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        t0,
    ));
    let later = Timestamp::from_second(1_700_000_100).expect("ts");
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        later,
    );
    assert_eq!(cond(&s, DATABASE_RESOLVED).last_transition_time, Time(t0));
    assert_eq!(
        s,
        compute(
            &gc,
            &StatusInputs {
                resolution: Some(&r),
                ..Default::default()
            },
            later
        ),
        "a steady state computes the same status"
    );
}

#[test]
fn events_only_on_change() {
    let gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    let first = condition_events(&[], &s.conditions);
    assert!(
        first
            .iter()
            .any(|e| e.reason.as_string() == "DatabaseResolved"
                && !e.warning
                && e.note.contains("grafana-db"))
    );
    assert!(condition_events(&s.conditions, &s.conditions).is_empty());
    let mut obs = fixtures::gathered();
    obs.database = Some(Discovered::Lookup(crate::facts::Lookup::Ambiguous {
        arns: vec!["arn:1".into(), "arn:2".into()],
    }));
    let r2 = resolve(&gc, &obs);
    let s2 = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r2),
            ..Default::default()
        },
        now(),
    );
    let events = condition_events(&s.conditions, &s2.conditions);
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_string() == "DatabaseFailed"
                && e.warning
                && e.note.contains("arn:1")),
        "{events:?}"
    );
}

#[test]
fn first_rollout_is_not_a_warning_and_recovery_needs_a_degradation() {
    let gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    let rolling = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(Rollout::default()),
            plugins_job: Some(JobState::Running),
            ..Default::default()
        },
        now(),
    );
    let events = condition_events(&[], &rolling.conditions);
    assert!(events.iter().all(|e| !e.warning), "{events:?}");
    assert!(
        !events.iter().any(|e| e.reason.as_string() == "Recovered"),
        "{events:?}"
    );

    let mut obs = fixtures::gathered();
    obs.cache = Some(Discovered::Lookup(crate::facts::Lookup::NotFound {
        candidates: 0,
    }));
    let r2 = resolve(&gc, &obs);
    let broken = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r2),
            ..Default::default()
        },
        now(),
    );
    let events = condition_events(&rolling.conditions, &broken.conditions);
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_string() == "Degraded" && e.warning),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_string() == "CacheFailed" && e.warning),
        "{events:?}"
    );
    let events = condition_events(&broken.conditions, &rolling.conditions);
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_string() == "Recovered" && !e.warning),
        "{events:?}"
    );
}

#[test]
fn kstatus_conditions_follow_the_lifecycle() {
    let gc = fixtures::article();
    let r = resolve(&gc, &fixtures::gathered());
    let rolling = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(Rollout::default()),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&rolling, RECONCILING).status, "True");
    assert_eq!(cond(&rolling, STALLED).status, "False");

    let mut obs = fixtures::gathered();
    obs.database = Some(Discovered::Lookup(crate::facts::Lookup::NotReady {
        arn: "arn:db".into(),
        state: "creating".into(),
    }));
    let r = resolve(&gc, &obs);
    let creating = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(
        cond(&creating, RECONCILING).status,
        "True",
        "waiting for AWS to finish is progress"
    );
    assert_eq!(cond(&creating, STALLED).status, "False");

    obs.database = Some(Discovered::Lookup(crate::facts::Lookup::Ambiguous {
        arns: vec!["a".into(), "b".into()],
    }));
    let r = resolve(&gc, &obs);
    let stuck = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(
        cond(&stuck, STALLED).status,
        "True",
        "an ambiguous selector needs a person"
    );
    assert_eq!(cond(&stuck, RECONCILING).status, "False");

    let invalid = compute(
        &gc,
        &StatusInputs {
            invalid: Some("bad".into()),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&invalid, STALLED).reason, "InvalidSpec");
}

#[test]
fn a_missing_admin_secret_is_named() {
    let gc = fixtures::article();
    let mut obs = fixtures::gathered();
    obs.secrets.problems.admin = Some("Secret obs/admin does not exist".into());
    let r = resolve(&gc, &obs);
    assert!(r.plan.is_none());
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "False");
    assert!(
        cond(&s, READY)
            .message
            .contains("Secret obs/admin does not exist"),
        "{:?}",
        cond(&s, READY)
    );
    assert_eq!(cond(&s, DEGRADED).status, "True");
    assert_eq!(cond(&s, STALLED).status, "True");
}

#[test]
fn scaled_to_zero_is_ready_and_says_so() {
    let mut gc = fixtures::article();
    gc.spec.replicas = 0;
    let r = resolve(&gc, &fixtures::gathered());
    let plan = r.plan.as_ref().expect("plan");
    assert!(
        plan.disruption_budget.is_none(),
        "no budget to guard nothing"
    );
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(0)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    assert_eq!(cond(&s, READY).status, "True");
    assert_eq!(cond(&s, READY).reason, "ScaledDown");
    assert_eq!(cond(&s, STALLED).status, "False");
    assert_eq!(cond(&s, RECONCILING).status, "False");
}

#[test]
fn a_missing_optional_api_leaves_ready_and_stalled_alone_and_says_so() {
    let mut gc = fixtures::article();
    gc.spec.http_route = serde_json::from_value(serde_json::json!({
        "parentRefs": [{"name": "public"}],
        "hostnames": ["grafana.example.com"]
    }))
    .expect("route");
    let mut gathered = fixtures::gathered();
    gathered.optional_apis.http_route = crate::optional_api::Availability::NotServed;
    let r = resolve(&gc, &gathered);
    assert!(r.plan.as_ref().expect("plan").extras.http_route.is_none());
    let s = compute(
        &gc,
        &StatusInputs {
            resolution: Some(&r),
            rollout: Some(complete(3)),
            plugins_job: Some(JobState::Succeeded),
            ..Default::default()
        },
        now(),
    );
    let optional = cond(&s, "OptionalAPIs");
    assert_eq!(
        (optional.status.as_str(), optional.reason.as_str()),
        ("False", "APINotServed")
    );
    assert!(optional.message.contains("spec.httpRoute"));
    assert_eq!(cond(&s, READY).status, "True");
    assert!(cond(&s, READY).message.contains("see OptionalAPIs"));
    assert_eq!(cond(&s, STALLED).status, "False");
    assert_eq!(cond(&s, DEGRADED).status, "False");
}
