//! Leader election with the operator as real processes: only the leader reconciles, a standby
//! is Ready and says so, and it takes over after the leader is SIGKILLed (the Lease expires) and
//! at once after a SIGTERM (the Lease is released). The hand-over times are printed.

mod common;

use std::time::{Duration, Instant};

use common::process::{Operator, lease_holder, operator_kubeconfig, wait_for_holder};
use common::{TestEnv, eventually, small_stack};

/// The bounds: a standby leads within 15 s of a SIGKILL, within 2 s of a SIGTERM.
const AFTER_KILL: Duration = Duration::from_secs(15);
const AFTER_TERM: Duration = Duration::from_secs(2);

async fn wait_standby(operator: &Operator) {
    let standby = eventually(Duration::from_secs(30), || async {
        let (code, body) = operator.readyz()?;
        (code == 200 && body == "standby" && operator.leader_gauge() == Some(0)).then_some(())
    })
    .await;
    assert!(
        standby.is_some(),
        "{} is a Ready standby (/readyz {:?}, appstack_leader {:?})",
        operator.identity,
        operator.readyz(),
        operator.leader_gauge()
    );
}

async fn wait_leading(operator: &Operator) {
    let leading = eventually(Duration::from_secs(30), || async {
        let (code, body) = operator.readyz()?;
        (code == 200 && body == "ok" && operator.leader_gauge() == Some(1)).then_some(())
    })
    .await;
    assert!(
        leading.is_some(),
        "{} leads and is Ready (/readyz {:?}, appstack_leader {:?})",
        operator.identity,
        operator.readyz(),
        operator.leader_gauge()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_after_sigkill_and_at_once_after_sigterm() {
    let env = TestEnv::without_operator("leader").await;
    let kubeconfig = operator_kubeconfig();
    let namespace = Some(env.namespace.as_str());
    let suffix = &env.namespace[env.namespace.len() - 5..];

    // The first replica may wait for a Lease an earlier run left behind to expire.
    let mut first = Operator::start(&format!("first-{suffix}"), namespace, &kubeconfig);
    let waited = wait_for_holder(&env.client, &first.identity, Duration::from_secs(30)).await;
    assert!(
        waited.is_some(),
        "the first replica takes the Lease: {:?}",
        lease_holder(&env.client).await
    );
    wait_leading(&first).await;
    let mut second = Operator::start(&format!("second-{suffix}"), namespace, &kubeconfig);
    wait_standby(&second).await;

    env.apply_stack(&small_stack("books", ""))
        .await
        .expect("stack applies");
    env.wait_ready("books").await;

    // SIGKILL: nothing released; the standby waits for the Lease to expire.
    let killed = Instant::now();
    first.kill();
    let after_kill = wait_for_holder(&env.client, &second.identity, AFTER_KILL * 2)
        .await
        .map(|_| killed.elapsed())
        .expect("the standby took the Lease");
    println!("failover after SIGKILL of the leader: {after_kill:.2?} (bound {AFTER_KILL:?})");
    assert!(after_kill < AFTER_KILL, "took {after_kill:?}");
    wait_leading(&second).await;

    // The new leader reconciles: a spec change reaches the stack.
    let changed = env
        .patch_spec(
            "books",
            serde_json::json!({"api": {"image": "registry.example.com/api:2"}}),
        )
        .await;
    env.wait_ready_at("books", changed.metadata.generation)
        .await;

    // SIGTERM: the leader finishes, releases the Lease and exits cleanly; the standby leads at
    // once.
    let mut third = Operator::start(&format!("third-{suffix}"), namespace, &kubeconfig);
    wait_standby(&third).await;
    let terminated = Instant::now();
    second.terminate();
    let after_term = wait_for_holder(&env.client, &third.identity, AFTER_KILL)
        .await
        .map(|_| terminated.elapsed())
        .expect("the standby took the Lease");
    println!("failover after SIGTERM of the leader: {after_term:.2?} (bound {AFTER_TERM:?})");
    assert!(after_term < AFTER_TERM, "took {after_term:?}");
    let exit = second.wait_exit(Duration::from_secs(25));
    assert!(
        exit.is_some_and(|status| status.success()),
        "a SIGTERMed leader exits cleanly: {exit:?}"
    );
    let log = std::fs::read_to_string(&second.log).unwrap_or_default();
    assert!(log.contains("released the Lease"), "{log}");
    wait_leading(&third).await;

    // A SIGTERMed standby just leaves.
    let mut fourth = Operator::start(&format!("fourth-{suffix}"), namespace, &kubeconfig);
    wait_standby(&fourth).await;
    fourth.terminate();
    let exit = fourth.wait_exit(Duration::from_secs(10));
    assert!(exit.is_some_and(|status| status.success()), "{exit:?}");
    assert_eq!(
        lease_holder(&env.client).await,
        Some(third.identity.clone())
    );

    third.terminate();
    third.wait_exit(Duration::from_secs(25));
    env.finish().await;
}
