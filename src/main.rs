//! `appstack-operator`: `run` the controller (default), print the `crd`, or `render` a stack offline.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use appstack_operator::controller::{self, Context, Scope};
use appstack_operator::crd::AppStack;
use appstack_operator::metrics::Metrics;
use appstack_operator::telemetry::{self, LogFormat};
use appstack_operator::{render, server};
use clap::{Parser, Subcommand};
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
    /// Name of this instance in Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    instance: Option<String>,
}

fn main() -> ExitCode {
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
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone(), args.instance));
    let scope = Scope {
        namespace: args.namespace,
    };
    tracing::info!(namespace = ?scope.namespace, version = env!("CARGO_PKG_VERSION"), "starting appstack-operator");
    let app = server::router(metrics, ready.clone());
    // The controller stops on SIGTERM/SIGINT after in-flight reconciles finish; the HTTP server
    // goes with it.
    tokio::select! {
        () = controller::run(client, scope, ctx, ready) => Ok(()),
        served = server::serve(args.metrics_address, app) => {
            served.with_context(|| format!("cannot serve on {}", args.metrics_address))
        }
    }
}
