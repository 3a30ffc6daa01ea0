//! Prometheus metrics, served on `/metrics`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

pub struct Metrics {
    registry: Registry,
    reconciles: Family<OutcomeLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    duration: Family<OutcomeLabels, Histogram>,
    child_writes: Family<WriteLabels, Counter>,
    status_writes: Counter,
    leader: Gauge,
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
        let leader = Gauge::default();
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
            "leader",
            "1 while this replica holds the Lease and runs the controller, else 0",
            leader.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            child_writes,
            status_writes,
            leader,
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

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
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
}
