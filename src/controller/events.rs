//! Kubernetes Events on the AppStack, for `kubectl describe`. Reasons are in [`crate::reasons`].

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::crd::AppStack;

pub struct Events<'a> {
    recorder: &'a Recorder,
    stack: ObjectReference,
}

impl<'a> Events<'a> {
    pub fn new(recorder: &'a Recorder, stack: &AppStack) -> Self {
        Self {
            recorder,
            stack: stack.object_ref(&()),
        }
    }

    pub async fn normal(&self, reason: &str, note: String) {
        self.publish(EventType::Normal, reason, note).await;
    }

    pub async fn warning(&self, reason: &str, note: String) {
        self.publish(EventType::Warning, reason, note).await;
    }

    /// Events are best effort: failing to record one must not fail the reconcile.
    async fn publish(&self, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &self.stack).await {
            tracing::warn!(%error, reason, "could not publish event");
        }
    }
}
