use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PodSpec, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::fixtures;
use crate::gather::ManagedSecretRead;
use crate::resolve::{Plan, references, resolve};

fn pod(d: &Deployment) -> PodSpec {
    d.spec.clone().expect("spec").template.spec.expect("pod")
}

fn secrets_annotation(d: &Deployment) -> String {
    d.spec
        .clone()
        .expect("spec")
        .template
        .metadata
        .expect("meta")
        .annotations
        .expect("ann")[names::SECRETS_HASH_ANNOTATION]
        .clone()
}

/// Every (Secret, key) the pod spec reads: env, envFrom and volumes.
fn secret_keys_read_by(pod: &PodSpec) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for c in pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
    {
        for e in c.env.iter().flatten() {
            if let Some(r) = e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
            {
                out.insert((r.name.clone(), r.key.clone()));
            }
        }
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.secret_ref {
                out.insert((r.name.clone(), "*".into()));
            }
        }
    }
    for v in pod.volumes.iter().flatten() {
        let projected = v.projected.iter().flat_map(|p| p.sources.iter().flatten());
        for secret in projected.filter_map(|source| source.secret.as_ref()) {
            match &secret.items {
                Some(items) => {
                    out.extend(items.iter().map(|i| (secret.name.clone(), i.key.clone())))
                }
                None => {
                    out.insert((secret.name.clone(), "*".into()));
                }
            }
        }
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            match &s.items {
                Some(items) => out.extend(items.iter().map(|i| (name.clone(), i.key.clone()))),
                None => {
                    out.insert((name, "*".into()));
                }
            }
        }
    }
    out
}

/// A plan whose pod hash comes from the digests read from the cluster alone (every
/// operator Secret exists, nothing is rebuilt this round).
fn steady_plan(gc: &crate::api::GrafanaCluster) -> Plan {
    let mut gathered = fixtures::gathered();
    gathered.secrets.existing = fixtures::all_operator_secrets();
    gathered.secrets.managed = ManagedSecretRead::Unavailable("test".into());
    gathered.secrets.cache_auth_token = None;
    let name = gc.metadata.name.clone().unwrap_or_default();
    for u in references(&name, &gc.spec) {
        for key in &u.keys {
            gathered
                .secrets
                .digests
                .insert(format!("{}/{key}", u.name), "d0".into());
        }
    }
    resolve(gc, &gathered).plan.expect("plan")
}

/// Every Secret key a pod references feeds the pod-template hash: it is read by the
/// gatherer (listed in `references`), and changing its data changes the hash.
#[test]
fn every_secret_key_the_pods_read_feeds_the_hash() {
    let mut redis_alerting = fixtures::article();
    redis_alerting.spec.alerting = Some(crate::api::AlertingSpec {
        ha: Some(crate::api::AlertingHa::Redis),
    });
    let mut user_secrets = fixtures::cluster(serde_json::json!({
        "aws": {"tags": {"a": "b"}},
        "database": {"credentials": {"secretRef": {"name": "db", "usernameKey": "u", "passwordKey": "p"}}},
        "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
        "adminCredentials": {"secretRef": {"name": "admin"}},
    }));
    user_secrets.spec.replicas = 2;
    let with_config = configured();
    for gc in [
        fixtures::article(),
        redis_alerting,
        user_secrets,
        with_config,
    ] {
        let plan = steady_plan(&gc);
        let read = secret_keys_read_by(&pod(&deployment(&plan, &plan.secret_digests)));
        let whole = crate::resolve::env_from_objects(&gc.spec)
            .into_iter()
            .filter(|o| !o.config_map)
            .map(|o| (o.name, "*".to_string()));
        let listed: BTreeSet<(String, String)> = references(&plan.cluster.name, &gc.spec)
            .into_iter()
            .flat_map(|u| u.keys.into_iter().map(move |k| (u.name.clone(), k)))
            .chain(whole)
            .collect();
        assert!(!read.is_empty());
        for (secret, key) in &read {
            assert!(
                listed.contains(&(secret.clone(), key.clone())),
                "{secret}/{key} is read by the pods but not gathered"
            );
            let children = crate::build::build(&plan);
            let before = secrets_annotation(&children.deployment);
            let mut changed = plan.clone();
            // A whole Secret (envFrom) is digested as `secret:<name>`.
            let id = match key.as_str() {
                "*" => format!("secret:{secret}"),
                _ => format!("{secret}/{key}"),
            };
            changed.secret_digests.insert(id, "d1".into());
            let after = secrets_annotation(&crate::build::build(&changed).deployment);
            assert_ne!(before, after, "{secret}/{key} does not roll the pods");
        }
    }
}

#[test]
fn ca_bundle_is_mounted() {
    let mut gc = fixtures::article();
    gc.spec
        .database
        .as_mut()
        .expect("db")
        .ca_bundle_config_map_ref = Some(crate::api::KeyRef {
        name: "rds-ca".into(),
        key: "global-bundle.pem".into(),
    });
    let d = deployment(&fixtures::plan_of(&gc), &BTreeMap::new());
    assert!(
        pod(&d)
            .volumes
            .expect("volumes")
            .iter()
            .any(|v| v.config_map.as_ref().is_some_and(|c| c.name == "rds-ca"))
    );
}

#[test]
fn deployment_is_ha_shaped() {
    let plan = fixtures::plan();
    let d = deployment(&plan, &BTreeMap::new());
    assert_eq!(
        d.metadata.owner_references.as_ref().expect("owner")[0].kind,
        "GrafanaCluster"
    );
    let spec = d.spec.clone().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let rolling = spec
        .strategy
        .expect("strategy")
        .rolling_update
        .expect("rolling");
    assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
    assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    let pod = pod(&d);
    let c = &pod.containers[0];
    let path = |p: &Option<Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(path(&c.readiness_probe).as_deref(), Some("/api/health"));
    assert_eq!(path(&c.liveness_probe).as_deref(), Some("/healthz"));
    assert!(c.startup_probe.is_some());
    assert_eq!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root),
        Some(true)
    );
    let res = c.resources.as_ref().expect("resources");
    assert_eq!(res.requests, res.limits);
    assert_eq!(
        pod.init_containers.as_ref().expect("init")[0].name,
        "wait-for-plugins"
    );
    let claim = pod.volumes.as_ref().expect("volumes")[0]
        .persistent_volume_claim
        .as_ref()
        .expect("pvc");
    assert_eq!(claim.claim_name, plan.storage.status.claim_name);
    assert_eq!(
        pod.topology_spread_constraints.as_ref().map(Vec::len),
        Some(2)
    );
}

#[test]
fn pods_roll_on_secret_data_only() {
    let plan = fixtures::plan();
    let annotation = |d: &BTreeMap<String, String>| secrets_annotation(&deployment(&plan, d));
    let a = BTreeMap::from([("redis-auth/token".to_string(), "d1".to_string())]);
    let b = BTreeMap::from([("redis-auth/token".to_string(), "d2".to_string())]);
    assert_eq!(annotation(&a), annotation(&a.clone()));
    assert_ne!(annotation(&a), annotation(&b));
}

#[test]
fn user_settings_pass_through() {
    let mut gc = fixtures::article();
    gc.spec.node_selector = Some(BTreeMap::from([("pool".to_string(), "obs".to_string())]));
    gc.spec.rolling_update = Some(Box::new(crate::api::RollingUpdateSpec {
        max_surge: Some(IntOrString::Int(6)),
        max_unavailable: Some(IntOrString::Int(1)),
    }));
    let d = deployment(&fixtures::plan_of(&gc), &BTreeMap::new());
    assert_eq!(pod(&d).node_selector, gc.spec.node_selector);
    assert_eq!(
        d.spec
            .expect("spec")
            .strategy
            .expect("s")
            .rolling_update
            .expect("r")
            .max_surge,
        Some(IntOrString::Int(6))
    );
}

/// The article with OAuth (client secret from a Secret), SMTP and envFrom.
fn configured() -> crate::api::GrafanaCluster {
    let mut gc = fixtures::article();
    let extra: crate::api::GrafanaClusterSpec = serde_json::from_value(serde_json::json!({
        "database": {"credentials": {"rdsManagedSecret": true}},
        "config": {
            "auth.generic_oauth": {"enabled": "true", "client_id": "grafana"},
            "smtp": {"enabled": "true", "host": "smtp.example.com:587"},
        },
        "configSecrets": {
            "auth.generic_oauth": {"client_secret": {"name": "oauth", "key": "client-secret"}},
            "smtp": {"password": {"name": "smtp", "key": "password"}},
        },
        "envFrom": [{"configMapRef": {"name": "extra"}}, {"secretRef": {"name": "more"}}],
        "ldap": {"configSecretRef": {"name": "ldap", "key": "ldap.toml"}},
    }))
    .expect("spec");
    gc.spec.ldap = extra.ldap;
    gc.spec.config = extra.config;
    gc.spec.config_secrets = extra.config_secrets;
    gc.spec.env_from = extra.env_from;
    gc
}

#[test]
fn config_reaches_the_pods_as_env_and_secret_files() {
    let plan = steady_plan(&configured());
    let d = deployment(&plan, &plan.secret_digests);
    let pod = pod(&d);
    let grafana = &pod.containers[0];
    let env: BTreeMap<String, Option<String>> = grafana
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert_eq!(env["GF_SMTP_HOST"].as_deref(), Some("smtp.example.com:587"));
    assert_eq!(
        env["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"].as_deref(),
        Some("$__file{/etc/grafana/secrets/config/auth.generic_oauth/client_secret}")
    );
    assert_eq!(
        env["GF_SMTP_PASSWORD"].as_deref(),
        Some("$__file{/etc/grafana/secrets/config/smtp/password}")
    );
    assert_eq!(env["GF_AUTH_LDAP_ENABLED"].as_deref(), Some("true"));
    assert_eq!(
        env["GF_AUTH_LDAP_CONFIG_FILE"].as_deref(),
        Some("/etc/grafana/secrets/ldap/ldap.toml")
    );
    let read = secret_keys_read_by(&pod);
    assert!(read.contains(&("ldap".into(), "ldap.toml".into())));
    assert!(read.contains(&("oauth".into(), "client-secret".into())));
    assert!(read.contains(&("smtp".into(), "password".into())));
    assert!(
        read.contains(&("more".into(), "*".into())),
        "envFrom Secret"
    );
    let from = grafana.env_from.clone().expect("envFrom");
    assert_eq!(from.len(), 2);
    // Every name appears once: Kubernetes keeps the last of duplicates.
    let names: Vec<_> = grafana.env.iter().flatten().map(|e| &e.name).collect();
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(names.len(), unique.len());
}

/// Rotating a configSecrets key or changing an envFrom object's data rolls the pods; the
/// same data (a label or annotation change) gives the same hash.
#[test]
fn config_objects_feed_the_hash_by_data() {
    let mut plan = steady_plan(&configured());
    plan.secret_digests
        .insert("configmap:extra".into(), "c0".into());
    plan.secret_digests
        .insert("secret:more".into(), "m0".into());
    let hash = |p: &Plan| secrets_annotation(&crate::build::build(p).deployment);
    let before = hash(&plan);
    assert_eq!(before, hash(&plan.clone()), "same data, same hash");
    for id in [
        "oauth/client-secret",
        "smtp/password",
        "ldap/ldap.toml",
        "configmap:extra",
        "secret:more",
    ] {
        let mut changed = plan.clone();
        changed.secret_digests.insert(id.into(), "new".into());
        assert_ne!(before, hash(&changed), "{id} does not roll the pods");
    }
}

/// A Secret the settings read is missing: no plan (the running Deployment stays as it is),
/// and ConfigResolved says which.
#[test]
fn a_missing_config_secret_blocks_the_plan_and_is_reported() {
    let gc = configured();
    let mut gathered = fixtures::gathered();
    gathered.secrets.problems.config = Some("Secret obs/oauth does not exist".into());
    let r = resolve(&gc, &gathered);
    assert!(r.plan.is_none());
    assert!(!r.config.status);
    assert_eq!(r.config.reason, crate::status::Reason::SecretNotFound);
    assert!(r.config.message.contains("obs/oauth"));
    let mut refused = fixtures::gathered();
    refused.secrets.problems.config_refused =
        Some("Secret obs/more (spec.envFrom) sets GF_DATABASE_HOST".into());
    let r = resolve(&gc, &refused);
    assert!(r.plan.is_none());
    assert_eq!(r.config.reason, crate::status::Reason::ManagedVariable);
    let ok = resolve(&gc, &fixtures::gathered());
    assert!(ok.plan.is_some());
    assert_eq!(ok.config.reason, crate::status::Reason::Applied);
}

#[test]
fn under_a_served_sub_path_the_probes_and_the_env_carry_it() {
    let mut plan = fixtures::plan();
    plan.server.serve_from_sub_path = true;
    plan.server.sub_path = "/grafana".into();
    let d = deployment(&plan, &BTreeMap::new());
    let c = &pod(&d).containers[0];
    let path = |p: &Option<Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        path(&c.readiness_probe).as_deref(),
        Some("/grafana/api/health")
    );
    assert_eq!(path(&c.liveness_probe).as_deref(), Some("/grafana/healthz"));
    assert_eq!(path(&c.startup_probe).as_deref(), Some("/grafana/healthz"));
    let env = c.env.as_ref().expect("env");
    let sub_path: Vec<_> = env
        .iter()
        .filter(|e| e.name == "GF_SERVER_SERVE_FROM_SUB_PATH")
        .map(|e| e.value.as_deref())
        .collect();
    assert_eq!(sub_path, vec![Some("true")]);
}
