//! GitOps health, proven on real status: stacks are driven into every phase on the local control
//! plane (Ready, Pending, Progressing, Degraded with and without Stalled, rolled back, with a
//! failed migration, Failed, Deleting, and a status behind its spec), each AppStack is captured as the API server returns it, and
//! `tests/gitops` (a Go program) runs the Argo CD health check `deploy/gitops/health.lua` the way
//! Argo CD runs it and computes kstatus (what Flux's health checks use) on every capture.
//!
//! Captures go to `target/gitops-captures/`; with `APPSTACK_UPDATE_FIXTURES=1` they also replace
//! `tests/gitops/fixtures/`, which `tests/run.sh` checks offline.
//!
//! Needs the local control plane: `tests/cluster/up.sh`; builds the Go program once
//! (`tests/tools/build.sh gitops-check`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use appstack_operator::crd::{AppStack, Phase};
use common::{TestEnv, condition, find_condition, repo, small_stack};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::ResourceExt;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::{Api, Resource};
use serde_json::{Value, json};

/// A test finalizer that holds a deleted stack in `Deleting` long enough to capture it.
const HOLD: &str = "test.appstack.dev/hold";
/// Images two KWOK stages of the test cluster play as failing (tests/cluster/manifests/kwok.yaml):
/// pods stay in ErrImagePull; migration Job pods fail.
const UNPULLABLE: &str = "appstack.invalid/unpullable:1";
const FAILING_JOB: &str = "appstack.invalid/failing-job:1";

/// One capture: the case, what Argo CD and kstatus must say, and the object.
struct Capture {
    case: &'static str,
    argocd: (&'static str, String),
    kstatus: &'static str,
    object: Value,
}

impl Capture {
    fn to_json(&self) -> Value {
        json!({
            "case": self.case,
            "expect": {
                "argocd": {"status": self.argocd.0, "message": self.argocd.1},
                "kstatus": self.kstatus,
            },
            "object": self.object,
        })
    }
}

/// The AppStack `name` exactly as the API server returns it, without managedFields.
async fn raw(env: &TestEnv, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        &env.namespace,
        &ApiResource::erase::<AppStack>(&()),
    );
    let mut value = serde_json::to_value(api.get(name).await.expect("AppStack read")).unwrap();
    if let Some(meta) = value["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    value
}

fn message_of(stack: &AppStack, type_: &str) -> String {
    find_condition(stack, type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

fn phase(stack: &AppStack) -> Option<Phase> {
    stack.status.as_ref()?.phase
}

/// Wait for `phase` with Ready's reason `reason` at the stack's current generation.
async fn wait_phase(env: &TestEnv, name: &str, wanted: Phase, reason: &str) -> AppStack {
    let generation = env.get::<AppStack>(name).await.metadata.generation;
    env.wait_for::<AppStack, _>(
        name,
        &format!("phase {wanted:?}, Ready reason {reason}"),
        |s| {
            phase(s) == Some(wanted)
                && common::reason(s, "Ready") == Some(reason)
                && common::observed_generation(s) == generation
        },
    )
    .await
}

/// Capture `name` as it is now, with what each tool must say about it.
async fn capture(env: &TestEnv, case: &'static str, name: &str, kstatus: &'static str) -> Capture {
    let stack = env.get::<AppStack>(name).await;
    let stalled = condition(&stack, "Stalled") == Some("True");
    let argocd = match phase(&stack) {
        _ if stalled => ("Degraded", message_of(&stack, "Stalled")),
        Some(Phase::Degraded | Phase::Failed) => ("Degraded", message_of(&stack, "Ready")),
        Some(Phase::Ready) => ("Healthy", message_of(&stack, "Ready")),
        _ => ("Progressing", message_of(&stack, "Ready")),
    };
    Capture {
        case,
        argocd: (argocd.0, argocd.1),
        kstatus,
        object: raw(env, name).await,
    }
}

fn stack_with(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// The Go program of `tests/gitops`, built once.
fn gitops_check() -> PathBuf {
    let output = Command::new("bash")
        .arg("tests/tools/build.sh")
        .arg("gitops-check")
        .current_dir(repo())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "tests/tools/build.sh gitops-check: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// Run the Go program on `dir`: Argo CD's verdict and kstatus against each capture's expectation.
fn check(dir: &Path) -> String {
    let output = Command::new(gitops_check())
        .args([
            "-lua",
            "deploy/gitops/health.lua",
            "-argocd-cm",
            "deploy/gitops/argocd-cm.yaml",
        ])
        .arg(dir)
        .current_dir(repo())
        .output()
        .expect("gitops-check runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    text
}

fn write(dir: &Path, captures: &[Capture]) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    for capture in captures {
        let text = serde_json::to_string_pretty(&capture.to_json()).unwrap();
        std::fs::write(dir.join(format!("{}.json", capture.case)), text + "\n").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_has_the_expected_argo_cd_health_and_kstatus() {
    let mut env = TestEnv::start("gitops").await;
    // One of each: nothing can run (no storage class, no node with 500 CPUs), the API cannot
    // run, a name held by someone else, a missing existingSecret.
    let unschedulable = "{image: registry.example.com/api:1, resources: {requests: {cpu: '500'}}}";
    env.apply_stack(&stack_with(
        "pending",
        &format!("  api: {unschedulable}\n  frontend: {unschedulable}\n  database: {{storage: {{storageClassName: no-such-class}}}}\n"),
    ))
    .await
    .unwrap();
    env.apply_stack(&stack_with(
        "progressing",
        &format!("  api: {unschedulable}\n  frontend: {{image: registry.example.com/web:1}}\n"),
    ))
    .await
    .unwrap();
    env.create_foreign_service("conflict-api", json!({})).await;
    env.apply_stack(&small_stack("conflict", "")).await.unwrap();
    env.apply_stack(&small_stack("nosecret", "existingSecret: vault-db"))
        .await
        .unwrap();
    for name in ["ready", "stalled", "deleting", "rollback"] {
        env.apply_stack(&small_stack(name, "")).await.unwrap();
    }
    env.apply_stack(&stack_with(
        "migrate",
        "  api: {image: registry.example.com/api:1, migrations: {command: [flask, db, upgrade]}}\n  frontend: {image: registry.example.com/web:1}\n",
    ))
    .await
    .unwrap();

    let mut captures = Vec::new();
    for name in ["ready", "stalled", "deleting", "rollback", "migrate"] {
        env.wait_ready(name).await;
    }
    captures.push(capture(&env, "ready", "ready", "Current").await);
    wait_phase(&env, "pending", Phase::Pending, "ClaimPending").await;
    captures.push(capture(&env, "pending", "pending", "InProgress").await);
    wait_phase(&env, "progressing", Phase::Progressing, "RolloutInProgress").await;
    captures.push(capture(&env, "progressing", "progressing", "InProgress").await);
    wait_phase(&env, "conflict", Phase::Failed, "NameConflict").await;
    captures.push(capture(&env, "failed-name-conflict", "conflict", "Failed").await);
    wait_phase(&env, "nosecret", Phase::Failed, "SecretNotFound").await;
    captures.push(capture(&env, "failed-secret-not-found", "nosecret", "Failed").await);

    // A rollout that cannot finish, with a progress deadline of one second (a field the operator
    // leaves to others): the Deployment controller gives up, the stack is Degraded and Stalled.
    env.merge_patch::<Deployment>(
        "stalled-api",
        json!({"spec": {"progressDeadlineSeconds": 1}}),
    )
    .await;
    env.patch_spec(
        "stalled",
        json!({"api": {"resources": {"requests": {"cpu": "500"}}}}),
    )
    .await;
    wait_phase(&env, "stalled", Phase::Degraded, "ProgressDeadlineExceeded").await;
    captures.push(capture(&env, "degraded-stalled", "stalled", "Failed").await);

    // A new API image whose pods cannot pull: rolled back to the last good one, Degraded.
    env.patch_spec("rollback", json!({"api": {"image": UNPULLABLE}}))
        .await;
    wait_phase(&env, "rollback", Phase::Degraded, "RolledBack").await;
    captures.push(capture(&env, "degraded-rolled-back", "rollback", "Failed").await);
    // A new API image whose migration fails: the running version stays, Degraded.
    env.patch_spec("migrate", json!({"api": {"image": FAILING_JOB}}))
        .await;
    wait_phase(&env, "migrate", Phase::Degraded, "MigrationFailed").await;
    captures.push(capture(&env, "degraded-migration-failed", "migrate", "Failed").await);

    // Deleted, held by a finalizer of the test's: the operator reports Deleting.
    env.edit_finalizers::<AppStack>("deleting", |mut f| {
        f.push(HOLD.into());
        f
    })
    .await;
    env.delete_stack("deleting", DeleteParams::background())
        .await;
    env.wait_for::<AppStack, _>("deleting", "phase Deleting", |s| {
        phase(s) == Some(Phase::Deleting) && s.meta().deletion_timestamp.is_some()
    })
    .await;
    captures.push(capture(&env, "deleting", "deleting", "Terminating").await);
    env.edit_finalizers::<AppStack>("deleting", |f| {
        f.into_iter().filter(|f| f != HOLD).collect()
    })
    .await;

    // The spec moves on while the operator is away: the status describes an older generation.
    env.stop_operator().await;
    let patched = env
        .patch_spec("ready", json!({"api": {"replicas": 2}}))
        .await;
    let stale = env.get::<AppStack>("ready").await;
    assert!(
        common::observed_generation(&stale) < patched.metadata.generation
            && condition(&stale, "Ready") == Some("True"),
        "Ready=True for an older generation"
    );
    let mut lag = capture(&env, "generation-lag", "ready", "InProgress").await;
    lag.argocd = (
        "Progressing",
        format!(
            "Waiting for the operator to reconcile generation {}",
            patched.metadata.generation.unwrap()
        ),
    );
    captures.push(lag);
    env.start_operator();

    // Pods lost on their own at an unchanged spec: a quota stops the API's replacement pod.
    let lost = TestEnv::start("gitops-lost").await;
    lost.apply_stack(&small_stack("lost", "")).await.unwrap();
    lost.wait_ready("lost").await;
    let pods = lost
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap();
    // A quota counts pods that have not finished (not the database image check's, say).
    let live = pods
        .items
        .iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .count();
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-more-pods"},
        // One fewer than there are: the deleted pod's replacement is refused.
        "spec": {"hard": {"pods": (live - 1).to_string()}},
    }))
    .unwrap();
    lost.api::<ResourceQuota>()
        .create(&PostParams::default(), &quota)
        .await
        .unwrap();
    lost.wait_for::<ResourceQuota, _>("no-more-pods", "quota counted", |q| {
        q.status
            .as_ref()
            .and_then(|s| s.used.as_ref())
            .is_some_and(|u| u.contains_key("pods"))
    })
    .await;
    let api_pod = pods
        .items
        .iter()
        .find(|p| {
            p.labels()
                .get("app.kubernetes.io/component")
                .map(String::as_str)
                == Some("api")
        })
        .expect("an API pod")
        .name_any();
    lost.api::<Pod>()
        .delete(&api_pod, &DeleteParams::default())
        .await
        .unwrap();
    wait_phase(&lost, "lost", Phase::Degraded, "RolloutInProgress").await;
    captures.push(capture(&lost, "degraded", "lost", "InProgress").await);

    let covered: std::collections::BTreeSet<String> = captures
        .iter()
        .filter_map(|c| c.object["status"]["phase"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        covered.into_iter().collect::<Vec<_>>(),
        [
            "Degraded",
            "Deleting",
            "Failed",
            "Pending",
            "Progressing",
            "Ready"
        ],
        "every phase captured"
    );

    let dir = repo().join("target/gitops-captures");
    write(&dir, &captures);
    let report = check(&dir);
    eprintln!("{report}");
    assert!(
        report.contains(&format!("{} captures, 0 failed", captures.len())),
        "{report}"
    );
    if std::env::var_os("APPSTACK_UPDATE_FIXTURES").is_some() {
        write(&repo().join("tests/gitops/fixtures"), &captures);
    }
    lost.finish().await;
    env.finish().await;
}
