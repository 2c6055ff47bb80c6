//! The wiring, proven with real servers: AWS discovery -> operator -> pod env -> a real
//! connection, unbroken. Run through `make e2e` (the test bed starts PostgreSQL, MariaDB,
//! Redis with TLS and AUTH, and Memcached on loopback; see testbed/README.md).
//!
//! Each case seeds moto with the RDS/ElastiCache/EFS resources a GrafanaCluster selects by
//! tag, and maps their endpoints to the bed's real servers with the fault proxy's endpoint
//! map (`POST /__endpoints`; moto cannot set a host or port), which is where the in-process
//! operator sends its AWS calls. The operator discovers them, writes its Secrets and the
//! Deployment; the test dumps `kubectl get deployment,secret,configmap -o json` and hands
//! it to the wiring probe (testbed/probe, Grafana's own client libraries), which builds
//! each replica's environment and files as the kubelet would, applies Grafana's env
//! overrides (only to keys of the pinned Grafana's defaults.ini, src/settings/) and
//! `$__file{}`/`${}` expansion, and connects as Grafana does at start. Every probe check
//! must pass. Each case also checks the Deployment against the wiring contract
//! (Secrets as files under /etc/grafana/secrets read through `$__file{}`, `[$(POD_IP)]:9094`,
//! `ha_label` `<ns>/<name>` and a 2m reconnect timeout, disjoint cache and alerting
//! prefixes, the trimmed Redis AUTH token in `<name>-cache`, a readable CA file for MySQL
//! TLS, a read-only plugins mount with the plugin catalog off).
//!
//! The cases, and what each proves:
//! - `article_postgres_redis_gossip`: the article's setup, 3 replicas. The RDS-managed
//!   secret (Secrets Manager) holds the real Postgres user's password, so the password the
//!   operator copies is the one the server checks; Redis with TLS (verified against the
//!   image's trust store) and AUTH (given with a trailing newline, as `--from-file` makes
//!   it); each replica logs in over TLS, replica 1's cache key is read by the others, and
//!   the 3 gossip peers form one labelled cluster.
//! - `mysql_memcached_user_secret`: MariaDB with the default `skip-verify` and no CA bundle
//!   (Grafana reads the CA file even then: the image's bundle must be named) and Memcached;
//!   credentials from the user's Secret; the session uses TLS; the cache is shared.
//! - `postgres_verify_full_with_ca_bundle`: `sslMode: verify-full` with the bed's CA (the
//!   "RDS bundle") from a ConfigMap: lib/pq verifies the chain and the host name.
//! - `redis_alerting_ha`: alerting HA over Redis with TLS and AUTH beside the remote cache
//!   in the same Redis DB: each replica pings (Grafana exits if it cannot), sees exactly
//!   its replicas' heartbeats and no cache key under its prefix.
//! - `awkward_password_mysql_connects`: a password with `$`, `{`, space, `\`, `'` and
//!   `${x}` reaches MariaDB intact (no `${}` expansion, no trimming beyond newlines).
//! - `awkward_password_postgres_is_refused`: Grafana puts the Postgres password unquoted
//!   into a lib/pq string, so the operator must refuse it: `DatabaseResolved=False` naming
//!   the password, and the Deployment unchanged. The probe then shows why: with that
//!   Secret, Grafana's DSN does not parse.
//! - `two_clusters_share_servers_but_not_gossip`: two GrafanaClusters in one namespace on
//!   the same RDS instance (own database and user each) and the same Redis: both work, their
//!   caches stay apart by prefix, and a gossip peer of one pointed at the other's pod (a
//!   reused pod IP) does not merge them.
//! - `ipv6_gossip_in_a_network_namespace`: the Deployment's real env on IPv6 pod addresses
//!   (fd00:cafe:..., on the lo of a private network namespace; root only, skipped with a
//!   note otherwise): the listen/advertise addresses parse and bind and 3 peers form one
//!   cluster. Only pod, settings and gossip run there: the services are not reachable from
//!   the namespace.
//!
//! What only a real Grafana would show: its migrations and their lock, the HTTP server and
//! the probes, plugin download and loading (and file permissions on EFS: the probe runs as
//! root), the encrypted remote cache, alert evaluation and notification delivery and
//! deduplication over the formed cluster, and what a real DNS answers for the headless
//! Service (the probe is given the replicas' addresses).

// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::names;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, PodSpec, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};

use support::aws::{AwsClients, REGION, clear_fault, reset_moto};
use support::kube::{Operator, OperatorOptions, client, install_crd, kubectl, namespace};
use support::probe::{
    ProbeCluster, ProbeReport, Services, can_unshare_net, clear_endpoints, dump_namespace,
    map_endpoints, memcached_endpoint, peer_hosts, pod_ips, rds_instance_endpoint,
    redis_group_endpoints, run_probe,
};

/// Bound of every wait for the operator.
const WAIT: Duration = Duration::from_secs(60);
/// Where the contract mounts the Secrets the pods read.
const SECRETS_DIR: &str = "/etc/grafana/secrets";
/// The image's CA bundle, which MySQL TLS without a bundle of the user's must name.
const IMAGE_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// `$`, `{`, space, `\`, `'`, and a `${x}` Grafana would expand if it saw it as a value.
const AWKWARD_PASSWORD: &str = "p$a{b} c\\d'e${x}f";
const PLUGINS: &str = "grafana-clock-panel@2.1.8";

// --- one case's world -----------------------------------------------------------------

/// One case: a namespace, the operator watching it, AWS seeded under a fresh tag, and what
/// must be removed afterwards (also when the case panics).
struct Bed {
    client: Client,
    aws: AwsClients,
    services: Services,
    tag: String,
    ns: String,
    /// The probe's input, config, report and work files.
    work: PathBuf,
    operator: Option<Operator>,
    cleanup: Cleanup,
    started: Instant,
}

/// Removes the namespace and the SQL users and databases a case made, on every exit path;
/// keeps the probe's files when the case failed.
struct Cleanup {
    ns: Option<String>,
    pg: Vec<(String, String)>,
    mysql: Vec<(String, String)>,
    services: Option<Services>,
    work: Option<tempfile::TempDir>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(work) = self.work.take()
        {
            eprintln!("probe files kept in {}", work.keep().display());
        }
        if let Some(ns) = &self.ns {
            let _ = kubectl(&["delete", "namespace", ns, "--wait=false"], None);
            // The static EFS volumes are cluster-scoped (reclaim policy Retain).
            let selector = format!("{}={ns}", names::NAMESPACE_LABEL);
            let _ = kubectl(&["delete", "pv", "-l", &selector, "--wait=false"], None);
        }
        if let Some(s) = &self.services {
            for (user, db) in &self.pg {
                s.drop_postgres_user_and_db(user, db);
            }
            for (user, db) in &self.mysql {
                s.drop_mysql_user_and_db(user, db);
            }
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// A SQL identifier no other case uses.
fn sql_name(prefix: &str) -> String {
    format!("{prefix}_{:08x}", rand::random::<u32>())
}

impl Bed {
    async fn new(prefix: &str) -> Bed {
        let services = Services::from_env();
        let client = client().await;
        install_crd(&client).await;
        reset_moto();
        clear_fault();
        clear_endpoints();
        let ns = namespace(&client, &format!("wiring-{prefix}")).await;
        let operator = Operator::start(OperatorOptions {
            namespace: Some(ns.clone()),
            ..OperatorOptions::default()
        })
        .await;
        let work = tempfile::Builder::new()
            .prefix(&format!("e2e-wiring-{prefix}-"))
            .tempdir()
            .expect("temp dir");
        Bed {
            client,
            aws: AwsClients::new().await,
            tag: unique(prefix),
            work: work.path().to_path_buf(),
            operator: Some(operator),
            cleanup: Cleanup {
                ns: Some(ns.clone()),
                services: Some(services.clone()),
                work: Some(work),
                pg: Vec::new(),
                mysql: Vec::new(),
            },
            started: Instant::now(),
            ns,
            services,
        }
    }

    fn tags(&self) -> [(&str, &str); 1] {
        [("grafana-ha.io/cluster", self.tag.as_str())]
    }

    /// An RDS instance of `engine` whose endpoint is the bed's server of that engine.
    async fn seed_database(&self, engine: &str, managed_password: bool) -> String {
        let id = format!("{}-db", self.tag);
        let arn = self
            .aws
            .create_db_instance(&id, engine, &self.tags(), managed_password)
            .await;
        let port = match engine {
            "postgres" => self.services.pg_port,
            _ => self.services.mysql_port,
        };
        map_endpoints("rds", &[rds_instance_endpoint(&id, port)]);
        arn
    }

    /// Points the RDS-managed master secret of the seeded instance at a real login.
    async fn set_managed_secret(&self, user: &str, password: &str) {
        let db = self
            .aws
            .rds
            .describe_db_instances()
            .db_instance_identifier(format!("{}-db", self.tag))
            .send()
            .await
            .expect("describe the seeded instance");
        let arn = db.db_instances()[0]
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .expect("an RDS-managed secret")
            .to_string();
        self.aws
            .secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(serde_json::json!({"username": user, "password": password}).to_string())
            .send()
            .await
            .expect("put_secret_value");
    }

    /// A Redis replication group (one node, in-transit encryption, AUTH on) that is the bed's
    /// Redis TLS port.
    async fn seed_redis(&self) {
        let id = format!("{}-redis", self.tag);
        self.aws
            .elasticache
            .create_replication_group()
            .replication_group_id(&id)
            .replication_group_description("grafana remote cache")
            .engine("redis")
            .cache_node_type("cache.t3.micro")
            .num_cache_clusters(1)
            .transit_encryption_enabled(true)
            .auth_token(&self.services.redis_password)
            .set_tags(Some(elasticache_tags(&self.tags())))
            .send()
            .await
            .expect("create_replication_group");
        map_endpoints(
            "elasticache",
            &[redis_group_endpoints(&id, self.services.redis_port)],
        );
    }

    /// A one-node Memcached cluster (no TLS: Grafana's client has none) that is the bed's
    /// Memcached.
    async fn seed_memcached(&self) {
        let id = format!("{}-mc", self.tag);
        self.aws
            .elasticache
            .create_cache_cluster()
            .cache_cluster_id(&id)
            .engine("memcached")
            .cache_node_type("cache.t3.micro")
            .num_cache_nodes(1)
            .set_tags(Some(elasticache_tags(&self.tags())))
            .send()
            .await
            .expect("create_cache_cluster");
        map_endpoints(
            "elasticache",
            &[memcached_endpoint(&id, self.services.memcached_port)],
        );
    }

    /// EFS for the plugins, with a mount target in each zone of the bed's nodes and a
    /// tagged access point (the file system's root is not writable by Grafana's user).
    async fn seed_efs(&self) {
        let fs = self
            .aws
            .create_file_system(&format!("{}-fs", self.tag), &self.tags())
            .await;
        for zone in ["a", "b", "c"] {
            self.aws
                .create_mount_target(&fs, &format!("{REGION}{zone}"))
                .await;
        }
        self.aws
            .create_access_point(&fs, &format!("{}-ap", self.tag), &self.tags())
            .await;
    }

    fn postgres_user(&mut self, password: &str) -> (String, String) {
        let (user, db) = (sql_name("gf_user"), sql_name("gf_db"));
        self.services.postgres_user_and_db(&user, password, &db);
        self.cleanup.pg.push((user.clone(), db.clone()));
        (user, db)
    }

    fn mysql_user(&mut self, password: &str) -> (String, String) {
        let (user, db) = (sql_name("gf_user"), sql_name("gf_db"));
        self.services.mysql_user_and_db(&user, password, &db);
        self.cleanup.mysql.push((user.clone(), db.clone()));
        (user, db)
    }

    async fn secret(&self, name: &str, data: &[(&str, &str)]) {
        let string_data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": self.ns},
            "stringData": string_data,
        }))
        .expect("secret");
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .patch(
                name,
                &PatchParams::apply("e2e-wiring").force(),
                &Patch::Apply(&secret),
            )
            .await
            .expect("applying a Secret");
    }

    async fn config_map(&self, name: &str, key: &str, value: &str) {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": self.ns},
            "data": {key: value},
        }))
        .expect("configmap");
        Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &cm)
            .await
            .expect("creating a ConfigMap");
    }

    /// Creates a GrafanaCluster selecting this case's tag, with `extra` merged over the
    /// base spec (replicas, tags, a plugin to install).
    async fn cluster(&self, name: &str, replicas: i32, extra: serde_json::Value) {
        let mut spec = serde_json::json!({
            "replicas": replicas,
            "aws": {"tags": {"grafana-ha.io/cluster": self.tag}},
            "plugins": {"install": [PLUGINS]},
        });
        for (k, v) in extra.as_object().expect("extra is an object") {
            spec[k] = v.clone();
        }
        let gc: GrafanaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "grafana-ha.io/v1alpha1",
            "kind": "GrafanaCluster",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec,
        }))
        .expect("GrafanaCluster manifest");
        Api::<GrafanaCluster>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &gc)
            .await
            .unwrap_or_else(|e| panic!("creating GrafanaCluster {name}: {e}"));
    }

    /// Waits until `name` is Ready for its current generation (so the Deployment carries
    /// the current spec and rolled out); panics with the conditions after [`WAIT`].
    async fn wait_ready(&self, name: &str) -> GrafanaCluster {
        let api: Api<GrafanaCluster> = Api::namespaced(self.client.clone(), &self.ns);
        let start = Instant::now();
        loop {
            if let Ok(gc) = api.get(name).await {
                let current = gc.status.as_ref().and_then(|s| s.observed_generation)
                    == gc.metadata.generation;
                if current && condition(&gc, "Ready").is_some_and(|c| c.0 == "True") {
                    return gc;
                }
                if start.elapsed() > WAIT {
                    panic!(
                        "{}/{name} not Ready after {WAIT:?}; conditions:\n{}",
                        self.ns,
                        conditions(&gc)
                    );
                }
            } else if start.elapsed() > WAIT {
                panic!("{}/{name} not found after {WAIT:?}", self.ns);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn deployment(&self, name: &str) -> Deployment {
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("Deployment {}/{name}: {e}", self.ns))
    }

    async fn secret_value(&self, name: &str, key: &str) -> Option<String> {
        let s = Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .get_opt(name)
            .await
            .ok()??;
        let v = s.data?.get(key)?.0.clone();
        Some(String::from_utf8_lossy(&v).into_owned())
    }

    /// Dumps the namespace and runs the probe over `clusters` (name, replicas, pod
    /// addresses: IPv4 loopback unless given), resolving each Deployment's gossip peer
    /// names to its replicas.
    async fn probe(
        &self,
        clusters: &[(&str, Vec<String>)],
        only: &[&str],
        netns_ipv6: bool,
    ) -> ProbeReport {
        let input = self.work.join("in");
        dump_namespace(&self.ns, &input);
        let mut resolve: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut specs = Vec::new();
        let mut all_ips = Vec::new();
        for (name, ips) in clusters {
            let d = self.deployment(name).await;
            if let Some(peers) = env_of(&d).get("GF_UNIFIED_ALERTING_HA_PEERS") {
                for host in peer_hosts(peers.value.as_deref().unwrap_or_default()) {
                    resolve.entry(host).or_default().extend(ips.iter().cloned());
                }
            }
            all_ips.extend(ips.iter().cloned());
            specs.push(ProbeCluster {
                name: name.to_string(),
                input: input.clone(),
                deployment: format!("{}/{name}", self.ns),
                pod_ips: ips.clone(),
            });
        }
        let work = self.work.clone();
        let services = self.services.clone();
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        tokio::task::block_in_place(move || {
            let only: Vec<&str> = only.iter().map(String::as_str).collect();
            run_probe(
                &services,
                &specs,
                &resolve,
                &only,
                &work,
                netns_ipv6.then_some(all_ips.as_slice()),
            )
        })
    }

    /// Stops the operator; the namespace, SQL users and files go with `self` (Drop).
    async fn finish(mut self) {
        if let Some(op) = self.operator.take() {
            op.stop().await;
        }
        clear_endpoints();
        eprintln!("{}: done in {:.1?}", self.ns, self.started.elapsed());
    }
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

fn condition(gc: &GrafanaCluster, type_: &str) -> Option<(String, String, String)> {
    gc.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

fn conditions(gc: &GrafanaCluster) -> String {
    gc.status
        .iter()
        .flat_map(|s| s.conditions.iter())
        .map(|c| format!("  {}={} {}: {}", c.type_, c.status, c.reason, c.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pod_spec(d: &Deployment) -> PodSpec {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("a pod template")
}

fn grafana_container(pod: &PodSpec) -> Container {
    pod.containers
        .iter()
        .find(|c| c.name == "grafana")
        .unwrap_or(&pod.containers[0])
        .clone()
}

fn env_of(d: &Deployment) -> BTreeMap<String, EnvVar> {
    grafana_container(&pod_spec(d))
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect()
}

// --- the contract ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Db {
    Postgres,
    Mysql,
}

#[derive(Clone, Copy, PartialEq)]
enum Cache {
    Off,
    Redis,
    Memcached,
}

#[derive(Clone, Copy, PartialEq)]
enum Ha {
    Gossip,
    Redis,
}

/// What a case's GrafanaCluster asks for, as far as the contract depends on it.
struct Expect {
    db: Db,
    cache: Cache,
    ha: Ha,
    /// spec.database.caBundleConfigMapRef is set.
    ca_bundle: bool,
    /// The MySQL ssl_mode (true/skip-verify mean TLS).
    mysql_ssl_mode: &'static str,
}

impl Expect {
    fn new(db: Db, cache: Cache, ha: Ha) -> Expect {
        Expect {
            db,
            cache,
            ha,
            ca_bundle: false,
            mysql_ssl_mode: "skip-verify",
        }
    }
}

/// Where the Deployment departs from the wiring contract (empty when it keeps it).
async fn contract(bed: &Bed, name: &str, expect: &Expect) -> Vec<String> {
    let d = bed.deployment(name).await;
    let pod = pod_spec(&d);
    let c = grafana_container(&pod);
    let env = env_of(&d);
    let mut bad = Vec::new();
    let value = |n: &str| env.get(n).and_then(|e| e.value.clone());
    let want = |n: &str, v: &str, bad: &mut Vec<String>| {
        let got = value(n);
        if got.as_deref() != Some(v) {
            bad.push(format!("{n} = {got:?}, want {v:?}"));
        }
    };

    // Any Secret given as an env value: Grafana would `${}`-expand it and keep a trailing
    // newline.
    let secret_ref = |n: &str| {
        env.get(n)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .map(|r| format!("{}/{}", r.name, r.key))
    };

    // The projected volume at SECRETS_DIR: (path, kind, object, key) of each item.
    let mut items: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    match mounts
        .iter()
        .find(|m| m.mount_path.trim_end_matches('/') == SECRETS_DIR)
    {
        None => bad.push(format!("no volume is mounted at {SECRETS_DIR}")),
        Some(m) => {
            if m.read_only != Some(true) {
                bad.push(format!("{SECRETS_DIR} is not mounted readOnly"));
            }
            let vol = pod
                .volumes
                .iter()
                .flatten()
                .find(|v| v.name == m.name)
                .and_then(|v| v.projected.clone());
            match vol {
                None => bad.push(format!("{SECRETS_DIR} is not a projected volume")),
                Some(p) => {
                    for src in p.sources.unwrap_or_default() {
                        if let Some(s) = src.secret {
                            for it in s.items.unwrap_or_default() {
                                items.insert(it.path, ("secret".into(), s.name.clone(), it.key));
                            }
                        }
                        if let Some(cm) = src.config_map {
                            for it in cm.items.unwrap_or_default() {
                                items
                                    .insert(it.path, ("configmap".into(), cm.name.clone(), it.key));
                            }
                        }
                    }
                }
            }
        }
    }
    // Secret settings: `$__file{SECRETS_DIR/<item>}` of an item of that volume.
    let from_file = |n: &str, source: Option<(String, &str)>, bad: &mut Vec<String>| {
        let got = value(n).unwrap_or_default();
        let path = got
            .strip_prefix("$__file{")
            .and_then(|p| p.strip_suffix('}'))
            .and_then(|p| p.strip_prefix(SECRETS_DIR))
            .map(|p| p.trim_start_matches('/').to_string());
        match path {
            None => bad.push(match secret_ref(n) {
                Some(r) => format!(
                    "{n} comes from secretKeyRef {r}, want $__file{{{SECRETS_DIR}/...}}: Secrets must reach Grafana as files"
                ),
                None => format!("{n} = {got:?}, want $__file{{{SECRETS_DIR}/...}}"),
            }),
            Some(p) => match (items.get(&p), &source) {
                (None, _) => bad.push(format!("{n} reads {p}, which the volume does not hold")),
                (Some((_, obj, key)), Some((want_obj, want_key)))
                    if obj != want_obj || key != want_key =>
                {
                    bad.push(format!(
                        "{n} reads {p} = {obj}/{key}, want {want_obj}/{want_key}"
                    ))
                }
                _ => {}
            },
        }
    };
    for n in [
        "GF_DATABASE_USER",
        "GF_DATABASE_PASSWORD",
        "GF_SECURITY_ADMIN_USER",
        "GF_SECURITY_ADMIN_PASSWORD",
        "GF_SECURITY_SECRET_KEY",
    ] {
        from_file(n, None, &mut bad);
    }
    if expect.cache == Cache::Redis {
        from_file("GF_REMOTE_CACHE_CONNSTR", None, &mut bad);
    }
    if expect.cache != Cache::Off {
        want(
            "GF_REMOTE_CACHE_PREFIX",
            &format!("{}/{name}/cache:", bed.ns),
            &mut bad,
        );
    }
    match expect.ha {
        Ha::Gossip => {
            for n in [
                "GF_UNIFIED_ALERTING_HA_LISTEN_ADDRESS",
                "GF_UNIFIED_ALERTING_HA_ADVERTISE_ADDRESS",
            ] {
                want(n, "[$(POD_IP)]:9094", &mut bad);
            }
            want(
                "GF_UNIFIED_ALERTING_HA_LABEL",
                &format!("{}/{name}", bed.ns),
                &mut bad,
            );
            want("GF_UNIFIED_ALERTING_HA_RECONNECT_TIMEOUT", "2m", &mut bad);
        }
        Ha::Redis => {
            want(
                "GF_UNIFIED_ALERTING_HA_REDIS_PREFIX",
                &format!("{}/{name}/alerting", bed.ns),
                &mut bad,
            );
            let cache_secret = format!("{name}-cache");
            from_file(
                "GF_UNIFIED_ALERTING_HA_REDIS_PASSWORD",
                Some((cache_secret.clone(), "password")),
                &mut bad,
            );
            let stored = bed.secret_value(&cache_secret, "password").await;
            if stored.as_deref() != Some(bed.services.redis_password.as_str()) {
                bad.push(format!(
                    "Secret {cache_secret} key password is not the trimmed AUTH token ({})",
                    match stored {
                        None => "missing".to_string(),
                        Some(s) => format!("{} bytes", s.len()),
                    }
                ));
            }
        }
    }
    if expect.db == Db::Mysql && matches!(expect.mysql_ssl_mode, "true" | "skip-verify") {
        let ca = value("GF_DATABASE_CA_CERT_PATH");
        match (&ca, expect.ca_bundle) {
            (None, _) => bad.push(format!(
                "MySQL ssl_mode {} without GF_DATABASE_CA_CERT_PATH: Grafana reads the CA file first and fails on an empty path",
                expect.mysql_ssl_mode
            )),
            (Some(p), false) if p != IMAGE_CA_BUNDLE => bad.push(format!(
                "GF_DATABASE_CA_CERT_PATH = {p}, want the image's bundle {IMAGE_CA_BUNDLE}"
            )),
            _ => {}
        }
    }
    for n in env.keys() {
        if let Some(r) = secret_ref(n)
            && !bad.iter().any(|b| b.starts_with(&format!("{n} ")))
        {
            bad.push(format!(
                "{n} comes from secretKeyRef {r}: Secrets must reach Grafana as files"
            ));
        }
    }
    match mounts
        .iter()
        .find(|m| m.mount_path.trim_end_matches('/') == "/var/lib/grafana/plugins")
    {
        Some(m) if m.read_only == Some(true) => {}
        Some(_) => bad.push("the plugins volume is mounted read-write".into()),
        None => bad.push("no plugins volume at /var/lib/grafana/plugins".into()),
    }
    want("GF_PLUGINS_PLUGIN_ADMIN_ENABLED", "false", &mut bad);
    bad.into_iter().map(|b| format!("{name}: {b}")).collect()
}

/// Fails the case with everything that went wrong: the contract and the probe's checks.
fn verdict(case: &str, contract: &[String], report: &ProbeReport, work: &std::path::Path) {
    let problems = report.problems();
    if contract.is_empty() && problems.is_empty() {
        eprintln!("{case}: contract kept; probe:\n{}", report.summary());
        return;
    }
    let mut msg = format!("{case}: the wiring does not work\n");
    if !contract.is_empty() {
        msg.push_str("contract:\n");
        for c in contract {
            msg.push_str(&format!("  - {c}\n"));
        }
    }
    if !problems.is_empty() {
        msg.push_str(&format!("probe (exit {:?}):\n", report.status));
        for p in &problems {
            msg.push_str(&format!("  - {p}\n"));
        }
    }
    msg.push_str(&format!("(probe input and report: {})", work.display()));
    panic!("{msg}");
}

/// Asserts that checks named `name` passed at least `n` times (so that a case cannot pass
/// by skipping what it is about).
fn assert_passed(report: &ProbeReport, name: &str, n: usize) {
    let passed = report.passed().iter().filter(|p| *p == name).count();
    assert!(
        passed >= n,
        "{name} passed {passed} times, want {n}; problems: {:?}",
        report.problems()
    );
}

/// Every database session of the report used TLS.
fn assert_db_tls(report: &ProbeReport) {
    for d in report.details("database.connect") {
        assert_eq!(d["tls"], true, "a database session without TLS: {d}");
    }
}

// --- the cases ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn article_postgres_redis_gossip() {
    let bed = Bed::new("article").await;
    bed.seed_database("postgres", true).await;
    bed.set_managed_secret(&bed.services.pg_user, &bed.services.pg_password)
        .await;
    bed.seed_redis().await;
    bed.seed_efs().await;
    // A token file as `kubectl create secret --from-file` makes it: with a newline.
    bed.secret(
        "redis-auth",
        &[("token", &format!("{}\n", bed.services.redis_password))],
    )
    .await;
    bed.cluster(
        "grafana",
        3,
        serde_json::json!({
            "database": {"credentials": {"rdsManagedSecret": true}},
            "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            "alerting": {"ha": "gossip"},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let expect = Expect::new(Db::Postgres, Cache::Redis, Ha::Gossip);
    let contract = contract(&bed, "grafana", &expect).await;
    let report = bed.probe(&[("grafana", pod_ips(3))], &[], false).await;
    let work = bed.work.clone();
    verdict("article", &contract, &report, &work);
    assert_passed(&report, "database.connect", 3);
    assert_db_tls(&report);
    assert_passed(&report, "remote_cache.shared", 1);
    assert_passed(&report, "alerting.gossip.cluster", 1);
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_memcached_user_secret() {
    let mut bed = Bed::new("mysql").await;
    bed.seed_database("mariadb", false).await;
    bed.seed_memcached().await;
    bed.seed_efs().await;
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let (user, db) = bed.mysql_user(&password);
    bed.secret(
        "mysql-creds",
        &[("username", &user), ("password", &password)],
    )
    .await;
    bed.cluster(
        "grafana",
        2,
        serde_json::json!({
            "database": {"name": db, "credentials": {"secretRef": {"name": "mysql-creds"}}},
            "cache": {"engine": "memcached"},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let expect = Expect::new(Db::Mysql, Cache::Memcached, Ha::Gossip);
    let contract = contract(&bed, "grafana", &expect).await;
    let report = bed.probe(&[("grafana", pod_ips(2))], &[], false).await;
    let work = bed.work.clone();
    verdict("mysql+memcached", &contract, &report, &work);
    assert_passed(&report, "database.connect", 2);
    assert_db_tls(&report);
    assert_passed(&report, "remote_cache.shared", 1);
    assert_passed(&report, "alerting.gossip.cluster", 1);
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_full_with_ca_bundle() {
    let mut bed = Bed::new("verifyfull").await;
    bed.seed_database("postgres", false).await;
    bed.seed_efs().await;
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let (user, db) = bed.postgres_user(&password);
    bed.secret("pg-creds", &[("username", &user), ("password", &password)])
        .await;
    let ca = std::fs::read_to_string(&bed.services.ca_file).expect("the bed's CA");
    bed.config_map("rds-ca", "rds-global-bundle.pem", &ca).await;
    bed.cluster(
        "grafana",
        2,
        serde_json::json!({
            "database": {
                "name": db,
                "credentials": {"secretRef": {"name": "pg-creds"}},
                "sslMode": "verify-full",
                "caBundleConfigMapRef": {"name": "rds-ca", "key": "rds-global-bundle.pem"},
            },
            "cache": {"enabled": false},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let mut expect = Expect::new(Db::Postgres, Cache::Off, Ha::Gossip);
    expect.ca_bundle = true;
    let contract = contract(&bed, "grafana", &expect).await;
    let report = bed.probe(&[("grafana", pod_ips(2))], &[], false).await;
    let work = bed.work.clone();
    verdict("postgres verify-full", &contract, &report, &work);
    assert_passed(&report, "database.connect", 2);
    assert_db_tls(&report);
    for d in report.details("database.connect") {
        assert_eq!(d["ssl_mode"], "verify-full", "{d}");
    }
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_alerting_ha() {
    let mut bed = Bed::new("redisha").await;
    bed.seed_database("postgres", false).await;
    bed.seed_redis().await;
    bed.seed_efs().await;
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let (user, db) = bed.postgres_user(&password);
    bed.secret("pg-creds", &[("username", &user), ("password", &password)])
        .await;
    bed.secret(
        "redis-auth",
        &[("token", &format!("{}\n", bed.services.redis_password))],
    )
    .await;
    bed.cluster(
        "grafana",
        2,
        serde_json::json!({
            "database": {"name": db, "credentials": {"secretRef": {"name": "pg-creds"}}},
            "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
            "alerting": {"ha": "redis"},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let expect = Expect::new(Db::Postgres, Cache::Redis, Ha::Redis);
    let contract = contract(&bed, "grafana", &expect).await;
    let report = bed.probe(&[("grafana", pod_ips(2))], &[], false).await;
    let work = bed.work.clone();
    verdict("redis alerting HA", &contract, &report, &work);
    assert_passed(&report, "alerting.redis.start", 2);
    assert_passed(&report, "alerting.redis.cluster", 1);
    assert_passed(&report, "remote_cache.shared", 1);
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_password_mysql_connects() {
    let mut bed = Bed::new("awkmysql").await;
    bed.seed_database("mariadb", false).await;
    bed.seed_efs().await;
    let (user, db) = bed.mysql_user(AWKWARD_PASSWORD);
    bed.secret(
        "mysql-creds",
        &[("username", &user), ("password", AWKWARD_PASSWORD)],
    )
    .await;
    let ca = std::fs::read_to_string(&bed.services.ca_file).expect("the bed's CA");
    bed.config_map("rds-ca", "ca.pem", &ca).await;
    bed.cluster(
        "grafana",
        2,
        serde_json::json!({
            "database": {
                "name": db,
                "credentials": {"secretRef": {"name": "mysql-creds"}},
                "sslMode": "true",
                "caBundleConfigMapRef": {"name": "rds-ca", "key": "ca.pem"},
            },
            "cache": {"enabled": false},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let mut expect = Expect::new(Db::Mysql, Cache::Off, Ha::Gossip);
    expect.ca_bundle = true;
    expect.mysql_ssl_mode = "true";
    let contract = contract(&bed, "grafana", &expect).await;
    let report = bed
        .probe(
            &[("grafana", pod_ips(2))],
            &["pod", "settings", "database"],
            false,
        )
        .await;
    let work = bed.work.clone();
    verdict("awkward password, MySQL", &contract, &report, &work);
    assert_passed(&report, "database.connect", 2);
    assert_db_tls(&report);
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_password_postgres_is_refused() {
    let mut bed = Bed::new("awkpg").await;
    bed.seed_database("postgres", false).await;
    bed.seed_efs().await;
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let (user, db) = bed.postgres_user(&password);
    bed.secret("pg-creds", &[("username", &user), ("password", &password)])
        .await;
    bed.cluster(
        "grafana",
        2,
        serde_json::json!({
            "database": {"name": db, "credentials": {"secretRef": {"name": "pg-creds"}}},
            "cache": {"enabled": false},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let before = bed.deployment("grafana").await;

    // The user's password becomes one that Grafana's lib/pq string cannot carry.
    bed.services.postgres_admin(&format!(
        "ALTER ROLE {user} PASSWORD {};",
        support::probe::pg_literal(AWKWARD_PASSWORD)
    ));
    bed.secret(
        "pg-creds",
        &[("username", &user), ("password", AWKWARD_PASSWORD)],
    )
    .await;
    let api: Api<GrafanaCluster> = Api::namespaced(bed.client.clone(), &bed.ns);
    let start = Instant::now();
    let (reason, message) = loop {
        let gc = api.get("grafana").await.expect("GrafanaCluster");
        if let Some((status, reason, message)) = condition(&gc, "DatabaseResolved")
            && status == "False"
        {
            break (reason, message);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the operator did not refuse the Postgres password with `$`, `{{`, space, `\\`, `'` \
             within 30 s (want DatabaseResolved=False naming the password); conditions:\n{}",
            conditions(&gc)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        format!("{reason} {message}")
            .to_lowercase()
            .contains("password"),
        "the refusal must name the password: {reason}: {message}"
    );
    assert!(
        !message.contains(AWKWARD_PASSWORD),
        "the condition must not show the password"
    );
    eprintln!("refused: DatabaseResolved=False {reason}: {message}");
    // Two resyncs later the Deployment is still the one from before.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let after = bed.deployment("grafana").await;
    assert_eq!(
        before.metadata.generation, after.metadata.generation,
        "the Deployment changed although the database was refused"
    );
    assert_eq!(
        serde_json::to_value(&before.spec).unwrap(),
        serde_json::to_value(&after.spec).unwrap()
    );

    // Why: given that Secret, Grafana's unquoted lib/pq string does not parse.
    let report = bed
        .probe(
            &[("grafana", pod_ips(2))],
            &["pod", "settings", "database"],
            false,
        )
        .await;
    let errors: Vec<String> = report
        .checks()
        .filter(|c| c["name"] == "database.connect")
        .map(|c| c["error"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !errors.is_empty() && errors.iter().all(|e| !e.is_empty()),
        "with the refused password the probe's Postgres connection must fail: {errors:?}"
    );
    eprintln!("the probe with the refused password: {errors:?}");
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_share_servers_but_not_gossip() {
    let mut bed = Bed::new("twoclusters").await;
    bed.seed_database("postgres", false).await;
    bed.seed_redis().await;
    bed.seed_efs().await;
    bed.secret(
        "redis-auth",
        &[("token", &format!("{}\n", bed.services.redis_password))],
    )
    .await;
    for name in ["grafana-a", "grafana-b"] {
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let (user, db) = bed.postgres_user(&password);
        let creds = format!("{name}-pg");
        bed.secret(&creds, &[("username", &user), ("password", &password)])
            .await;
        bed.cluster(
            name,
            2,
            serde_json::json!({
                "database": {"name": db, "credentials": {"secretRef": {"name": creds}}},
                "cache": {"authTokenSecretRef": {"name": "redis-auth", "key": "token"}},
                "alerting": {"ha": "gossip"},
            }),
        )
        .await;
    }
    bed.wait_ready("grafana-a").await;
    bed.wait_ready("grafana-b").await;
    let expect = Expect::new(Db::Postgres, Cache::Redis, Ha::Gossip);
    let mut contract_problems = contract(&bed, "grafana-a", &expect).await;
    contract_problems.extend(contract(&bed, "grafana-b", &expect).await);
    let report = bed
        .probe(
            &[("grafana-a", pod_ips(2)), ("grafana-b", pod_ips(2))],
            &[],
            false,
        )
        .await;
    let work = bed.work.clone();
    verdict("two clusters", &contract_problems, &report, &work);
    assert_passed(&report, "database.connect", 4);
    assert_passed(&report, "remote_cache.shared", 2);
    assert_passed(&report, "alerting.gossip.cluster", 2);
    assert_passed(&report, "alerting.gossip.isolation", 1);
    bed.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_gossip_in_a_network_namespace() {
    if !can_unshare_net() {
        eprintln!(
            "SKIPPED ipv6_gossip_in_a_network_namespace: needs root, unshare and ip to make a \
             private network namespace with IPv6 addresses on its lo; the address form is \
             covered by the operator's unit tests and the probe's IPv6 self-test"
        );
        return;
    }
    let mut bed = Bed::new("ipv6").await;
    bed.seed_database("postgres", false).await;
    bed.seed_efs().await;
    let password = format!("pw-{:016x}", rand::random::<u64>());
    let (user, db) = bed.postgres_user(&password);
    bed.secret("pg-creds", &[("username", &user), ("password", &password)])
        .await;
    bed.cluster(
        "grafana",
        3,
        serde_json::json!({
            "database": {"name": db, "credentials": {"secretRef": {"name": "pg-creds"}}},
            "cache": {"enabled": false},
            "alerting": {"ha": "gossip"},
        }),
    )
    .await;
    bed.wait_ready("grafana").await;
    let expect = Expect::new(Db::Postgres, Cache::Off, Ha::Gossip);
    let contract = contract(&bed, "grafana", &expect).await;
    // IPv6 pod addresses (a ULA prefix, only ever on the namespace's lo).
    let ips: Vec<String> = (2..5).map(|i| format!("fd00:cafe::{i}")).collect();
    let report = bed
        .probe(&[("grafana", ips)], &["pod", "settings", "alerting"], true)
        .await;
    let work = bed.work.clone();
    verdict("IPv6 gossip", &contract, &report, &work);
    assert_passed(&report, "alerting.gossip.start", 3);
    assert_passed(&report, "alerting.gossip.cluster", 1);
    bed.finish().await;
}
