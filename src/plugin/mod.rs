//! `kubectl appstack`, the kubectl plugin (binary `kubectl-appstack`): `status`, `render` and
//! `psql`. It reads the kubeconfig as kubectl does (`--kubeconfig`, else `KUBECONFIG`, else
//! `~/.kube/config`; `--context`; `--namespace`/`-n`, else the context's namespace).

pub mod psql;
pub mod status;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::render;

#[derive(Parser)]
#[command(
    name = "kubectl appstack",
    bin_name = "kubectl appstack",
    version,
    about = "Look at and into AppStacks: status, render, psql"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// kubectl's connection flags, accepted anywhere on the line.
#[derive(clap::Args, Clone, Debug, Default)]
struct Global {
    /// Namespace of the stack (default: the context's namespace, else `default`).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// kubeconfig context to use (default: the current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// kubeconfig file (default: `KUBECONFIG`, else `~/.kube/config`).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Show the stack and every child as a tree, with readiness and the reason of anything not
    /// ready.
    Status {
        /// Name of the AppStack.
        name: String,
    },
    /// Print every object the operator would apply for the AppStacks in a file, offline.
    Render {
        /// Manifest with one or more AppStacks (`-` reads standard input).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// Run psql in the stack's database pod as the stack's database user (the password stays in
    /// the pod). Arguments after `--` go to psql.
    Psql {
        /// Name of the AppStack.
        name: String,
        /// Arguments for psql, e.g. `-- -c 'select 1'`.
        #[arg(last = true)]
        psql_args: Vec<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Status { name } => {
            let (client, namespace) = connect(&cli.global).await?;
            let snapshot = status::read(&client, &namespace, &name).await?;
            let (header, rows) = status::report(&snapshot);
            print!("{}", status::format(&header, &rows));
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { file } => {
            let namespace = match &cli.global.namespace {
                Some(namespace) => namespace.clone(),
                // Offline is fine: the context's namespace if there is a kubeconfig.
                None => config(&cli.global)
                    .await
                    .map(|c| c.default_namespace)
                    .unwrap_or_else(|_| "default".into()),
            };
            let manifest = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            print!("{}", render::render(&manifest, &namespace)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Psql { name, psql_args } => {
            let (client, namespace) = connect(&cli.global).await?;
            let pod = psql::database_pod(&client, &namespace, &name).await?;
            let target = psql::Target {
                kubeconfig: cli
                    .global
                    .kubeconfig
                    .as_ref()
                    .map(|p| p.display().to_string()),
                context: cli.global.context.clone(),
                namespace,
            };
            let args =
                psql::kubectl_args(&target, &pod, std::io::stdin().is_terminal(), &psql_args);
            exec_kubectl(&args)
        }
    }
}

/// The kubeconfig as kubectl reads it, with `--context` applied.
async fn config(global: &Global) -> anyhow::Result<Config> {
    let options = KubeConfigOptions {
        context: global.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &global.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &options).await?
        }
        None => Config::from_kubeconfig(&options)
            .await
            .context("cannot read the kubeconfig (KUBECONFIG or ~/.kube/config)")?,
    };
    Ok(config)
}

/// A client and the namespace to look in.
async fn connect(global: &Global) -> anyhow::Result<(Client, String)> {
    let config = config(global).await?;
    let namespace = global
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
}

/// Replace this process with kubectl, so that the terminal and signals are kubectl's.
fn exec_kubectl(args: &[String]) -> anyhow::Result<ExitCode> {
    let mut command = std::process::Command::new("kubectl");
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        let error = command.exec();
        Err(anyhow::anyhow!("cannot run kubectl: {error}"))
    }
    #[cfg(not(unix))]
    {
        let status = command.status().context("cannot run kubectl")?;
        Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_flags_are_accepted_anywhere() {
        for line in [
            &[
                "kubectl-appstack",
                "status",
                "books",
                "-n",
                "shop",
                "--context",
                "prod",
            ][..],
            &[
                "kubectl-appstack",
                "-n",
                "shop",
                "--context=prod",
                "status",
                "books",
            ][..],
        ] {
            let cli = Cli::try_parse_from(line).unwrap();
            assert_eq!(cli.global.namespace.as_deref(), Some("shop"), "{line:?}");
            assert_eq!(cli.global.context.as_deref(), Some("prod"), "{line:?}");
            assert!(matches!(cli.command, Command::Status { ref name } if name == "books"));
        }
        let cli =
            Cli::try_parse_from(["kubectl-appstack", "psql", "books", "--", "-c", "select 1"])
                .unwrap();
        let Command::Psql { name, psql_args } = cli.command else {
            panic!("psql")
        };
        assert_eq!(
            (name.as_str(), psql_args),
            ("books", vec!["-c".into(), "select 1".into()])
        );
    }
}
