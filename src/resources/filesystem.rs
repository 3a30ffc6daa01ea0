//! What a container may write. Every container runs with a read-only root filesystem (unless its
//! tier's `readOnlyRootFilesystem` is false), with an `emptyDir` mounted exactly where its image
//! must write:
//!
//! | tier | writable | who writes there |
//! | --- | --- | --- |
//! | API | `/tmp` | Gunicorn's worker heartbeat files (its default `--worker-tmp-dir`), Python's `tempfile`, request bodies Flask spools to disk |
//! | frontend | `/tmp` | nginx-unprivileged: its pid file and client-body/proxy temp files |
//! | database | `/var/run/postgresql`, `/tmp` | the Postgres socket and its lock file; temporary files of the entry point and the tools it runs (shell here-documents) |
//!
//! (`/dev/shm` is a tmpfs of the container runtime and stays writable; the database's data is on
//! its claim.) What is written there counts against the container's ephemeral-storage limit.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, SecurityContext, Volume, VolumeMount};

use super::restricted_container_security;
use crate::stack::Component;

/// One writable directory: an `emptyDir` volume and where it is mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritablePath {
    pub volume: &'static str,
    pub path: &'static str,
}

const TMP: WritablePath = WritablePath {
    volume: "tmp",
    path: "/tmp",
};
const POSTGRES_RUN: WritablePath = WritablePath {
    volume: "postgres-run",
    path: "/var/run/postgresql",
};

/// The directories a tier's image writes to (see the table above).
pub fn writable_paths(component: Component) -> &'static [WritablePath] {
    match component {
        Component::Api | Component::Frontend => &[TMP],
        Component::Database => &[POSTGRES_RUN, TMP],
    }
}

/// Everything a container of one tier needs to run hardened: its security context and the
/// volumes and mounts of its writable directories. The pod takes `volumes`, the container
/// `security_context` and `volume_mounts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Hardening {
    pub security_context: SecurityContext,
    pub volume_mounts: Vec<VolumeMount>,
    pub volumes: Vec<Volume>,
}

/// The hardening of a container of `component`: the restricted Pod Security Standard, a
/// read-only root filesystem when `read_only_root` is set, and its writable directories (mounted
/// either way, so that the paths and their accounting do not depend on the setting).
pub fn hardening(component: Component, read_only_root: bool) -> Hardening {
    let paths = writable_paths(component);
    Hardening {
        security_context: SecurityContext {
            read_only_root_filesystem: Some(read_only_root),
            ..restricted_container_security()
        },
        volume_mounts: paths
            .iter()
            .map(|p| VolumeMount {
                name: p.volume.into(),
                mount_path: p.path.into(),
                ..VolumeMount::default()
            })
            .collect(),
        volumes: paths
            .iter()
            .map(|p| Volume {
                name: p.volume.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_gets_a_read_only_root_and_its_writable_paths() {
        for (component, paths) in [
            (Component::Api, vec!["/tmp"]),
            (Component::Frontend, vec!["/tmp"]),
            (Component::Database, vec!["/var/run/postgresql", "/tmp"]),
        ] {
            let hardening = hardening(component, true);
            let security = &hardening.security_context;
            assert_eq!(security.read_only_root_filesystem, Some(true));
            assert_eq!(security.allow_privilege_escalation, Some(false));
            assert_eq!(security.run_as_non_root, Some(true));
            let mounted: Vec<&str> = hardening
                .volume_mounts
                .iter()
                .map(|m| m.mount_path.as_str())
                .collect();
            assert_eq!(mounted, paths, "{component:?}");
            for mount in &hardening.volume_mounts {
                let volume = hardening
                    .volumes
                    .iter()
                    .find(|v| v.name == mount.name)
                    .unwrap_or_else(|| panic!("a volume for {}", mount.mount_path));
                assert!(volume.empty_dir.is_some(), "{component:?}: {volume:?}");
                assert_ne!(mount.read_only, Some(true));
            }
        }
    }
}
