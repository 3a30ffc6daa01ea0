//! The controller's caches of children: stores filled by the very watches that trigger
//! reconciles, so that a reconcile reads its children without an API request. A cache may lag
//! behind the API server by a watch event: what the operator created itself is kept aside until
//! its watch brings it back ([`Created`]), and `dereference` says what else that means.
//!
//! A child is kept as the JSON it arrived as, deflated ([`Shelf`]), not typed: a typed Kubernetes
//! object takes several times the memory of its JSON (profiled with heaptrack at 300 stacks: the
//! typed children were three quarters of the operator's heap), and a reconcile unpacks and parses
//! only the dozen it reads. The JSON is deflated against a [`Dictionary`] per kind, the first
//! child of that kind the cache saw: one operator's children of one kind share most of their text
//! (keys, defaults, probes, security contexts), so a child packs to about a tenth of its JSON.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockWriteGuard};

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
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use tokio::sync::watch;

use super::cached_stack::CachedStack;
use super::created::Created;
use super::{Scope, lock};
use crate::crd::AppStack;
use crate::plan::child::{Kind, Object, Slot};
use crate::resources::LABEL_INSTANCE;

/// One store per child kind.
#[derive(Clone)]
pub struct Caches {
    secrets: Shelf<Secret>,
    claims: Shelf<PersistentVolumeClaim>,
    statefulsets: Shelf<StatefulSet>,
    deployments: Shelf<Deployment>,
    services: Shelf<Service>,
    autoscalers: Shelf<HorizontalPodAutoscaler>,
    budgets: Shelf<PodDisruptionBudget>,
    ingresses: Shelf<Ingress>,
    jobs: Shelf<Job>,
    network_policies: Shelf<NetworkPolicy>,
    /// What this operator created and the stores may not hold yet.
    created: Arc<Created>,
}

/// A watch of one child kind, as the controller's trigger.
type Trigger<K> = BoxStream<'static, Result<Touched<K>, watcher::Error>>;

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
    /// Trigger `controller` with each child's stack ([`Touched::stack`]).
    pub fn trigger(self, controller: Controller<CachedStack>) -> Controller<CachedStack> {
        controller
            .watches_stream(self.secrets, Touched::stack)
            .watches_stream(self.claims, Touched::stack)
            .watches_stream(self.statefulsets, Touched::stack)
            .watches_stream(self.deployments, Touched::stack)
            .watches_stream(self.services, Touched::stack)
            .watches_stream(self.autoscalers, Touched::stack)
            .watches_stream(self.budgets, Touched::stack)
            .watches_stream(self.ingresses, Touched::stack)
            .watches_stream(self.jobs, Touched::stack)
            .watches_stream(self.network_policies, Touched::stack)
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
    pub async fn synced(&self) {
        futures::join!(
            self.secrets.filled(),
            self.claims.filled(),
            self.statefulsets.filled(),
            self.deployments.filled(),
            self.services.filled(),
            self.autoscalers.filled(),
            self.budgets.filled(),
            self.ingresses.filled(),
            self.jobs.filled(),
            self.network_policies.filled(),
        );
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
        let (ns, name) = (namespace, slot.name.as_str());
        Some(match slot.kind {
            Kind::Secret => Object::Secret(self.secrets.get(ns, name)?),
            Kind::Claim => Object::Claim(self.claims.get(ns, name)?),
            Kind::StatefulSet => Object::StatefulSet(self.statefulsets.get(ns, name)?),
            Kind::Deployment => Object::Deployment(self.deployments.get(ns, name)?),
            Kind::Service => Object::Service(self.services.get(ns, name)?),
            Kind::Autoscaler => Object::Autoscaler(self.autoscalers.get(ns, name)?),
            Kind::DisruptionBudget => Object::DisruptionBudget(self.budgets.get(ns, name)?),
            Kind::Ingress => Object::Ingress(self.ingresses.get(ns, name)?),
            Kind::Job => Object::Job(self.jobs.get(ns, name)?),
            Kind::NetworkPolicy => Object::NetworkPolicy(self.network_policies.get(ns, name)?),
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
    fn cached<K>(self, api: Api<K>) -> (Shelf<K>, Trigger<K>)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync,
        K: 'static,
    {
        let shelf = Shelf::default();
        let KindWatch {
            config,
            kind,
            created,
        } = self;
        let writer = shelf.clone();
        let stream = watcher(api, config.clone())
            .map_ok(move |event| writer.write(event))
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
        (shelf, stream)
    }
}

/// One kind's children as the caches keep them: each as the JSON it arrived as (slimmed, see
/// [`slim`]), deflated against the kind's [`Dictionary`], keyed by `namespace/name`. Nothing else
/// is kept per child: a typed key with the uid and resourceVersion, or a typed ObjectMeta beside
/// the JSON, would take more than the packed child itself (kube's reflector store keeps both).
pub struct Shelf<K> {
    inner: Arc<ShelfInner>,
    kind: PhantomData<fn() -> K>,
}

struct ShelfInner {
    children: RwLock<Children>,
    dictionary: Dictionary,
    /// Turns true with the end of the first list.
    filled: watch::Sender<bool>,
}

#[derive(Default)]
struct Children {
    by_key: HashMap<Box<str>, Packed>,
    /// Counts the lists: what a list does not bring again is gone (deleted while unwatched).
    list: u32,
}

struct Packed {
    json: Box<[u8]>,
    /// The length of the JSON unpacked.
    len: u32,
    /// The list that brought it last, or the one under way when a watch event did.
    list: u32,
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl<K> Default for Shelf<K> {
    fn default() -> Self {
        Self {
            inner: Arc::new(ShelfInner {
                children: RwLock::default(),
                dictionary: Dictionary::default(),
                filled: watch::Sender::new(false),
            }),
            kind: PhantomData,
        }
    }
}

impl<K> Clone for Shelf<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Shelf<K> {
    /// Resolves once the first list has filled the shelf.
    pub async fn filled(&self) {
        let mut filled = self.inner.filled.subscribe();
        // The sender lives as long as `self`: this cannot fail.
        let _ = filled.wait_for(|filled| *filled).await;
    }

    fn children(&self) -> RwLockWriteGuard<'_, Children> {
        self.inner
            .children
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<K: Resource + Serialize + DeserializeOwned> Shelf<K> {
    /// The child `namespace/name`, typed again.
    pub fn get(&self, namespace: &str, name: &str) -> Option<K> {
        let children = self
            .inner
            .children
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let packed = children.by_key.get(key(namespace, name).as_str())?;
        self.inner.dictionary.unpack(&packed.json, packed.len)
    }

    /// Keeps what `event` brings, and passes it on as what it touched.
    pub fn write(&self, event: watcher::Event<K>) -> watcher::Event<Touched<K>> {
        use watcher::Event;
        match event {
            Event::Init => {
                let mut children = self.children();
                children.list = children.list.wrapping_add(1);
                Event::Init
            }
            Event::InitApply(object) => Event::InitApply(self.keep(object)),
            Event::Apply(object) => Event::Apply(self.keep(object)),
            Event::Delete(object) => {
                let touched = Touched::new(&object);
                if let (Some(namespace), Some(name)) = (&touched.meta.namespace, &touched.meta.name)
                {
                    self.children().by_key.remove(key(namespace, name).as_str());
                }
                Event::Delete(touched)
            }
            Event::InitDone => {
                let mut children = self.children();
                let list = children.list;
                children.by_key.retain(|_, packed| packed.list == list);
                children.by_key.shrink_to_fit();
                drop(children);
                self.inner.filled.send_replace(true);
                Event::InitDone
            }
        }
    }

    fn keep(&self, mut object: K) -> Touched<K> {
        let touched = Touched::new(&object);
        let (Some(namespace), Some(name)) = (&touched.meta.namespace, &touched.meta.name) else {
            return touched;
        };
        slim(&mut object);
        // A child that does not pack unpacks as nothing: the reconcile reads it from the API.
        let (json, len) = self.inner.dictionary.pack(&object);
        let mut children = self.children();
        let list = children.list;
        children
            .by_key
            .insert(key(namespace, name).into(), Packed { json, len, list });
        touched
    }
}

/// What the children of one kind are deflated against: the JSON of the first one the cache saw,
/// fixed from then on (every cached child of the kind needs it to unpack).
#[derive(Default)]
pub struct Dictionary {
    text: OnceLock<Box<[u8]>>,
}

/// One deflater for every kind, kept between objects: its tables are a quarter of a megabyte
/// (one a kind took 3 MB, profiled with heaptrack), and deflating one object takes microseconds.
static DEFLATER: Mutex<Option<Compress>> = Mutex::new(None);

impl Dictionary {
    /// `value` as JSON deflated, and the length of its JSON. Serializing a Kubernetes type cannot
    /// fail (no map has non-string keys), nor deflating in memory; were either to, the packed
    /// bytes are empty and unpack as nothing.
    pub fn pack<T: Serialize>(&self, value: &T) -> (Box<[u8]>, u32) {
        let json = serde_json::to_vec(value).unwrap_or_default();
        let len = u32::try_from(json.len()).unwrap_or_default();
        (self.deflate(json).unwrap_or_default(), len)
    }

    /// What [`Dictionary::pack`] packed, typed again.
    pub fn unpack<T: DeserializeOwned>(&self, packed: &[u8], len: u32) -> Option<T> {
        let json = self.inflate(packed, len as usize)?;
        serde_json::from_slice(&json).ok()
    }

    fn deflate(&self, json: Vec<u8>) -> Option<Box<[u8]>> {
        let text = self.text.get_or_init(|| json.clone().into());
        let mut deflater = lock(&DEFLATER);
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
        thread_local! {
            /// Kept between objects: its window is 32 KiB, allocated afresh for each otherwise.
            static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
        }
        let text = self.text.get()?;
        INFLATER.with_borrow_mut(|inflater| {
            inflater.reset(false);
            inflater.set_dictionary(text).ok()?;
            let mut json = Vec::with_capacity(len);
            match inflater
                .decompress_vec(packed, &mut json, FlushDecompress::Finish)
                .ok()?
            {
                Status::StreamEnd if json.len() == len => Some(json),
                _ => None,
            }
        })
    }
}

/// A child a watch brought (applied or deleted), as the controller's triggers see it: its name
/// and namespace, and its stack's name. It lives only until the trigger has mapped it.
pub struct Touched<K> {
    meta: ObjectMeta,
    /// Its stack's name: the instance label, which every child carries, or else (a label
    /// removed by hand) the AppStack that owns it. Secrets and claims may have no owner.
    stack: Option<Box<str>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Resource> Touched<K> {
    pub fn new(object: &K) -> Self {
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
            kind: PhantomData,
        }
    }
}

impl<K> Touched<K> {
    /// The stack the child belongs to.
    pub fn stack(self) -> Option<ObjectRef<CachedStack>> {
        Some(CachedStack::key(
            self.meta.namespace.as_deref()?,
            self.stack.as_deref()?,
        ))
    }
}

impl<K> Clone for Touched<K> {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            stack: self.stack.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Debug for Touched<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Touched")
            .field("meta", &self.meta)
            .field("stack", &self.stack)
            .finish()
    }
}

/// Only for `Controller::watches_stream`'s bounds: the caches build theirs from watch events.
impl<'de, K: Resource + DeserializeOwned> Deserialize<'de> for Touched<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        K::deserialize(deserializer).map(|object| Self::new(&object))
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Touched<K> {
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
    use watcher::Event;

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
        let shelf = Shelf::<Deployment>::default();
        let touched = match shelf.write(Event::Apply(deployment.clone())) {
            Event::Apply(touched) => touched,
            other => panic!("{other:?}"),
        };
        slim(&mut deployment);
        assert_eq!(shelf.get("shop", "books-api"), Some(deployment.clone()));
        assert_eq!(shelf.get("other", "books-api"), None);
        // What the controller's triggers look up, and nothing else.
        assert_eq!(
            touched.meta(),
            &ObjectMeta {
                name: Some("books-api".into()),
                namespace: Some("shop".into()),
                ..ObjectMeta::default()
            }
        );
        assert_eq!(
            touched.stack(),
            Some(ObjectRef::new("books").within("shop"))
        );
        assert_eq!(Touched::<Deployment>::kind(&()), "Deployment");
        assert_eq!(Touched::<Deployment>::api_version(&()), "apps/v1");
        shelf.write(Event::Delete(deployment));
        assert_eq!(shelf.get("shop", "books-api"), None);
    }

    fn service(namespace: &str, name: &str) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": namespace}})).unwrap()
    }

    #[tokio::test]
    async fn a_list_fills_the_shelf_and_a_relist_drops_what_it_did_not_bring() {
        let shelf = Shelf::<Service>::default();
        let filled = shelf.filled();
        futures::pin_mut!(filled);
        assert!(futures::poll!(filled.as_mut()).is_pending());
        shelf.write(Event::Init);
        shelf.write(Event::InitApply(service("a", "kept")));
        shelf.write(Event::InitApply(service("a", "deleted-unwatched")));
        assert!(
            futures::poll!(filled.as_mut()).is_pending(),
            "not before the list ends"
        );
        shelf.write(Event::InitDone);
        filled.await;
        assert!(shelf.get("a", "deleted-unwatched").is_some());
        // A relist cut short by an error, then a whole one: only what the last one brought stays.
        shelf.write(Event::Init);
        shelf.write(Event::InitApply(service("a", "deleted-unwatched")));
        shelf.write(Event::Init);
        shelf.write(Event::InitApply(service("a", "kept")));
        shelf.write(Event::InitApply(service("b", "new")));
        assert!(
            shelf.get("a", "deleted-unwatched").is_some(),
            "served until the list ends"
        );
        shelf.write(Event::InitDone);
        assert!(shelf.get("a", "kept").is_some());
        assert!(shelf.get("b", "new").is_some());
        assert_eq!(shelf.get("a", "deleted-unwatched"), None);
        shelf.filled().await;
    }

    #[test]
    fn a_child_maps_to_its_stack_by_its_label_else_by_its_owner() {
        let child = |meta: Value| {
            let deployment: Deployment = serde_json::from_value(json!({"metadata": meta})).unwrap();
            Touched::new(&deployment).stack()
        };
        let owner = json!([{"apiVersion": "appstack.dev/v1alpha1", "kind": "AppStack",
            "name": "owner", "uid": "u0", "controller": true}]);
        let books = Some(CachedStack::key("shop", "books"));
        assert_eq!(
            child(json!({"name": "a", "namespace": "shop", "labels": {LABEL_INSTANCE: "books"}})),
            books
        );
        // A label removed by hand: the owner still finds it, so the drift is undone.
        assert_eq!(
            child(json!({"name": "a", "namespace": "shop", "ownerReferences": owner})),
            Some(CachedStack::key("shop", "owner"))
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
        let shelf = Shelf::<Deployment>::default();
        shelf.write(Event::Apply(deployment_of("books", "books:1")));
        let other = deployment_of("shop-2", "registry.example.com/shop:2.0");
        let json = serde_json::to_vec(&other).unwrap().len();
        shelf.write(Event::Apply(other.clone()));
        assert_eq!(shelf.get("shop", "shop-2-api"), Some(other));
        let packed = shelf.children().by_key["shop/shop-2-api"].json.len();
        assert!(packed * 4 < json, "{packed} bytes packed of {json}");
        // The dictionary stays the first child's: what was packed against it still unpacks.
        assert_eq!(
            shelf.get("shop", "books-api"),
            Some(deployment_of("books", "books:1"))
        );
        // A child unlike the rest still round-trips, only less packed.
        let ported: Service = serde_json::from_value(json!({
            "metadata": {"name": "x", "namespace": "shop"}, "spec": {"ports": [{"port": 1}]}}))
        .unwrap();
        let odd = Shelf::<Service>::default();
        odd.write(Event::Apply(service("shop", "y")));
        odd.write(Event::Apply(ported.clone()));
        assert_eq!(odd.get("shop", "x"), Some(ported));
    }
}
