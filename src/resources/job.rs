//! The migration Job `<stack>-migrate-<hash of the image>`: `api.migrations.command` run once
//! with the new API image, before the API Deployment moves to that image.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, PodTemplateSpec};
use kube::api::ObjectMeta;

use super::database::POSTGRES_UID;
use super::deployment::{deployment, isolated_pod_spec};
use super::filesystem::hardening;
use super::requirements::{CPU, EPHEMERAL_STORAGE, MEMORY, bounded};
use super::secret::Credentials;
use super::{LABEL_COMPONENT, Ownership, object_meta, restricted_pod_security};
use crate::crd::MigrationsSpec;
use crate::names;
use crate::stack::{Component, ValidStack};

/// Value of `app.kubernetes.io/component` on migration Jobs and their pods.
pub const MIGRATIONS_COMPONENT: &str = "migrations";
/// Annotation with the `metadata.generation` of the stack that created the Job: a failed Job
/// is run again only for a newer spec.
pub const GENERATION_ANNOTATION: &str = "appstack.dev/generation";
/// Finished Jobs (and their pods and logs) stay this long for `kubectl logs`, then go.
const TTL_AFTER_FINISHED_SECONDS: i32 = 3600;

/// The Job that migrates the database for the API's current image, or `None` without
/// `api.migrations`.
pub fn migration_job(stack: &ValidStack, credentials: &Credentials) -> Option<Job> {
    let migrations = stack.migrations.as_ref()?;
    let name = names::migration_job(&stack.name, &stack.api.image);
    // The API's own pod: same image, environment (DATABASE_URL), security context (read-only
    // root, /tmp writable) and resources, so the migration runs exactly as the API will.
    let template = deployment(stack, &stack.api, credentials)
        .spec
        .map(|spec| spec.template)
        .unwrap_or_default();
    Some(Job {
        metadata: {
            let mut meta = object_meta(stack, name, Component::Api, Ownership::Owned);
            relabel(meta.labels.as_mut());
            meta.annotations = stack.generation.map(|generation| {
                BTreeMap::from([(GENERATION_ANNOTATION.to_owned(), generation.to_string())])
            });
            meta
        },
        spec: Some(JobSpec {
            backoff_limit: Some(migrations.backoff_limit),
            active_deadline_seconds: Some(migrations.timeout_seconds),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED_SECONDS),
            template: migration_pod(template, migrations),
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

/// Value of `app.kubernetes.io/component` on database image checks: not `database`, so that
/// the database Service never sends connections to them.
pub const DATABASE_CHECK_COMPONENT: &str = "database-check";
/// How long a database image check may take, pull included.
const DATABASE_CHECK_DEADLINE_SECONDS: i64 = 180;

/// The Job that runs `postgres --version` in `image`, without the data volume: the image can be
/// pulled and its server binary runs, and its termination message says which Postgres it is.
pub fn database_check_job(stack: &ValidStack, image: &str) -> Job {
    let name = names::database_check_job(&stack.name, image);
    let mut meta = object_meta(stack, name, Component::Database, Ownership::Owned);
    if let Some(labels) = meta.labels.as_mut() {
        labels.insert(LABEL_COMPONENT.into(), DATABASE_CHECK_COMPONENT.into());
    }
    meta.annotations = stack.generation.map(|generation| {
        BTreeMap::from([(GENERATION_ANNOTATION.to_owned(), generation.to_string())])
    });
    // `postgres --version` fails (and so does the Job) when the binary is missing or broken;
    // only its output goes to the termination message.
    let script = "version=$(postgres --version) && echo \"$version\" | tee /dev/termination-log";
    // Hardened as the database itself, whose image it runs.
    let hardening = hardening(
        Component::Database,
        stack.database.read_only_root_filesystem,
    );
    let container = Container {
        name: "check".into(),
        image: Some(image.into()),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        resources: Some(bounded(
            &[(CPU, "10m"), (MEMORY, "32Mi"), (EPHEMERAL_STORAGE, "16Mi")],
            &[(MEMORY, "128Mi"), (EPHEMERAL_STORAGE, "64Mi")],
        )),
        security_context: Some(hardening.security_context),
        volume_mounts: Some(hardening.volume_mounts),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        security_context: Some(restricted_pod_security(Some(POSTGRES_UID))),
        volumes: Some(hardening.volumes),
        ..isolated_pod_spec()
    };
    Job {
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(DATABASE_CHECK_DEADLINE_SECONDS),
            ttl_seconds_after_finished: Some(TTL_AFTER_FINISHED_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: meta.labels.clone(),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        metadata: meta,
        ..Job::default()
    }
}

fn migration_pod(mut template: PodTemplateSpec, migrations: &MigrationsSpec) -> PodTemplateSpec {
    if let Some(meta) = template.metadata.as_mut() {
        relabel(meta.labels.as_mut());
    }
    if let Some(pod) = template.spec.as_mut() {
        pod.restart_policy = Some("Never".into());
        for container in &mut pod.containers {
            container.name = MIGRATIONS_COMPONENT.into();
            container.command = Some(migrations.command.clone());
            container.args = None;
            container.ports = None;
            container.readiness_probe = None;
            container.liveness_probe = None;
            container.startup_probe = None;
            // The end of the output becomes the termination message that the status quotes.
            container.termination_message_policy = Some("FallbackToLogsOnError".into());
            container.env = Some(with_overrides(
                container.env.take().unwrap_or_default(),
                &migrations.env,
            ));
        }
    }
    template
}

/// The migration's own variables replace the API's of the same name.
fn with_overrides(mut env: Vec<EnvVar>, overrides: &[EnvVar]) -> Vec<EnvVar> {
    env.retain(|var| !overrides.iter().any(|o| o.name == var.name));
    env.extend(overrides.iter().cloned());
    env
}

/// Migration pods are not API pods: neither the API's Service nor its budget may count them.
fn relabel(labels: Option<&mut BTreeMap<String, String>>) {
    if let Some(labels) = labels {
        labels.insert(LABEL_COMPONENT.into(), MIGRATIONS_COMPONENT.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::secret::credentials_secret;
    use crate::test_fixtures::valid_stack;

    fn job(overrides: &str) -> Option<Job> {
        let stack = valid_stack(overrides);
        let secret = credentials_secret(&stack, "pw", None);
        migration_job(&stack, &Credentials::of_secret(&secret))
    }

    #[test]
    fn the_database_check_runs_the_server_binary_without_the_data() {
        let stack = valid_stack("");
        let job = database_check_job(&stack, "postgres:18");
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(&*names::database_check_job("books", "postgres:18"))
        );
        let labels = job.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_COMPONENT], "database-check");
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        let pod = spec.template.spec.unwrap();
        assert!(
            pod.volumes
                .iter()
                .flatten()
                .all(|v| v.persistent_volume_claim.is_none()),
            "never the data volume"
        );
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("postgres:18"));
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        let limits = container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert!(limits.contains_key("ephemeral-storage"));
        assert!(container.command.as_ref().unwrap()[2].contains("postgres --version"));
        assert_eq!(pod.security_context.unwrap().run_as_user, Some(999));
    }

    #[test]
    fn no_job_without_migrations() {
        assert_eq!(job(""), None);
    }

    #[test]
    fn the_job_runs_the_command_with_the_api_image_and_environment() {
        let job = job(
            "api: {image: books-api:2, env: [{name: A, value: api}, {name: B, value: api}],
                   migrations: {command: [flask, db, upgrade], env: [{name: B, value: migration}]}}",
        )
        .expect("a job");
        assert_eq!(
            job.metadata.name.as_deref(),
            Some(&*names::migration_job("books", "books-api:2"))
        );
        assert_eq!(
            job.metadata.labels.as_ref().unwrap()[LABEL_COMPONENT],
            "migrations"
        );
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(1));
        assert_eq!(spec.active_deadline_seconds, Some(600));
        assert!(spec.ttl_seconds_after_finished.is_some());
        let template = spec.template;
        assert_eq!(
            template.metadata.unwrap().labels.unwrap()[LABEL_COMPONENT],
            "migrations"
        );
        let pod = template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let container = &pod.containers[0];
        assert_eq!(container.image.as_deref(), Some("books-api:2"));
        assert_eq!(
            container.command,
            Some(vec!["flask".into(), "db".into(), "upgrade".into()])
        );
        assert!(container.readiness_probe.is_none() && container.ports.is_none());
        let env = container.env.as_ref().unwrap();
        let value = |name: &str| {
            env.iter()
                .filter(|v| v.name == name)
                .map(|v| v.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(value("A"), vec![Some("api".to_owned())]);
        assert_eq!(value("B"), vec![Some("migration".to_owned())]);
        assert_eq!(value("DATABASE_URL").len(), 1);
        assert!(pod.security_context.is_some());
        // Hardened as the API: read-only root, /tmp writable, bounded ephemeral storage.
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        let mounts = container.volume_mounts.as_ref().unwrap();
        assert_eq!(mounts[0].mount_path, "/tmp");
        assert!(pod.volumes.as_ref().unwrap()[0].empty_dir.is_some());
        let limits = container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap();
        assert!(limits.contains_key("ephemeral-storage"));
    }
}
