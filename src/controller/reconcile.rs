//! A live stack: validate → dereference → plan → execute → status.

use std::sync::Arc;

use kube::runtime::controller::Action;

use super::dereference::dereference;
use super::error::Error;
use super::events::Events;
use super::execute::execute;
use super::status_writer::write_status;
use super::{Context, REQUEUE_WAITING, RESYNC, password};
use crate::crd::{AppStack, AppStackStatus};
use crate::plan::{Hold, plan};
use crate::status::{Blocker, Observed, READY, observe};
use crate::validate::validate;

/// Report a transient failure in the status after this many in a row.
const FAILURES_BEFORE_REPORT: u32 = 3;

pub async fn reconcile(stack: Arc<AppStack>, ctx: &Context) -> Result<Action, Error> {
    let events = Events::new(&ctx.recorder, &stack);
    let generation = stack.metadata.generation;
    let outcome = async {
        let valid = validate(&stack).map_err(Error::InvalidSpec)?;
        let existing = dereference(&ctx.client, &valid).await?;
        let plan = plan(&valid, &existing, &password::generate());
        let children = execute(ctx, &events, &valid.namespace, &plan, existing).await?;
        Ok::<_, Error>((
            observe(&valid, plan.hold.as_ref(), &children, generation),
            plan.hold,
        ))
    }
    .await;

    match outcome {
        Ok((observed, hold)) => {
            if let Some(Hold::Blocked(blocker)) = &hold {
                announce(&stack, &events, blocker).await;
            }
            write_status(&stack, ctx, &observed).await?;
            match hold {
                Some(Hold::Blocked(blocker)) => Err(Error::Blocked(blocker)),
                // The watch brings the stack back when what it waits for is gone.
                Some(Hold::Waiting(_)) => Ok(Action::requeue(REQUEUE_WAITING)),
                None => Ok(Action::requeue(RESYNC)),
            }
        }
        Err(error)
            if error.is_blocking() || ctx.failures_of(&stack) + 1 >= FAILURES_BEFORE_REPORT =>
        {
            // Blocking errors at once; a transient one once it keeps coming back.
            let blocker = error.blocker();
            announce(&stack, &events, &blocker).await;
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
async fn announce(stack: &AppStack, events: &Events<'_>, blocker: &Blocker) {
    if is_new(stack.status.as_ref(), blocker) {
        tracing::warn!(reason = blocker.reason, message = %blocker.message, "stack is blocked");
        events.warning(blocker).await;
    }
}

fn is_new(status: Option<&AppStackStatus>, blocker: &Blocker) -> bool {
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
    ready.is_none_or(|c| c.reason != blocker.reason || c.message != blocker.message)
}
