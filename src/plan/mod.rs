//! `plan(stack, existing, fresh_password) -> Plan`: every decision of a reconcile, as a pure
//! function of the validated stack and what the cluster holds. No client, no `.await`: each
//! policy (ownership, credentials, claim size, autoscaler hand-over, optional children, what needs
//! a write) is unit-tested here, and `render` prints the same plan's objects.
//!
//! The controller runs `dereference → plan → execute → status`.

pub mod child;
pub mod data;
pub mod database_image;
pub mod drift;
pub mod handover;
pub mod migration;
pub mod ownership;
pub mod rollout;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};

use crate::names;
use crate::reasons;
use crate::resources::secret::{Credentials, credentials_secret};
use crate::resources::{
    database, deployment, hpa, ingress, job, network_policy, pdb, pvc, service,
};
use crate::stack::{Component, FailedRollout, ValidStack};
use crate::status::{Blocker, RolloutState};
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
    /// Only if nothing holds the name: the plan may have seen an empty slot in a cache that lags,
    /// or where a foreign object stands (the write fails, and the reconcile plans again).
    Create,
    Update,
    /// Back to the last good template after a failed rollout.
    RollBack,
}

/// One write of the plan.
#[allow(clippy::large_enum_variant)] // see `Object`
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Server-side apply `object`. A data object carries the resourceVersion that was read, so
    /// the write fails if another writer changed it since (see [`guard_data`]).
    Apply { object: Object, change: Change },
    /// Create a data object that does not exist yet, and only that: never written over an
    /// object another writer (a second operator) created in the meantime, whose password the
    /// next plan reads instead.
    Create { object: Object },
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
    /// What stops or undid a web tier's rollout, for the status.
    pub rollouts: Vec<(Component, TierRollout)>,
    /// A rollout or a migration is under way: look again in seconds, not at the next resync,
    /// so that a failing one is caught long before a progress deadline.
    pub poll: bool,
}

/// Why a web tier does not run what its spec says.
#[derive(Clone, Debug, PartialEq)]
pub enum TierRollout {
    /// The new API image waits for its migration Job (or, before it, for the database).
    Migrating { job: String, message: String },
    /// The migration Job failed: the running version keeps serving.
    MigrationFailed { job: String, message: String },
    /// New pods fail and nothing rolls them back (opted out, or no earlier revision).
    Failing {
        image: Option<String>,
        failure: rollout::PodFailure,
    },
    /// New pods failed and the tier went back to its last good template.
    RolledBack {
        image: Option<String>,
        message: String,
    },
    /// The database waits for its new image to prove it starts.
    CheckingImage { job: String, message: String },
    /// The database keeps its image: the new one cannot start, or is another major version.
    ImageRefused {
        reason: &'static str,
        message: String,
    },
}

/// Every child a stack may have, in apply order, with its desired object (`None`: an optional
/// child that is switched off, deleted if it exists).
fn desired_children(
    stack: &ValidStack,
    source: &Source,
    existing: &Existing,
) -> (Vec<(Slot, Option<Object>)>, Option<Job>) {
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
    let mut claim = pvc::data_claim(stack, &claim_size);
    if let Some(major) = database_image::data_major(stack, existing) {
        claim
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(database_image::MAJOR_ANNOTATION.into(), major);
    }
    children.push(Some(Object::Claim(claim)));
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
    // Right after the data and before the workloads: no pod ever reaches a database that has no
    // policy yet.
    let data = slots.iter().take_while(|(slot, _)| is_data(slot)).count();
    slots.splice(data..data, network_policies(stack));
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
    (slots, job::migration_job(stack, &credentials))
}

/// Every object the stack wants once it has converged, stamped as the plan applies them: what
/// `render` prints. (The plan itself may hold some back: the API until its migration succeeded.)
pub fn desired_objects(
    stack: &ValidStack,
    existing: &Existing,
    fresh_password: &str,
) -> Result<Vec<Object>, Hold> {
    let owner = Owner {
        name: &stack.name,
        uid: stack.owner.as_ref().map(|o| o.uid.as_str()),
    };
    let source = data::credentials(stack, existing, owner, fresh_password)?;
    let (children, migration_job) = desired_children(stack, &source, existing);
    let objects = children
        .into_iter()
        .filter_map(|(_, object)| object)
        .chain(migration_job.map(Object::Job))
        .map(|mut object| {
            drift::stamp(&mut object);
            start_at_autoscaler_minimum(stack, &mut object);
            object
        })
        .collect();
    Ok(objects)
}

/// The NetworkPolicies of the database and the API (`None` when switched off).
fn network_policies(stack: &ValidStack) -> [(Slot, Option<Object>); 2] {
    let slot = |component| Slot::new(Kind::NetworkPolicy, stack.child_name(component));
    [
        (
            slot(Component::Database),
            network_policy::database_policy(stack).map(Object::NetworkPolicy),
        ),
        (
            slot(Component::Api),
            network_policy::api_policy(stack).map(Object::NetworkPolicy),
        ),
    ]
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
    for component in [Component::Database, Component::Api] {
        slots.push(Slot::new(Kind::NetworkPolicy, stack.child_name(component)));
    }
    if stack.migrations.is_some() {
        slots.push(Slot::new(
            Kind::Job,
            names::migration_job(&stack.name, &stack.api.image),
        ));
    }
    slots
}

/// Data-bearing children: never owned by the stack, so that only the finalizer decides their
/// fate (see `controller::delete`).
fn is_data(slot: &Slot) -> bool {
    matches!(slot.kind, Kind::Secret | Kind::Claim)
}

pub fn plan(stack: &ValidStack, existing: &Existing, fresh_password: &str, now: &Time) -> Plan {
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
            return Plan::held(steps, hold);
        }
    };
    let (children, migration_job) = desired_children(stack, &source, existing);

    // A name held by someone else stops everything but ownership: the stack is Failed.
    let conflict = children.iter().find_map(|(slot, desired)| {
        let live = existing.get(slot)?;
        (desired.is_some() && standing(live.meta(), owner) == Standing::Foreign).then_some(slot)
    });
    if let Some(slot) = conflict {
        return Plan::held(steps, data::name_conflict(slot.kind.name(), &slot.name));
    }
    if let Some(hold) = replace_database_deployment(stack, existing, owner, &mut steps) {
        return Plan::held(steps, hold);
    }

    let mut rollouts = vec![];
    for (slot, desired) in children {
        let live = owned_anew.get(&slot).or_else(|| existing.get(&slot));
        let live_standing = live.map(|l| standing(l.meta(), owner));
        if let (Some(Object::Deployment(wanted)), Some(component)) =
            (&desired, web_component(stack, &slot))
            && live_standing.is_none_or(|s| s == Standing::Ours)
        {
            let tier = Tier {
                stack,
                existing,
                component,
                migration_job: migration_job.as_ref(),
                now,
            };
            if let Gate::Closed {
                steps: extra,
                report,
            } = tier.gate(wanted, live)
            {
                steps.extend(extra);
                rollouts.extend(report.map(|r| (component, r)));
                continue;
            }
        }
        if slot.kind == Kind::StatefulSet
            && desired.is_some()
            && live_standing.is_none_or(|s| s == Standing::Ours)
        {
            let guard = database_image::guard(stack, existing);
            steps.extend(guard.steps);
            if let Some(report) = guard.hold {
                rollouts.push((Component::Database, report));
                continue;
            }
        }
        match (desired, live) {
            (Some(mut desired), None) => {
                drift::stamp(&mut desired);
                start_at_autoscaler_minimum(stack, &mut desired);
                steps.push(if is_data(&slot) {
                    Step::Create { object: desired }
                } else {
                    Step::Apply {
                        object: desired,
                        change: Change::Create,
                    }
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
                    guard_data(&slot, live, &mut desired);
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
    let poll = rollouts.iter().any(|(_, r)| {
        matches!(
            r,
            TierRollout::Migrating { .. } | TierRollout::CheckingImage { .. }
        )
    }) || [Component::Api, Component::Frontend]
        .iter()
        .filter_map(|&c| existing.deployment(&stack.child_name(c)))
        .any(|d| !RolloutState::of(d).complete());
    Plan {
        steps,
        hold: None,
        rollouts,
        poll,
    }
}

impl Plan {
    fn held(steps: Vec<Step>, hold: Hold) -> Self {
        Plan {
            steps,
            hold: Some(hold),
            rollouts: vec![],
            poll: false,
        }
    }
}

/// The web tier whose Deployment sits in `slot`.
fn web_component(stack: &ValidStack, slot: &Slot) -> Option<Component> {
    [Component::Api, Component::Frontend]
        .into_iter()
        .find(|&c| slot.kind == Kind::Deployment && slot.name == stack.child_name(c))
}

/// Whether a web tier's Deployment may take its desired object.
enum Gate {
    /// Yes: the usual apply when it differs.
    Open,
    /// No: these writes instead (a migration Job, a rollback), and why.
    Closed {
        steps: Vec<Step>,
        report: Option<TierRollout>,
    },
}

/// What the rollout decisions of one web tier look at.
struct Tier<'a> {
    stack: &'a ValidStack,
    existing: &'a Existing,
    component: Component,
    migration_job: Option<&'a Job>,
    now: &'a Time,
}

impl Tier<'_> {
    fn gate(&self, wanted: &Deployment, live: Option<&Object>) -> Gate {
        let mut desired = Object::Deployment(wanted.clone());
        drift::stamp(&mut desired);
        let live_deployment = match live {
            Some(Object::Deployment(deployment)) => Some(deployment),
            _ => None,
        };
        if live.is_none_or(|live| drift::needs_write(live, &desired)) {
            if let Some(failed) = self.stack.failed_now(self.component) {
                // This spec already failed: the next change of it tries again.
                return Gate::Closed {
                    steps: vec![],
                    report: Some(remembered(failed)),
                };
            }
            if self.component == Component::Api {
                return self.migration_gate(live_deployment);
            }
            return Gate::Open;
        }
        match live_deployment {
            Some(live) => self.failed_rollout(wanted, live),
            None => Gate::Open,
        }
    }

    /// With `api.migrations`, a new API image waits for its migration Job to succeed.
    fn migration_gate(&self, live: Option<&Deployment>) -> Gate {
        let stack = self.stack;
        let Some(desired_job) = self.migration_job else {
            return Gate::Open;
        };
        let live_image = live.and_then(|d| rollout::image_of(d.spec.as_ref().map(|s| &s.template)));
        if live_image.as_deref() == Some(&*stack.api.image) {
            // This image runs already: it was migrated before it rolled out.
            return Gate::Open;
        }
        let job = desired_job.metadata.name.clone().unwrap_or_default();
        let closed = |steps: Vec<Step>, report: TierRollout| Gate::Closed {
            steps,
            report: Some(report),
        };
        let migrating = |message: String| TierRollout::Migrating {
            job: job.clone(),
            message,
        };
        let Some(live_job) = self.existing.job(&job) else {
            if let Some(failed) = stack.failed_now(Component::Api) {
                return closed(vec![], remembered(failed));
            }
            if !database_ready(stack, self.existing) {
                return closed(
                    vec![],
                    migrating(format!(
                        "api: waiting for the database before migration Job {job} runs image {}",
                        stack.api.image
                    )),
                );
            }
            let mut object = Object::Job(desired_job.clone());
            drift::stamp(&mut object);
            let create = Step::Apply {
                object,
                change: Change::Create,
            };
            return closed(
                vec![create],
                migrating(format!(
                    "api: migration Job {job} runs image {}",
                    stack.api.image
                )),
            );
        };
        match migration::job_state(live_job, &self.existing.pods) {
            migration::JobState::Succeeded => Gate::Open,
            migration::JobState::Running => {
                match rollout::failing_job_pod(&job, &self.existing.pods) {
                    Some(why) => closed(
                        vec![],
                        TierRollout::MigrationFailed {
                            job: job.clone(),
                            message: format!(
                                "api: migration Job {job} cannot start image {}, the running version keeps serving: {why}",
                                stack.api.image
                            ),
                        },
                    ),
                    None => closed(
                        vec![],
                        migrating(format!(
                            "api: migration Job {job} runs image {}",
                            stack.api.image
                        )),
                    ),
                }
            }
            migration::JobState::Failed(why) => {
                let older = migration::job_generation(live_job)
                    .zip(stack.generation)
                    .is_some_and(|(job_generation, now)| job_generation < now);
                if older {
                    // A newer spec retries: the failed Job goes, a new one follows.
                    return closed(
                        vec![Step::Delete {
                            slot: Slot::new(Kind::Job, job.clone()),
                        }],
                        migrating(format!(
                            "api: migration Job {job} failed for an earlier spec; running it again"
                        )),
                    );
                }
                closed(
                    vec![],
                    TierRollout::MigrationFailed {
                        job: job.clone(),
                        message: format!(
                            "api: migration Job {job} for image {} failed, the running version keeps serving: {why}",
                            stack.api.image
                        ),
                    },
                )
            }
        }
    }

    /// The Deployment runs its desired template: are its new pods failing? Then back to the
    /// last good template (unless opted out, or there is none).
    fn failed_rollout(&self, wanted: &Deployment, live: &Deployment) -> Gate {
        if !rolling_out(live) {
            return Gate::Open;
        }
        let timeout =
            Duration::from_secs(self.stack.rollout.readiness_timeout_seconds.max(0) as u64);
        let sets = &self.existing.replica_sets;
        let Some(failure) =
            rollout::failing_pod(live, sets, &self.existing.pods, self.now, timeout)
        else {
            return Gate::Open;
        };
        let image = rollout::image_of(live.spec.as_ref().map(|s| &s.template));
        let name = self.component.label();
        let good = self
            .stack
            .rollout
            .auto_rollback
            .then(|| rollout::last_good_template(live, sets))
            .flatten();
        let Some(template) = good else {
            return Gate::Closed {
                steps: vec![],
                report: Some(TierRollout::Failing { image, failure }),
            };
        };
        let mut back = wanted.clone();
        if let Some(spec) = back.spec.as_mut() {
            spec.template = template;
        }
        let mut object = Object::Deployment(back);
        drift::stamp(&mut object);
        let message = format!(
            "{name}: rolled back from image {}: pod {} {}: {}",
            image.as_deref().unwrap_or("?"),
            failure.pod,
            failure.reason,
            failure.message
        );
        Gate::Closed {
            steps: vec![Step::Apply {
                object,
                change: Change::RollBack,
            }],
            report: Some(TierRollout::RolledBack { image, message }),
        }
    }
}

/// The Deployment controller has not finished rolling out its current template. A rollout that
/// completed and then lost pods is not rolled back: that is the running version failing.
fn rolling_out(deployment: &Deployment) -> bool {
    let progressing = deployment
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == "Progressing");
    match progressing {
        Some(condition) => condition.reason.as_deref() != Some("NewReplicaSetAvailable"),
        None => !RolloutState::of(deployment).complete(),
    }
}

/// What the status remembers of a failed rollout of this spec.
fn remembered(failed: &FailedRollout) -> TierRollout {
    match &failed.image {
        Some(image) => TierRollout::RolledBack {
            image: Some(image.clone()),
            message: failed.message.clone(),
        },
        None => TierRollout::MigrationFailed {
            job: failed.job.clone().unwrap_or_default(),
            message: failed.message.clone(),
        },
    }
}

/// The database answers: a migration can connect.
fn database_ready(stack: &ValidStack, existing: &Existing) -> bool {
    existing
        .statefulset(&stack.child_name(Component::Database))
        .is_some_and(|set| RolloutState::of_statefulset(set).ready >= 1)
}

/// An update of data (the Secret's password and claim record, the claim's size) is decided on
/// what was read: it carries that resourceVersion, so that it fails, instead of undoing them, if
/// another writer changed the object since. Set after the drift check, which it must not affect.
fn guard_data(slot: &Slot, live: &Object, desired: &mut Object) {
    if is_data(slot) {
        desired.meta_mut().resource_version = live.meta().resource_version.clone();
    }
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
mod rollout_tests;
#[cfg(test)]
mod tests;
