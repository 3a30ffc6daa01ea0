//! Applying one child object: read it, refuse to touch it when it is not ours, skip the write when
//! it already matches, otherwise server-side apply it; and delete children that are no longer
//! wanted. Every write becomes a Kubernetes Event on the AppStack and a metric.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Context;
use super::error::Error;
use crate::diff;
use crate::resources::{LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY};

/// The field manager of every object the operator applies.
pub const FIELD_MANAGER: &str = "appstack-operator";
/// Co-owns a Deployment's `replicas` while it is handed to an autoscaler (see
/// [`Children::hand_replicas_to_autoscaler`]).
const HANDOVER_MANAGER: &str = "appstack-operator-handover";

/// What a child kind needs for the generic apply.
pub trait Child:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + k8s_openapi::Resource
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
    /// The kind, for messages and metrics.
    const KIND: &'static str = <Self as k8s_openapi::Resource>::KIND;
}
impl<K> Child for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

/// The children of one stack.
pub struct Children<'a> {
    ctx: &'a Context,
    namespace: String,
    stack_name: String,
    stack_ref: k8s_openapi::api::core::v1::ObjectReference,
}

impl<'a> Children<'a> {
    pub fn new(ctx: &'a Context, stack: &crate::crd::AppStack) -> Self {
        Self {
            ctx,
            namespace: stack.namespace().unwrap_or_default(),
            stack_name: stack.name_any(),
            stack_ref: stack.object_ref(&()),
        }
    }

    fn api<K: Child>(&self) -> Api<K> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    pub async fn get<K: Child>(&self, name: &str) -> Result<Option<K>, Error> {
        self.api::<K>()
            .get_opt(name)
            .await
            .map_err(|e| Error::from_kube(<K as Child>::KIND, name, e))
    }

    /// Ours: labelled as managed by this operator for this stack, and not controlled by anything
    /// but an AppStack of this name (a re-created stack has a new UID and adopts its children).
    pub fn is_ours<K: Child>(&self, object: &K) -> bool {
        let labels = object.labels();
        let labelled = labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
            && labels.get(LABEL_INSTANCE) == Some(&self.stack_name);
        let controller_ok = object.owner_references().iter().all(|owner| {
            owner.controller != Some(true)
                || (owner.kind == "AppStack" && owner.name == self.stack_name)
        });
        labelled && controller_ok
    }

    pub fn ensure_ours<K: Child>(&self, object: &K) -> Result<(), Error> {
        if self.is_ours(object) {
            Ok(())
        } else {
            Err(Error::NameConflict {
                kind: <K as Child>::KIND,
                name: object.name_any(),
            })
        }
    }

    /// Make the cluster hold `desired`, reading the current object first.
    pub async fn apply<K: Child>(&self, desired: &K) -> Result<K, Error> {
        let existing = self.get::<K>(&desired.name_any()).await?;
        self.apply_over(existing, desired).await
    }

    /// Make the cluster hold `desired`, given the object there now (`None`: there is none).
    pub async fn apply_over<K: Child>(&self, existing: Option<K>, desired: &K) -> Result<K, Error> {
        let name = desired.name_any();
        if let Some(existing) = existing {
            self.ensure_ours(&existing)?;
            if matches_desired(&existing, desired) {
                return Ok(existing);
            }
            let applied = match self.server_side_apply(&name, desired).await {
                // Server-side apply keeps list entries that others added, and the union can be
                // invalid (a Service port renamed by hand clashes with ours): replace instead.
                Err(Error::Rejected { .. }) => self.replace_merged(existing, desired).await?,
                result => result?,
            };
            self.record_write::<K>("Updated", &name).await;
            Ok(applied)
        } else {
            let applied = self.server_side_apply(&name, desired).await?;
            self.record_write::<K>("Created", &name).await;
            Ok(applied)
        }
    }

    /// Replace `existing` with `desired` laid over it (see [`diff::overlay`]), guarded by its
    /// resourceVersion.
    async fn replace_merged<K: Child>(&self, existing: K, desired: &K) -> Result<K, Error> {
        let name = desired.name_any();
        let invalid = |e: serde_json::Error| Error::Rejected {
            kind: <K as Child>::KIND,
            name: name.clone(),
            message: e.to_string(),
            source: Box::new(kube::Error::SerdeError(e)),
        };
        let mut merged = serde_json::to_value(&existing).map_err(invalid)?;
        diff::overlay(
            &mut merged,
            &serde_json::to_value(desired).map_err(invalid)?,
        );
        if let Some(meta) = merged.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            // Absent managedFields keep the server's record; sent ones would overwrite it.
            meta.remove("managedFields");
        }
        let object: K = serde_json::from_value(merged).map_err(invalid)?;
        let params = kube::api::PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        self.api::<K>()
            .replace(&name, &params, &object)
            .await
            .map_err(|e| Error::from_kube(<K as Child>::KIND, &name, e))
    }

    async fn server_side_apply<K: Child>(&self, name: &str, desired: &K) -> Result<K, Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.api::<K>()
            .patch(name, &params, &Patch::Apply(desired))
            .await
            .map_err(|e| Error::from_kube(<K as Child>::KIND, name, e))
    }

    /// Apply `desired` when it is `Some`, otherwise delete our object called `name` if there is
    /// one: owner references only clean up after the stack, not after a disabled feature.
    pub async fn apply_or_remove<K: Child>(
        &self,
        name: &str,
        desired: Option<&K>,
    ) -> Result<(), Error> {
        match desired {
            Some(desired) => self.apply(desired).await.map(drop),
            None => self.remove::<K>(name).await,
        }
    }

    /// Delete our object `name`; a foreign object of that name is left alone.
    pub async fn remove<K: Child>(&self, name: &str) -> Result<(), Error> {
        match self.get::<K>(name).await? {
            Some(object) if self.is_ours(&object) => {
                self.api::<K>()
                    .delete(name, &DeleteParams::background())
                    .await
                    .map_err(|e| Error::from_kube(<K as Child>::KIND, name, e))?;
                self.record_write::<K>("Deleted", name).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Remove the owner references to this stack from a data-bearing object, so that garbage
    /// collection keeps it when the stack goes. Returns whether the object exists.
    pub async fn release<K: Child>(&self, name: &str, stack_uid: &str) -> Result<bool, Error> {
        let Some(object) = self.get::<K>(name).await? else {
            return Ok(false);
        };
        if !self.is_ours(&object) {
            return Ok(true);
        }
        let owners = object.owner_references();
        let kept: Vec<_> = owners
            .iter()
            .filter(|o| o.uid != stack_uid)
            .cloned()
            .collect();
        if kept.len() != owners.len() {
            // The resourceVersion makes this a compare-and-swap on the list we filtered.
            let patch = json!({"metadata": {
                "ownerReferences": kept,
                "resourceVersion": object.resource_version(),
            }});
            self.api::<K>()
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::from_kube(<K as Child>::KIND, name, e))?;
            self.record_write::<K>("Released", name).await;
        }
        Ok(true)
    }

    /// Before the operator stops applying a Deployment's `replicas` (because an autoscaler takes
    /// over), give the field a second owner with its current value. Otherwise server-side apply
    /// would drop the field and Kubernetes would reset the Deployment to 1 replica until the
    /// autoscaler reacts. This is the hand-over the Kubernetes server-side apply docs describe.
    pub async fn hand_replicas_to_autoscaler(
        &self,
        existing: &k8s_openapi::api::apps::v1::Deployment,
    ) -> Result<(), Error> {
        let owns_replicas = |manager: &str| {
            existing.managed_fields().iter().any(|entry| {
                entry.manager.as_deref() == Some(manager)
                    && entry.fields_v1.as_ref().is_some_and(|f| {
                        f.0.get("f:spec")
                            .and_then(|s| s.get("f:replicas"))
                            .is_some()
                    })
            })
        };
        let Some(replicas) = existing.spec.as_ref().and_then(|s| s.replicas) else {
            return Ok(());
        };
        // Nothing to hand over, or handed over already.
        if !owns_replicas(FIELD_MANAGER) || owns_replicas(HANDOVER_MANAGER) {
            return Ok(());
        }
        let name = existing.name_any();
        let patch = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": replicas},
        });
        // No force: if the autoscaler already owns the field, the conflict means it is handled.
        match self
            .api::<k8s_openapi::api::apps::v1::Deployment>()
            .patch(
                &name,
                &PatchParams::apply(HANDOVER_MANAGER),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(Error::from_kube("Deployment", &name, e)),
        }
    }

    async fn record_write<K: Child>(&self, action: &str, name: &str) {
        self.ctx.metrics.child_write(<K as Child>::KIND, action);
        tracing::info!(
            kind = <K as Child>::KIND,
            name,
            action,
            "child object written"
        );
        self.publish(
            EventType::Normal,
            action,
            format!("{action} {} {name}", <K as Child>::KIND),
        )
        .await;
    }

    /// Publish an Event on the AppStack. Events are best effort: failing to record one must not
    /// fail the reconcile.
    pub async fn publish(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.ctx.recorder.publish(&event, &self.stack_ref).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}

/// The cluster's object already holds every field `desired` sets.
fn matches_desired<K: Serialize>(existing: &K, desired: &K) -> bool {
    match (
        serde_json::to_value(existing),
        serde_json::to_value(desired),
    ) {
        (Ok(observed), Ok(wanted)) => diff::contains(&observed, &wanted),
        _ => false,
    }
}
