//! `plan(stack, existing, fresh_password) -> Plan`: every decision of a reconcile, as a pure
//! function of the validated stack and what the cluster holds. No client, no `.await`: each
//! policy (ownership, credentials, claim size, autoscaler hand-over, optional children, what needs
//! a write) is unit-tested here, and `render` prints the same plan's objects.
//!
//! The controller runs `dereference → plan → execute → status`.

pub mod child;
pub mod data;
pub mod drift;
pub mod handover;
pub mod ownership;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::reasons;
use crate::resources::secret::{Credentials, credentials_secret};
use crate::resources::{database, deployment, hpa, ingress, pdb, pvc, service};
use crate::stack::{Component, ValidStack};
use crate::status::Blocker;
use child::{Existing, Kind, Object, Slot};
use data::Source;
use ownership::{Owner, Standing, standing};

/// The field manager of everything the operator applies to children.
pub const FIELD_MANAGER: &str = "appstack-operator";

/// Why a stack cannot converge now.
#[derive(Clone, Debug, PartialEq)]
pub enum Hold {
    /// Until a person acts (`Stalled=True`).
    Blocked(Blocker),
    /// Until something goes away by itself (`Reconciling=True`); the watch brings the stack back.
    Waiting(Blocker),
}

/// A write, as the Events and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
}

/// One write of the plan.
#[allow(clippy::large_enum_variant)] // see `Object`
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Server-side apply `object`.
    Apply { object: Object, change: Change },
    /// Set an object's owner references (adopt it, or release retained data), guarded by the
    /// resourceVersion that was read.
    SetOwners {
        slot: Slot,
        owners: Vec<OwnerReference>,
        resource_version: Option<String>,
        reason: &'static str,
    },
    /// Delete a child the spec no longer wants (an optional part switched off).
    Delete { slot: Slot },
    /// Give a Deployment's `replicas` a second owner (see [`handover`]).
    HandOverReplicas { name: String, replicas: i32 },
    /// Scale the database workload to zero: a claim being deleted must be released, and the
    /// Deployment of an earlier version must be gone before the StatefulSet starts.
    StopDatabase { slot: Slot },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The writes, in order: ownership first (so adoption never waits behind a blocker), then the
    /// Secret and the claim before the workloads that mount them.
    pub steps: Vec<Step>,
    pub hold: Option<Hold>,
}

/// Every child a stack may have, in apply order, with its desired object (`None`: an optional
/// child that is switched off, deleted if it exists).
fn desired_children(
    stack: &ValidStack,
    source: &Source,
    existing: &Existing,
) -> Vec<(Slot, Option<Object>)> {
    let (secret, credentials) = match source {
        Source::Existing(secret) => (None, Credentials::of_secret(secret)),
        Source::Generated {
            password,
            claim_uid,
        } => {
            let secret = credentials_secret(stack, password, claim_uid.as_deref());
            let credentials = Credentials::of_secret(&secret);
            (Some(Object::Secret(secret)), credentials)
        }
    };
    let claim_size = data::claim_size(stack, existing.claim(&stack.claim_name()));
    let web = [Component::Api, Component::Frontend];
    let mut children: Vec<Option<Object>> = vec![secret];
    children.push(Some(Object::Claim(pvc::data_claim(stack, &claim_size))));
    children.push(Some(Object::StatefulSet(database::statefulset(
        stack,
        &credentials,
    ))));
    for tier in [&stack.api, &stack.frontend] {
        let object = deployment::deployment(stack, tier, &credentials);
        children.push(Some(Object::Deployment(object)));
    }
    for component in Component::ALL {
        children.push(Some(Object::Service(service::service(stack, component))));
    }
    let mut slots: Vec<(Slot, Option<Object>)> = children
        .into_iter()
        .flatten()
        .map(|object| (object.slot(), Some(object)))
        .collect();
    let optional = web
        .iter()
        .map(|&c| {
            let slot = Slot::new(Kind::Autoscaler, stack.child_name(c));
            (slot, hpa::autoscaler(stack, c).map(Object::Autoscaler))
        })
        .chain(web.iter().map(|&c| {
            let slot = Slot::new(Kind::DisruptionBudget, stack.child_name(c));
            (
                slot,
                pdb::disruption_budget(stack, c).map(Object::DisruptionBudget),
            )
        }))
        .chain(std::iter::once((
            Slot::new(Kind::Ingress, stack.ingress_name()),
            ingress::ingress(stack).map(Object::Ingress),
        )));
    slots.extend(optional);
    slots
}

/// Every slot the controller reads before planning.
pub fn slots(stack: &ValidStack) -> Vec<Slot> {
    let mut slots = vec![];
    if stack.database.existing_secret.is_none() {
        slots.push(Slot::new(Kind::Secret, stack.generated_secret_name()));
    }
    slots.push(Slot::new(Kind::Claim, stack.claim_name()));
    slots.push(Slot::new(
        Kind::StatefulSet,
        stack.child_name(Component::Database),
    ));
    // Earlier versions ran Postgres as a Deployment: read it to replace it.
    for component in Component::ALL {
        slots.push(Slot::new(Kind::Deployment, stack.child_name(component)));
        slots.push(Slot::new(Kind::Service, stack.child_name(component)));
    }
    for component in [Component::Api, Component::Frontend] {
        slots.push(Slot::new(Kind::Autoscaler, stack.child_name(component)));
        slots.push(Slot::new(
            Kind::DisruptionBudget,
            stack.child_name(component),
        ));
    }
    slots.push(Slot::new(Kind::Ingress, stack.ingress_name()));
    slots
}

/// Data-bearing children: never owned by the stack, so that only the finalizer decides their
/// fate (see `controller::delete`).
fn is_data(slot: &Slot) -> bool {
    matches!(slot.kind, Kind::Secret | Kind::Claim)
}

pub fn plan(stack: &ValidStack, existing: &Existing, fresh_password: &str) -> Plan {
    let owner = Owner {
        name: &stack.name,
        uid: stack.owner.as_ref().map(|o| o.uid.as_str()),
    };
    let mut steps = ownership_steps(stack, existing, owner);
    // Compare contents with the children as the ownership steps leave them.
    let owned_anew: BTreeMap<Slot, Object> = steps
        .iter()
        .filter_map(|step| match step {
            Step::SetOwners { slot, owners, .. } => {
                let mut object = existing.get(slot)?.clone();
                object.meta_mut().owner_references = (!owners.is_empty()).then(|| owners.clone());
                Some((slot.clone(), object))
            }
            _ => None,
        })
        .collect();

    let source = match data::credentials(stack, existing, owner, fresh_password) {
        Ok(source) => source,
        Err(hold) => {
            if matches!(&hold, Hold::Waiting(b) if b.reason == reasons::WAITING_FOR_PREVIOUS_CLAIM)
            {
                steps.extend(stop_database(stack, existing, owner));
            }
            return Plan {
                steps,
                hold: Some(hold),
            };
        }
    };
    let children = desired_children(stack, &source, existing);

    // A name held by someone else stops everything but ownership: the stack is Failed.
    let conflict = children.iter().find_map(|(slot, desired)| {
        let live = existing.get(slot)?;
        (desired.is_some() && standing(live.meta(), owner) == Standing::Foreign).then_some(slot)
    });
    if let Some(slot) = conflict {
        return Plan {
            steps,
            hold: Some(data::name_conflict(slot.kind.name(), &slot.name)),
        };
    }
    if let Some(hold) = replace_database_deployment(stack, existing, owner, &mut steps) {
        return Plan {
            steps,
            hold: Some(hold),
        };
    }

    for (slot, desired) in children {
        let live = owned_anew.get(&slot).or_else(|| existing.get(&slot));
        let live_standing = live.map(|l| standing(l.meta(), owner));
        match (desired, live) {
            (Some(mut desired), None) => {
                drift::stamp(&mut desired);
                start_at_autoscaler_minimum(stack, &mut desired);
                steps.push(Step::Apply {
                    object: desired,
                    change: Change::Create,
                });
            }
            (Some(mut desired), Some(live)) if live_standing == Some(Standing::Ours) => {
                drift::stamp(&mut desired);
                if drift::needs_write(live, &desired) {
                    if let (Object::Deployment(live), Object::Deployment(wanted)) = (live, &desired)
                        && wanted.spec.as_ref().is_some_and(|s| s.replicas.is_none())
                        && let Some(replicas) = handover::replicas_to_hand_over(live)
                    {
                        steps.push(Step::HandOverReplicas {
                            name: slot.name.clone(),
                            replicas,
                        });
                    }
                    steps.push(Step::Apply {
                        object: desired,
                        change: Change::Update,
                    });
                }
            }
            // Switched off: delete ours; never anyone else's.
            (None, Some(_)) if live_standing == Some(Standing::Ours) => {
                steps.push(Step::Delete { slot });
            }
            // Terminating (the watch brings the stack back once it is gone) or absent and off.
            _ => {}
        }
    }
    Plan { steps, hold: None }
}

/// Adopt every child of ours that lacks the controller reference to this stack; release
/// retained data from any reference.
fn ownership_steps(stack: &ValidStack, existing: &Existing, owner: Owner<'_>) -> Vec<Step> {
    let mut steps = vec![];
    for (slot, live) in &existing.children {
        if standing(live.meta(), owner) != Standing::Ours {
            continue;
        }
        let (owners, reason) = if is_data(slot) {
            (
                ownership::released_references(live.meta(), owner),
                reasons::RELEASED,
            )
        } else {
            let Some(controller) = &stack.owner else {
                continue;
            };
            (
                ownership::adopted_references(live.meta(), owner, controller),
                reasons::ADOPTED,
            )
        };
        if let Some(owners) = owners {
            steps.push(Step::SetOwners {
                slot: slot.clone(),
                owners,
                resource_version: live.meta().resource_version.clone(),
                reason,
            });
        }
    }
    steps
}

/// While the claim is being deleted, the database pod that mounts it must go, or the claim never
/// does.
fn stop_database(stack: &ValidStack, existing: &Existing, owner: Owner<'_>) -> Option<Step> {
    let name = stack.child_name(Component::Database);
    let (slot, meta, replicas) = match existing.statefulset(&name) {
        Some(set) => (
            Slot::new(Kind::StatefulSet, name),
            &set.metadata,
            set.spec.as_ref().and_then(|s| s.replicas),
        ),
        None => {
            let legacy = existing.deployment(&name)?;
            (
                Slot::new(Kind::Deployment, name),
                &legacy.metadata,
                legacy.spec.as_ref().and_then(|s| s.replicas),
            )
        }
    };
    (replicas != Some(0) && standing(meta, owner) == Standing::Ours)
        .then_some(Step::StopDatabase { slot })
}

/// Earlier versions ran Postgres as a Deployment, which can start a replacement pod while the old
/// one still runs. Replace it without ever running two postmasters on the claim: scale it to
/// zero, wait until no database pod is left, delete it; the StatefulSet follows in the same plan.
fn replace_database_deployment(
    stack: &ValidStack,
    existing: &Existing,
    owner: Owner<'_>,
    steps: &mut Vec<Step>,
) -> Option<Hold> {
    let name = stack.child_name(Component::Database);
    let legacy = existing.deployment(&name)?;
    if standing(&legacy.metadata, owner) != Standing::Ours {
        return None;
    }
    let slot = Slot::new(Kind::Deployment, name.clone());
    let waiting = |message: &str| {
        Some(Hold::Waiting(Blocker {
            reason: reasons::REPLACING_DATABASE_DEPLOYMENT,
            message: format!(
                "database: moving Deployment {name} to a StatefulSet on the same claim; {message}"
            ),
            object: Some(("Deployment", name.clone())),
        }))
    };
    if legacy.spec.as_ref().and_then(|s| s.replicas) != Some(0) {
        steps.push(Step::StopDatabase { slot });
        return waiting("stopping the old pod");
    }
    if existing.database_pods > 0 {
        return waiting("waiting for the old pod to be gone");
    }
    steps.push(Step::Delete { slot });
    None
}

/// A new autoscaled Deployment would start at one pod until the autoscaler first acts: start it
/// at the autoscaler's minimum. Set after stamping, so that the next reconcile, which leaves
/// `replicas` to the autoscaler, finds nothing to write.
fn start_at_autoscaler_minimum(stack: &ValidStack, desired: &mut Object) {
    let Object::Deployment(deployment) = desired else {
        return;
    };
    let component = [Component::Api, Component::Frontend]
        .into_iter()
        .find(|&c| deployment.metadata.name.as_deref() == Some(&*stack.child_name(c)));
    let minimum = component
        .and_then(|c| stack.tier(c))
        .and_then(|tier| tier.autoscaling.as_ref())
        .map(|a| a.min_replicas);
    if let (Some(minimum), Some(spec)) = (minimum, deployment.spec.as_mut()) {
        spec.replicas = Some(minimum);
    }
}

#[cfg(test)]
mod tests;
