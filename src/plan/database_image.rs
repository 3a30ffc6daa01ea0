//! The database image guard, pure: a new Postgres image must first prove it starts (a check Job
//! runs `postgres --version` without the data volume), and a major version other than the one
//! that wrote the data directory is refused, since it cannot read it.
//!
//! The data directory's major version is recorded on the claim (annotation
//! [`MAJOR_ANNOTATION`]), learned from a check of the image the database runs.

use super::child::{Existing, Kind, Object, Slot};
use super::migration::{JobState, job_container_states, job_generation, job_state};
use super::{Change, Step, TierRollout, drift, rollout};
use crate::names;
use crate::reasons;
use crate::resources::job::database_check_job;
use crate::stack::{Component, ValidStack};

/// Annotation on the data claim: the Postgres major version whose data directory it holds.
pub const MAJOR_ANNOTATION: &str = "appstack.dev/postgres-major";

/// `17` of `postgres (PostgreSQL) 17.6 (Debian 17.6-1.pgdg13+1)`; `9.6` of a 9.6.x (before 10 the
/// major version had two parts).
pub fn major_of(output: &str) -> Option<String> {
    let version = output
        .split("(PostgreSQL)")
        .nth(1)?
        .split_whitespace()
        .next()?;
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let first: u32 = parts.next()?.parse().ok()?;
    if first >= 10 {
        return Some(first.to_string());
    }
    let second: u32 = parts.next()?.parse().ok()?;
    Some(format!("{first}.{second}"))
}

/// The image the database runs now (or will first run).
fn running_image(stack: &ValidStack, existing: &Existing) -> String {
    existing
        .statefulset(&stack.child_name(Component::Database))
        .and_then(|set| {
            set.spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .containers
                .first()?
                .image
                .clone()
        })
        .unwrap_or_else(|| stack.database.image.clone())
}

/// The major version recorded on the claim.
fn recorded_major(stack: &ValidStack, existing: &Existing) -> Option<String> {
    existing
        .claim(&stack.claim_name())?
        .metadata
        .annotations
        .as_ref()?
        .get(MAJOR_ANNOTATION)
        .cloned()
}

/// The output of a succeeded check Job of `image` (its pod's termination message).
fn checked_output(stack: &ValidStack, existing: &Existing, image: &str) -> Option<String> {
    let name = names::database_check_job(&stack.name, image);
    let job = existing.job(&name)?;
    (job_state(job, &existing.pods) == JobState::Succeeded).then_some(())?;
    job_container_states(&name, &existing.pods)
        .filter_map(|state| state.terminated.as_ref())
        .find_map(|t| (t.exit_code == 0).then(|| t.message.clone()).flatten())
}

/// The data directory's major version: recorded on the claim, or learned from a check of the
/// image the database runs (then the claim records it).
pub fn data_major(stack: &ValidStack, existing: &Existing) -> Option<String> {
    recorded_major(stack, existing).or_else(|| {
        let running = running_image(stack, existing);
        major_of(&checked_output(stack, existing, &running)?)
    })
}

/// The images whose check Jobs the plan needs to see: the image the database runs while no
/// major version is recorded, and a new image before the database moves to it.
pub fn images_to_check(stack: &ValidStack, existing: &Existing) -> Vec<String> {
    let running = running_image(stack, existing);
    let mut images = vec![];
    if recorded_major(stack, existing).is_none() {
        images.push(running.clone());
    }
    if changing(stack, existing) && !images.contains(&stack.database.image) {
        images.push(stack.database.image.clone());
    }
    images
}

/// The database moves to another image: a running StatefulSet gets a new one, or a stack starts
/// on a claim that already holds data.
fn changing(stack: &ValidStack, existing: &Existing) -> bool {
    match existing.statefulset(&stack.child_name(Component::Database)) {
        Some(_) => running_image(stack, existing) != stack.database.image,
        None => recorded_major(stack, existing).is_some(),
    }
}

/// What the guard decides for the database StatefulSet.
pub struct Guard {
    /// Check Jobs to create (or a failed one to replace for a newer spec).
    pub steps: Vec<Step>,
    /// Hold the StatefulSet where it is, and why.
    pub hold: Option<TierRollout>,
}

pub fn guard(stack: &ValidStack, existing: &Existing) -> Guard {
    let mut steps = vec![];
    let create = |image: &str| {
        let mut object = Object::Job(database_check_job(stack, image));
        drift::stamp(&mut object);
        Step::Apply {
            object,
            change: Change::Create,
        }
    };
    let running = running_image(stack, existing);
    let check_of = |image: &str| existing.job(&names::database_check_job(&stack.name, image));
    // Learn the data's major version while none is recorded.
    if recorded_major(stack, existing).is_none() && check_of(&running).is_none() {
        steps.push(create(&running));
    }
    if !changing(stack, existing) {
        return Guard { steps, hold: None };
    }
    let image = &stack.database.image;
    let job = names::database_check_job(&stack.name, image);
    let checking = |message: String| TierRollout::CheckingImage {
        job: job.clone(),
        message,
    };
    let hold = |steps: Vec<Step>, report: TierRollout| Guard {
        steps,
        hold: Some(report),
    };
    let unusable = |why: String| TierRollout::ImageRefused {
        reason: reasons::DATABASE_IMAGE_UNUSABLE,
        message: format!(
            "database: image {image} cannot start ({why}); the database keeps running {running}"
        ),
    };
    let Some(live_job) = check_of(image) else {
        steps.push(create(image));
        return hold(
            steps,
            checking(format!(
                "database: Job {job} checks that image {image} starts"
            )),
        );
    };
    match job_state(live_job, &existing.pods) {
        JobState::Running => match rollout::failing_job_pod(&job, &existing.pods) {
            Some(why) => hold(steps, unusable(why)),
            None => hold(
                steps,
                checking(format!(
                    "database: Job {job} checks that image {image} starts"
                )),
            ),
        },
        JobState::Failed(why) => {
            let older = job_generation(live_job)
                .zip(stack.generation)
                .is_some_and(|(job_generation, now)| job_generation < now);
            if older {
                steps.push(Step::Delete {
                    slot: Slot::new(Kind::Job, job.clone()),
                });
                return hold(
                    steps,
                    checking(format!("database: checking image {image} again")),
                );
            }
            hold(steps, unusable(why))
        }
        JobState::Succeeded => {
            let new = checked_output(stack, existing, image).and_then(|o| major_of(&o));
            let data = data_major(stack, existing);
            if data.is_none()
                && recorded_major(stack, existing).is_none()
                && check_of(&running)
                    .is_some_and(|j| job_state(j, &existing.pods) == JobState::Running)
            {
                return hold(
                    steps,
                    checking(format!(
                        "database: learning which Postgres wrote the data (image {running})"
                    )),
                );
            }
            match (data, new) {
                (Some(data), Some(new)) if data != new => hold(
                    steps,
                    TierRollout::ImageRefused {
                        reason: reasons::DATABASE_MAJOR_VERSION_CHANGE,
                        message: format!(
                            "database: image {image} is PostgreSQL {new}, but the data on claim {} was written by PostgreSQL {data}, which {new} cannot read; the database keeps running {running}. Keep a PostgreSQL {data} image, or move the data with pg_dumpall and a restore (see the README, \"Upgrading Postgres\")",
                            stack.claim_name()
                        ),
                    },
                ),
                // Same major, or one that cannot be told (an image whose check prints no
                // version): the image starts, so it may run.
                _ => Guard { steps, hold: None },
            }
        }
    }
}

/// Jobs of these names are read with the children.
pub fn check_job_names(stack: &ValidStack, existing: &Existing) -> Vec<String> {
    images_to_check(stack, existing)
        .iter()
        .map(|image| names::database_check_job(&stack.name, image))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::migration::JOB_NAME_LABEL;
    use crate::plan::tests::{applied, converged, live_mut, now, summary};
    use crate::plan::{Plan, plan};
    use crate::test_fixtures::valid_stack;
    use serde_json::json;

    /// The check Job of `image` finished, its pod's termination message `output`.
    fn checked(existing: &mut Existing, image: &str, output: Option<&str>, waiting: Option<&str>) {
        let name = names::database_check_job("books", image);
        let job = Object::Job(
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": {"appstack.dev/generation": "3"}},
                "status": {"conditions": if waiting.is_some() { json!([]) } else {
                    json!([{"type": "Complete", "status": "True"}]) }},
            }))
            .unwrap(),
        );
        existing
            .children
            .insert(Slot::new(Kind::Job, name.clone()), job);
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason, "message": "not found"}}),
            None => json!({"terminated": {"exitCode": 0, "message": output}}),
        };
        existing.pods.push(
            serde_json::from_value(json!({
                "metadata": {"name": format!("{name}-x"), "labels": {JOB_NAME_LABEL: name}},
                "status": {"containerStatuses": [{"name": "check", "image": image, "imageID": "",
                    "ready": false, "restartCount": 0, "state": state}]},
            }))
            .unwrap(),
        );
    }

    /// The claim as the operator's apply that recorded `major` left it.
    fn record(existing: &mut Existing, major: &str) {
        let claim = live_mut(existing, Kind::Claim, "books-db-data");
        claim
            .meta_mut()
            .annotations
            .get_or_insert_with(Default::default)
            .insert(MAJOR_ANNOTATION.into(), major.into());
        drift::stamp(claim);
    }

    fn database_report(plan: &Plan) -> Option<&TierRollout> {
        plan.rollouts
            .iter()
            .find_map(|(c, r)| (*c == Component::Database).then_some(r))
    }

    #[test]
    fn the_data_major_version_is_learned_from_the_running_image_and_recorded_on_the_claim() {
        let (stack, mut existing) = converged("");
        assert_eq!(data_major(&stack, &existing), None);
        checked(
            &mut existing,
            "postgres:17",
            Some("postgres (PostgreSQL) 17.6"),
            None,
        );
        let plan = plan(&stack, &existing, "pw", &now());
        assert_eq!(
            summary(&plan),
            vec!["Update PersistentVolumeClaim books-db-data"]
        );
        let existing = applied(&plan, existing);
        let claim = existing.claim("books-db-data").unwrap();
        assert_eq!(
            claim.metadata.annotations.as_ref().unwrap()[MAJOR_ANNOTATION],
            "17"
        );
    }

    #[test]
    fn a_new_database_image_waits_for_its_check_and_another_major_is_refused() {
        let (_, mut existing) = converged("");
        record(&mut existing, "17");
        let next = valid_stack("database: {image: 'postgres:18'}");
        let job = names::database_check_job("books", "postgres:18");
        let first = plan(&next, &existing, "pw", &now());
        assert_eq!(summary(&first), vec![format!("Create Job {job}")]);
        assert!(matches!(
            database_report(&first),
            Some(TierRollout::CheckingImage { .. })
        ));
        assert!(first.poll);

        checked(
            &mut existing,
            "postgres:18",
            Some("postgres (PostgreSQL) 18.1"),
            None,
        );
        let refused = plan(&next, &existing, "pw", &now());
        assert!(refused.steps.is_empty(), "{:?}", summary(&refused));
        let Some(TierRollout::ImageRefused { reason, message }) = database_report(&refused) else {
            panic!("{:?}", refused.rollouts)
        };
        assert_eq!(*reason, reasons::DATABASE_MAJOR_VERSION_CHANGE);
        assert!(
            message.contains("PostgreSQL 18") && message.contains("PostgreSQL 17"),
            "{message}"
        );
        assert!(message.contains("pg_dumpall"), "{message}");
    }

    #[test]
    fn a_new_image_of_the_same_major_rolls_once_it_started() {
        let (_, mut existing) = converged("");
        record(&mut existing, "17");
        let next = valid_stack("database: {image: 'postgres:17.7'}");
        checked(
            &mut existing,
            "postgres:17.7",
            Some("postgres (PostgreSQL) 17.7"),
            None,
        );
        let plan = plan(&next, &existing, "pw", &now());
        assert_eq!(summary(&plan), vec!["Update StatefulSet books-db"]);
        assert_eq!(database_report(&plan), None);
    }

    #[test]
    fn an_image_that_cannot_start_is_refused_at_once() {
        let (_, mut existing) = converged("");
        record(&mut existing, "17");
        let next = valid_stack("database: {image: 'postgres:no-such-tag'}");
        checked(
            &mut existing,
            "postgres:no-such-tag",
            None,
            Some("ErrImagePull"),
        );
        let plan = plan(&next, &existing, "pw", &now());
        assert!(plan.steps.is_empty(), "{:?}", summary(&plan));
        let Some(TierRollout::ImageRefused { reason, message }) = database_report(&plan) else {
            panic!("{:?}", plan.rollouts)
        };
        assert_eq!(*reason, reasons::DATABASE_IMAGE_UNUSABLE);
        assert!(
            message.contains("ErrImagePull") && message.contains("keeps running postgres:17"),
            "{message}"
        );
    }

    #[test]
    fn a_recreated_stack_on_recorded_data_checks_its_image_first() {
        let (_, mut existing) = converged("");
        record(&mut existing, "16");
        existing
            .children
            .remove(&Slot::new(Kind::StatefulSet, "books-db"));
        let stack = valid_stack("");
        let waiting = plan(&stack, &existing, "pw", &now());
        let steps = summary(&waiting);
        assert!(
            !steps.iter().any(|s| s.contains("StatefulSet")),
            "{steps:?}"
        );
        assert!(matches!(
            database_report(&waiting),
            Some(TierRollout::CheckingImage { .. })
        ));
        checked(
            &mut existing,
            "postgres:17",
            Some("postgres (PostgreSQL) 17.6"),
            None,
        );
        let refused = plan(&stack, &existing, "pw", &now());
        assert!(!summary(&refused).iter().any(|s| s.contains("StatefulSet")));
        assert!(matches!(
            database_report(&refused),
            Some(TierRollout::ImageRefused { reason, .. }) if *reason == reasons::DATABASE_MAJOR_VERSION_CHANGE
        ));
    }

    #[test]
    fn major_versions_are_read_from_postgres_version() {
        assert_eq!(
            major_of("postgres (PostgreSQL) 17.6 (Debian 17.6-1.pgdg13+1)").as_deref(),
            Some("17")
        );
        assert_eq!(
            major_of("postgres (PostgreSQL) 18beta1").as_deref(),
            Some("18")
        );
        assert_eq!(
            major_of("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(major_of("something else"), None);
        assert_eq!(major_of(""), None);
    }
}
