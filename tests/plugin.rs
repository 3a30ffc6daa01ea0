//! `kubectl appstack` (the binary `kubectl-appstack`) against a real API server, found by kubectl
//! on PATH as a user installs it: `status` of a Ready stack and of one that is not, the kubeconfig
//! flags (`-n`, `--context`, `--kubeconfig`, `KUBECONFIG`), and `render`. `psql` needs a real
//! database pod: tests/real-node/run.sh runs it.
//!
//! Needs the local control plane and its kubectl on PATH: `tests/cluster/up.sh`, then
//! `source target/cluster/env`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{TestEnv, books, kubeconfig, kubectl, repo};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-appstack");

/// A directory holding `kubectl-appstack` (a symlink to the built binary), as the README's install
/// puts it on PATH. Made once per test process: the tests run in parallel, and one that replaced
/// the link while another's kubectl looked for it made that kubectl say `unknown command`.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("appstack-plugin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("kubectl-appstack");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(PLUGIN, &link).unwrap();
        dir
    })
}

/// `kubectl appstack <args>` with the plugin on PATH; (success, stdout, stderr).
fn kubectl_appstack(args: &[&str], kubeconfig_env: &Path) -> (bool, String, String) {
    let path = format!(
        "{}:{}",
        plugin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("kubectl")
        .arg("appstack")
        .args(args)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig_env)
        .current_dir(repo())
        .output()
        .expect("kubectl on PATH (source target/cluster/env)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The row of `object` in `status` output: (READY, STATUS).
fn row<'a>(output: &'a str, object: &str) -> (&'a str, &'a str) {
    let header = output
        .lines()
        .find(|l| l.starts_with("NAME"))
        .unwrap_or_else(|| panic!("a NAME column in {output}"));
    let ready_at = header.find("READY").unwrap();
    let status_at = header.find("STATUS").unwrap();
    let line = output
        .lines()
        .find(|l| {
            l.trim_start_matches(['│', '├', '└', '─', ' '])
                .starts_with(&format!("{object} "))
        })
        .unwrap_or_else(|| panic!("a row for {object} in\n{output}"));
    // Box-drawing characters are one column wide but three bytes long.
    let chars: Vec<char> = line.chars().collect();
    let byte = |column: usize| -> usize {
        chars[..column.min(chars.len())]
            .iter()
            .map(|c| c.len_utf8())
            .sum()
    };
    let take = |from: usize, to: Option<usize>| -> &'a str {
        line[byte(from)..to.map_or(line.len(), byte)].trim()
    };
    (take(ready_at, Some(status_at)), take(status_at, None))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_tree_and_why_something_is_not_ready() {
    let env = TestEnv::start("plugin").await;
    let ns = env.namespace.clone();
    env.apply_stack(&books("books")).await.unwrap();
    env.wait_ready("books").await;
    let (ok, output, stderr) = kubectl_appstack(&["status", "books", "-n", &ns], &kubeconfig());
    assert!(ok, "{stderr}");
    assert!(
        output.starts_with(&format!(
            "AppStack {ns}/books: Ready, http://books.example.com\n"
        )),
        "{output}"
    );
    assert_eq!(row(&output, "books"), ("True", "AllComponentsReady"));
    for object in [
        "StatefulSet/books-db",
        "Deployment/books-api",
        "Deployment/books-frontend",
        "PersistentVolumeClaim/books-db-data",
    ] {
        assert_eq!(row(&output, object).0, "True", "{object}: {output}");
    }
    assert!(
        row(&output, "Deployment/books-api")
            .1
            .starts_with("2/2 ready")
    );
    let job =
        appstack_operator::names::migration_job("books", "ghcr.io/appstack-dev/books-api:0.1.0");
    assert_eq!(
        row(&output, &format!("Job/{job}")),
        ("True", "migration succeeded"),
        "the example's migration Job: {output}"
    );
    let check = appstack_operator::names::database_check_job("books", "postgres:17");
    assert_eq!(
        row(&output, &format!("Job/{check}")),
        ("True", "database image check succeeded"),
        "{output}"
    );
    assert_eq!(row(&output, "Pod/books-db-0").0, "True", "{output}");
    for object in [
        "Secret/books-db-credentials",
        "NetworkPolicy/books-db",
        "NetworkPolicy/books-api",
        "Service/books-db",
        "Service/books-api",
        "Service/books-frontend",
        "HorizontalPodAutoscaler/books-api",
        "PodDisruptionBudget/books-api",
        "PodDisruptionBudget/books-frontend",
        "Ingress/books",
    ] {
        row(&output, object);
    }
    assert_eq!(
        row(&output, "NetworkPolicy/books-db").1,
        "admits api, migrations on 5432"
    );
    assert_eq!(
        output
            .lines()
            .filter(|l| l.contains("Pod/books-api-"))
            .count(),
        2,
        "the API's two pods under their Deployment: {output}"
    );
    assert!(
        !output.contains("password") && !output.contains("DATABASE_URL"),
        "{output}"
    );

    // An API that no node can run: the Deployment and its pod say why.
    let stuck = "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {name: stuck}\nspec:\n  api: {image: registry.example.com/api:1, resources: {requests: {cpu: '500'}}}\n  frontend: {image: registry.example.com/web:1}\n";
    env.apply_stack(stuck).await.unwrap();
    env.wait_for::<appstack_operator::crd::AppStack, _>("stuck", "API unschedulable", |s| {
        common::message(s, "ApiReady").is_some_and(|m| m.contains("0/1 pods ready"))
            && common::condition(s, "DatabaseReady") == Some("True")
    })
    .await;
    let (ok, output, stderr) = kubectl_appstack(&["status", "stuck", "-n", &ns], &kubeconfig());
    assert!(ok, "{stderr}");
    assert_eq!(row(&output, "stuck").0, "False", "{output}");
    assert!(
        row(&output, "stuck")
            .1
            .starts_with("RolloutInProgress: api: 0/1 pods ready")
    );
    assert_eq!(row(&output, "Deployment/stuck-api").0, "False");
    let pod = output
        .lines()
        .find(|l| l.contains("Pod/stuck-api-"))
        .unwrap_or_else(|| panic!("the API pod in {output}"));
    assert!(
        pod.contains("False") && pod.contains("Unschedulable") && pod.contains("Insufficient cpu"),
        "{pod}"
    );
    assert_eq!(row(&output, "Deployment/stuck-frontend").0, "True");

    let (ok, _, stderr) = kubectl_appstack(&["status", "nothing", "-n", &ns], &kubeconfig());
    assert!(
        !ok && stderr.contains(&format!("AppStack nothing not found in namespace {ns}")),
        "{stderr}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_context_and_namespace_are_respected() {
    let env = TestEnv::start("plugin-ctx").await;
    let ns = env.namespace.clone();
    env.apply_stack(&books("books")).await.unwrap();
    env.wait_ready("books").await;

    // A copy of the kubeconfig with a second context whose namespace is the test's.
    let copy = std::env::temp_dir().join(format!("appstack-plugin-{ns}.kubeconfig"));
    std::fs::copy(kubeconfig(), &copy).unwrap();
    let copy_arg = copy.to_str().unwrap();
    let field = |path: &str| {
        let (ok, value) = kubectl(&[
            "config",
            "view",
            "--kubeconfig",
            copy_arg,
            "-o",
            &format!("jsonpath={{.contexts[0].context.{path}}}"),
        ]);
        assert!(ok, "{value}");
        value
    };
    let (cluster, user) = (field("cluster"), field("user"));
    let (ok, output) = kubectl(&[
        "config",
        "set-context",
        "--kubeconfig",
        copy_arg,
        "it",
        &format!("--cluster={cluster}"),
        &format!("--user={user}"),
        &format!("--namespace={ns}"),
    ]);
    assert!(ok, "{output}");

    // KUBECONFIG and --context: the context's namespace, no -n needed.
    let (ok, output, stderr) = kubectl_appstack(&["status", "books", "--context", "it"], &copy);
    assert!(
        ok && output.starts_with(&format!("AppStack {ns}/books: Ready")),
        "{stderr}{output}"
    );
    // --kubeconfig wins over KUBECONFIG.
    let missing = std::env::temp_dir().join("appstack-no-such.kubeconfig");
    let (ok, output, stderr) = kubectl_appstack(
        &["--kubeconfig", copy_arg, "--context=it", "status", "books"],
        &missing,
    );
    assert!(ok && output.contains("books"), "{stderr}{output}");
    // The current context's namespace is "default": the stack is not there, -n finds it.
    let (ok, _, stderr) = kubectl_appstack(&["status", "books"], &copy);
    assert!(
        !ok && stderr.contains("not found in namespace default"),
        "{stderr}"
    );
    let (ok, _, stderr) = kubectl_appstack(&["status", "books", "-n", &ns], &copy);
    assert!(ok, "{stderr}");
    // An unknown context is an error, not a fallback.
    let (ok, _, stderr) = kubectl_appstack(&["status", "books", "--context", "nope"], &copy);
    assert!(!ok && stderr.contains("nope"), "{stderr}");
    let _ = std::fs::remove_file(&copy);
    env.finish().await;
}

#[test]
fn render_prints_what_the_operator_renders() {
    let operator = Command::new(env!("CARGO_BIN_EXE_appstack-operator"))
        .args(["render", "-f", "examples/books.yaml", "--namespace", "prod"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(operator.status.success());
    let (ok, plugin, stderr) = kubectl_appstack(
        &["render", "-f", "examples/books.yaml", "-n", "prod"],
        &kubeconfig(),
    );
    assert!(ok, "{stderr}");
    assert_eq!(plugin, String::from_utf8_lossy(&operator.stdout));
    assert!(plugin.contains("namespace: prod") && plugin.contains("kind: NetworkPolicy"));
}
