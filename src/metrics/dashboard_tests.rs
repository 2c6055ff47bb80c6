//! deploy/dashboards/grafana-ha-operator.json queries only metrics the operator exports: a
//! renamed or removed metric fails here instead of leaving an empty panel.

use std::collections::BTreeSet;

use super::Metrics;

const PREFIX: &str = "grafana_ha_operator_";

/// Metrics with one sample in every family: a labelled family is encoded only once it has
/// a series. A family the dashboard uses but this does not touch fails the test (the safe
/// direction: add it here).
fn populated() -> Metrics {
    let m = Metrics::new();
    m.reconcile_started();
    m.reconcile_finished(std::time::Duration::from_millis(5));
    m.reconcile_failed("aws");
    m.aws_call("rds", "DescribeDBInstances", super::AwsOutcome::Success);
    m.discovery_cache("rds", true);
    m.apply("Deployment", "unchanged");
    m.optional_api_check("httproutes.gateway.networking.k8s.io", "served");
    m.set_leader(true);
    m
}

/// Every sample name the registry produces: counters as `_total`, histograms as
/// `_bucket`, `_sum` and `_count`, gauges as they are, from the `# TYPE` lines.
fn exported_names() -> BTreeSet<String> {
    let text = populated().render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if (words.next(), words.next()) != (Some("#"), Some("TYPE")) {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The operator's metric names a PromQL expression mentions.
fn mentioned(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find(PREFIX) {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every `expr` and templating `query`/`definition` string in the dashboard.
fn queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

#[test]
fn every_metric_in_the_dashboard_is_exported() {
    let dashboard: serde_json::Value = serde_json::from_str(include_str!(
        "../../deploy/dashboards/grafana-ha-operator.json"
    ))
    .expect("the dashboard is JSON");
    let exported = exported_names();
    assert!(
        exported.contains("grafana_ha_operator_reconciles_total"),
        "the exposition lists registered metrics: {exported:?}"
    );
    let mut exprs = Vec::new();
    queries(&dashboard, &mut exprs);
    let used: BTreeSet<String> = exprs.iter().flat_map(|e| mentioned(e)).collect();
    assert!(used.len() >= 8, "only {used:?} found in the dashboard");
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the operator does not export: {unknown:?} (exported: {exported:?})"
    );
}

#[test]
fn names_are_cut_at_the_selector() {
    assert_eq!(
        mentioned(
            "sum(rate(grafana_ha_operator_applies_total{job=~\"$job\"}[5m])) / grafana_ha_operator_leader"
        ),
        vec![
            "grafana_ha_operator_applies_total".to_string(),
            "grafana_ha_operator_leader".to_string()
        ]
    );
}
