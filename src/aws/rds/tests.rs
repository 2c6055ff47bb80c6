use super::*;
use aws_sdk_rds::types::{Endpoint, MasterUserSecret};
use pretty_assertions::assert_eq;

const ACCOUNT: &str = "arn:aws:rds:us-east-1:123456789012";

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn selector(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn grafana() -> Tags {
    selector(&[("app", "grafana")])
}

fn instance(id: &str, engine: &str, tag_pairs: &[(&str, &str)]) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_arn(format!("{ACCOUNT}:db:{id}"))
        .engine(engine)
        .db_instance_status("available")
        .endpoint(
            Endpoint::builder()
                .address(format!("{id}.abc.us-east-1.rds.amazonaws.com"))
                .port(5432)
                .build(),
        )
        .db_name("grafana")
        .master_username("admin")
        .set_tag_list(Some(tags(tag_pairs)))
        .build()
}

fn cluster(id: &str, engine: &str, tag_pairs: &[(&str, &str)]) -> DbCluster {
    DbCluster::builder()
        .db_cluster_identifier(id)
        .db_cluster_arn(format!("{ACCOUNT}:cluster:{id}"))
        .engine(engine)
        .status("available")
        .endpoint(format!("{id}.cluster-abc.us-east-1.rds.amazonaws.com"))
        .reader_endpoint(format!("{id}.cluster-ro-abc.us-east-1.rds.amazonaws.com"))
        .port(3306)
        .database_name("grafana")
        .master_username("admin")
        .master_user_secret(
            MasterUserSecret::builder()
                .secret_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-x")
                .build(),
        )
        .set_tag_list(Some(tags(tag_pairs)))
        .build()
}

fn member(id: &str, cluster_id: &str, engine: &str, tag_pairs: &[(&str, &str)]) -> DbInstance {
    let mut db = instance(id, engine, tag_pairs);
    db.db_cluster_identifier = Some(cluster_id.to_string());
    db
}

#[test]
fn single_match_is_found() {
    let inv = inventory(
        &[
            instance("grafana-db", "postgres", &[("app", "grafana")]),
            instance("other-db", "postgres", &[("app", "other")]),
        ],
        &[],
    );
    let Lookup::Found(facts) = select_database(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(
        facts,
        DatabaseFacts {
            arn: format!("{ACCOUNT}:db:grafana-db"),
            identifier: "grafana-db".into(),
            kind: DatabaseKind::Instance,
            rds_engine: "postgres".into(),
            engine: DatabaseEngine::Postgres,
            host: "grafana-db.abc.us-east-1.rds.amazonaws.com".into(),
            port: 5432,
            db_name: Some("grafana".into()),
            master_username: Some("admin".into()),
            managed_secret_arn: None,
            instance_class: None,
            single_zone: None,
        }
    );
}

#[test]
fn no_match_counts_candidates() {
    let inv = inventory(
        &[instance("a", "postgres", &[("app", "other")])],
        &[cluster("c", "aurora-mysql", &[("app", "other")])],
    );
    assert_eq!(
        select_database(&inv, &grafana()),
        Lookup::NotFound { candidates: 2 }
    );
}

#[test]
fn every_selector_tag_must_be_carried() {
    let inv = inventory(
        &[instance(
            "a",
            "postgres",
            &[("app", "grafana"), ("env", "dev")],
        )],
        &[],
    );
    let lookup = select_database(&inv, &selector(&[("app", "grafana"), ("env", "prod")]));
    assert_eq!(lookup, Lookup::NotFound { candidates: 1 });
}

#[test]
fn empty_selector_matches_nothing() {
    let inv = inventory(&[instance("a", "postgres", &[("app", "grafana")])], &[]);
    assert_eq!(
        select_database(&inv, &Tags::new()),
        Lookup::NotFound { candidates: 1 }
    );
}

#[test]
fn several_matches_are_ambiguous_with_sorted_arns() {
    let inv = inventory(
        &[
            instance("zeta", "postgres", &[("app", "grafana")]),
            instance("alpha", "mysql", &[("app", "grafana")]),
        ],
        &[cluster("mid", "aurora-postgresql", &[("app", "grafana")])],
    );
    assert_eq!(
        select_database(&inv, &grafana()),
        Lookup::Ambiguous {
            arns: vec![
                format!("{ACCOUNT}:cluster:mid"),
                format!("{ACCOUNT}:db:alpha"),
                format!("{ACCOUNT}:db:zeta"),
            ]
        }
    );
}

#[test]
fn database_being_created_is_not_ready() {
    let mut db = instance("new", "postgres", &[("app", "grafana")]);
    db.endpoint = None;
    db.db_instance_status = Some("creating".into());
    let inv = inventory(&[db], &[]);
    assert_eq!(
        select_database(&inv, &grafana()),
        Lookup::NotReady {
            arn: format!("{ACCOUNT}:db:new"),
            state: "creating".into()
        }
    );
}

#[test]
fn empty_endpoint_address_is_not_ready() {
    let mut db = instance("new", "postgres", &[("app", "grafana")]);
    db.endpoint = Some(Endpoint::builder().address("").build());
    db.db_instance_status = None;
    let inv = inventory(&[db], &[]);
    assert!(matches!(
        select_database(&inv, &grafana()),
        Lookup::NotReady { state, .. } if state == "creating"
    ));
}

#[test]
fn stopped_database_is_not_ready() {
    let mut db = instance("sleepy", "postgres", &[("app", "grafana")]);
    db.db_instance_status = Some("stopped".into());
    let inv = inventory(&[db], &[]);
    assert!(matches!(
        select_database(&inv, &grafana()),
        Lookup::NotReady { state, .. } if state == "stopped"
    ));
}

#[test]
fn aurora_member_resolves_to_cluster_writer_endpoint() {
    let inv = inventory(
        &[member(
            "aurora-1",
            "aurora",
            "aurora-mysql",
            &[("app", "grafana")],
        )],
        &[cluster("aurora", "aurora-mysql", &[("app", "untagged")])],
    );
    let Lookup::Found(facts) = select_database(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(facts.kind, DatabaseKind::Cluster);
    assert_eq!(facts.arn, format!("{ACCOUNT}:cluster:aurora"));
    assert_eq!(facts.host, "aurora.cluster-abc.us-east-1.rds.amazonaws.com");
    assert_eq!(facts.port, 3306);
    assert_eq!(facts.engine, DatabaseEngine::Mysql);
    assert_eq!(
        facts.managed_secret_arn.as_deref(),
        Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-x")
    );
}

#[test]
fn cluster_and_members_matching_count_once() {
    let inv = inventory(
        &[
            member(
                "aurora-1",
                "aurora",
                "aurora-postgresql",
                &[("app", "grafana")],
            ),
            member(
                "aurora-2",
                "aurora",
                "aurora-postgresql",
                &[("app", "grafana")],
            ),
        ],
        &[cluster(
            "aurora",
            "aurora-postgresql",
            &[("app", "grafana")],
        )],
    );
    let Lookup::Found(facts) = select_database(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(facts.identifier, "aurora");
    assert_eq!(facts.engine, DatabaseEngine::Postgres);
}

#[test]
fn member_of_unlisted_cluster_is_not_ready() {
    let inv = inventory(
        &[
            member("m1", "gone", "aurora-mysql", &[("app", "grafana")]),
            member("m2", "gone", "aurora-mysql", &[("app", "grafana")]),
        ],
        &[],
    );
    assert!(matches!(
        select_database(&inv, &grafana()),
        Lookup::NotReady { arn, .. } if arn == format!("{ACCOUNT}:cluster:gone")
    ));
}

#[test]
fn non_sql_engines_are_ignored() {
    let inv = inventory(
        &[
            instance("graph", "neptune", &[("app", "grafana")]),
            instance("docs", "docdb", &[("app", "grafana")]),
            instance("ora", "oracle-ee", &[("app", "grafana")]),
            instance("sql", "sqlserver-se", &[("app", "grafana")]),
            instance("pg", "postgres", &[("app", "grafana")]),
        ],
        &[
            cluster("graph-cluster", "neptune", &[("app", "grafana")]),
            cluster("docs-cluster", "docdb", &[("app", "grafana")]),
        ],
    );
    assert_eq!(inv.instances.len(), 1);
    assert!(inv.clusters.is_empty());
    assert!(matches!(
        select_database(&inv, &grafana()),
        Lookup::Found(f) if f.identifier == "pg"
    ));
}

#[test]
fn a_selector_matching_only_other_engines_names_one() {
    let inv = inventory(
        &[
            instance("ora", "oracle-ee", &[("app", "grafana")]),
            instance("pg", "postgres", &[("app", "other")]),
        ],
        &[cluster("graph-cluster", "neptune", &[("app", "grafana")])],
    );
    match select_database(&inv, &grafana()) {
        Lookup::Unsupported { arn, reason } => {
            assert_eq!(arn, format!("{ACCOUNT}:cluster:graph-cluster"));
            assert!(reason.contains("runs neptune"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    // Nothing tagged at all: still NotFound.
    let none = Tags::from([("app".to_string(), "none".to_string())]);
    assert!(matches!(
        select_database(&inv, &none),
        Lookup::NotFound { .. }
    ));
}

#[test]
fn engines_map_to_grafana_database_types() {
    assert_eq!(sql_engine("postgres"), Some(DatabaseEngine::Postgres));
    assert_eq!(
        sql_engine("aurora-postgresql"),
        Some(DatabaseEngine::Postgres)
    );
    assert_eq!(sql_engine("mysql"), Some(DatabaseEngine::Mysql));
    assert_eq!(sql_engine("mariadb"), Some(DatabaseEngine::Mysql));
    assert_eq!(sql_engine("aurora-mysql"), Some(DatabaseEngine::Mysql));
    assert_eq!(sql_engine("aurora"), Some(DatabaseEngine::Mysql));
    assert_eq!(sql_engine("neptune"), None);
    assert_eq!(sql_engine("docdb"), None);
}

#[test]
fn mariadb_is_found_as_mysql() {
    let inv = inventory(&[instance("maria", "mariadb", &[("app", "grafana")])], &[]);
    let Lookup::Found(facts) = select_database(&inv, &grafana()) else {
        panic!("expected Found");
    };
    assert_eq!(facts.engine, DatabaseEngine::Mysql);
    assert_eq!(facts.rds_engine, "mariadb");
}

#[test]
fn empty_db_name_is_absent_and_secret_arn_is_read() {
    let mut db = instance("pg", "postgres", &[("app", "grafana")]);
    db.db_name = Some(String::new());
    db.master_user_secret = Some(
        MasterUserSecret::builder()
            .secret_arn("arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1")
            .build(),
    );
    let entry = instance_entry(&db).unwrap();
    assert_eq!(entry.db_name, None);
    assert_eq!(
        entry.managed_secret_arn.as_deref(),
        Some("arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1")
    );
}
