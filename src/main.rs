use kube::CustomResourceExt;
fn main() {
    print!(
        "{}",
        serde_yaml::to_string(&grafana_ha_operator::api::GrafanaCluster::crd()).unwrap()
    );
}
