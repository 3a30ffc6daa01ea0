//! The controller's caches of children: the reflector stores of the very watches that trigger
//! reconciles, so that a reconcile reads its children without an API request. A cache may lag
//! behind the API server by a watch event; see `dereference` for where that matters.

use std::fmt::Debug;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Scope, stack_of};
use crate::crd::AppStack;
use crate::plan::child::{Kind, Object, Slot};

/// One store per child kind.
#[derive(Clone)]
pub struct Caches {
    secrets: Store<Secret>,
    claims: Store<PersistentVolumeClaim>,
    statefulsets: Store<StatefulSet>,
    deployments: Store<Deployment>,
    services: Store<Service>,
    autoscalers: Store<HorizontalPodAutoscaler>,
    budgets: Store<PodDisruptionBudget>,
    ingresses: Store<Ingress>,
    jobs: Store<Job>,
    network_policies: Store<NetworkPolicy>,
}

/// The watches that fill [`Caches`], to trigger the controller with.
pub struct Watches {
    secrets: BoxStream<'static, Result<Secret, watcher::Error>>,
    claims: BoxStream<'static, Result<PersistentVolumeClaim, watcher::Error>>,
    statefulsets: BoxStream<'static, Result<StatefulSet, watcher::Error>>,
    deployments: BoxStream<'static, Result<Deployment, watcher::Error>>,
    services: BoxStream<'static, Result<Service, watcher::Error>>,
    autoscalers: BoxStream<'static, Result<HorizontalPodAutoscaler, watcher::Error>>,
    budgets: BoxStream<'static, Result<PodDisruptionBudget, watcher::Error>>,
    ingresses: BoxStream<'static, Result<Ingress, watcher::Error>>,
    jobs: BoxStream<'static, Result<Job, watcher::Error>>,
    network_policies: BoxStream<'static, Result<NetworkPolicy, watcher::Error>>,
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
        fn find<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<K>
        where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            store
                .get(&ObjectRef::new(name).within(namespace))
                .map(|found| K::clone(&found))
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

fn cached<K>(
    api: Api<K>,
    config: &watcher::Config,
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let stream = watcher(api, config.clone())
        .modify(slim)
        .reflect(writer)
        .touched_objects()
        .boxed();
    (store, stream)
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
}
