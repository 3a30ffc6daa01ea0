//! The controller: watches AppStacks and their children and reconciles each stack through the
//! finalizer: [`reconcile`] for live stacks (dereference → plan → execute → status), [`delete`]
//! for deleted ones.

pub mod cache;
pub mod cached_stack;
pub mod created;
pub mod delete;
pub mod dereference;
pub mod error;
pub mod events;
pub mod execute;
pub mod password;
pub mod reconcile;
pub mod status_writer;
pub mod turns;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt, TryStreamExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::crd::AppStack;
use crate::metrics::Metrics;
use crate::resources::managed_selector;
use cached_stack::CachedStack;
pub use error::Error;
use turns::Turns;

pub const FINALIZER: &str = "appstack.dev/cleanup";
/// Look at a healthy stack again after this long even without a watch event.
pub const RESYNC: Duration = Duration::from_secs(300);
/// Look at a blocked stack again after this long: what unblocks it may not be watched.
pub const REQUEUE_BLOCKED: Duration = Duration::from_secs(30);
/// Look at a waiting stack again after this long, should the watch event that ends the wait be
/// missed.
pub const REQUEUE_WAITING: Duration = Duration::from_secs(30);
/// Look at a stack whose API or frontend is rolling out (or migrating) again after this long:
/// pod states are not watched, and a failing rollout must show in seconds.
pub const REQUEUE_ROLLOUT: Duration = Duration::from_secs(5);
/// Rollout looks a second across every stack that rolls out. When thousands roll out at once
/// (created together), looking at each every 5 s would ask for more reconciles than the operator
/// can run, and every other reconcile (a new stack's first among them) would queue behind the
/// looks for its turn. Each stack is looked at less often instead.
const ROLLOUT_LOOKS_PER_SECOND: f64 = 10.0;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Reconciles at once (their turns: `turns.rs`). A reconcile waits on the API server most of
/// its time (its writes go one after another), so 1,000 new stacks come up faster with more of
/// them at once; unbounded, a restarted leader reconciles every stack at once and its requests
/// queue behind each other in the API server's fairness queue of its ServiceAccount, Lease
/// renewals included, until the leader misses its renew deadline.
const CONCURRENCY: usize = 16;
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// A stack in the maps the operator keeps per stack: `namespace/name`, nothing else (an
/// `ObjectRef` from an object carries its uid and resourceVersion too, and a hundred bytes
/// however empty).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StackKey(Box<str>);

impl StackKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self(format!("{namespace}/{name}").into())
    }

    pub fn of(stack: &AppStack) -> Self {
        Self::new(
            stack.metadata.namespace.as_deref().unwrap_or_default(),
            stack.metadata.name.as_deref().unwrap_or_default(),
        )
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    /// Publishes Warning Events, folding one that comes back into a series.
    pub recorder: Recorder,
    /// Who publishes the Events: this operator, this instance.
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per stack, for exponential backoff.
    failures: Mutex<HashMap<StackKey, u32>>,
    /// The resourceVersion of each stack that its last finished reconcile saw.
    reconciled: Mutex<HashMap<StackKey, String>>,
    /// The resourceVersion of each stack that this operator last wrote a status over: a stack
    /// still at that version is older than the operator's own write.
    status_written_over: Mutex<HashMap<StackKey, String>>,
    /// The children's caches while the controller runs.
    caches: Mutex<Option<cache::Caches>>,
    /// Stacks whose last reconcile asked to look again soon at a rollout.
    rolling_out: Mutex<HashSet<StackKey>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: "appstack-operator".into(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            metrics,
            failures: Mutex::default(),
            reconciled: Mutex::default(),
            status_written_over: Mutex::default(),
            caches: Mutex::default(),
            rolling_out: Mutex::default(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<StackKey, u32>> {
        lock(&self.failures)
    }

    /// Transient failures of `stack` in a row so far.
    pub fn failures_of(&self, stack: &AppStack) -> u32 {
        self.failures()
            .get(&StackKey::of(stack))
            .copied()
            .unwrap_or(0)
    }

    /// The children's caches, once the controller runs.
    pub fn caches(&self) -> Option<cache::Caches> {
        lock(&self.caches).clone()
    }

    /// A status was written over `stack` as it is.
    pub fn status_written(&self, stack: &AppStack) {
        if let Some(version) = stack.resource_version() {
            lock(&self.status_written_over).insert(StackKey::of(stack), version);
        }
    }

    /// `stack` is the version this operator last wrote a status over: the cache has not yet
    /// brought back that write.
    fn predates_own_status(&self, stack: &AppStack) -> bool {
        let Some(version) = stack.resource_version() else {
            return false;
        };
        lock(&self.status_written_over).get(&StackKey::of(stack)) == Some(&version)
    }

    /// Whether `stack` rolls out now; if it does, how soon to look at it again
    /// ([`rollout_look_interval`] for as many stacks as roll out now).
    pub fn rollout_look(&self, stack: &AppStack, rolling_out: bool) -> Option<Duration> {
        let mut set = lock(&self.rolling_out);
        let key = StackKey::of(stack);
        if !rolling_out {
            set.remove(&key);
            return None;
        }
        set.insert(key);
        Some(rollout_look_interval(set.len()))
    }

    /// The resourceVersion of the AppStack `namespace/name` that its last finished reconcile saw:
    /// lets a caller wait for the reconcile that follows a change it made.
    pub fn last_reconciled(&self, namespace: &str, name: &str) -> Option<String> {
        lock(&self.reconciled)
            .get(&StackKey::new(namespace, name))
            .cloned()
    }
}

/// How often each of `rolling_out` stacks is looked at: every [`REQUEUE_ROLLOUT`], or as often
/// as [`ROLLOUT_LOOKS_PER_SECOND`] spread over them allows.
pub fn rollout_look_interval(rolling_out: usize) -> Duration {
    let spread = Duration::from_secs_f64(rolling_out as f64 / ROLLOUT_LOOKS_PER_SECOND);
    spread.max(REQUEUE_ROLLOUT)
}

/// A panic elsewhere cannot leave these maps inconsistent; keep using them.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[tracing::instrument(skip(stack, ctx), fields(stack = %stack.name_any(), namespace = stack.namespace().unwrap_or_default()))]
pub async fn reconcile(stack: Arc<AppStack>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let namespace = stack.namespace().unwrap_or_default();
    let stacks: Api<AppStack> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = StackKey::of(&stack);
    // A reconcile that starts before the watch has brought back this operator's own last status
    // write would plan from the status before it, and could undo what that status recorded (a
    // rollback's failed image, applied again). Read the stack afresh then.
    let stack = if ctx.predates_own_status(&stack) {
        match stacks.get_opt(&stack.name_any()).await {
            Ok(Some(fresh)) => Arc::new(fresh),
            Ok(None) => return Ok(Action::await_change()),
            Err(e) => return Err(Error::from_kube("AppStack", &stack.name_any(), e)),
        }
    } else {
        stack
    };
    let version = stack.resource_version();
    let deleting = stack.metadata.deletion_timestamp.is_some();
    let result = finalizer(&stacks, FINALIZER, stack, |event| async {
        match event {
            FinalizerEvent::Apply(stack) => reconcile::reconcile(stack, &ctx).await,
            FinalizerEvent::Cleanup(stack) => delete::delete(stack, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    let result = match result {
        Err(error) if error.stack_gone() => {
            tracing::debug!("stack gone before its finalizer was patched");
            Ok(Action::await_change())
        }
        result => result,
    };
    let outcome = outcome(&result);
    ctx.metrics.reconciled(outcome, started.elapsed());
    if !matches!(outcome, "error") {
        ctx.failures().remove(&key);
    }
    if deleting && result.is_ok() {
        // The finalizer let go: the stack is gone, and so is what was kept about it.
        lock(&ctx.reconciled).remove(&key);
        lock(&ctx.status_written_over).remove(&key);
        lock(&ctx.rolling_out).remove(&key);
    } else if let Some(version) = version {
        lock(&ctx.reconciled).insert(key, version);
    }
    result
}

/// The `outcome` label of a reconcile: a blocked stack is not a success.
fn outcome(result: &Result<Action, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(error) if error.is_blocking() => "blocked",
        Err(_) => "error",
    }
}

/// What kubectl's client-side apply keeps on an object: the whole manifest again.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// An AppStack as the cache keeps it: without what nothing here reads and what would take most
/// of its memory, its managedFields and the manifest copy of `kubectl apply`.
fn slim_stack(stack: &mut AppStack) {
    stack.managed_fields_mut().clear();
    let annotations = stack.annotations_mut();
    annotations.remove(LAST_APPLIED);
}

/// Ready once the AppStack watch has listed everything; not ready while it fails (the CRD is
/// missing, RBAC forbids it, the API server is away) until a fresh list succeeds.
fn track_readiness<K>(event: &Result<watcher::Event<K>, watcher::Error>, ready: &AtomicBool) {
    match event {
        Ok(watcher::Event::InitDone) => {
            if !ready.swap(true, Ordering::Relaxed) {
                tracing::info!("AppStack cache synced; ready");
            }
        }
        Err(error) => {
            if ready.swap(false, Ordering::Relaxed) {
                tracing::error!(%error, "AppStack watch failed; not ready");
            } else {
                tracing::warn!(%error, "AppStack watch failing");
            }
        }
        Ok(_) => {}
    }
}

/// Blocked stacks wait for a new spec (invalid) or look again every [`REQUEUE_BLOCKED`];
/// transient failures retry with exponential backoff per stack (2s, 4s, … up to 5 minutes).
pub fn error_policy(stack: Arc<CachedStack>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(error.reason());
    if error.awaits_new_spec() {
        return Action::await_change();
    }
    if error.is_blocking() {
        // Fixed by objects the operator may not watch (a Secret, a foreign Service).
        return Action::requeue(REQUEUE_BLOCKED);
    }
    let attempts = {
        let mut failures = ctx.failures();
        let count = failures.entry(stack.stack_key()).or_insert(0);
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

/// kube-runtime starts every due reconcile at once, each to wait for its turn (`turns.rs`).
fn in_turns() -> kube::runtime::controller::Config {
    kube::runtime::controller::Config::default().concurrency(0)
}

/// `reconcile` of `stack` in its turn, with the stack as the cache has it then: it may have
/// changed, or gone, while the reconcile waited.
async fn in_turn<C, R>(
    turns: Arc<Turns>,
    stacks: reflector::Store<CachedStack>,
    stack: Arc<CachedStack>,
    ctx: Arc<C>,
    reconcile: impl FnOnce(Arc<AppStack>, Arc<C>) -> R,
) -> Result<Action, Error>
where
    R: Future<Output = Result<Action, Error>>,
{
    // Only the key waits: a version the cache has since replaced is freed at once.
    let key = ObjectRef::from_obj(stack.as_ref());
    drop(stack);
    let turn = turns.run(|| async move {
        match stacks.get(&key).as_deref().map(CachedStack::stack) {
            Some(Some(latest)) => reconcile(Arc::new(latest), ctx).await,
            Some(None) => {
                tracing::error!(stack = %key, "the cached stack does not unpack");
                Ok(Action::await_change())
            }
            None => Ok(Action::await_change()),
        }
    });
    // None: the controller stops, and what this returns goes nowhere.
    turn.await.unwrap_or_else(|| Ok(Action::await_change()))
}

/// Watches list in pages of 100 objects rather than kube's 500: each page is held whole, with
/// every object's managedFields, until its objects are cached, and ten child watches list at
/// once when the operator starts.
fn list_pages() -> watcher::Config {
    watcher::Config::default().page_size(100)
}

/// Run the controller until SIGTERM or SIGINT. `ready` turns true once the AppStack cache has
/// synced.
pub async fn run(client: Client, scope: Scope, ctx: Arc<Context>, ready: Arc<AtomicBool>) {
    run_until(client, scope, ctx, ready, shutdown_signal()).await;
}

/// SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Run the controller until `shutdown` resolves, then stop gracefully: no new reconcile starts
/// and the ones in flight finish before this returns.
pub async fn run_until(
    client: Client,
    scope: Scope,
    ctx: Arc<Context>,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // The controller wants a `Sync` trigger: hand the signal over through a oneshot channel.
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let bridge = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(());
    });
    // Only the operator's own children are watched, so memory grows with them and not with
    // every Secret and Deployment in the cluster.
    let children = list_pages().labels(&managed_selector());
    // The AppStack watch is built here, not by `Controller::new`, so that its InitDone event can
    // mark the operator ready. `Store::wait_until_ready` wakes only its last waiter and the
    // controller's runner is one, so a second waiter would never wake.
    let (stacks_cache, stacks_writer) = reflector::store::<CachedStack>();
    let dictionary = Arc::new(cache::Dictionary::default());
    let synced = ready.clone();
    let cache = stacks_cache.clone();
    ctx.metrics.count_stacks(Box::new(move || {
        cache.state().iter().map(|stack| stack.phase()).collect()
    }));
    let (caches, child_watches) = cache::Caches::new(&scope, &client, &children);
    *lock(&ctx.caches) = Some(caches.clone());
    let stacks = watcher(scope.api::<AppStack>(&client), list_pages())
        .modify(slim_stack)
        .map_ok(move |event| cached_stack::pack(event, &dictionary))
        .reflect(stacks_writer)
        .inspect(move |event| track_readiness(event, &synced))
        .applied_objects();
    // No reconcile before every child cache is filled (the controller's own watches fill them
    // meanwhile): a reconcile that found an empty cache would try to create every child again.
    // The AppStack watch starts then, so readiness means every cache is synced.
    let filled = async move { caches.synced().await };
    let stacks = futures::stream::once(filled)
        .filter_map(|()| std::future::ready(None))
        .chain(stacks);
    let turns = Arc::new(Turns::new(CONCURRENCY));
    let controller = Controller::for_stream(stacks, stacks_cache.clone()).with_config(in_turns());
    // The reconciles waiting for their turn give up at once when the controller stops.
    let stopped = {
        let turns = turns.clone();
        stopped.map(move |_| turns.close())
    };
    let controller = child_watches
        .trigger(controller)
        .graceful_shutdown_on(stopped);
    let metrics = ctx.metrics.clone();
    let context = ctx.clone();
    controller
        .run(
            move |stack, ctx| in_turn(turns.clone(), stacks_cache.clone(), stack, ctx, reconcile),
            error_policy,
            ctx,
        )
        .for_each(|result| async move {
            use kube::runtime::controller::Error as ControllerError;
            match result {
                Ok((stack, _)) => tracing::debug!(stack = %stack.name, "reconciled"),
                // error_policy has logged it.
                Err(ControllerError::ReconcilerFailed(..)) => {}
                Err(ControllerError::ObjectNotFound(stack)) => {
                    tracing::debug!(%stack, "stack gone before its reconcile")
                }
                Err(error) => tracing::warn!(%error, "watch or queue error"),
            }
        })
        .await;
    bridge.abort();
    *lock(&context.caches) = None;
    ready.store(false, Ordering::Relaxed);
    // A replica that no longer leads must not go on reporting its last count.
    metrics.stop_counting_stacks();
    tracing::info!("controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Blocker;

    /// Twelve stacks that each want a reconcile again a millisecond after the last, two turns:
    /// always more due than can run, as when thousands of stacks are created at once. Served in
    /// the order they fell due, each gets its share; kube-runtime's own limit serves some over
    /// and over while others wait.
    #[tokio::test]
    async fn every_due_stack_gets_its_turn_while_more_are_due_than_can_run() {
        const STACKS: usize = 12;
        const RECONCILES: usize = 240;
        let (store, mut writer) = reflector::store::<CachedStack>();
        let dictionary = Arc::default();
        let stacks: Vec<AppStack> = (0..STACKS)
            .map(|n| {
                let mut stack = crate::test_fixtures::stack_from_yaml("");
                stack.metadata.name = Some(format!("stack-{n}"));
                stack
            })
            .collect();
        let stacks: Vec<CachedStack> = stacks
            .iter()
            .map(|stack| CachedStack::new(stack, &dictionary))
            .collect();
        writer.apply_watcher_event(&watcher::Event::Init);
        for stack in &stacks {
            writer.apply_watcher_event(&watcher::Event::InitApply(stack.clone()));
        }
        writer.apply_watcher_event(&watcher::Event::InitDone);
        let trigger =
            futures::stream::iter(stacks.into_iter().map(Ok)).chain(futures::stream::pending());
        let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        type Counts = Arc<Mutex<HashMap<String, usize>>>;
        let busy_reconcile = |stack: Arc<AppStack>, counts: Counts| async move {
            *lock(&counts).entry(stack.name_any()).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(Action::requeue(Duration::from_millis(1)))
        };
        let turns = Arc::new(Turns::new(2));
        let finished = Controller::for_stream(trigger, store.clone())
            .with_config(in_turns())
            .run(
                move |stack, counts| {
                    in_turn(turns.clone(), store.clone(), stack, counts, busy_reconcile)
                },
                |_, _: &Error, _| Action::await_change(),
                counts.clone(),
            )
            .take(RECONCILES)
            .count();
        tokio::time::timeout(Duration::from_secs(60), finished)
            .await
            .expect("the reconciles finish");
        let counts = lock(&counts).clone();
        let fewest = (0..STACKS)
            .map(|n| counts.get(&format!("stack-{n}")).copied().unwrap_or(0))
            .min();
        assert!(
            fewest >= Some(RECONCILES / STACKS / 2),
            "some stacks waited while others ran again and again: {counts:?}"
        );
    }

    #[test]
    fn readiness_follows_the_appstack_watch() {
        let ready = AtomicBool::new(false);
        let listed: Result<watcher::Event<AppStack>, watcher::Error> = Ok(watcher::Event::InitDone);
        track_readiness(&listed, &ready);
        assert!(ready.load(Ordering::Relaxed), "ready once listed");
        let forbidden: Result<watcher::Event<AppStack>, watcher::Error> =
            Err(watcher::Error::NoResourceVersion);
        track_readiness(&forbidden, &ready);
        assert!(
            !ready.load(Ordering::Relaxed),
            "not ready while the watch fails"
        );
        track_readiness(&listed, &ready);
        assert!(
            ready.load(Ordering::Relaxed),
            "ready again after a fresh list"
        );
    }

    #[test]
    fn a_cached_stack_keeps_no_managed_fields_nor_the_manifest_copy_of_kubectl_apply() {
        let mut stack = crate::test_fixtures::stack_from_yaml("");
        stack.metadata.managed_fields = Some(vec![Default::default()]);
        stack.metadata.annotations = Some(
            [
                (LAST_APPLIED.to_owned(), "{\"spec\": {}}".to_owned()),
                ("team".to_owned(), "shop".to_owned()),
            ]
            .into(),
        );
        let spec = stack.spec.clone();
        slim_stack(&mut stack);
        assert_eq!(stack.metadata.managed_fields, Some(vec![]));
        assert_eq!(
            stack.metadata.annotations,
            Some([("team".to_owned(), "shop".to_owned())].into())
        );
        assert_eq!(stack.spec, spec);
    }

    #[test]
    fn rollouts_are_looked_at_every_five_seconds_until_too_many_roll_out_at_once() {
        assert_eq!(rollout_look_interval(1), REQUEUE_ROLLOUT);
        assert_eq!(rollout_look_interval(50), REQUEUE_ROLLOUT);
        assert_eq!(rollout_look_interval(100), Duration::from_secs(10));
        assert_eq!(rollout_look_interval(1000), Duration::from_secs(100));
    }

    #[test]
    fn a_blocked_stack_is_not_a_successful_reconcile() {
        let blocked = Err(Error::Blocked(Blocker {
            reason: "NameConflict",
            message: "Service books-api exists".into(),
            object: None,
        }));
        assert_eq!(outcome(&blocked), "blocked");
        assert_eq!(outcome(&Ok(Action::await_change())), "success");
        let transient = Err(Error::from_kube(
            "Service",
            "x",
            kube::Error::Api(Box::new(
                kube::core::Status::failure("boom", "InternalError").with_code(500),
            )),
        ));
        assert_eq!(outcome(&transient), "error");
    }
}
