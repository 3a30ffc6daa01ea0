//! Rollout safety against a real API server, with KWOK playing the pods: the migrations gate,
//! a bad image reported in seconds and rolled back, the opt-out, and the database image guard. Pod failures are played by
//! KWOK stages of the test cluster (tests/cluster/manifests/kwok.yaml): pods of
//! `appstack.invalid/unpullable:1` stay in ErrImagePull, Job pods of
//! `appstack.invalid/failing-job:1` fail with a termination message, Job pods of
//! `appstack.invalid/postgres:{17,18}` say which Postgres they are. The real-node versions,
//! with real pulls, real Postgres and traffic, are in tests/real-node/ and tests/e2e/run.sh.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use std::time::{Duration, Instant};

use appstack_operator::crd::{AppStack, Phase};
use appstack_operator::names;
use common::{TestEnv, condition, message, reason};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;

const UNPULLABLE: &str = "appstack.invalid/unpullable:1";
const FAILING_JOB: &str = "appstack.invalid/failing-job:1";
/// What the issue promises: a bad image is reported well before the progress deadline.
const REPORTED_WITHIN: Duration = Duration::from_secs(60);

fn stack(name: &str, api: &str) -> String {
    format!(
        "apiVersion: appstack.dev/v1alpha1
kind: AppStack
metadata:
  name: {name}
spec:
  api: {{{api}}}
  frontend: {{image: registry.example.com/web:1}}
"
    )
}

fn api_image(deployment: &Deployment) -> Option<&str> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers[0]
        .image
        .as_deref()
}

async fn warnings(env: &TestEnv, reason: &str) -> Vec<String> {
    let events = env
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap();
    events
        .items
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn migrations_run_before_the_api_and_a_failed_one_keeps_the_running_version() {
    let env = TestEnv::start("migrate").await;
    let name = "shop";
    let created = env
        .apply_stack(&stack(
            name,
            "image: registry.example.com/api:1, migrations: {command: [flask, db, upgrade]}",
        ))
        .await
        .unwrap();
    env.wait_ready_at(name, created.metadata.generation).await;
    let first_job: Job = env
        .get(&names::migration_job(name, "registry.example.com/api:1"))
        .await;
    let deployment: Deployment = env.get("shop-api").await;
    let migrated_at = first_job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("the first migration completed");
    let started_at = deployment.metadata.creation_timestamp.clone().unwrap();
    assert!(
        started_at.0 >= migrated_at.0,
        "the API Deployment ({started_at:?}) was created after its migration completed ({migrated_at:?})"
    );
    let pod = first_job.spec.unwrap().template.spec.unwrap();
    assert_eq!(
        pod.containers[0].command.as_deref(),
        Some(&["flask".to_owned(), "db".into(), "upgrade".into()][..])
    );

    // A new image whose migration fails: the API stays on the old image, the stack says why.
    let failing = env
        .patch_spec(name, json!({"api": {"image": FAILING_JOB}}))
        .await;
    let job = names::migration_job(name, FAILING_JOB);
    let degraded = env
        .wait_for::<AppStack, _>(
            name,
            "ApiReady reason MigrationFailed at the new generation",
            |s| {
                reason(s, "ApiReady") == Some("MigrationFailed")
                    && s.status.as_ref().and_then(|s| s.observed_generation)
                        == failing.metadata.generation
            },
        )
        .await;
    let status = degraded.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Degraded));
    assert_eq!(condition(&degraded, "Stalled"), Some("True"));
    let why = message(&degraded, "Ready").unwrap();
    assert!(why.contains(&job), "{why}");
    assert!(why.contains("relation \"books\" does not exist"), "{why}");
    let migration = status
        .components
        .as_ref()
        .unwrap()
        .api
        .migration
        .clone()
        .unwrap();
    assert_eq!(
        (migration.job.as_str(), migration.state.as_str()),
        (&*job, "Failed")
    );
    let deployment: Deployment = env.get("shop-api").await;
    assert_eq!(api_image(&deployment), Some("registry.example.com/api:1"));
    let noted = common::eventually(Duration::from_secs(30), || async {
        let notes = warnings(&env, "MigrationFailed").await;
        notes.iter().any(|n| n.contains(&job)).then_some(())
    })
    .await;
    assert!(
        noted.is_some(),
        "a Warning Event MigrationFailed names the Job"
    );

    // The same spec does not run the migration again; a new spec does.
    let poked = env.poke(name).await;
    env.wait_reconciled(name, &poked).await;
    let migrations = ListParams::default().labels("app.kubernetes.io/component=migrations");
    let jobs = env.api::<Job>().list(&migrations).await.unwrap();
    assert_eq!(
        jobs.items.len(),
        2,
        "one Job per image, no retry of the same spec"
    );
    let fixed = env
        .patch_spec(
            name,
            json!({"api": {"image": "registry.example.com/api:2"}}),
        )
        .await;
    env.wait_ready_at(name, fixed.metadata.generation).await;
    let deployment: Deployment = env.get("shop-api").await;
    assert_eq!(api_image(&deployment), Some("registry.example.com/api:2"));
    env.get::<Job>(&names::migration_job(name, "registry.example.com/api:2"))
        .await;
    env.finish().await;
}

#[tokio::test]
async fn a_bad_image_is_reported_in_seconds_and_rolled_back() {
    let env = TestEnv::start("rollback").await;
    let name = "shop";
    let created = env
        .apply_stack(&stack(
            name,
            "image: registry.example.com/api:1, replicas: 2",
        ))
        .await
        .unwrap();
    env.wait_ready_at(name, created.metadata.generation).await;

    let started = Instant::now();
    let bad = env
        .patch_spec(name, json!({"api": {"image": UNPULLABLE}}))
        .await;
    let rolled_back = env
        .wait_for_within::<AppStack, _>(REPORTED_WITHIN, name, "ApiReady reason RolledBack", |s| {
            reason(s, "ApiReady") == Some("RolledBack")
                && s.status.as_ref().and_then(|s| s.observed_generation) == bad.metadata.generation
        })
        .await;
    println!(
        "rollback: bad image reported and rolled back {:?} after the change",
        started.elapsed()
    );
    let status = rolled_back.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Degraded));
    let why = message(&rolled_back, "Ready").unwrap();
    assert!(
        why.contains("ErrImagePull") && why.contains(UNPULLABLE),
        "{why}"
    );
    let api = &status.components.as_ref().unwrap().api;
    assert_eq!(api.failed_image.as_deref(), Some(UNPULLABLE));
    // The spec keeps what the user wrote.
    assert_eq!(rolled_back.spec.api.image, UNPULLABLE);
    let deployment = env
        .wait_for::<Deployment, _>("shop-api", "back on the last good image, rolled out", |d| {
            api_image(d) == Some("registry.example.com/api:1") && common::rolled_out(d)
        })
        .await;
    assert_eq!(deployment.status.unwrap().ready_replicas, Some(2));
    assert!(
        !warnings(&env, "RolledBack").await.is_empty(),
        "a Warning Event RolledBack"
    );

    // The same spec is not applied again.
    let poked = env.poke(name).await;
    env.wait_reconciled(name, &poked).await;
    let deployment: Deployment = env.get("shop-api").await;
    assert_eq!(api_image(&deployment), Some("registry.example.com/api:1"));

    // The next change tries again.
    let fixed = env
        .patch_spec(
            name,
            json!({"api": {"image": "registry.example.com/api:2"}}),
        )
        .await;
    let ready = env.wait_ready_at(name, fixed.metadata.generation).await;
    let api = &ready.status.unwrap().components.unwrap().api;
    assert_eq!(
        (api.failed_image.as_deref(), api.failed_generation),
        (None, None)
    );
    env.finish().await;
}

#[tokio::test]
async fn without_auto_rollback_a_bad_image_stays_and_the_stack_says_why() {
    let env = TestEnv::start("norollback").await;
    let name = "shop";
    let manifest =
        stack(name, "image: registry.example.com/api:1") + "  rollout: {autoRollback: false}\n";
    let created = env.apply_stack(&manifest).await.unwrap();
    env.wait_ready_at(name, created.metadata.generation).await;
    let bad = env
        .patch_spec(name, json!({"api": {"image": UNPULLABLE}}))
        .await;
    let failing = env
        .wait_for_within::<AppStack, _>(
            REPORTED_WITHIN,
            name,
            "ApiReady reason RolloutFailed",
            |s| {
                reason(s, "ApiReady") == Some("RolloutFailed")
                    && s.status.as_ref().and_then(|s| s.observed_generation)
                        == bad.metadata.generation
            },
        )
        .await;
    assert_eq!(
        failing.status.as_ref().unwrap().phase,
        Some(Phase::Degraded)
    );
    let why = message(&failing, "ApiReady").unwrap();
    assert!(
        why.starts_with("api: image appstack.invalid/unpullable:1 fails: pod shop-api-"),
        "{why}"
    );
    assert!(why.contains("ErrImagePull"), "{why}");
    let deployment: Deployment = env.get("shop-api").await;
    assert_eq!(api_image(&deployment), Some(UNPULLABLE));
    assert_eq!(
        deployment.status.unwrap().ready_replicas,
        Some(1),
        "the old pod keeps serving"
    );
    env.finish().await;
}

#[tokio::test]
async fn a_database_image_of_another_major_version_is_refused_and_the_database_keeps_running() {
    let env = TestEnv::start("dbimage").await;
    let name = "shop";
    let created = env
        .apply_stack(
            &(stack(name, "image: registry.example.com/api:1")
                + "  database: {image: 'appstack.invalid/postgres:17'}\n"),
        )
        .await
        .unwrap();
    env.wait_ready_at(name, created.metadata.generation).await;
    // The check of the running image tells which Postgres writes the data; the claim keeps it.
    env.wait_for::<PersistentVolumeClaim, _>("shop-db-data", "postgres-major recorded", |claim| {
        claim
            .annotations()
            .get("appstack.dev/postgres-major")
            .map(String::as_str)
            == Some("17")
    })
    .await;

    let next = env
        .patch_spec(
            name,
            json!({"database": {"image": "appstack.invalid/postgres:18"}}),
        )
        .await;
    let refused = env
        .wait_for::<AppStack, _>(
            name,
            "DatabaseReady reason DatabaseMajorVersionChange",
            |s| {
                reason(s, "DatabaseReady") == Some("DatabaseMajorVersionChange")
                    && s.status.as_ref().and_then(|s| s.observed_generation)
                        == next.metadata.generation
            },
        )
        .await;
    assert_eq!(
        refused.status.as_ref().unwrap().phase,
        Some(Phase::Degraded)
    );
    let why = message(&refused, "DatabaseReady").unwrap();
    assert!(
        why.contains("PostgreSQL 18") && why.contains("PostgreSQL 17"),
        "{why}"
    );
    let set: StatefulSet = env.get("shop-db").await;
    let image = set.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("appstack.invalid/postgres:17"),
        "the database keeps its image"
    );
    assert!(
        !warnings(&env, "DatabaseMajorVersionChange")
            .await
            .is_empty()
    );

    // An image that cannot be pulled is refused as well, at once.
    let unpullable = env
        .patch_spec(name, json!({"database": {"image": UNPULLABLE}}))
        .await;
    env.wait_for_within::<AppStack, _>(REPORTED_WITHIN, name, "DatabaseImageUnusable", |s| {
        reason(s, "DatabaseReady") == Some("DatabaseImageUnusable")
            && s.status.as_ref().and_then(|s| s.observed_generation)
                == unpullable.metadata.generation
    })
    .await;

    let back = env
        .patch_spec(
            name,
            json!({"database": {"image": "appstack.invalid/postgres:17"}}),
        )
        .await;
    env.wait_ready_at(name, back.metadata.generation).await;
    env.finish().await;
}
