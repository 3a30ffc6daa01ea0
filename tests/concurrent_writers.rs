//! Two operators at once, without the Lease (started by mistake, or the old leader still
//! finishing a reconcile while the new one starts): nothing is lost. Each new stack's credentials
//! Secret is written with exactly one password, the one that survives, whichever operator won
//! the race to create it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use appstack_operator::controller::{self, Context, Scope};
use appstack_operator::metrics::Metrics;
use common::{MANAGED, TIMEOUT, TestEnv, eventually, password, small_stack};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::runtime::watcher;

const STACKS: [&str; 4] = ["race-a", "race-b", "race-c", "race-d"];

/// Every password each credentials Secret ever held, by Secret name, as a watch saw them.
type Seen = Arc<Mutex<BTreeMap<String, BTreeSet<Vec<u8>>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_operators_racing_on_new_stacks_keep_one_password() {
    let mut env = TestEnv::without_operator("race").await;

    // Record every version of every managed Secret from before the first stack exists.
    let seen: Seen = Arc::default();
    let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
    let recorder = {
        let seen = seen.clone();
        let secrets = env.api::<Secret>();
        tokio::spawn(async move {
            let mut listed = Some(listed_tx);
            let config = watcher::Config::default().labels(MANAGED);
            let mut events = watcher(secrets, config).boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(secret) | watcher::Event::InitApply(secret)) => {
                        if let Some(data) = secret.data.as_ref()
                            && let Some(value) = data.get("password")
                        {
                            let mut seen = seen.lock().unwrap();
                            let entry = seen.entry(secret.name_any()).or_default();
                            entry.insert(value.0.clone());
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = listed.take() {
                            let _ = tx.send(());
                        }
                    }
                    _ => {}
                }
            }
        })
    };
    listed_rx.await.expect("Secret watch listed");

    // Two operators, both synced before the stacks appear, so that both see each new stack at
    // once and race to create its Secret.
    env.start_operator();
    let second_ready = Arc::new(AtomicBool::new(false));
    let second = tokio::spawn(controller::run(
        env.operator_client.clone(),
        Scope {
            namespace: Some(env.namespace.clone()),
        },
        Arc::new(Context::new(
            env.operator_client.clone(),
            Arc::new(Metrics::default()),
            Some("second-operator".into()),
        )),
        second_ready.clone(),
    ));
    let both_synced = eventually(TIMEOUT, || async {
        (env.ready.load(Ordering::Relaxed) && second_ready.load(Ordering::Relaxed)).then_some(())
    })
    .await;
    assert!(both_synced.is_some(), "both operators synced their caches");

    let manifests = STACKS.map(|name| small_stack(name, ""));
    let applies = manifests.iter().map(|manifest| env.apply_stack(manifest));
    for applied in futures::future::join_all(applies).await {
        applied.expect("stack applies");
    }
    for name in STACKS {
        env.wait_ready(name).await;
    }

    for name in STACKS {
        let secret_name = format!("{name}-db-credentials");
        let live = password(&env.get::<Secret>(&secret_name).await);
        let versions = seen
            .lock()
            .unwrap()
            .get(&secret_name)
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            versions.len(),
            1,
            "Secret {secret_name} held {} different passwords: a second writer overwrote the first",
            versions.len()
        );
        assert!(
            versions.contains(&live),
            "{secret_name}: the surviving password is the live one"
        );
    }
    println!(
        "race: {} stacks, two operators, one password each",
        STACKS.len()
    );

    second.abort();
    recorder.abort();
    env.finish().await;
}
