//! The plan's rollout decisions: the migrations gate and the rollback of a failing rollout.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::tests::{applied, converged, live_mut, now, summary};
use super::*;
use crate::test_fixtures::valid_stack;

const MIGRATING: &str = "migrations: {command: [flask, db, upgrade]}";

fn with_migrations(image: &str) -> ValidStack {
    valid_stack(&format!("api: {{image: {image}, {MIGRATING}}}"))
}

fn database_ready(existing: &mut Existing) {
    let Object::StatefulSet(set) = live_mut(existing, Kind::StatefulSet, "books-db") else {
        unreachable!()
    };
    set.status = Some(serde_json::from_value(json!({"replicas": 1, "readyReplicas": 1})).unwrap());
}

fn job_finished(existing: &mut Existing, name: &str, condition: &str, generation: i64) {
    let Object::Job(job) = live_mut(existing, Kind::Job, name) else {
        unreachable!()
    };
    job.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(job::GENERATION_ANNOTATION.into(), generation.to_string());
    job.status = Some(
        serde_json::from_value(json!({"conditions": [
            {"type": condition, "status": "True", "reason": "BackoffLimitExceeded"}]}))
        .unwrap(),
    );
}

fn api_image(existing: &Existing) -> Option<String> {
    let deployment = existing.deployment("books-api")?;
    rollout::image_of(deployment.spec.as_ref().map(|s| &s.template))
}

fn report(plan: &Plan) -> Option<&TierRollout> {
    plan.rollouts
        .iter()
        .find_map(|(c, r)| (*c == Component::Api).then_some(r))
}

#[test]
fn a_new_stack_migrates_once_the_database_is_ready_and_only_then_starts_the_api() {
    let stack = with_migrations("api:1");
    let first = plan(&stack, &Existing::default(), "pw", &now());
    assert!(
        !summary(&first)
            .iter()
            .any(|s| s.contains("books-api") && s.contains("Deployment"))
    );
    assert!(!summary(&first).iter().any(|s| s.contains("migrate")));
    assert!(
        matches!(report(&first), Some(TierRollout::Migrating { message, .. }) if message.contains("waiting for the database"))
    );
    assert!(first.poll);

    let mut existing = applied(&first, Existing::default());
    database_ready(&mut existing);
    let job = names::migration_job("books", "api:1");
    let migrate = plan(&stack, &existing, "pw", &now());
    assert_eq!(summary(&migrate), vec![format!("Create Job {job}")]);
    let mut existing = applied(&migrate, existing);
    let running = plan(&stack, &existing, "pw", &now());
    assert!(running.steps.is_empty(), "{:?}", summary(&running));
    assert!(matches!(
        report(&running),
        Some(TierRollout::Migrating { .. })
    ));

    job_finished(&mut existing, &job, "Complete", 3);
    let start = plan(&stack, &existing, "pw", &now());
    assert_eq!(summary(&start), vec!["Create Deployment books-api"]);
    assert_eq!(report(&start), None);
}

#[test]
fn a_new_api_image_waits_for_its_migration_and_other_changes_do_not_migrate() {
    let (_, mut existing) = converged(&format!("api: {{image: api:1, {MIGRATING}}}"));
    database_ready(&mut existing);
    let first = plan(&with_migrations("api:1"), &existing, "pw", &now());
    let mut existing = applied(&first, existing);
    job_finished(
        &mut existing,
        &names::migration_job("books", "api:1"),
        "Complete",
        3,
    );
    let mut existing = applied(
        &plan(&with_migrations("api:1"), &existing, "pw", &now()),
        existing,
    );
    assert_eq!(api_image(&existing).as_deref(), Some("api:1"));

    let next = with_migrations("api:2");
    let job = names::migration_job("books", "api:2");
    let migrate = plan(&next, &existing, "pw", &now());
    assert_eq!(summary(&migrate), vec![format!("Create Job {job}")]);
    existing = applied(&migrate, existing);
    assert_eq!(
        api_image(&existing).as_deref(),
        Some("api:1"),
        "the API waits"
    );
    job_finished(&mut existing, &job, "Complete", 3);
    let roll = plan(&next, &existing, "pw", &now());
    assert_eq!(summary(&roll), vec!["Update Deployment books-api"]);
    existing = applied(&roll, existing);

    // Same image, another replica count: no migration.
    let scaled = valid_stack(&format!("api: {{image: api:2, replicas: 3, {MIGRATING}}}"));
    let scaling = summary(&plan(&scaled, &existing, "pw", &now()));
    assert!(
        scaling.contains(&"Update Deployment books-api".to_owned()),
        "{scaling:?}"
    );
    assert!(!scaling.iter().any(|s| s.contains("Job")), "{scaling:?}");
}

#[test]
fn a_failed_migration_keeps_the_running_version_until_the_spec_changes() {
    let (_, mut existing) = converged(&format!("api: {{image: api:1, {MIGRATING}}}"));
    database_ready(&mut existing);
    existing = applied(
        &plan(&with_migrations("api:1"), &existing, "pw", &now()),
        existing,
    );
    let job = names::migration_job("books", "api:1");
    job_finished(&mut existing, &job, "Complete", 3);
    existing = applied(
        &plan(&with_migrations("api:1"), &existing, "pw", &now()),
        existing,
    );

    let next = with_migrations("api:2");
    let job = names::migration_job("books", "api:2");
    existing = applied(&plan(&next, &existing, "pw", &now()), existing);
    job_finished(&mut existing, &job, "Failed", 3);
    let failed = plan(&next, &existing, "pw", &now());
    assert!(failed.steps.is_empty(), "{:?}", summary(&failed));
    let Some(TierRollout::MigrationFailed { message, .. }) = report(&failed) else {
        panic!("{:?}", failed.rollouts)
    };
    assert!(
        message.contains(&job) && message.contains("BackoffLimitExceeded"),
        "{message}"
    );
    assert_eq!(api_image(&existing).as_deref(), Some("api:1"));

    // A newer spec (generation 4) replaces the failed Job.
    let mut newer = with_migrations("api:2");
    newer.generation = Some(4);
    let retry = plan(&newer, &existing, "pw", &now());
    assert_eq!(summary(&retry), vec![format!("Delete Job {job}")]);

    // The Job gone (its TTL), the same spec does not run it again.
    existing.children.remove(&Slot::new(Kind::Job, job.clone()));
    let mut remembered = with_migrations("api:2");
    remembered.failed.api = Some(FailedRollout {
        generation: 3,
        image: None,
        job: Some(job.clone()),
        message: "api: migration failed".into(),
    });
    let held = plan(&remembered, &existing, "pw", &now());
    assert!(held.steps.is_empty(), "{:?}", summary(&held));
    assert!(matches!(
        report(&held),
        Some(TierRollout::MigrationFailed { .. })
    ));
}

/// A converged stack whose API rolls out `api:2` (revision 2) over `api:1` (revision 1), with
/// one new pod in `state`.
fn rolling_out(state: serde_json::Value) -> (Existing, ReplicaSet) {
    let (_, mut existing) = converged("api: {image: api:2}");
    let Object::Deployment(deployment) = live_mut(&mut existing, Kind::Deployment, "books-api")
    else {
        unreachable!()
    };
    deployment.metadata.uid = Some("deploy-uid".into());
    deployment
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("deployment.kubernetes.io/revision".into(), "2".into());
    deployment.status = Some(
        serde_json::from_value(json!({"replicas": 2, "updatedReplicas": 1, "readyReplicas": 1,
            "observedGeneration": 1,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}))
        .unwrap(),
    );
    let template = |image: &str, hash: &str| {
        json!({"metadata": {"labels": {"app.kubernetes.io/component": "api", "pod-template-hash": hash}},
               "spec": {"containers": [{"name": "api", "image": image}]}})
    };
    let set = |revision: u32, image: &str, hash: &str| -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("books-api-{hash}"), "labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "books-api",
                    "uid": "deploy-uid", "controller": true}]},
            "spec": {"selector": {}, "template": template(image, hash)}}))
        .unwrap()
    };
    let good = set(1, "api:1", "good");
    existing.replica_sets = vec![good.clone(), set(2, "api:2", "bad")];
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "books-api-bad-x", "labels": {"pod-template-hash": "bad"},
                     "creationTimestamp": jiff::Timestamp::from_second(999_990).unwrap().to_string()},
        "status": {"containerStatuses": [{"name": "api", "image": "api:2", "imageID": "",
            "ready": false, "restartCount": 0, "state": state}]}}))
    .unwrap();
    existing.pods = vec![pod];
    (existing, good)
}

#[test]
fn a_new_pod_that_cannot_pull_rolls_the_tier_back_to_its_last_good_template() {
    let (existing, good) =
        rolling_out(json!({"waiting": {"reason": "ErrImagePull", "message": "not found"}}));
    let stack = valid_stack("api: {image: api:2}");
    let plan = plan(&stack, &existing, "pw", &now());
    assert_eq!(summary(&plan), vec!["RollBack Deployment books-api"]);
    let Step::Apply {
        object: Object::Deployment(back),
        ..
    } = &plan.steps[0]
    else {
        unreachable!()
    };
    let template = &back.spec.as_ref().unwrap().template;
    assert_eq!(rollout::image_of(Some(template)).as_deref(), Some("api:1"));
    let good_spec = good.spec.unwrap().template.unwrap().spec;
    assert_eq!(template.spec, good_spec);
    let Some(TierRollout::RolledBack { image, message }) = report(&plan) else {
        panic!("{:?}", plan.rollouts)
    };
    assert_eq!(image.as_deref(), Some("api:2"));
    assert!(
        message.contains("ErrImagePull") && message.contains("books-api-bad-x"),
        "{message}"
    );
    assert!(plan.poll);
}

#[test]
fn without_auto_rollback_a_failing_rollout_stays_and_is_reported() {
    let (existing, _) =
        rolling_out(json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}));
    let stack = valid_stack("api: {image: api:2}\nrollout: {autoRollback: false}");
    let plan = plan(&stack, &existing, "pw", &now());
    assert!(plan.steps.is_empty(), "{:?}", summary(&plan));
    assert!(matches!(
        report(&plan),
        Some(TierRollout::Failing { failure, .. }) if failure.reason == "CrashLoopBackOff"
    ));
}

#[test]
fn a_young_unready_pod_is_not_a_failure_yet() {
    let (existing, _) = rolling_out(json!({"running": {}}));
    let plan = plan(&valid_stack("api: {image: api:2}"), &existing, "pw", &now());
    assert!(
        plan.steps.is_empty() && plan.rollouts.is_empty(),
        "{:?}",
        summary(&plan)
    );
}

#[test]
fn a_rolled_back_spec_is_not_applied_again_until_it_changes() {
    let (_, existing) = converged("api: {image: api:1}");
    let mut failed = valid_stack("api: {image: api:2}");
    failed.failed.api = Some(FailedRollout {
        generation: 3,
        image: Some("api:2".into()),
        job: None,
        message: "api: rolled back from image api:2".into(),
    });
    let held = plan(&failed, &existing, "pw", &now());
    assert!(held.steps.is_empty(), "{:?}", summary(&held));
    assert!(matches!(
        report(&held),
        Some(TierRollout::RolledBack { .. })
    ));

    failed.generation = Some(4);
    let retried = plan(&failed, &existing, "pw", &now());
    assert_eq!(summary(&retried), vec!["Update Deployment books-api"]);
}
