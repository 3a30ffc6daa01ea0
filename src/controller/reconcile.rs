//! A live stack: validate → dereference → plan → execute → status.

use std::sync::Arc;

use kube::runtime::controller::Action;

use super::dereference::{Read, dereference};
use super::error::Error;
use super::events::{Events, Writes};
use super::execute::execute;
use super::status_writer::write_status;
use super::{Context, REQUEUE_WAITING, RESYNC, password};
use crate::crd::{AppStack, AppStackStatus};
use crate::plan::{Hold, plan};
use crate::reasons;
use crate::stack::Component;
use crate::status::{
    API_READY, Blocker, DATABASE_READY, FRONTEND_READY, Observed, READY, compute_status, observe,
};
use crate::validate::validate;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Report a transient failure in the status after this many in a row.
const FAILURES_BEFORE_REPORT: u32 = 3;
/// Plans per reconcile when another writer keeps winning the race to the data; then back off.
const RACE_ATTEMPTS: u32 = 3;

pub async fn reconcile(stack: Arc<AppStack>, ctx: &Context) -> Result<Action, Error> {
    let events = Events::new(ctx, &stack);
    let generation = stack.metadata.generation;
    let mut writes = Writes::default();
    let outcome = async {
        let valid = validate(&stack).map_err(Error::InvalidSpec)?;
        let caches = ctx.caches();
        let mut attempt = 1;
        loop {
            // After a lost race the caches may not have seen the winner's write yet.
            let from = match &caches {
                Some(caches) if attempt == 1 => Read::Cached(caches),
                _ => Read::Fresh,
            };
            let existing = dereference(&ctx.client, from, &valid).await?;
            let now = Time(jiff::Timestamp::now());
            let plan = plan(&valid, &existing, &password::generate(), &now);
            // A child missing from the caches may only be late: block on what is there.
            if matches!(from, Read::Cached(_)) && matches!(plan.hold, Some(Hold::Blocked(_))) {
                attempt += 1;
                continue;
            }
            match execute(ctx, &mut writes, &valid.namespace, &plan, existing).await {
                Ok(children) => {
                    let observed = observe(
                        &valid,
                        plan.hold.as_ref(),
                        &plan.rollouts,
                        &children,
                        generation,
                    );
                    return Ok::<_, Error>((observed, plan.hold, plan.poll));
                }
                // Another writer got there first (another operator wrote the data, or a foreign
                // object or a child the caches lag behind holds the name of one to create): read
                // what is there (its password) and plan again, rather than write over it.
                Err(Error::Raced { kind, name }) if attempt < RACE_ATTEMPTS => {
                    tracing::info!(kind, %name, "written by another writer since it was read; planning again");
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
    .await;
    // What was written, also when a later write failed.
    events.wrote(&writes);

    match outcome {
        Ok((observed, hold, poll)) => {
            if let Some(Hold::Blocked(blocker)) = &hold {
                announce(&stack, &events, blocker);
            }
            announce_rollouts(&stack, &events, &observed);
            write_status(&stack, ctx, &observed).await?;
            // Pod states are not watched: a rollout is looked at every few seconds.
            let rollout_look = ctx.rollout_look(&stack, hold.is_none() && poll);
            match hold {
                Some(Hold::Blocked(blocker)) => Err(Error::Blocked(blocker)),
                // The watch brings the stack back when what it waits for is gone.
                Some(Hold::Waiting(_)) => Ok(Action::requeue(REQUEUE_WAITING)),
                None => Ok(Action::requeue(rollout_look.unwrap_or(RESYNC))),
            }
        }
        Err(error)
            if error.is_blocking() || ctx.failures_of(&stack) + 1 >= FAILURES_BEFORE_REPORT =>
        {
            // Blocking errors at once; a transient one once it keeps coming back.
            let blocker = error.blocker();
            announce(&stack, &events, &blocker);
            let observed = Observed {
                generation,
                blocker: Some(blocker),
                ..Observed::default()
            };
            if let Err(status_error) = write_status(&stack, ctx, &observed).await {
                tracing::warn!(error = %status_error, "could not report the failure in the status");
            }
            Err(error)
        }
        Err(error) => Err(error),
    }
}

/// A Warning Event, once per distinct reason and message (not once per retry).
fn announce(stack: &AppStack, events: &Events<'_>, blocker: &Blocker) {
    if is_new(stack.status.as_ref(), blocker) {
        tracing::warn!(reason = blocker.reason, message = %blocker.message, "stack is blocked");
        events.warning(blocker);
    }
}

fn is_new(status: Option<&AppStackStatus>, blocker: &Blocker) -> bool {
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    ready.is_none_or(|c| c.reason != blocker.reason || c.message != blocker.message)
}

/// A Warning Event when a web tier's rollout fails, is rolled back or its migration fails:
/// once, when the tier's condition first says so.
fn announce_rollouts(stack: &AppStack, events: &Events<'_>, observed: &Observed) {
    let now = Time(jiff::Timestamp::now());
    let new = compute_status(stack.status.as_ref(), observed, &now);
    for (component, condition) in [
        (Component::Database, DATABASE_READY),
        (Component::Api, API_READY),
        (Component::Frontend, FRONTEND_READY),
    ] {
        if observed.rollouts.iter().all(|(c, _)| *c != component) {
            continue;
        }
        let Some(now) = new.conditions.iter().find(|c| c.type_ == condition) else {
            continue;
        };
        let Some(reason) = reasons::ROLLOUT_WARNINGS.iter().find(|r| **r == now.reason) else {
            continue;
        };
        let before = stack
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition));
        if before.is_some_and(|b| b.reason == now.reason && b.message == now.message) {
            continue;
        }
        tracing::warn!(reason, message = %now.message, "rollout failed");
        let blocker = Blocker {
            reason,
            message: now.message.clone(),
            object: Some((
                if component == Component::Database {
                    "StatefulSet"
                } else {
                    "Deployment"
                },
                stack_child(stack, component),
            )),
        };
        events.warning(&blocker);
    }
}

fn stack_child(stack: &AppStack, component: Component) -> String {
    crate::names::child(&kube::ResourceExt::name_any(stack), component)
}
