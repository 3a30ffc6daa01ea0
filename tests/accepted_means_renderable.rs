//! Property test: every AppStack spec the API server accepts is one the offline `validate`
//! accepts and whose children the API server accepts too (server-side dry-run, Pod Security
//! included); every spec the server refuses is refused offline. No 5xx, no panic.
//!
//! The specs come from proptest strategies driven by a fixed seed and a fixed budget
//! (`APPSTACK_PROPTEST_CASES`, default 300). The cases in `tests/regressions/specs.jsonl` (one
//! spec as JSON per line) are checked first on every run; a generated case that fails is appended
//! there, so it stays a regression case.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use appstack_operator::crd::AppStack;
use appstack_operator::plan::child::{Existing, Object};
use appstack_operator::plan::{Step, plan};
use appstack_operator::validate::validate;
use common::TestEnv;
use futures::{FutureExt, StreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use proptest::collection::vec;
use proptest::option::weighted;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::{Map, Value, json};

/// The seed of every run: the same specs each time.
const SEED: [u8; 32] = *b"appstack-operator accepted-means";
const DEFAULT_CASES: u32 = 300;
/// How often a field takes one of its valid values rather than an invalid one.
const VALID_WEIGHT: u32 = 20;
/// The name of every generated stack.
const STACK: &str = "gen";
/// Used when the dry-run create returns no UID.
const FIXED_UID: &str = "6f1c2a5e-0b7d-4e55-9a43-3c1e2f0d9a10";
/// Requests in flight at once while dry-running one spec's children.
const CONCURRENCY: usize = 4;

fn regressions_file() -> PathBuf {
    common::repo().join("tests/regressions/specs.jsonl")
}

// ---------------------------------------------------------------------------------------------
// The generator.

/// One of `valid` mostly, one of `invalid` sometimes.
fn one_of(valid: Vec<Value>, invalid: Vec<Value>) -> BoxedStrategy<Value> {
    if invalid.is_empty() {
        return select(valid).boxed();
    }
    prop_oneof![VALID_WEIGHT => select(valid), 1 => select(invalid)].boxed()
}

fn strings(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

fn required(strategy: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    strategy.prop_map(Some).boxed()
}

/// Present with probability `p`, else left out.
fn optional(p: f64, strategy: BoxedStrategy<Value>) -> BoxedStrategy<Option<Value>> {
    weighted(p, strategy).boxed()
}

/// A JSON object with the fields that are present.
fn object(fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>) -> BoxedStrategy<Value> {
    let (keys, strategies): (Vec<&'static str>, Vec<_>) = fields.into_iter().unzip();
    strategies
        .prop_map(move |values| {
            let map: Map<String, Value> = keys
                .iter()
                .zip(values)
                .filter_map(|(key, value)| Some(((*key).to_owned(), value?)))
                .collect();
            Value::Object(map)
        })
        .boxed()
}

/// Replica counts and autoscaler bounds around the limits.
fn count(values: &[i64], invalid: &[i64]) -> BoxedStrategy<Value> {
    one_of(
        values.iter().map(|v| json!(v)).collect(),
        invalid.iter().map(|v| json!(v)).collect(),
    )
}

fn autoscaling() -> BoxedStrategy<Value> {
    object(vec![
        (
            "minReplicas",
            optional(0.8, count(&[1, 2, 5, 100], &[0, 101])),
        ),
        ("maxReplicas", required(count(&[1, 2, 5, 100], &[0, 101]))),
        (
            "targetCPUUtilizationPercentage",
            optional(0.5, count(&[1, 2, 5, 100], &[0, 101])),
        ),
    ])
}

/// Env lists: none mostly; names repeat now and then, and the API's may clash with the
/// generated variables.
fn env(names: Vec<Value>, clashing: Vec<Value>) -> BoxedStrategy<Value> {
    let entry = one_of(names, clashing).prop_map(|name| json!({"name": name, "value": "1"}));
    prop_oneof![3 => Just(json!([])), 1 => vec(entry, 1..=3).prop_map(Value::Array)].boxed()
}

/// Requests and limits: sensible ones (ephemeral storage named or left to the defaults), or a
/// request above its limit.
fn resources() -> BoxedStrategy<Value> {
    one_of(
        vec![
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}),
            json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
            json!({"requests": {"ephemeral-storage": "10Mi"}}),
            json!({"requests": {"cpu": "1"}, "limits": {"ephemeral-storage": "2Gi"}}),
        ],
        vec![
            json!({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}),
            json!({"requests": {"ephemeral-storage": "2Gi"}, "limits": {"ephemeral-storage": "1Gi"}}),
        ],
    )
}

/// The root filesystem setting, mostly left to its default.
fn read_only_root() -> BoxedStrategy<Option<Value>> {
    optional(0.2, select(vec![json!(true), json!(false)]).boxed())
}

fn tier(image: &str, api: bool) -> BoxedStrategy<Value> {
    let ports = count(&[1, 5000, 65535], &[0, 65536]);
    let env = if api {
        env(
            strings(&["A", "B", "LOG_LEVEL"]),
            strings(&["DATABASE_URL", "DB_PASSWORD", "A=B", ""]),
        )
    } else {
        env(strings(&["A", "B", "DATABASE_URL"]), strings(&["A=B", ""]))
    };
    let mut fields = vec![
        (
            "image",
            required(one_of(strings(&[image]), strings(&["", " "]))),
        ),
        ("replicas", optional(0.5, count(&[0, 1, 2, 3, 4], &[-1]))),
        ("port", optional(0.4, ports)),
        (
            "healthPath",
            optional(
                0.4,
                one_of(strings(&["/", "/health"]), strings(&["health"])),
            ),
        ),
        ("autoscaling", optional(0.25, autoscaling())),
        ("env", required(env)),
        ("resources", optional(0.15, resources())),
        ("readOnlyRootFilesystem", read_only_root()),
        (
            "serviceType",
            optional(
                0.3,
                one_of(strings(&["ClusterIP", "NodePort", "LoadBalancer"]), vec![]),
            ),
        ),
    ];
    if api {
        fields.push((
            "command",
            optional(
                0.2,
                Just(json!(["gunicorn", "-b", "0.0.0.0:5000", "app:app"])).boxed(),
            ),
        ));
    }
    object(fields)
}

fn identifier() -> BoxedStrategy<Value> {
    let long = "d".repeat(64);
    one_of(
        strings(&["books", "my-books_2", "_x"]),
        strings(&["1db", "a b", "x@y", &long]),
    )
}

fn database() -> BoxedStrategy<Value> {
    let storage = object(vec![
        (
            "size",
            optional(
                0.7,
                one_of(
                    strings(&["1Gi", "500Mi", "1.5Gi"]),
                    strings(&["0", "-1Gi", "lots", "0.5"]),
                ),
            ),
        ),
        (
            "storageClassName",
            optional(0.2, one_of(strings(&["standard"]), strings(&["Fast_SSD"]))),
        ),
    ]);
    object(vec![
        (
            "image",
            optional(0.2, one_of(strings(&["postgres:16"]), strings(&["", " "]))),
        ),
        ("name", optional(0.4, identifier())),
        ("user", optional(0.4, identifier())),
        ("storage", optional(0.5, storage)),
        (
            "existingSecret",
            optional(0.25, one_of(strings(&["vault-db"]), strings(&["Vault_DB"]))),
        ),
        ("resources", optional(0.15, resources())),
        ("readOnlyRootFilesystem", read_only_root()),
        (
            "retainOnDelete",
            optional(0.2, select(vec![json!(true), json!(false)]).boxed()),
        ),
    ])
}

fn ingress() -> BoxedStrategy<Value> {
    let long_label = format!("{}.example.com", "h".repeat(64));
    let tls = object(vec![(
        "secretName",
        required(one_of(strings(&["books-tls"]), strings(&["Bad"]))),
    )]);
    object(vec![
        (
            "host",
            required(one_of(
                strings(&["books.example.com", "a.b"]),
                strings(&["*.example.com", "Bad_Host", &long_label]),
            )),
        ),
        (
            "apiPath",
            optional(0.4, one_of(strings(&["/api"]), strings(&["api", "/"]))),
        ),
        ("tls", optional(0.3, tls)),
        (
            "className",
            optional(0.3, one_of(strings(&["nginx"]), strings(&["Bad_Class"]))),
        ),
        (
            "controllerNamespace",
            optional(
                0.2,
                one_of(
                    strings(&["traefik", "kube-system"]),
                    strings(&["Ingress_NGINX", "-x", ""]),
                ),
            ),
        ),
        (
            "controllerPodLabels",
            optional(
                0.2,
                one_of(
                    vec![
                        json!({}),
                        json!({"app.kubernetes.io/name": "ingress-nginx", "tier": ""}),
                    ],
                    vec![
                        json!({"a b": "x"}),
                        json!({"Bad.Prefix/name": "x"}),
                        json!({"app": "-x"}),
                        json!({"app": "v".repeat(64)}),
                    ],
                ),
            ),
        ),
    ])
}

fn spec() -> BoxedStrategy<Value> {
    object(vec![
        ("api", required(tier("registry.example.com/api:1", true))),
        (
            "frontend",
            required(tier("registry.example.com/web:1", false)),
        ),
        ("database", optional(0.7, database())),
        ("ingress", optional(0.5, ingress())),
        (
            "networkPolicy",
            optional(0.2, select(vec![json!(true), json!(false)]).boxed()),
        ),
    ])
}

// ---------------------------------------------------------------------------------------------
// One case.

#[derive(Default)]
struct Counts {
    tried: Cell<usize>,
    accepted: Cell<usize>,
    children: Cell<usize>,
    pods: Cell<usize>,
}

fn bump(cell: &Cell<usize>, by: usize) {
    cell.set(cell.get() + by);
}

struct Ctx {
    client: Client,
    namespace: String,
    counts: Counts,
}

fn pretty(spec: &Value) -> String {
    serde_json::to_string_pretty(spec).unwrap_or_else(|_| spec.to_string())
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Check one spec; `Err` says what is wrong with it.
async fn check(ctx: &Ctx, spec: &Value) -> Result<(), String> {
    bump(&ctx.counts.tried, 1);
    let manifest = json!({
        "apiVersion": "appstack.dev/v1alpha1",
        "kind": "AppStack",
        "metadata": {"name": STACK, "namespace": ctx.namespace},
        "spec": spec,
    });

    // 1. The API server's verdict.
    let stacks: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &ApiResource::erase::<AppStack>(&()),
    );
    let body: DynamicObject =
        serde_json::from_value(manifest.clone()).map_err(|e| format!("not an object: {e}"))?;
    let dry_run = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let server = match stacks.create(&dry_run, &body).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if (400..500).contains(&status.code) => {
            Err(status.message.clone())
        }
        Err(error) => {
            return Err(format!(
                "the dry-run create of the AppStack failed with neither acceptance nor a 4xx refusal: {error}"
            ));
        }
    };

    // 2. The offline verdict, on the same object.
    let mut stack: AppStack = serde_json::from_value(manifest)
        .map_err(|e| format!("the spec does not deserialize into an AppStack: {e}"))?;
    let uid = server
        .as_ref()
        .ok()
        .and_then(|created| created.metadata.uid.clone())
        .unwrap_or_else(|| FIXED_UID.to_owned());
    stack.metadata.uid = Some(uid.clone());
    let offline = catch_unwind(AssertUnwindSafe(|| validate(&stack)))
        .map_err(|p| format!("validate panicked: {}", panic_text(p)))?;
    let created = match (server, offline) {
        (Ok(created), Ok(_)) => created,
        (Err(_), Err(_)) => return Ok(()),
        (server, offline) => {
            let server = match server {
                Ok(_) => "accepted".to_owned(),
                Err(message) => format!("refused: {message}"),
            };
            let offline = match offline {
                Ok(_) => "Ok".to_owned(),
                Err(problems) => format!("Err: {problems}"),
            };
            return Err(format!(
                "the API server and validate() disagree\n  server:   {server}\n  validate: {offline}"
            ));
        }
    };
    bump(&ctx.counts.accepted, 1);

    // 3. The children, as the operator would build them from the stored (defaulted) object.
    let mut stored: AppStack = serde_json::from_value(
        serde_json::to_value(&created).map_err(|e| format!("serialize: {e}"))?,
    )
    .map_err(|e| format!("the stored AppStack does not deserialize: {e}"))?;
    stored.metadata.uid.get_or_insert(uid);
    stored
        .metadata
        .namespace
        .get_or_insert_with(|| ctx.namespace.clone());
    let valid = catch_unwind(AssertUnwindSafe(|| validate(&stored)))
        .map_err(|p| format!("validate panicked on the stored object: {}", panic_text(p)))?
        .map_err(|e| format!("validate refuses the object the server stored: {e}"))?;
    let existing = Existing {
        existing_secret: valid.database.existing_secret.as_ref().map(|name| Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                ("username".to_owned(), ByteString(b"app".to_vec())),
                ("password".to_owned(), ByteString(b"from-vault".to_vec())),
            ])),
            ..Secret::default()
        }),
        ..Existing::default()
    };
    let planned = catch_unwind(AssertUnwindSafe(|| {
        plan(&valid, &existing, "pw", &Time(jiff::Timestamp::now()))
    }))
    .map_err(|p| format!("plan panicked: {}", panic_text(p)))?;
    if let Some(hold) = &planned.hold {
        return Err(format!("a fresh stack is held: {hold:?}"));
    }
    let objects: Vec<Object> = planned
        .steps
        .into_iter()
        .filter_map(|step| match step {
            Step::Apply { object, .. } => Some(object),
            _ => None,
        })
        .collect();
    if objects.is_empty() {
        return Err("the plan applies nothing".to_owned());
    }
    let mut requests = Vec::new();
    for object in &objects {
        requests.push(dry_run_child(ctx, object.clone()).boxed_local());
        if let Some(pod) = pod_of(object) {
            requests.push(dry_run_pod(ctx, pod).boxed_local());
        }
    }
    let results: Vec<Result<bool, String>> = futures::stream::iter(requests)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut refused = Vec::new();
    for result in results {
        match result {
            Ok(true) => bump(&ctx.counts.pods, 1),
            Ok(false) => bump(&ctx.counts.children, 1),
            Err(message) => refused.push(message),
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        refused.sort();
        Err(format!(
            "the server accepts the AppStack but refuses its children:\n  {}",
            refused.join("\n  ")
        ))
    }
}

/// Server-side apply dry-run of one child. `Ok(false)`: accepted.
async fn dry_run_child(ctx: &Ctx, object: Object) -> Result<bool, String> {
    let slot = object.slot();
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ctx.namespace,
        &object.kind().api_resource(),
    );
    api.patch(
        &slot.name,
        &PatchParams::apply("proptest").dry_run(),
        &Patch::Apply(object.to_value()),
    )
    .await
    .map(|_| false)
    .map_err(|e| format!("{slot}: {}", error_text(e)))
}

/// A Pod made from a workload's template: the namespace enforces the restricted Pod Security
/// Standard on Pods only, so the template is dry-run as a Pod to be judged.
fn pod_of(object: &Object) -> Option<(String, Value)> {
    let value = object.to_value();
    if !matches!(object, Object::Deployment(_) | Object::StatefulSet(_)) {
        return None;
    }
    let name = format!("{}-probe", object.slot().name);
    let template = &value["spec"]["template"];
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    });
    Some((
        format!(
            "{} {} (its pod template)",
            object.kind().name(),
            object.slot().name
        ),
        pod,
    ))
}

/// Dry-run create of a Pod. `Ok(true)`: admitted.
async fn dry_run_pod(ctx: &Ctx, (what, pod): (String, Value)) -> Result<bool, String> {
    let pod: Pod = serde_json::from_value(pod).map_err(|e| format!("{what}: {e}"))?;
    Api::<Pod>::namespaced(ctx.client.clone(), &ctx.namespace)
        .create(
            &PostParams {
                dry_run: true,
                field_manager: None,
            },
            &pod,
        )
        .await
        .map(|_| true)
        .map_err(|e| format!("{what}: {}", error_text(e)))
}

fn error_text(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------

fn read_regressions() -> Vec<Value> {
    let text = std::fs::read_to_string(regressions_file()).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "tests/regressions/specs.jsonl, spec {}: not JSON: {e}",
                    index + 1
                )
            })
        })
        .collect()
}

/// Keep a failing spec as a regression case; true when it was added now.
fn keep_as_regression(spec: &Value) -> bool {
    if read_regressions().contains(spec) {
        return false;
    }
    let path = regressions_file();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    writeln!(file, "{spec}").unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
    true
}

fn cases() -> u32 {
    match std::env::var("APPSTACK_PROPTEST_CASES") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("APPSTACK_PROPTEST_CASES={text:?} is not a number")),
        Err(_) => DEFAULT_CASES,
    }
}

#[test]
fn every_accepted_spec_renders_children_the_server_accepts() {
    let strategy = spec();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let env = runtime.block_on(TestEnv::without_operator("proptest"));
    let ctx = Ctx {
        client: env.client.clone(),
        namespace: env.namespace.clone(),
        counts: Counts::default(),
    };

    // The regression cases first.
    let mut failures = Vec::new();
    for (index, spec) in read_regressions().iter().enumerate() {
        if let Err(problem) = runtime.block_on(check(&ctx, spec)) {
            failures.push(format!(
                "regression case {} of tests/regressions/specs.jsonl:\n{problem}\nspec: {}",
                index + 1,
                pretty(spec)
            ));
        }
    }
    let regressions = ctx.counts.tried.get();

    // Then the generated ones, with a fixed seed.
    let config = Config {
        cases: cases(),
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    let outcome = runner.run(&strategy, |spec| {
        runtime
            .block_on(check(&ctx, &spec))
            .map_err(TestCaseError::fail)
    });
    match outcome {
        Ok(()) => {}
        Err(TestError::Fail(reason, spec)) => {
            let kept = if keep_as_regression(&spec) {
                "appended to tests/regressions/specs.jsonl, so every later run checks it first"
            } else {
                "already in tests/regressions/specs.jsonl"
            };
            failures.push(format!(
                "generated case (shrunk; {kept}):\n{reason}\nspec: {}",
                pretty(&spec)
            ));
        }
        Err(TestError::Abort(reason)) => failures.push(format!("proptest aborted: {reason}")),
    }

    let (tried, accepted, children, pods) = (
        ctx.counts.tried.get(),
        ctx.counts.accepted.get(),
        ctx.counts.children.get(),
        ctx.counts.pods.get(),
    );
    println!(
        "accepted-means-renderable: {tried} specs tried, {accepted} accepted by the server, {children} children dry-run"
    );
    println!(
        "accepted-means-renderable: {regressions} of them regression cases; {pods} pod templates dry-run as Pods"
    );
    runtime.block_on(env.finish());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(tried > 0, "no spec was tried");
    assert!(
        0 < accepted && accepted < tried,
        "the generator must make specs the server accepts and specs it refuses: {accepted} of {tried} accepted"
    );
}
