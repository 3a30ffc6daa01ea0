//! The operator against a real API server: each test has its own namespace (labelled for the
//! "restricted" Pod Security Standard) and its own in-process operator.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use appstack_operator::crd::{AppStack, Phase};
use common::{
    TIMEOUT, TestEnv, books, child_writes, condition, controlled_by, eventually, message,
    meta_controlled_by, password, reason, small_stack, unowned, versions,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_stack_becomes_ready_with_every_child_owned_and_pods_admitted() {
    let env = TestEnv::start("example").await;
    // /readyz turns ok once the AppStack cache has synced, before any stack exists.
    let ready = eventually(TIMEOUT, || async {
        env.ready.load(Ordering::Relaxed).then_some(())
    })
    .await;
    assert!(ready.is_some(), "operator ready within {TIMEOUT:?}");
    env.apply_stack(&books("books"))
        .await
        .expect("example applies");
    let stack = env.wait_ready("books").await;
    let status = stack.status.as_ref().unwrap();
    assert_eq!(status.phase, Some(Phase::Ready));
    assert_eq!(status.url.as_deref(), Some("http://books.example.com"));
    assert_eq!(status.observed_generation, stack.metadata.generation);
    for kstatus in ["Reconciling", "Stalled"] {
        assert_eq!(condition(&stack, kstatus), Some("False"), "{kstatus}");
    }

    for name in ["books-api", "books-frontend"] {
        let deployment = env.get::<Deployment>(name).await;
        assert!(controlled_by(&deployment, &stack), "{name} owned");
    }
    // The database runs as a Deployment or a StatefulSet, whichever the operator uses.
    let database = env.database_workloads("books").await;
    assert!(!database.is_empty(), "a database workload books-db");
    for (key, meta, _) in &database {
        assert!(meta_controlled_by(meta, &stack), "{key} owned");
    }
    for name in ["books-db", "books-api", "books-frontend"] {
        let service = env.get::<Service>(name).await;
        assert!(controlled_by(&service, &stack), "service {name} owned");
    }
    let hpa = env.get::<HorizontalPodAutoscaler>("books-api").await;
    assert!(controlled_by(&hpa, &stack));
    let ingress = env.get::<Ingress>("books").await;
    assert!(controlled_by(&ingress, &stack));
    env.get::<PodDisruptionBudget>("books-frontend").await;

    // Data-bearing objects are retained by default: no owner reference.
    let secret = env.get::<Secret>("books-db-credentials").await;
    let claim = env.get::<PersistentVolumeClaim>("books-db-data").await;
    assert!(secret.owner_references().is_empty() && claim.owner_references().is_empty());
    assert_eq!(password(&secret).len(), 32);
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Bound"));

    // The namespace enforces "restricted": pods that exist were admitted by Pod Security.
    let pods = env.api::<Pod>().list(&ListParams::default()).await.unwrap();
    for component in ["database", "api", "frontend"] {
        assert!(
            pods.iter().any(|p| p
                .labels()
                .get("app.kubernetes.io/component")
                .map(String::as_str)
                == Some(component)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")),
            "a running {component} pod in a restricted namespace"
        );
    }
    // The autoscaler owns replicas; the operator started the Deployment at minReplicas.
    let api = env.get::<Deployment>("books-api").await;
    assert_eq!(api.spec.unwrap().replicas, Some(2));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_stacks_are_rejected_at_apply_time_naming_the_field() {
    let env = TestEnv::without_operator("invalid").await;
    let cases = [
        (
            "api: {image: a, autoscaling: {minReplicas: 5, maxReplicas: 2}}",
            "minReplicas",
        ),
        ("api: {image: a, replicas: -1}", "spec.api.replicas"),
        ("api: {image: a, port: 70000}", "spec.api.port"),
        ("api: {image: ''}", "spec.api.image"),
        ("api: {image: a, healthPath: health}", "healthPath"),
    ];
    for (api, field) in cases {
        let manifest = format!(
            "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {{name: bad}}\nspec:\n  {api}\n  frontend: {{image: f}}\n"
        );
        let error = env.apply_stack(&manifest).await.expect_err(api).to_string();
        assert!(error.contains(field), "{api}: {error}");
    }
    // The message names the field once (in the path) and says what is wrong.
    let ingress_cases: [(&str, &[&str]); 3] = [
        ("{host: Bad_Host}", &["spec.ingress.host"]),
        (
            "{host: books.example.com, apiPath: api}",
            &["spec.ingress.apiPath", "must start with '/'"],
        ),
        (
            "{host: books.example.com, apiPath: /}",
            &["spec.ingress.apiPath", "must not be '/'"],
        ),
    ];
    for (ingress, expected) in ingress_cases {
        let manifest = format!(
            "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {{name: bad}}\nspec:\n  api: {{image: a}}\n  frontend: {{image: f}}\n  ingress: {ingress}\n"
        );
        let error = env
            .apply_stack(&manifest)
            .await
            .expect_err(ingress)
            .to_string();
        for text in expected {
            assert!(error.contains(text), "{ingress}: {text} in {error}");
        }
    }
    let long_name = small_stack(&"x".repeat(55), "");
    let error = env
        .apply_stack(&long_name)
        .await
        .expect_err("long name")
        .to_string();
    assert!(error.contains("metadata.name"), "{error}");

    // Transition rules: a volume may grow, never shrink; the class is fixed once created.
    env.apply_stack(&small_stack("sized", "storage: {size: 2Gi}"))
        .await
        .expect("valid stack");
    let grow = env
        .apply_stack(&small_stack("sized", "storage: {size: 3Gi}"))
        .await;
    assert!(grow.is_ok(), "growing is allowed: {grow:?}");
    let shrink = env
        .apply_stack(&small_stack("sized", "storage: {size: 1Gi}"))
        .await;
    let error = shrink.expect_err("shrinking is rejected").to_string();
    assert!(
        error.contains("never shrink") && error.contains("storage.size"),
        "{error}"
    );
    let class = env
        .apply_stack(&small_stack(
            "sized",
            "storage: {size: 3Gi, storageClassName: other}",
        ))
        .await;
    assert!(
        class
            .expect_err("class is immutable")
            .to_string()
            .contains("storageClassName")
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_in_children_is_undone() {
    let env = TestEnv::start("drift").await;
    env.apply_stack(&small_stack("shop", "")).await.unwrap();
    env.wait_ready("shop").await;
    let original = env.get::<Secret>("shop-db-credentials").await;

    // A deleted Deployment comes back.
    let old_uid = env.get::<Deployment>("shop-api").await.metadata.uid;
    env.api::<Deployment>()
        .delete("shop-api", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_for::<Deployment, _>("shop-api", "re-created", |d| d.metadata.uid != old_uid)
        .await;

    // An edited Service is restored: selector and ports. Renaming the port makes server-side
    // apply's union of the two port lists invalid, so this also proves the replace fallback.
    env.api::<Service>()
        .patch(
            "shop-frontend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {
                "ports": [{"name": "http", "port": 9999, "targetPort": "http"}],
                "selector": {"app.kubernetes.io/component": "api"},
            }})),
        )
        .await
        .unwrap();
    env.wait_for::<Service, _>("shop-frontend", "port and selector restored", |s| {
        let spec = s.spec.as_ref().unwrap();
        let ports = spec.ports.as_ref().unwrap();
        ports
            .iter()
            .any(|p| p.port == 8080 && p.name.as_deref() == Some("http"))
            && spec.selector.as_ref().unwrap()["app.kubernetes.io/component"] == "frontend"
    })
    .await;

    // An edited image in a Deployment is restored.
    env.api::<Deployment>()
        .patch("shop-frontend", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "frontend", "image": "evil:1"}]}}}})))
        .await
        .unwrap();
    env.wait_for::<Deployment, _>("shop-frontend", "image restored", |d| {
        d.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .image
            .as_deref()
            == Some("registry.example.com/web:1")
    })
    .await;

    // Edited Secret data is restored, with the same password.
    let tampered = BTreeMap::from([(
        "DATABASE_URL".to_owned(),
        ByteString(b"postgresql://elsewhere".to_vec()),
    )]);
    env.api::<Secret>()
        .patch(
            "shop-db-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": tampered})),
        )
        .await
        .unwrap();
    let restored = env
        .wait_for::<Secret, _>("shop-db-credentials", "DATABASE_URL restored", |s| {
            s.data.as_ref().unwrap()["DATABASE_URL"]
                == original.data.as_ref().unwrap()["DATABASE_URL"]
        })
        .await;
    assert_eq!(password(&restored), password(&original));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_is_stable_and_a_no_op_reconcile_writes_nothing() {
    let mut env = TestEnv::start("stable").await;
    env.apply_stack(&books("books")).await.unwrap();
    env.wait_ready("books").await;
    let first = password(&env.get::<Secret>("books-db-credentials").await);

    let before = versions(&env).await;
    assert!(before.len() >= 12, "found the children: {before:?}");
    let writes_before = env.metrics.encode();
    // Many reconciles: each poke is a new generation-less change that triggers one.
    let mut poked = String::new();
    for _ in 0..5 {
        poked = env.poke("books").await;
    }
    // Wait until a reconcile has seen the last poke: it writes nothing.
    env.wait_reconciled("books", &poked).await;
    assert_eq!(
        before,
        versions(&env).await,
        "no child changed (resourceVersions equal)"
    );
    let after = env.get::<AppStack>("books").await;
    assert_eq!(
        after.resource_version().as_deref(),
        Some(poked.as_str()),
        "the status was not rewritten"
    );
    assert_eq!(
        child_writes(&env.metrics.encode()),
        child_writes(&writes_before),
        "no child writes"
    );

    // An operator restart reads everything again and still changes nothing.
    env.stop_operator().await;
    env.start_operator();
    env.poke("books").await;
    env.wait_ready("books").await;
    let second = password(&env.get::<Secret>("books-db-credentials").await);
    assert_eq!(
        first, second,
        "the password survives reconciles and restarts"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoscaling_and_ingress_come_and_go_and_replicas_are_left_to_the_autoscaler() {
    let env = TestEnv::start("toggle").await;
    env.apply_stack(&books("books")).await.unwrap();
    env.wait_ready("books").await;

    // The autoscaler (or a person) scales the API; the operator leaves replicas alone.
    env.api::<Deployment>()
        .patch(
            "books-api",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    env.poke("books").await;
    env.wait_ready("books").await;
    let api = env.get::<Deployment>("books-api").await;
    assert_eq!(
        api.spec.unwrap().replicas,
        Some(4),
        "the operator did not fight the autoscaler"
    );

    // Autoscaling off: the HPA goes and the spec's replicas apply again.
    env.patch_spec(
        "books",
        json!({"api": {"autoscaling": null, "replicas": 3}}),
    )
    .await;
    env.wait_gone::<HorizontalPodAutoscaler>("books-api").await;
    env.wait_for::<Deployment, _>("books-api", "replicas from the spec", |d| {
        d.spec.as_ref().unwrap().replicas == Some(3)
    })
    .await;

    // Ingress removed: the Ingress goes.
    let patched = env.patch_spec("books", json!({"ingress": null})).await;
    env.wait_gone::<Ingress>("books").await;
    // At the new generation: the Ready of the previous one still carries the Ingress URL.
    let stack = env
        .wait_ready_at("books", patched.metadata.generation)
        .await;
    assert_eq!(
        stack.status.unwrap().url.as_deref(),
        Some(&*format!(
            "http://books-frontend.{}.svc:8080",
            env.namespace
        ))
    );

    // Autoscaling back on: a new HPA, and replicas handed over without dropping to 1.
    env.patch_spec(
        "books",
        json!({"api": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}}),
    )
    .await;
    env.wait_for::<HorizontalPodAutoscaler, _>("books-api", "HPA re-created", |_| true)
        .await;
    let api = env.get::<Deployment>("books-api").await;
    assert!(
        api.spec.unwrap().replicas.unwrap() >= 2,
        "no drop to one replica on hand-over"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stack_keeps_its_data_and_a_recreated_stack_adopts_it() {
    let env = TestEnv::start("retain").await;
    env.apply_stack(&small_stack("keep", "")).await.unwrap();
    env.wait_ready("keep").await;
    let first = env.get::<Secret>("keep-db-credentials").await;

    env.delete_stack("keep", DeleteParams::default()).await;
    env.wait_gone::<AppStack>("keep").await;
    let secret = env.get::<Secret>("keep-db-credentials").await;
    let claim = env.get::<PersistentVolumeClaim>("keep-db-data").await;
    assert!(secret.owner_references().is_empty() && claim.owner_references().is_empty());
    assert_eq!(claim.metadata.deletion_timestamp, None);

    env.apply_stack(&small_stack("keep", "")).await.unwrap();
    env.wait_ready("keep").await;
    let adopted = env.get::<Secret>("keep-db-credentials").await;
    assert_eq!(
        password(&adopted),
        password(&first),
        "the re-created stack finds its password"
    );
    assert_eq!(
        adopted.metadata.uid, first.metadata.uid,
        "the same Secret, not a new one"
    );
    let claim_again = env.get::<PersistentVolumeClaim>("keep-db-data").await;
    assert_eq!(
        claim_again.metadata.uid, claim.metadata.uid,
        "the same claim, not a new one"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stack_without_retention_removes_its_data() {
    let env = TestEnv::start("purge").await;
    env.apply_stack(&small_stack("gone", "retainOnDelete: false"))
        .await
        .unwrap();
    env.wait_ready("gone").await;
    // Retention is the finalizer's job alone: data objects never carry owner references.
    let secret = env.get::<Secret>("gone-db-credentials").await;
    assert!(
        unowned(&secret),
        "no owner references on the Secret: {:?}",
        secret.metadata.owner_references
    );
    let claim = env.get::<PersistentVolumeClaim>("gone-db-data").await;
    assert!(
        unowned(&claim),
        "no owner references on the claim: {:?}",
        claim.metadata.owner_references
    );
    env.delete_stack("gone", DeleteParams::default()).await;
    env.wait_gone::<AppStack>("gone").await;
    env.wait_gone::<Secret>("gone-db-credentials").await;
    let claim = env.get_opt::<PersistentVolumeClaim>("gone-db-data").await;
    assert!(
        claim.is_none_or(|c| c.metadata.deletion_timestamp.is_some()),
        "claim deleted (or being deleted behind pvc-protection)"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_clash_blocks_the_stack_and_leaves_the_foreign_object_alone() {
    let env = TestEnv::start("clash").await;
    let foreign = env
        .create_foreign_service("mine-api", json!({"team": "someone-else"}))
        .await;
    env.apply_stack(&small_stack("mine", "")).await.unwrap();
    let stack = env
        .wait_for::<AppStack, _>("mine", "Stalled with NameConflict", |s| {
            reason(s, "Ready") == Some("NameConflict")
        })
        .await;
    assert_eq!(condition(&stack, "Ready"), Some("False"));
    assert_eq!(condition(&stack, "Stalled"), Some("True"));
    assert_eq!(stack.status.as_ref().unwrap().phase, Some(Phase::Failed));
    let message = message(&stack, "Ready").unwrap();
    assert!(message.contains("Service mine-api"), "{message}");
    let after = env.get::<Service>("mine-api").await;
    assert_eq!(
        after.resource_version(),
        foreign.resource_version(),
        "foreign Service untouched"
    );

    // Removing the clash lets the stack converge.
    env.api::<Service>()
        .delete("mine-api", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_ready("mine").await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_existing_secret_is_reported_not_generated() {
    let env = TestEnv::start("nosecret").await;
    env.apply_stack(&small_stack("ext", "existingSecret: vault-db"))
        .await
        .unwrap();
    let stack = env
        .wait_for::<AppStack, _>("ext", "SecretNotFound", |s| {
            reason(s, "Ready") == Some("SecretNotFound")
        })
        .await;
    assert_eq!(condition(&stack, "Stalled"), Some("True"));
    assert!(
        env.get_opt::<Secret>("ext-db-credentials").await.is_none(),
        "nothing generated"
    );

    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "vault-db"},
        "stringData": {"username": "app", "password": "from-vault"}
    }))
    .unwrap();
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    env.poke("ext").await;
    env.wait_ready("ext").await;
    let api = env.get::<Deployment>("ext-api").await;
    let pod = api.spec.unwrap().template.spec.unwrap();
    let env_vars = pod.containers[0].env.clone().unwrap();
    let url = env_vars.iter().find(|e| e.name == "DATABASE_URL").unwrap();
    assert!(
        url.value.as_deref().unwrap().contains("$(DB_PASSWORD)"),
        "composed from the Secret's keys"
    );
    let vault = env.get::<Secret>("vault-db").await;
    assert!(
        vault.owner_references().is_empty() && vault.labels().is_empty(),
        "the user's Secret is never written"
    );
    env.finish().await;
}
