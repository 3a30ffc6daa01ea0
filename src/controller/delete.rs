//! What happens when a stack is deleted, run by the finalizer before the stack goes.
//!
//! Data (the credentials Secret and the claim) never carries an owner reference, so garbage
//! collection never takes it, whatever kind of delete: this step alone decides.
//! - Orphan delete (`--cascade=orphan`): nothing the stack made is deleted, data included;
//!   garbage collection orphans the rest. The API server marks such a delete with the `orphan`
//!   finalizer, but garbage collection removes it as soon as it has stripped the children's
//!   owner references, without waiting for this finalizer (say, while the operator is down).
//!   So a stack whose children no longer point at it was orphan-deleted too: in a background or
//!   foreground delete they keep their reference until after this step.
//! - `retainOnDelete: true`: the data is kept (and released from owner references an earlier
//!   operator version may have set), so a stack re-created under the same name adopts it.
//! - `retainOnDelete: false`: the data is deleted.
//!
//! Everything else has an owner reference to the stack and goes with it.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Context;
use super::error::Error;
use super::events::Events;
use super::status_writer::write_status;
use crate::crd::AppStack;
use crate::names;
use crate::plan::ownership::{Owner, Standing, released_references, standing};
use crate::reasons;
use crate::stack::Component;
use crate::status::Observed;

/// The finalizer Kubernetes adds for `propagationPolicy: Orphan`.
const ORPHAN_FINALIZER: &str = "orphan";

pub async fn delete(stack: Arc<AppStack>, ctx: &Context) -> Result<Action, Error> {
    let events = Events::new(ctx, &stack);
    // Tell `kubectl get` why the stack is still there should the steps below keep failing.
    let deleting = Observed {
        generation: stack.metadata.generation,
        deleting: true,
        ..Observed::default()
    };
    write_status(&stack, ctx, &deleting).await?;

    // Names come from the stack's name alone, so this works even for a spec that never
    // validated. An `existingSecret` belongs to someone else and is never touched.
    let name = stack.name_any();
    let namespace = stack.namespace().unwrap_or_default();
    let owner = Owner {
        name: &name,
        uid: stack.meta().uid.as_deref(),
    };
    let data = Data {
        ctx,
        namespace: &namespace,
        owner,
    };
    let secret = names::credentials_secret(&name);
    let claim = names::data_claim(&name);
    let orphaning = stack.finalizers().iter().any(|f| f == ORPHAN_FINALIZER)
        || data.children_were_orphaned(&name).await?;
    if orphaning {
        events
            .normal(
                reasons::ORPHANED,
                format!("Orphan delete: kept every object the stack made, claim {claim} and Secret {secret} included"),
                None,
            );
    } else if stack.spec.database.retain_on_delete {
        let kept_secret = data.release::<Secret>(&secret).await?;
        let kept_claim = data.release::<PersistentVolumeClaim>(&claim).await?;
        if kept_secret || kept_claim {
            events
                .normal(
                    reasons::DATA_RETAINED,
                    format!("Kept volume claim {claim} and Secret {secret} (retainOnDelete); a stack re-created as {name} adopts them"),
                    None,
                );
        }
    } else {
        let deleted_claim = data.remove::<PersistentVolumeClaim>(&claim).await?;
        let deleted_secret = data.remove::<Secret>(&secret).await?;
        if deleted_claim || deleted_secret {
            events.normal(
                reasons::DATA_DELETED,
                format!("Deleted volume claim {claim} and Secret {secret} (retainOnDelete: false)"),
                None,
            );
        }
    }
    Ok(Action::await_change())
}

struct Data<'a> {
    ctx: &'a Context,
    namespace: &'a str,
    owner: Owner<'a>,
}

/// What the delete path reads and writes: namespaced kinds with their Kubernetes kind name.
trait Kind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + k8s_openapi::Resource
    + Clone
    + DeserializeOwned
    + std::fmt::Debug
{
}
impl<K> Kind for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
{
}

impl Data<'_> {
    fn api<K: Kind>(&self) -> Api<K> {
        Api::namespaced(self.ctx.client.clone(), self.namespace)
    }

    fn failed<K: Kind>(name: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
        move |e| Error::from_kube(<K as k8s_openapi::Resource>::KIND, name, e)
    }

    /// The object `name` if it is the stack's (not someone else's, not being deleted).
    async fn ours<K: Kind>(&self, name: &str) -> Result<Option<K>, Error> {
        let found = self
            .api::<K>()
            .get_opt(name)
            .await
            .map_err(Self::failed::<K>(name))?;
        Ok(found.filter(|object| standing(object.meta(), self.owner) == Standing::Ours))
    }

    /// Some workload or Service of the stack is still its child by its labels but no longer
    /// refers to it: garbage collection has orphaned it.
    async fn children_were_orphaned(&self, stack: &str) -> Result<bool, Error> {
        for component in Component::ALL {
            let name = names::child(stack, component);
            let workload = match component {
                Component::Database => self.ours::<StatefulSet>(&name).await?.map(|o| o.metadata),
                _ => self.ours::<Deployment>(&name).await?.map(|o| o.metadata),
            };
            let service = self.ours::<Service>(&name).await?.map(|o| o.metadata);
            let orphaned = [workload, service].into_iter().flatten().any(|meta| {
                !meta
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| Some(r.uid.as_str()) == self.owner.uid)
            });
            if orphaned {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Drop owner references to this stack from our object `name`. Returns whether it is ours
    /// and kept.
    async fn release<K: Kind>(&self, name: &str) -> Result<bool, Error> {
        let Some(object) = self.ours::<K>(name).await? else {
            return Ok(false);
        };
        if let Some(owners) = released_references(object.meta(), self.owner) {
            let patch = json!({"metadata": {
                "ownerReferences": owners,
                "resourceVersion": object.meta().resource_version,
            }});
            self.api::<K>()
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Self::failed::<K>(name))?;
        }
        Ok(true)
    }

    /// Delete our object `name`; anything else of that name is left alone. Returns whether it
    /// deleted something.
    async fn remove<K: Kind>(&self, name: &str) -> Result<bool, Error> {
        let Some(object) = self.ours::<K>(name).await? else {
            return Ok(false);
        };
        // Exactly the object judged ours, unchanged since: not one another writer re-made.
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: object.meta().uid.clone(),
                resource_version: object.meta().resource_version.clone(),
            }),
            ..DeleteParams::background()
        };
        match self.api::<K>().delete(name, &params).await {
            Ok(_) => {
                let kind = <K as k8s_openapi::Resource>::KIND;
                self.ctx.metrics.child_write(kind, reasons::DELETED);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
            Err(e) => Err(Self::failed::<K>(name)(e)),
        }
    }
}
