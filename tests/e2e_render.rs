//! `grafana-ha-operator render`: the real binary against moto (and, with --kubeconfig, the
//! local control plane). Run through `make e2e`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use support::aws::{AwsClients, reset_moto};
use support::kube::repo_file;

const BIN: &str = env!("CARGO_BIN_EXE_grafana-ha-operator");

fn render(file: &str, extra: &[&str]) -> (i32, String, String) {
    // The SDK's endpoint override is the only way the binary reaches the local AWS.
    support::aws::moto_url();
    let out = Command::new(BIN)
        .arg("render")
        .arg("-f")
        .arg(file)
        .args(extra)
        .output()
        .expect("running the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What examples/grafanacluster-postgres-redis-efs.yaml discovers: one tag on three resources.
async fn seed_demo(aws: &AwsClients) -> (String, String) {
    let tags = [("grafana-ha.io/cluster", "demo")];
    aws.create_db_instance("render-db", "postgres", &tags, true)
        .await;
    aws.create_replication_group("render-cache", "redis", &tags, false)
        .await;
    let fs = aws.create_file_system("render-fs", &tags).await;
    aws.create_mount_target(&fs, "us-east-1a").await;
    aws.create_access_point(&fs, "render-ap", &tags).await;
    let db = aws
        .rds
        .describe_db_instances()
        .db_instance_identifier("render-db")
        .send()
        .await
        .expect("describe");
    let host = db.db_instances()[0]
        .endpoint()
        .and_then(|e| e.address())
        .expect("endpoint")
        .to_string();
    (host, fs)
}

fn example() -> String {
    repo_file("examples/grafanacluster-postgres-redis-efs.yaml")
}

/// The example file holds a Secret and the GrafanaCluster; render takes the cluster alone.
fn cluster_only(path: &str) -> String {
    let text = std::fs::read_to_string(path).expect("example");
    let doc = text
        .split("\n---\n")
        .find(|d| d.contains("kind: GrafanaCluster"))
        .expect("a GrafanaCluster document")
        .to_string();
    let out = std::env::temp_dir().join(format!("render-{}.yaml", rand::random::<u32>()));
    std::fs::write(&out, doc).expect("write");
    out.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_prints_the_children_of_the_example() {
    reset_moto();
    let aws = AwsClients::new().await;
    let (host, fs) = seed_demo(&aws).await;
    let file = cluster_only(&example());
    let (code, out, err) = render(&file, &[]);
    assert_eq!(code, 0, "render failed: {err}");
    for kind in [
        "kind: Secret",
        "kind: PersistentVolume\n",
        "kind: PersistentVolumeClaim",
        "kind: Job",
        "kind: Service",
        "kind: PodDisruptionBudget",
        "kind: Deployment",
    ] {
        assert!(out.contains(kind), "no {kind:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!("{host}:5432")),
        "database endpoint wired"
    );
    assert!(
        out.contains(&format!("volumeHandle: {fs}::fsap-")),
        "EFS volume through the access point"
    );
    assert!(out.contains("replicas: 3"));
    // moto's RDS-managed password never appears, in clear or in base64.
    assert!(
        !out.contains("P@55w0rd!") && !out.contains("UEA1NXcwcmQh"),
        "{out}"
    );
    assert!(out.contains("values redacted"));
    assert!(
        out.contains("# database: found postgres render-db"),
        "{out}"
    );
    // Every document parses as Kubernetes YAML.
    for doc in out.split("\n---\n").filter(|d| d.contains("kind:")) {
        let v: serde_yaml::Value = serde_yaml::from_str(doc).expect("valid YAML");
        assert!(v.get("apiVersion").is_some(), "{doc}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_reads_referenced_secrets_through_a_kubeconfig() {
    reset_moto();
    let aws = AwsClients::new().await;
    seed_demo(&aws).await;
    let client = support::kube::client().await;
    let ns = support::kube::namespace(&client, "render").await;
    let (ok, _, err) = support::kube::kubectl(
        &[
            "-n",
            &ns,
            "create",
            "secret",
            "generic",
            "grafana-redis-auth",
            "--from-literal=token=s3cret-token",
        ],
        None,
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(cluster_only(&example())).expect("example");
    let file = std::env::temp_dir().join(format!("render-ns-{}.yaml", rand::random::<u32>()));
    std::fs::write(
        &file,
        text.replace("namespace: grafana", &format!("namespace: {ns}")),
    )
    .expect("write");
    let kubeconfig = std::env::var("KUBECONFIG").expect("KUBECONFIG");
    let (code, out, err) = render(&file.to_string_lossy(), &["--kubeconfig", &kubeconfig]);
    assert_eq!(code, 0, "render failed: {err}");
    assert!(
        out.contains("name: grafana-cache"),
        "the Redis connection Secret is rendered: {out}"
    );
    assert!(!out.contains("s3cret-token"), "token redacted");
    assert!(out.contains("grafana-ha.io/secrets-hash"));
    assert!(!out.contains("without --kubeconfig"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_fails_clearly_when_discovery_or_validation_fails() {
    reset_moto();
    let file = cluster_only(&example());
    let (code, _, err) = render(&file, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("NotFound") && err.contains("grafana-ha.io/cluster=demo"),
        "{err}"
    );

    let text = std::fs::read_to_string(&file).expect("file");
    let invalid = std::env::temp_dir().join(format!("render-bad-{}.yaml", rand::random::<u32>()));
    std::fs::write(&invalid, text.replace("replicas: 3", "replicas: 1001")).expect("write");
    let (code, _, err) = render(&invalid.to_string_lossy(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("spec.replicas"), "{err}");
}
