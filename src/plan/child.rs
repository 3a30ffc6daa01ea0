//! The kinds of child a stack has, one enum variant each, so that a new kind cannot be forgotten
//! by the plan, the executor or `render` (every `match` on them is exhaustive).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ApiResource, ObjectMeta};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    Claim,
    StatefulSet,
    Deployment,
    Service,
    Autoscaler,
    DisruptionBudget,
    Ingress,
    /// The migration Job of an API image.
    Job,
    NetworkPolicy,
}

impl Kind {
    /// The Kubernetes kind, for messages, Events and metrics.
    pub fn name(self) -> &'static str {
        use k8s_openapi::Resource as _;
        match self {
            Kind::Secret => Secret::KIND,
            Kind::Claim => PersistentVolumeClaim::KIND,
            Kind::StatefulSet => StatefulSet::KIND,
            Kind::Deployment => Deployment::KIND,
            Kind::Service => Service::KIND,
            Kind::Autoscaler => HorizontalPodAutoscaler::KIND,
            Kind::DisruptionBudget => PodDisruptionBudget::KIND,
            Kind::Ingress => Ingress::KIND,
            Kind::Job => Job::KIND,
            Kind::NetworkPolicy => NetworkPolicy::KIND,
        }
    }

    /// Group, version and plural, for the API calls.
    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Secret => ApiResource::erase::<Secret>(&()),
            Kind::Claim => ApiResource::erase::<PersistentVolumeClaim>(&()),
            Kind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            Kind::Deployment => ApiResource::erase::<Deployment>(&()),
            Kind::Service => ApiResource::erase::<Service>(&()),
            Kind::Autoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            Kind::DisruptionBudget => ApiResource::erase::<PodDisruptionBudget>(&()),
            Kind::Ingress => ApiResource::erase::<Ingress>(&()),
            Kind::Job => ApiResource::erase::<Job>(&()),
            Kind::NetworkPolicy => ApiResource::erase::<NetworkPolicy>(&()),
        }
    }
}

/// Where a child lives: its kind and name (the namespace is the stack's).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub kind: Kind,
    pub name: String,
}

impl Slot {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.name(), self.name)
    }
}

/// One child object, typed.
// A reconcile holds a dozen of these for a moment: boxing the large variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Secret(Secret),
    Claim(PersistentVolumeClaim),
    StatefulSet(StatefulSet),
    Deployment(Deployment),
    Service(Service),
    Autoscaler(HorizontalPodAutoscaler),
    DisruptionBudget(PodDisruptionBudget),
    Ingress(Ingress),
    Job(Job),
    NetworkPolicy(NetworkPolicy),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Secret(_) => Kind::Secret,
            Object::Claim(_) => Kind::Claim,
            Object::StatefulSet(_) => Kind::StatefulSet,
            Object::Deployment(_) => Kind::Deployment,
            Object::Service(_) => Kind::Service,
            Object::Autoscaler(_) => Kind::Autoscaler,
            Object::DisruptionBudget(_) => Kind::DisruptionBudget,
            Object::Ingress(_) => Kind::Ingress,
            Object::Job(_) => Kind::Job,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Secret(o) => &o.metadata,
            Object::Claim(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Autoscaler(o) => &o.metadata,
            Object::DisruptionBudget(o) => &o.metadata,
            Object::Ingress(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
        }
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Secret(o) => &mut o.metadata,
            Object::Claim(o) => &mut o.metadata,
            Object::StatefulSet(o) => &mut o.metadata,
            Object::Deployment(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::Autoscaler(o) => &mut o.metadata,
            Object::DisruptionBudget(o) => &mut o.metadata,
            Object::Ingress(o) => &mut o.metadata,
            Object::Job(o) => &mut o.metadata,
            Object::NetworkPolicy(o) => &mut o.metadata,
        }
    }

    pub fn slot(&self) -> Slot {
        Slot::new(self.kind(), self.meta().name.clone().unwrap_or_default())
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Object::Secret(o) => serde_json::to_value(o),
            Object::Claim(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Autoscaler(o) => serde_json::to_value(o),
            Object::DisruptionBudget(o) => serde_json::to_value(o),
            Object::Ingress(o) => serde_json::to_value(o),
            Object::Job(o) => serde_json::to_value(o),
            Object::NetworkPolicy(o) => serde_json::to_value(o),
        };
        // Serialising a k8s-openapi type into a JSON value cannot fail: every map key is a string.
        value.unwrap_or(Value::Null)
    }

    /// An object of `kind` from the API server's JSON.
    pub fn from_value(kind: Kind, value: Value) -> Result<Self, serde_json::Error> {
        Ok(match kind {
            Kind::Secret => Object::Secret(serde_json::from_value(value)?),
            Kind::Claim => Object::Claim(serde_json::from_value(value)?),
            Kind::StatefulSet => Object::StatefulSet(serde_json::from_value(value)?),
            Kind::Deployment => Object::Deployment(serde_json::from_value(value)?),
            Kind::Service => Object::Service(serde_json::from_value(value)?),
            Kind::Autoscaler => Object::Autoscaler(serde_json::from_value(value)?),
            Kind::DisruptionBudget => Object::DisruptionBudget(serde_json::from_value(value)?),
            Kind::Ingress => Object::Ingress(serde_json::from_value(value)?),
            Kind::Job => Object::Job(serde_json::from_value(value)?),
            Kind::NetworkPolicy => Object::NetworkPolicy(serde_json::from_value(value)?),
        })
    }
}

/// What the cluster holds for one stack, as read by the controller's dereference step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Existing {
    /// Every child found, by slot.
    pub children: BTreeMap<Slot, Object>,
    /// The Secret named by `spec.database.existingSecret`, when set and found.
    pub existing_secret: Option<Secret>,
    /// Database pods that still exist (terminating included). Read only while a database
    /// Deployment of an earlier operator version is being replaced by the StatefulSet.
    pub database_pods: usize,
    /// Pods of the API and frontend, read only while one of them is rolling out, and of a
    /// failed migration Job.
    pub pods: Vec<Pod>,
    /// ReplicaSets of the API and frontend, read only while one of them is rolling out: the
    /// new pods and the last good template are found through them.
    pub replica_sets: Vec<ReplicaSet>,
}

impl Existing {
    pub fn get(&self, slot: &Slot) -> Option<&Object> {
        self.children.get(slot)
    }

    pub fn secret(&self, name: &str) -> Option<&Secret> {
        match self.get(&Slot::new(Kind::Secret, name)) {
            Some(Object::Secret(secret)) => Some(secret),
            _ => None,
        }
    }

    pub fn claim(&self, name: &str) -> Option<&PersistentVolumeClaim> {
        match self.get(&Slot::new(Kind::Claim, name)) {
            Some(Object::Claim(claim)) => Some(claim),
            _ => None,
        }
    }

    pub fn statefulset(&self, name: &str) -> Option<&StatefulSet> {
        match self.get(&Slot::new(Kind::StatefulSet, name)) {
            Some(Object::StatefulSet(set)) => Some(set),
            _ => None,
        }
    }

    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        match self.get(&Slot::new(Kind::Deployment, name)) {
            Some(Object::Deployment(deployment)) => Some(deployment),
            _ => None,
        }
    }

    pub fn job(&self, name: &str) -> Option<&Job> {
        match self.get(&Slot::new(Kind::Job, name)) {
            Some(Object::Job(job)) => Some(job),
            _ => None,
        }
    }
}
