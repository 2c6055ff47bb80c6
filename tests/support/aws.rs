//! Helpers for tests that run against the local AWS (moto) and the fault proxy in front of
//! it. The test bed (`make e2e`, `testbed/with-testbed.sh`) sets the environment:
//!
//! - `MOTO_URL`: moto's base URL (`POST $MOTO_URL/moto-api/reset` clears its state);
//! - `AWS_ENDPOINT_URL`: where the SDK sends calls (moto);
//! - `FAULT_PROXY_URL`: the fault-injecting proxy in front of moto;
//! - `AWS_REGION`, dummy `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
//!
//! Without them the tests panic: they must never pass silently without a server.
//!
//! Only std is used for the few plain HTTP calls (moto's reset, the proxy's admin API and
//! EC2's DescribeSubnets), so no HTTP client or EC2 SDK is needed as a dev-dependency.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use grafana_ha_operator::metrics::{AwsOutcome, Metrics};

/// The region the test bed uses.
pub const REGION: &str = "us-east-1";

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the local AWS (moto) and the fault proxy; \
             run them through `make e2e` (testbed/with-testbed.sh sets MOTO_URL, \
             AWS_ENDPOINT_URL and FAULT_PROXY_URL)"
        ),
    }
}

/// moto's base URL.
pub fn moto_url() -> String {
    let url = required_env("MOTO_URL");
    // Discovery::from_env reads it: without it the SDK would call the real AWS.
    required_env("AWS_ENDPOINT_URL");
    url.trim_end_matches('/').to_string()
}

/// The fault proxy's base URL.
pub fn fault_proxy_url() -> String {
    required_env("FAULT_PROXY_URL")
        .trim_end_matches('/')
        .to_string()
}

/// Clears every resource moto holds.
pub fn reset_moto() {
    let (status, body) = http("POST", &format!("{}/moto-api/reset", moto_url()), &[], "");
    assert_eq!(status, 200, "moto reset failed: {body}");
}

/// Sets the proxy's fault, e.g. `{"mode":"throttle","count":2,"service":"rds"}`.
pub fn set_fault(spec: &str) {
    let url = format!("{}/__fault", fault_proxy_url());
    let (status, body) = http("POST", &url, &[("Content-Type", "application/json")], spec);
    assert_eq!(status, 200, "setting fault {spec} failed: {body}");
}

/// Turns every fault off and clears the proxy's counters.
pub fn clear_fault() {
    let url = format!("{}/__fault", fault_proxy_url());
    let (status, body) = http("DELETE", &url, &[], "");
    assert_eq!(status, 200, "clearing faults failed: {body}");
}

/// The proxy's state and counters as JSON.
pub fn fault_state() -> serde_json::Value {
    let url = format!("{}/__fault", fault_proxy_url());
    let (status, body) = http("GET", &url, &[], "");
    assert_eq!(status, 200, "reading fault state failed: {body}");
    serde_json::from_str(&body).expect("fault state is JSON")
}

/// How many faults the proxy injected for a SigV4 service name (e.g. "rds").
pub fn faults_injected(service: &str) -> u64 {
    fault_state()["counters"][service]["faults"]
        .as_u64()
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 client over std: (status, body).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported: {url}"));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)
        .unwrap_or_else(|e| panic!("cannot connect to {authority}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set read timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP response from {url}: {head}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let payload = if chunked {
        dechunk(payload)
    } else {
        payload.to_string()
    };
    (status, payload)
}

fn dechunk(mut data: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, rest)) = data.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        data = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The SDK config for creating test resources: straight at moto.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(aws_config::Region::new(REGION))
        .load()
        .await
}

/// Clients for creating test resources in moto.
pub struct AwsClients {
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub efs: aws_sdk_efs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    pub async fn new() -> Self {
        let config = sdk_config().await;
        AwsClients {
            rds: aws_sdk_rds::Client::new(&config),
            elasticache: aws_sdk_elasticache::Client::new(&config),
            efs: aws_sdk_efs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
        }
    }

    /// A DB instance (not in a cluster). Returns its ARN.
    pub async fn create_db_instance(
        &self,
        id: &str,
        engine: &str,
        tags: &[(&str, &str)],
        managed_password: bool,
    ) -> String {
        let mut request = self
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_instance_class("db.t3.micro")
            .engine(engine)
            .set_engine_version(engine_version_for_moto(engine))
            .allocated_storage(20)
            .db_name("grafana")
            .master_username("admin")
            .set_tags(Some(rds_tags(tags)));
        request = if managed_password {
            request.manage_master_user_password(true)
        } else {
            request.master_user_password("not-a-real-password")
        };
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_db_instance {id}: {e:?}"));
        out.db_instance()
            .and_then(|db| db.db_instance_arn())
            .expect("created instance has an ARN")
            .to_string()
    }

    /// An Aurora (or Multi-AZ) cluster. Returns its ARN.
    pub async fn create_db_cluster(&self, id: &str, engine: &str, tags: &[(&str, &str)]) -> String {
        let out = self
            .rds
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine(engine)
            .database_name("grafana")
            .master_username("admin")
            .manage_master_user_password(true)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_db_cluster {id}: {e:?}"));
        out.db_cluster()
            .and_then(|c| c.db_cluster_arn())
            .expect("created cluster has an ARN")
            .to_string()
    }

    /// A member instance of a cluster. Returns its ARN.
    pub async fn create_cluster_member(
        &self,
        id: &str,
        cluster_id: &str,
        engine: &str,
        tags: &[(&str, &str)],
    ) -> String {
        let out = self
            .rds
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster_id)
            .db_instance_class("db.r6g.large")
            .engine(engine)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_db_instance {id} in {cluster_id}: {e:?}"));
        out.db_instance()
            .and_then(|db| db.db_instance_arn())
            .expect("created member has an ARN")
            .to_string()
    }

    /// A Redis/Valkey replication group (cluster mode disabled unless `cluster_mode`).
    pub async fn create_replication_group(
        &self,
        id: &str,
        engine: &str,
        tags: &[(&str, &str)],
        cluster_mode: bool,
    ) -> String {
        let mut request = self
            .elasticache
            .create_replication_group()
            .replication_group_id(id)
            .replication_group_description("grafana remote cache")
            .engine(engine)
            .cache_node_type("cache.t3.micro")
            .transit_encryption_enabled(true)
            .set_tags(Some(elasticache_tags(tags)));
        request = if cluster_mode {
            request
                .cluster_mode(aws_sdk_elasticache::types::ClusterMode::Enabled)
                .num_node_groups(2)
        } else {
            request.num_cache_clusters(2)
        };
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_replication_group {id}: {e:?}"));
        out.replication_group()
            .and_then(|g| g.arn())
            .expect("created replication group has an ARN")
            .to_string()
    }

    /// A Memcached cache cluster.
    pub async fn create_memcached(&self, id: &str, tags: &[(&str, &str)]) -> String {
        let out = self
            .elasticache
            .create_cache_cluster()
            .cache_cluster_id(id)
            .engine("memcached")
            .cache_node_type("cache.t3.micro")
            .num_cache_nodes(2)
            .set_tags(Some(elasticache_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_cache_cluster {id}: {e:?}"));
        out.cache_cluster()
            .and_then(|c| c.arn())
            .expect("created cache cluster has an ARN")
            .to_string()
    }

    /// An EFS file system. Returns its id.
    pub async fn create_file_system(&self, token: &str, tags: &[(&str, &str)]) -> String {
        let out = self
            .efs
            .create_file_system()
            .creation_token(token)
            .set_tags(Some(efs_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_file_system {token}: {e:?}"));
        out.file_system_id().to_string()
    }

    /// A mount target in the default subnet of `zone` (e.g. us-east-1a).
    pub async fn create_mount_target(&self, file_system_id: &str, zone: &str) {
        let subnets = default_subnets();
        let subnet = subnets
            .get(zone)
            .unwrap_or_else(|| panic!("moto has no default subnet in {zone}: {subnets:?}"));
        self.efs
            .create_mount_target()
            .file_system_id(file_system_id)
            .subnet_id(subnet)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_mount_target {file_system_id} {zone}: {e:?}"));
    }

    /// An access point on a file system. Returns its id.
    pub async fn create_access_point(
        &self,
        file_system_id: &str,
        token: &str,
        tags: &[(&str, &str)],
    ) -> String {
        let out = self
            .efs
            .create_access_point()
            .client_token(token)
            .file_system_id(file_system_id)
            .set_tags(Some(efs_tags(tags)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("create_access_point on {file_system_id}: {e:?}"));
        out.access_point_id()
            .expect("created access point has an id")
            .to_string()
    }
}

impl AwsClients {
    /// Every access point on a file system, as EFS describes it.
    pub async fn access_points(
        &self,
        file_system_id: &str,
    ) -> Vec<aws_sdk_efs::types::AccessPointDescription> {
        self.efs
            .describe_access_points()
            .file_system_id(file_system_id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe_access_points {file_system_id}: {e:?}"))
            .access_points()
            .to_vec()
    }
}

/// moto 5.2.5 has no default engine version for MariaDB (KeyError on create): name one.
fn engine_version_for_moto(engine: &str) -> Option<String> {
    (engine == "mariadb").then(|| "10.6".to_string())
}

fn rds_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_rds::types::Tag> {
    tags.iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect()
}

fn elasticache_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_elasticache::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_elasticache::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
        })
        .collect()
}

fn efs_tags(tags: &[(&str, &str)]) -> Vec<aws_sdk_efs::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_efs::types::Tag::builder()
                .key(*k)
                .value(*v)
                .build()
                .expect("EFS tag has key and value")
        })
        .collect()
}

/// moto's default subnets by availability zone, read with EC2's query API over plain HTTP
/// (moto routes by the SigV4 credential scope and does not check the signature).
pub fn default_subnets() -> BTreeMap<String, String> {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/ec2/aws4_request, \
         SignedHeaders=host, Signature=0"
    );
    let (status, body) = http(
        "POST",
        &format!("{}/", moto_url()),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "Action=DescribeSubnets&Version=2016-11-15&Filter.1.Name=default-for-az&Filter.1.Value.1=true",
    );
    assert_eq!(status, 200, "DescribeSubnets failed: {body}");
    body.split("<item>")
        .skip(1)
        .filter_map(|item| {
            Some((
                xml_text(item, "availabilityZone")?,
                xml_text(item, "subnetId")?,
            ))
        })
        .collect()
}

fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

/// A selector from pairs.
pub fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Calls of one operation with one outcome, read from the Prometheus exposition (the
/// metrics API only sums over operations).
pub fn calls(metrics: &Metrics, service: &str, operation: &str, outcome: AwsOutcome) -> u64 {
    let prefix = format!(
        "grafana_ha_operator_aws_calls_total{{service=\"{service}\",operation=\"{operation}\",outcome=\"{}\"}} ",
        outcome.as_str()
    );
    metric_value(metrics, &prefix)
}

/// Discovery cache lookups of one service with one result ("hit" or "miss").
pub fn cache_lookups(metrics: &Metrics, service: &str, result: &str) -> u64 {
    let prefix = format!(
        "grafana_ha_operator_discovery_cache_lookups_total{{service=\"{service}\",result=\"{result}\"}} "
    );
    metric_value(metrics, &prefix)
}

fn metric_value(metrics: &Metrics, prefix: &str) -> u64 {
    metrics
        .render()
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map(|v| v.trim().parse().expect("counter value"))
        .unwrap_or(0)
}
