//! Does a child need a write? A stack whose children match costs zero writes, and what the spec
//! removes must still reach the cluster.
//!
//! Two checks, both pure:
//! - Every desired object carries [`APPLIED_HASH`], a digest of everything else in it. When the
//!   spec changes, removals included, the digest changes, and the server-side apply that follows
//!   drops the fields the operator no longer sets (it owns them as the field manager).
//! - "Desired is contained in live" (Knative's `DeepDerivative`): the API server adds defaults
//!   (`imagePullPolicy`, `clusterIP`, …) that the desired object leaves out, so only the fields
//!   the operator sets are compared, quantities by amount rather than spelling. This catches
//!   drift: someone else changing or deleting a field the operator sets.
//!
//! Fields that other managers add (a sidecar injected by a webhook, `kubectl set env`) are left
//! alone: items of named lists are matched by name, so an extra item is no difference.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::child::Object;
use crate::quantity;

/// Annotation with the digest of what the operator last applied to a child.
pub const APPLIED_HASH: &str = "appstack.dev/applied-hash";

/// Put the digest of `object` (without the annotation itself) into its annotations.
pub fn stamp(object: &mut Object) {
    let meta = object.meta_mut();
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(APPLIED_HASH);
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    let digest = Sha256::digest(object.to_value().to_string().as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    object
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_HASH.to_owned(), hash);
}

/// A stamped `desired` object must be written over `live`.
pub fn needs_write(live: &Object, desired: &Object) -> bool {
    !contains(&live.to_value(), &desired.to_value())
}

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
        // Named items (containers, env, ports, volumes, owner references) are matched by name,
        // and other managers may add more. Other lists compare item by item, same length.
        (Value::Array(have), Value::Array(want)) => match names(want) {
            Some(wanted) => wanted.iter().zip(want).all(|(name, w)| {
                have.iter()
                    .find(|h| h.get("name").and_then(Value::as_str) == Some(name))
                    .is_some_and(|h| contains_at(h, w, false))
            }),
            None => {
                have.len() == want.len()
                    && have.iter().zip(want).all(|(h, w)| contains_at(h, w, false))
            }
        },
        (Value::String(have), Value::String(want)) if quantities => {
            quantity::same_amount(have, want)
        }
        (have, want) => have == want,
    }
}

/// The names of a list's items, when every item is an object with a name.
fn names(items: &[Value]) -> Option<Vec<&str>> {
    if items.is_empty() {
        return None;
    }
    items
        .iter()
        .map(|item| item.get("name").and_then(Value::as_str))
        .collect()
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
        let missing = json!({"spec": {"template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}}}});
        let renamed = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "a:1"}]}}}});
        for observed in [scaled, retagged, missing, renamed] {
            assert!(!contains(&observed, &desired), "{observed}");
        }
    }

    #[test]
    fn items_other_managers_add_to_named_lists_are_no_difference() {
        let desired =
            json!({"containers": [{"name": "api", "env": [{"name": "A", "value": "1"}]}]});
        let extended = json!({"containers": [
            {"name": "istio-proxy", "image": "proxy"},
            {"name": "api", "env": [{"name": "FROM_KUBECTL", "value": "x"}, {"name": "A", "value": "1"}]}]});
        assert!(contains(&extended, &desired));
        let unnamed = json!({"tls": [{"hosts": ["a"]}]});
        let more = json!({"tls": [{"hosts": ["a"]}, {"hosts": ["b"]}]});
        assert!(!contains(&more, &unnamed), "unnamed lists compare whole");
    }

    #[test]
    fn removing_a_field_changes_the_stamp() {
        let service = |selector: serde_json::Value| -> Object {
            Object::Service(
                serde_json::from_value(
                    json!({"metadata": {"name": "s"}, "spec": {"selector": selector}}),
                )
                .unwrap(),
            )
        };
        let mut before = service(json!({"a": "1", "b": "2"}));
        let mut after = service(json!({"a": "1"}));
        stamp(&mut before);
        stamp(&mut after);
        assert!(
            needs_write(&before, &after),
            "the live object contains the new desired one, but the digest differs"
        );
        let mut again = service(json!({"a": "1"}));
        stamp(&mut again);
        stamp(&mut again);
        assert!(!needs_write(&after, &again), "stamping is stable");
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
