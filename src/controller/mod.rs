//! The controller: watches AppStacks and their children and reconciles each stack through the
//! finalizer, with [`apply`] for live stacks and [`cleanup`] for deleted ones.

pub mod apply;
pub mod children;
pub mod cleanup;
pub mod credentials;
pub mod error;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::crd::AppStack;
use crate::metrics::Metrics;
use crate::resources::{LABEL_INSTANCE, managed_selector};
pub use error::Error;

pub const FINALIZER: &str = "appstack.dev/cleanup";
/// Look at a healthy stack again after this long even without a watch event.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Look at a blocked stack again after this long: what unblocks it may not be watched.
pub const REQUEUE_BLOCKED: Duration = Duration::from_secs(30);
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per stack, for exponential backoff.
    failures: Mutex<HashMap<ObjectRef<AppStack>, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: "appstack-operator".into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            failures: Mutex::default(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<AppStack>, u32>> {
        // A panic elsewhere cannot leave a counter map inconsistent; keep using it.
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[tracing::instrument(skip(stack, ctx), fields(stack = %stack.name_any(), namespace = stack.namespace().unwrap_or_default()))]
pub async fn reconcile(stack: Arc<AppStack>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = stack.namespace().unwrap_or_default();
    let stacks: Api<AppStack> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = ObjectRef::from_obj(stack.as_ref());
    let result = finalizer(&stacks, FINALIZER, stack, |event| async {
        match event {
            FinalizerEvent::Apply(stack) => apply::apply(stack, &ctx).await,
            FinalizerEvent::Cleanup(stack) => cleanup::cleanup(stack, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    let outcome = if result.is_ok() { "success" } else { "error" };
    ctx.metrics.reconciled(outcome, started.elapsed());
    if result.is_ok() {
        ctx.failures().remove(&key);
    }
    result
}

/// Transient failures retry with exponential backoff per stack (2s, 4s, … up to 5 minutes).
pub fn error_policy(stack: Arc<AppStack>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error.reason());
    let attempts = {
        let mut failures = ctx.failures();
        let count = failures
            .entry(ObjectRef::from_obj(stack.as_ref()))
            .or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = BACKOFF_BASE
        .saturating_mul(2_u32.saturating_pow(attempts.saturating_sub(1)))
        .min(BACKOFF_MAX);
    tracing::warn!(stack = %stack.name_any(), %error, attempts, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Where the controller looks.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Watch one namespace only; every namespace when `None`.
    pub namespace: Option<String>,
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
}

/// Secrets and claims may have no owner reference (retained data), so they map to their stack
/// through the instance label instead.
fn stack_of<K: Resource>(object: K) -> Option<ObjectRef<AppStack>> {
    let name = object.meta().labels.as_ref()?.get(LABEL_INSTANCE)?.clone();
    let namespace = object.meta().namespace.clone()?;
    Some(ObjectRef::new(&name).within(&namespace))
}

/// Run the controller until SIGTERM or SIGINT. `ready` turns true once the AppStack cache has
/// synced.
pub async fn run(client: Client, scope: Scope, ctx: Arc<Context>, ready: Arc<AtomicBool>) {
    // Only the operator's own children are watched, so memory grows with them and not with
    // every Secret and Deployment in the cluster.
    let children = watcher::Config::default().labels(&managed_selector());
    // The AppStack watch is built here, not by `Controller::new`, so that its InitDone event can
    // mark the operator ready. `Store::wait_until_ready` wakes only its last waiter and the
    // controller's runner is one, so a second waiter would never wake.
    let (stacks_cache, stacks_writer) = reflector::store();
    let stacks = watcher(scope.api::<AppStack>(&client), watcher::Config::default())
        .reflect(stacks_writer)
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) && !ready.swap(true, Ordering::Relaxed)
            {
                tracing::info!("AppStack cache synced; ready");
            }
        })
        .applied_objects();
    let controller = Controller::for_stream(stacks, stacks_cache)
        .owns(scope.api::<Deployment>(&client), children.clone())
        .owns(scope.api::<Service>(&client), children.clone())
        .owns(scope.api::<Ingress>(&client), children.clone())
        .owns(
            scope.api::<HorizontalPodAutoscaler>(&client),
            children.clone(),
        )
        .owns(scope.api::<PodDisruptionBudget>(&client), children.clone())
        .watches(scope.api::<Secret>(&client), children.clone(), stack_of)
        .watches(
            scope.api::<PersistentVolumeClaim>(&client),
            children,
            stack_of,
        )
        .shutdown_on_signal();
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((stack, _)) => tracing::debug!(stack = %stack.name, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile did not complete"),
            }
        })
        .await;
    tracing::info!("controller stopped");
}
