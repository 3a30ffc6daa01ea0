//! What a user does with kubectl against a real API server: install, explain, apply the example,
//! wait for Ready, scale, render | apply.
//!
//! Needs the local control plane and its kubectl on PATH: `tests/cluster/up.sh`, then
//! `source target/cluster/env`.

mod common;

use common::{TestEnv, eventually, kubectl, repo};
use k8s_openapi::api::apps::v1::Deployment;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_manifest_is_accepted_by_the_api_server() {
    // A real apply: RBAC objects, and the operator Deployment admitted by Pod Security in a
    // namespace that enforces "restricted". Its pod lands on a fake KWOK node, so it does not
    // actually run and cannot compete with the in-process operators of the other tests.
    let (ok, output) = kubectl(&["apply", "-f", "deploy/install.yaml"]);
    assert!(ok, "{output}");
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/appstacks.appstack.dev",
        "clusterrole.rbac.authorization.k8s.io/appstack-operator",
        "deployment.apps/appstack-operator",
    ] {
        assert!(output.contains(object), "{object} in {output}");
    }
    let (ok, output) = kubectl(&[
        "rollout",
        "status",
        "-n",
        "appstack-system",
        "deployment/appstack-operator",
        "--timeout=90s",
    ]);
    assert!(ok, "operator Deployment admitted and available: {output}");
    let (ok, output) = kubectl(&[
        "auth",
        "can-i",
        "patch",
        "deployments",
        "--as=system:serviceaccount:appstack-system:appstack-operator",
        "-n",
        "default",
    ]);
    assert!(ok && output.trim() == "yes", "{output}");
    for (verb, resource) in [("delete", "services"), ("update", "deployments")] {
        let (_, output) = kubectl(&[
            "auth",
            "can-i",
            verb,
            resource,
            "--as=system:serviceaccount:appstack-system:appstack-operator",
            "-n",
            "default",
        ]);
        assert_eq!(
            output.trim(),
            "no",
            "least privilege: no {verb} on {resource} (garbage collection deletes Services; \
             server-side apply needs no update)"
        );
    }
    let (ok, output) = kubectl(&["kustomize", "deploy/"]);
    assert!(ok && output.contains("kind: ClusterRole"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_documents_the_api() {
    let _env = TestEnv::without_operator("explain").await; // installs the CRD
    // The API server publishes a new CRD's OpenAPI schema a moment after it is established.
    let explained = eventually(common::TIMEOUT, || async {
        let (ok, output) = kubectl(&["explain", "appstack.spec.database"]);
        ok.then_some(output)
    })
    .await;
    let output = explained.expect("kubectl explain appstack.spec.database succeeds");
    for field in ["retainOnDelete", "existingSecret", "storage"] {
        assert!(output.contains(field), "{field} in {output}");
    }
    let (ok, output) = kubectl(&["explain", "appstack.spec.api.autoscaling.minReplicas"]);
    assert!(ok && output.contains("Lowest number of pods"), "{output}");
    _env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_get_and_scale_with_kubectl() {
    let env = TestEnv::start("kubectl").await;
    let ns = env.namespace.clone();
    let started = std::time::Instant::now();
    let (ok, output) = kubectl(&["apply", "-n", &ns, "-f", "examples/books.yaml"]);
    assert!(ok, "{output}");
    let (ok, output) = kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=condition=Ready",
        "appstack/books",
        "--timeout=120s",
    ]);
    assert!(ok, "{output}");
    eprintln!(
        "examples/books.yaml Ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let (ok, output) = kubectl(&["get", "stack", "-n", &ns]);
    assert!(ok, "{output}");
    let header = output.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "PHASE", "API", "URL", "AGE"] {
        assert!(header.contains(column), "{column} in {header}");
    }
    assert!(
        output.contains("True") && output.contains("Ready") && output.contains("2/2"),
        "{output}"
    );

    // `kubectl scale` goes through the scale subresource to spec.api.replicas. Autoscaling
    // owns replicas in the example, so turn it off first.
    let (ok, output) = kubectl(&[
        "patch",
        "-n",
        &ns,
        "appstack/books",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/api/autoscaling"}]"#,
    ]);
    assert!(ok, "{output}");
    let (ok, output) = kubectl(&["scale", "-n", &ns, "appstack/books", "--replicas=3"]);
    assert!(ok, "{output}");
    env.wait_for::<Deployment, _>("books-api", "3 replicas", |d| {
        d.spec.as_ref().unwrap().replicas == Some(3)
    })
    .await;
    let (ok, output) = kubectl(&[
        "wait",
        "-n",
        &ns,
        "--for=jsonpath={.status.components.api.readyReplicas}=3",
        "appstack/books",
        "--timeout=120s",
    ]);
    assert!(ok, "{output}");
    let (ok, output) = kubectl(&["describe", "appstack", "-n", &ns, "books"]);
    assert!(
        ok && output.contains("Created") && output.contains("Deployment books-api"),
        "events in describe: {output}"
    );
    env.finish().await;
}

#[test]
fn render_output_is_accepted_by_the_api_server() {
    let binary = env!("CARGO_BIN_EXE_appstack-operator");
    let rendered = std::process::Command::new(binary)
        .args([
            "render",
            "-f",
            "examples/books.yaml",
            "--namespace",
            "default",
        ])
        .current_dir(repo())
        .output()
        .expect("render runs");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let path = std::env::temp_dir().join(format!("appstack-render-{}.yaml", std::process::id()));
    std::fs::write(&path, &rendered.stdout).unwrap();
    let (ok, output) = kubectl(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(
        ok,
        "every rendered object passes server-side validation and admission: {output}"
    );
    // Every child but the data objects, which render leaves out (README), and the migration
    // Job of the API image: the database runs as a StatefulSet or a Deployment, whichever the
    // operator uses.
    assert_eq!(output.lines().count(), 13, "{output}");
    for object in [
        "job.batch/books-migrate-",
        "networkpolicy.networking.k8s.io/books-db",
        "networkpolicy.networking.k8s.io/books-api",
        "deployment.apps/books-api",
        "deployment.apps/books-frontend",
        "service/books-db",
        "service/books-api",
        "service/books-frontend",
        "horizontalpodautoscaler.autoscaling/books-api",
        "ingress.networking.k8s.io/books",
    ] {
        assert!(output.contains(object), "{object} in {output}");
    }
    assert!(
        output.contains("statefulset.apps/books-db") || output.contains("deployment.apps/books-db"),
        "{output}"
    );
    assert!(
        !output.contains("secret/") && !output.contains("persistentvolumeclaim/"),
        "no data objects rendered: {output}"
    );
}
