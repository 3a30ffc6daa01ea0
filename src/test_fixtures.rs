//! Stacks for unit tests: a minimal valid spec with chosen top-level fields replaced.

use kube::api::ObjectMeta;
use serde_json::{Value, json};

use crate::crd::{AppStack, AppStackSpec};
use crate::stack::ValidStack;
use crate::validate::validate;

/// `books` in namespace `shop`, with the spec's top-level keys from `overrides` (YAML) replacing
/// the minimal ones.
pub fn stack_from_yaml(overrides: &str) -> AppStack {
    let mut spec = json!({
        "api": {"image": "registry.example.com/books-api:1.4.2"},
        "frontend": {"image": "registry.example.com/books-web:1.4.2"},
    });
    if !overrides.trim().is_empty() {
        let extra: Value = serde_saphyr::from_str(overrides).expect("fixture YAML parses");
        for (key, value) in extra.as_object().expect("fixture is a mapping") {
            spec[key] = value.clone();
        }
    }
    let spec: AppStackSpec = serde_json::from_value(spec).expect("fixture matches the spec");
    AppStack {
        metadata: ObjectMeta {
            name: Some("books".into()),
            namespace: Some("shop".into()),
            uid: Some("0b0e5f4e-uid".into()),
            generation: Some(3),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    }
}

/// The same, validated.
pub fn valid_stack(overrides: &str) -> ValidStack {
    validate(&stack_from_yaml(overrides)).expect("fixture is valid")
}
