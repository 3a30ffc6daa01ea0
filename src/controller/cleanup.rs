//! The delete path, run by the finalizer: keep or delete the data, then let garbage collection
//! remove the rest (everything else has an owner reference to the stack).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::Context;
use super::apply::write_status;
use super::children::Children;
use super::error::Error;
use crate::crd::AppStack;
use crate::status::Observed;

pub async fn cleanup(stack: Arc<AppStack>, ctx: &Context) -> Result<Action, Error> {
    let children = Children::new(ctx, &stack);
    // Tell `kubectl get` why the stack is still there should the cleanup below keep failing.
    let deleting = Observed {
        generation: stack.metadata.generation,
        deleting: true,
        ..Observed::default()
    };
    write_status(&stack, ctx, &deleting).await?;

    // Names come from the stack's name alone, so cleanup works even for a spec that never
    // validated. An `existingSecret` belongs to someone else and is never touched.
    let name = stack.name_any();
    let secret = format!("{name}-db-credentials");
    let claim = format!("{name}-db-data");
    if stack.spec.database.retain_on_delete {
        let uid = stack.meta().uid.clone().unwrap_or_default();
        let kept_secret = children.release::<Secret>(&secret, &uid).await?;
        let kept_claim = children
            .release::<PersistentVolumeClaim>(&claim, &uid)
            .await?;
        if kept_secret || kept_claim {
            let note = format!(
                "Kept volume claim {claim} and Secret {secret} (retainOnDelete); a stack re-created as {name} adopts them"
            );
            children
                .publish(EventType::Normal, "DataRetained", note)
                .await;
        }
    } else {
        children.remove::<PersistentVolumeClaim>(&claim).await?;
        children.remove::<Secret>(&secret).await?;
    }
    Ok(Action::await_change())
}
