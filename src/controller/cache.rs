//! The controller's caches of children: the reflector stores of the very watches that trigger
//! reconciles, so that a reconcile reads its children without an API request. A cache may lag
//! behind the API server by a watch event: what the operator created itself is kept aside until
//! its watch brings it back ([`Created`]), and `dereference` says what else that means.
//!
//! A child is kept as the JSON it arrived as, deflated ([`Cached`]), not typed: a typed Kubernetes
//! object takes several times the memory of its JSON (profiled with heaptrack at 300 stacks: the
//! typed children were three quarters of the operator's heap), and a reconcile unpacks and parses
//! only the dozen it reads. The JSON is deflated against a [`Dictionary`] per kind, the first
//! child of that kind the cache saw: one operator's children of one kind share most of their text
//! (keys, defaults, probes, security contexts), so a child packs to about a tenth of its JSON.

use std::borrow::Cow;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

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

use super::created::Created;
use super::{Scope, lock};
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
    /// What this operator created and the stores may not hold yet.
    created: Arc<Created>,
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
    /// Trigger `controller` with each child's stack ([`Cached::stack`]).
    pub fn trigger(self, controller: Controller<AppStack>) -> Controller<AppStack> {
        controller
            .watches_stream(self.secrets, Cached::stack)
            .watches_stream(self.claims, Cached::stack)
            .watches_stream(self.statefulsets, Cached::stack)
            .watches_stream(self.deployments, Cached::stack)
            .watches_stream(self.services, Cached::stack)
            .watches_stream(self.autoscalers, Cached::stack)
            .watches_stream(self.budgets, Cached::stack)
            .watches_stream(self.ingresses, Cached::stack)
            .watches_stream(self.jobs, Cached::stack)
            .watches_stream(self.network_policies, Cached::stack)
    }
}

impl Caches {
    /// A store per child kind, and the watches that fill them once polled.
    pub fn new(scope: &Scope, client: &Client, config: &watcher::Config) -> (Self, Watches) {
        let created = Arc::<Created>::default();
        let watch = |kind| KindWatch {
            config,
            kind,
            created: created.clone(),
        };
        let (secrets, w_secrets) = watch(Kind::Secret).cached(scope.api(client));
        let (claims, w_claims) = watch(Kind::Claim).cached(scope.api(client));
        let (statefulsets, w_statefulsets) = watch(Kind::StatefulSet).cached(scope.api(client));
        let (deployments, w_deployments) = watch(Kind::Deployment).cached(scope.api(client));
        let (services, w_services) = watch(Kind::Service).cached(scope.api(client));
        let (autoscalers, w_autoscalers) = watch(Kind::Autoscaler).cached(scope.api(client));
        let (budgets, w_budgets) = watch(Kind::DisruptionBudget).cached(scope.api(client));
        let (ingresses, w_ingresses) = watch(Kind::Ingress).cached(scope.api(client));
        let (jobs, w_jobs) = watch(Kind::Job).cached(scope.api(client));
        let (network_policies, w_network_policies) =
            watch(Kind::NetworkPolicy).cached(scope.api(client));
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
            created,
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

    /// The child in `slot` of a stack in `namespace`: from its store, else as this operator
    /// created it lately.
    pub fn get(&self, namespace: &str, slot: &Slot) -> Option<Object> {
        self.stored(namespace, slot)
            .or_else(|| self.created.get(namespace, slot))
    }

    /// `object` was just created in `namespace`: read it from here until its watch brings it.
    pub fn created(&self, namespace: &str, object: Object) {
        self.created.record(namespace, object);
    }

    fn stored(&self, namespace: &str, slot: &Slot) -> Option<Object> {
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

/// How one child kind is watched and cached.
struct KindWatch<'a> {
    config: &'a watcher::Config,
    kind: Kind,
    created: Arc<Created>,
}

impl KindWatch<'_> {
    fn cached<K>(self, api: Api<K>) -> (Store<Cached<K>>, Trigger<K>)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync,
        K: 'static,
    {
        let (store, writer) = reflector::store::<Cached<K>>();
        let dictionary = Arc::new(Dictionary::default());
        let KindWatch {
            config,
            kind,
            created,
        } = self;
        let stream = watcher(api, config.clone())
            .map_ok(move |event| pack(event, &dictionary))
            .reflect(writer)
            // Once the watch has brought a child back (or its deletion), the store is the source.
            .inspect_ok(move |event| {
                if let watcher::Event::Apply(child) | watcher::Event::Delete(child) = event
                    && let (Some(namespace), Some(name)) = (&child.meta.namespace, &child.meta.name)
                {
                    created.forget(namespace, &Slot::new(kind, name.as_str()));
                }
            })
            .touched_objects()
            .boxed();
        (store, stream)
    }
}

fn pack<K: Resource + Serialize>(
    event: watcher::Event<K>,
    dictionary: &Arc<Dictionary>,
) -> watcher::Event<Cached<K>> {
    use watcher::Event;
    match event {
        Event::Apply(object) => Event::Apply(Cached::new(object, dictionary)),
        Event::Delete(object) => Event::Delete(Cached::new(object, dictionary)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(Cached::new(object, dictionary)),
        Event::InitDone => Event::InitDone,
    }
}

/// What the children of one kind are deflated against: the JSON of the first one the cache saw,
/// fixed from then on (every cached child of the kind needs it to unpack).
#[derive(Default)]
pub struct Dictionary {
    text: OnceLock<Box<[u8]>>,
    /// Kept between children: a deflater's tables are a quarter of a megabyte.
    deflater: Mutex<Option<Compress>>,
}

impl Dictionary {
    fn deflate(&self, json: Vec<u8>) -> Option<Box<[u8]>> {
        let text = self.text.get_or_init(|| json.clone().into());
        let mut deflater = lock(&self.deflater);
        let deflater = deflater.get_or_insert_with(|| Compress::new(Compression::fast(), false));
        deflater.reset();
        deflater.set_dictionary(text).ok()?;
        let mut packed = Vec::with_capacity(json.len() / 4 + 64);
        loop {
            let read = usize::try_from(deflater.total_in()).ok()?;
            let rest = json.get(read..)?;
            match deflater
                .compress_vec(rest, &mut packed, FlushCompress::Finish)
                .ok()?
            {
                Status::StreamEnd => return Some(packed.into()),
                // Out of room: deflate never needs much more than its input.
                _ if packed.capacity() > 2 * json.len() + 1024 => return None,
                _ => packed.reserve(packed.capacity()),
            }
        }
    }

    fn inflate(&self, packed: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut inflater = Decompress::new(false);
        inflater.set_dictionary(self.text.get()?).ok()?;
        let mut json = Vec::with_capacity(len);
        match inflater
            .decompress_vec(packed, &mut json, FlushDecompress::Finish)
            .ok()?
        {
            Status::StreamEnd if json.len() == len => Some(json),
            _ => None,
        }
    }
}

/// A child as the caches keep it: the object as JSON (slimmed, see [`slim`]) deflated against its
/// kind's [`Dictionary`], and beside it only what the stores and the controller's triggers look
/// up: its name and namespace (the stores key their entries by them, and copy the uid and
/// resourceVersion of the metadata into each key, so those are left out) and its stack's name.
/// A reconcile reads everything else from the object.
pub struct Cached<K> {
    meta: ObjectMeta,
    /// Its stack's name: the instance label, which every child carries, or else (a label
    /// removed by hand) the AppStack that owns it. Secrets and claims may have no owner.
    stack: Option<Box<str>>,
    packed: Box<[u8]>,
    /// The length of the JSON unpacked.
    len: usize,
    dictionary: Arc<Dictionary>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Resource + Serialize> Cached<K> {
    pub fn new(mut object: K, dictionary: &Arc<Dictionary>) -> Self {
        slim(&mut object);
        // Serializing a Kubernetes type cannot fail (no map has non-string keys), nor deflating
        // in memory; were either to, the child unpacks as nothing and the reconcile reads it from
        // the API.
        let json = serde_json::to_vec(&object).unwrap_or_default();
        let len = json.len();
        let packed = dictionary.deflate(json).unwrap_or_default();
        let full = object.meta();
        let meta = ObjectMeta {
            name: full.name.clone(),
            namespace: full.namespace.clone(),
            ..ObjectMeta::default()
        };
        let instance = full.labels.as_ref().and_then(|l| l.get(LABEL_INSTANCE));
        let owner = || {
            let owners = full.owner_references.as_deref().unwrap_or_default();
            let stack = owners.iter().find(|o| o.kind == AppStack::kind(&()))?;
            Some(&stack.name)
        };
        Self {
            meta,
            stack: instance.or_else(owner).map(|name| name.as_str().into()),
            packed,
            len,
            dictionary: dictionary.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Cached<K> {
    /// The stack the child belongs to.
    pub fn stack(self) -> Option<ObjectRef<AppStack>> {
        Some(ObjectRef::new(self.stack.as_deref()?).within(self.meta.namespace.as_deref()?))
    }

    /// How many bytes the child takes packed.
    pub fn packed_len(&self) -> usize {
        self.packed.len()
    }
}

impl<K: DeserializeOwned> Cached<K> {
    /// The object, typed again.
    pub fn object(&self) -> Option<K> {
        let json = self.dictionary.inflate(&self.packed, self.len)?;
        serde_json::from_slice(&json).ok()
    }
}

impl<K> Clone for Cached<K> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            stack: self.stack.clone(),
            packed: self.packed.clone(),
            len: self.len,
            dictionary: self.dictionary.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Debug for Cached<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("meta", &self.meta)
            .field("stack", &self.stack)
            .field("bytes", &self.len)
            .field("packed", &self.packed.len())
            .finish()
    }
}

/// Only for `Controller::watches_stream`'s bounds: the caches build theirs from watch events.
impl<'de, K: Resource + Serialize + DeserializeOwned> Deserialize<'de> for Cached<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(|object| Self::new(object, &Arc::default()))
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
    use serde_json::Value;

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
        let dictionary = Arc::new(Dictionary::default());
        let cached = Cached::new(deployment.clone(), &dictionary);
        slim(&mut deployment);
        assert_eq!(cached.object(), Some(deployment.clone()));
        // What the stores and the controller's triggers look up, and nothing else.
        assert_eq!(
            cached.meta(),
            &ObjectMeta {
                name: Some("books-api".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            }
        );
        assert_eq!(
            cached.clone().stack(),
            Some(ObjectRef::new("books").within("shop"))
        );
        assert_eq!(Cached::<Deployment>::kind(&()), "Deployment");
        assert_eq!(Cached::<Deployment>::api_version(&()), "apps/v1");
    }

    #[test]
    fn a_child_maps_to_its_stack_by_its_label_else_by_its_owner() {
        let child = |meta: Value| {
            let deployment: Deployment = serde_json::from_value(json!({"metadata": meta})).unwrap();
            Cached::new(deployment, &Arc::new(Dictionary::default())).stack()
        };
        let owner = json!([{"apiVersion": "appstack.dev/v1alpha1", "kind": "AppStack",
            "name": "owner", "uid": "u0", "controller": true}]);
        let books = Some(ObjectRef::new("books").within("shop"));
        assert_eq!(
            child(json!({"name": "a", "namespace": "shop", "labels": {LABEL_INSTANCE: "books"}})),
            books
        );
        // A label removed by hand: the owner still finds it, so the drift is undone.
        assert_eq!(
            child(json!({"name": "a", "namespace": "shop", "ownerReferences": owner})),
            Some(ObjectRef::new("owner").within("shop"))
        );
        let foreign = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u9"}]);
        assert_eq!(
            child(json!({"name": "a", "namespace": "shop", "ownerReferences": foreign})),
            None
        );
    }

    /// Children of one kind, as one operator makes them, differ in little but their names.
    fn deployment_of(stack: &str, image: &str) -> Deployment {
        let labels = json!({LABEL_INSTANCE: stack, "app.kubernetes.io/component": "api"});
        serde_json::from_value(json!({
            "metadata": {"name": format!("{stack}-api"), "namespace": "shop",
                "uid": format!("uid-{stack}"), "resourceVersion": "7", "labels": labels,
                "annotations": {"appstack.dev/applied-hash": format!("{:x}", stack.len() * 7919)}},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "api", "image": image,
                        "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                            "periodSeconds": 5, "timeoutSeconds": 1, "failureThreshold": 3},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "512Mi"}},
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": true},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2,
                "observedGeneration": 1},
        }))
        .unwrap()
    }

    #[test]
    fn children_of_a_kind_pack_against_the_first_one() {
        let dictionary = Arc::new(Dictionary::default());
        let first = Cached::new(deployment_of("books", "books:1"), &dictionary);
        let other = deployment_of("shop-2", "registry.example.com/shop:2.0");
        let json = serde_json::to_vec(&other).unwrap().len();
        let cached = Cached::new(other.clone(), &dictionary);
        assert_eq!(cached.object(), Some(other));
        assert!(
            cached.packed_len() * 4 < json,
            "{} bytes packed of {json}",
            cached.packed_len()
        );
        // The dictionary stays the first child's: what was packed against it still unpacks.
        assert_eq!(first.object(), Some(deployment_of("books", "books:1")));
        // A child unlike the rest still round-trips, only less packed.
        let service: Service = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "shop"}, "spec": {"ports": [{"port": 1}]}}))
        .unwrap();
        let odd = Cached::new(service.clone(), &Arc::new(Dictionary::default()));
        assert_eq!(odd.object(), Some(service));
    }
}
