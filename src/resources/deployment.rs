//! The Deployments `<stack>-api` and `<stack>-frontend`, and the pod-template helpers the database
//! StatefulSet shares.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    SecretKeySelector, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;

use super::filesystem::hardening;
use super::requirements::requirements;
use super::secret::{Credentials, KEY_DATABASE_URL, KEY_PASSWORD, KEY_USERNAME, POSTGRES_PORT};
use super::service::port_name;
use super::{Ownership, labels, object_meta, restricted_pod_security, selector_labels};
use crate::stack::{Component, ValidStack, WebTier};

/// Pod-template annotation with the digest of the credentials the pods read.
pub const CREDENTIALS_HASH_ANNOTATION: &str = "appstack.dev/credentials-hash";

/// The Deployment of an HTTP tier (API or frontend).
pub fn deployment(stack: &ValidStack, tier: &WebTier, credentials: &Credentials) -> Deployment {
    let http_probe = |period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(tier.health_path.clone()),
            port: IntOrString::String(port_name(tier.component).into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failures),
        ..Probe::default()
    };
    let generated_env = match tier.component {
        Component::Api => database_env(stack, credentials),
        _ => Vec::new(),
    };
    let hardening = hardening(tier.component, tier.read_only_root_filesystem);
    let env: Vec<EnvVar> = generated_env
        .into_iter()
        .chain(tier.env.iter().cloned())
        .collect();
    let container = Container {
        name: tier.component.label().into(),
        image: Some(tier.image.clone()),
        command: tier.command.clone(),
        env: (!env.is_empty()).then_some(env),
        ports: Some(vec![container_port(tier.component, tier.port)]),
        readiness_probe: Some(http_probe(5, 3)),
        // Liveness only asks whether the server answers on its port: a health path that checks
        // the database would restart every API pod during a database outage.
        liveness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String(port_name(tier.component).into()),
                host: None,
            }),
            initial_delay_seconds: Some(10),
            period_seconds: Some(10),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        resources: Some(requirements(tier.component, tier.resources.as_ref())),
        security_context: Some(hardening.security_context),
        volume_mounts: Some(hardening.volume_mounts),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        security_context: Some(restricted_pod_security(None)),
        volumes: Some(hardening.volumes),
        ..isolated_pod_spec()
    };
    // Zero downtime: a new pod must be ready before an old one goes, so a bad image never
    // takes the running version down.
    let strategy = DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_unavailable: Some(IntOrString::Int(0)),
            max_surge: Some(IntOrString::Int(1)),
        }),
    };
    // The HorizontalPodAutoscaler owns `replicas` when there is one; writing it here would
    // make the operator and the autoscaler fight.
    let replicas = tier.autoscaling.is_none().then_some(tier.replicas);
    let reads_credentials = (tier.component == Component::Api).then_some(credentials);
    assemble(
        stack,
        tier.component,
        replicas,
        strategy,
        pod,
        reads_credentials,
    )
}

fn assemble(
    stack: &ValidStack,
    component: Component,
    replicas: Option<i32>,
    strategy: DeploymentStrategy,
    pod: PodSpec,
    reads_credentials: Option<&Credentials>,
) -> Deployment {
    Deployment {
        metadata: object_meta(
            stack,
            stack.child_name(component),
            component,
            Ownership::Owned,
        ),
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(selector_labels(stack, component)),
                ..LabelSelector::default()
            },
            strategy: Some(strategy),
            template: pod_template(stack, component, pod, reads_credentials),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The pod template of `component`, with the digest of the credentials it reads.
pub(super) fn pod_template(
    stack: &ValidStack,
    component: Component,
    pod: PodSpec,
    reads_credentials: Option<&Credentials>,
) -> PodTemplateSpec {
    let annotations = reads_credentials
        .map(|c| BTreeMap::from([(CREDENTIALS_HASH_ANNOTATION.to_owned(), c.hash.clone())]));
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(stack, component)),
            annotations,
            ..ObjectMeta::default()
        }),
        spec: Some(pod),
    }
}

/// Pods that need no Kubernetes API access and no Service environment variables.
pub(super) fn isolated_pod_spec() -> PodSpec {
    PodSpec {
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        ..PodSpec::default()
    }
}

/// `DB_*` variables and `DATABASE_URL` for the API.
fn database_env(stack: &ValidStack, credentials: &Credentials) -> Vec<EnvVar> {
    let url = if credentials.has_database_url {
        secret_env("DATABASE_URL", credentials, KEY_DATABASE_URL)
    } else {
        // Kubernetes expands $(VAR) from variables defined earlier in the list.
        literal_env(
            "DATABASE_URL",
            "postgresql+psycopg://$(DB_USER):$(DB_PASSWORD)@$(DB_HOST):$(DB_PORT)/$(DB_NAME)",
        )
    };
    vec![
        literal_env("DB_HOST", &stack.database_host()),
        literal_env("DB_PORT", &POSTGRES_PORT.to_string()),
        literal_env("DB_NAME", &stack.database.name),
        secret_env("DB_USER", credentials, KEY_USERNAME),
        secret_env("DB_PASSWORD", credentials, KEY_PASSWORD),
        url,
    ]
}

pub(super) fn literal_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

pub(super) fn secret_env(name: &str, credentials: &Credentials, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: credentials.secret_name.clone(),
                key: key.into(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    }
}

pub(super) fn container_port(component: Component, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(port_name(component).into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    fn creds(has_database_url: bool) -> Credentials {
        Credentials {
            secret_name: "books-db-credentials".into(),
            has_database_url,
            hash: "abc123".into(),
        }
    }

    fn template_meta(deployment: &Deployment) -> &ObjectMeta {
        let template = &deployment.spec.as_ref().unwrap().template;
        template.metadata.as_ref().unwrap()
    }

    fn pod(deployment: &Deployment) -> &PodSpec {
        deployment
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
    }

    fn env<'a>(container: &'a Container, name: &str) -> &'a EnvVar {
        container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    }

    #[test]
    fn api_reads_database_url_from_the_secret_and_user_env_comes_last() {
        let stack = valid_stack("api: {image: api, env: [{name: FLASK_ENV, value: production}]}");
        let api = deployment(&stack, &stack.api, &creds(true));
        let container = &pod(&api).containers[0];
        let url = env(container, "DATABASE_URL").value_from.as_ref().unwrap();
        let key_ref = url.secret_key_ref.as_ref().unwrap();
        assert_eq!(
            (key_ref.name.as_str(), key_ref.key.as_str()),
            ("books-db-credentials", "DATABASE_URL")
        );
        assert_eq!(
            container.env.as_ref().unwrap().last().unwrap().name,
            "FLASK_ENV"
        );
        let annotations = template_meta(&api).annotations.as_ref();
        assert_eq!(annotations.unwrap()[CREDENTIALS_HASH_ANNOTATION], "abc123");
    }

    #[test]
    fn api_composes_database_url_when_an_existing_secret_lacks_one() {
        let stack = valid_stack("database: {existingSecret: vault-db}");
        let credentials = Credentials {
            secret_name: "vault-db".into(),
            ..creds(false)
        };
        let api = deployment(&stack, &stack.api, &credentials);
        let container = &pod(&api).containers[0];
        assert_eq!(
            env(container, "DATABASE_URL").value.as_deref(),
            Some("postgresql+psycopg://$(DB_USER):$(DB_PASSWORD)@$(DB_HOST):$(DB_PORT)/$(DB_NAME)")
        );
        let user = env(container, "DB_USER")
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(user.name, "vault-db");
    }

    #[test]
    fn web_tiers_probe_health_path_and_roll_without_downtime() {
        let stack = valid_stack("frontend: {image: web, healthPath: /ready, port: 3000}");
        let frontend = deployment(&stack, &stack.frontend, &creds(true));
        let spec = frontend.spec.as_ref().unwrap();
        let rolling = spec
            .strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        let container = &pod(&frontend).containers[0];
        let probe = container
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.path.as_deref(), Some("/ready"));
        assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 3000);
        let liveness = container.liveness_probe.as_ref().unwrap();
        assert!(
            liveness.tcp_socket.is_some() && liveness.http_get.is_none(),
            "liveness must not depend on the database"
        );
        assert_eq!(container.env, None, "the frontend reads no credentials");
        assert_eq!(spec.template.metadata.as_ref().unwrap().annotations, None);
        assert_eq!(spec.replicas, Some(1));
    }

    #[test]
    fn replicas_are_left_to_the_autoscaler() {
        let stack = valid_stack(
            "api: {image: api, replicas: 3, autoscaling: {minReplicas: 2, maxReplicas: 5}}",
        );
        let api = deployment(&stack, &stack.api, &creds(true));
        assert_eq!(api.spec.unwrap().replicas, None);
        let plain = valid_stack("api: {image: api, replicas: 3}");
        let fixed = deployment(&plain, &plain.api, &creds(true));
        assert_eq!(fixed.spec.unwrap().replicas, Some(3));
    }

    #[test]
    fn every_pod_meets_the_restricted_standard() {
        let stack = valid_stack("");
        for tier in [&stack.api, &stack.frontend] {
            let component = tier.component;
            let d = deployment(&stack, tier, &creds(true));
            let pod = pod(&d);
            let pod_security = pod.security_context.as_ref().unwrap();
            assert_eq!(pod_security.run_as_non_root, Some(true), "{component:?}");
            assert_eq!(
                pod_security.seccomp_profile.as_ref().unwrap().type_,
                "RuntimeDefault"
            );
            assert_eq!(pod.automount_service_account_token, Some(false));
            for container in &pod.containers {
                let security = container.security_context.as_ref().unwrap();
                assert_eq!(security.allow_privilege_escalation, Some(false));
                assert_eq!(
                    security
                        .capabilities
                        .as_ref()
                        .unwrap()
                        .drop
                        .as_ref()
                        .unwrap(),
                    &["ALL"]
                );
                assert!(container.resources.as_ref().unwrap().requests.is_some());
            }
            let selector = d
                .spec
                .as_ref()
                .unwrap()
                .selector
                .match_labels
                .clone()
                .unwrap();
            let template_labels = template_meta(&d).labels.clone().unwrap();
            assert!(
                selector
                    .iter()
                    .all(|(k, v)| template_labels.get(k) == Some(v))
            );
        }
    }

    #[test]
    fn web_tiers_run_on_a_read_only_root_with_bounded_scratch_space() {
        let stack = valid_stack("frontend: {image: web, readOnlyRootFilesystem: false}");
        for (tier, read_only) in [(&stack.api, true), (&stack.frontend, false)] {
            let d = deployment(&stack, tier, &creds(true));
            let pod = pod(&d);
            let container = &pod.containers[0];
            let security = container.security_context.as_ref().unwrap();
            assert_eq!(security.read_only_root_filesystem, Some(read_only));
            let mount = &container.volume_mounts.as_ref().unwrap()[0];
            assert_eq!(mount.mount_path, "/tmp");
            let volume = &pod.volumes.as_ref().unwrap()[0];
            assert_eq!(volume.name, mount.name);
            assert!(volume.empty_dir.is_some());
            let resources = container.resources.as_ref().unwrap();
            for map in [&resources.requests, &resources.limits] {
                assert!(
                    map.as_ref().unwrap().contains_key("ephemeral-storage"),
                    "{:?}",
                    tier.component
                );
            }
        }
    }
}
