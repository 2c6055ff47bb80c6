use super::*;
use crate::fixtures;

fn value(s: &Secret, key: &str) -> String {
    String::from_utf8(s.data.as_ref().expect("data")[key].0.clone()).expect("utf8")
}

#[test]
fn managed_credentials_are_copied_with_owner() {
    let s = db_credentials(&fixtures::plan()).expect("copy");
    assert_eq!(s.metadata.name.as_deref(), Some("grafana-db-credentials"));
    assert_eq!(value(&s, "password"), "P@55w0rd!");
    assert_eq!(value(&s, "username"), "grafana");
    let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(owner.uid, "uid-1");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(
        s.metadata.annotations.as_ref().expect("ann")[SOURCE_SECRET_ANNOTATION],
        fixtures::MANAGED_SECRET_ARN
    );
}

#[test]
fn no_copy_when_secrets_manager_was_not_read() {
    let mut plan = fixtures::plan();
    if let DatabaseCredentials::RdsManaged { current, .. } = &mut plan.database.credentials {
        *current = None;
    }
    assert!(db_credentials(&plan).is_none());
}

#[test]
fn redis_connstr_carries_token_and_tls() {
    let token = SecretValue::new("tok");
    assert_eq!(
        redis_connstr("h", 6379, Some(&token), true),
        "addr=h:6379,password=tok,db=0,pool_size=100,ssl=true"
    );
    assert_eq!(
        redis_connstr("h", 6380, None, false),
        "addr=h:6380,db=0,pool_size=100,ssl=false"
    );
}

#[test]
fn cache_secret_holds_the_token_or_a_placeholder() {
    let plan = fixtures::plan();
    let s = cache_connection(&plan).expect("secret");
    assert!(value(&s, "connstr").contains("password=tok"));
    assert!(value(&s, "connstr").contains("ssl=true"));
    assert_eq!(
        value(&s, "password"),
        "tok",
        "the trimmed token for alerting"
    );
    let mut unread = fixtures::gathered();
    unread.secrets.cache_auth_token = None;
    let plan = crate::resolve::resolve(&fixtures::article(), &unread)
        .plan
        .expect("plan");
    let s = cache_connection(&plan).expect("secret");
    assert!(value(&s, "connstr").contains("password=<redacted>"));
    // A placeholder never enters the pod hash.
    let digests = pod_digests(&plan, &[], &[s]);
    assert!(!digests.contains_key("grafana-cache/connstr"));
}

#[test]
fn redaction_keeps_the_address_and_hides_the_password() {
    let s = redacted(cache_connection(&fixtures::plan()).expect("secret"));
    assert_eq!(
        s.string_data.as_ref().expect("shown")["connstr"],
        "addr=grafana-cache.cache.local:6379,password=<redacted>,db=0,pool_size=100,ssl=true"
    );
    let copy = redacted(db_credentials(&fixtures::plan()).expect("copy"));
    assert_eq!(value(&copy, "password"), "");
    assert_eq!(value(&copy, "username"), "");
}

#[test]
fn signing_key_outlives_the_cluster_and_admin_does_not() {
    let generated = generated(&fixtures::plan());
    let names: Vec<_> = generated
        .iter()
        .map(|s| s.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["grafana-admin", "grafana-secret-key"]);
    assert!(generated[1].metadata.owner_references.is_none());
    assert_eq!(value(&generated[1], "secret_key"), "generated-signing-key");
    assert!(generated[0].metadata.owner_references.is_some());
}

#[test]
fn generated_digests_enter_the_hash_only_when_created_now() {
    let plan = fixtures::plan();
    let generated = generated(&plan);
    let digests = pod_digests(&plan, &generated, &[]);
    assert!(digests.contains_key("grafana-secret-key/secret_key"));
    let mut existing = fixtures::gathered();
    existing.secrets.existing = fixtures::all_operator_secrets();
    let plan = crate::resolve::resolve(&fixtures::article(), &existing)
        .plan
        .expect("plan");
    let digests = pod_digests(&plan, &super::generated(&plan), &[]);
    assert!(!digests.contains_key("grafana-secret-key/secret_key"));
}

#[test]
fn digests_change_with_data_only() {
    let plan = fixtures::plan();
    let a = cache_connection(&plan).expect("a");
    let mut b = a.clone();
    b.metadata.annotations = Some(BTreeMap::from([("x".to_string(), "y".to_string())]));
    assert_eq!(digests_of(&a), digests_of(&b));
    let mut other = fixtures::gathered();
    other.secrets.cache_auth_token = Some(SecretValue::new("two"));
    let plan = crate::resolve::resolve(&fixtures::article(), &other)
        .plan
        .expect("plan");
    let c = cache_connection(&plan).expect("c");
    assert_ne!(digests_of(&a), digests_of(&c));
}
