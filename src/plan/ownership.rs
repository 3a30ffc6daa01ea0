//! Whose object is it? Identity first: a controller reference to this stack (or to an earlier
//! AppStack of the same name, which a re-created stack takes over) makes it ours whatever its
//! labels say. Without a controller reference, the operator's labels for this stack make it ours
//! (retained data and orphaned children). Anything else belongs to someone else and is never
//! written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::crd::GROUP;
use crate::resources::{LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY};

/// How an existing object stands towards a stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Ours,
    Foreign,
    /// Being deleted: not data to protect, not to adopt, not to mount.
    Terminating,
}

/// The stack as ownership sees it: its name, and its UID once the API server gave it one.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub uid: Option<&'a str>,
}

pub fn standing(meta: &ObjectMeta, owner: Owner<'_>) -> Standing {
    if meta.deletion_timestamp.is_some() {
        return Standing::Terminating;
    }
    let controller = meta
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    let ours = match controller {
        Some(reference) => is_stack_reference(reference, owner),
        None => {
            let labels = meta.labels.as_ref();
            let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
            label(LABEL_MANAGED_BY) == Some(MANAGED_BY) && label(LABEL_INSTANCE) == Some(owner.name)
        }
    };
    if ours {
        Standing::Ours
    } else {
        Standing::Foreign
    }
}

/// A reference to this stack, or to an earlier AppStack of the same name.
fn is_stack_reference(reference: &OwnerReference, owner: Owner<'_>) -> bool {
    reference.kind == "AppStack"
        && reference.api_version.split('/').next() == Some(GROUP)
        && (Some(reference.uid.as_str()) == owner.uid || reference.name == owner.name)
}

/// The owner references an object of ours should carry to be controlled by `controller`, or
/// `None` when it already does. References to earlier stacks of this name are dropped; others
/// (non-controller owners someone added) are kept.
pub fn adopted_references(
    meta: &ObjectMeta,
    owner: Owner<'_>,
    controller: &OwnerReference,
) -> Option<Vec<OwnerReference>> {
    let current = meta.owner_references.clone().unwrap_or_default();
    let mut wanted: Vec<OwnerReference> = current
        .iter()
        .filter(|r| !is_stack_reference(r, owner))
        .cloned()
        .collect();
    wanted.push(controller.clone());
    (wanted != current).then_some(wanted)
}

/// The owner references of a data object with every reference to this stack removed, or `None`
/// when it has none: retained data is never left to garbage collection.
pub fn released_references(meta: &ObjectMeta, owner: Owner<'_>) -> Option<Vec<OwnerReference>> {
    let current = meta.owner_references.clone().unwrap_or_default();
    let kept: Vec<OwnerReference> = current
        .iter()
        .filter(|r| !is_stack_reference(r, owner))
        .cloned()
        .collect();
    (kept.len() != current.len()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const OWNER: Owner<'static> = Owner {
        name: "books",
        uid: Some("uid-new"),
    };

    fn reference(kind: &str, name: &str, uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: if kind == "AppStack" {
                "appstack.dev/v1alpha1".into()
            } else {
                "apps/v1".into()
            },
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: Some(true),
        }
    }

    fn meta(labels: &[(&str, &str)], owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            name: Some("books-api".into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..ObjectMeta::default()
        }
    }

    const LABELS: [(&str, &str); 2] = [(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "books")];

    #[test]
    fn table_of_standings() {
        let this = reference("AppStack", "books", "uid-new", true);
        let earlier = reference("AppStack", "books", "uid-old", true);
        let other_stack = reference("AppStack", "shop", "uid-x", true);
        let replica_set = reference("ReplicaSet", "books-api-1", "uid-rs", true);
        let mut terminating = meta(&LABELS, vec![this.clone()]);
        terminating.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let cases = [
            ("labels only", meta(&LABELS, vec![]), Standing::Ours),
            (
                "controlled by us",
                meta(&LABELS, vec![this.clone()]),
                Standing::Ours,
            ),
            (
                "labels edited, controlled by us",
                meta(&[], vec![this]),
                Standing::Ours,
            ),
            (
                "earlier stack of this name",
                meta(&[], vec![earlier]),
                Standing::Ours,
            ),
            (
                "another stack",
                meta(&LABELS, vec![other_stack]),
                Standing::Foreign,
            ),
            (
                "another controller",
                meta(&LABELS, vec![replica_set]),
                Standing::Foreign,
            ),
            ("no labels, no owner", meta(&[], vec![]), Standing::Foreign),
            (
                "other instance",
                meta(
                    &[(LABEL_MANAGED_BY, MANAGED_BY), (LABEL_INSTANCE, "shop")],
                    vec![],
                ),
                Standing::Foreign,
            ),
            ("terminating", terminating, Standing::Terminating),
        ];
        for (case, meta, expected) in cases {
            assert_eq!(standing(&meta, OWNER), expected, "{case}");
        }
    }

    #[test]
    fn adoption_replaces_earlier_stacks_and_keeps_other_owners() {
        let ours = reference("AppStack", "books", "uid-new", true);
        let earlier = reference("AppStack", "books", "uid-old", true);
        let mut someone = reference("ConfigMap", "x", "uid-cm", false);
        someone.api_version = "v1".into();
        let orphaned = meta(&LABELS, vec![]);
        assert_eq!(
            adopted_references(&orphaned, OWNER, &ours),
            Some(vec![ours.clone()])
        );
        let stale = meta(&LABELS, vec![someone.clone(), earlier]);
        assert_eq!(
            adopted_references(&stale, OWNER, &ours),
            Some(vec![someone.clone(), ours.clone()])
        );
        let done = meta(&LABELS, vec![someone, ours.clone()]);
        assert_eq!(adopted_references(&done, OWNER, &ours), None);
    }

    #[test]
    fn release_drops_only_stack_references() {
        let mut someone = reference("ConfigMap", "x", "uid-cm", false);
        someone.api_version = "v1".into();
        let owned = meta(
            &LABELS,
            vec![
                reference("AppStack", "books", "uid-old", true),
                someone.clone(),
            ],
        );
        assert_eq!(
            released_references(&owned, OWNER),
            Some(vec![someone.clone()])
        );
        assert_eq!(
            released_references(&meta(&LABELS, vec![someone]), OWNER),
            None
        );
    }
}
