//! Kubernetes Events on the AppStack, for `kubectl describe`. Reasons are in [`crate::reasons`].

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use crate::crd::AppStack;
use crate::plan::child::Slot;
use crate::status::Blocker;

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

    /// A Normal Event, naming the child it is about as its related object: kube's recorder
    /// folds Events with the same reason, object and related object into one series, so
    /// "Created Service books-api" and "Created Deployment books-api" must differ there.
    pub fn normal(&self, reason: &str, note: String, about: Option<&Slot>) {
        let related = about.map(|slot| self.reference(slot.kind.name(), &slot.name));
        self.publish(EventType::Normal, reason, note, related);
    }

    /// A Warning Event for a blocker, naming the object it is about.
    pub fn warning(&self, blocker: &Blocker) {
        let related = blocker
            .object
            .as_ref()
            .map(|(kind, name)| self.reference(kind, name));
        let note = blocker.message.clone();
        self.publish(EventType::Warning, blocker.reason, note, related);
    }

    fn reference(&self, kind: &str, name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some(kind.to_owned()),
            name: Some(name.to_owned()),
            namespace: self.stack.namespace.clone(),
            ..ObjectReference::default()
        }
    }

    /// Events are best effort and not waited for: a reconcile's writes do not queue behind
    /// them, and failing to record one does not fail the reconcile.
    fn publish(
        &self,
        type_: EventType,
        reason: &str,
        note: String,
        secondary: Option<ObjectReference>,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary,
        };
        let recorder = self.recorder.clone();
        let stack = self.stack.clone();
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &stack).await {
                tracing::warn!(%error, reason = %event.reason, "could not publish event");
            }
        });
    }
}
