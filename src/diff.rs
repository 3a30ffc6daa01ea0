//! Does an object in the cluster already say everything the operator would apply? If so the
//! apply is skipped, so a stack whose children match costs zero writes.
//!
//! The test is "desired is contained in observed" (Knative's `DeepDerivative`): the API server
//! adds defaults (`imagePullPolicy`, `clusterIP`, …) that the desired object leaves out, so only
//! the fields the operator sets are compared, and quantities by amount rather than spelling.

use serde_json::Value;

use crate::quantity;

/// Maps whose values are quantities in every Kubernetes type that has them.
const QUANTITY_MAPS: [&str; 3] = ["requests", "limits", "capacity"];

pub fn contains(observed: &Value, desired: &Value) -> bool {
    contains_at(observed, desired, false)
}

fn contains_at(observed: &Value, desired: &Value, quantities: bool) -> bool {
    match (observed, desired) {
        (_, Value::Null) => true,
        (Value::Object(have), Value::Object(want)) => want.iter().all(|(key, value)| {
            // Inside a quantity map every value is a quantity.
            let quantity = quantities || QUANTITY_MAPS.contains(&key.as_str());
            match have.get(key) {
                Some(found) => contains_at(found, value, quantity),
                None => is_empty(value),
            }
        }),
        // Lists are compared item by item: same length, each item contained in its peer.
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| contains_at(h, w, false))
        }
        (Value::String(have), Value::String(want)) if quantities => {
            quantity::same_amount(have, want)
        }
        (have, want) => have == want,
    }
}

/// Lay `top` over `base`: maps merge key by key, everything else (lists, scalars) is replaced.
/// Used to restore a child whose drift server-side apply cannot undo, keeping the fields the
/// API server filled in (a Service's `clusterIP`) while our lists replace theirs wholesale.
pub fn overlay(base: &mut Value, top: &Value) {
    match (base, top) {
        (Value::Object(base), Value::Object(top)) => {
            for (key, value) in top {
                match base.get_mut(key) {
                    Some(existing) => overlay(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, top) => *base = top.clone(),
    }
}

/// The API server drops empty maps and lists, so their absence is no difference.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().all(is_empty),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_defaults_are_not_differences() {
        let observed = json!({"spec": {"replicas": 2, "revisionHistoryLimit": 10,
            "template": {"spec": {"containers": [{"name": "api", "image": "a:1", "imagePullPolicy": "IfNotPresent"}]}}}});
        let desired = json!({"spec": {"replicas": 2,
            "template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}}}});
        assert!(contains(&observed, &desired));
    }

    #[test]
    fn edits_and_removals_are_differences() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}}}});
        let scaled = json!({"spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}}}});
        let retagged = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "api", "image": "a:2"}]}}}});
        let sidecar = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "api", "image": "a:1"}, {"name": "x", "image": "x"}]}}}});
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}}}});
        for observed in [scaled, retagged, sidecar, missing] {
            assert!(!contains(&observed, &desired), "{observed}");
        }
    }

    #[test]
    fn quantities_compare_by_amount_only_in_quantity_maps() {
        let desired = json!({"resources": {"requests": {"memory": "1.5Gi", "cpu": "0.1"}}, "env": [{"value": "1k"}]});
        let canonical = json!({"resources": {"requests": {"memory": "1536Mi", "cpu": "100m"}}, "env": [{"value": "1k"}]});
        assert!(contains(&canonical, &desired));
        let env_rewritten = json!({"resources": {"requests": {"memory": "1536Mi", "cpu": "100m"}}, "env": [{"value": "1000"}]});
        assert!(
            !contains(&env_rewritten, &desired),
            "env values are plain strings"
        );
    }

    #[test]
    fn overlay_replaces_lists_and_keeps_server_fields() {
        let mut observed = json!({"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 9999}, {"port": 8080}], "selector": {"a": "x", "b": "y"}}});
        let desired = json!({"spec": {"ports": [{"port": 8080}], "selector": {"a": "z"}}});
        overlay(&mut observed, &desired);
        assert_eq!(
            observed,
            json!({"spec": {"clusterIP": "10.96.0.9", "ports": [{"port": 8080}], "selector": {"a": "z", "b": "y"}}})
        );
        assert!(contains(&observed, &desired));
    }

    #[test]
    fn absent_empty_values_are_equal() {
        assert!(contains(
            &json!({"a": 1}),
            &json!({"a": 1, "labels": {}, "list": []})
        ));
        assert!(!contains(
            &json!({"a": 1}),
            &json!({"a": 1, "labels": {"x": "y"}})
        ));
    }
}
