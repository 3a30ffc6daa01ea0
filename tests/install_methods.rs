//! The documented ways to install, against a real API server: `kubectl apply -k deploy/`, the
//! example overlay `examples/kustomize-overlay/` (another image, one watched namespace), and
//! `kubectl apply --server-side -f deploy/install.yaml`.
//!
//! Needs the local control plane and its kubectl on PATH: `tests/cluster/up.sh`, then
//! `source target/cluster/env`. The operator Deployment lands on a fake KWOK node, so it never
//! runs beside the tests' in-process operators.

mod common;

use common::kubectl;
use serde_json::Value;

/// `kubectl kustomize DIR` as documents.
fn kustomize(dir: &str) -> Vec<Value> {
    let (ok, output) = kubectl(&["kustomize", dir]);
    assert!(ok, "kubectl kustomize {dir}: {output}");
    serde_saphyr::from_multiple(&output).expect("kustomize output is YAML")
}

fn operator_container(documents: &mut [Value]) -> &mut Value {
    let deployment = documents
        .iter_mut()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "appstack-operator")
        .expect("the operator Deployment");
    &mut deployment["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn apply_k_installs_and_the_example_overlay_changes_only_the_image_and_watched_namespace() {
    let (ok, output) = kubectl(&["apply", "-k", "deploy/"]);
    assert!(ok, "{output}");
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/appstacks.appstack.dev",
        "clusterrole.rbac.authorization.k8s.io/appstack-operator",
        "deployment.apps/appstack-operator",
    ] {
        assert!(output.contains(object), "{object} in {output}");
    }

    let mut base = kustomize("deploy");
    let base_image = operator_container(&mut base)["image"].clone();
    let mut overlay = kustomize("examples/kustomize-overlay");
    assert_eq!(base.len(), overlay.len(), "the same objects");
    let container = operator_container(&mut overlay);
    assert_eq!(
        container["image"],
        "registry.example.com/platform/appstack-operator:0.1.0"
    );
    let env = container["env"].as_array_mut().expect("env");
    let watch = env
        .iter()
        .position(|e| e["name"] == "WATCH_NAMESPACE")
        .expect("WATCH_NAMESPACE set");
    assert_eq!(env[watch]["value"], "shop");
    // Undo those two changes: nothing else differs.
    env.remove(watch);
    container["image"] = base_image;
    assert_eq!(overlay, base, "the overlay changes nothing else");

    // The API server accepts the overlay as it is (schema, admission), without changing the
    // install the other tests use.
    let (ok, output) = kubectl(&[
        "apply",
        "-k",
        "examples/kustomize-overlay",
        "--dry-run=server",
    ]);
    assert!(
        ok && output.contains("deployment.apps/appstack-operator"),
        "{output}"
    );
}

#[test]
fn server_side_apply_installs_the_manifest() {
    let (ok, output) = kubectl(&["apply", "--server-side", "-f", "deploy/install.yaml"]);
    assert!(ok, "{output}");
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/appstacks.appstack.dev serverside-applied",
        "namespace/appstack-system serverside-applied",
        "clusterrolebinding.rbac.authorization.k8s.io/appstack-operator serverside-applied",
        "deployment.apps/appstack-operator serverside-applied",
    ] {
        assert!(output.contains(object), "{object} in {output}");
    }
    let (ok, output) = kubectl(&[
        "get",
        "deployment",
        "-n",
        "appstack-system",
        "appstack-operator",
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[?(@.operation==\"Apply\")].manager}",
    ]);
    assert!(
        ok && output.split_whitespace().any(|m| m == "kubectl"),
        "kubectl owns the Deployment's fields by server-side apply: {output}"
    );
    let (ok, output) = kubectl(&[
        "rollout",
        "status",
        "-n",
        "appstack-system",
        "deployment/appstack-operator",
        "--timeout=90s",
    ]);
    assert!(ok, "operator Deployment admitted and available: {output}");
}

#[test]
fn server_side_apply_takes_over_a_client_side_install_without_conflicts() {
    // The operator Deployment of install.yaml, fresh, in a namespace of its own: first
    // `kubectl apply -f` as the quick start does, then `--server-side`. A field the API server
    // defaults inside an atomic struct (fieldRef.apiVersion) would conflict with kubectl's
    // client-side field manager.
    let namespace = format!("it-ssa-{}", std::process::id());
    let (ok, output) = kubectl(&["create", "namespace", &namespace]);
    assert!(ok, "{output}");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(include_str!("../deploy/install.yaml")).unwrap();
    let mut deployment = documents
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the operator Deployment");
    deployment["metadata"]["namespace"] = Value::from(namespace.clone());
    let path = std::env::temp_dir().join(format!("{namespace}.yaml"));
    std::fs::write(&path, serde_saphyr::to_string(&deployment).unwrap()).unwrap();
    let file = path.to_str().unwrap();
    let (ok, output) = kubectl(&["apply", "-f", file]);
    assert!(ok, "{output}");
    let (ok, output) = kubectl(&["apply", "--server-side", "-f", file]);
    assert!(
        ok && output.contains("serverside-applied"),
        "no conflict with the client-side apply: {output}"
    );
    let _ = std::fs::remove_file(&path);
    let (ok, output) = kubectl(&["delete", "namespace", &namespace, "--wait=false"]);
    assert!(ok, "{output}");
}
