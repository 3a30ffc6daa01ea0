//! `compute_status`: the AppStack status as a pure function of what the controller observed.
//!
//! Conditions follow the Kubernetes convention and kstatus: `Ready`, `Reconciling` and `Stalled`,
//! plus one per component. A condition keeps its `lastTransitionTime` unless its status flips, so
//! an unchanged stack computes an identical status and the controller writes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{
    AppStackStatus, ComponentsStatus, DatabaseStatus, MigrationStatus, Phase, WorkloadStatus,
};
use crate::plan::child::{Kind, Object, Slot};
use crate::plan::{Hold, TierRollout};
use crate::reasons;
use crate::stack::{Component, ValidStack};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const DATABASE_READY: &str = "DatabaseReady";
pub const API_READY: &str = "ApiReady";
pub const FRONTEND_READY: &str = "FrontendReady";

/// What stops the stack from converging until a person acts (an invalid spec, a name clash, a
/// missing Secret): reported as `Stalled=True` and `Ready=False` with this reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub reason: &'static str,
    pub message: String,
    /// The object it is about, as (kind, name): Events name it as their related object, so
    /// that distinct problems stay distinct Events.
    pub object: Option<(&'static str, String)>,
}

/// The state of one Deployment, as far as readiness is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutState {
    pub desired: i32,
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The Deployment controller has seen the latest spec.
    pub current: bool,
    /// `Progressing=False` with reason `ProgressDeadlineExceeded`, and its message.
    pub deadline_exceeded: Option<String>,
    pub image: Option<String>,
}

impl RolloutState {
    pub fn of(deployment: &Deployment) -> Self {
        let spec = deployment.spec.as_ref();
        let status = deployment.status.clone().unwrap_or_default();
        let deadline_exceeded = status.conditions.iter().flatten().find_map(|c| {
            (c.type_ == "Progressing"
                && c.status == "False"
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
            .then(|| c.message.clone().unwrap_or_default())
        });
        RolloutState {
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current: status.observed_generation.is_some()
                && status.observed_generation >= deployment.metadata.generation,
            deadline_exceeded,
            image: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone()),
        }
    }

    pub fn of_statefulset(set: &StatefulSet) -> Self {
        let spec = set.spec.as_ref();
        let status = set.status.clone().unwrap_or_default();
        let revisions_agree =
            status.current_revision.is_some() && status.current_revision == status.update_revision;
        RolloutState {
            desired: spec.and_then(|s| s.replicas).unwrap_or(1),
            replicas: status.replicas,
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            current: revisions_agree
                && status.observed_generation.is_some()
                && status.observed_generation >= set.metadata.generation,
            deadline_exceeded: None,
            image: spec
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|p| p.containers.first())
                .and_then(|c| c.image.clone()),
        }
    }

    /// Every desired pod runs the latest template and is available, and no old pod is left.
    pub fn complete(&self) -> bool {
        self.current
            && self.updated >= self.desired
            && self.ready >= self.desired
            && self.available >= self.desired
            && self.replicas == self.desired
    }
}

/// Everything `compute_status` looks at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    pub generation: Option<i64>,
    pub deleting: bool,
    pub blocker: Option<Blocker>,
    /// Waiting for something that goes away by itself (an earlier stack's claim).
    pub waiting: Option<Blocker>,
    pub url: Option<String>,
    pub secret_name: Option<String>,
    pub claim_name: Option<String>,
    pub claim_bound: bool,
    pub database: Option<RolloutState>,
    pub api: Option<RolloutState>,
    pub frontend: Option<RolloutState>,
    /// Why a web tier does not run what its spec says (migration, failed rollout).
    pub rollouts: Vec<(Component, TierRollout)>,
    /// The API image of the spec (what a migration runs).
    pub api_image: Option<String>,
}

impl Observed {
    fn rollout(&self, component: Component) -> Option<&TierRollout> {
        self.rollouts
            .iter()
            .find_map(|(c, r)| (*c == component).then_some(r))
    }
}

/// What status looks at: the plan's verdict and the children as the writes left them.
pub fn observe(
    stack: &ValidStack,
    hold: Option<&Hold>,
    rollouts: &[(Component, TierRollout)],
    children: &BTreeMap<Slot, Object>,
    generation: Option<i64>,
) -> Observed {
    let rollout = |component: Component| {
        let name = stack.child_name(component);
        match component {
            Component::Database => match children.get(&Slot::new(Kind::StatefulSet, name)) {
                Some(Object::StatefulSet(set)) => Some(RolloutState::of_statefulset(set)),
                _ => None,
            },
            _ => match children.get(&Slot::new(Kind::Deployment, name)) {
                Some(Object::Deployment(deployment)) => Some(RolloutState::of(deployment)),
                _ => None,
            },
        }
    };
    let claim_bound = match children.get(&Slot::new(Kind::Claim, stack.claim_name())) {
        Some(Object::Claim(claim)) => {
            claim.metadata.deletion_timestamp.is_none()
                && claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        }
        _ => false,
    };
    Observed {
        generation,
        blocker: match hold {
            Some(Hold::Blocked(blocker)) => Some(blocker.clone()),
            _ => None,
        },
        waiting: match hold {
            Some(Hold::Waiting(blocker)) => Some(blocker.clone()),
            _ => None,
        },
        url: Some(stack.url()),
        secret_name: Some(stack.credentials_secret_name()),
        claim_name: Some(stack.claim_name()),
        claim_bound,
        database: rollout(Component::Database),
        api: rollout(Component::Api),
        frontend: rollout(Component::Frontend),
        rollouts: rollouts.to_vec(),
        api_image: Some(stack.api.image.clone()),
        deleting: false,
    }
}

/// One condition's verdict before timestamps are attached.
struct Verdict {
    ready: bool,
    /// Needs a person: counts as stalled.
    stuck: bool,
    reason: &'static str,
    message: String,
}

fn workload_verdict(name: &str, state: Option<&RolloutState>) -> Verdict {
    let Some(state) = state else {
        return Verdict {
            ready: false,
            stuck: false,
            reason: "Creating",
            message: format!("{name}: its workload does not exist yet"),
        };
    };
    if let Some(message) = &state.deadline_exceeded {
        return Verdict {
            ready: false,
            stuck: true,
            reason: "ProgressDeadlineExceeded",
            message: format!("{name}: {message}"),
        };
    }
    if state.complete() {
        return Verdict {
            ready: true,
            stuck: false,
            reason: "RolloutComplete",
            message: format!("{name}: {}/{} pods ready", state.ready, state.desired),
        };
    }
    Verdict {
        ready: false,
        stuck: false,
        reason: "RolloutInProgress",
        message: format!(
            "{name}: {}/{} pods ready, {} updated",
            state.ready, state.desired, state.updated
        ),
    }
}

fn database_verdict(observed: &Observed) -> Verdict {
    match observed.rollout(Component::Database) {
        Some(TierRollout::CheckingImage { message, .. }) => {
            // The database keeps serving on its current image meanwhile.
            let current = plain_database_verdict(observed);
            return Verdict {
                ready: false,
                stuck: false,
                reason: reasons::CHECKING_DATABASE_IMAGE,
                message: if current.ready {
                    message.clone()
                } else {
                    format!("{message}; {}", current.message)
                },
            };
        }
        Some(TierRollout::ImageRefused { reason, message }) => {
            return Verdict {
                ready: false,
                stuck: true,
                reason,
                message: message.clone(),
            };
        }
        _ => {}
    }
    plain_database_verdict(observed)
}

fn plain_database_verdict(observed: &Observed) -> Verdict {
    if !observed.claim_bound {
        let claim = observed.claim_name.as_deref().unwrap_or("the data claim");
        return Verdict {
            ready: false,
            stuck: false,
            reason: "ClaimPending",
            message: format!("database: volume claim {claim} is not bound yet"),
        };
    }
    workload_verdict("database", observed.database.as_ref())
}

/// The status for `observed`, keeping `old`'s transition times where nothing flipped.
pub fn compute_status(
    old: Option<&AppStackStatus>,
    observed: &Observed,
    now: &Time,
) -> AppStackStatus {
    let database = database_verdict(observed);
    let api = web_verdict(observed, Component::Api);
    let frontend = web_verdict(observed, Component::Frontend);
    let components = [&database, &api, &frontend];
    let all_ready = components.iter().all(|v| v.ready);
    let first_stuck = components.iter().find(|v| v.stuck);
    let first_unready = components.iter().find(|v| !v.ready);

    let (ready, stalled): (Verdict, Option<(&'static str, String)>) = if observed.deleting {
        (
            Verdict {
                ready: false,
                stuck: false,
                reason: "Deleting",
                message: "the stack is being deleted".into(),
            },
            None,
        )
    } else if let Some(blocker) = &observed.blocker {
        let stalled = Some((blocker.reason, blocker.message.clone()));
        (
            Verdict {
                ready: false,
                stuck: true,
                reason: blocker.reason,
                message: blocker.message.clone(),
            },
            stalled,
        )
    } else if let Some(waiting) = &observed.waiting {
        (
            Verdict {
                ready: false,
                stuck: false,
                reason: waiting.reason,
                message: waiting.message.clone(),
            },
            None,
        )
    } else if all_ready {
        let message = components
            .iter()
            .map(|v| v.message.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        (
            Verdict {
                ready: true,
                stuck: false,
                reason: "AllComponentsReady",
                message,
            },
            None,
        )
    } else {
        let cause = first_stuck
            .or(first_unready)
            .expect("some component is not ready");
        let stalled = first_stuck.map(|v| (v.reason, v.message.clone()));
        (
            Verdict {
                ready: false,
                stuck: cause.stuck,
                reason: cause.reason,
                message: cause.message.clone(),
            },
            stalled,
        )
    };

    let phase = if observed.deleting {
        Phase::Deleting
    } else if observed.blocker.is_some() {
        Phase::Failed
    } else if ready.ready {
        Phase::Ready
    } else if observed.waiting.is_some() {
        Phase::Progressing
    } else if stalled.is_some() || was_ready_and_spec_unchanged(old, observed.generation) {
        Phase::Degraded
    } else if components.iter().all(|v| !v.ready)
        && observed.api.as_ref().is_none_or(|s| s.ready == 0)
    {
        Phase::Pending
    } else {
        Phase::Progressing
    };
    let reconciling = !ready.ready && stalled.is_none() && !observed.deleting;

    let generation = observed.generation;
    let condition = |type_: &str, status: bool, reason: &str, message: &str| {
        make_condition(old, type_, status, reason, message, generation, now)
    };
    let (stalled_reason, stalled_message) =
        stalled.clone().unwrap_or(("AsExpected", String::new()));
    let conditions = vec![
        condition(READY, ready.ready, ready.reason, &ready.message),
        condition(
            RECONCILING,
            reconciling,
            if reconciling {
                ready.reason
            } else {
                "AsExpected"
            },
            if reconciling { &ready.message } else { "" },
        ),
        condition(STALLED, stalled.is_some(), stalled_reason, &stalled_message),
        condition(
            DATABASE_READY,
            database.ready,
            database.reason,
            &database.message,
        ),
        condition(API_READY, api.ready, api.reason, &api.message),
        condition(
            FRONTEND_READY,
            frontend.ready,
            frontend.reason,
            &frontend.message,
        ),
    ];

    AppStackStatus {
        observed_generation: generation,
        phase: Some(phase),
        url: observed.url.clone(),
        conditions,
        components: Some(ComponentsStatus {
            api: workload_status(observed, Component::Api),
            frontend: workload_status(observed, Component::Frontend),
            database: DatabaseStatus {
                ready: database.ready,
                secret_name: observed.secret_name.clone(),
                volume_claim: observed.claim_name.clone(),
            },
        }),
    }
}

/// A stack that was Ready for this same generation and no longer is has lost pods on its own:
/// that is Degraded, not a rollout in progress.
fn was_ready_and_spec_unchanged(old: Option<&AppStackStatus>, generation: Option<i64>) -> bool {
    old.is_some_and(|old| {
        old.observed_generation == generation
            && matches!(old.phase, Some(Phase::Ready | Phase::Degraded))
    })
}

fn workload_status(observed: &Observed, component: Component) -> WorkloadStatus {
    let state = match component {
        Component::Api => observed.api.as_ref(),
        _ => observed.frontend.as_ref(),
    };
    let state = state.cloned().unwrap_or_default();
    let rollout = observed.rollout(component);
    // Remembered so that the same spec is not tried again (see `ValidStack::failed_now`).
    let (failed_image, failed_generation) = match rollout {
        Some(TierRollout::RolledBack { image, .. }) => (image.clone(), observed.generation),
        Some(TierRollout::MigrationFailed { .. }) => (None, observed.generation),
        _ => (None, None),
    };
    let migration = match rollout {
        Some(TierRollout::Migrating { job, .. }) => Some((job, "Running", None)),
        Some(TierRollout::MigrationFailed { job, message }) => {
            Some((job, "Failed", Some(message.clone())))
        }
        _ => None,
    };
    WorkloadStatus {
        replicas: state.desired,
        ready_replicas: state.ready,
        updated_replicas: state.updated,
        ready: format!("{}/{}", state.ready, state.desired),
        image: state.image,
        failed_image,
        failed_generation,
        migration: migration.map(|(job, state, message)| MigrationStatus {
            job: job.clone(),
            image: observed.api_image.clone().unwrap_or_default(),
            state: state.into(),
            message,
        }),
    }
}

/// A web tier's verdict: what stops or undid its rollout comes first.
fn web_verdict(observed: &Observed, component: Component) -> Verdict {
    let (name, state) = match component {
        Component::Api => ("api", observed.api.as_ref()),
        _ => ("frontend", observed.frontend.as_ref()),
    };
    let stuck = |reason: &'static str, message: &str| Verdict {
        ready: false,
        stuck: true,
        reason,
        message: message.to_owned(),
    };
    match observed.rollout(component) {
        None => workload_verdict(name, state),
        Some(TierRollout::Migrating { message, .. }) => Verdict {
            ready: false,
            stuck: false,
            reason: reasons::MIGRATING,
            message: message.clone(),
        },
        Some(TierRollout::MigrationFailed { message, .. }) => {
            stuck(reasons::MIGRATION_FAILED, message)
        }
        Some(TierRollout::RolledBack { message, .. }) => stuck(reasons::ROLLED_BACK, message),
        // Database reports never name a web tier.
        Some(TierRollout::CheckingImage { .. } | TierRollout::ImageRefused { .. }) => {
            workload_verdict(name, state)
        }
        Some(TierRollout::Failing { image, failure }) => stuck(
            reasons::ROLLOUT_FAILED,
            &format!(
                "{name}: image {} fails: pod {} {}: {}",
                image.as_deref().unwrap_or("?"),
                failure.pod,
                failure.reason,
                failure.message
            ),
        ),
    }
}

fn make_condition(
    old: Option<&AppStackStatus>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let previous = old.and_then(|o| o.conditions.iter().find(|c| c.type_ == type_));
    let last_transition_time = match previous {
        Some(previous) if previous.status == status => previous.last_transition_time.clone(),
        _ => now.clone(),
    };
    Condition {
        type_: type_.into(),
        status,
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(seconds: i64) -> Time {
        Time(jiff::Timestamp::from_second(seconds).unwrap())
    }

    fn rolled_out(desired: i32) -> RolloutState {
        RolloutState {
            desired,
            replicas: desired,
            ready: desired,
            updated: desired,
            available: desired,
            current: true,
            deadline_exceeded: None,
            image: Some("img".into()),
        }
    }

    fn healthy() -> Observed {
        Observed {
            generation: Some(2),
            url: Some("http://books.example.com".into()),
            secret_name: Some("books-db-credentials".into()),
            claim_name: Some("books-db-data".into()),
            claim_bound: true,
            database: Some(rolled_out(1)),
            api: Some(rolled_out(2)),
            frontend: Some(rolled_out(2)),
            ..Observed::default()
        }
    }

    fn condition<'a>(status: &'a AppStackStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    /// Phase, then Ready's status and reason, then Reconciling's and Stalled's status.
    type Summary<'a> = (Phase, &'a str, &'a str, &'a str, &'a str);

    fn summary(status: &AppStackStatus) -> Summary<'_> {
        (
            status.phase.unwrap(),
            condition(status, READY).status.as_str(),
            condition(status, READY).reason.as_str(),
            condition(status, RECONCILING).status.as_str(),
            condition(status, STALLED).status.as_str(),
        )
    }

    #[test]
    fn table_of_cases() {
        let fresh = Observed {
            generation: Some(1),
            claim_name: Some("c".into()),
            ..Observed::default()
        };
        let mut rolling = healthy();
        rolling.api = Some(RolloutState {
            ready: 1,
            updated: 1,
            ..rolled_out(2)
        });
        let mut deadline = healthy();
        deadline.frontend = Some(RolloutState {
            deadline_exceeded: Some("ReplicaSet has timed out progressing".into()),
            updated: 1,
            ..rolled_out(2)
        });
        let blocked = Observed {
            blocker: Some(Blocker {
                reason: "NameConflict",
                message: "Service books-api exists".into(),
                object: Some(("Service", "books-api".into())),
            }),
            ..healthy()
        };
        let deleting = Observed {
            deleting: true,
            ..healthy()
        };
        let mut stale = healthy();
        stale.api.as_mut().unwrap().current = false;
        let waiting = Observed {
            waiting: Some(Blocker {
                reason: "WaitingForPreviousClaim",
                message: "volume claim books-db-data is being deleted".into(),
                object: None,
            }),
            claim_bound: false,
            database: None,
            ..healthy()
        };

        let cases: [(&str, Observed, Summary); 8] = [
            (
                "all ready",
                healthy(),
                (Phase::Ready, "True", "AllComponentsReady", "False", "False"),
            ),
            (
                "nothing yet",
                fresh,
                (Phase::Pending, "False", "ClaimPending", "True", "False"),
            ),
            (
                "rolling",
                rolling,
                (
                    Phase::Progressing,
                    "False",
                    "RolloutInProgress",
                    "True",
                    "False",
                ),
            ),
            (
                "bad image",
                deadline,
                (
                    Phase::Degraded,
                    "False",
                    "ProgressDeadlineExceeded",
                    "False",
                    "True",
                ),
            ),
            (
                "blocked",
                blocked,
                (Phase::Failed, "False", "NameConflict", "False", "True"),
            ),
            (
                "deleting",
                deleting,
                (Phase::Deleting, "False", "Deleting", "False", "False"),
            ),
            (
                "controller behind",
                stale,
                (
                    Phase::Progressing,
                    "False",
                    "RolloutInProgress",
                    "True",
                    "False",
                ),
            ),
            (
                "waiting for an earlier claim: progressing, not stalled",
                waiting,
                (
                    Phase::Progressing,
                    "False",
                    "WaitingForPreviousClaim",
                    "True",
                    "False",
                ),
            ),
        ];
        for (name, observed, expected) in cases {
            let status = compute_status(None, &observed, &time(100));
            assert_eq!(summary(&status), expected, "{name}");
            assert_eq!(status.observed_generation, observed.generation, "{name}");
            assert!(
                status
                    .conditions
                    .iter()
                    .all(|c| c.observed_generation == observed.generation)
            );
        }
    }

    #[test]
    fn rollouts_explain_themselves_and_failures_are_remembered() {
        let with = |rollout: TierRollout| Observed {
            rollouts: vec![(Component::Api, rollout)],
            api_image: Some("api:2".into()),
            ..healthy()
        };
        let migrating = compute_status(
            None,
            &with(TierRollout::Migrating {
                job: "books-migrate-1".into(),
                message: "api: migration Job books-migrate-1 runs image api:2".into(),
            }),
            &time(1),
        );
        assert_eq!(
            summary(&migrating),
            (Phase::Progressing, "False", "Migrating", "True", "False")
        );
        let migration = migrating.components.as_ref().unwrap().api.migration.clone();
        assert_eq!(
            migration.map(|m| (m.job, m.state)),
            Some(("books-migrate-1".into(), "Running".into()))
        );

        let failed = compute_status(
            None,
            &with(TierRollout::MigrationFailed {
                job: "books-migrate-1".into(),
                message: "api: migration Job books-migrate-1 failed".into(),
            }),
            &time(1),
        );
        assert_eq!(
            summary(&failed),
            (Phase::Degraded, "False", "MigrationFailed", "False", "True")
        );
        assert_eq!(
            failed.components.as_ref().unwrap().api.failed_generation,
            Some(2)
        );

        let rolled_back = compute_status(
            None,
            &with(TierRollout::RolledBack {
                image: Some("api:2".into()),
                message: "api: rolled back from image api:2: pod p ErrImagePull: not found".into(),
            }),
            &time(1),
        );
        assert_eq!(
            summary(&rolled_back),
            (Phase::Degraded, "False", "RolledBack", "False", "True")
        );
        assert!(
            condition(&rolled_back, READY)
                .message
                .contains("ErrImagePull")
        );
        let api = &rolled_back.components.as_ref().unwrap().api;
        assert_eq!(
            (api.failed_image.as_deref(), api.failed_generation),
            (Some("api:2"), Some(2))
        );

        let failing = compute_status(
            None,
            &with(TierRollout::Failing {
                image: Some("api:2".into()),
                failure: crate::plan::rollout::PodFailure {
                    pod: "p".into(),
                    reason: "CrashLoopBackOff".into(),
                    message: "back-off".into(),
                },
            }),
            &time(1),
        );
        assert_eq!(
            summary(&failing),
            (Phase::Degraded, "False", "RolloutFailed", "False", "True")
        );
        assert!(
            condition(&failing, API_READY)
                .message
                .contains("api: image api:2 fails: pod p CrashLoopBackOff")
        );
        assert_eq!(failing.components.unwrap().api.failed_generation, None);
    }

    #[test]
    fn no_flip_keeps_transition_time_and_yields_an_identical_status() {
        let first = compute_status(None, &healthy(), &time(100));
        let second = compute_status(Some(&first), &healthy(), &time(200));
        assert_eq!(
            first, second,
            "an unchanged stack must not be written again"
        );
        assert_eq!(condition(&second, READY).last_transition_time, time(100));
    }

    #[test]
    fn flip_moves_only_the_flipped_conditions() {
        let first = compute_status(None, &healthy(), &time(100));
        let mut broken = healthy();
        broken.database = Some(RolloutState {
            ready: 0,
            available: 0,
            ..rolled_out(1)
        });
        let second = compute_status(Some(&first), &broken, &time(200));
        assert_eq!(condition(&second, READY).last_transition_time, time(200));
        assert_eq!(
            condition(&second, DATABASE_READY).last_transition_time,
            time(200)
        );
        assert_eq!(
            condition(&second, API_READY).last_transition_time,
            time(100)
        );
        assert_eq!(
            second.phase,
            Some(Phase::Degraded),
            "was ready for this generation"
        );
    }

    #[test]
    fn components_report_counts_for_printer_columns() {
        let mut observed = healthy();
        observed.api = Some(RolloutState {
            ready: 1,
            ..rolled_out(3)
        });
        let status = compute_status(None, &observed, &time(1));
        let api = &status.components.as_ref().unwrap().api;
        assert_eq!(
            (api.replicas, api.ready_replicas, api.ready.as_str()),
            (3, 1, "1/3")
        );
        assert!(status.components.unwrap().database.ready);
    }

    #[test]
    fn rollout_state_reads_a_deployment() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "books-api", "generation": 4},
            "spec": {"replicas": 2, "selector": {}, "template": {"spec": {"containers": [{"name": "api", "image": "api:2"}]}}},
            "status": {"observedGeneration": 4, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        }))
        .unwrap();
        let state = RolloutState::of(&deployment);
        assert!(state.complete());
        assert_eq!(state.image.as_deref(), Some("api:2"));
        let mut behind = deployment.clone();
        behind.metadata.generation = Some(5);
        assert!(!RolloutState::of(&behind).complete());
    }
}
