//! `crd/appstack.yaml` must be exactly what the Rust types generate, and carry what kubectl users
//! rely on: subresources, printer columns, short name, category and the CEL rules.

use appstack_operator::crd::AppStack;
use kube::CustomResourceExt;

const CHECKED_IN: &str = include_str!("../crd/appstack.yaml");

fn generated() -> String {
    serde_saphyr::to_string(&AppStack::crd()).expect("the CRD serializes")
}

#[test]
fn checked_in_crd_matches_the_types() {
    assert!(
        CHECKED_IN == generated(),
        "crd/appstack.yaml is stale: run `cargo run -- crd > crd/appstack.yaml`"
    );
}

#[test]
fn crd_has_subresources_columns_names_and_rules() {
    let crd = AppStack::crd();
    assert_eq!(crd.spec.group, "appstack.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(
        crd.spec.names.short_names.as_deref(),
        Some(&["stack".to_owned()][..])
    );
    assert_eq!(
        crd.spec.names.categories.as_deref(),
        Some(&["all".to_owned()][..])
    );
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let subresources = version.subresources.as_ref().expect("subresources");
    assert!(subresources.status.is_some());
    let scale = subresources.scale.as_ref().expect("scale subresource");
    assert_eq!(scale.spec_replicas_path, ".spec.api.replicas");
    assert_eq!(
        scale.status_replicas_path,
        ".status.components.api.replicas"
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Ready", "Phase", "API", "URL", "Age"]);

    let schema = serde_json::to_string(&version.schema).unwrap();
    for rule in [
        "self.minReplicas <= self.maxReplicas",
        "quantity(self).compareTo(quantity(oldSelf)) >= 0",
        "isQuantity(self)",
        "self.startsWith('/') && self != '/'",
        "self.metadata.name.size() <= 54",
    ] {
        assert!(schema.contains(rule), "missing CEL rule {rule}");
    }
    for default in [
        r#""default":5000"#,
        r#""default":"postgres:17""#,
        r#""default":"/api""#,
    ] {
        assert!(schema.contains(default), "missing default {default}");
    }
    assert!(
        schema.contains(r#""x-kubernetes-list-map-keys":["type"]"#),
        "conditions are a list-map"
    );
}

#[test]
fn every_spec_field_is_described() {
    // `kubectl explain appstack.spec.<field>` should always say something.
    let crd = AppStack::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    let mut undocumented = Vec::new();
    walk(spec, "spec", &mut undocumented);
    assert!(
        undocumented.is_empty(),
        "fields without a description: {undocumented:?}"
    );
}

fn walk(node: &serde_json::Value, path: &str, undocumented: &mut Vec<String>) {
    if let Some(properties) = node["properties"].as_object() {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            if child["description"].as_str().is_none_or(str::is_empty) {
                undocumented.push(child_path.clone());
            }
            // Embedded Kubernetes types (env, resources) are documented upstream.
            if !matches!(name.as_str(), "env" | "resources") {
                walk(child, &child_path, undocumented);
            }
        }
    }
}
