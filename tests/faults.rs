//! Delete and re-create at any moment: a seeded random walk over a few stacks that flips
//! retention, deletes with all three propagation policies, re-creates at once, and kills the
//! operator (its task aborted mid-flight, as a SIGKILL would) between any two steps. After every
//! step the invariants are checked and violations counted; the last line says
//! `faults: R rounds, F faults, V violations`.
//!
//! `APPSTACK_FAULT_ROUNDS` (default 24) and `APPSTACK_FAULT_SEED` (default fixed) size and vary
//! the walk. Needs the local control plane, like the other integration tests.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use appstack_operator::crd::AppStack;
use common::{TestEnv, condition, eventually, password, small_stack, terminating};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, Service};
use kube::api::DeleteParams;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// "Every live stack Ready within 60 s of the last fault."
const CONVERGE: Duration = Duration::from_secs(60);
const STACKS: [&str; 3] = ["alpha", "beta", "gamma"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// What the walk knows a stack should be.
#[derive(Default)]
struct Expected {
    live: bool,
    retain: bool,
    /// The password of data that must still be there (kept, or of the live stack).
    password: Option<Vec<u8>>,
}

struct Walk {
    env: TestEnv,
    rng: StdRng,
    stacks: BTreeMap<&'static str, Expected>,
    faults: u32,
    violations: Vec<String>,
}

impl Walk {
    fn violation(&mut self, what: String) {
        eprintln!("VIOLATION: {what}");
        self.violations.push(what);
    }

    /// With some probability, kill the operator and start a new one.
    async fn maybe_kill(&mut self) {
        if self.rng.random_bool(0.4) {
            eprintln!("  kill the operator");
            self.env.stop_operator().await;
            self.env.start_operator();
            self.faults += 1;
        }
    }

    async fn create(&mut self, name: &'static str) {
        let retain = self.rng.random_bool(0.5);
        eprintln!("  create {name} (retainOnDelete: {retain})");
        self.env
            .apply_stack(&small_stack(name, &format!("retainOnDelete: {retain}")))
            .await
            .expect("stack applies");
        self.maybe_kill().await;
        let ready = eventually(CONVERGE, || async {
            let stack = self.env.get_opt::<AppStack>(name).await?;
            (condition(&stack, "Ready") == Some("True")).then_some(())
        })
        .await;
        if ready.is_none() {
            let why = self.env.get_opt::<AppStack>(name).await.map(|stack| {
                common::message(&stack, "Ready")
                    .unwrap_or_default()
                    .to_owned()
            });
            self.violation(format!(
                "{name}: not Ready within {CONVERGE:?} of its creation: {why:?}"
            ));
            return;
        }
        let secret = self
            .env
            .get::<Secret>(&format!("{name}-db-credentials"))
            .await;
        let expected = self.stacks.entry(name).or_default();
        let kept = expected.password.clone();
        expected.live = true;
        expected.retain = retain;
        expected.password = Some(password(&secret));
        if kept.is_some_and(|kept| kept != password(&secret)) {
            self.violation(format!(
                "{name}: re-created over kept data with a new password"
            ));
        }
        self.check_single_database(name).await;
    }

    async fn flip(&mut self, name: &'static str) {
        let retain = !self.stacks[name].retain;
        eprintln!("  flip {name} to retainOnDelete: {retain}");
        self.env
            .patch_spec(
                name,
                serde_json::json!({"database": {"retainOnDelete": retain}}),
            )
            .await;
        self.stacks.get_mut(name).expect("known").retain = retain;
        // Sometimes the delete follows before any reconcile saw the flip.
        self.maybe_kill().await;
    }

    async fn delete(&mut self, name: &'static str) {
        let propagation = match self.rng.random_range(0..3) {
            0 => Propagation::Background,
            1 => Propagation::Foreground,
            _ => Propagation::Orphan,
        };
        let params = match propagation {
            Propagation::Background => DeleteParams::background(),
            Propagation::Foreground => DeleteParams::foreground(),
            Propagation::Orphan => DeleteParams::orphan(),
        };
        let retain = self.stacks[name].retain;
        eprintln!("  delete {name} ({propagation:?}, retainOnDelete: {retain})");
        self.env.delete_stack(name, params).await;
        self.maybe_kill().await;
        let gone = eventually(CONVERGE, || async {
            self.env
                .get_opt::<AppStack>(name)
                .await
                .is_none()
                .then_some(())
        })
        .await;
        if gone.is_none() {
            self.violation(format!("{name}: {propagation:?} delete did not finish"));
            return;
        }
        let keeps_data = retain || propagation == Propagation::Orphan;
        let expected = self.stacks.get_mut(name).expect("known");
        expected.live = false;
        if !keeps_data {
            expected.password = None;
        }
        self.check_deleted(name, keeps_data, propagation).await;
    }

    /// Data kept if and only if the spec said retain at deletion or the delete was an orphan
    /// delete; nothing left behind after a background or foreground delete.
    async fn check_deleted(&mut self, name: &str, keeps_data: bool, propagation: Propagation) {
        let secret_name = format!("{name}-db-credentials");
        let claim_name = format!("{name}-db-data");
        if keeps_data {
            let secret = self.env.get_opt::<Secret>(&secret_name).await;
            let claim = self.env.get_opt::<PersistentVolumeClaim>(&claim_name).await;
            let kept = self.stacks[name].password.clone();
            match (secret, claim) {
                (Some(secret), Some(claim)) if !terminating(&secret) && !terminating(&claim) => {
                    if kept.is_some_and(|kept| kept != password(&secret)) {
                        self.violation(format!("{name}: kept Secret has another password"));
                    }
                }
                _ => self.violation(format!(
                    "{name}: data lost after a {propagation:?} delete that should keep it"
                )),
            }
            return;
        }
        let left = eventually(common::TIMEOUT, || async {
            let mut left = Vec::new();
            if self.env.get_opt::<Secret>(&secret_name).await.is_some() {
                left.push(format!("Secret/{secret_name}"));
            }
            if let Some(claim) = self.env.get_opt::<PersistentVolumeClaim>(&claim_name).await
                && !terminating(&claim)
            {
                left.push(format!("PersistentVolumeClaim/{claim_name}"));
            }
            if propagation != Propagation::Orphan {
                for tier in ["db", "api", "frontend"] {
                    let child = format!("{name}-{tier}");
                    if self.env.get_opt::<Service>(&child).await.is_some() {
                        left.push(format!("Service/{child}"));
                    }
                    if self.env.get_opt::<Deployment>(&child).await.is_some() {
                        left.push(format!("Deployment/{child}"));
                    }
                    if self.env.get_opt::<StatefulSet>(&child).await.is_some() {
                        left.push(format!("StatefulSet/{child}"));
                    }
                }
            }
            left.is_empty().then_some(()).ok_or(left).ok()
        })
        .await;
        if left.is_none() {
            self.violation(format!(
                "{name}: objects left behind after a {propagation:?} delete that kept no data"
            ));
        }
    }

    /// Never two workloads for one tier: the database runs as one StatefulSet and nothing else.
    async fn check_single_database(&mut self, name: &str) {
        let workloads = self.env.database_workloads(name).await;
        if workloads.len() != 1 {
            let kinds: Vec<_> = workloads.iter().map(|(kind, ..)| kind.clone()).collect();
            self.violation(format!("{name}: database workloads {kinds:?}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_recreates_and_operator_kills_lose_nothing() {
    let rounds: u32 = std::env::var("APPSTACK_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let seed: u64 = std::env::var("APPSTACK_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(19);
    let mut walk = Walk {
        env: TestEnv::start("faults").await,
        rng: StdRng::seed_from_u64(seed),
        stacks: BTreeMap::new(),
        faults: 0,
        violations: Vec::new(),
    };
    for round in 0..rounds {
        let name = STACKS[walk.rng.random_range(0..STACKS.len())];
        let live = walk.stacks.get(name).is_some_and(|s| s.live);
        eprintln!("round {round}: {name} (live: {live})");
        if !live {
            walk.create(name).await;
        } else if walk.rng.random_bool(0.35) {
            walk.flip(name).await;
        } else {
            walk.delete(name).await;
            // Half the time, re-create at once.
            if walk.rng.random_bool(0.5) {
                walk.create(name).await;
            }
        }
    }
    // Every live stack is Ready within the bound of the last fault.
    walk.env.stop_operator().await;
    walk.env.start_operator();
    walk.faults += 1;
    let live: Vec<&str> = walk
        .stacks
        .iter()
        .filter(|(_, s)| s.live)
        .map(|(name, _)| *name)
        .collect();
    for name in live {
        let ready = eventually(CONVERGE, || async {
            let stack = walk.env.get_opt::<AppStack>(name).await?;
            (condition(&stack, "Ready") == Some("True")).then_some(())
        })
        .await;
        if ready.is_none() {
            walk.violation(format!(
                "{name}: not Ready within {CONVERGE:?} of the last fault"
            ));
        }
        walk.check_single_database(name).await;
    }
    let violations = walk.violations.clone();
    println!(
        "faults: {rounds} rounds, {} faults, {} violations (seed {seed})",
        walk.faults,
        violations.len()
    );
    walk.env.finish().await;
    assert!(violations.is_empty(), "{violations:#?}");
}
