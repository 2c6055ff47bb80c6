//! Pure builders: from the [`Plan`] to the Kubernetes objects the operator applies. No
//! client, no I/O, and never the spec: every decision is in the plan (a unit test keeps
//! this directory from naming the spec type). One file per kind of child.

pub mod access;
pub mod children;
pub mod datasources;
pub mod deployment;
pub mod env;
pub mod meta;
pub mod pdb;
pub mod plugins;
pub mod pod;
pub mod secret_files;
pub mod secrets;
pub mod services;
pub mod storage;
pub mod telemetry;

pub use children::{Child, ChildKind, Children, ExtraChildren};

use crate::resolve::Plan;

/// Builds every child of the planned cluster.
pub fn build(plan: &Plan) -> Children {
    let generated = secrets::generated(plan);
    let secrets: Vec<_> = [
        secrets::db_credentials(plan),
        secrets::cache_connection(plan),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut digests = secrets::pod_digests(plan, &generated, &secrets);
    // Grafana reads the data source file only at startup: its data rolls the pods too.
    digests.extend(datasources::digest(plan));
    Children {
        service_account: access::service_account(plan),
        volume: storage::volume(plan),
        claim: storage::claim(plan),
        installer: plugins::job(plan),
        services: [Some(services::http(plan)), services::alerting(plan)]
            .into_iter()
            .flatten()
            .collect(),
        ingress: access::ingress(plan),
        disruption_budget: pdb::pdb(plan),
        deployment: deployment::deployment(plan, &digests),
        generated,
        secrets,
        config_maps: datasources::config_map(plan).into_iter().collect(),
        extras: ExtraChildren {
            http_route: telemetry::http_route(plan),
            service_monitor: telemetry::service_monitor(plan),
            network_policies: telemetry::network_policies(plan),
        },
    }
}

#[cfg(test)]
mod tests {
    /// Builders see only the plan: no file under src/build/ names the spec type.
    #[test]
    fn builders_never_name_the_spec() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/build");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).expect("src/build") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // The needle is split so this file does not trip itself.
            let needle = ["GrafanaCluster", "Spec"].concat();
            assert!(
                !text.contains(&needle),
                "{} names the spec: builders take the Plan only",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} files checked");
    }
}
