//! grafana-ha-operator: `run` the controller, print the `crd`, or `render` a GrafanaCluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube::CustomResourceExt;

use grafana_ha_operator::api::GrafanaCluster;
use grafana_ha_operator::aws::{Discovery, DiscoveryConfig};
use grafana_ha_operator::leader::{LeaderElector, LeaseConfig};
use grafana_ha_operator::metrics::Metrics;
use grafana_ha_operator::reconcile::{self, ControllerConfig};
use grafana_ha_operator::render;
use grafana_ha_operator::server::{self, Health};
use grafana_ha_operator::telemetry::{self, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "grafana-ha-operator",
    version,
    about = "Runs Grafana highly available on AWS (RDS, ElastiCache, EFS)"
)]
struct Cli {
    /// Log line format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the GrafanaCluster CustomResourceDefinition as YAML.
    Crd,
    /// Print the objects the controller would apply for a GrafanaCluster, as YAML.
    Render(RenderArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// Watch only these namespaces, comma-separated (default: all namespaces).
    #[arg(long = "namespaces", env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Elect a leader through a Lease so only one replica reconciles.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader Lease (default: the pod's namespace, POD_NAMESPACE).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "LEADER_ELECTION_LEASE",
        default_value = "grafana-ha-operator"
    )]
    lease_name: String,
    /// Lease duration in seconds: a standby takes over this long after the leader's last
    /// renewal.
    #[arg(long, env = "LEADER_ELECTION_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
    /// How long the leader keeps reconciling without renewing its lease, in seconds; it
    /// then stops every reconcile and exits. Must be shorter than the lease duration
    /// (default: two thirds of it, 10 for 15).
    #[arg(long, env = "LEADER_ELECTION_RENEW_DEADLINE_SECONDS")]
    renew_deadline_seconds: Option<u64>,
    /// How often the leader renews its lease and a standby tries to take it, in seconds
    /// (default: 2, or half the renew deadline when that is shorter).
    #[arg(long, env = "LEADER_ELECTION_RETRY_PERIOD_SECONDS")]
    retry_period_seconds: Option<u64>,
    /// This instance's identity (default: POD_NAME, else the host name and process id).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long AWS discovery results are cached, in seconds (shared by all clusters).
    #[arg(long, env = "DISCOVERY_REFRESH_SECONDS", default_value_t = 60)]
    discovery_refresh_seconds: u64,
    /// Reconciles running at once (0: unbounded).
    #[arg(long, env = "MAX_CONCURRENT_RECONCILES", default_value_t = grafana_ha_operator::reconcile::context::DEFAULT_CONCURRENCY)]
    max_concurrent_reconciles: u16,
    /// Re-check healthy clusters this often, in seconds.
    #[arg(long, env = "RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// How long the answer to "does the cluster serve the Gateway API / the Prometheus
    /// Operator's ServiceMonitor?" is cached, in seconds (one discovery call per API and
    /// interval, shared by all clusters).
    #[arg(long, env = "OPTIONAL_API_REFRESH_SECONDS", default_value_t = 60)]
    optional_api_refresh_seconds: u64,
    /// AWS region used when a GrafanaCluster names none (default: the SDK's, AWS_REGION).
    #[arg(long, env = "DEFAULT_AWS_REGION")]
    default_region: Option<String>,
    /// Create the EFS access point a GrafanaCluster's plugins need when none is named or
    /// tagged (needs elasticfilesystem:CreateAccessPoint and TagResource); false: refuse.
    #[arg(long, env = "CREATE_ACCESS_POINTS", default_value_t = true, action = clap::ArgAction::Set)]
    create_access_points: bool,
    /// Take the RDS snapshot a GrafanaCluster asks for before a minor or major upgrade
    /// (spec.upgrade.snapshot; needs rds:CreateDBSnapshot and friends); false: such an
    /// upgrade reports SnapshotFailed.
    #[arg(long, env = "PRE_UPGRADE_SNAPSHOTS", default_value_t = true, action = clap::ArgAction::Set)]
    pre_upgrade_snapshots: bool,
}

#[derive(clap::Args, Debug)]
struct RenderArgs {
    /// The GrafanaCluster manifest.
    #[arg(short = 'f', long = "filename")]
    file: PathBuf,
    /// Read referenced Secrets through this kubeconfig (otherwise they are left out).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Crd => match serde_yaml::to_string(&GrafanaCluster::crd()) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Render(args) => render_command(args).await,
        Command::Run(args) => match run(args).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "operator stopped");
                ExitCode::FAILURE
            }
        },
    }
}

async fn render_command(args: RenderArgs) -> ExitCode {
    let fail = |e: render::RenderError| {
        eprintln!("error: {e}");
        ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
    };
    let manifest = match std::fs::read_to_string(&args.file) {
        Ok(m) => m,
        Err(e) => {
            return fail(render::RenderError::Parse(format!(
                "{}: {e}",
                args.file.display()
            )));
        }
    };
    let gc = match render::parse(&manifest) {
        Ok(gc) => gc,
        Err(e) => return fail(e),
    };
    let client = match &args.kubeconfig {
        None => None,
        Some(path) => match client_from(path).await {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("error: kubeconfig {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let discovery = Discovery::from_env(DiscoveryConfig::default(), Metrics::new()).await;
    match render::render(&gc, &discovery, client.as_ref()).await {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

async fn client_from(path: &std::path::Path) -> Result<kube::Client, String> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// A client for the configured cluster (in-cluster, or KUBECONFIG) whose requests carry a
/// user agent naming this instance, so API server audit logs and request metrics tell the
/// replicas apart.
async fn kube_client(identity: &str) -> Result<kube::Client, String> {
    let mut config = kube::Config::infer().await.map_err(|e| e.to_string())?;
    let agent = user_agent(identity);
    match axum::http::HeaderValue::from_str(&agent) {
        Ok(value) => config.headers.push((axum::http::header::USER_AGENT, value)),
        Err(e) => tracing::warn!(error = %e, "the instance identity does not fit a user agent"),
    }
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// `grafana-ha-operator/<version> (<identity>)`, the identity reduced to visible ASCII.
fn user_agent(identity: &str) -> String {
    let identity: String = identity
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    format!(
        "grafana-ha-operator/{} ({identity})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The namespaces to watch: one controller each, or one for all (None).
fn watched_namespaces(args: &RunArgs) -> Vec<Option<String>> {
    let listed: Vec<String> = args
        .namespaces
        .iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if listed.is_empty() {
        vec![None]
    } else {
        listed.into_iter().map(Some).collect()
    }
}

/// How waiting for the lease ended.
enum Election {
    /// Leader (or no election asked for): reconcile. With the instant the lease was won.
    Lead(Option<(Box<LeaderElector>, tokio::time::Instant)>),
    /// Asked to stop while waiting.
    ShutDown,
}

async fn elect(
    args: &RunArgs,
    client: &kube::Client,
    identity: &str,
    namespaces: &[Option<String>],
) -> Result<Election, String> {
    if !args.leader_election {
        return Ok(Election::Lead(None));
    }
    let namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .or_else(|| namespaces.first().cloned().flatten())
        .unwrap_or_else(|| "default".into());
    let lease_duration = Duration::from_secs(args.lease_seconds.max(2));
    let renew_deadline = args.renew_deadline_seconds.map_or(
        LeaseConfig::default_renew_deadline(lease_duration),
        Duration::from_secs,
    );
    let lease = LeaseConfig {
        namespace,
        name: args.lease_name.clone(),
        identity: identity.to_string(),
        lease_duration,
        renew_deadline,
        retry_period: args.retry_period_seconds.map_or(
            LeaseConfig::default_retry_period(renew_deadline),
            Duration::from_secs,
        ),
    };
    lease.validate().map_err(|e| e.to_string())?;
    let elector = LeaderElector::new(client.clone(), lease);
    let acquired_at = tokio::select! {
        r = elector.acquire() => r.map_err(|e| e.to_string())?,
        _ = shutdown_signal() => return Ok(Election::ShutDown),
    };
    Ok(Election::Lead(Some((Box::new(elector), acquired_at))))
}

/// One controller per watched namespace (or one for all), sharing the discovery cache;
/// they stop when `true` is sent on the returned channel.
fn spawn_controllers(
    client: &kube::Client,
    discovery: &Discovery,
    metrics: &Metrics,
    config: &ControllerConfig,
    namespaces: Vec<Option<String>>,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinSet<()>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut controllers = tokio::task::JoinSet::new();
    for namespace in namespaces {
        let mut stop = stop_rx.clone();
        controllers.spawn(reconcile::run(
            client.clone(),
            discovery.clone(),
            metrics.clone(),
            ControllerConfig {
                namespace,
                ..config.clone()
            },
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            },
        ));
    }
    (stop_tx, controllers)
}

async fn run(args: RunArgs) -> Result<(), String> {
    let metrics = Metrics::new();
    let health = Health::new(metrics.clone());
    let server = tokio::spawn(server::serve(args.metrics_addr, health.clone()));

    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        format!("{host}-{}", std::process::id())
    });
    let client = kube_client(&identity)
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| format!("reaching the Kubernetes API: {e}"))?;
    let discovery = Discovery::from_env(
        DiscoveryConfig {
            refresh_interval: Duration::from_secs(args.discovery_refresh_seconds.max(1)),
            default_region: args.default_region.clone(),
        },
        metrics.clone(),
    )
    .await;
    let namespaces = watched_namespaces(&args);
    let config = ControllerConfig {
        namespace: None,
        resync_interval: Duration::from_secs(args.resync_seconds.max(10)),
        instance: identity.clone(),
        create_access_points: args.create_access_points,
        pre_upgrade_snapshots: args.pre_upgrade_snapshots,
        optional_api_refresh: Duration::from_secs(args.optional_api_refresh_seconds.max(1)),
        concurrency: args.max_concurrent_reconciles,
        ..ControllerConfig::default()
    };
    health.set_ready(true);

    let elector = match elect(&args, &client, &identity, &namespaces).await? {
        Election::Lead(elector) => elector,
        Election::ShutDown => return Ok(()),
    };
    metrics.set_leader(true);
    tracing::info!(%identity, ?namespaces, "starting the controller");
    let (stop_tx, mut controllers) =
        spawn_controllers(&client, &discovery, &metrics, &config, namespaces);
    let outcome = match &elector {
        Some((elector, acquired_at)) => tokio::select! {
            lost = elector.hold(*acquired_at) => Err(lost.to_string()),
            _ = shutdown_signal() => Ok(()),
        },
        None => {
            shutdown_signal().await;
            Ok(())
        }
    };
    if outcome.is_ok() {
        // Graceful stop: let running reconciles finish, then give the lease up, so two
        // leaders never overlap and the standby need not wait for the lease to expire.
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(20), async {
            while controllers.join_next().await.is_some() {}
        })
        .await;
    } else {
        // Leadership lost (or the renew deadline passed): a standby may lead soon, so no
        // reconcile may write any more. Abort them mid-flight instead of letting them
        // finish; the process then exits and comes back as a candidate.
        controllers.shutdown().await;
    }
    metrics.set_leader(false);
    if let Some((elector, _)) = &elector
        && outcome.is_ok()
    {
        elector.release().await;
    }
    server.abort();
    outcome
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::user_agent;

    #[test]
    fn the_user_agent_names_the_instance() {
        let agent = user_agent("grafana-ha-operator-7d9f-x2 \u{e9}");
        assert!(agent.starts_with("grafana-ha-operator/"), "{agent}");
        assert!(
            agent.ends_with("(grafana-ha-operator-7d9f-x2__)"),
            "{agent}"
        );
        assert!(axum::http::HeaderValue::from_str(&agent).is_ok());
    }
}
