//! The controller's caches of children: the reflector stores of the very watches that trigger
//! reconciles, so that a reconcile reads its children without an API request. A cache may lag
//! behind the API server by a watch event; see `dereference` for where that matters.
//!
//! A child is kept as the compact JSON it arrived as ([`Cached`]), not typed: a typed Kubernetes
//! object takes several times the memory of its JSON (profiled with heaptrack at 300 stacks: the
//! typed children were three quarters of the operator's heap), and a reconcile parses only the
//! dozen it reads.

use std::borrow::Cow;
use std::fmt::Debug;
use std::marker::PhantomData;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

use super::{Scope, stack_of};
use crate::crd::AppStack;
use crate::plan::child::{Kind, Object, Slot};
use crate::resources::LABEL_INSTANCE;

/// One store per child kind.
#[derive(Clone)]
pub struct Caches {
    secrets: Store<Cached<Secret>>,
    claims: Store<Cached<PersistentVolumeClaim>>,
    statefulsets: Store<Cached<StatefulSet>>,
    deployments: Store<Cached<Deployment>>,
    services: Store<Cached<Service>>,
    autoscalers: Store<Cached<HorizontalPodAutoscaler>>,
    budgets: Store<Cached<PodDisruptionBudget>>,
    ingresses: Store<Cached<Ingress>>,
    jobs: Store<Cached<Job>>,
    network_policies: Store<Cached<NetworkPolicy>>,
}

/// A watch of one child kind, as the controller's trigger.
type Trigger<K> = BoxStream<'static, Result<Cached<K>, watcher::Error>>;

/// The watches that fill [`Caches`], to trigger the controller with.
pub struct Watches {
    secrets: Trigger<Secret>,
    claims: Trigger<PersistentVolumeClaim>,
    statefulsets: Trigger<StatefulSet>,
    deployments: Trigger<Deployment>,
    services: Trigger<Service>,
    autoscalers: Trigger<HorizontalPodAutoscaler>,
    budgets: Trigger<PodDisruptionBudget>,
    ingresses: Trigger<Ingress>,
    jobs: Trigger<Job>,
    network_policies: Trigger<NetworkPolicy>,
}

impl Watches {
    /// Trigger `controller` as `Controller::owns`/`watches` would: owned children map to their
    /// owner, Secrets and claims (which may have no owner) through their instance label.
    pub fn trigger(self, controller: Controller<AppStack>) -> Controller<AppStack> {
        controller
            .watches_stream(self.secrets, stack_of)
            .watches_stream(self.claims, stack_of)
            .owns_stream(self.statefulsets)
            .owns_stream(self.deployments)
            .owns_stream(self.services)
            .owns_stream(self.autoscalers)
            .owns_stream(self.budgets)
            .owns_stream(self.ingresses)
            .owns_stream(self.jobs)
            .owns_stream(self.network_policies)
    }
}

impl Caches {
    /// A store per child kind, and the watches that fill them once polled.
    pub fn new(scope: &Scope, client: &Client, config: &watcher::Config) -> (Self, Watches) {
        let (secrets, w_secrets) = cached(scope.api(client), config);
        let (claims, w_claims) = cached(scope.api(client), config);
        let (statefulsets, w_statefulsets) = cached(scope.api(client), config);
        let (deployments, w_deployments) = cached(scope.api(client), config);
        let (services, w_services) = cached(scope.api(client), config);
        let (autoscalers, w_autoscalers) = cached(scope.api(client), config);
        let (budgets, w_budgets) = cached(scope.api(client), config);
        let (ingresses, w_ingresses) = cached(scope.api(client), config);
        let (jobs, w_jobs) = cached(scope.api(client), config);
        let (network_policies, w_network_policies) = cached(scope.api(client), config);
        let caches = Self {
            secrets,
            claims,
            statefulsets,
            deployments,
            services,
            autoscalers,
            budgets,
            ingresses,
            jobs,
            network_policies,
        };
        let watches = Watches {
            secrets: w_secrets,
            claims: w_claims,
            statefulsets: w_statefulsets,
            deployments: w_deployments,
            services: w_services,
            autoscalers: w_autoscalers,
            budgets: w_budgets,
            ingresses: w_ingresses,
            jobs: w_jobs,
            network_policies: w_network_policies,
        };
        (caches, watches)
    }

    /// Resolves once every store has been filled by its first list.
    pub async fn synced(&self) -> bool {
        let waits = futures::join!(
            self.secrets.wait_until_ready(),
            self.claims.wait_until_ready(),
            self.statefulsets.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.services.wait_until_ready(),
            self.autoscalers.wait_until_ready(),
            self.budgets.wait_until_ready(),
            self.ingresses.wait_until_ready(),
            self.jobs.wait_until_ready(),
            self.network_policies.wait_until_ready(),
        );
        waits.0.is_ok()
            && waits.1.is_ok()
            && waits.2.is_ok()
            && waits.3.is_ok()
            && waits.4.is_ok()
            && waits.5.is_ok()
            && waits.6.is_ok()
            && waits.7.is_ok()
            && waits.8.is_ok()
            && waits.9.is_ok()
    }

    /// The cached child in `slot` of a stack in `namespace`.
    pub fn get(&self, namespace: &str, slot: &Slot) -> Option<Object> {
        fn find<K>(store: &Store<Cached<K>>, namespace: &str, name: &str) -> Option<K>
        where
            K: Resource<DynamicType = ()> + DeserializeOwned + 'static,
        {
            store.get(&ObjectRef::new(name).within(namespace))?.object()
        }
        let (ns, name) = (namespace, slot.name.as_str());
        Some(match slot.kind {
            Kind::Secret => Object::Secret(find(&self.secrets, ns, name)?),
            Kind::Claim => Object::Claim(find(&self.claims, ns, name)?),
            Kind::StatefulSet => Object::StatefulSet(find(&self.statefulsets, ns, name)?),
            Kind::Deployment => Object::Deployment(find(&self.deployments, ns, name)?),
            Kind::Service => Object::Service(find(&self.services, ns, name)?),
            Kind::Autoscaler => Object::Autoscaler(find(&self.autoscalers, ns, name)?),
            Kind::DisruptionBudget => Object::DisruptionBudget(find(&self.budgets, ns, name)?),
            Kind::Ingress => Object::Ingress(find(&self.ingresses, ns, name)?),
            Kind::Job => Object::Job(find(&self.jobs, ns, name)?),
            Kind::NetworkPolicy => Object::NetworkPolicy(find(&self.network_policies, ns, name)?),
        })
    }
}

fn cached<K>(api: Api<K>, config: &watcher::Config) -> (Store<Cached<K>>, Trigger<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync,
    K: 'static,
{
    let (store, writer) = reflector::store::<Cached<K>>();
    let stream = watcher(api, config.clone())
        .map_ok(compact)
        .reflect(writer)
        .touched_objects()
        .boxed();
    (store, stream)
}

fn compact<K: Resource + Serialize>(event: watcher::Event<K>) -> watcher::Event<Cached<K>> {
    use watcher::Event;
    match event {
        Event::Apply(object) => Event::Apply(Cached::new(object)),
        Event::Delete(object) => Event::Delete(Cached::new(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(Cached::new(object)),
        Event::InitDone => Event::InitDone,
    }
}

/// A child as the caches keep it: the object as compact JSON (slimmed, see [`slim`]), and beside
/// it typed only the metadata that the stores and the controller's triggers look up (name,
/// namespace, uid, resourceVersion, the instance label, owner references).
pub struct Cached<K> {
    meta: ObjectMeta,
    json: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Resource + Serialize> Cached<K> {
    pub fn new(mut object: K) -> Self {
        slim(&mut object);
        // Serializing a Kubernetes type cannot fail (no map has non-string keys); were it to,
        // the empty text parses as nothing and the reconcile reads the child from the API.
        let json = serde_json::to_string(&object).unwrap_or_default().into();
        let full = object.meta();
        let instance = full.labels.as_ref().and_then(|l| l.get(LABEL_INSTANCE));
        let meta = ObjectMeta {
            name: full.name.clone(),
            namespace: full.namespace.clone(),
            uid: full.uid.clone(),
            resource_version: full.resource_version.clone(),
            labels: instance.map(|i| [(LABEL_INSTANCE.to_owned(), i.clone())].into()),
            owner_references: full.owner_references.clone(),
            ..ObjectMeta::default()
        };
        Self {
            meta,
            json,
            kind: PhantomData,
        }
    }
}

impl<K: DeserializeOwned> Cached<K> {
    /// The object, typed again.
    pub fn object(&self) -> Option<K> {
        serde_json::from_str(&self.json).ok()
    }
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Debug for Cached<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("meta", &self.meta)
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// Only for `Controller::watches_stream`'s bounds: the caches build theirs from watch events.
impl<'de, K: Resource + Serialize + DeserializeOwned> Deserialize<'de> for Cached<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(Self::new)
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Cached<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        K::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Drop what no reconcile reads before an object is kept: managedFields, which are often larger
/// than the object, except whether a field manager owns `spec.replicas` (the autoscaler
/// hand-over asks; see `plan::handover`).
pub fn slim<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    let kept: Vec<ManagedFieldsEntry> = meta
        .managed_fields
        .take()
        .into_iter()
        .flatten()
        .filter(|entry| {
            entry
                .fields_v1
                .as_ref()
                .and_then(|fields| fields.0.get("f:spec"))
                .and_then(|spec| spec.get("f:replicas"))
                .is_some()
        })
        .map(|entry| ManagedFieldsEntry {
            manager: entry.manager,
            operation: entry.operation,
            fields_type: entry.fields_type,
            fields_v1: Some(FieldsV1(json!({"f:spec": {"f:replicas": {}}}))),
            ..ManagedFieldsEntry::default()
        })
        .collect();
    meta.managed_fields = (!kept.is_empty()).then_some(kept);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FIELD_MANAGER;
    use crate::plan::handover::{HANDOVER_MANAGER, replicas_to_hand_over};

    #[test]
    fn slimming_keeps_only_who_owns_replicas() {
        let entry = |manager: &str, fields: serde_json::Value| {
            json!({"manager": manager, "operation": "Apply", "fieldsType": "FieldsV1",
                   "fieldsV1": fields, "time": "2026-01-01T00:00:00Z"})
        };
        let mut deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "books-api", "managedFields": [
                entry(FIELD_MANAGER, json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {}}}})),
                entry("kube-controller-manager", json!({"f:status": {"f:replicas": {}}})),
            ]},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
        }))
        .unwrap();
        let before = replicas_to_hand_over(&deployment);
        slim(&mut deployment);
        assert_eq!(replicas_to_hand_over(&deployment), before);
        assert_eq!(before, Some(3));
        let kept = deployment.metadata.managed_fields.as_ref().unwrap();
        assert_eq!(kept.len(), 1, "status owners are dropped");
        assert_eq!(
            kept[0].fields_v1.as_ref().unwrap().0,
            json!({"f:spec": {"f:replicas": {}}})
        );

        let mut handed: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "books-api", "managedFields": [
                entry(FIELD_MANAGER, json!({"f:spec": {"f:replicas": {}}})),
                entry(HANDOVER_MANAGER, json!({"f:spec": {"f:replicas": {}}})),
            ]},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
        }))
        .unwrap();
        slim(&mut handed);
        assert_eq!(replicas_to_hand_over(&handed), None);

        let mut service: Service = serde_json::from_value(json!({
            "metadata": {"name": "books-api", "managedFields": [
                entry(FIELD_MANAGER, json!({"f:spec": {"f:ports": {}}})),
            ]},
        }))
        .unwrap();
        slim(&mut service);
        assert_eq!(service.metadata.managed_fields, None);
    }

    #[test]
    fn a_cached_child_reads_back_as_the_slimmed_object() {
        let mut deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "books-api", "namespace": "shop", "uid": "u1",
                "resourceVersion": "42",
                "labels": {LABEL_INSTANCE: "books", "app.kubernetes.io/component": "api"},
                "annotations": {"appstack.dev/applied-hash": "abc"},
                "ownerReferences": [{"apiVersion": "appstack.dev/v1alpha1", "kind": "AppStack",
                    "name": "books", "uid": "u0", "controller": true}],
                "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
                "template": {"spec": {"containers": [{"name": "api", "image": "books:1"}]}}},
            "status": {"readyReplicas": 2},
        }))
        .unwrap();
        let cached = Cached::new(deployment.clone());
        slim(&mut deployment);
        assert_eq!(cached.object(), Some(deployment.clone()));
        // What the stores and the controller's triggers look up, and nothing else.
        assert_eq!(cached.meta().name.as_deref(), Some("books-api"));
        assert_eq!(cached.meta().namespace.as_deref(), Some("shop"));
        assert_eq!(cached.meta().uid.as_deref(), Some("u1"));
        assert_eq!(cached.meta().resource_version.as_deref(), Some("42"));
        assert_eq!(
            cached.meta().labels,
            Some([(LABEL_INSTANCE.to_owned(), "books".to_owned())].into())
        );
        assert_eq!(
            cached.meta().owner_references,
            deployment.metadata.owner_references
        );
        assert_eq!(cached.meta().annotations, None);
        assert_eq!(Cached::<Deployment>::kind(&()), "Deployment");
        assert_eq!(Cached::<Deployment>::api_version(&()), "apps/v1");
    }
}
