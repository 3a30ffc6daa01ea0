//! The namespace-scoped install (`deploy/namespaced/`): the operator under a Role in the one
//! namespace it watches, and nothing at cluster scope.
//!
//! Needs the local control plane and its kubectl on PATH: `tests/cluster/up.sh`, then
//! `source target/cluster/env`.

mod common;

use appstack_operator::crd::AppStack;
use common::{TestEnv, create_namespace, small_stack};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The request fails with 403 Forbidden.
fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespaced_operator_runs_its_namespace_and_reads_no_other() {
    let env = TestEnv::namespaced("scoped").await;
    env.apply_stack(&small_stack("shop", "")).await.unwrap();
    env.wait_ready("shop").await;
    env.get::<StatefulSet>("shop-db").await;
    env.get::<Deployment>("shop-api").await;
    env.get::<Secret>("shop-db-credentials").await;

    // A Secret in another namespace is out of the operator's reach, and so is anything listed
    // across namespaces.
    let other = create_namespace(&env.client, "scoped-other").await;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "private"},
        "stringData": {"password": "not-for-the-operator"},
    }))
    .unwrap();
    Api::<Secret>::namespaced(env.client.clone(), &other)
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret in the other namespace");
    let operator: &Client = &env.operator_client;
    let elsewhere = Api::<Secret>::namespaced(operator.clone(), &other);
    assert!(
        forbidden(elsewhere.get("private").await),
        "the operator read a Secret in {other}"
    );
    assert!(forbidden(elsewhere.list(&ListParams::default()).await));
    let everywhere = ListParams::default().limit(1);
    assert!(forbidden(
        Api::<Secret>::all(operator.clone()).list(&everywhere).await
    ));
    assert!(forbidden(
        Api::<AppStack>::all(operator.clone())
            .list(&everywhere)
            .await
    ));
    // Its own namespace it may read: the same call there succeeds.
    Api::<Secret>::namespaced(operator.clone(), &env.namespace)
        .get("shop-db-credentials")
        .await
        .expect("the operator reads Secrets in its own namespace");

    let _ = Api::<Namespace>::all(env.client.clone())
        .delete(&other, &DeleteParams::background())
        .await;
    env.finish().await;
}
