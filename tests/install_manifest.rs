//! `deploy/install.yaml` is the CRD plus `deploy/operator.part.yaml` (see deploy/generate.sh), and
//! its RBAC stays least-privilege; the namespace-scoped overlay `deploy/namespaced/` grants the
//! same rules as a Role. (tests/namespaced.rs builds and runs that overlay.)

use appstack_operator::crd::AppStack;
use kube::CustomResourceExt;
use serde_json::Value;

const INSTALL: &str = include_str!("../deploy/install.yaml");
const OPERATOR_PART: &str = include_str!("../deploy/operator.part.yaml");
const NAMESPACED_OPERATOR: &str = include_str!("../deploy/namespaced/operator.yaml");
const NAMESPACED_ROLE: &str = include_str!("../deploy/namespaced/role.yaml");

fn documents() -> Vec<Value> {
    serde_saphyr::from_multiple(INSTALL).expect("install.yaml parses")
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn install_is_generated_from_the_crd_and_operator_part() {
    let crd = serde_saphyr::to_string(&AppStack::crd()).unwrap();
    assert!(
        INSTALL.contains(&crd) && INSTALL.ends_with(OPERATOR_PART),
        "deploy/install.yaml is stale: run deploy/generate.sh"
    );
    let docs = documents();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Deployment",
            "PodDisruptionBudget",
            "NetworkPolicy"
        ]
    );
}

#[test]
fn namespaced_overlay_is_generated_with_the_cluster_roles_rules() {
    assert!(
        NAMESPACED_OPERATOR.ends_with(OPERATOR_PART),
        "deploy/namespaced/operator.yaml is stale: run deploy/generate.sh"
    );
    let role: Value = serde_saphyr::from_str(NAMESPACED_ROLE).expect("role.yaml parses");
    assert_eq!(role["kind"], "Role");
    let docs = documents();
    assert_eq!(
        role["rules"],
        find(&docs, "ClusterRole")["rules"],
        "deploy/namespaced/role.yaml is stale: run deploy/generate.sh"
    );
}

#[test]
fn cluster_role_has_no_wildcards_and_no_unneeded_verbs() {
    let docs = documents();
    let rules = find(&docs, "ClusterRole")["rules"].as_array().unwrap();
    for rule in rules {
        for field in ["apiGroups", "resources", "verbs"] {
            assert!(
                rule[field].as_array().unwrap().iter().all(|v| v != "*"),
                "wildcard in {rule}"
            );
        }
        let verbs: Vec<&str> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            !verbs.contains(&"update") && !verbs.contains(&"deletecollection"),
            "{rule}"
        );
        let resources = rule["resources"].to_string();
        // Deployments: only the database Deployment of an earlier version is deleted.
        if resources.contains("statefulsets") || resources.contains("services") {
            assert!(
                !verbs.contains(&"delete"),
                "garbage collection deletes these: {rule}"
            );
        }
    }
}

#[test]
fn operator_pod_is_restricted_and_probed() {
    let docs = documents();
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["name"], "operator");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for bound in ["requests", "limits"] {
        for resource in ["memory", "ephemeral-storage"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "{bound}.{resource}"
            );
        }
    }
    let policy = find(&docs, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        find(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "metrics");
    let budget = find(&docs, "PodDisruptionBudget");
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        find(&docs, "Deployment")["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
}

#[test]
fn leader_election_adds_only_lease_verbs_in_the_operator_namespace() {
    let docs = documents();
    let role = find(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"], "appstack-system");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "create", "patch"]}])
    );
    let binding = find(&docs, "RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "appstack-system");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], "appstack-operator");
    let cluster_rules = find(&docs, "ClusterRole")["rules"].to_string();
    assert!(
        !cluster_rules.contains("leases"),
        "no Lease verbs cluster-wide"
    );
}

#[test]
fn two_replicas_spread_and_know_their_pod() {
    let docs = documents();
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(
        anti["preferredDuringSchedulingIgnoredDuringExecution"].is_array()
            && anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null(),
        "preferred, not required (a one-node cluster runs both): {anti}"
    );
    let env = pod["containers"][0]["env"].as_array().unwrap();
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let var = env
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], field);
    }
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap() > 20,
        "the drain fits"
    );
}
