//! Rollout safety for the API and frontend, pure: are the new pods of a rollout failing, and
//! what was the last good template to go back to?
//!
//! A Deployment reports a stuck rollout only after `progressDeadlineSeconds` (ten minutes by
//! default). The pods say it at once: a pull error or a crash loop is a failed rollout, and so is
//! a new pod that stays unready longer than `spec.rollout.readinessTimeoutSeconds`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::migration::job_container_states;

/// Container states that no amount of waiting fixes.
pub const FAILED_STATES: [&str; 7] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];
const REVISION: &str = "deployment.kubernetes.io/revision";
const TEMPLATE_HASH: &str = "pod-template-hash";

/// Why a new pod counts as failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFailure {
    pub pod: String,
    /// The container's own reason (`ErrImagePull`, `CrashLoopBackOff`, …) or `NotReady`.
    pub reason: String,
    pub message: String,
}

/// The ReplicaSets a Deployment owns, newest revision first.
fn owned<'a>(deployment: &Deployment, sets: &'a [ReplicaSet]) -> Vec<&'a ReplicaSet> {
    let uid = deployment.metadata.uid.as_deref();
    let mut owned: Vec<&ReplicaSet> = sets
        .iter()
        .filter(|set| {
            set.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && Some(o.uid.as_str()) == uid)
        })
        .collect();
    owned.sort_by_key(|set| std::cmp::Reverse(revision(&set.metadata.annotations)));
    owned
}

fn revision(annotations: &Option<std::collections::BTreeMap<String, String>>) -> u64 {
    annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSet of the Deployment's current revision.
fn current<'a>(deployment: &Deployment, sets: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let wanted = revision(&deployment.metadata.annotations);
    owned(deployment, sets)
        .into_iter()
        .find(|set| wanted > 0 && revision(&set.metadata.annotations) == wanted)
}

/// The first failing pod of the Deployment's current revision, if any.
pub fn failing_pod(
    deployment: &Deployment,
    sets: &[ReplicaSet],
    pods: &[Pod],
    now: &Time,
    readiness_timeout: Duration,
) -> Option<PodFailure> {
    let hash = current(deployment, sets)?
        .metadata
        .labels
        .as_ref()?
        .get(TEMPLATE_HASH)?;
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(TEMPLATE_HASH))
                == Some(hash)
        })
        .find_map(|pod| pod_failure(pod, now, readiness_timeout))
}

fn pod_failure(pod: &Pod, now: &Time, readiness_timeout: Duration) -> Option<PodFailure> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    let statuses = status.container_statuses.iter().flatten();
    let init_statuses = status.init_container_statuses.iter().flatten();
    for container in init_statuses.chain(statuses) {
        let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(waiting) = waiting
            && let Some(reason) = waiting.reason.as_deref()
            && FAILED_STATES.contains(&reason)
        {
            return Some(PodFailure {
                pod: name,
                reason: reason.into(),
                message: waiting.message.clone().unwrap_or_default(),
            });
        }
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let created = pod.metadata.creation_timestamp.as_ref()?;
    let age = now.0.duration_since(created.0).unsigned_abs();
    (!ready && age > readiness_timeout).then(|| PodFailure {
        pod: name,
        reason: "NotReady".into(),
        message: format!(
            "not ready {}s after it was created (spec.rollout.readinessTimeoutSeconds is {})",
            age.as_secs(),
            readiness_timeout.as_secs()
        ),
    })
}

/// A pod of Job `job` that cannot start, as "reason: message" (a pull error never fails a Job
/// by itself: its pod waits until the Job's deadline).
pub fn failing_job_pod(job: &str, pods: &[Pod]) -> Option<String> {
    job_container_states(job, pods)
        .filter_map(|state| state.waiting.as_ref())
        .find_map(|w| {
            let reason = w.reason.as_deref()?;
            FAILED_STATES.contains(&reason).then(|| match &w.message {
                Some(message) => format!("{reason}: {message}"),
                None => reason.to_owned(),
            })
        })
}

/// The pod template of the newest earlier revision: what `kubectl rollout undo` goes back to.
/// `None` for a Deployment that never rolled out successfully before.
pub fn last_good_template(deployment: &Deployment, sets: &[ReplicaSet]) -> Option<PodTemplateSpec> {
    let current = revision(&deployment.metadata.annotations);
    let previous = owned(deployment, sets)
        .into_iter()
        .find(|set| revision(&set.metadata.annotations) < current)?;
    let mut template = previous.spec.as_ref()?.template.clone()?;
    // The ReplicaSet controller adds it; the Deployment controller adds it again.
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH);
    }
    Some(template)
}

/// The first container's image of a template.
pub fn image_of(template: Option<&PodTemplateSpec>) -> Option<String> {
    template?.spec.as_ref()?.containers.first()?.image.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(revision: u64) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "books-api", "uid": "d-uid",
                         "annotations": {REVISION: revision.to_string()}},
        }))
        .unwrap()
    }

    fn set(revision: u64, hash: &str, image: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": format!("books-api-{hash}"),
                         "labels": {TEMPLATE_HASH: hash},
                         "annotations": {REVISION: revision.to_string()},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                             "name": "books-api", "uid": "d-uid", "controller": true}]},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "books", TEMPLATE_HASH: hash}},
                "spec": {"containers": [{"name": "api", "image": image}]}}},
        }))
        .unwrap()
    }

    fn pod(hash: &str, age_seconds: i64, ready: bool, waiting: Option<&str>) -> Pod {
        let created = jiff::Timestamp::from_second(1_000_000 - age_seconds).unwrap();
        let state = match waiting {
            Some(reason) => json!({"waiting": {"reason": reason, "message": "it broke"}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": format!("books-api-{hash}-x"), "labels": {TEMPLATE_HASH: hash},
                         "creationTimestamp": created.to_string()},
            "status": {
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                "containerStatuses": [{"name": "api", "image": "i", "imageID": "", "ready": ready,
                                       "restartCount": 0, "state": state}]},
        }))
        .unwrap()
    }

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_000_000).unwrap())
    }

    const TIMEOUT: Duration = Duration::from_secs(120);

    #[test]
    fn a_pull_error_of_a_new_pod_fails_the_rollout_at_once() {
        let sets = [set(1, "old", "api:1"), set(2, "new", "api:2")];
        let pods = [
            pod("old", 500, true, None),
            pod("new", 3, false, Some("ErrImagePull")),
        ];
        let failure = failing_pod(&deployment(2), &sets, &pods, &now(), TIMEOUT).unwrap();
        assert_eq!(failure.reason, "ErrImagePull");
        assert_eq!(failure.pod, "books-api-new-x");
        assert_eq!(failure.message, "it broke");
    }

    #[test]
    fn old_pods_and_young_unready_pods_are_no_failure() {
        let sets = [set(1, "old", "api:1"), set(2, "new", "api:2")];
        // The old revision's crash loop is not this rollout's doing.
        let pods = [
            pod("old", 500, false, Some("CrashLoopBackOff")),
            pod("new", 30, false, None),
        ];
        assert_eq!(
            failing_pod(&deployment(2), &sets, &pods, &now(), TIMEOUT),
            None
        );
    }

    #[test]
    fn a_new_pod_unready_past_the_timeout_fails_the_rollout() {
        let sets = [set(2, "new", "api:2")];
        let pods = [pod("new", 121, false, None)];
        let failure = failing_pod(&deployment(2), &sets, &pods, &now(), TIMEOUT).unwrap();
        assert_eq!(failure.reason, "NotReady");
        assert!(failure.message.contains("121s"), "{}", failure.message);
        let ready = [pod("new", 500, true, None)];
        assert_eq!(
            failing_pod(&deployment(2), &sets, &ready, &now(), TIMEOUT),
            None
        );
    }

    #[test]
    fn the_last_good_template_is_the_newest_earlier_revision() {
        let sets = [
            set(3, "new", "api:3"),
            set(1, "older", "api:1"),
            set(2, "old", "api:2"),
        ];
        let template = last_good_template(&deployment(3), &sets).unwrap();
        assert_eq!(image_of(Some(&template)).as_deref(), Some("api:2"));
        let labels = template.metadata.unwrap().labels.unwrap();
        assert!(!labels.contains_key(TEMPLATE_HASH));
        assert_eq!(
            last_good_template(&deployment(1), &[set(1, "a", "api:1")]),
            None
        );
    }

    #[test]
    fn replica_sets_of_other_deployments_are_ignored() {
        let mut foreign = set(1, "old", "api:1");
        foreign.metadata.owner_references.as_mut().unwrap()[0].uid = "other".into();
        assert_eq!(
            last_good_template(&deployment(2), &[foreign, set(2, "new", "api:2")]),
            None
        );
    }
}
