//! `kubectl appstack psql NAME [-- PSQL_ARGS]`: `psql` in the stack's database pod, as the
//! stack's database user.
//!
//! It runs `kubectl exec` (which handles the terminal, resizes and signals) with a shell in the
//! Postgres container that starts psql with the container's own `POSTGRES_USER`,
//! `POSTGRES_PASSWORD` and `POSTGRES_DB`: the operator put them there from the stack's Secret. The
//! password is never read by this plugin, never printed, and never on a command line (`ps` shows
//! `$POSTGRES_PASSWORD`, not its value); psql gets it from `PGPASSWORD` inside the container and
//! connects over the pod's loopback, which no NetworkPolicy filters.

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use super::status::pod_state;
use crate::resources::{APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME};
use crate::stack::Component;

/// The Postgres container of the database pod (see `resources::database`).
pub const CONTAINER: &str = "postgres";

/// Runs in the container: `$@` are the user's psql arguments. No history file: the container's
/// root is read-only, and a session's SQL is not worth keeping in the pod.
const SCRIPT: &str = r#"PGPASSWORD="$POSTGRES_PASSWORD" PSQL_HISTORY=/dev/null exec psql --host 127.0.0.1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@""#;

/// Where `kubectl` must point: the same kubeconfig and context as the plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: String,
}

/// The database pod of stack `name`: a ready one, else any.
pub async fn database_pod(client: &Client, namespace: &str, name: &str) -> anyhow::Result<String> {
    let selector = format!(
        "{LABEL_NAME}={APP_NAME},{LABEL_INSTANCE}={name},{LABEL_COMPONENT}={}",
        Component::Database.label()
    );
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await?;
    let pod = pods
        .items
        .iter()
        .find(|pod| pod_state(pod).0)
        .or_else(|| pods.items.first())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no database pod of AppStack {name} in namespace {namespace} (kubectl appstack status {name} says why)"
            )
        })?;
    Ok(pod.name_any())
}

/// The `kubectl` arguments that start psql in `pod`. `interactive_terminal`: stdin is a
/// terminal, so ask for one in the container too.
pub fn kubectl_args(
    target: &Target,
    pod: &str,
    interactive_terminal: bool,
    psql_args: &[String],
) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(kubeconfig) = &target.kubeconfig {
        args.extend(["--kubeconfig".into(), kubeconfig.clone()]);
    }
    if let Some(context) = &target.context {
        args.extend(["--context".into(), context.clone()]);
    }
    args.extend([
        "exec".into(),
        "--namespace".into(),
        target.namespace.clone(),
        if interactive_terminal { "-it" } else { "-i" }.into(),
        pod.into(),
        "--container".into(),
        CONTAINER.into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        // $0 of the script.
        "psql".into(),
    ]);
    args.extend(psql_args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execs_psql_with_the_container_credentials_and_no_password_on_the_line() {
        let target = Target {
            kubeconfig: Some("/tmp/kc".into()),
            context: Some("prod".into()),
            namespace: "shop".into(),
        };
        let args = kubectl_args(
            &target,
            "books-db-0",
            false,
            &["-c".into(), "select 1".into()],
        );
        assert_eq!(
            args[..12],
            [
                "--kubeconfig",
                "/tmp/kc",
                "--context",
                "prod",
                "exec",
                "--namespace",
                "shop",
                "-i",
                "books-db-0",
                "--container",
                "postgres",
                "--"
            ]
        );
        assert_eq!(args[12..15], ["sh", "-c", SCRIPT]);
        assert_eq!(
            args[15..],
            ["psql", "-c", "select 1"],
            "user arguments as $@"
        );
        assert!(SCRIPT.contains(r#"PGPASSWORD="$POSTGRES_PASSWORD""#));
        assert!(
            SCRIPT.starts_with("PGPASSWORD=") && !SCRIPT.contains("echo"),
            "the password only reaches psql's environment"
        );
        let terminal = kubectl_args(&Target::default(), "p", true, &[]);
        assert_eq!(terminal[..4], ["exec", "--namespace", "", "-it"]);
    }
}
