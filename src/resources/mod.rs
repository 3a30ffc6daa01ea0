//! Pure builders: each child object is a function of a [`ValidStack`], with no I/O, so it can be
//! unit-tested and printed offline by `appstack-operator render`.

pub mod database;
pub mod deployment;
pub mod filesystem;
pub mod hpa;
pub mod ingress;
pub mod job;
pub mod network_policy;
pub mod pdb;
pub mod pvc;
pub mod requirements;
pub mod secret;
pub mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};
use kube::api::ObjectMeta;

use crate::stack::{Component, ValidStack};

pub const MANAGED_BY: &str = "appstack-operator";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of `app.kubernetes.io/name` on every child.
pub const APP_NAME: &str = "appstack";

/// Label selector for every object the operator manages, used to scope its watches.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// The labels that select one component's pods. They go into Deployment selectors, which are
/// immutable, so they must never change.
pub fn selector_labels(stack: &ValidStack, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.into(), APP_NAME.into()),
        (LABEL_INSTANCE.into(), stack.name.clone()),
        (LABEL_COMPONENT.into(), component.label().into()),
    ])
}

/// The recommended labels of every child.
pub fn labels(stack: &ValidStack, component: Component) -> BTreeMap<String, String> {
    let mut labels = selector_labels(stack, component);
    labels.insert(LABEL_PART_OF.into(), stack.name.clone());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
    labels
}

/// Whether a child's ownership is given to the AppStack (so garbage collection removes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Owner reference to the stack: deleted with it.
    Owned,
    /// No owner reference: outlives the stack unless the finalizer deletes it (the data-bearing
    /// claim and Secret).
    Retained,
}

pub fn object_meta(
    stack: &ValidStack,
    name: String,
    component: Component,
    ownership: Ownership,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(stack.namespace.clone()),
        labels: Some(labels(stack, component)),
        owner_references: match ownership {
            Ownership::Owned => stack.owner.clone().map(|owner| vec![owner]),
            Ownership::Retained => None,
        },
        ..ObjectMeta::default()
    }
}

/// Pod-level settings of the "restricted" Pod Security Standard.
pub fn restricted_pod_security(user: Option<i64>) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: user,
        run_as_group: user,
        fs_group: user,
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// Container-level settings of the "restricted" Pod Security Standard; [`filesystem::hardening`]
/// adds the read-only root filesystem.
pub fn restricted_container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn labels_are_the_recommended_set() {
        let stack = valid_stack("");
        let labels = labels(&stack, Component::Api);
        assert_eq!(labels[LABEL_NAME], "appstack");
        assert_eq!(labels[LABEL_INSTANCE], "books");
        assert_eq!(labels[LABEL_COMPONENT], "api");
        assert_eq!(labels[LABEL_PART_OF], "books");
        assert_eq!(labels[LABEL_MANAGED_BY], "appstack-operator");
    }

    #[test]
    fn retained_objects_have_no_owner() {
        let stack = valid_stack("");
        let owned = object_meta(&stack, "x".into(), Component::Api, Ownership::Owned);
        let refs = owned.owner_references.unwrap();
        assert_eq!(refs[0].kind, "AppStack");
        assert_eq!(refs[0].controller, Some(true));
        let retained = object_meta(&stack, "x".into(), Component::Database, Ownership::Retained);
        assert_eq!(retained.owner_references, None);
    }
}
