//! The domain model: a stack whose spec passed validation, with every default resolved. This is
//! what every builder and the plan take.

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::crd::{AutoscalingSpec, IngressSpec, MigrationsSpec, RolloutSpec, ServiceType};
use crate::names;

/// Longest stack name whose children (`<name>-frontend`) are still valid Service names.
pub const MAX_NAME_LENGTH: usize = 54;

/// One of the three tiers of a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    Api,
    Frontend,
    Database,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Database, Component::Api, Component::Frontend];

    /// Value of the `app.kubernetes.io/component` label.
    pub fn label(self) -> &'static str {
        match self {
            Component::Api => "api",
            Component::Frontend => "frontend",
            Component::Database => "database",
        }
    }
}

/// An HTTP tier (API or frontend) with every default resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct WebTier {
    pub component: Component,
    pub image: String,
    pub replicas: i32,
    pub port: i32,
    pub command: Option<Vec<String>>,
    pub env: Vec<EnvVar>,
    pub health_path: String,
    pub resources: Option<ResourceRequirements>,
    pub autoscaling: Option<AutoscalingSpec>,
    pub service_type: ServiceType,
    pub read_only_root_filesystem: bool,
}

impl WebTier {
    /// The fewest pods this tier runs: what a PodDisruptionBudget can count on.
    pub fn min_pods(&self) -> i32 {
        self.autoscaling
            .as_ref()
            .map_or(self.replicas, |a| a.min_replicas)
    }
}

/// The database with every default resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    pub image: String,
    pub name: String,
    pub user: String,
    pub storage_size: String,
    pub storage_class_name: Option<String>,
    pub existing_secret: Option<String>,
    pub retain_on_delete: bool,
    pub resources: Option<ResourceRequirements>,
    pub read_only_root_filesystem: bool,
}

/// A stack that passed validation: what every builder takes.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidStack {
    pub name: String,
    pub namespace: String,
    /// Controller reference to the AppStack; `None` offline (no UID before the API server).
    pub owner: Option<OwnerReference>,
    pub api: WebTier,
    pub frontend: WebTier,
    pub database: Database,
    pub ingress: Option<IngressSpec>,
    /// `spec.api.migrations`.
    pub migrations: Option<MigrationsSpec>,
    pub rollout: RolloutSpec,
    /// `metadata.generation` (`None` offline).
    pub generation: Option<i64>,
    /// What the status remembers of failed rollouts, per web tier: not retried until the spec
    /// changes.
    pub failed: FailedRollouts,
    /// NetworkPolicies restrict who may connect to the database and the API.
    pub network_policy: bool,
}

/// A rollout (or migration) that failed for one generation of the spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailedRollout {
    pub generation: i64,
    /// The image whose rollout was rolled back (`None`: the migration failed).
    pub image: Option<String>,
    /// The migration Job that failed.
    pub job: Option<String>,
    /// What the status said when it failed.
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailedRollouts {
    pub api: Option<FailedRollout>,
    pub frontend: Option<FailedRollout>,
}

impl FailedRollouts {
    pub fn of(&self, component: Component) -> Option<&FailedRollout> {
        match component {
            Component::Api => self.api.as_ref(),
            Component::Frontend => self.frontend.as_ref(),
            Component::Database => None,
        }
    }
}

impl ValidStack {
    /// The failed rollout of `component` that this generation of the spec must not retry.
    pub fn failed_now(&self, component: Component) -> Option<&FailedRollout> {
        self.failed
            .of(component)
            .filter(|f| Some(f.generation) == self.generation)
    }

    /// Name of the child object of `component` (`books-api`, `books-db`, …).
    pub fn child_name(&self, component: Component) -> String {
        names::child(&self.name, component)
    }

    /// The Secret the operator generates (whether or not `existingSecret` replaces it).
    pub fn generated_secret_name(&self) -> String {
        names::credentials_secret(&self.name)
    }

    /// The Secret the workloads read their credentials from.
    pub fn credentials_secret_name(&self) -> String {
        self.database
            .existing_secret
            .clone()
            .unwrap_or_else(|| self.generated_secret_name())
    }

    pub fn claim_name(&self) -> String {
        names::data_claim(&self.name)
    }

    pub fn ingress_name(&self) -> String {
        names::ingress(&self.name)
    }

    pub fn tier(&self, component: Component) -> Option<&WebTier> {
        match component {
            Component::Api => Some(&self.api),
            Component::Frontend => Some(&self.frontend),
            Component::Database => None,
        }
    }

    /// In-cluster DNS name of the database Service.
    pub fn database_host(&self) -> String {
        format!(
            "{}.{}.svc",
            self.child_name(Component::Database),
            self.namespace
        )
    }

    /// Where users reach the application.
    pub fn url(&self) -> String {
        match &self.ingress {
            Some(ingress) => {
                let scheme = if ingress.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", ingress.host)
            }
            None => format!(
                "http://{}.{}.svc:{}",
                self.child_name(Component::Frontend),
                self.namespace,
                self.frontend.port
            ),
        }
    }
}
