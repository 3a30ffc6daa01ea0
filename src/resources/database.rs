//! The Postgres StatefulSet `<stack>-db`.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Container, ExecAction, PersistentVolumeClaimVolumeSource, PodSpec, Probe, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::deployment::{container_port, isolated_pod_spec, literal_env, pod_template, secret_env};
use super::filesystem::hardening;
use super::requirements::requirements;
use super::secret::{Credentials, KEY_PASSWORD, KEY_USERNAME, POSTGRES_PORT};
use super::{Ownership, object_meta, restricted_pod_security, selector_labels};
use crate::stack::{Component, ValidStack};

/// UID and GID of the `postgres` user in the official Postgres images.
pub const POSTGRES_UID: i64 = 999;
const DATA_MOUNT: &str = "/var/lib/postgresql/data";
/// A subdirectory of the mount: Postgres wants to own and `chmod 0700` its data directory, which
/// it cannot do to the root of a volume owned by root.
const PGDATA: &str = "/var/lib/postgresql/data/pgdata";

/// Seconds `pg_isready` waits for an answer; probe timeouts leave it room to report.
const PING_TIMEOUT: i32 = 3;

/// The database's probes, each asking its own question with `pg_isready`, which exits 0 when
/// the server accepts connections, 1 when it answers but rejects them (starting up, in crash
/// recovery, shutting down), 2 when nothing answers:
/// - readiness, "accepting connections" (0): only then does the Service send clients;
/// - liveness, "the server process answers" (0 or 1): a Postgres busy with crash recovery or a
///   long shutdown checkpoint is alive and is left to finish; only one that stops answering
///   altogether for a minute is restarted;
/// - startup, the same as liveness with ten minutes to pass: initdb on a fresh volume, and a
///   server that has not started listening yet, before liveness takes over.
pub struct Probes {
    pub readiness: Probe,
    pub liveness: Probe,
    pub startup: Probe,
}

/// The Postgres container's probes, as [`Probes`] describes them.
pub fn probes() -> Probes {
    let ping = format!(
        "pg_isready --host 127.0.0.1 --port {POSTGRES_PORT} --username \"$POSTGRES_USER\" --dbname \"$POSTGRES_DB\" --timeout {PING_TIMEOUT}"
    );
    let exec = |script: String| {
        Some(ExecAction {
            command: Some(vec!["sh".into(), "-c".into(), script]),
        })
    };
    let accepting = exec(format!("exec {ping}"));
    // `|| [ $? -eq 1 ]`: "rejecting connections" counts as alive.
    let answering = exec(format!("{ping} || [ $? -eq 1 ]"));
    let probe = |exec: Option<ExecAction>, period: i32, failures: i32| Probe {
        exec,
        period_seconds: Some(period),
        timeout_seconds: Some(PING_TIMEOUT + 2),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    Probes {
        readiness: probe(accepting, 5, 3),
        liveness: probe(answering.clone(), 10, 6),
        startup: probe(answering, 5, 120),
    }
}

/// The Postgres StatefulSet: one pod over the stack's claim.
pub fn statefulset(stack: &ValidStack, credentials: &Credentials) -> StatefulSet {
    let db = &stack.database;
    let probes = probes();
    let hardening = hardening(Component::Database, db.read_only_root_filesystem);
    let data_mount = VolumeMount {
        name: "data".into(),
        mount_path: DATA_MOUNT.into(),
        ..VolumeMount::default()
    };
    let container = Container {
        name: "postgres".into(),
        image: Some(db.image.clone()),
        env: Some(vec![
            secret_env("POSTGRES_USER", credentials, KEY_USERNAME),
            secret_env("POSTGRES_PASSWORD", credentials, KEY_PASSWORD),
            literal_env("POSTGRES_DB", &db.name),
            literal_env("PGDATA", PGDATA),
        ]),
        ports: Some(vec![container_port(Component::Database, POSTGRES_PORT)]),
        startup_probe: Some(probes.startup),
        readiness_probe: Some(probes.readiness),
        liveness_probe: Some(probes.liveness),
        resources: Some(requirements(Component::Database, db.resources.as_ref())),
        security_context: Some(hardening.security_context),
        volume_mounts: Some(
            std::iter::once(data_mount)
                .chain(hardening.volume_mounts)
                .collect(),
        ),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        security_context: Some(restricted_pod_security(Some(POSTGRES_UID))),
        volumes: Some(
            std::iter::once(Volume {
                name: "data".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: stack.claim_name(),
                    read_only: None,
                }),
                ..Volume::default()
            })
            .chain(hardening.volumes)
            .collect(),
        ),
        ..isolated_pod_spec()
    };
    // A StatefulSet of one never starts a replacement pod while the old one still exists, whatever
    // deleted it (eviction, `kubectl delete pod`, a lost node): never two postmasters on the data.
    // The claim is the stack's own (not a volumeClaimTemplate), so it keeps its name and policies.
    StatefulSet {
        metadata: object_meta(
            stack,
            stack.child_name(Component::Database),
            Component::Database,
            Ownership::Owned,
        ),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(stack.child_name(Component::Database)),
            selector: LabelSelector {
                match_labels: Some(selector_labels(stack, Component::Database)),
                ..LabelSelector::default()
            },
            template: pod_template(stack, Component::Database, pod, Some(credentials)),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::deployment::CREDENTIALS_HASH_ANNOTATION;
    use crate::test_fixtures::valid_stack;
    use k8s_openapi::api::core::v1::EnvVar;

    fn env_var<'a>(container: &'a Container, name: &str) -> &'a EnvVar {
        container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} is set"))
    }

    fn credentials() -> Credentials {
        Credentials {
            secret_name: "books-db-credentials".into(),
            has_database_url: true,
            hash: "abc123".into(),
        }
    }

    #[test]
    fn postgres_runs_alone_on_its_claim_with_pg_isready() {
        let stack = valid_stack("");
        let db = statefulset(&stack, &credentials());
        let spec = db.spec.as_ref().unwrap();
        assert_eq!(spec.replicas, Some(1));
        assert_eq!(spec.service_name.as_deref(), Some("books-db"));
        assert!(
            spec.volume_claim_templates.is_none(),
            "the stack's own claim, not a template"
        );
        let template = &spec.template;
        assert_eq!(
            template
                .metadata
                .as_ref()
                .unwrap()
                .annotations
                .as_ref()
                .unwrap()[CREDENTIALS_HASH_ANNOTATION],
            "abc123"
        );
        let pod = template.spec.as_ref().unwrap();
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_user,
            Some(999)
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let claim = pod.volumes.as_ref().unwrap()[0]
            .persistent_volume_claim
            .as_ref()
            .unwrap();
        assert_eq!(claim.claim_name, "books-db-data");
        let container = &pod.containers[0];
        assert_eq!(env_var(container, "PGDATA").value.as_deref(), Some(PGDATA));
        assert_eq!(
            env_var(container, "POSTGRES_DB").value.as_deref(),
            Some("books")
        );
        let password = env_var(container, "POSTGRES_PASSWORD")
            .value_from
            .as_ref()
            .unwrap();
        assert_eq!(password.secret_key_ref.as_ref().unwrap().key, "password");
        assert_eq!(container.readiness_probe, Some(probes().readiness));
        assert_eq!(container.liveness_probe, Some(probes().liveness));
        assert_eq!(container.startup_probe, Some(probes().startup));
        assert_eq!(
            container.volume_mounts.as_ref().unwrap()[0].mount_path,
            DATA_MOUNT
        );
        let selector = spec.selector.match_labels.as_ref().unwrap();
        let labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)));
    }

    fn script(probe: &Probe) -> &str {
        &probe.exec.as_ref().unwrap().command.as_ref().unwrap()[2]
    }

    /// Whether a probe's script passes when `pg_isready` (a stub first on PATH) exits `code`.
    fn passes(probe: &Probe, code: i32) -> bool {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("appstack-pg-isready-{}-{code}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stub = dir.join("pg_isready");
        std::fs::write(&stub, format!("#!/bin/sh\nexit {code}\n")).unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let command = probe.exec.as_ref().unwrap().command.as_ref().unwrap();
        let passed = std::process::Command::new(&command[0])
            .args(&command[1..])
            .env("PATH", path)
            .env("POSTGRES_USER", "books")
            .env("POSTGRES_DB", "books")
            .status()
            .expect("the probe's command runs")
            .success();
        std::fs::remove_dir_all(&dir).unwrap();
        passed
    }

    #[test]
    fn readiness_wants_connections_accepted_liveness_only_an_answer() {
        let probes = probes();
        for probe in [&probes.readiness, &probes.liveness, &probes.startup] {
            assert!(script(probe).contains("pg_isready --host 127.0.0.1 --port 5432"));
        }
        // pg_isready: 0 accepting, 1 rejecting (recovery, shutdown checkpoint), 2 no answer.
        let outcomes = |probe: &Probe| [0, 1, 2].map(|code| passes(probe, code));
        assert_eq!(outcomes(&probes.readiness), [true, false, false]);
        assert_eq!(outcomes(&probes.liveness), [true, true, false]);
        assert_eq!(outcomes(&probes.startup), [true, true, false]);
        let budget = |p: &Probe| p.period_seconds.unwrap() * p.failure_threshold.unwrap();
        assert!(budget(&probes.readiness) <= 15, "out of the Service fast");
        assert!(
            budget(&probes.liveness) >= 60,
            "a slow answer is no reason to restart"
        );
        assert!(budget(&probes.startup) >= 600, "initdb on a slow volume");
        for probe in [&probes.readiness, &probes.liveness, &probes.startup] {
            assert!(
                probe.timeout_seconds.unwrap() > PING_TIMEOUT,
                "pg_isready reports first"
            );
        }
    }

    #[test]
    fn postgres_writes_only_to_its_claim_socket_directory_and_tmp() {
        let stack = valid_stack("");
        let db = statefulset(&stack, &credentials());
        let pod = db.spec.unwrap().template.spec.unwrap();
        let container = &pod.containers[0];
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        let mounts: Vec<&str> = container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        assert_eq!(mounts, [DATA_MOUNT, "/var/run/postgresql", "/tmp"]);
        let volumes = pod.volumes.unwrap();
        assert_eq!(volumes.len(), 3);
        let storage = &container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["ephemeral-storage"];
        assert_eq!(storage.0, "1Gi");
        let relaxed = valid_stack("database: {readOnlyRootFilesystem: false}");
        let relaxed = statefulset(&relaxed, &credentials());
        let container = &relaxed.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem,
            Some(false)
        );
    }
}
