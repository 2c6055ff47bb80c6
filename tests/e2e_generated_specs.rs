//! A sample of the property tests' generated specs (tests/support/specgen.rs), on the real
//! kube-apiserver (issue 12): for each spec that `pipeline::validate` accepts and that
//! builds, the GrafanaCluster itself and every child are sent as a server-side dry run
//! (`kubectl apply --server-side --dry-run=server`), and all are accepted. The cases come
//! from a fixed seed, so CI sees the same sample every run.
//!
//! Run alone: `testbed/with-testbed.sh cargo test --test e2e_generated_specs`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Instant;

use grafana_ha_operator::build::Child;
use grafana_ha_operator::pipeline;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use support::kube::{client, install_crd, kubectl, namespace};
use support::specgen;

/// How many built specs are sent (each is one kubectl call of a few hundred ms).
const SAMPLE: usize = 24;

/// The child as JSON; None for kinds of optional APIs whose CRDs this bed does not install
/// (tests/e2e_telemetry.rs sends those).
fn child_json(child: &Child) -> Option<Value> {
    // Exhaustive: a new kind of child is sent too.
    let v = match child {
        Child::GeneratedSecret(o) | Child::Secret(o) => serde_json::to_value(o),
        Child::ConfigMap(o) => serde_json::to_value(o),
        Child::ServiceAccount(o) => serde_json::to_value(o),
        Child::Volume(o) => serde_json::to_value(o),
        Child::Claim(o) => serde_json::to_value(o),
        Child::InstallerJob(o) => serde_json::to_value(o),
        Child::Service(o) => serde_json::to_value(o),
        Child::Ingress(o) => serde_json::to_value(o),
        Child::DisruptionBudget(o) => serde_json::to_value(o),
        Child::Deployment(o) => serde_json::to_value(o),
        Child::NetworkPolicy(o) => serde_json::to_value(o),
        Child::HttpRoute(_) | Child::ServiceMonitor(_) => return None,
    };
    Some(v.expect("a child serializes"))
}

fn dry_run_apply(ns: &str, objects: Vec<Value>) -> Result<(), String> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let (ok, out, err) = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=grafana-ha-operator",
            "-n",
            ns,
            "-f",
            "-",
        ],
        Some(&list.to_string()),
    );
    if ok {
        Ok(())
    } else {
        Err(format!("{err}{out}"))
    }
}

#[tokio::test]
async fn a_sample_of_generated_specs_and_their_children_is_accepted_by_the_apiserver() {
    let started = Instant::now();
    let client = client().await;
    install_crd(&client).await;
    let ns = namespace(&client, "generated").await;

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = specgen::case();
    let (mut sent, mut drawn, mut children_sent) = (0, 0, 0);
    let mut failures = Vec::new();
    while sent < SAMPLE && drawn < 2000 {
        drawn += 1;
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let Some(gc) = case.cluster() else { continue };
        if pipeline::validate(&gc).is_some() {
            continue;
        }
        let Some(children) = pipeline::plan(&gc, &case.gathered()).children else {
            continue;
        };
        sent += 1;
        let mut objects = vec![json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": "grafana"},
            "spec": case.spec,
        })];
        for child in children.into_ordered() {
            let Some(mut v) = child_json(&child) else {
                continue;
            };
            if v["metadata"]["namespace"].is_string() {
                v["metadata"]["namespace"] = json!(ns);
            }
            objects.push(v);
        }
        children_sent += objects.len() - 1;
        if let Err(e) = dry_run_apply(&ns, objects) {
            failures.push(format!("spec {}\n  refused: {e}", case.spec));
        }
    }
    assert_eq!(
        sent, SAMPLE,
        "the generator built too few specs in {drawn} draws"
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} generated specs (accepted by pipeline::validate) or their children were \
         refused by the apiserver:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "{sent} specs ({drawn} drawn), {children_sent} children, all accepted in {:?}",
        started.elapsed()
    );
}
