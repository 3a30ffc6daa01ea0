//! Carry out a plan's writes, in order, and nothing else. Returns the children as the writes
//! left them, for the status. Every write is a metric, a log line and an entry in `writes` (for the
//! reconcile's Events).

use std::collections::BTreeMap;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::Context;
use super::dereference::typed;
use super::error::Error;
use super::events::Writes;
use crate::plan::child::{Existing, Kind, Object, Slot};
use crate::plan::handover::HANDOVER_MANAGER;
use crate::plan::{Change, FIELD_MANAGER, Plan, Step};
use crate::reasons;

/// Sets owner references (adoption, release).
const OWNERSHIP_MANAGER: &str = "appstack-operator-ownership";
/// Restores drift that server-side apply cannot undo (see [`Writer::restore`]).
const RESTORE_MANAGER: &str = "appstack-operator-restore";
/// Scales the database down while its claim is being deleted.
const STOP_MANAGER: &str = "appstack-operator-stop";
/// A resourceVersion no stored object has: etcd's revisions count up from 1 and are signed 64-bit
/// numbers, so none reaches the largest.
const NO_STORED_VERSION: &str = "9223372036854775807";

pub async fn execute(
    ctx: &Context,
    writes: &mut Writes,
    namespace: &str,
    plan: &Plan,
    existing: Existing,
) -> Result<BTreeMap<Slot, Object>, Error> {
    let writer = Writer {
        client: &ctx.client,
        namespace,
    };
    let caches = ctx.caches();
    let mut children = existing.children;
    for step in &plan.steps {
        let (reason, slot, written) = match step {
            Step::Apply {
                object,
                change: Change::Create,
            } => {
                let written = writer.apply_new(object).await?;
                (reasons::CREATED, object.slot(), Some(written))
            }
            Step::Apply { object, change } => {
                let slot = object.slot();
                let (written, reason) = match writer.apply(object).await {
                    // Server-side apply keeps list entries that others added, and the union can
                    // be invalid (a Service port renamed by hand clashes with ours).
                    Err(Error::Rejected { .. }) if *change == Change::Update => {
                        let live = children.get(&slot).map(Object::to_value);
                        (writer.restore(object, live).await?, reasons::RESTORED)
                    }
                    result => (
                        result?,
                        if *change == Change::RollBack {
                            reasons::ROLLED_BACK
                        } else {
                            reasons::UPDATED
                        },
                    ),
                };
                (reason, slot, Some(written))
            }
            Step::Create { object } => {
                let written = writer.create(object).await?;
                (reasons::CREATED, object.slot(), Some(written))
            }
            Step::SetOwners {
                slot,
                owners,
                resource_version,
                reason,
            } => {
                let patch = json!({"metadata": {
                    "ownerReferences": owners,
                    // A compare-and-swap on the list that was read.
                    "resourceVersion": resource_version,
                }});
                let written = writer.merge(slot, &patch, OWNERSHIP_MANAGER).await?;
                (*reason, slot.clone(), Some(written))
            }
            Step::Delete { slot } => {
                writer.delete(slot).await?;
                (reasons::DELETED, slot.clone(), None)
            }
            Step::HandOverReplicas { name, replicas } => {
                writer.hand_over(name, *replicas).await?;
                continue;
            }
            Step::StopDatabase { slot } => {
                let patch = json!({"spec": {"replicas": 0}});
                let written = writer.merge(slot, &patch, STOP_MANAGER).await?;
                (reasons::STOPPED, slot.clone(), Some(written))
            }
        };
        ctx.metrics.child_write(slot.kind.name(), reason);
        tracing::info!(kind = slot.kind.name(), name = %slot.name, action = reason, "child object written");
        writes.push(reason, slot.clone());
        if let (Some(caches), Some(object), reasons::CREATED) = (&caches, &written, reason) {
            caches.created(namespace, object.clone());
        }
        match written {
            Some(object) => children.insert(slot, object),
            None => children.remove(&slot),
        };
    }
    Ok(children)
}

struct Writer<'a> {
    client: &'a Client,
    namespace: &'a str,
}

impl Writer<'_> {
    fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), self.namespace, &kind.api_resource())
    }

    /// A 409 answers a write guarded by what was read (create-only, a resourceVersion): another
    /// writer got there first, and the reconcile plans again.
    fn failed(slot: &Slot) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |e| match e {
            kube::Error::Api(status) if status.code == 409 => Error::Raced {
                kind: slot.kind.name(),
                name: slot.name.clone(),
            },
            e => Error::from_kube(slot.kind.name(), &slot.name, e),
        }
    }

    /// Create `object` only if nothing of its name exists (a POST, no apply).
    async fn create(&self, object: &Object) -> Result<Object, Error> {
        let slot = object.slot();
        let value: DynamicObject = serde_json::from_value(object.to_value()).map_err(|e| {
            Error::from_kube(slot.kind.name(), &slot.name, kube::Error::SerdeError(e))
        })?;
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let written = self
            .api(slot.kind)
            .create(&params, &value)
            .await
            .map_err(Self::failed(&slot))?;
        typed(&slot, written)
    }

    /// Server-side apply under the operator's field manager, taking over conflicting fields.
    async fn apply(&self, object: &Object) -> Result<Object, Error> {
        self.apply_value(object, object.to_value()).await
    }

    /// Server-side apply that creates `object` and fails with a 409 if anything holds its name:
    /// the applied resourceVersion is a precondition that no stored object meets, and the API
    /// server checks it only against an object that exists. The child then gets the same field
    /// ownership as any applied one, so a later removal from the spec reaches it.
    async fn apply_new(&self, object: &Object) -> Result<Object, Error> {
        let mut value = object.to_value();
        if let Some(meta) = value.get_mut("metadata") {
            meta["resourceVersion"] = json!(NO_STORED_VERSION);
        }
        self.apply_value(object, value).await
    }

    async fn apply_value(&self, object: &Object, value: Value) -> Result<Object, Error> {
        let slot = object.slot();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let written = self
            .api(slot.kind)
            .patch(&slot.name, &params, &Patch::Apply(value))
            .await
            .map_err(Self::failed(&slot))?;
        typed(&slot, written)
    }

    /// JSON merge patch (maps merge, lists are replaced whole) under `manager`.
    async fn merge(&self, slot: &Slot, patch: &Value, manager: &str) -> Result<Object, Error> {
        let params = PatchParams {
            field_manager: Some(manager.into()),
            ..PatchParams::default()
        };
        let written = self
            .api(slot.kind)
            .patch(&slot.name, &params, &Patch::Merge(patch))
            .await
            .map_err(Self::failed(slot))?;
        typed(slot, written)
    }

    async fn delete(&self, slot: &Slot) -> Result<(), Error> {
        match self
            .api(slot.kind)
            .delete(&slot.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(Self::failed(slot)(e)),
        }
    }

    /// Restore a child whose drift server-side apply cannot undo, with the `patch` verb only:
    /// a merge patch replaces the clashing lists with ours (guarded by the resourceVersion read),
    /// an apply makes the operator's field manager own every desired field again, and the
    /// restore's own managedFields entry is dropped, so that a later removal from the spec still
    /// reaches the child.
    async fn restore(&self, object: &Object, live: Option<Value>) -> Result<Object, Error> {
        let slot = object.slot();
        let mut patch = object.to_value();
        let version = live
            .as_ref()
            .and_then(|l| l.pointer("/metadata/resourceVersion"))
            .cloned();
        if let (Some(meta), Some(version)) = (patch.get_mut("metadata"), version) {
            meta["resourceVersion"] = version;
        }
        self.merge(&slot, &patch, RESTORE_MANAGER).await?;
        let applied = self.apply(object).await?;
        let entries: Vec<_> = applied
            .meta()
            .managed_fields
            .iter()
            .flatten()
            .filter(|entry| entry.manager.as_deref() != Some(RESTORE_MANAGER))
            .cloned()
            .collect();
        let forget = json!({"metadata": {
            "managedFields": entries,
            "resourceVersion": applied.meta().resource_version,
        }});
        self.merge(&slot, &forget, RESTORE_MANAGER).await
    }

    /// Give `replicas` a second owner. No force: if the autoscaler already owns the field, the
    /// conflict means it is handled.
    async fn hand_over(&self, name: &str, replicas: i32) -> Result<(), Error> {
        let patch = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": replicas},
        });
        match self
            .api(Kind::Deployment)
            .patch(
                name,
                &PatchParams::apply(HANDOVER_MANAGER),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(Error::from_kube("Deployment", name, e)),
        }
    }
}
