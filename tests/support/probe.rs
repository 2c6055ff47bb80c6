//! Helpers for the wiring tests (tests/e2e_wiring.rs): the real backing services the test
//! bed starts (`TESTBED_*` variables, testbed/services/up.sh), moto seeded so that discovery
//! returns those servers (through the fault proxy's endpoint map), users and databases made
//! with the services' admin credentials, and the wiring probe (testbed/probe) run over what
//! `kubectl get deployment,secret,configmap -o json` returns.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::aws::{fault_proxy_url, http};
use super::kube::{kubectl, repo_file};

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: the wiring tests need the test bed's backing services \
             (PostgreSQL, MariaDB, Redis, Memcached); run them through `make e2e` \
             (testbed/with-testbed.sh; TESTBED_SERVICES=0 turns the services off)"
        ),
    }
}

/// The backing services of the test bed, from its env file.
#[derive(Clone, Debug)]
pub struct Services {
    pub ca_file: String,
    pub public_ca_file: String,
    pub pg_port: u16,
    pub pg_user: String,
    pub pg_password: String,
    pub pg_db: String,
    pub pg_admin_user: String,
    pub pg_admin_password: String,
    pub mysql_port: u16,
    pub mysql_admin_user: String,
    pub mysql_admin_password: String,
    pub redis_port: u16,
    pub redis_password: String,
    pub memcached_port: u16,
}

impl Services {
    pub fn from_env() -> Services {
        assert_eq!(
            required("TESTBED_SERVICES"),
            "1",
            "the wiring tests need the backing services (TESTBED_SERVICES=1)"
        );
        let port = |name: &str| -> u16 {
            required(name)
                .parse()
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        Services {
            ca_file: required("TESTBED_CA_FILE"),
            public_ca_file: required("TESTBED_PUBLIC_CA_FILE"),
            pg_port: port("TESTBED_POSTGRES_PORT"),
            pg_user: required("TESTBED_POSTGRES_USER"),
            pg_password: required("TESTBED_POSTGRES_PASSWORD"),
            pg_db: required("TESTBED_POSTGRES_DB"),
            pg_admin_user: required("TESTBED_POSTGRES_ADMIN_USER"),
            pg_admin_password: required("TESTBED_POSTGRES_ADMIN_PASSWORD"),
            mysql_port: port("TESTBED_MYSQL_PORT"),
            mysql_admin_user: required("TESTBED_MYSQL_ADMIN_USER"),
            mysql_admin_password: required("TESTBED_MYSQL_ADMIN_PASSWORD"),
            redis_port: port("TESTBED_REDIS_PORT"),
            redis_password: required("TESTBED_REDIS_PASSWORD"),
            memcached_port: port("TESTBED_MEMCACHED_PORT"),
        }
    }

    /// Runs SQL as the PostgreSQL admin (over TLS, verified against the bed's CA).
    pub fn postgres_admin(&self, sql: &str) {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={} dbname=postgres sslmode=verify-full sslrootcert={} connect_timeout=5",
            self.pg_port, self.pg_admin_user, self.ca_file
        );
        run_with_stdin(
            Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &conninfo])
                .env("PGPASSWORD", &self.pg_admin_password),
            sql,
        );
    }

    /// Runs SQL as the MariaDB admin (over TLS).
    pub fn mysql_admin(&self, sql: &str) {
        run_with_stdin(
            Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "--batch",
                    "--connect-timeout=5",
                    "-h127.0.0.1",
                    &format!("-P{}", self.mysql_port),
                    &format!("-u{}", self.mysql_admin_user),
                    &format!("--ssl-ca={}", self.ca_file),
                ])
                .env("MYSQL_PWD", &self.mysql_admin_password),
            sql,
        );
    }

    /// A PostgreSQL role and a database it owns.
    pub fn postgres_user_and_db(&self, user: &str, password: &str, db: &str) {
        self.postgres_admin(&format!(
            "CREATE ROLE {user} LOGIN PASSWORD {};\nCREATE DATABASE {db} OWNER {user};\n",
            pg_literal(password)
        ));
    }

    /// A MariaDB user (from any host) with every privilege on a new database.
    pub fn mysql_user_and_db(&self, user: &str, password: &str, db: &str) {
        self.mysql_admin(&format!(
            "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n\
             CREATE USER '{user}'@'%' IDENTIFIED BY {};\n\
             GRANT ALL PRIVILEGES ON {db}.* TO '{user}'@'%';\n",
            mysql_literal(password)
        ));
    }

    /// Drops what [`Self::postgres_user_and_db`] made (best effort).
    pub fn drop_postgres_user_and_db(&self, user: &str, db: &str) {
        let _ = std::panic::catch_unwind(|| {
            self.postgres_admin(&format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE);\nDROP ROLE IF EXISTS {user};\n"
            ))
        });
    }

    /// Drops what [`Self::mysql_user_and_db`] made (best effort).
    pub fn drop_mysql_user_and_db(&self, user: &str, db: &str) {
        let _ = std::panic::catch_unwind(|| {
            self.mysql_admin(&format!(
                "DROP DATABASE IF EXISTS {db};\nDROP USER IF EXISTS '{user}'@'%';\n"
            ))
        });
    }
}

/// A PostgreSQL string literal (standard_conforming_strings: only `'` is special).
pub fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A MariaDB string literal (backslash escapes are on by default).
pub fn mysql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> String {
    let program = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing stdin");
    let out = child.wait_with_output().expect("waiting for the command");
    assert!(
        out.status.success(),
        "{program} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// --- the fault proxy's endpoint map --------------------------------------------------

/// Adds rewrites to the fault proxy's endpoint map (kept across faults).
pub fn map_endpoints(service: &str, rewrites: &[(String, String)]) {
    let body = serde_json::json!({"service": service, "rewrites": rewrites}).to_string();
    let url = format!("{}/__endpoints", fault_proxy_url());
    let (status, answer) = http("POST", &url, &[("Content-Type", "application/json")], &body);
    assert_eq!(status, 200, "setting the endpoint map failed: {answer}");
}

/// Removes every endpoint rewrite.
pub fn clear_endpoints() {
    let url = format!("{}/__endpoints", fault_proxy_url());
    let (status, answer) = http("DELETE", &url, &[], "");
    assert_eq!(status, 200, "clearing the endpoint map failed: {answer}");
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// The RDS instance `id`'s endpoint (DescribeDBInstances, CreateDBInstance) -> 127.0.0.1:port.
pub fn rds_instance_endpoint(id: &str, port: u16) -> (String, String) {
    (
        format!(
            r"<Endpoint>\s*<Address>{}\.[^<]*</Address>\s*<Port>\d+</Port>",
            regex_escape(id)
        ),
        format!("<Endpoint><Address>127.0.0.1</Address><Port>{port}</Port>"),
    )
}

/// The replication group `id`'s primary and read endpoints -> 127.0.0.1:port.
pub fn redis_group_endpoints(id: &str, port: u16) -> (String, String) {
    (
        format!(
            r"<Address>(?:master\.)?{}(?:-\d+)?\.[^<]*</Address>\s*<Port>\d+</Port>",
            regex_escape(id)
        ),
        format!("<Address>127.0.0.1</Address><Port>{port}</Port>"),
    )
}

/// moto gives a Memcached cluster no endpoint at all: add a configuration endpoint.
pub fn memcached_endpoint(id: &str, port: u16) -> (String, String) {
    (
        format!("(<CacheClusterId>{}</CacheClusterId>)", regex_escape(id)),
        format!(
            r"\1<ConfigurationEndpoint><Address>127.0.0.1</Address><Port>{port}</Port></ConfigurationEndpoint>"
        ),
    )
}

// --- the probe -----------------------------------------------------------------------

/// The probe binary, built once per test process (`testbed/probe/build.sh`; Go's cache
/// makes a rebuild of unchanged sources take a second or two).
pub fn probe_binary() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(repo_file("testbed/probe/build.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running testbed/probe/build.sh");
        assert!(out.status.success(), "building the probe failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let path = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(
            Path::new(&path).is_file(),
            "probe build printed no binary: {stdout}"
        );
        path
    })
}

/// `n` loopback addresses that no other replica of this process uses, in
/// 127.77.<pid % 250>.x (so that two test processes on one machine do not collide on the
/// gossip port either).
pub fn pod_ips(n: usize) -> Vec<String> {
    static NEXT: AtomicU32 = AtomicU32::new(10);
    let third = std::process::id() % 250;
    (0..n)
        .map(|_| {
            let i = NEXT.fetch_add(1, Ordering::SeqCst);
            assert!(i < 255, "out of loopback addresses");
            format!("127.77.{third}.{i}")
        })
        .collect()
}

/// `kubectl get deployment,secret,configmap -n ns -o json` into `dir/all.json`.
pub fn dump_namespace(ns: &str, dir: &Path) {
    std::fs::create_dir_all(dir).expect("dump dir");
    let (ok, stdout, stderr) = kubectl(
        &["get", "deployment,secret,configmap", "-n", ns, "-o", "json"],
        None,
    );
    assert!(ok, "kubectl get failed: {stderr}");
    std::fs::write(dir.join("all.json"), stdout).expect("writing the dump");
}

/// One GrafanaCluster's input to the probe.
pub struct ProbeCluster {
    pub name: String,
    pub input: PathBuf,
    /// namespace/name of the Deployment.
    pub deployment: String,
    pub pod_ips: Vec<String>,
}

/// What the probe said.
pub struct ProbeReport {
    pub json: serde_json::Value,
    pub status: Option<i32>,
    pub stderr: String,
}

impl ProbeReport {
    /// Checks that did not pass: "status name cluster/replica: error" (skips are fine).
    pub fn problems(&self) -> Vec<String> {
        self.checks()
            .filter(|c| c["status"] != "pass" && c["status"] != "skip")
            .map(|c| {
                format!(
                    "{} {} {}/{}: {}",
                    c["status"].as_str().unwrap_or("?"),
                    c["name"].as_str().unwrap_or("?"),
                    c["cluster"].as_str().unwrap_or("?"),
                    c["replica"].as_u64().unwrap_or(0),
                    c["error"].as_str().unwrap_or("")
                )
            })
            .chain(self.ignored_overrides())
            .collect()
    }

    /// GF_ variables the pinned Grafana has no key for (Grafana ignores them silently), as
    /// the probe reports them with the key list.
    pub fn ignored_overrides(&self) -> Vec<String> {
        self.checks()
            .filter(|c| c["name"] == "grafana.settings")
            .filter_map(|c| {
                let ignored = c["details"]["overrides_ignored"].as_array()?;
                (!ignored.is_empty()).then(|| {
                    format!(
                        "ignored grafana.settings {}/{}: no such key in the pinned Grafana's defaults.ini: {ignored:?}",
                        c["cluster"].as_str().unwrap_or("?"),
                        c["replica"].as_u64().unwrap_or(0),
                    )
                })
            })
            .collect()
    }

    /// One line per check: "status name cluster/replica", for the test's log.
    pub fn summary(&self) -> String {
        self.checks()
            .map(|c| {
                format!(
                    "{} {} {}/{}",
                    c["status"].as_str().unwrap_or("?"),
                    c["name"].as_str().unwrap_or("?"),
                    c["cluster"].as_str().unwrap_or("?"),
                    c["replica"].as_u64().unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn checks(&self) -> impl Iterator<Item = &serde_json::Value> {
        self.json["checks"].as_array().into_iter().flatten()
    }

    /// Names of the checks that passed (to assert that the ones a case is about ran).
    pub fn passed(&self) -> Vec<String> {
        self.checks()
            .filter(|c| c["status"] == "pass")
            .map(|c| c["name"].as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// The first passing check's details by name.
    pub fn details(&self, name: &str) -> Vec<&serde_json::Value> {
        self.checks()
            .filter(|c| c["name"] == name)
            .map(|c| &c["details"])
            .collect()
    }
}

/// The host part of each `host:port` in a comma-separated gossip peer list.
pub fn peer_hosts(peers: &str) -> Vec<String> {
    peers
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.rsplit_once(':') {
            Some((host, _)) => host.trim_matches(['[', ']']).to_string(),
            None => p.to_string(),
        })
        .collect()
}

/// Runs the probe over `clusters` (work files under `work`). `resolve` stands for the
/// cluster DNS; `only` limits the check groups; `netns_ipv6` runs it in a private network
/// namespace whose lo carries those (IPv6) addresses.
pub fn run_probe(
    services: &Services,
    clusters: &[ProbeCluster],
    resolve: &BTreeMap<String, Vec<String>>,
    only: &[&str],
    work: &Path,
    netns_ipv6: Option<&[String]>,
) -> ProbeReport {
    let config = serde_json::json!({
        "clusters": clusters.iter().map(|c| serde_json::json!({
            "name": c.name,
            "input": c.input,
            "deployment": c.deployment,
            "podIPs": c.pod_ips,
        })).collect::<Vec<_>>(),
        "resolve": resolve,
        "systemCA": services.public_ca_file,
        "workDir": work.join("probe-work"),
        "only": only,
        "iniKeys": ini_keys(),
    });
    let config_file = work.join("probe.json");
    std::fs::write(&config_file, config.to_string()).expect("writing probe.json");
    let report_file = work.join("report.json");
    let bin = probe_binary();
    let mut cmd = match netns_ipv6 {
        None => {
            let mut c = Command::new(bin);
            c.arg("-config")
                .arg(&config_file)
                .arg("-o")
                .arg(&report_file);
            c
        }
        Some(addrs) => {
            let mut c = Command::new("unshare");
            c.args(["--net", "--", "bash", "-c"])
                .arg(
                    "set -euo pipefail; ip link set lo up; \
                     for a in ${ADDRS//,/ }; do ip -6 addr add \"$a/128\" dev lo nodad; done; \
                     exec \"$@\"",
                )
                .arg("probe-netns")
                .arg(bin)
                .arg("-config")
                .arg(&config_file)
                .arg("-o")
                .arg(&report_file)
                .env("ADDRS", addrs.join(","));
            c
        }
    };
    let out = cmd.output().expect("running the probe");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(&report_file).unwrap_or_else(|e| {
        panic!(
            "the probe wrote no report ({e}; exit {:?}): {stderr}",
            out.status.code()
        )
    });
    ProbeReport {
        json: serde_json::from_str(&text).expect("the probe's report is JSON"),
        status: out.status.code(),
        stderr,
    }
}

/// The key list of the pinned Grafana's defaults.ini (src/settings/), when the checkout has
/// it: the probe then applies only overrides of keys Grafana has and reports the others.
fn ini_keys() -> Option<String> {
    let file = repo_file("src/settings/grafana-defaults-keys.txt");
    Path::new(&file).is_file().then_some(file)
}

/// True when this process can make a private network namespace (root, unshare, ip).
pub fn can_unshare_net() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    root && Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
