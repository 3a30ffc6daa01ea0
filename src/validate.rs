//! `validate(&AppStack) -> ValidStack`: resolves defaults and checks what the builders rely on.
//! The model it returns lives in [`crate::stack`].
//!
//! The API server already enforces the same rules through the CRD schema and CEL, so in a cluster
//! this only fails for objects that predate the schema; it is what `render` relies on offline.

use std::fmt;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Resource, ResourceExt};

use crate::crd::{AppStack, Resources, WorkloadStatus};
use crate::quantity;
use crate::stack::{
    Component, Database, FailedRollout, FailedRollouts, MAX_NAME_LENGTH, ValidStack, WebTier,
};

/// One problem with a spec, naming the field as `kubectl` users write it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Everything wrong with a spec, not only the first problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecError(pub Vec<FieldError>);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problems: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        write!(f, "{}", problems.join("; "))
    }
}

#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn check(&mut self, ok: bool, field: &str, message: impl Into<String>) {
        if !ok {
            self.0.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
    }
}

/// Check a stack and resolve its defaults, or say every field that is wrong.
pub fn validate(stack: &AppStack) -> Result<ValidStack, SpecError> {
    let mut problems = Problems::default();
    let name = stack.name_any();
    problems.check(
        is_dns_label(&name) && name.len() <= MAX_NAME_LENGTH && name.starts_with(|c: char| c.is_ascii_lowercase()),
        "metadata.name",
        format!("{name:?} must start with a letter, contain only lowercase letters, digits and '-', and be at most {MAX_NAME_LENGTH} characters"),
    );
    let spec = &stack.spec;

    let api = WebTier {
        component: Component::Api,
        image: spec.api.image.clone(),
        replicas: spec.api.replicas,
        port: spec.api.port,
        command: spec.api.command.clone(),
        env: spec.api.env.clone(),
        health_path: spec.api.health_path.clone(),
        resources: spec.api.resources.as_ref().map(requirements),
        autoscaling: spec.api.autoscaling.clone(),
        service_type: spec.api.service_type,
        read_only_root_filesystem: spec.api.read_only_root_filesystem,
    };
    let frontend = WebTier {
        component: Component::Frontend,
        image: spec.frontend.image.clone(),
        replicas: spec.frontend.replicas,
        port: spec.frontend.port,
        command: None,
        env: spec.frontend.env.clone(),
        health_path: spec.frontend.health_path.clone(),
        resources: spec.frontend.resources.as_ref().map(requirements),
        autoscaling: spec.frontend.autoscaling.clone(),
        service_type: spec.frontend.service_type,
        read_only_root_filesystem: spec.frontend.read_only_root_filesystem,
    };
    for (prefix, tier) in [("spec.api", &api), ("spec.frontend", &frontend)] {
        check_tier(&mut problems, prefix, tier);
    }
    if let Some(migrations) = &spec.api.migrations {
        problems.check(
            !migrations.command.is_empty(),
            "spec.api.migrations.command",
            "must not be empty",
        );
        check_env(
            &mut problems,
            "spec.api.migrations",
            Component::Api,
            &migrations.env,
        );
    }

    let db = &spec.database;
    check_image(&mut problems, "spec.database.image", &db.image);
    check_resources(
        &mut problems,
        "spec.database.resources",
        db.resources.as_ref().map(requirements).as_ref(),
    );
    if let Some(class) = &db.storage.storage_class_name {
        problems.check(
            is_dns_subdomain(class),
            "spec.database.storage.storageClassName",
            DNS_NAME_MESSAGE,
        );
    }
    for (field, value) in [
        ("spec.database.name", &db.name),
        ("spec.database.user", &db.user),
    ] {
        if let Some(value) = value {
            problems.check(
                is_identifier(value),
                field,
                format!("{value:?} must be 1 to 63 letters, digits, '_' or '-', starting with a letter or '_'"),
            );
        }
    }
    problems.check(
        quantity::parse_nanos(&db.storage.size).is_some_and(|amount| amount > 0),
        "spec.database.storage.size",
        format!(
            "{:?} must be a quantity above zero, such as 1Gi or 500Mi",
            db.storage.size
        ),
    );
    if let Some(secret) = &db.existing_secret {
        problems.check(
            is_dns_subdomain(secret),
            "spec.database.existingSecret",
            format!("{secret:?} is not a valid Secret name"),
        );
    }

    if let Some(ingress) = &spec.ingress {
        problems.check(
            is_dns_subdomain(&ingress.host),
            "spec.ingress.host",
            format!(
                "{:?} is not a host name: lowercase DNS labels of at most 63 characters, no wildcard",
                ingress.host
            ),
        );
        problems.check(
            ingress.api_path.starts_with('/') && ingress.api_path != "/",
            "spec.ingress.apiPath",
            "must start with '/' and must not be '/' (that path serves the frontend)",
        );
        if let Some(class) = &ingress.class_name {
            problems.check(
                is_dns_subdomain(class),
                "spec.ingress.className",
                DNS_NAME_MESSAGE,
            );
        }
        if let Some(tls) = &ingress.tls {
            problems.check(
                is_dns_subdomain(&tls.secret_name),
                "spec.ingress.tls.secretName",
                "is not a valid Secret name",
            );
        }
        problems.check(
            is_dns_label(&ingress.controller_namespace),
            "spec.ingress.controllerNamespace",
            format!(
                "{:?} is not a namespace name: lowercase letters, digits and '-', at most 63",
                ingress.controller_namespace
            ),
        );
        for (key, value) in ingress.controller_pod_labels.iter().flatten() {
            problems.check(
                is_label_key(key),
                "spec.ingress.controllerPodLabels",
                format!("{key:?} is not a label key"),
            );
            problems.check(
                value.is_empty() || is_label_name(value),
                "spec.ingress.controllerPodLabels",
                format!("{value:?} (of {key:?}) is not a label value"),
            );
        }
    }

    if !problems.0.is_empty() {
        return Err(SpecError(problems.0));
    }
    Ok(ValidStack {
        namespace: stack.namespace().unwrap_or_else(|| "default".into()),
        owner: stack.controller_owner_ref(&()),
        api,
        frontend,
        database: Database {
            image: db.image.clone(),
            name: db.name.clone().unwrap_or_else(|| name.clone()),
            user: db.user.clone().unwrap_or_else(|| name.clone()),
            storage_size: db.storage.size.clone(),
            storage_class_name: db.storage.storage_class_name.clone(),
            existing_secret: db.existing_secret.clone(),
            retain_on_delete: db.retain_on_delete,
            resources: db.resources.as_ref().map(requirements),
            read_only_root_filesystem: db.read_only_root_filesystem,
        },
        ingress: spec.ingress.clone(),
        migrations: spec.api.migrations.clone(),
        rollout: spec.rollout.clone(),
        generation: stack.metadata.generation,
        failed: failed_rollouts(stack),
        network_policy: spec.network_policy,
        name,
    })
}

/// The failed rollouts the status remembers.
fn failed_rollouts(stack: &AppStack) -> FailedRollouts {
    let status = stack.status.as_ref();
    let components = status.and_then(|s| s.components.as_ref());
    let message = |condition: &str| {
        status
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition))
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    let of = |workload: &WorkloadStatus, condition: &str| {
        workload.failed_generation.map(|generation| FailedRollout {
            generation,
            image: workload.failed_image.clone(),
            job: workload.migration.as_ref().map(|m| m.job.clone()),
            message: message(condition),
        })
    };
    FailedRollouts {
        api: components.and_then(|c| of(&c.api, crate::status::API_READY)),
        frontend: components.and_then(|c| of(&c.frontend, crate::status::FRONTEND_READY)),
    }
}

/// Names valid, unique, and not one the operator sets.
fn check_env(problems: &mut Problems, prefix: &str, component: Component, env: &[EnvVar]) {
    for (index, var) in env.iter().enumerate() {
        let field = format!("{prefix}.env[{index}].name");
        problems.check(
            is_env_name(&var.name),
            &field,
            "must be letters, digits, '-', '_' or '.', not starting with a digit",
        );
        problems.check(
            !env[..index].iter().any(|earlier| earlier.name == var.name),
            &field,
            format!("{:?} appears more than once", var.name),
        );
        if component == Component::Api {
            problems.check(
                !GENERATED_API_ENV.contains(&var.name.as_str()),
                &field,
                format!("{:?} is set by the operator from the credentials", var.name),
            );
        }
    }
}

/// Variables the operator sets in the API container from the credentials.
pub const GENERATED_API_ENV: [&str; 6] = [
    "DATABASE_URL",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
];

fn check_tier(problems: &mut Problems, prefix: &str, tier: &WebTier) {
    check_env(problems, prefix, tier.component, &tier.env);
    check_image(problems, &format!("{prefix}.image"), &tier.image);
    check_resources(
        problems,
        &format!("{prefix}.resources"),
        tier.resources.as_ref(),
    );
    problems.check(
        tier.replicas >= 0,
        &format!("{prefix}.replicas"),
        format!("must not be negative (got {})", tier.replicas),
    );
    problems.check(
        (1..=65535).contains(&tier.port),
        &format!("{prefix}.port"),
        format!("must be between 1 and 65535 (got {})", tier.port),
    );
    problems.check(
        tier.health_path.starts_with('/'),
        &format!("{prefix}.healthPath"),
        "must start with '/'",
    );
    if let Some(scaling) = &tier.autoscaling {
        let field = format!("{prefix}.autoscaling");
        problems.check(
            scaling.min_replicas >= 1,
            &format!("{field}.minReplicas"),
            "must be at least 1",
        );
        problems.check(
            scaling.min_replicas <= scaling.max_replicas,
            &format!("{field}.minReplicas"),
            format!(
                "must be less than or equal to maxReplicas (got minReplicas {}, maxReplicas {})",
                scaling.min_replicas, scaling.max_replicas
            ),
        );
        problems.check(
            (1..=100).contains(&scaling.target_cpu_utilization_percentage),
            &format!("{field}.targetCPUUtilizationPercentage"),
            "must be between 1 and 100",
        );
    }
}

const DNS_NAME_MESSAGE: &str = "must be lowercase letters, digits, '-' and '.' (a DNS-1123 name)";

fn check_image(problems: &mut Problems, field: &str, image: &str) {
    problems.check(!image.is_empty(), field, "must not be empty");
    problems.check(
        image.trim() == image,
        field,
        "must not start or end with whitespace",
    );
}

fn requirements(resources: &Resources) -> ResourceRequirements {
    ResourceRequirements {
        requests: resources.requests.clone(),
        limits: resources.limits.clone(),
        ..ResourceRequirements::default()
    }
}

/// Requests and limits are quantities, and no request is above its limit.
fn check_resources(problems: &mut Problems, field: &str, resources: Option<&ResourceRequirements>) {
    let Some(resources) = resources else {
        return;
    };
    let requests = resources.requests.clone().unwrap_or_default();
    let limits = resources.limits.clone().unwrap_or_default();
    let valid = |map: &BTreeMap<String, Quantity>| {
        map.values().all(|q| quantity::parse_nanos(&q.0).is_some())
    };
    problems.check(
        valid(&requests) && valid(&limits),
        field,
        "requests and limits must be quantities such as 250m or 512Mi",
    );
    // cpu, memory and ephemeral storage, as the CRD's rule (a rule over every key would exceed
    // its cost budget).
    let above = limits
        .iter()
        .filter(|(key, _)| matches!(key.as_str(), "cpu" | "memory" | "ephemeral-storage"))
        .any(|(key, limit)| {
            let request = requests.get(key).and_then(|r| quantity::parse_nanos(&r.0));
            request
                .zip(quantity::parse_nanos(&limit.0))
                .is_some_and(|(request, limit)| request > limit)
        });
    problems.check(!above, field, "a request must not be above its limit");
}

/// An environment variable name every supported Kubernetes release accepts.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '.' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// A Postgres role or database name that needs no quoting in a URL.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    text.len() <= 63
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// RFC 1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, ≤ 63.
fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, ≤ 253.
fn is_dns_subdomain(text: &str) -> bool {
    text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// The name part of a label key, or a non-empty label value: at most 63 letters, digits, '-',
/// '_' or '.', starting and ending with a letter or digit.
fn is_label_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A label key: an optional DNS subdomain prefix and '/', then a label name.
fn is_label_key(text: &str) -> bool {
    match text.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_name(name),
        None => is_label_name(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::stack_from_yaml;

    fn errors(yaml: &str) -> Vec<FieldError> {
        validate(&stack_from_yaml(yaml))
            .expect_err("spec should be invalid")
            .0
    }

    #[test]
    fn resolves_defaults() {
        let stack = validate(&stack_from_yaml("")).unwrap();
        assert_eq!(stack.database.name, "books");
        assert_eq!(stack.database.user, "books");
        assert_eq!(stack.database.image, "postgres:17");
        assert_eq!(stack.database.storage_size, "1Gi");
        assert!(stack.database.retain_on_delete);
        assert_eq!(stack.api.port, 5000);
        assert_eq!(stack.frontend.port, 8080);
        assert_eq!(stack.api.health_path, "/health");
        assert_eq!(stack.url(), "http://books-frontend.shop.svc:8080");
        assert_eq!(stack.credentials_secret_name(), "books-db-credentials");
    }

    #[test]
    fn names_every_bad_field() {
        let found = errors(
            r#"
api: {image: "", replicas: -1, port: 70000, autoscaling: {minReplicas: 5, maxReplicas: 2}}
frontend: {image: web, healthPath: "health"}
database: {storage: {size: lots}}
ingress: {host: "Bad_Host", apiPath: "api"}
"#,
        );
        let fields: Vec<&str> = found.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.api.image",
                "spec.api.replicas",
                "spec.api.port",
                "spec.api.autoscaling.minReplicas",
                "spec.frontend.healthPath",
                "spec.database.storage.size",
                "spec.ingress.host",
                "spec.ingress.apiPath",
            ]
        );
        let min_max = &found[3];
        assert!(
            min_max.message.contains("minReplicas 5") && min_max.message.contains("maxReplicas 2")
        );
    }

    #[test]
    fn rejects_names_too_long_for_child_services() {
        let mut stack = stack_from_yaml("");
        stack.metadata.name = Some("a".repeat(MAX_NAME_LENGTH + 1));
        let problems = validate(&stack).unwrap_err();
        assert_eq!(problems.0[0].field, "metadata.name");
        stack.metadata.name = Some("1books".into());
        assert!(
            validate(&stack).is_err(),
            "Service names must start with a letter"
        );
    }

    #[test]
    fn refuses_wildcard_and_overlong_hosts_and_serves_https() {
        let stack = validate(&stack_from_yaml(
            "ingress: {host: books.example.com, tls: {secretName: books-tls}}",
        ))
        .unwrap();
        assert_eq!(stack.url(), "https://books.example.com");
        let long_label = format!("ingress: {{host: {}.example.com}}", "a".repeat(64));
        for spec in ["ingress: {host: '*.example.com'}", long_label.as_str()] {
            assert_eq!(errors(spec)[0].field, "spec.ingress.host", "{spec}");
        }
    }

    #[test]
    fn refuses_what_would_break_the_database_or_its_url() {
        let cases = [
            (
                "database: {storage: {size: '0'}}",
                "spec.database.storage.size",
            ),
            (
                "database: {storage: {size: '-1Gi'}}",
                "spec.database.storage.size",
            ),
            ("database: {user: 'a b'}", "spec.database.user"),
            ("database: {name: 'x@y'}", "spec.database.name"),
            ("database: {name: '1db'}", "spec.database.name"),
            (
                "database: {existingSecret: Vault_DB}",
                "spec.database.existingSecret",
            ),
            (
                "api: {image: a, env: [{name: DATABASE_URL, value: x}]}",
                "spec.api.env[0].name",
            ),
            (
                "api: {image: a, env: [{name: DB_PASSWORD, value: x}]}",
                "spec.api.env[0].name",
            ),
            (
                "api: {image: a, env: [{name: A, value: 'x'}, {name: A, value: 'z'}]}",
                "spec.api.env[1].name",
            ),
            (
                "frontend: {image: f, env: [{name: B}, {name: B}]}",
                "spec.frontend.env[1].name",
            ),
            (
                "ingress: {host: h.example.com, tls: {secretName: 'Bad'}}",
                "spec.ingress.tls.secretName",
            ),
            (
                "ingress: {host: h.example.com, className: Bad_Class}",
                "spec.ingress.className",
            ),
            (
                "database: {storage: {size: 1Gi, storageClassName: Fast_SSD}}",
                "spec.database.storage.storageClassName",
            ),
            ("api: {image: ' a'}", "spec.api.image"),
            ("database: {image: 'postgres:17 '}", "spec.database.image"),
            (
                "api: {image: a, env: [{name: 'A=B'}]}",
                "spec.api.env[0].name",
            ),
            (
                "frontend: {image: f, env: [{name: '1A'}]}",
                "spec.frontend.env[0].name",
            ),
            (
                "api: {image: a, resources: {requests: {memory: 2Gi}, limits: {memory: 1Gi}}}",
                "spec.api.resources",
            ),
            (
                "database: {resources: {requests: {cpu: lots}}}",
                "spec.database.resources",
            ),
            (
                "frontend: {image: f, resources: {requests: {ephemeral-storage: 2Gi}, limits: {ephemeral-storage: 1Gi}}}",
                "spec.frontend.resources",
            ),
        ];
        for (spec, field) in cases {
            let found = errors(spec);
            assert_eq!(found.len(), 1, "{spec}: {found:?}");
            assert_eq!(found[0].field, field, "{spec}");
            assert!(
                !found[0].message.contains(field),
                "the field is said once: {spec}"
            );
        }
        assert!(
            validate(&stack_from_yaml(
                "frontend: {image: f, env: [{name: DATABASE_URL}]}"
            ))
            .is_ok(),
            "only the API gets the generated variables"
        );
        assert!(validate(&stack_from_yaml("database: {name: my-books_2, user: _app}")).is_ok());
    }

    #[test]
    fn checks_the_ingress_controller_selector() {
        let stack = validate(&stack_from_yaml(
            "ingress: {host: h.example.com, controllerPodLabels: {app.kubernetes.io/name: ingress-nginx, tier: ''}}",
        ))
        .unwrap();
        assert_eq!(stack.ingress.unwrap().controller_namespace, "ingress-nginx");
        assert!(stack.network_policy, "on by default");
        for (spec, field) in [
            (
                "ingress: {host: h.example.com, controllerNamespace: Ingress_NGINX}",
                "spec.ingress.controllerNamespace",
            ),
            (
                "ingress: {host: h.example.com, controllerPodLabels: {'a b': x}}",
                "spec.ingress.controllerPodLabels",
            ),
            (
                "ingress: {host: h.example.com, controllerPodLabels: {Bad.Prefix/name: x}}",
                "spec.ingress.controllerPodLabels",
            ),
            (
                "ingress: {host: h.example.com, controllerPodLabels: {app: -x}}",
                "spec.ingress.controllerPodLabels",
            ),
        ] {
            assert_eq!(errors(spec)[0].field, field, "{spec}");
        }
    }

    #[test]
    fn error_message_lists_field_and_reason() {
        let text = validate(&stack_from_yaml("api: {image: api, port: 0}"))
            .unwrap_err()
            .to_string();
        assert_eq!(text, "spec.api.port: must be between 1 and 65535 (got 0)");
    }
}
