//! The migrations gate, pure: with `api.migrations`, the API Deployment moves to a new image
//! only once that image's migration Job has succeeded.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerState, Pod};

use crate::resources::job::GENERATION_ANNOTATION;

/// Longest part of a migration's output quoted in the status.
const MESSAGE_LIMIT: usize = 600;
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";

/// Where a migration Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Running,
    Succeeded,
    /// Why, with the end of the migration's output when a pod has one.
    Failed(String),
}

/// The state of `job`, quoting its pods' termination messages (the end of their logs) when it
/// failed.
pub fn job_state(job: &Job, pods: &[Pod]) -> JobState {
    let conditions = job
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten());
    let mut failed = None;
    for condition in conditions.filter(|c| c.status == "True") {
        match condition.type_.as_str() {
            "Complete" => return JobState::Succeeded,
            "Failed" => failed = Some(condition),
            _ => {}
        }
    }
    let Some(condition) = failed else {
        return JobState::Running;
    };
    let why = match (&condition.reason, &condition.message) {
        (Some(reason), Some(message)) => format!("{reason}: {message}"),
        (Some(text), None) | (None, Some(text)) => text.clone(),
        (None, None) => "failed".into(),
    };
    match last_output(job, pods) {
        Some(output) => JobState::Failed(format!("{why}; output: {output}")),
        None => JobState::Failed(why),
    }
}

/// The container states of Job `job`'s pods.
pub fn job_container_states<'a>(
    job: &'a str,
    pods: &'a [Pod],
) -> impl Iterator<Item = &'a ContainerState> + 'a {
    pods.iter()
        .filter(move |pod| {
            pod.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(JOB_NAME_LABEL))
                .map(String::as_str)
                == Some(job)
        })
        .flat_map(|pod| {
            pod.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .filter_map(|c| c.state.as_ref())
}

/// The termination message of the job's most recent failed pod, cut to its end.
fn last_output(job: &Job, pods: &[Pod]) -> Option<String> {
    let name = job.metadata.name.as_deref()?;
    let mut outputs: Vec<(Option<&jiff::Timestamp>, &str)> = job_container_states(name, pods)
        .filter_map(|state| state.terminated.as_ref())
        .filter_map(|t| Some((t.finished_at.as_ref().map(|f| &f.0), t.message.as_deref()?)))
        .collect();
    outputs.sort_by_key(|(finished, _)| *finished);
    let (_, output) = outputs.last()?;
    let output = output.trim();
    let start = output
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| output.len() - i <= MESSAGE_LIMIT)
        .unwrap_or(output.len());
    let cut = if start > 0 { "…" } else { "" };
    Some(format!("{cut}{}", &output[start..]))
}

/// The stack generation that created the Job: a failed Job is replaced only for a newer spec.
pub fn job_generation(job: &Job) -> Option<i64> {
    job.metadata
        .annotations
        .as_ref()?
        .get(GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(conditions: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "books-migrate-abc", "annotations": {GENERATION_ANNOTATION: "4"}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    fn pod(finished: i64, message: &str) -> Pod {
        let at = jiff::Timestamp::from_second(finished).unwrap().to_string();
        serde_json::from_value(json!({
            "metadata": {"name": format!("books-migrate-abc-{finished}"),
                         "labels": {JOB_NAME_LABEL: "books-migrate-abc"}},
            "status": {"containerStatuses": [{"name": "migrations", "image": "i", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "finishedAt": at, "message": message}}}]},
        }))
        .unwrap()
    }

    #[test]
    fn states_follow_the_job_conditions() {
        assert_eq!(job_state(&job(json!([])), &[]), JobState::Running);
        let done = job(json!([{"type": "Complete", "status": "True"}]));
        assert_eq!(job_state(&done, &[]), JobState::Succeeded);
        let failed = job(json!([{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]));
        assert_eq!(
            job_state(&failed, &[]),
            JobState::Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            )
        );
        assert_eq!(job_generation(&failed), Some(4));
    }

    #[test]
    fn a_failure_quotes_the_end_of_the_latest_output() {
        let failed =
            job(json!([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]));
        let long = format!("{}relation \"books\" does not exist\n", "x".repeat(2000));
        let pods = [pod(20, &long), pod(10, "first attempt")];
        let JobState::Failed(message) = job_state(&failed, &pods) else {
            panic!("not failed")
        };
        assert!(
            message.starts_with("DeadlineExceeded; output: …"),
            "{message}"
        );
        assert!(
            message.ends_with("relation \"books\" does not exist"),
            "{message}"
        );
        assert!(message.len() < 700);
    }
}
