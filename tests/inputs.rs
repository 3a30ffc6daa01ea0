//! What a user can type, against a real API server: specs refused at `kubectl apply` naming the
//! field once, fixed database names, `kubectl scale` under an autoscaler, lost data, render's
//! output applied by hand, one Postgres writer, and the move from the database Deployment of
//! 0.1.0 to a StatefulSet. Each test has its own namespace; those that need it their own
//! in-process operator, under the RBAC of `deploy/install.yaml`.
//!
//! Needs the local control plane: `tests/cluster/up.sh` (see README, "Testing").

mod common;

use std::time::Duration;

use appstack_operator::crd::AppStack;
use appstack_operator::render::{PLACEHOLDER_PASSWORD, render};
use common::{
    TIMEOUT, TestEnv, condition, eventually, kubectl, password, reason, small_stack, terminating,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

/// How long "nothing happens" is watched for.
const QUIET: Duration = Duration::from_secs(10);
const HOLD: &str = "test.appstack.dev/hold";

fn database_pods(stack: &str) -> ListParams {
    ListParams::default().labels(&format!(
        "app.kubernetes.io/instance={stack},app.kubernetes.io/component=database"
    ))
}

/// A stack whose `spec` lines are `lines` (each at two spaces' indent).
fn stack_with(name: &str, lines: &str) -> String {
    format!(
        "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {{name: {name}}}\nspec:\n{lines}"
    )
}

/// The API server's message for a refused write.
fn refusal(result: Result<AppStack, kube::Error>, what: &str) -> Result<String, String> {
    match result {
        Ok(_) => Err(format!("{what}: accepted, should be refused")),
        Err(kube::Error::Api(status)) => Ok(status.message.clone()),
        Err(other) => Err(format!("{what}: not an API refusal: {other}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_at_apply_naming_the_field_once() {
    let env = TestEnv::without_operator("refuse").await;
    let api = "  api: {image: registry.example.com/api:1}\n";
    let frontend = "  frontend: {image: registry.example.com/web:1}\n";
    let long_label = format!("{}.example.com", "a".repeat(64));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            format!("{api}{frontend}  database: {{storage: {{size: '0'}}}}\n"),
            "spec.database.storage.size",
            "above zero",
        ),
        (
            format!("  api: {{image: a, env: [{{name: DATABASE_URL, value: x}}]}}\n{frontend}"),
            "spec.api.env",
            "DATABASE_URL",
        ),
        (
            format!("  api: {{image: a, env: [{{name: DB_PASSWORD, value: x}}]}}\n{frontend}"),
            "spec.api.env",
            "DB_PASSWORD",
        ),
        (
            format!(
                "  api: {{image: a, env: [{{name: A, value: '1'}}, {{name: A, value: '2'}}]}}\n{frontend}"
            ),
            "spec.api.env",
            "uplicate",
        ),
        (
            format!("{api}{frontend}  database: {{user: 'a b'}}\n"),
            "spec.database.user",
            "a b",
        ),
        (
            format!("{api}{frontend}  database: {{existingSecret: Vault_DB}}\n"),
            "spec.database.existingSecret",
            "Vault_DB",
        ),
        (
            format!(
                "{api}{frontend}  ingress: {{host: h.example.com, tls: {{secretName: Bad}}}}\n"
            ),
            "spec.ingress.tls.secretName",
            "Bad",
        ),
        (
            format!("{api}{frontend}  ingress: {{host: '*.example.com'}}\n"),
            "spec.ingress.host",
            "*.example.com",
        ),
        (
            format!("{api}{frontend}  ingress: {{host: {long_label}}}\n"),
            "spec.ingress.host",
            &long_label,
        ),
    ];
    let mut wrong = Vec::new();
    for (spec, field, detail) in &cases {
        let what = spec.trim().replace('\n', "; ");
        let message = match refusal(env.apply_stack(&stack_with("bad", spec)).await, &what) {
            Ok(message) => message,
            Err(problem) => {
                wrong.push(problem);
                continue;
            }
        };
        let times = message.matches(field).count();
        if times != 1 || !message.contains(detail) {
            wrong.push(format!(
                "{what}: the message should name {field} once (it does {times} times) and mention {detail:?}: {message}"
            ));
        }
    }
    assert!(
        env.get_opt::<AppStack>("bad").await.is_none(),
        "no case was stored"
    );
    env.finish().await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_name_and_user_are_fixed_even_when_added_or_removed() {
    let env = TestEnv::without_operator("fixednames").await;
    env.apply_stack(&small_stack("fixed", ""))
        .await
        .expect("a stack without database name or user");
    for field in ["user", "name"] {
        // Added with another value: refused, naming the field.
        let message = refusal(
            env.apply_stack(&small_stack("fixed", &format!("{field}: other")))
                .await,
            &format!("adding {field}: other"),
        )
        .unwrap_or_else(|problem| panic!("{problem}"));
        assert!(
            message.contains(&format!("spec.database.{field}"))
                && message.contains("cannot be added, changed or removed"),
            "{message}"
        );
        // Added with the value it had (the stack's name): accepted.
        env.apply_stack(&small_stack("fixed", &format!("{field}: fixed")))
            .await
            .unwrap_or_else(|e| panic!("{field}: fixed (the effective value) is accepted: {e}"));
        // Changed from the explicit value: refused.
        refusal(
            env.apply_stack(&small_stack("fixed", &format!("{field}: other")))
                .await,
            &format!("changing {field} to other"),
        )
        .unwrap_or_else(|problem| panic!("{problem}"));
        // Removed again: the effective value stays the stack's name, so accepted.
        env.apply_stack(&small_stack("fixed", ""))
            .await
            .unwrap_or_else(|e| panic!("removing {field}: fixed is accepted: {e}"));
    }
    // Created with an explicit value: removing it would change the effective value.
    env.apply_stack(&small_stack("explicit", "user: app"))
        .await
        .expect("a stack with user app");
    refusal(
        env.apply_stack(&small_stack("explicit", "")).await,
        "removing user: app",
    )
    .unwrap_or_else(|problem| panic!("{problem}"));
    let stack = env.get::<AppStack>("explicit").await;
    assert_eq!(stack.spec.database.user.as_deref(), Some("app"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_is_refused_while_autoscaling_is_set() {
    let env = TestEnv::without_operator("scale").await;
    env.apply_stack(&stack_with(
        "auto",
        "  api: {image: a, autoscaling: {minReplicas: 1, maxReplicas: 3}}\n  frontend: {image: f}\n",
    ))
    .await
    .expect("autoscaled stack");
    env.apply_stack(&small_stack("manual", ""))
        .await
        .expect("stack without autoscaling");

    let ns = env.namespace.as_str();
    let (ok, text) = kubectl(&["scale", "-n", ns, "appstack/auto", "--replicas=5"]);
    assert!(!ok, "kubectl scale under an autoscaler is refused: {text}");
    assert!(text.contains("autoscaling"), "the refusal says why: {text}");
    let auto = env.get::<AppStack>("auto").await;
    assert_eq!(auto.spec.api.replicas, 1, "replicas unchanged");

    let (ok, text) = kubectl(&["scale", "-n", ns, "appstack/manual", "--replicas=5"]);
    assert!(ok, "kubectl scale without autoscaling works: {text}");
    let manual = env.get::<AppStack>("manual").await;
    assert_eq!(manual.spec.api.replicas, 5);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_claim_blocks_the_stack_with_data_lost() {
    let env = TestEnv::start("datalost").await;
    env.apply_stack(&small_stack("lost", "")).await.unwrap();
    env.wait_ready("lost").await;
    let claim = env.get::<PersistentVolumeClaim>("lost-db-data").await;
    let claim_uid = claim.metadata.uid.clone().expect("claim uid");
    // The Secret records the claim whose database its password opens.
    let secret = env
        .wait_for::<Secret, _>("lost-db-credentials", "records the claim's UID", |s| {
            s.annotations().get("appstack.dev/claim-uid") == Some(&claim_uid)
        })
        .await;
    let first_password = password(&secret);

    // The claim goes (it stays Terminating while the database pod mounts it: the operator stops
    // the database so that it can go).
    env.api::<PersistentVolumeClaim>()
        .delete("lost-db-data", &DeleteParams::default())
        .await
        .expect("claim deleted");
    env.wait_gone::<PersistentVolumeClaim>("lost-db-data").await;

    let stack = env
        .wait_for::<AppStack, _>("lost", "Ready=False with reason DataLost", |s| {
            condition(s, "Ready") == Some("False") && reason(s, "Ready") == Some("DataLost")
        })
        .await;
    assert_eq!(condition(&stack, "Stalled"), Some("True"));

    let warnings = || async {
        env.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.type_.as_deref() == Some("Warning")
                    && e.reason.as_deref() == Some("DataLost")
                    && e.regarding.as_ref().is_some_and(|r| {
                        r.kind.as_deref() == Some("AppStack") && r.name.as_deref() == Some("lost")
                    })
            })
            .count()
    };
    let warned = eventually(TIMEOUT, || async { (warnings().await > 0).then_some(()) }).await;
    assert!(warned.is_some(), "a Warning Event with reason DataLost");

    // No empty database under the old password: no new claim appears.
    let deadline = tokio::time::Instant::now() + QUIET;
    while tokio::time::Instant::now() < deadline {
        let claim = env.get_opt::<PersistentVolumeClaim>("lost-db-data").await;
        assert!(
            claim.is_none(),
            "no new claim while the Secret holds the old password: {:?}",
            claim.map(|c| c.metadata.uid)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let secret = env.get::<Secret>("lost-db-credentials").await;
    assert_eq!(password(&secret), first_password, "the password is kept");
    let stack = env.get::<AppStack>("lost").await;
    assert_eq!(reason(&stack, "Ready"), Some("DataLost"), "still blocked");

    // Starting over: delete the Secret too.
    env.api::<Secret>()
        .delete("lost-db-credentials", &DeleteParams::default())
        .await
        .expect("Secret deleted");
    let claim = env
        .wait_for::<PersistentVolumeClaim, _>("lost-db-data", "a new claim", |c| {
            c.metadata.uid.as_ref() != Some(&claim_uid)
        })
        .await;
    assert!(!terminating(&claim));
    env.wait_ready("lost").await;
    let secret = env
        .wait_for::<Secret, _>("lost-db-credentials", "a new Secret", |s| {
            s.metadata.uid != secret.metadata.uid
        })
        .await;
    let new_password = password(&secret);
    assert_eq!(new_password.len(), 32);
    assert_ne!(new_password, first_password, "a new password");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_render_output_never_gives_a_known_password() {
    let mut env = TestEnv::without_operator("render").await;
    let manifest = small_stack("shown", "");
    let output = render(&manifest, &env.namespace).expect("render");
    let file = std::env::temp_dir().join(format!("{}-render.yaml", env.namespace));
    std::fs::write(&file, &output).expect("write rendered output");
    let (ok, text) = kubectl(&[
        "apply",
        "-n",
        &env.namespace,
        "-f",
        file.to_str().expect("utf-8 path"),
    ]);
    let _ = std::fs::remove_file(&file);
    assert!(ok, "render's output applies: {text}");
    assert!(
        env.get_opt::<Secret>("shown-db-credentials")
            .await
            .is_none(),
        "no credentials Secret from render's output"
    );

    env.start_operator();
    env.apply_stack(&manifest).await.expect("stack applies");
    env.wait_ready("shown").await;
    let secret = env.get::<Secret>("shown-db-credentials").await;
    let password = password(&secret);
    assert_eq!(password.len(), 32, "a generated password");
    assert_ne!(password, PLACEHOLDER_PASSWORD.as_bytes());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_database_pod_waits_for_the_old_one() {
    let env = TestEnv::start("writer").await;
    env.apply_stack(&small_stack("solo", "")).await.unwrap();
    env.wait_ready("solo").await;
    let old = env
        .wait_for::<Pod, _>("solo-db-0", "the database pod exists", |_| true)
        .await;
    let old_uid = old.metadata.uid.clone();
    env.edit_finalizers::<Pod>("solo-db-0", |mut f| {
        f.push(HOLD.to_owned());
        f
    })
    .await;
    env.api::<Pod>()
        .delete("solo-db-0", &DeleteParams::default())
        .await
        .expect("pod deleted");

    // While the old pod is still there (terminating), no second database pod starts.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + QUIET;
    while tokio::time::Instant::now() < deadline {
        let pods = env.api::<Pod>().list(&database_pods("solo")).await.unwrap();
        let found: Vec<(String, bool, bool)> = pods
            .iter()
            .map(|p| (p.name_any(), p.metadata.uid == old_uid, terminating(p)))
            .collect();
        if found.len() != 1 || !found.iter().all(|(_, old, gone)| *old && *gone) {
            seen.push(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    env.edit_finalizers::<Pod>("solo-db-0", |f| {
        f.into_iter().filter(|f| f != HOLD).collect()
    })
    .await;
    assert!(
        seen.is_empty(),
        "only the old, terminating database pod may exist while it holds on; saw (name, is old, terminating): {seen:?}"
    );

    let new = env
        .wait_for::<Pod, _>("solo-db-0", "a new database pod, running", |p| {
            p.metadata.uid != old_uid
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .await;
    assert!(!terminating(&new));
    env.wait_for::<StatefulSet, _>("solo-db", "one ready replica", |s| {
        s.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;
    env.wait_ready("solo").await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_deployment_of_0_1_0_becomes_a_statefulset_on_the_same_data() {
    const OLD_PASSWORD: &str = "Upgr4deFrom010KeepThisPassw0rdXy";
    let mut env = TestEnv::without_operator("upgrade").await;
    let stack = env
        .apply_stack(&small_stack("old", ""))
        .await
        .expect("stack applies");
    let uid = stack.metadata.uid.clone().expect("stack uid");
    let labels = json!({
        "app.kubernetes.io/name": "appstack",
        "app.kubernetes.io/instance": "old",
        "app.kubernetes.io/component": "database",
        "app.kubernetes.io/part-of": "old",
        "app.kubernetes.io/managed-by": "appstack-operator",
    });
    let selector = json!({
        "app.kubernetes.io/name": "appstack",
        "app.kubernetes.io/instance": "old",
        "app.kubernetes.io/component": "database",
    });

    // What 0.1.0 made: the Secret and the claim (no owner), the database Deployment (owned).
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "old-db-credentials", "labels": labels},
        "type": "Opaque",
        "stringData": {
            "username": "old",
            "password": OLD_PASSWORD,
            "database": "old",
            "host": "old-db",
            "port": "5432",
            "DATABASE_URL": format!("postgresql+psycopg://old:{OLD_PASSWORD}@old-db:5432/old"),
        },
    }))
    .unwrap();
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret created");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "old-db-data", "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }))
    .unwrap();
    let claim = env
        .api::<PersistentVolumeClaim>()
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim created");
    let secret_env = |name: &str, key: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": "old-db-credentials", "key": key}}});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {
            "name": "old-db",
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": "appstack.dev/v1alpha1",
                "kind": "AppStack",
                "name": "old",
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": 999,
                        "runAsGroup": 999,
                        "fsGroup": 999,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "postgres",
                        "image": "postgres:17",
                        "env": [
                            secret_env("POSTGRES_USER", "username"),
                            secret_env("POSTGRES_PASSWORD", "password"),
                            {"name": "POSTGRES_DB", "value": "old"},
                            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                        ],
                        "ports": [{"name": "postgres", "containerPort": 5432}],
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": true,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                    }],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "old-db-data"}}],
                },
            },
        },
    }))
    .unwrap();
    env.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("old database Deployment created");
    let running = eventually(TIMEOUT, || async {
        let pods = env.api::<Pod>().list(&database_pods("old")).await.ok()?;
        pods.iter()
            .any(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .then_some(())
    })
    .await;
    assert!(running.is_some(), "the 0.1.0 database pod runs");

    env.start_operator();
    // Until the StatefulSet is ready: never two database pods at once.
    let most_seen = std::cell::Cell::new(0usize);
    let ready = eventually(Duration::from_secs(120), || async {
        let pods = env.api::<Pod>().list(&database_pods("old")).await.ok()?;
        most_seen.set(most_seen.get().max(pods.items.len()));
        let deployment = env.get_opt::<Deployment>("old-db").await;
        let set = env.get_opt::<StatefulSet>("old-db").await?;
        (deployment.is_none() && set.status.as_ref().and_then(|s| s.ready_replicas) == Some(1))
            .then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "Deployment old-db gone and StatefulSet old-db ready; Deployment: {:?}, StatefulSet status: {:?}",
        env.get_opt::<Deployment>("old-db")
            .await
            .map(|d| d.spec.and_then(|s| s.replicas)),
        env.get_opt::<StatefulSet>("old-db")
            .await
            .and_then(|s| s.status)
    );
    assert!(
        most_seen.get() <= 1,
        "never two database pods at once (saw {})",
        most_seen.get()
    );
    let stack = env.wait_ready("old").await;
    let set = env.get::<StatefulSet>("old-db").await;
    assert!(
        common::controlled_by(&set, &stack),
        "the StatefulSet is the stack's"
    );
    let claim_after = env.get::<PersistentVolumeClaim>("old-db-data").await;
    assert_eq!(
        claim_after.metadata.uid, claim.metadata.uid,
        "the same claim"
    );
    let secret = env.get::<Secret>("old-db-credentials").await;
    assert_eq!(
        password(&secret),
        OLD_PASSWORD.as_bytes(),
        "the same password"
    );
    env.finish().await;
}
