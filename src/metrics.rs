//! Prometheus metrics, served on `/metrics`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::Phase;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    kind: &'static str,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbLabels {
    verb: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// The phase of every stack the operator sees (`None`: no status yet), read at each scrape.
pub type StackPhases = Box<dyn Fn() -> Vec<Option<Phase>> + Send + Sync>;

pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    duration: Family<OutcomeLabels, Histogram>,
    child_writes: Family<WriteLabels, Counter>,
    status_writes: Counter,
    api_requests: Family<VerbLabels, Counter>,
    leader: Gauge,
    stacks: Family<PhaseLabels, Gauge>,
    /// Where `stacks` is counted from: the controller's AppStack cache, so that a deleted stack
    /// leaves the count with the cache, however it went.
    stack_phases: Mutex<Option<StackPhases>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("appstack");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        let failures = Family::<ReasonLabels, Counter>::default();
        let duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 12))
        });
        let child_writes = Family::<WriteLabels, Counter>::default();
        let status_writes = Counter::default();
        let api_requests = Family::<VerbLabels, Counter>::default();
        let leader = Gauge::default();
        let stacks = Family::<PhaseLabels, Gauge>::default();
        registry.register("reconciles", "Reconciles by outcome", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Failed reconciles by reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes",
            duration.clone(),
        );
        registry.register(
            "child_writes",
            "Writes to child objects by kind and action",
            child_writes.clone(),
        );
        registry.register(
            "status_writes",
            "Writes of AppStack status",
            status_writes.clone(),
        );
        registry.register(
            "api_requests",
            "Requests of reconciles to the API server by verb (watches excluded)",
            api_requests.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the Lease and runs the controller, else 0",
            leader.clone(),
        );
        registry.register(
            "stacks",
            "AppStacks by status.phase (Pending: no status yet)",
            stacks.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            child_writes,
            status_writes,
            api_requests,
            leader,
            stacks,
            stack_phases: Mutex::default(),
        }
    }
}

impl Metrics {
    pub fn reconciled(&self, outcome: &'static str, took: Duration) {
        let labels = OutcomeLabels { outcome };
        self.reconciles.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn failed(&self, reason: &'static str) {
        self.failures.get_or_create(&ReasonLabels { reason }).inc();
    }

    pub fn child_write(&self, kind: &'static str, action: &str) {
        let labels = WriteLabels {
            kind,
            action: action.to_owned(),
        };
        self.child_writes.get_or_create(&labels).inc();
    }

    pub fn status_write(&self) {
        self.status_writes.inc();
    }

    pub fn api_request(&self, verb: &'static str) {
        self.api_requests.get_or_create(&VerbLabels { verb }).inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Count the stacks from `phases` at each scrape (the controller passes its AppStack cache).
    pub fn count_stacks(&self, phases: StackPhases) {
        *self.stack_phases.lock().unwrap_or_else(|p| p.into_inner()) = Some(phases);
    }

    /// Stop counting and expose no count: the controller stopped (this replica no longer leads,
    /// or shuts down), so its cache is no longer kept up to date.
    pub fn stop_counting_stacks(&self) {
        *self.stack_phases.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.stacks.clear();
    }

    fn update_stacks(&self) {
        let source = self.stack_phases.lock().unwrap_or_else(|p| p.into_inner());
        let Some(phases) = source.as_ref() else {
            return;
        };
        for (phase, count) in count_by_phase(phases()) {
            self.stacks.get_or_create(&PhaseLabels { phase }).set(count);
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        self.update_stacks();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Every phase with its number of stacks, zeros included, so that a phase that empties reads 0
/// rather than keeping its last count. A stack without a status yet counts as Pending.
fn count_by_phase(phases: Vec<Option<Phase>>) -> [(&'static str, i64); 6] {
    let mut counts = [
        ("Pending", 0),
        ("Progressing", 0),
        ("Ready", 0),
        ("Degraded", 0),
        ("Failed", 0),
        ("Deleting", 0),
    ];
    for phase in phases {
        let index = match phase.unwrap_or(Phase::Pending) {
            Phase::Pending => 0,
            Phase::Progressing => 1,
            Phase::Ready => 2,
            Phase::Degraded => 3,
            Phase::Failed => 4,
            Phase::Deleting => 5,
        };
        counts[index].1 += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_and_histogram() {
        let metrics = Metrics::default();
        metrics.reconciled("success", Duration::from_millis(12));
        metrics.failed("KubeError");
        metrics.child_write("Deployment", "Created");
        metrics.set_leader(true);
        let text = metrics.encode();
        assert!(text.contains("appstack_leader 1"), "{text}");
        assert!(
            text.contains("appstack_reconciles_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(text.contains("appstack_reconcile_errors_total{reason=\"KubeError\"} 1"));
        assert!(
            text.contains("appstack_child_writes_total{kind=\"Deployment\",action=\"Created\"} 1")
        );
        assert!(text.contains("appstack_reconcile_duration_seconds_count{outcome=\"success\"} 1"));
    }

    #[test]
    fn stacks_are_counted_by_phase_at_each_scrape() {
        let metrics = Metrics::default();
        let stacks = std::sync::Arc::new(Mutex::new(vec![
            Some(Phase::Ready),
            Some(Phase::Ready),
            None,
            Some(Phase::Failed),
        ]));
        let source = stacks.clone();
        metrics.count_stacks(Box::new(move || source.lock().unwrap().clone()));
        let text = metrics.encode();
        for line in [
            "appstack_stacks{phase=\"Ready\"} 2",
            "appstack_stacks{phase=\"Pending\"} 1",
            "appstack_stacks{phase=\"Failed\"} 1",
            "appstack_stacks{phase=\"Degraded\"} 0",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        // Deleted stacks leave the source, and the count follows.
        stacks.lock().unwrap().clear();
        let text = metrics.encode();
        assert!(
            text.contains("appstack_stacks{phase=\"Ready\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("appstack_stacks{phase=\"Failed\"} 0"),
            "{text}"
        );
        // The controller stopped (leadership lost): no count at all rather than a stale one.
        stacks.lock().unwrap().push(Some(Phase::Ready));
        metrics.stop_counting_stacks();
        let text = metrics.encode();
        assert!(!text.contains("appstack_stacks{"), "{text}");
    }
}
