//! The `AppStack` custom resource (`appstack.dev/v1alpha1`): types only, no logic, so that the
//! CRD generator and the builders can share them without pulling in the controller.
//!
//! What one object can tell about itself is validated by the API server through the schema and
//! the CEL rules below; `crate::validate` repeats the same checks for offline `render`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "appstack.dev";
pub const VERSION: &str = "v1alpha1";

/// `kubectl scale` (and any edit of `replicas`) is refused while an autoscaler owns the count,
/// instead of being silently ignored.
const SCALE_RULE: &str =
    "!has(self.autoscaling) || !has(oldSelf.autoscaling) || self.replicas == oldSelf.replicas";
const SCALE_MESSAGE: &str = "cannot change while autoscaling is set: the HorizontalPodAutoscaler owns the number of pods (change autoscaling.minReplicas and maxReplicas instead)";

// Formats as CEL rules with a message rather than schema patterns: the API server words a
// pattern failure as "spec.x in body should match '<regex>'", naming the field twice.

/// A Postgres role or database name that needs no quoting in `DATABASE_URL`.
const IDENTIFIER_RULE: &str = "self.matches('^[A-Za-z_][A-Za-z0-9_-]*$')";
const IDENTIFIER_MESSAGE: &str =
    "must be letters, digits, '_' or '-', starting with a letter or '_'";
/// A DNS-1123 subdomain: the name of a Secret, an IngressClass, a StorageClass.
const DNS_NAME_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')";
const DNS_NAME_MESSAGE: &str = "must be lowercase letters, digits, '-' and '.' (a DNS-1123 name)";
/// A DNS-1123 label: the name of a namespace.
const DNS_LABEL_RULE: &str = "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')";
const DNS_LABEL_MESSAGE: &str = "must be lowercase letters, digits and '-', starting and ending with a letter or digit (a namespace name)";
/// Label keys and values as the API server accepts them in a label selector.
const LABEL_KEYS_RULE: &str = r"self.all(k, k.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && (!k.contains('/') || k.indexOf('/') <= 253))";
const LABEL_KEYS_MESSAGE: &str = "keys must be label keys: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
const LABEL_VALUES_RULE: &str =
    r"self.all(k, self[k].matches('^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$'))";
const LABEL_VALUES_MESSAGE: &str = "values must be label values: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
/// A host name: DNS labels of at most 63 characters, no wildcard.
const HOST_RULE: &str =
    r"self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')";
const HOST_MESSAGE: &str =
    "must be a host name: lowercase DNS labels of at most 63 characters, no wildcard";
/// A container image reference as Kubernetes accepts it.
const IMAGE_RULE: &str = r"!self.matches('^\\s|\\s$')";
const IMAGE_MESSAGE: &str = "must not start or end with whitespace";
/// Environment variable names every supported Kubernetes release accepts.
const ENV_NAMES_RULE: &str = "self.all(e, e.name.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$'))";
const ENV_NAMES_MESSAGE: &str =
    "names must be letters, digits, '-', '_' or '.', not starting with a digit";

/// No cpu, memory or ephemeral-storage request above its limit (what the Pod API refuses).
const REQUESTS_RULE: &str = "!has(self.requests) || !has(self.limits) || ['cpu', 'memory', 'ephemeral-storage'].all(k, !(k in self.requests) || !(k in self.limits) || !isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)";
const REQUESTS_MESSAGE: &str = "a request must not be above its limit";

/// Desired state of a three-tier web application: a Flask/Gunicorn API, a Postgres database on a
/// persistent volume, and a React frontend.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "appstack.dev",
    version = "v1alpha1",
    kind = "AppStack",
    plural = "appstacks",
    shortname = "stack",
    category = "all",
    namespaced,
    status = "AppStackStatus",
    derive = "PartialEq",
    doc = "AppStack describes a web application (Flask API, Postgres, React frontend) that the appstack-operator runs.",
    scale(
        spec_replicas_path = ".spec.api.replicas",
        status_replicas_path = ".status.components.api.replicas"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "API", type_ = "string", description = "API pods ready/desired", json_path = ".status.components.api.ready"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 54 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')")
        .message("metadata.name must start with a letter, contain only lowercase letters, digits and '-', and be at most 54 characters (child names such as <name>-frontend must be valid Service names)"),
    // The effective names (explicit, or the stack's name) are fixed: Postgres created them when it
    // initialised the volume, so adding, changing or removing them would lock the API out.
    validation = Rule::new("(has(self.spec.database.name) ? self.spec.database.name : self.metadata.name) == (has(oldSelf.spec.database.name) ? oldSelf.spec.database.name : oldSelf.metadata.name)")
        .message("cannot be added, changed or removed once the stack exists: Postgres created the database when it initialised the volume")
        .field_path(".spec.database.name"),
    validation = Rule::new("(has(self.spec.database.user) ? self.spec.database.user : self.metadata.name) == (has(oldSelf.spec.database.user) ? oldSelf.spec.database.user : oldSelf.metadata.name)")
        .message("cannot be added, changed or removed once the stack exists: Postgres created the role when it initialised the volume")
        .field_path(".spec.database.user")
)]
#[serde(rename_all = "camelCase")]
pub struct AppStackSpec {
    /// The Flask/Gunicorn API tier.
    pub api: ApiSpec,
    /// The React frontend tier, served by a web server.
    pub frontend: FrontendSpec,
    /// The Postgres database. Every field has a default, so it may be omitted.
    #[serde(default)]
    pub database: DatabaseSpec,
    /// Expose the stack through an Ingress: `apiPath` goes to the API, `/` to the frontend. No
    /// Ingress is created when this is absent, and it is deleted when this is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// How a failed rollout of the API or frontend is detected and undone.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// Restrict who may connect, with NetworkPolicies `<stack>-db` and `<stack>-api`: the
    /// database admits only the stack's API pods and migration Jobs, on 5432; the API only the
    /// frontend pods and the Ingress controller (see `ingress.controllerNamespace`), on its port.
    /// Egress is left open. `false` removes both policies.
    #[serde(default = "default_true")]
    pub network_policy: bool,
}

/// How a failed rollout of the API or frontend is detected and undone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Put a tier whose new pods fail (image pull errors, crash loops, not ready within
    /// `readinessTimeoutSeconds`) back on its last good template. The spec keeps what was
    /// written; the next change of the spec tries again. When false, the failing rollout stays
    /// and the stack reports Degraded.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
    /// How long a new pod may run without becoming ready before its rollout counts as failed.
    /// Pull errors and crash loops count at once.
    #[serde(default = "default_readiness_timeout")]
    #[schemars(range(min = 10, max = 3600))]
    pub readiness_timeout_seconds: i32,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            auto_rollback: true,
            readiness_timeout_seconds: default_readiness_timeout(),
        }
    }
}

/// Database migrations run before the API moves to a new image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsSpec {
    /// Command that migrates the database, run with the new API image and the API's environment
    /// (including `DATABASE_URL`), e.g. `[flask, db, upgrade]`.
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Extra environment variables for the migration only, added after the API's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "env_vars")]
    #[x_kube(validation = Rule::new(ENV_NAMES_RULE).message(ENV_NAMES_MESSAGE))]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['DATABASE_URL', 'DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER', 'DB_PASSWORD']))").message("must not set DATABASE_URL or DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD: the operator sets them from the credentials"))]
    pub env: Vec<EnvVar>,
    /// How long the migration may run, all attempts included, before it counts as failed.
    #[serde(default = "default_migration_timeout")]
    #[schemars(range(min = 10, max = 86400))]
    pub timeout_seconds: i64,
    /// Retries after a failed attempt.
    #[serde(default = "default_migration_backoff_limit")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
}

/// The API tier: a container that serves HTTP (Flask on Gunicorn) and reads `DATABASE_URL`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SCALE_RULE).message(SCALE_MESSAGE).field_path(".replicas"))]
pub struct ApiSpec {
    /// Container image of the API, e.g. `registry.example.com/books-api:1.4.2`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(IMAGE_MESSAGE))]
    pub image: String,
    /// Number of API pods. Ignored while `autoscaling` is set (the HorizontalPodAutoscaler owns
    /// the count then). Also set by `kubectl scale appstack/<name> --replicas=N`.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Port the API listens on.
    #[serde(default = "default_api_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Command that starts the API, e.g. `[gunicorn, -b, 0.0.0.0:5000, manage:app]`. The image's
    /// entrypoint is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Extra environment variables, added after the generated ones. Names are unique and must not
    /// be one of the generated `DATABASE_URL`, `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`,
    /// `DB_PASSWORD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "env_vars")]
    #[x_kube(validation = Rule::new(ENV_NAMES_RULE).message(ENV_NAMES_MESSAGE))]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['DATABASE_URL', 'DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER', 'DB_PASSWORD']))").message("must not set DATABASE_URL or DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD: the operator sets them from the credentials"))]
    pub env: Vec<EnvVar>,
    /// HTTP path for the liveness and readiness probes.
    #[serde(default = "default_api_health_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("must start with '/'"))]
    pub health_path: String,
    /// CPU, memory and ephemeral-storage requests and limits. When absent: requests 100m CPU,
    /// 128Mi memory and 64Mi ephemeral storage, limits 512Mi memory and 1Gi ephemeral storage.
    /// The ephemeral-storage defaults apply unless `ephemeral-storage` is named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Scale the API with a HorizontalPodAutoscaler on CPU utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Type of the API Service.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Run this migration as a Job with the new image before the API Deployment moves to it
    /// (and before a new stack's first API pods start). The Deployment changes only after the
    /// Job succeeds; a failed Job leaves the running version serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsSpec>,
    /// Run the container with a read-only root filesystem; only `/tmp` (an emptyDir) is
    /// writable. Set to false for an image that must write elsewhere.
    #[serde(default = "default_true")]
    pub read_only_root_filesystem: bool,
}

/// The frontend tier: a web server that serves the built React app.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(SCALE_RULE).message(SCALE_MESSAGE).field_path(".replicas"))]
pub struct FrontendSpec {
    /// Container image of the frontend, e.g. `registry.example.com/books-web:1.4.2`.
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(IMAGE_MESSAGE))]
    pub image: String,
    /// Number of frontend pods. Ignored while `autoscaling` is set.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Port the web server listens on.
    #[serde(default = "default_frontend_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Extra environment variables, with unique names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "env_vars")]
    #[x_kube(validation = Rule::new(ENV_NAMES_RULE).message(ENV_NAMES_MESSAGE))]
    pub env: Vec<EnvVar>,
    /// HTTP path for the liveness and readiness probes.
    #[serde(default = "default_frontend_health_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("must start with '/'"))]
    pub health_path: String,
    /// CPU, memory and ephemeral-storage requests and limits. When absent: requests 50m CPU,
    /// 64Mi memory and 32Mi ephemeral storage, limits 256Mi memory and 256Mi ephemeral storage.
    /// The ephemeral-storage defaults apply unless `ephemeral-storage` is named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Scale the frontend with a HorizontalPodAutoscaler on CPU utilisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// Type of the frontend Service.
    #[serde(default)]
    pub service_type: ServiceType,
    /// Run the container with a read-only root filesystem; only `/tmp` (an emptyDir) is
    /// writable, where nginx-unprivileged keeps its pid and temporary files. Set to false for an
    /// image that must write elsewhere.
    #[serde(default = "default_true")]
    pub read_only_root_filesystem: bool,
}

/// Requests and limits of a container, as in a Pod (`cpu`, `memory`, `ephemeral-storage`, …).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new(REQUESTS_RULE).message(REQUESTS_MESSAGE))]
pub struct Resources {
    /// The least the container is given, e.g. `{cpu: 250m, memory: 256Mi}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantities")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    /// The most the container may use, e.g. `{memory: 1Gi}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantities")]
    pub limits: Option<BTreeMap<String, Quantity>>,
}

/// Container environment variables with unique names (a map keyed by name), at most 100, names
/// at most 256 characters: the bounds keep the names rule within the API server's CEL budget.
fn env_vars(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut item = generator.subschema_for::<EnvVar>();
    if let Some(name) = item
        .get_mut("properties")
        .and_then(|p| p.get_mut("name"))
        .and_then(|n| n.as_object_mut())
    {
        name.insert("maxLength".into(), 256.into());
    }
    schemars::json_schema!({
        "type": "array",
        "items": item,
        "maxItems": 100,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
    })
}

/// A small map of resource names to quantities. The bounds keep the CEL rules above within the
/// API server's cost budget.
fn quantities(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 8,
        "propertyNames": {"maxLength": 64},
        "additionalProperties": {
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "maxLength": 64,
        },
    })
}

/// A small map of label keys to values. The bounds keep the CEL rules above within the API
/// server's cost budget.
fn pod_labels(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 8,
        "propertyNames": {"maxLength": 317},
        "additionalProperties": {"type": "string", "maxLength": 63},
    })
}

/// HorizontalPodAutoscaler settings (autoscaling/v2, CPU utilisation).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("must be less than or equal to maxReplicas").field_path(".minReplicas"))]
pub struct AutoscalingSpec {
    /// Lowest number of pods.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Highest number of pods.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of the CPU request) to aim for.
    #[serde(
        default = "default_cpu_target",
        rename = "targetCPUUtilizationPercentage"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

/// How a tier's Service is exposed.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

/// The Postgres database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Postgres image (the official image or one compatible with its environment variables).
    #[serde(default = "default_postgres_image")]
    #[schemars(length(min = 1))]
    #[x_kube(validation = Rule::new(IMAGE_RULE).message(IMAGE_MESSAGE))]
    pub image: String,
    /// Name of the database: letters, digits, `_` and `-`, starting with a letter or `_`.
    /// Defaults to the stack's name. Fixed once the stack exists (it cannot be added, changed or
    /// removed): Postgres creates it only when it initialises the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(IDENTIFIER_RULE).message(IDENTIFIER_MESSAGE))]
    pub name: Option<String>,
    /// Database user, with the same characters as `name`. Defaults to the stack's name. Fixed
    /// once the stack exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(IDENTIFIER_RULE).message(IDENTIFIER_MESSAGE))]
    pub user: Option<String>,
    /// The volume that holds the data.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Name of an existing Secret with keys `username` and `password` (and optionally
    /// `DATABASE_URL`) to use instead of generating credentials. The operator never writes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    pub existing_secret: Option<String>,
    /// Keep the data volume claim and the generated credentials Secret when the stack is
    /// deleted, so that a stack re-created with the same name finds its data and password again.
    /// When false, both are deleted with the stack.
    #[serde(default = "default_true")]
    pub retain_on_delete: bool,
    /// CPU, memory and ephemeral-storage requests and limits. When absent: requests 250m CPU,
    /// 256Mi memory and 64Mi ephemeral storage, limits 1Gi memory and 1Gi ephemeral storage.
    /// The ephemeral-storage defaults apply unless `ephemeral-storage` is named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Run Postgres with a read-only root filesystem; writable are its data volume,
    /// `/var/run/postgresql` (the socket) and `/tmp` (emptyDirs). Set to false for an image that
    /// must write elsewhere.
    #[serde(default = "default_true")]
    pub read_only_root_filesystem: bool,
}

/// The database volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)").message("cannot be changed after the volume claim is created").field_path(".storageClassName"))]
pub struct StorageSpec {
    /// Size of the volume claim, e.g. `1Gi`. May grow (when the StorageClass allows expansion),
    /// never shrink.
    #[serde(default = "default_storage_size")]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))").message("must be a quantity above zero, such as 1Gi or 500Mi"))]
    #[x_kube(validation = Rule::new("!isQuantity(self) || !isQuantity(oldSelf) || !quantity(self).isGreaterThan(quantity('0')) || quantity(self).compareTo(quantity(oldSelf)) >= 0").message("may grow but never shrink"))]
    pub size: String,
    /// StorageClass of the claim; the cluster's default class when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    pub storage_class_name: Option<String>,
}

/// The Ingress in front of the stack.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name, e.g. `books.example.com`: lowercase DNS labels of at most 63 characters. A
    /// wildcard is not accepted, since `status.url` must be a URL one can open.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(HOST_RULE).message(HOST_MESSAGE))]
    pub host: String,
    /// IngressClass to use; the cluster's default class when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    pub class_name: Option<String>,
    /// Path prefix routed to the API; everything else goes to the frontend.
    #[serde(default = "default_api_path")]
    #[x_kube(validation = Rule::new("self.startsWith('/') && self != '/'").message("must start with '/' and must not be '/' (that path serves the frontend)"))]
    pub api_path: String,
    /// Serve HTTPS with the certificate in this Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<IngressTlsSpec>,
    /// Namespace of the Ingress controller, whose pods the API's NetworkPolicy admits (matched
    /// by the `kubernetes.io/metadata.name` label every namespace carries).
    #[serde(default = "default_controller_namespace")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new(DNS_LABEL_RULE).message(DNS_LABEL_MESSAGE))]
    pub controller_namespace: String,
    /// Labels of the Ingress controller's pods in `controllerNamespace`, e.g.
    /// `{app.kubernetes.io/name: ingress-nginx}`; every pod of that namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "pod_labels")]
    #[x_kube(validation = Rule::new(LABEL_KEYS_RULE).message(LABEL_KEYS_MESSAGE))]
    #[x_kube(validation = Rule::new(LABEL_VALUES_RULE).message(LABEL_VALUES_MESSAGE))]
    pub controller_pod_labels: Option<BTreeMap<String, String>>,
}

/// TLS settings of the Ingress.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressTlsSpec {
    /// Name of a `kubernetes.io/tls` Secret in the stack's namespace.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(DNS_NAME_RULE).message(DNS_NAME_MESSAGE))]
    pub secret_name: String,
}

/// Observed state of the stack, written by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppStackStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One-word summary: Pending, Progressing, Ready, Degraded, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Where the application is reachable: the Ingress URL, or the frontend Service's in-cluster
    /// URL when there is no Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Ready, Reconciling and Stalled (kstatus), plus DatabaseReady, ApiReady and FrontendReady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Per-component detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<ComponentsStatus>,
}

/// The summary phase of a stack.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Progressing,
    Ready,
    Degraded,
    Failed,
    Deleting,
}

/// Status of each tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComponentsStatus {
    pub api: WorkloadStatus,
    pub frontend: WorkloadStatus,
    pub database: DatabaseStatus,
}

/// Status of the API or frontend Deployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Pods the Deployment wants.
    pub replicas: i32,
    /// Pods that pass their readiness probe.
    pub ready_replicas: i32,
    /// Pods that run the current template.
    pub updated_replicas: i32,
    /// Ready pods over desired pods, as `kubectl get` shows it (e.g. `2/2`).
    pub ready: String,
    /// The image the Deployment runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image of the last rollout that failed and was rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_image: Option<String>,
    /// The `metadata.generation` whose rollout (or migration) failed: it is not tried again
    /// until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_generation: Option<i64>,
    /// The migration Job of the API's current or next image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
}

/// The migration Job of an API image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// Name of the Job.
    pub job: String,
    /// The API image it migrates to.
    pub image: String,
    /// Running, Succeeded or Failed.
    pub state: String,
    /// Why it failed: the Job's condition and the end of the migration's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Status of the database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// The Postgres pod is ready and its volume claim is bound.
    pub ready: bool,
    /// Secret that holds the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Volume claim that holds the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim: Option<String>,
}

fn default_replicas() -> i32 {
    1
}
fn default_api_port() -> i32 {
    5000
}
fn default_frontend_port() -> i32 {
    8080
}
fn default_api_health_path() -> String {
    "/health".into()
}
fn default_frontend_health_path() -> String {
    "/".into()
}
fn default_cpu_target() -> i32 {
    80
}
fn default_postgres_image() -> String {
    "postgres:17".into()
}
fn default_storage_size() -> String {
    "1Gi".into()
}
fn default_api_path() -> String {
    "/api".into()
}
fn default_true() -> bool {
    true
}
fn default_readiness_timeout() -> i32 {
    120
}
fn default_migration_timeout() -> i64 {
    600
}
fn default_migration_backoff_limit() -> i32 {
    1
}
fn default_controller_namespace() -> String {
    "ingress-nginx".into()
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            image: default_postgres_image(),
            name: None,
            user: None,
            storage: StorageSpec::default(),
            existing_secret: None,
            retain_on_delete: true,
            resources: None,
            read_only_root_filesystem: true,
        }
    }
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
        }
    }
}
