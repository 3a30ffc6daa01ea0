//! The apply path: validate → credentials → claim → workloads → status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::children::Children;
use super::credentials::ensure_credentials;
use super::error::Error;
use super::{Context, REQUEUE_BLOCKED, RESYNC};
use crate::crd::{AppStack, AppStackStatus};
use crate::quantity;
use crate::resources::pvc::{data_claim, requested_size};
use crate::resources::workloads;
use crate::status::{Observed, RolloutState, compute_status};
use crate::validate::{Component, ValidStack, validate};

/// Field manager for status writes, apart from the children's so the two never conflict.
pub const STATUS_MANAGER: &str = "appstack-operator-status";

pub async fn apply(stack: Arc<AppStack>, ctx: &Context) -> Result<Action, Error> {
    let children = Children::new(ctx, &stack);
    let mut observed = Observed {
        generation: stack.metadata.generation,
        ..Observed::default()
    };
    let outcome = converge(&stack, &children, &mut observed).await;
    let action = match outcome {
        Ok(()) => Action::requeue(RESYNC),
        Err(error) => match error.blocker() {
            Some(blocker) => {
                let action = if matches!(error, Error::InvalidSpec(_)) {
                    // Only a new spec can fix it: wait for one instead of retrying.
                    Action::await_change()
                } else {
                    // Fixed by objects the operator does not watch (a Secret, a foreign
                    // Service), so look again now and then.
                    Action::requeue(REQUEUE_BLOCKED)
                };
                if is_new_blocker(stack.status.as_ref(), blocker.reason, &blocker.message) {
                    children
                        .publish(EventType::Warning, blocker.reason, blocker.message.clone())
                        .await;
                }
                tracing::warn!(reason = blocker.reason, message = %blocker.message, "stack is blocked");
                observed.blocker = Some(blocker);
                action
            }
            None => return Err(error),
        },
    };
    write_status(&stack, ctx, &observed).await?;
    Ok(action)
}

async fn converge(
    stack: &AppStack,
    children: &Children<'_>,
    observed: &mut Observed,
) -> Result<(), Error> {
    let stack = validate(stack).map_err(Error::InvalidSpec)?;
    observed.url = Some(stack.url());
    observed.claim_name = Some(stack.claim_name());
    observed.secret_name = Some(stack.credentials_secret_name());

    // The Secret and the claim come before the workloads that mount them.
    let credentials = ensure_credentials(&stack, children).await?;
    let claim = ensure_claim(&stack, children).await?;
    observed.claim_bound = claim.status.and_then(|s| s.phase).as_deref() == Some("Bound");

    let workloads = workloads(&stack, &credentials);
    for (component, desired) in &workloads.deployments {
        let existing = children.get::<Deployment>(&desired.name_any()).await?;
        let min_pods = stack
            .tier(*component)
            .and_then(|t| t.autoscaling.as_ref())
            .map(|a| a.min_replicas);
        let mut desired = desired.clone();
        if let Some(min_pods) = min_pods {
            match &existing {
                Some(existing) => {
                    children.ensure_ours(existing)?;
                    children.hand_replicas_to_autoscaler(existing).await?;
                }
                // A new Deployment would start at Kubernetes' default of one pod until the
                // autoscaler first acts; start it at the autoscaler's minimum instead.
                None => {
                    if let Some(spec) = desired.spec.as_mut() {
                        spec.replicas = Some(min_pods);
                    }
                }
            }
        }
        let deployment = children.apply_over(existing, &desired).await?;
        let state = Some(RolloutState::of(&deployment));
        match component {
            Component::Database => observed.database = state,
            Component::Api => observed.api = state,
            Component::Frontend => observed.frontend = state,
        }
    }
    for service in &workloads.services {
        children.apply(service).await?;
    }
    for autoscaler in &workloads.autoscalers {
        children
            .apply_or_remove(&autoscaler.name, autoscaler.object.as_ref())
            .await?;
    }
    for budget in &workloads.disruption_budgets {
        children
            .apply_or_remove(&budget.name, budget.object.as_ref())
            .await?;
    }
    let ingress = &workloads.ingress;
    children
        .apply_or_remove(&ingress.name, ingress.object.as_ref())
        .await?;
    Ok(())
}

/// Apply the data claim, growing it on request and never shrinking it: when the claim is already
/// larger than the spec asks (a re-created stack adopting its old claim), it keeps its size.
async fn ensure_claim(
    stack: &ValidStack,
    children: &Children<'_>,
) -> Result<PersistentVolumeClaim, Error> {
    let existing = children
        .get::<PersistentVolumeClaim>(&stack.claim_name())
        .await?;
    let wanted = stack.database.storage_size.as_str();
    let current = existing
        .as_ref()
        .and_then(requested_size)
        .map(str::to_owned);
    let size = match current {
        Some(current) if quantity::parse_nanos(&current) > quantity::parse_nanos(wanted) => {
            tracing::info!(claim = %stack.claim_name(), %current, %wanted, "keeping the larger claim size; claims never shrink");
            current
        }
        _ => wanted.to_owned(),
    };
    children
        .apply_over(existing, &data_claim(stack, &size))
        .await
}

fn is_new_blocker(status: Option<&AppStackStatus>, reason: &str, message: &str) -> bool {
    let ready = status.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == crate::status::READY)
    });
    ready.is_none_or(|c| c.reason != reason || c.message != message)
}

/// Write the status computed from `observed`, only when it differs from what is there.
pub async fn write_status(
    stack: &AppStack,
    ctx: &Context,
    observed: &Observed,
) -> Result<(), Error> {
    let now = Time(jiff::Timestamp::now());
    let status = compute_status(stack.status.as_ref(), observed, &now);
    if stack.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let name = stack.name_any();
    let api: Api<AppStack> =
        Api::namespaced(ctx.client.clone(), &stack.namespace().unwrap_or_default());
    // Server-side apply of the status needs apiVersion and kind in the body.
    let patch = json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": "AppStack",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::from_kube("AppStack", &name, e))?;
    ctx.metrics.status_write();
    Ok(())
}
