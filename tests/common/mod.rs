//! Harness for the integration tests: a real API server (started by `tests/cluster/up.sh`), one
//! namespace per test, and the operator running in-process, watching only that namespace, so the
//! tests run in parallel without seeing each other.
//!
//! The operator runs under the identity `deploy/install.yaml` gives it (its ServiceAccount,
//! impersonated), never as cluster-admin, so the shipped RBAC is the tested RBAC; or, with
//! [`TestEnv::namespaced`], under the one the namespace-scoped overlay `deploy/namespaced/` gives
//! it in the test's namespace. The tests' own calls use the admin client (`env.client`).

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod process;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use appstack_operator::controller::{self, Context, Scope};
use appstack_operator::crd::AppStack;
use appstack_operator::metrics::Metrics;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const TIMEOUT: Duration = Duration::from_secs(90);
const TEST_MANAGER: &str = "integration-test";

/// The operator's identity in `deploy/install.yaml`, as the API server sees a pod running under
/// its ServiceAccount.
pub const OPERATOR_USER: &str = "system:serviceaccount:appstack-system:appstack-operator";
pub const OPERATOR_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:appstack-system",
    "system:authenticated",
];

/// The labels every managed child carries.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=appstack-operator";

/// A namespaced Kubernetes kind the tests read and write.
pub trait Kind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

fn kind_of<K: Kind>() -> String {
    K::kind(&()).into_owned()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The kubeconfig of the local control plane: `KUBECONFIG`, else the one `up.sh` writes.
pub fn kubeconfig() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECONFIG") {
        return PathBuf::from(path);
    }
    let path = repo().join("target/cluster/kubeconfig");
    assert!(
        path.exists(),
        "integration tests need the local control plane: run tests/cluster/up.sh (or set KUBECONFIG)"
    );
    path
}

async fn config() -> kube::Config {
    kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig readable"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig valid")
}

/// The admin client of the kubeconfig.
pub async fn client() -> Client {
    Client::try_from(config().await).expect("client")
}

/// A client from the same kubeconfig that impersonates the operator's ServiceAccount: every
/// request is authorized by the RBAC of `deploy/install.yaml` (see [`install_rbac`]).
pub async fn operator_client() -> Client {
    service_account_client(OPERATOR_USER, &OPERATOR_GROUPS).await
}

/// A client that impersonates a ServiceAccount, as the API server sees a pod running under it.
async fn service_account_client(user: &str, groups: &[&str]) -> Client {
    let mut config = config().await;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| (*g).to_owned()).collect());
    Client::try_from(config).expect("impersonating client")
}

/// Which install the in-process operator runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Install {
    /// `deploy/install.yaml`: the ClusterRole, bound cluster-wide.
    ClusterWide,
    /// `deploy/namespaced/`, moved into the test's namespace by a kustomize overlay, as a user
    /// would: a Role in that namespace and nothing at cluster scope.
    Namespaced,
}

/// Install the namespace-scoped overlay into `namespace` the way its README asks (an overlay with
/// `namespace:` over `deploy/namespaced/`, `kubectl apply`), and return a client that acts as the
/// operator's ServiceAccount there.
pub async fn install_namespaced(namespace: &str) -> Client {
    let dir = repo().join("target/namespaced-overlays").join(namespace);
    std::fs::create_dir_all(&dir).expect("overlay directory");
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("namespace: {namespace}\nresources: [../../../deploy/namespaced]\n"),
    )
    .expect("overlay written");
    let (ok, built) = kubectl(&["kustomize", dir.to_str().expect("UTF-8 path")]);
    assert!(ok, "kubectl kustomize of the namespaced overlay: {built}");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&built).expect("the namespaced overlay builds YAML");
    for document in &documents {
        let kind = document["kind"].as_str().unwrap_or_default();
        assert!(
            !matches!(kind, "ClusterRole" | "ClusterRoleBinding"),
            "the namespaced install grants nothing at cluster scope: {document}"
        );
        if kind != "CustomResourceDefinition" && kind != "Namespace" {
            assert_eq!(
                document["metadata"]["namespace"], namespace,
                "every namespaced object moves with the overlay: {document}"
            );
        }
    }
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the overlay has the operator Deployment");
    let watch = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "WATCH_NAMESPACE");
    assert_eq!(
        watch.map(|e| &e["valueFrom"]["fieldRef"]["fieldPath"]),
        Some(&json!("metadata.namespace")),
        "the operator watches the namespace it runs in"
    );
    let file = dir.join("install.yaml");
    std::fs::write(&file, &built).expect("built overlay written");
    let (ok, output) = kubectl(&["apply", "-f", file.to_str().expect("UTF-8 path")]);
    assert!(ok, "kubectl apply of the namespaced overlay: {output}");
    let user = format!("system:serviceaccount:{namespace}:appstack-operator");
    let namespace_group = format!("system:serviceaccounts:{namespace}");
    service_account_client(
        &user,
        &[
            "system:serviceaccounts",
            &namespace_group,
            "system:authenticated",
        ],
    )
    .await
}

/// `kubectl` against the test cluster, returning (success, stdout + stderr).
pub fn kubectl(args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig())
        .current_dir(repo())
        .output()
        .expect("kubectl on PATH (tests/cluster/up.sh builds it; source target/cluster/env)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Install (or update) the CRD and wait until the API server serves it.
pub async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "appstacks.appstack.dev",
        &PatchParams::apply(TEST_MANAGER).force(),
        &Patch::Apply(AppStack::crd()),
    )
    .await
    .expect("CRD applies");
    let established = await_condition(
        crds,
        "appstacks.appstack.dev",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(TIMEOUT, established)
        .await
        .expect("CRD established in time")
        .expect("CRD watch");
}

/// Server-side apply the Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding and the Lease
/// Role and RoleBinding of `deploy/install.yaml` (not its CRD, see [`install_crd`], nor its Deployment), and return a
/// client that acts as the operator's ServiceAccount.
pub async fn install_rbac(client: &Client) -> Client {
    let text = std::fs::read_to_string(repo().join("deploy/install.yaml"))
        .expect("deploy/install.yaml readable");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&text).expect("deploy/install.yaml parses");
    let apply = PatchParams::apply(TEST_MANAGER).force();
    let mut applied = Vec::new();
    for document in documents {
        let kind = document["kind"].as_str().unwrap_or_default().to_owned();
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let namespace = document["metadata"]["namespace"]
            .as_str()
            .map(str::to_owned);
        let patch = Patch::Apply(&document);
        let result = match kind.as_str() {
            "Namespace" => Api::<Namespace>::all(client.clone())
                .patch(&name, &apply, &patch)
                .await
                .map(drop),
            "ServiceAccount" => Api::<ServiceAccount>::namespaced(
                client.clone(),
                namespace
                    .as_deref()
                    .expect("ServiceAccount has a namespace"),
            )
            .patch(&name, &apply, &patch)
            .await
            .map(drop),
            "ClusterRole" => Api::<ClusterRole>::all(client.clone())
                .patch(&name, &apply, &patch)
                .await
                .map(drop),
            "ClusterRoleBinding" => Api::<ClusterRoleBinding>::all(client.clone())
                .patch(&name, &apply, &patch)
                .await
                .map(drop),
            "Role" => Api::<Role>::namespaced(
                client.clone(),
                namespace.as_deref().expect("Role has a namespace"),
            )
            .patch(&name, &apply, &patch)
            .await
            .map(drop),
            "RoleBinding" => Api::<RoleBinding>::namespaced(
                client.clone(),
                namespace.as_deref().expect("RoleBinding has a namespace"),
            )
            .patch(&name, &apply, &patch)
            .await
            .map(drop),
            _ => continue,
        };
        result.unwrap_or_else(|e| panic!("{kind} {name} from deploy/install.yaml applies: {e}"));
        applied.push(kind);
    }
    assert_eq!(
        applied,
        [
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding"
        ],
        "deploy/install.yaml's RBAC documents"
    );
    operator_client().await
}

pub struct TestEnv {
    /// The admin client: what the test itself reads and writes with.
    pub client: Client,
    /// The operator's client: the ServiceAccount of `deploy/install.yaml`, impersonated.
    pub operator_client: Client,
    pub namespace: String,
    pub metrics: Arc<Metrics>,
    /// The running (or last) operator's context; a restart makes a new one.
    pub ctx: Arc<Context>,
    /// What the operator's /readyz reports.
    pub ready: Arc<AtomicBool>,
    operator: Option<JoinHandle<()>>,
}

impl TestEnv {
    /// A fresh namespace labelled for the "restricted" Pod Security Standard, the CRD, the
    /// shipped RBAC, and a running operator watching that namespace.
    pub async fn start(test: &str) -> Self {
        let mut env = Self::without_operator(test).await;
        env.start_operator();
        env
    }

    pub async fn without_operator(test: &str) -> Self {
        Self::prepare(test, Install::ClusterWide).await
    }

    /// [`TestEnv::start`] with the operator under the namespace-scoped install
    /// ([`Install::Namespaced`]).
    pub async fn namespaced(test: &str) -> Self {
        let mut env = Self::prepare(test, Install::Namespaced).await;
        env.start_operator();
        env
    }

    async fn prepare(test: &str, install: Install) -> Self {
        let client = client().await;
        install_crd(&client).await;
        let namespace = create_namespace(&client, test).await;
        let operator_client = match install {
            Install::ClusterWide => install_rbac(&client).await,
            Install::Namespaced => install_namespaced(&namespace).await,
        };
        // The RBAC authorizer sees a new binding a moment after it is written: wait until the
        // operator's identity may read what it watches.
        let allowed = eventually(TIMEOUT, || async {
            let stacks = Api::<AppStack>::namespaced(operator_client.clone(), &namespace);
            let deployments = Api::<Deployment>::namespaced(operator_client.clone(), &namespace);
            let lp = ListParams::default().limit(1);
            (stacks.list(&lp).await.is_ok() && deployments.list(&lp).await.is_ok()).then_some(())
        })
        .await;
        assert!(
            allowed.is_some(),
            "the operator ({install:?}) may list AppStacks and Deployments in {namespace}"
        );
        let metrics = Arc::new(Metrics::default());
        let ctx = Arc::new(Context::new(
            operator_client.clone(),
            metrics.clone(),
            Some(format!("test-{namespace}")),
        ));
        Self {
            client,
            operator_client,
            namespace,
            metrics,
            ctx,
            ready: Arc::new(AtomicBool::new(false)),
            operator: None,
        }
    }

    /// Start the operator (a fresh Context, the same metrics) under the shipped RBAC.
    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "operator already running");
        self.ctx = Arc::new(Context::new(
            self.operator_client.clone(),
            self.metrics.clone(),
            Some(format!("test-{}", self.namespace)),
        ));
        let scope = Scope {
            namespace: Some(self.namespace.clone()),
        };
        self.ready.store(false, Ordering::Relaxed);
        self.operator = Some(tokio::spawn(controller::run(
            self.operator_client.clone(),
            scope,
            self.ctx.clone(),
            self.ready.clone(),
        )));
    }

    pub async fn stop_operator(&mut self) {
        if let Some(handle) = self.operator.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    /// `Api` of kind K in the test namespace, with the admin client.
    pub fn api<K: Kind>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The object `name` of kind K; panics naming both when it cannot be read.
    pub async fn get<K: Kind>(&self, name: &str) -> K {
        match self.api::<K>().get_opt(name).await {
            Ok(Some(object)) => object,
            Ok(None) => panic!("{} {name} does not exist", kind_of::<K>()),
            Err(error) => panic!("reading {} {name}: {error}", kind_of::<K>()),
        }
    }

    /// The object `name` of kind K, if it exists.
    pub async fn get_opt<K: Kind>(&self, name: &str) -> Option<K> {
        self.api::<K>()
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("reading {} {name}: {e}", kind_of::<K>()))
    }

    /// Create a Service under `name` that is not the operator's (none of its labels, only
    /// `labels`): what a name clash finds.
    pub async fn create_foreign_service(&self, name: &str, labels: Value) -> Service {
        let foreign: Service = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "spec": {"ports": [{"port": 1234}], "selector": {"app": "theirs"}}
        }))
        .unwrap();
        self.api::<Service>()
            .create(&PostParams::default(), &foreign)
            .await
            .unwrap()
    }

    /// Server-side apply an AppStack manifest (YAML) into the test namespace.
    pub async fn apply_stack(&self, manifest: &str) -> Result<AppStack, kube::Error> {
        let stack: AppStack = serde_saphyr::from_str(manifest).expect("manifest parses");
        let name = stack.metadata.name.clone().expect("manifest has a name");
        let mut body = serde_json::to_value(&stack).unwrap();
        body["metadata"] = json!({"name": name});
        body.as_object_mut().unwrap().remove("status");
        self.api::<AppStack>()
            .patch(
                &name,
                &PatchParams::apply(TEST_MANAGER).force(),
                &Patch::Apply(body),
            )
            .await
    }

    /// Merge-patch the AppStack's spec; returns the patched stack (its new generation).
    pub async fn patch_spec(&self, name: &str, spec: Value) -> AppStack {
        self.api::<AppStack>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("spec patch")
    }

    /// JSON merge patch on the object `name` of kind K.
    pub async fn merge_patch<K: Kind>(&self, name: &str, patch: Value) -> K {
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("merge patch of {} {name}: {e}", kind_of::<K>()))
    }

    /// Make the operator look at the stack again (a metadata change triggers a reconcile).
    /// Returns the stack's resourceVersion after the change.
    pub async fn poke(&self, name: &str) -> String {
        let mark = Alphanumeric.sample_string(&mut rand::rng(), 8);
        self.api::<AppStack>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"annotations": {"test.appstack.dev/poke": mark}}}),
                ),
            )
            .await
            .expect("poke")
            .resource_version()
            .expect("resourceVersion")
    }

    /// Delete the stack with the given propagation (`DeleteParams::background()`,
    /// `foreground()`, `orphan()`).
    pub async fn delete_stack(&self, name: &str, params: DeleteParams) {
        self.api::<AppStack>()
            .delete(name, &params)
            .await
            .unwrap_or_else(|e| panic!("delete AppStack {name}: {e}"));
    }

    /// Drop every finalizer of the stack, as a person would when no operator runs.
    pub async fn remove_finalizers(&self, name: &str) {
        self.api::<AppStack>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await
            .unwrap_or_else(|e| panic!("remove finalizers of AppStack {name}: {e}"));
    }

    /// Rewrite the finalizers of the object `name` of kind K with `edit`, guarded by its
    /// resourceVersion and retried on conflict (others, e.g. pvc-protection, edit them too).
    /// Returns the patched object.
    pub async fn edit_finalizers<K: Kind>(
        &self,
        name: &str,
        edit: impl Fn(Vec<String>) -> Vec<String>,
    ) -> K {
        let api = self.api::<K>();
        for _ in 0..20 {
            let object = self.get::<K>(name).await;
            let finalizers = edit(object.finalizers().to_vec());
            let patch = json!({"metadata": {
                "resourceVersion": object.resource_version(),
                "finalizers": finalizers,
            }});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(patched) => return patched,
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => panic!("finalizers of {} {name}: {error}", kind_of::<K>()),
            }
        }
        panic!(
            "finalizers of {} {name}: conflict after conflict",
            kind_of::<K>()
        )
    }

    /// Wait until the most recently finished reconcile of the stack saw at least
    /// `resource_version` of it: the operator has acted on every change up to then.
    pub async fn wait_reconciled(&self, name: &str, resource_version: &str) {
        let wanted: u64 = resource_version
            .parse()
            .unwrap_or_else(|_| panic!("resourceVersion {resource_version:?} is a number"));
        let seen = eventually(TIMEOUT, || async {
            let seen = self.ctx.last_reconciled(&self.namespace, name)?;
            (seen.parse::<u64>().ok()? >= wanted).then_some(seen)
        })
        .await;
        assert!(
            seen.is_some(),
            "timed out waiting for a reconcile of {name} that saw resourceVersion {resource_version} (last reconcile saw {:?})",
            self.ctx.last_reconciled(&self.namespace, name)
        );
    }

    /// Wait until `check` holds for the object `name` of kind K.
    pub async fn wait_for<K, F>(&self, name: &str, what: &str, check: F) -> K
    where
        K: Kind,
        F: Fn(&K) -> bool,
    {
        self.wait_for_within(TIMEOUT, name, what, check).await
    }

    /// [`TestEnv::wait_for`] with another timeout.
    pub async fn wait_for_within<K, F>(
        &self,
        timeout: Duration,
        name: &str,
        what: &str,
        check: F,
    ) -> K
    where
        K: Kind,
        F: Fn(&K) -> bool,
    {
        let api = self.api::<K>();
        let outcome = eventually(timeout, || async {
            api.get_opt(name)
                .await
                .ok()
                .flatten()
                .filter(|object| check(object))
        })
        .await;
        match outcome {
            Some(object) => object,
            None => {
                let last = api.get_opt(name).await.ok().flatten();
                panic!(
                    "timed out after {timeout:?} waiting for {} {name}: {what}; last seen: {}",
                    kind_of::<K>(),
                    describe(last.as_ref())
                )
            }
        }
    }

    /// Wait until the object `name` of kind K is gone.
    pub async fn wait_gone<K: Kind>(&self, name: &str) {
        let api = self.api::<K>();
        let gone = eventually(TIMEOUT, || async {
            matches!(api.get_opt(name).await, Ok(None)).then_some(())
        })
        .await;
        if gone.is_none() {
            let last = api.get_opt(name).await.ok().flatten();
            panic!(
                "timed out waiting for {} {name} to be deleted; last seen: {}",
                kind_of::<K>(),
                describe(last.as_ref())
            );
        }
    }

    pub async fn wait_ready(&self, name: &str) -> AppStack {
        self.wait_for::<AppStack, _>(name, "Ready=True", |stack| {
            condition(stack, "Ready") == Some("True")
        })
        .await
    }

    /// Wait until the stack's status describes `generation` (status.observedGeneration).
    pub async fn wait_observed(&self, name: &str, generation: Option<i64>) -> AppStack {
        let generation = generation.expect("the stack has a generation");
        self.wait_for::<AppStack, _>(
            name,
            &format!("status.observedGeneration == {generation}"),
            |stack| observed_generation(stack) == Some(generation),
        )
        .await
    }

    /// Wait until the stack is Ready and its status describes `generation`.
    pub async fn wait_ready_at(&self, name: &str, generation: Option<i64>) -> AppStack {
        let generation = generation.expect("the stack has a generation");
        self.wait_for::<AppStack, _>(
            name,
            &format!("Ready=True and status.observedGeneration == {generation}"),
            |stack| {
                condition(stack, "Ready") == Some("True")
                    && observed_generation(stack) == Some(generation)
            },
        )
        .await
    }

    /// Metadata of every object of a child kind (Deployment, StatefulSet, Service, Secret, claim,
    /// HPA, PDB, Ingress, NetworkPolicy) in the namespace that matches `selector`, by "Kind/name".
    pub async fn children_meta(&self, selector: &str) -> BTreeMap<String, ObjectMeta> {
        let mut found = BTreeMap::new();
        self.collect::<Deployment>(selector, &mut found).await;
        self.collect::<StatefulSet>(selector, &mut found).await;
        self.collect::<Service>(selector, &mut found).await;
        self.collect::<Secret>(selector, &mut found).await;
        self.collect::<PersistentVolumeClaim>(selector, &mut found)
            .await;
        self.collect::<HorizontalPodAutoscaler>(selector, &mut found)
            .await;
        self.collect::<PodDisruptionBudget>(selector, &mut found)
            .await;
        self.collect::<Ingress>(selector, &mut found).await;
        self.collect::<NetworkPolicy>(selector, &mut found).await;
        found
    }

    /// The database workloads of the stack (`<stack>-db`): its StatefulSet and/or Deployment,
    /// whichever exist, as ("Kind/name", metadata, spec.replicas).
    pub async fn database_workloads(&self, stack: &str) -> Vec<(String, ObjectMeta, Option<i32>)> {
        let name = format!("{stack}-db");
        let mut found = Vec::new();
        if let Some(set) = self.get_opt::<StatefulSet>(&name).await {
            let replicas = set.spec.as_ref().and_then(|s| s.replicas);
            found.push((format!("StatefulSet/{name}"), set.metadata, replicas));
        }
        if let Some(deployment) = self.get_opt::<Deployment>(&name).await {
            let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
            found.push((format!("Deployment/{name}"), deployment.metadata, replicas));
        }
        found
    }

    async fn collect<K: Kind>(&self, selector: &str, found: &mut BTreeMap<String, ObjectMeta>) {
        let objects = self
            .api::<K>()
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap_or_else(|e| panic!("list {}: {e}", kind_of::<K>()));
        for object in objects {
            found.insert(
                format!("{}/{}", kind_of::<K>(), object.name_any()),
                object.meta().clone(),
            );
        }
    }

    /// Stop the operator and delete the namespace.
    pub async fn finish(mut self) {
        self.stop_operator().await;
        // Stacks carry a finalizer and no operator runs any more: drop it so the namespace goes.
        if let Ok(stacks) = self.api::<AppStack>().list(&Default::default()).await {
            for stack in stacks {
                let _ = self
                    .api::<AppStack>()
                    .patch(
                        &stack.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        // Finalizers a test put on claims would hold the namespace forever.
        if let Ok(claims) = self
            .api::<PersistentVolumeClaim>()
            .list(&Default::default())
            .await
        {
            for claim in claims {
                if claim
                    .finalizers()
                    .iter()
                    .any(|f| f.starts_with("test.appstack.dev/"))
                {
                    let kept: Vec<&String> = claim
                        .finalizers()
                        .iter()
                        .filter(|f| !f.starts_with("test.appstack.dev/"))
                        .collect();
                    let _ = self
                        .api::<PersistentVolumeClaim>()
                        .patch(
                            &claim.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"finalizers": kept}})),
                        )
                        .await;
                }
            }
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }
}

/// A fresh namespace `it-<test>-<random>` labelled for the "restricted" Pod Security Standard.
pub async fn create_namespace(client: &Client, test: &str) -> String {
    let suffix = Alphanumeric
        .sample_string(&mut rand::rng(), 5)
        .to_lowercase();
    let namespace = format!("it-{test}-{suffix}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace = serde_json::from_value(json!({
        "metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace created");
    namespace
}

/// An object for a failure message: its metadata and status, compactly.
fn describe<K: Serialize>(object: Option<&K>) -> String {
    let Some(object) = object else {
        return "nothing (it does not exist)".to_owned();
    };
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    let mut text = value.to_string();
    if text.len() > 4000 {
        let mut end = 4000;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The stack's condition `type_`.
pub fn find_condition<'a>(stack: &'a AppStack, type_: &str) -> Option<&'a Condition> {
    stack
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// Status of the stack's condition `type_`.
pub fn condition<'a>(stack: &'a AppStack, type_: &str) -> Option<&'a str> {
    find_condition(stack, type_).map(|c| c.status.as_str())
}

/// Reason of the stack's condition `type_`.
pub fn reason<'a>(stack: &'a AppStack, type_: &str) -> Option<&'a str> {
    find_condition(stack, type_).map(|c| c.reason.as_str())
}

/// Message of the stack's condition `type_`.
pub fn message<'a>(stack: &'a AppStack, type_: &str) -> Option<&'a str> {
    find_condition(stack, type_).map(|c| c.message.as_str())
}

/// `status.observedGeneration` of the stack.
pub fn observed_generation(stack: &AppStack) -> Option<i64> {
    stack.status.as_ref()?.observed_generation
}

/// The object has a controller owner reference to this stack (by UID).
pub fn controlled_by<K: Resource>(object: &K, stack: &AppStack) -> bool {
    meta_controlled_by(object.meta(), stack)
}

/// [`controlled_by`] on an object's metadata.
pub fn meta_controlled_by(meta: &ObjectMeta, stack: &AppStack) -> bool {
    meta.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true)
            && o.kind == "AppStack"
            && Some(&o.uid) == stack.metadata.uid.as_ref()
    })
}

/// The object has no owner references at all.
pub fn unowned<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .owner_references
        .as_ref()
        .is_none_or(Vec::is_empty)
}

/// The object is being deleted (it has a deletionTimestamp).
pub fn terminating<K: Resource>(object: &K) -> bool {
    object.meta().deletion_timestamp.is_some()
}

/// The generated password of a credentials Secret.
pub fn password(secret: &Secret) -> Vec<u8> {
    secret
        .data
        .as_ref()
        .and_then(|data| data.get("password"))
        .unwrap_or_else(|| panic!("Secret {} has a password", secret.name_any()))
        .0
        .clone()
}

/// The Deployment finished rolling out its current template and every pod is ready.
pub fn rolled_out(deployment: &Deployment) -> bool {
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(status) = deployment.status.as_ref() else {
        return false;
    };
    status.observed_generation == deployment.metadata.generation
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.ready_replicas.unwrap_or(0) == wanted
        && status.available_replicas.unwrap_or(0) == wanted
        && status.replicas.unwrap_or(0) == wanted
}

/// Poll `probe` every 250 ms until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, probe: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `resourceVersion` of every object in `names`, by "Kind/name".
pub type Versions = BTreeMap<String, String>;

/// `resourceVersion` of every managed child in the test namespace, by "Kind/name".
pub async fn versions(env: &TestEnv) -> Versions {
    let versions: Versions = env
        .children_meta(MANAGED)
        .await
        .into_iter()
        .map(|(key, meta)| (key, meta.resource_version.unwrap_or_default()))
        .collect();
    assert!(!versions.is_empty(), "found no managed children");
    versions
}

/// Sum of every sample of the metric family `prefix` in the Prometheus text `text`.
pub fn metric_sum(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub fn reconcile_count(text: &str) -> u64 {
    metric_sum(text, "appstack_reconciles_total")
}

pub fn child_writes(text: &str) -> u64 {
    metric_sum(text, "appstack_child_writes_total")
}

/// The example stack with a given name.
pub fn books(name: &str) -> String {
    std::fs::read_to_string(repo().join("examples/books.yaml"))
        .expect("examples/books.yaml")
        .replace("name: books\n", &format!("name: {name}\n"))
}

/// A small stack without autoscaling or ingress.
pub fn small_stack(name: &str, extra_database: &str) -> String {
    format!(
        "apiVersion: appstack.dev/v1alpha1
kind: AppStack
metadata:
  name: {name}
spec:
  api: {{image: registry.example.com/api:1}}
  frontend: {{image: registry.example.com/web:1}}
  database: {{{extra_database}}}
"
    )
}
