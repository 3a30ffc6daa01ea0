//! Leader election on a `coordination.k8s.io` Lease, so that of several replicas only one runs
//! the controller.
//!
//! Hand-written on kube's Lease API rather than taken from a crate: the one crate that fits kube 5
//! (kube-lease-manager 0.13) notices a released Lease only when the old one would have expired,
//! so a graceful hand-over is as slow as a crash, and it keeps reporting leadership while its
//! renewals fail, with no deadline after which the leader steps down.
//!
//! Every write is a merge patch carrying the resourceVersion that was read (optimistic
//! concurrency): of two candidates that read the same free or expired Lease, one write succeeds
//! and the other gets a conflict. Expiry is judged by this process's own clock: a Lease is
//! expired once it has not changed for `leaseDurationSeconds` since this process first saw its
//! current version (client-go's rule), so clocks that disagree between nodes do not matter.
//!
//! The timing: the leader renews every [`Timing::renew_every`] and steps down when it could not
//! renew for [`Timing::renew_deadline`], which is shorter than the lease, so it has stopped
//! before a standby may take over. A standby reads the Lease every [`Timing::retry`]: it takes a
//! released Lease within that, and an expired one within `lease + retry` of the last renewal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The Lease's name, in the operator's namespace.
pub const LEASE_NAME: &str = "appstack-operator";
const MANAGER: &str = "appstack-operator-leader";
/// `leaseDurationSeconds` unless `--lease-duration-seconds` says otherwise.
pub const DEFAULT_LEASE_SECONDS: u64 = 12;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// `leaseDurationSeconds`: how long a Lease that stopped changing is still honoured.
    pub lease: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// The leader steps down when it could not renew for this long (less than `lease`).
    pub renew_deadline: Duration,
    /// How often a standby reads the Lease.
    pub retry: Duration,
}

impl Timing {
    /// The timing of a Lease honoured for `lease`: the leader renews six times per lease and
    /// steps down after three quarters of it without a renewal, so it has stopped before a
    /// standby (reading every second at most) may take over.
    pub fn for_lease(lease: Duration) -> Self {
        Self {
            lease,
            renew_every: lease / 6,
            renew_deadline: lease * 3 / 4,
            retry: (lease / 4).min(Duration::from_secs(1)),
        }
    }
}

impl Default for Timing {
    /// A SIGKILLed leader is replaced within 13 s of its last renewal, a released Lease is
    /// taken within 1 s; the API server may be away (or too slow) for 9 s before the leader
    /// steps down.
    fn default() -> Self {
        Self::for_lease(Duration::from_secs(DEFAULT_LEASE_SECONDS))
    }
}

/// What `/readyz` and the metrics report about this replica.
#[derive(Debug, Default)]
pub struct Leadership {
    leading: AtomicBool,
    /// The last read or write of the Lease succeeded: a standby that can reach the API server
    /// can take over.
    in_touch: AtomicBool,
}

impl Leadership {
    /// A replica that leads without an election (leader election turned off).
    pub fn sole() -> Self {
        Self {
            leading: AtomicBool::new(true),
            in_touch: AtomicBool::new(true),
        }
    }

    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    pub fn is_in_touch(&self) -> bool {
        self.in_touch.load(Ordering::Relaxed)
    }

    pub(crate) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Relaxed);
    }

    pub(crate) fn set_in_touch(&self, in_touch: bool) {
        self.in_touch.store(in_touch, Ordering::Relaxed);
    }
}

/// What a candidate should do about the Lease it just read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Ours already (a restarted container of the same pod), free, or expired: take it.
    Take,
    /// Another holder's Lease is current: read it again later.
    Wait,
}

/// The Lease's holder as a candidate sees it; `unchanged_for` is how long this process has
/// seen the Lease's current version.
pub fn decide(
    holder: Option<&str>,
    lease_seconds: Option<i32>,
    identity: &str,
    unchanged_for: Duration,
) -> Decision {
    match holder {
        None | Some("") => Decision::Take,
        Some(holder) if holder == identity => Decision::Take,
        Some(_) => {
            let lease = Duration::from_secs(lease_seconds.unwrap_or(0).max(0) as u64);
            if unchanged_for >= lease {
                Decision::Take
            } else {
                Decision::Wait
            }
        }
    }
}

/// The version of the Lease last read, and since when (this process's clock).
struct Seen {
    resource_version: Option<String>,
    since: Instant,
}

/// One candidate for the Lease `namespace/LEASE_NAME`, named `identity` (the pod name).
pub struct Elector {
    api: Api<Lease>,
    namespace: String,
    identity: String,
    timing: Timing,
    state: Arc<Leadership>,
    seen: Option<Seen>,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        identity: &str,
        timing: Timing,
        state: Arc<Leadership>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            identity: identity.to_owned(),
            timing,
            state,
            seen: None,
        }
    }

    /// Return once this replica holds the Lease.
    pub async fn acquire(&mut self) {
        let mut waiting_for = None;
        loop {
            match self.try_acquire().await {
                Ok(Ok(())) => {
                    self.state.set_in_touch(true);
                    self.state.set_leading(true);
                    tracing::info!(identity = %self.identity, lease = %self.lease_ref(), "leading");
                    return;
                }
                Ok(Err(holder)) => {
                    self.state.set_in_touch(true);
                    if waiting_for.as_ref() != Some(&holder) {
                        tracing::info!(%holder, lease = %self.lease_ref(), "standing by while another replica leads");
                        waiting_for = Some(holder);
                    }
                }
                Err(error) => {
                    self.state.set_in_touch(false);
                    tracing::warn!(%error, lease = %self.lease_ref(), "cannot read or take the Lease; retrying");
                }
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Keep renewing the Lease; return when leadership is lost: another replica holds it, or
    /// no renewal succeeded for [`Timing::renew_deadline`].
    pub async fn hold(&mut self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.renew_every).await;
            // A slow answer still counts, up to the deadline: a busy API server is no reason to
            // step down.
            let left = self.timing.renew_deadline.saturating_sub(renewed.elapsed());
            let attempt = tokio::time::timeout(left.max(self.timing.retry), self.renew()).await;
            match attempt {
                Ok(Ok(true)) => {
                    renewed = Instant::now();
                    self.state.set_in_touch(true);
                }
                Ok(Ok(false)) => {
                    tracing::warn!(lease = %self.lease_ref(), "another replica holds the Lease now");
                    break;
                }
                Ok(Err(error)) => {
                    self.state.set_in_touch(false);
                    tracing::warn!(%error, "cannot renew the Lease");
                }
                Err(_) => {
                    self.state.set_in_touch(false);
                    tracing::warn!("renewing the Lease timed out");
                }
            }
            if renewed.elapsed() >= self.timing.renew_deadline {
                tracing::error!(deadline = ?self.timing.renew_deadline, "could not renew the Lease in time; stepping down");
                break;
            }
        }
        self.state.set_leading(false);
    }

    /// Give the Lease up (on shutdown, after the controller stopped), so that a standby takes it
    /// at once instead of after it expires.
    pub async fn release(&mut self) {
        self.state.set_leading(false);
        let released = async {
            let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
                return Ok(false);
            };
            if holder(&lease) != Some(self.identity.as_str()) {
                return Ok(false);
            }
            let patch = json!({
                "metadata": {"resourceVersion": lease.metadata.resource_version},
                "spec": {"holderIdentity": null, "leaseDurationSeconds": 1, "renewTime": now()},
            });
            self.patch(&patch).await?;
            Ok::<_, kube::Error>(true)
        };
        match tokio::time::timeout(self.timing.renew_every, released).await {
            Ok(Ok(true)) => tracing::info!(lease = %self.lease_ref(), "released the Lease"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not release the Lease; it expires"),
            Err(_) => tracing::warn!("releasing the Lease timed out; it expires"),
        }
    }

    /// `Ok(Ok(()))`: taken; `Ok(Err(holder))`: another holder's Lease is current.
    async fn try_acquire(&mut self) -> Result<Result<(), String>, kube::Error> {
        let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
            return match self
                .api
                .create(&PostParams::default(), &self.new_lease())
                .await
            {
                Ok(_) => Ok(Ok(())),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Err("another candidate".into()))
                }
                Err(error) => Err(error),
            };
        };
        let unchanged_for = self.observe(&lease);
        let current = holder(&lease).map(str::to_owned);
        let spec = lease.spec.clone().unwrap_or_default();
        match decide(
            current.as_deref(),
            spec.lease_duration_seconds,
            &self.identity,
            unchanged_for,
        ) {
            Decision::Wait => Ok(Err(current.unwrap_or_default())),
            Decision::Take => {
                let transitions = spec.lease_transitions.unwrap_or(0);
                let changes_hands = current.as_deref() != Some(self.identity.as_str());
                let patch = json!({
                    "metadata": {"resourceVersion": lease.metadata.resource_version},
                    "spec": {
                        "holderIdentity": self.identity,
                        "leaseDurationSeconds": self.lease_seconds(),
                        "acquireTime": now(),
                        "renewTime": now(),
                        "leaseTransitions": transitions + i32::from(changes_hands),
                    },
                });
                match self.patch(&patch).await {
                    Ok(()) => Ok(Ok(())),
                    // Another candidate wrote first.
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        Ok(Err("another candidate".into()))
                    }
                    Err(error) => Err(error),
                }
            }
        }
    }

    /// Renew our Lease; `Ok(false)` when it is no longer ours.
    async fn renew(&mut self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(LEASE_NAME).await? else {
            return Ok(false);
        };
        if holder(&lease) != Some(self.identity.as_str()) {
            return Ok(false);
        }
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"renewTime": now(), "leaseDurationSeconds": self.lease_seconds()},
        });
        // A conflict (changed since read) is a failed attempt; the next one reads again.
        self.patch(&patch).await.map(|()| true)
    }

    async fn patch(&self, patch: &serde_json::Value) -> Result<(), kube::Error> {
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..PatchParams::default()
        };
        self.api
            .patch(LEASE_NAME, &params, &Patch::Merge(patch))
            .await
            .map(drop)
    }

    /// How long this process has seen the Lease's current version.
    fn observe(&mut self, lease: &Lease) -> Duration {
        let version = lease.metadata.resource_version.clone();
        match &self.seen {
            Some(seen) if seen.resource_version == version => seen.since.elapsed(),
            _ => {
                self.seen = Some(Seen {
                    resource_version: version,
                    since: Instant::now(),
                });
                Duration::ZERO
            }
        }
    }

    fn new_lease(&self) -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": LEASE_NAME, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.lease_seconds(),
                "acquireTime": now(),
                "renewTime": now(),
                "leaseTransitions": 0,
            },
        }))
        .expect("a Lease")
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.timing.lease.as_secs()).unwrap_or(i32::MAX)
    }

    fn lease_ref(&self) -> String {
        format!("{}/{LEASE_NAME}", self.namespace)
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_candidate_takes_a_free_expired_or_own_lease_and_waits_for_a_current_one() {
        let cases = [
            (None, Some(10), 0, Decision::Take, "never held"),
            (Some(""), Some(1), 0, Decision::Take, "released"),
            (
                Some("me"),
                Some(10),
                0,
                Decision::Take,
                "ours, from before a restart",
            ),
            (Some("other"), Some(10), 3, Decision::Wait, "current"),
            (Some("other"), Some(10), 10, Decision::Take, "expired"),
            (Some("other"), None, 0, Decision::Take, "no duration"),
        ];
        for (holder, lease, seen_for, expected, case) in cases {
            assert_eq!(
                decide(holder, lease, "me", SECOND * seen_for),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn the_leader_steps_down_before_a_standby_may_take_over() {
        for seconds in [2, 3, 4, 12, 60, 300] {
            let timing = Timing::for_lease(SECOND * seconds);
            assert!(timing.renew_deadline < timing.lease, "{seconds} s");
            assert!(
                timing.renew_every * 3 <= timing.renew_deadline,
                "three tries per deadline ({seconds} s)"
            );
            assert!(timing.retry <= SECOND && timing.retry > Duration::ZERO);
        }
        let default = Timing::default();
        assert_eq!(
            (default.renew_every, default.renew_deadline, default.retry),
            (SECOND * 2, SECOND * 9, SECOND),
            "the shipped timing"
        );
        assert!(default.lease + default.retry < Duration::from_secs(15));
    }
}
