//! A stack's life against a real API server: spec removals, deletion with every propagation
//! policy, finalizers removed or held, an operator that is down, edits by other field managers,
//! and failures that persist. Each test has its own namespace and its own in-process operator,
//! running under the RBAC of `deploy/install.yaml`.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use appstack_operator::crd::{AppStack, Phase};
use common::{
    TIMEOUT, TestEnv, books, child_writes, condition, eventually, message, meta_controlled_by,
    password, reason, rolled_out, small_stack, terminating, unowned, versions,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

/// Time garbage collection gets to act on something it should not touch, before checking that
/// it did not.
const GC_GRACE: Duration = Duration::from_secs(5);

/// Ready reasons of a stack that is only on its way (creating, rolling out, waiting for a claim to
/// bind) or done: none of them explains a failure.
const ROLLOUT_REASONS: [&str; 7] = [
    "Creating",
    "RolloutInProgress",
    "RolloutComplete",
    "ProgressDeadlineExceeded",
    "ClaimPending",
    "AllComponentsReady",
    "Deleting",
];

/// The container `name` of a Deployment's pod template.
fn container<'a>(deployment: &'a Deployment, name: &str) -> &'a Container {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|pod| pod.containers.iter().find(|c| c.name == name))
        .unwrap_or_else(|| {
            panic!(
                "Deployment {} has a container {name}",
                deployment.name_any()
            )
        })
}

fn has_env(container: &Container, name: &str) -> bool {
    container.env.iter().flatten().any(|e| e.name == name)
}

fn limit<'a>(container: &'a Container, resource: &str) -> Option<&'a str> {
    let limits = container.resources.as_ref()?.limits.as_ref()?;
    limits.get(resource).map(|q| q.0.as_str())
}

/// uid of every object in `children`, by "Kind/name".
fn uids(children: &BTreeMap<String, ObjectMeta>) -> BTreeMap<String, String> {
    children
        .iter()
        .map(|(key, meta)| (key.clone(), meta.uid.clone().unwrap_or_default()))
        .collect()
}

fn instance(name: &str) -> String {
    format!("app.kubernetes.io/instance={name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_spec_fields_are_removed_from_the_children() {
    let env = TestEnv::start("removals").await;
    let manifest = r#"apiVersion: appstack.dev/v1alpha1
kind: AppStack
metadata:
  name: r
spec:
  api:
    image: registry.example.com/api:1
    command: [gunicorn, app]
    env: [{name: EXTRA, value: "1"}]
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 512Mi, cpu: "1"}
  frontend: {image: registry.example.com/web:1}
  ingress: {host: r.example.com, className: nginx, tls: {secretName: r-tls}}
"#;
    env.apply_stack(manifest).await.expect("stack applies");
    env.wait_ready("r").await;
    let ingress = env.get::<Ingress>("r").await;
    let spec = ingress.spec.as_ref().unwrap();
    assert!(spec.tls.as_ref().is_some_and(|tls| !tls.is_empty()));
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let api = env.get::<Deployment>("r-api").await;
    let c = container(&api, "api");
    assert!(c.command.is_some() && has_env(c, "EXTRA") && limit(c, "cpu") == Some("1"));

    let patched = env
        .patch_spec(
            "r",
            json!({
                "ingress": {"tls": null, "className": null},
                "api": {"command": null, "env": null, "resources": {"limits": {"cpu": null}}},
            }),
        )
        .await;
    env.wait_for::<Ingress, _>("r", "no tls and no ingressClassName", |i| {
        let spec = i.spec.as_ref().unwrap();
        spec.tls.as_ref().is_none_or(Vec::is_empty) && spec.ingress_class_name.is_none()
    })
    .await;
    env.wait_for::<Deployment, _>(
        "r-api",
        "no command, no EXTRA, no cpu limit, memory limit 512Mi",
        |d| {
            let c = container(d, "api");
            c.command.as_ref().is_none_or(Vec::is_empty)
                && !has_env(c, "EXTRA")
                && limit(c, "cpu").is_none()
                && limit(c, "memory") == Some("512Mi")
        },
    )
    .await;
    env.wait_ready_at("r", patched.metadata.generation).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_type_follows_the_spec_both_ways() {
    let env = TestEnv::start("svctype").await;
    env.apply_stack(&small_stack("st", "")).await.unwrap();
    env.wait_ready("st").await;
    let service_type = |s: &Service| s.spec.as_ref().and_then(|s| s.type_.clone());

    let patched = env
        .patch_spec("st", json!({"api": {"serviceType": "NodePort"}}))
        .await;
    env.wait_for::<Service, _>("st-api", "type NodePort", |s| {
        service_type(s).as_deref() == Some("NodePort")
    })
    .await;
    env.wait_ready_at("st", patched.metadata.generation).await;

    let patched = env
        .patch_spec("st", json!({"api": {"serviceType": "ClusterIP"}}))
        .await;
    let service = env
        .wait_for::<Service, _>("st-api", "type ClusterIP", |s| {
            service_type(s).as_deref() == Some("ClusterIP")
        })
        .await;
    let ports = service.spec.unwrap().ports.unwrap_or_default();
    assert!(
        ports.iter().all(|p| p.node_port.is_none()),
        "no node ports left: {ports:?}"
    );
    env.wait_ready_at("st", patched.metadata.generation).await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_switched_on_then_foreground_delete_keeps_the_data() {
    let env = TestEnv::start("flip").await;
    env.apply_stack(&small_stack("flip", "retainOnDelete: false"))
        .await
        .unwrap();
    env.wait_ready("flip").await;
    let patched = env
        .patch_spec("flip", json!({"database": {"retainOnDelete": true}}))
        .await;
    env.wait_observed("flip", patched.metadata.generation).await;
    let before = env.get::<Secret>("flip-db-credentials").await;
    let claim_before = env.get::<PersistentVolumeClaim>("flip-db-data").await;

    env.delete_stack("flip", DeleteParams::foreground()).await;
    env.wait_gone::<AppStack>("flip").await;
    // Garbage collection of the stack's dependents runs on; give it time to get things wrong.
    tokio::time::sleep(GC_GRACE).await;
    let secret = env.get::<Secret>("flip-db-credentials").await;
    let claim = env.get::<PersistentVolumeClaim>("flip-db-data").await;
    for (what, meta) in [("Secret", &secret.metadata), ("claim", &claim.metadata)] {
        assert!(meta.deletion_timestamp.is_none(), "{what} not terminating");
        assert!(
            meta.owner_references.as_ref().is_none_or(Vec::is_empty),
            "{what} has no owner references: {:?}",
            meta.owner_references
        );
    }
    assert_eq!(secret.metadata.uid, before.metadata.uid, "the same Secret");
    assert_eq!(
        claim.metadata.uid, claim_before.metadata.uid,
        "the same claim"
    );
    assert_eq!(password(&secret), password(&before), "the same password");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_removed_by_hand_keeps_retained_data_and_collects_the_rest() {
    let mut env = TestEnv::start("byhand").await;
    env.apply_stack(&small_stack("hand", "retainOnDelete: false"))
        .await
        .unwrap();
    env.wait_ready("hand").await;
    let patched = env
        .patch_spec("hand", json!({"database": {"retainOnDelete": true}}))
        .await;
    env.wait_observed("hand", patched.metadata.generation).await;
    let before = env.get::<Secret>("hand-db-credentials").await;

    env.stop_operator().await;
    env.delete_stack("hand", DeleteParams::background()).await;
    env.remove_finalizers("hand").await;
    env.wait_gone::<AppStack>("hand").await;
    // Owned children are collected…
    env.wait_gone::<Deployment>("hand-api").await;
    tokio::time::sleep(GC_GRACE).await;
    // …retained data is not: it never had an owner reference.
    let secret = env.get::<Secret>("hand-db-credentials").await;
    let claim = env.get::<PersistentVolumeClaim>("hand-db-data").await;
    assert!(!terminating(&secret) && !terminating(&claim));
    assert!(
        unowned(&secret) && unowned(&claim),
        "no owner references: {:?} {:?}",
        secret.metadata.owner_references,
        claim.metadata.owner_references
    );
    assert_eq!(password(&secret), password(&before));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_deleted_while_the_operator_is_down_are_cleaned_up_when_it_returns() {
    let mut env = TestEnv::start("down").await;
    env.apply_stack(&small_stack("keep", "retainOnDelete: true"))
        .await
        .unwrap();
    env.apply_stack(&small_stack("drop", "retainOnDelete: false"))
        .await
        .unwrap();
    env.wait_ready("keep").await;
    env.wait_ready("drop").await;
    let kept_before = env.get::<Secret>("keep-db-credentials").await;
    let kept_claim = env.get::<PersistentVolumeClaim>("keep-db-data").await;

    env.stop_operator().await;
    env.delete_stack("keep", DeleteParams::background()).await;
    env.delete_stack("drop", DeleteParams::background()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["keep", "drop"] {
        let stack = env.get::<AppStack>(name).await;
        assert!(
            terminating(&stack),
            "{name}: the finalizer holds the deleted stack"
        );
    }

    env.start_operator();
    env.wait_gone::<AppStack>("keep").await;
    env.wait_gone::<AppStack>("drop").await;
    let secret = env.get::<Secret>("keep-db-credentials").await;
    let claim = env.get::<PersistentVolumeClaim>("keep-db-data").await;
    assert!(!terminating(&secret) && !terminating(&claim), "retained");
    assert_eq!(password(&secret), password(&kept_before));
    assert_eq!(claim.metadata.uid, kept_claim.metadata.uid);
    env.wait_gone::<Secret>("drop-db-credentials").await;
    let claim = env.get_opt::<PersistentVolumeClaim>("drop-db-data").await;
    assert!(
        claim.is_none_or(|c| terminating(&c)),
        "drop's claim deleted (or being deleted behind pvc-protection)"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_labels_on_owned_children_are_restored() {
    let env = TestEnv::start("labels").await;
    env.apply_stack(&small_stack("lab", "")).await.unwrap();
    env.wait_ready("lab").await;
    let part_of = env.get::<Service>("lab-api").await.labels()["app.kubernetes.io/part-of"].clone();
    let managed_by =
        env.get::<Deployment>("lab-api").await.labels()["app.kubernetes.io/managed-by"].clone();

    env.merge_patch::<Service>(
        "lab-api",
        json!({"metadata": {"labels": {"app.kubernetes.io/part-of": "someone-else"}}}),
    )
    .await;
    env.merge_patch::<Deployment>(
        "lab-api",
        json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": null}}}),
    )
    .await;
    env.wait_for::<Service, _>("lab-api", "part-of label restored", |s| {
        s.labels().get("app.kubernetes.io/part-of") == Some(&part_of)
    })
    .await;
    env.wait_for::<Deployment, _>("lab-api", "managed-by label restored", |d| {
        d.labels().get("app.kubernetes.io/managed-by") == Some(&managed_by)
    })
    .await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_added_by_other_managers_are_left_alone_without_writes() {
    let env = TestEnv::start("sidecar").await;
    env.apply_stack(&small_stack("side", "")).await.unwrap();
    env.wait_ready("side").await;

    // What `kubectl set env` does: a strategic merge patch under another field manager.
    env.api::<Deployment>()
        .patch(
            "side-frontend",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "frontend", "env": [{"name": "FROM_SOMEONE_ELSE", "value": "1"}]}
            ]}}}})),
        )
        .await
        .expect("strategic merge patch");
    env.wait_for::<Deployment, _>("side-frontend", "rolled out with the extra env", |d| {
        rolled_out(d) && has_env(container(d, "frontend"), "FROM_SOMEONE_ELSE")
    })
    .await;
    env.wait_ready("side").await;
    // Let the Deployment's own status settle before taking the snapshot.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let before = versions(&env).await;
    let writes_before = child_writes(&env.metrics.encode());
    env.poke("side").await;
    let poked = env.poke("side").await;
    env.wait_reconciled("side", &poked).await;
    assert_eq!(before, versions(&env).await, "no child was written");
    let frontend = env.get::<Deployment>("side-frontend").await;
    assert!(
        has_env(container(&frontend, "frontend"), "FROM_SOMEONE_ELSE"),
        "the other manager's env var is still there"
    );
    assert_eq!(
        child_writes(&env.metrics.encode()),
        writes_before,
        "appstack_child_writes_total did not grow"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_delete_keeps_everything_and_a_recreated_stack_adopts_it() {
    let env = TestEnv::start("orphan").await;
    let manifest = books("orph").replace("retainOnDelete: true", "retainOnDelete: false");
    assert!(manifest.contains("retainOnDelete: false"));
    env.apply_stack(&manifest).await.unwrap();
    env.wait_ready("orph").await;
    let password_before = password(&env.get::<Secret>("orph-db-credentials").await);
    let before = uids(&env.children_meta(&instance("orph")).await);
    assert!(
        before.contains_key("Deployment/orph-db") || before.contains_key("StatefulSet/orph-db"),
        "a database workload in {before:?}"
    );
    for key in [
        "Deployment/orph-api",
        "Deployment/orph-frontend",
        "Service/orph-db",
        "Service/orph-api",
        "Service/orph-frontend",
        "Secret/orph-db-credentials",
        "PersistentVolumeClaim/orph-db-data",
    ] {
        assert!(before.contains_key(key), "{key} in {before:?}");
    }

    env.delete_stack("orph", DeleteParams::orphan()).await;
    env.wait_gone::<AppStack>("orph").await;
    tokio::time::sleep(GC_GRACE).await;
    let after = env.children_meta(&instance("orph")).await;
    for (key, uid) in &before {
        let meta = after
            .get(key)
            .unwrap_or_else(|| panic!("{key} kept by the orphan delete"));
        assert_eq!(meta.uid.as_ref(), Some(uid), "{key}: the same object");
        assert!(meta.deletion_timestamp.is_none(), "{key} not terminating");
    }

    // The same stack again adopts everything instead of re-creating it.
    env.apply_stack(&manifest).await.unwrap();
    let stack = env.wait_ready("orph").await;
    let adopted = env.children_meta(&instance("orph")).await;
    assert_eq!(uids(&adopted), before, "the same objects, adopted");
    for (key, meta) in &adopted {
        let data = key.starts_with("Secret/") || key.starts_with("PersistentVolumeClaim/");
        if data {
            assert!(
                meta.owner_references.as_ref().is_none_or(Vec::is_empty),
                "{key}: data objects carry no owner references"
            );
        } else {
            assert!(
                meta_controlled_by(meta, &stack),
                "{key} controlled by the new stack: {:?}",
                meta.owner_references
            );
        }
    }
    assert_eq!(
        password(&env.get::<Secret>("orph-db-credentials").await),
        password_before
    );

    // A normal delete now leaves nothing behind.
    env.delete_stack("orph", DeleteParams::background()).await;
    env.wait_gone::<AppStack>("orph").await;
    let left = eventually(TIMEOUT, || async {
        let left: Vec<String> = env
            .children_meta(&instance("orph"))
            .await
            .into_iter()
            .filter(|(key, meta)| {
                !(key.starts_with("PersistentVolumeClaim/") && meta.deletion_timestamp.is_some())
            })
            .map(|(key, _)| key)
            .collect();
        left.is_empty().then_some(())
    })
    .await;
    assert!(
        left.is_some(),
        "everything deleted; left: {:?}",
        env.children_meta(&instance("orph")).await.keys()
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_stack_waits_for_its_old_claim_to_go() {
    const HOLD: &str = "test.appstack.dev/hold";
    let env = TestEnv::start("reclaim").await;
    let manifest = small_stack("again", "retainOnDelete: false");
    env.apply_stack(&manifest).await.unwrap();
    env.wait_ready("again").await;
    let old = env
        .edit_finalizers::<PersistentVolumeClaim>("again-db-data", |mut f| {
            f.push(HOLD.to_owned());
            f
        })
        .await;
    let old_uid = old.metadata.uid.clone();

    env.delete_stack("again", DeleteParams::background()).await;
    env.wait_gone::<AppStack>("again").await;
    let claim = env.get::<PersistentVolumeClaim>("again-db-data").await;
    assert_eq!(claim.metadata.uid, old_uid);
    assert!(terminating(&claim), "the old claim is being deleted");
    let database_pods =
        || async {
            env.api::<Pod>()
                .list(&ListParams::default().labels(
                    "app.kubernetes.io/component=database,app.kubernetes.io/instance=again",
                ))
                .await
                .unwrap()
                .items
        };
    // The old database workload and its pods are collected (the garbage collector deletes the
    // pods after their workload, so the workload's absence alone leaves them racing the checks).
    let collected = eventually(TIMEOUT, || async {
        (env.database_workloads("again").await.is_empty() && database_pods().await.is_empty())
            .then_some(())
    })
    .await;
    assert!(
        collected.is_some(),
        "the old database workload and its pods are collected"
    );

    env.apply_stack(&manifest).await.unwrap();
    let stack = env
        .wait_for::<AppStack, _>("again", "Ready=False, WaitingForPreviousClaim", |s| {
            condition(s, "Ready") == Some("False")
                && reason(s, "Ready") == Some("WaitingForPreviousClaim")
        })
        .await;
    assert_eq!(
        stack.status.as_ref().unwrap().phase,
        Some(Phase::Progressing)
    );
    assert_eq!(condition(&stack, "Stalled"), Some("False"));
    for (key, _, replicas) in env.database_workloads("again").await {
        assert_eq!(
            replicas,
            Some(0),
            "{key}: no database pod while the old claim goes"
        );
    }
    let running: Vec<String> = database_pods()
        .await
        .iter()
        .filter(|p| {
            !terminating(*p)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .map(|p| p.name_any())
        .collect();
    assert!(
        running.is_empty(),
        "no database pod mounts the old claim: {running:?}"
    );

    env.edit_finalizers::<PersistentVolumeClaim>("again-db-data", |f| {
        f.into_iter().filter(|f| f != HOLD).collect()
    })
    .await;
    env.wait_for::<PersistentVolumeClaim, _>("again-db-data", "a new claim", |c| {
        c.metadata.uid != old_uid
    })
    .await;
    env.wait_ready("again").await;
    let claim = env.get::<PersistentVolumeClaim>("again-db-data").await;
    assert_ne!(claim.metadata.uid, old_uid, "a new claim");
    assert!(!terminating(&claim));
    env.finish().await;
}

/// A reconcile's writes are one Event per reason, not one per write: every child of a new stack is
/// named by exactly one "Created" Event, and there are fewer such Events than children.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_stack_has_one_created_event_per_reconcile_naming_its_children() {
    let env = TestEnv::start("created-events").await;
    env.apply_stack(&books("books")).await.unwrap();
    env.wait_ready("books").await;
    let children = env.children_meta(&instance("books")).await;
    assert!(children.len() > 5, "{children:?}");
    // "Created Secret books-db, Service books-api" -> ["Secret/books-db", "Service/books-api"]
    let created = || async {
        let notes: Vec<String> = env
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Created")
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("AppStack") && r.name.as_deref() == Some("books")
                    })
            })
            .filter_map(|e| e.note)
            .collect();
        let named: Vec<String> = notes
            .iter()
            .filter_map(|n| n.strip_prefix("Created "))
            .flat_map(|list| list.split(", "))
            .map(|child| child.replacen(' ', "/", 1))
            .collect();
        (notes, named)
    };
    // Events are published without waiting for them: wait until each child is named.
    let found = eventually(TIMEOUT, || async {
        let (notes, named) = created().await;
        children
            .keys()
            .all(|child| named.contains(child))
            .then_some((notes, named))
    })
    .await;
    let Some((notes, named)) = found else {
        let (notes, _) = created().await;
        panic!(
            "every child of {:?} in a Created Event: {notes:?}",
            children.keys()
        );
    };
    let mut distinct = named.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        named.len(),
        "a child named twice: {notes:?}"
    );
    assert!(
        notes.len() < children.len(),
        "{} Created Events for {} children: {notes:?}",
        notes.len(),
        children.len()
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_failure_is_reported_once_and_clears() {
    const HPA_COUNT: &str = "count/horizontalpodautoscalers.autoscaling";
    let env = TestEnv::start("quota").await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "no-autoscalers"},
        "spec": {"hard": {HPA_COUNT: "0"}},
    }))
    .unwrap();
    env.api::<ResourceQuota>()
        .create(&PostParams::default(), &quota)
        .await
        .expect("quota created");
    env.wait_for::<ResourceQuota, _>("no-autoscalers", "quota status computed", |q| {
        q.status
            .as_ref()
            .and_then(|s| s.hard.as_ref())
            .is_some_and(|h| h.contains_key(HPA_COUNT))
    })
    .await;

    env.apply_stack(&books("quota")).await.unwrap();
    let quota_failure = |text: &str| {
        text.contains("HorizontalPodAutoscaler")
            && (text.contains("exceeded quota") || text.contains("forbidden"))
    };
    let stack = env
        .wait_for::<AppStack, _>(
            "quota",
            "Ready=False naming the HorizontalPodAutoscaler and the quota",
            |s| {
                condition(s, "Ready") == Some("False")
                    && reason(s, "Ready").is_some_and(|r| !ROLLOUT_REASONS.contains(&r))
                    && message(s, "Ready").is_some_and(quota_failure)
            },
        )
        .await;
    let message = message(&stack, "Ready").unwrap().to_owned();

    // A Warning Event on the stack says the same. (events.k8s.io/v1 and core/v1 Events are one
    // resource in two versions: listing one sees the events written through either.)
    let warnings = || async {
        env.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("AppStack") && r.name.as_deref() == Some("quota")
                    })
                    && e.note.as_deref().is_some_and(quota_failure)
            })
            .collect::<Vec<_>>()
    };
    let found = eventually(TIMEOUT, || async {
        let events = warnings().await;
        events
            .iter()
            .any(|e| {
                let note = e.note.as_deref().unwrap_or_default();
                note == message || message.contains(note) || note.contains(&message)
            })
            .then_some(())
    })
    .await;
    assert!(
        found.is_some(),
        "a Warning Event with the message {message:?}; found {:?}",
        warnings().await.iter().map(|e| &e.note).collect::<Vec<_>>()
    );
    // Retries go on; they are aggregated (series / deprecatedCount), not one Event each.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let events = warnings().await;
    assert_eq!(
        events.len(),
        1,
        "exactly one Warning Event for the failure: {:?}",
        events
            .iter()
            .map(|e| (
                &e.note,
                e.series.as_ref().map(|s| s.count),
                e.deprecated_count
            ))
            .collect::<Vec<_>>()
    );

    env.api::<ResourceQuota>()
        .delete("no-autoscalers", &DeleteParams::default())
        .await
        .expect("quota deleted");
    // Nothing the operator watches changes: it finds out on its own retry.
    env.wait_for_within::<AppStack, _>(
        Duration::from_secs(180),
        "quota",
        "Ready=True once the quota is gone",
        |s| condition(s, "Ready") == Some("True"),
    )
    .await;
    env.finish().await;
}
