//! Harness for the integration tests: a real API server (started by `tests/cluster/up.sh`), one
//! namespace per test, and the operator running in-process, watching only that namespace, so the
//! tests run in parallel without seeing each other.

#![allow(dead_code)] // each test binary uses a different part of the harness

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
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, CustomResourceExt, Resource};
use rand::distr::{Alphanumeric, SampleString};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::task::JoinHandle;

pub const TIMEOUT: Duration = Duration::from_secs(90);
const TEST_MANAGER: &str = "integration-test";

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

pub async fn client() -> Client {
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig readable"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig valid");
    Client::try_from(config).expect("client")
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

pub struct TestEnv {
    pub client: Client,
    pub namespace: String,
    pub metrics: Arc<Metrics>,
    /// What the operator's /readyz reports.
    pub ready: Arc<AtomicBool>,
    operator: Option<JoinHandle<()>>,
}

impl TestEnv {
    /// A fresh namespace labelled for the "restricted" Pod Security Standard, the CRD, and a
    /// running operator watching that namespace.
    pub async fn start(test: &str) -> Self {
        let mut env = Self::without_operator(test).await;
        env.start_operator();
        env
    }

    pub async fn without_operator(test: &str) -> Self {
        let client = client().await;
        install_crd(&client).await;
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
        Self {
            client,
            namespace,
            metrics: Arc::new(Metrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
            operator: None,
        }
    }

    pub fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "operator already running");
        let ctx = Arc::new(Context::new(
            self.client.clone(),
            self.metrics.clone(),
            Some(format!("test-{}", self.namespace)),
        ));
        let scope = Scope {
            namespace: Some(self.namespace.clone()),
        };
        self.ready.store(false, Ordering::Relaxed);
        self.operator = Some(tokio::spawn(controller::run(
            self.client.clone(),
            scope,
            ctx,
            self.ready.clone(),
        )));
    }

    pub async fn stop_operator(&mut self) {
        if let Some(handle) = self.operator.take() {
            handle.abort();
            let _ = handle.await;
        }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
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

    /// Merge-patch the AppStack's spec.
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) -> AppStack {
        self.api::<AppStack>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": spec})),
            )
            .await
            .expect("spec patch")
    }

    /// Make the operator look at the stack again (a metadata change triggers a reconcile).
    pub async fn poke(&self, name: &str) {
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
            .expect("poke");
    }

    /// Wait until `check` holds for the object `name` of kind K.
    pub async fn wait_for<K, F>(&self, name: &str, what: &str, check: F) -> K
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug
            + Send
            + 'static,
        F: Fn(&K) -> bool,
    {
        let api = self.api::<K>();
        let outcome = eventually(TIMEOUT, || async {
            api.get_opt(name)
                .await
                .ok()
                .flatten()
                .filter(|object| check(object))
        })
        .await;
        outcome.unwrap_or_else(|| panic!("timed out waiting for {name}: {what}"))
    }

    /// Wait until the object `name` of kind K is gone.
    pub async fn wait_gone<K>(&self, name: &str)
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api = self.api::<K>();
        let gone = eventually(TIMEOUT, || async {
            matches!(api.get_opt(name).await, Ok(None)).then_some(())
        })
        .await;
        assert!(gone.is_some(), "timed out waiting for {name} to be deleted");
    }

    pub async fn wait_ready(&self, name: &str) -> AppStack {
        self.wait_for::<AppStack, _>(name, "Ready=True", |stack| {
            condition(stack, "Ready") == Some("True")
        })
        .await
    }

    /// Stop the operator and delete the namespace.
    pub async fn finish(mut self) {
        self.stop_operator().await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        // Stacks carry a finalizer and no operator runs any more: drop it so the namespace goes.
        if let Ok(stacks) = self.api::<AppStack>().list(&Default::default()).await {
            for stack in stacks {
                let name = stack.metadata.name.unwrap_or_default();
                let _ = self
                    .api::<AppStack>()
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
        }
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }
}

fn find_condition<'a>(stack: &'a AppStack, type_: &str) -> Option<&'a Condition> {
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
