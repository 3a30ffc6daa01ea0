//! NetworkPolicies `<stack>-db` and `<stack>-api` against a real API server: they exist by
//! default, select the stack's real pods, follow the Ingress controller settings, and go when
//! `networkPolicy: false` (and come back). The local control plane has no NetworkPolicy
//! enforcement (neither KWOK nor the real node runs a policy controller): these tests check the
//! objects, not the packets.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use common::{TestEnv, books, controlled_by};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::json;

/// A label selector as `kubectl get -l` takes it.
fn selector_string(selector: &LabelSelector) -> String {
    let labels = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(key, value)| format!("{key}={value}"));
    let expressions = selector.match_expressions.iter().flatten().map(|e| {
        assert_eq!(e.operator, "In", "only In is used");
        format!(
            "{} in ({})",
            e.key,
            e.values.clone().unwrap_or_default().join(",")
        )
    });
    labels.chain(expressions).collect::<Vec<_>>().join(",")
}

/// The components (`app.kubernetes.io/component`) of the test namespace's pods that `selector`
/// selects, sorted.
async fn selected_components(env: &TestEnv, selector: &LabelSelector) -> Vec<String> {
    let pods = env
        .api::<Pod>()
        .list(&ListParams::default().labels(&selector_string(selector)))
        .await
        .expect("pods list");
    let mut components: Vec<String> = pods
        .iter()
        .filter_map(|pod| pod.labels().get("app.kubernetes.io/component").cloned())
        .collect();
    components.sort();
    components.dedup();
    components
}

/// The single ingress rule's sources and port.
fn rule(policy: &NetworkPolicy) -> (Option<Vec<NetworkPolicyPeer>>, Option<IntOrString>) {
    let spec = policy.spec.as_ref().expect("spec");
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".into()][..]));
    let rules = spec.ingress.as_ref().expect("ingress rules");
    assert_eq!(rules.len(), 1, "{rules:?}");
    let port = rules[0]
        .ports
        .as_ref()
        .and_then(|p| p.first()?.port.clone());
    (rules[0].from.clone(), port)
}

fn controller_namespace(peer: &NetworkPolicyPeer) -> Option<String> {
    peer.namespace_selector
        .as_ref()?
        .match_labels
        .as_ref()?
        .get("kubernetes.io/metadata.name")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_policies_admit_only_the_stack_and_go_when_switched_off() {
    let env = TestEnv::start("netpol").await;
    env.apply_stack(&books("books"))
        .await
        .expect("example applies");
    let stack = env.wait_ready("books").await;

    let database = env.get::<NetworkPolicy>("books-db").await;
    assert!(controlled_by(&database, &stack), "owned by the stack");
    let selected = database
        .spec
        .as_ref()
        .unwrap()
        .pod_selector
        .clone()
        .unwrap();
    assert_eq!(
        selected_components(&env, &selected).await,
        ["database"],
        "the policy applies to the database pod"
    );
    let (sources, port) = rule(&database);
    assert_eq!(port, Some(IntOrString::Int(5432)));
    let sources = sources.expect("sources are listed");
    assert_eq!(sources.len(), 1);
    assert_eq!(
        selected_components(&env, sources[0].pod_selector.as_ref().unwrap()).await,
        ["api", "migrations"],
        "of the stack's pods, the API's and the migration Job's (the example has api.migrations) reach the database"
    );

    let api = env.get::<NetworkPolicy>("books-api").await;
    assert!(controlled_by(&api, &stack));
    let selected = api.spec.as_ref().unwrap().pod_selector.clone().unwrap();
    assert_eq!(selected_components(&env, &selected).await, ["api"]);
    let (sources, port) = rule(&api);
    assert_eq!(port, Some(IntOrString::Int(5000)));
    let sources = sources.expect("sources are listed");
    assert_eq!(
        selected_components(&env, sources[0].pod_selector.as_ref().unwrap()).await,
        ["frontend"]
    );
    assert_eq!(
        controller_namespace(&sources[1]).as_deref(),
        Some("ingress-nginx"),
        "the documented default"
    );

    // Another Ingress controller.
    env.patch_spec(
        "books",
        json!({"ingress": {"controllerNamespace": "traefik", "controllerPodLabels": {"app.kubernetes.io/name": "traefik"}}}),
    )
    .await;
    env.wait_for::<NetworkPolicy, _>("books-api", "admits traefik", |p| {
        rule(p)
            .0
            .and_then(|sources| controller_namespace(sources.get(1)?))
            .as_deref()
            == Some("traefik")
    })
    .await;

    // Switched off: both go; the stack stays Ready.
    let off = env
        .patch_spec("books", json!({"networkPolicy": false}))
        .await;
    env.wait_gone::<NetworkPolicy>("books-db").await;
    env.wait_gone::<NetworkPolicy>("books-api").await;
    env.wait_ready_at("books", off.metadata.generation).await;

    // And back.
    let on = env
        .patch_spec("books", json!({"networkPolicy": true}))
        .await;
    env.wait_ready_at("books", on.metadata.generation).await;
    let stack = env.get::<appstack_operator::crd::AppStack>("books").await;
    for name in ["books-db", "books-api"] {
        let policy = env.get::<NetworkPolicy>(name).await;
        assert!(controlled_by(&policy, &stack), "{name} back and owned");
    }
    env.finish().await;
}
