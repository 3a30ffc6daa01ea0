//! The operator's metrics and the monitoring assets under `deploy/monitoring/`.
//!
//! `appstack_stacks{phase}` against the local control plane (`tests/cluster/up.sh`): stacks are
//! counted by phase and leave the count when they are deleted.

mod common;

use appstack_operator::crd::AppStack;
use common::{TIMEOUT, TestEnv, eventually, small_stack};
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

/// The value of `appstack_stacks{phase="<phase>"}`, if exposed.
fn stacks_in(text: &str, phase: &str) -> Option<i64> {
    let prefix = format!("appstack_stacks{{phase=\"{phase}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix)?.trim().parse().ok())
}

/// Wait until the operator's metrics count `ready` Ready and `failed` Failed stacks.
async fn wait_counts(env: &TestEnv, ready: i64, failed: i64) {
    let seen = eventually(TIMEOUT, || async {
        let text = env.metrics.encode();
        (stacks_in(&text, "Ready") == Some(ready) && stacks_in(&text, "Failed") == Some(failed))
            .then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "appstack_stacks: wanted Ready {ready} and Failed {failed}; exposed:\n{}",
        env.metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("appstack_stacks"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_are_counted_by_phase_and_leave_the_count_when_deleted() {
    let env = TestEnv::start("stackgauge").await;
    env.apply_stack(&small_stack("good", "")).await.unwrap();
    env.wait_ready("good").await;
    // A Service of someone else's under the second stack's name: that stack is Failed.
    let foreign: Service = serde_json::from_value(json!({
        "metadata": {"name": "clash-api"},
        "spec": {"ports": [{"port": 1234}], "selector": {"app": "theirs"}}
    }))
    .unwrap();
    env.api::<Service>()
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    env.apply_stack(&small_stack("clash", "")).await.unwrap();
    wait_counts(&env, 1, 1).await;
    let text = env.metrics.encode();
    for phase in ["Pending", "Progressing", "Degraded", "Deleting"] {
        assert_eq!(stacks_in(&text, phase), Some(0), "{phase} exposed as 0");
    }

    for name in ["good", "clash"] {
        env.delete_stack(name, DeleteParams::background()).await;
        env.wait_gone::<AppStack>(name).await;
    }
    wait_counts(&env, 0, 0).await;
    env.finish().await;
}
