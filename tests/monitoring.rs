//! The operator's metrics and the monitoring assets under `deploy/monitoring/`:
//! - `appstack_stacks{phase}` against the local control plane (`tests/cluster/up.sh`): stacks are
//!   counted by phase and leave the count when they are deleted;
//! - the Grafana dashboard and the PrometheusRule name only metrics the operator exposes, and the
//!   dashboard shows every one of them;
//! - promtool (`tests/tools/build.sh promtool`) checks the rules and the dashboard's queries and
//!   runs the alerts' unit tests, `tests/monitoring/alerts.test.yaml`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use appstack_operator::crd::{AppStack, Phase};
use appstack_operator::metrics::Metrics;
use common::{TIMEOUT, TestEnv, eventually, repo, small_stack};
use kube::api::DeleteParams;
use serde_json::{Value, json};

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
    env.create_foreign_service("clash-api", json!({})).await;
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

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo().join("deploy/monitoring/dashboard.json")).unwrap();
    serde_json::from_str(&text).expect("dashboard.json is JSON")
}

fn prometheus_rule() -> Value {
    let text =
        std::fs::read_to_string(repo().join("deploy/monitoring/prometheusrule.yaml")).unwrap();
    serde_saphyr::from_str(&text).expect("prometheusrule.yaml is YAML")
}

/// Every query of the dashboard, as (panel title, expression).
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            queries.push((panel["title"].as_str().unwrap().to_owned(), expr.to_owned()));
        }
    }
    queries
}

/// Every `appstack_*` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("appstack_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// What the operator exposes once each of its metrics has a sample.
fn exposition() -> String {
    let metrics = Metrics::default();
    metrics.reconciled("success", Duration::from_millis(20));
    metrics.failed("KubeError");
    metrics.child_write("Deployment", "Created");
    metrics.status_write();
    metrics.api_request("get");
    metrics.count_stacks(Box::new(|| vec![Some(Phase::Ready)]));
    metrics.encode()
}

#[test]
fn dashboard_and_alerts_use_only_metrics_the_operator_exposes_and_show_them_all() {
    let exposed = exposition();
    let is_exposed = |name: &str| {
        exposed.lines().any(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
    };
    let dashboard = dashboard();
    let queries = dashboard_queries(&dashboard);
    let dashboard_text: String = queries.iter().map(|(_, e)| format!("{e}\n")).collect();
    let rules_text = serde_json::to_string(&prometheus_rule()["spec"]).unwrap();
    for (asset, text) in [
        ("dashboard.json", &dashboard_text),
        ("prometheusrule.yaml", &rules_text),
    ] {
        let names = metric_names(text);
        assert!(!names.is_empty(), "{asset} names appstack metrics");
        for name in names {
            assert!(
                is_exposed(&name),
                "{asset} names {name}, which src/metrics.rs does not expose:\n{exposed}"
            );
        }
    }
    // Every family the operator exposes has a panel.
    let families: Vec<&str> = exposed
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    assert!(families.len() >= 6, "{families:?}");
    for family in families {
        assert!(
            dashboard_text.contains(family),
            "no dashboard panel shows {family}"
        );
    }
}

#[test]
fn the_dashboard_is_a_grafana_dashboard_on_a_chosen_prometheus() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "appstack-operator");
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().expect("a title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("an id")),
            "{title}: unique id"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        for key in ["x", "y", "w", "h"] {
            assert!(panel["gridPos"][key].is_u64(), "{title}: gridPos.{key}");
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title}: a query");
        for target in targets {
            assert!(target["refId"].is_string(), "{title}: refId");
        }
    }
}

/// promtool, built once by `tests/tools/build.sh`.
fn promtool() -> PathBuf {
    let output = Command::new("bash")
        .args(["tests/tools/build.sh", "promtool"])
        .current_dir(repo())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "tests/tools/build.sh promtool: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn run_promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn promtool_checks_the_rules_and_the_dashboard_queries_and_runs_the_alert_tests() {
    let dir = std::env::temp_dir().join(format!("appstack-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The PrometheusRule's spec is a Prometheus rule file.
    let rule = prometheus_rule();
    assert_eq!(rule["kind"], "PrometheusRule");
    let rules = serde_saphyr::to_string(&rule["spec"]).unwrap();
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let checked = run_promtool(&dir, &["check", "rules", "rules.yaml"]);
    assert!(checked.contains("SUCCESS: 4 rules found"), "{checked}");

    // Each dashboard query as a recording rule, so that promtool parses it; Grafana fills in
    // $__rate_interval.
    let recorded: Vec<Value> = dashboard_queries(&dashboard())
        .into_iter()
        .enumerate()
        .map(|(index, (_, expr))| {
            json!({"record": format!("dashboard:query{index}"), "expr": expr.replace("$__rate_interval", "5m")})
        })
        .collect();
    let count = recorded.len();
    let queries = json!({"groups": [{"name": "dashboard", "rules": recorded}]});
    std::fs::write(
        dir.join("dashboard.yaml"),
        serde_saphyr::to_string(&queries).unwrap(),
    )
    .unwrap();
    let checked = run_promtool(&dir, &["check", "rules", "dashboard.yaml"]);
    assert!(
        checked.contains(&format!("SUCCESS: {count} rules found")),
        "{checked}"
    );

    std::fs::copy(
        repo().join("tests/monitoring/alerts.test.yaml"),
        dir.join("alerts.test.yaml"),
    )
    .unwrap();
    let tested = run_promtool(&dir, &["test", "rules", "alerts.test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");
    let _ = std::fs::remove_dir_all(&dir);
}
