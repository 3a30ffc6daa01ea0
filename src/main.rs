//! `appstack-operator`: `run` the controller (default), print the `crd`, or `render` a stack offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use appstack_operator::controller::{self, Context, Scope};
use appstack_operator::crd::AppStack;
use appstack_operator::leader::{DEFAULT_LEASE_SECONDS, Elector, Leadership, Timing};
use appstack_operator::metrics::Metrics;
use appstack_operator::telemetry::{self, LogFormat};
use appstack_operator::{render, server};
use clap::{Parser, Subcommand};
use futures::FutureExt;
use kube::CustomResourceExt;

#[derive(Parser)]
#[command(
    version,
    about = "Runs a Flask API, Postgres and a React frontend from one AppStack resource"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand: the options of `run`.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (the default).
    Run(RunArgs),
    /// Print the AppStack CustomResourceDefinition as YAML.
    Crd,
    /// Print every object the operator would apply for the AppStacks in a file, without a cluster.
    Render {
        /// Manifest with one or more AppStacks (`-` reads standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// Namespace for stacks that name none.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Watch only this namespace (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Address of the /metrics, /healthz and /readyz endpoints.
    #[arg(long, env = "METRICS_ADDRESS", default_value = "0.0.0.0:8080")]
    metrics_address: SocketAddr,
    /// Name of this instance in Events and the Lease (the pod name in a cluster; default: the
    /// host name).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
    /// Elect a leader on a Lease, so that of several replicas only one reconciles. Turn it off
    /// only for a single replica outside a cluster (no operator namespace to hold the Lease).
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the Lease: the operator's own.
    #[arg(long, env = "POD_NAMESPACE", default_value = "appstack-system")]
    lease_namespace: String,
    /// How long the Lease of a leader that stopped renewing is honoured: a SIGKILLed leader is
    /// replaced after about this long. Shorter fails over sooner but makes a leader step down
    /// during a shorter outage of the API server.
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = DEFAULT_LEASE_SECONDS,
        value_parser = clap::value_parser!(u64).range(2..=300))]
    lease_duration_seconds: u64,
}

fn main() -> ExitCode {
    // Before the runtime starts its threads.
    if !appstack_operator::memory::tune_malloc() {
        eprintln!("warning: glibc refused a malloc tunable; memory use will be higher");
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Crd) => print_crd(),
        Some(Command::Render { file, namespace }) => render_file(&file, &namespace),
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_crd() -> anyhow::Result<()> {
    print!("{}", serde_saphyr::to_string(&AppStack::crd())?);
    Ok(())
}

fn render_file(file: &PathBuf, namespace: &str) -> anyhow::Result<()> {
    let manifest = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    print!("{}", render::render(&manifest, namespace)?);
    Ok(())
}

#[tokio::main]
async fn run(args: RunArgs) -> anyhow::Result<()> {
    telemetry::init(args.log_format);
    let client = kube::Client::try_default()
        .await
        .context("cannot reach Kubernetes (in-cluster config or KUBECONFIG)")?;
    let identity = match args.instance {
        Some(instance) => instance,
        None => hostname()?,
    };
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    // Reconciles get a client of their own that counts their requests; watches are not counted.
    let reconcile_client = appstack_operator::request_count::counted_client(metrics.clone())
        .await
        .context("cannot reach Kubernetes (in-cluster config or KUBECONFIG)")?;
    let ctx = Arc::new(Context::new(
        reconcile_client,
        metrics.clone(),
        Some(identity.clone()),
    ));
    let scope = Scope {
        namespace: args.namespace,
    };
    tracing::info!(namespace = ?scope.namespace, %identity, version = env!("CARGO_PKG_VERSION"), "starting appstack-operator");
    let leadership = Arc::new(if args.leader_election {
        Leadership::default()
    } else {
        Leadership::sole()
    });
    let app = server::router(metrics.clone(), ready.clone(), leadership.clone());
    let replica = Replica {
        client,
        scope,
        ctx,
        ready,
        metrics,
    };
    let work = async {
        if args.leader_election {
            // A client of its own: renewals never queue behind the controller's requests.
            let lease_client = kube::Client::try_default()
                .await
                .context("cannot reach Kubernetes (in-cluster config or KUBECONFIG)")?;
            let elector = Elector::new(
                lease_client,
                &args.lease_namespace,
                &identity,
                Timing::for_lease(Duration::from_secs(args.lease_duration_seconds)),
                leadership,
            );
            replica.run_elected(elector).await;
        } else {
            replica.metrics.set_leader(true);
            let ready = replica.ready.clone();
            controller::run_until(
                replica.client,
                replica.scope,
                replica.ctx,
                ready,
                stopping(),
            )
            .await;
        }
        Ok::<(), anyhow::Error>(())
    };
    // The HTTP server goes when the controller has stopped.
    tokio::select! {
        worked = work => worked,
        served = server::serve(args.metrics_address, app) => {
            served.with_context(|| format!("cannot serve on {}", args.metrics_address))
        }
    }
}

/// How long a SIGTERMed leader waits for its in-flight reconciles before it releases the Lease
/// anyway: well within the pod's termination grace period (30 s in deploy/install.yaml).
const DRAIN: Duration = Duration::from_secs(20);

/// What one replica runs.
struct Replica {
    client: kube::Client,
    scope: Scope,
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl Replica {
    /// Stand by until this replica holds the Lease, then run the controller while it does. On
    /// SIGTERM: a standby exits at once; the leader stops the controller gracefully (in-flight
    /// reconciles finish, for at most [`DRAIN`]) and releases the Lease. A leader that loses the
    /// Lease stops the controller at once and stands by again.
    async fn run_elected(&self, mut elector: Elector) {
        let signal = stopping().shared();
        loop {
            tokio::select! {
                () = elector.acquire() => {}
                () = signal.clone() => return,
            }
            self.metrics.set_leader(true);
            let controller = controller::run_until(
                self.client.clone(),
                self.scope.clone(),
                self.ctx.clone(),
                self.ready.clone(),
                signal.clone(),
            );
            let drain_expired = async {
                signal.clone().await;
                tokio::time::sleep(DRAIN).await;
            };
            let stopped = tokio::select! {
                () = controller => true,
                () = drain_expired => {
                    tracing::warn!(drain = ?DRAIN, "in-flight reconciles did not finish in time");
                    true
                }
                () = elector.hold() => false,
            };
            self.metrics.set_leader(false);
            self.ready.store(false, Ordering::Relaxed);
            if stopped {
                elector.release().await;
                return;
            }
            tracing::warn!("lost the Lease: controller stopped, standing by");
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
fn stopping() -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async {
        controller::shutdown_signal().await;
        tracing::info!("shutdown requested");
    })
}

fn hostname() -> anyhow::Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("no --instance/POD_NAME given and the host name cannot be read")?;
    Ok(name.trim().to_owned())
}
