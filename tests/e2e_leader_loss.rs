//! Two operator replicas (the real binary) with leader election through a lease loss: the
//! leader's API access is cut for longer than the lease, the standby takes over and
//! converges a change made during the cut, the old leader steps down and, restarted, stands
//! by until it holds the lease again. Judged from the API server's audit log (the test
//! bed's TESTBED_AUDIT_LOG), per replica user agent: the writes of the two replicas never
//! overlap in time. Run alone:
//! `testbed/with-testbed.sh cargo test --test e2e_leader_loss -- --test-threads=1`.
// Tests panic on purpose: a failed step stops the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

use grafana_ha_operator::api::GrafanaCluster;
use support::kube::{namespace, wait_for};
use support::world::{cleanup, cluster_manifest, create_cluster, seed, start};

const BIN: &str = env!("CARGO_BIN_EXE_grafana-ha-operator");
const LEASE: &str = "grafana-ha-operator";
/// The replicas' lease: 6 s, so a renew deadline of 4 s and a retry period of 2 s. Shorter
/// leases make a leader on a loaded machine (CI runs the suite on 2 cores) miss its renew
/// deadline now and then, and step down without any cut.
const LEASE_SECONDS: u64 = 6;

// --- a TCP proxy in front of the API server that can cut a replica off ----------------

#[derive(Default)]
struct ProxyState {
    cut: bool,
    /// Both ends of every connection opened so far, to close them at the cut.
    open: Vec<TcpStream>,
}

/// Forwards TCP to the API server (TLS passes through: the serving certificate names
/// 127.0.0.1 whatever the port). While cut, open connections are closed and new ones are
/// closed as soon as they are accepted: the replica cannot reach the API at all.
struct CutProxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
}

impl CutProxy {
    fn start(upstream: String) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if shared.lock().unwrap().cut {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                {
                    let mut s = shared.lock().unwrap();
                    s.open.push(client.try_clone().expect("clone"));
                    s.open.push(server.try_clone().expect("clone"));
                }
                pipe(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                pipe(server, client);
            }
        });
        CutProxy { port, state }
    }

    fn cut(&self) {
        let mut s = self.state.lock().unwrap();
        s.cut = true;
        for stream in s.open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().cut = false;
    }
}

/// Copies `from` to `to` on a thread until either side closes, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The operator's kubeconfig (the chart's ServiceAccount, like every e2e operator) with
/// the API server address replaced by the proxy's.
async fn kubeconfig_through(proxy: &CutProxy, name: &str) -> PathBuf {
    let original =
        std::fs::read_to_string(support::rbac::operator_kubeconfig().await).expect("kubeconfig");
    let api = std::env::var("TESTBED_APISERVER_URL").expect("TESTBED_APISERVER_URL");
    assert!(original.contains(&api), "the kubeconfig names {api}");
    let path = std::env::temp_dir().join(format!("{name}-kubeconfig"));
    std::fs::write(
        &path,
        original.replace(&api, &format!("https://127.0.0.1:{}", proxy.port)),
    )
    .expect("writing the replica's kubeconfig");
    path
}

fn apiserver_address() -> String {
    let api = std::env::var("TESTBED_APISERVER_URL").expect("TESTBED_APISERVER_URL");
    api.trim_start_matches("https://").to_string()
}

// --- the operator replicas ------------------------------------------------------------

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// One replica: the operator binary with leader election in `ns`, reaching the API
/// server only through its own proxy.
struct Replica {
    identity: String,
    child: std::process::Child,
    log: PathBuf,
    kubeconfig: PathBuf,
    ns: String,
}

impl Replica {
    fn start(ns: &str, identity: &str, kubeconfig: PathBuf, run: u32) -> Replica {
        let log = std::env::temp_dir().join(format!("{identity}-{run}-operator.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = std::process::Command::new(BIN)
            .args([
                "run",
                "--metrics-addr",
                &format!("127.0.0.1:{}", free_port()),
                "--namespaces",
                ns,
                "--leader-election=true",
                "--leader-election-namespace",
                ns,
                "--lease-seconds",
                &LEASE_SECONDS.to_string(),
                "--identity",
                identity,
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "text")
            .env("DISCOVERY_REFRESH_SECONDS", "2")
            .env("RESYNC_SECONDS", "10")
            .env("AWS_ENDPOINT_URL", support::aws::moto_url())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("starting the operator binary");
        Replica {
            identity: identity.to_string(),
            child,
            log,
            kubeconfig,
            ns: ns.to_string(),
        }
    }

    /// The same replica started again (as the kubelet restarts an exited container).
    fn restart(self) -> Replica {
        Replica::start(&self.ns, &self.identity, self.kubeconfig.clone(), 2)
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGTERM, as the kubelet sends; waits for the exit.
    fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..150 {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not stop on SIGTERM:\n{}", self.identity, self.log());
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt(LEASE)
        .await
        .ok()??
        .spec?
        .holder_identity
}

async fn wait_holder(client: &Client, ns: &str, who: &str, timeout: Duration) {
    wait_for(&format!("{who} holding the lease"), timeout, || async {
        (holder(client, ns).await.as_deref() == Some(who)).then_some(())
    })
    .await;
}

async fn deployment_replicas(client: &Client, ns: &str) -> Option<i32> {
    let list = Api::<Deployment>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .ok()?;
    list.items.first()?.spec.as_ref()?.replicas
}

async fn set_replicas(client: &Client, ns: &str, replicas: i32) {
    Api::<GrafanaCluster>::namespaced(client.clone(), ns)
        .patch(
            "grafana",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await
        .expect("changing the GrafanaCluster");
}

// --- the audit log --------------------------------------------------------------------

/// One write request of a replica, from the audit log.
#[derive(Clone, Debug)]
struct Write {
    who: String,
    received: Timestamp,
    completed: Timestamp,
    verb: String,
    what: String,
    code: i64,
    lease: bool,
}

impl std::fmt::Display for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} .. {}  {:<8} {:<6} {:<7} {} ({})",
            self.received,
            self.completed,
            self.who,
            self.verb,
            if self.lease { "LEASE" } else { "write" },
            self.what,
            self.code
        )
    }
}

/// Every write request whose user agent names one of `identities`, in received order.
fn audit_writes(identities: &[&str]) -> Vec<Write> {
    let path = std::env::var("TESTBED_AUDIT_LOG")
        .expect("TESTBED_AUDIT_LOG: the test bed's audit log (testbed/up.sh)");
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("reading the audit log");
    let mut writes = Vec::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if event["stage"] != "ResponseComplete" {
            continue;
        }
        let agent = event["userAgent"].as_str().unwrap_or_default();
        let Some(who) = identities
            .iter()
            .find(|id| agent.ends_with(&format!("({id})")))
        else {
            continue;
        };
        let at = |field: &str| -> Timestamp {
            event[field]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{field} in {line}"))
        };
        let object = &event["objectRef"];
        let resource = object["resource"].as_str().unwrap_or_default();
        let sub = object["subresource"]
            .as_str()
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        writes.push(Write {
            who: who.to_string(),
            received: at("requestReceivedTimestamp"),
            completed: at("stageTimestamp"),
            verb: event["verb"].as_str().unwrap_or_default().to_string(),
            what: format!(
                "{resource}{sub} {}",
                object["name"].as_str().unwrap_or_default()
            ),
            code: event["responseStatus"]["code"].as_i64().unwrap_or(0),
            lease: resource == "leases",
        });
    }
    writes.sort_by_key(|w| w.received);
    writes
}

/// The runs of non-lease writes by one replica after another, and what is wrong at each
/// handover: a first write that began before the other replica's last write completed, or
/// no successful lease write of the new writer in between.
fn overlaps(writes: &[Write]) -> (Vec<(String, usize)>, Vec<String>) {
    let mut runs: Vec<(String, usize)> = Vec::new();
    let mut problems = Vec::new();
    let mut previous: Option<&Write> = None;
    for w in writes.iter().filter(|w| !w.lease) {
        match runs.last_mut() {
            Some((who, n)) if *who == w.who => *n += 1,
            _ => {
                if let Some(p) = previous {
                    // A handover: the new writer's first write began after the old one's
                    // last write completed, and after it took the lease.
                    if w.received < p.completed {
                        problems.push(format!("overlap: [{w}] began before [{p}] ended"));
                    }
                    let took_lease = writes.iter().any(|l| {
                        l.lease
                            && l.who == w.who
                            && l.code < 300
                            && l.received >= p.completed
                            && l.completed <= w.received
                    });
                    if !took_lease {
                        problems.push(format!(
                            "{} wrote [{w}] without renewing the lease since [{p}]",
                            w.who
                        ));
                    }
                }
                runs.push((w.who.clone(), 1));
            }
        }
        previous = Some(w);
    }
    // A write of the other replica inside a run splits it (the writes are sorted by when
    // they were received): the caller's check of the run order catches that.
    (runs, problems)
}

fn timeline(writes: &[Write], marks: &[(Timestamp, String)]) -> String {
    let mut lines: Vec<(Timestamp, String)> =
        writes.iter().map(|w| (w.received, w.to_string())).collect();
    lines.extend(marks.iter().map(|(t, m)| (*t, format!("{t}  ---- {m}"))));
    lines.sort_by_key(|(t, _)| *t);
    lines
        .into_iter()
        .map(|(_, l)| l)
        .collect::<Vec<_>>()
        .join("\n")
}

// --- the test -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_steps_down_and_the_writers_never_overlap() {
    let started = Instant::now();
    let (client, aws) = start().await;
    let seeded = seed(&aws, "lease-loss").await;
    let ns = namespace(&client, "lease-loss").await;
    support::rbac::bind_leader_role(&client, &ns).await;
    let (id_a, id_b) = (format!("{ns}-a"), format!("{ns}-b"));
    let proxy_a = CutProxy::start(apiserver_address());
    let proxy_b = CutProxy::start(apiserver_address());
    let mut marks: Vec<(Timestamp, String)> = Vec::new();
    let mut mark = |what: String| marks.push((Timestamp::now(), what));

    create_cluster(
        &client,
        cluster_manifest(&ns, &seeded.tag, 2, serde_json::json!({})),
    )
    .await;
    let mut a = Replica::start(&ns, &id_a, kubeconfig_through(&proxy_a, &id_a).await, 1);
    wait_holder(&client, &ns, &id_a, Duration::from_secs(20)).await;
    let b = Replica::start(&ns, &id_b, kubeconfig_through(&proxy_b, &id_b).await, 1);
    wait_for(
        "A applying the Deployment",
        Duration::from_secs(30),
        || async { (deployment_replicas(&client, &ns).await == Some(2)).then_some(()) },
    )
    .await;
    // Let A's first reconcile finish writing (status, Events) before the cut.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Cut A off; change the cluster while it cannot see it.
    mark(format!("cut {id_a} off"));
    let cut_at = Instant::now();
    proxy_a.cut();
    set_replicas(&client, &ns, 3).await;
    mark("replicas 2 -> 3".into());

    // A steps down at its renew deadline (4 s after its last renewal) and exits.
    let status = wait_for("A stepping down", Duration::from_secs(12), || {
        let exited = a.exited();
        async move { exited }
    })
    .await;
    let stepped_down = cut_at.elapsed();
    let a_exited_at = Timestamp::now();
    mark(format!("{id_a} exited ({status})"));
    assert!(!status.success(), "A exits to restart as a candidate");
    assert!(
        a.log().contains("stepping down"),
        "A's log says why it stopped:\n{}",
        a.log()
    );

    // B takes over and converges the change.
    wait_holder(&client, &ns, &id_b, Duration::from_secs(15)).await;
    let took_over = cut_at.elapsed();
    mark(format!("{id_b} holds the lease"));
    wait_for(
        "B converging replicas 3",
        Duration::from_secs(30),
        || async { (deployment_replicas(&client, &ns).await == Some(3)).then_some(()) },
    )
    .await;
    mark(format!("{id_b} converged"));

    // The cut outlasts the lease; then A comes back (restarted, as by the kubelet) and
    // stands by while B holds the lease, even when the cluster changes again.
    let min_cut = Duration::from_secs(LEASE_SECONDS + 2);
    if let Some(rest) = min_cut.checked_sub(cut_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    proxy_a.restore();
    let cut_for = cut_at.elapsed();
    mark(format!("{id_a} reconnected after {cut_for:?}"));
    let a = a.restart();
    let kubeconfigs = [a.kubeconfig.clone(), b.kubeconfig.clone()];
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_replicas(&client, &ns, 2).await;
    mark("replicas 3 -> 2".into());
    wait_for(
        "B converging replicas 2",
        Duration::from_secs(30),
        || async { (deployment_replicas(&client, &ns).await == Some(2)).then_some(()) },
    )
    .await;
    assert_eq!(holder(&client, &ns).await.as_deref(), Some(id_b.as_str()));
    assert!(
        a.log().contains("standing by"),
        "the restarted A stands by:\n{}",
        a.log()
    );

    // B stops gracefully and releases the lease: A leads again and writes again.
    mark(format!("SIGTERM {id_b}"));
    b.stop();
    wait_holder(&client, &ns, &id_a, Duration::from_secs(15)).await;
    mark(format!("{id_a} holds the lease again"));
    // It converges a change (an unchanged cluster needs no write at all).
    set_replicas(&client, &ns, 3).await;
    mark("replicas 2 -> 3".into());
    wait_for(
        "A converging replicas 3",
        Duration::from_secs(30),
        || async { (deployment_replicas(&client, &ns).await == Some(3)).then_some(()) },
    )
    .await;
    a.stop();
    // They hold the bed's admin key; the bed is gone after the run, the copies would not be.
    for path in &kubeconfigs {
        let _ = std::fs::remove_file(path);
    }

    let ids = [id_a.as_str(), id_b.as_str()];
    let writes = audit_writes(&ids);
    let (runs, problems) = overlaps(&writes);
    let timeline = timeline(&writes, &marks);
    let expected: Vec<&str> = vec![&id_a, &id_b, &id_a];
    let order: Vec<&str> = runs.iter().map(|(w, _)| w.as_str()).collect();
    assert!(
        problems.is_empty() && order == expected,
        "writer runs {runs:?} (expected A, B, A); problems:\n{}\n\ntimeline:\n{timeline}",
        problems.join("\n")
    );
    // A had stopped (at its renew deadline) before B could take the lease (at the lease's
    // expiry): leading until the lease itself ran out would have raced B.
    let b_acquired = writes
        .iter()
        .filter(|w| w.lease && w.who == id_b && w.code < 300)
        .map(|w| w.received)
        .min()
        .expect("B's lease acquisition in the audit log");
    // Sharper, and independent of when B's retry happened to come: A stopped before its own
    // lease ran out (its last renewal + the lease duration), which is what makes a takeover
    // safe. Leading until the lease expired (the old behaviour) fails this every time.
    let a_last_renewal = writes
        .iter()
        .filter(|w| w.lease && w.who == id_a && w.code < 300 && w.received < a_exited_at)
        .map(|w| w.received)
        .max()
        .expect("A's renewals in the audit log");
    let lease_end = a_last_renewal
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(
            LEASE_SECONDS as i64,
        ))
        .expect("time");
    assert!(
        a_exited_at < lease_end,
        "A exited at {a_exited_at} (seen by the test), not before its lease ran out at \
         {lease_end}:\n{timeline}"
    );
    assert!(
        a_exited_at < b_acquired,
        "A exited at {a_exited_at} (seen by the test), after B took the lease at \
         {b_acquired}:\n{timeline}"
    );
    eprintln!(
        "writer runs {runs:?}; A stepped down {stepped_down:?} after the cut, {:.2} s before \
         its lease ran out; B held the lease {took_over:?} after the cut; the cut lasted \
         {cut_for:?}; {} audited writes of the two replicas; test took {:?}",
        lease_end.duration_since(a_exited_at).as_secs_f64(),
        writes.len(),
        started.elapsed()
    );
    cleanup(&client, &ns).await;
}
