//! Kubernetes Events on the AppStack, for `kubectl describe`. Reasons are in [`crate::reasons`].
//!
//! The writes of a reconcile are one Normal Event per reason ("Created Secret books-db,
//! Service books-api, ..."), not one per write: an Event is a write to the API server too, and one
//! per child doubled what a new stack cost it.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

use super::Context;
use crate::crd::AppStack;
use crate::plan::child::Slot;
use crate::status::Blocker;

/// The API server rejects an Event whose note is longer.
const NOTE_LIMIT: usize = 1024;

pub struct Events<'a> {
    ctx: &'a Context,
    stack: ObjectReference,
}

/// What a reconcile wrote, in order: (reason, child).
#[derive(Debug, Default)]
pub struct Writes(Vec<(&'static str, Slot)>);

impl Writes {
    pub fn push(&mut self, reason: &'static str, slot: Slot) {
        self.0.push((reason, slot));
    }

    /// One (reason, note, the child if it is the only one) per reason, in the order each reason
    /// first came. A note that would be too long names as many children as fit and counts the
    /// rest.
    pub fn grouped(&self) -> Vec<(&'static str, String, Option<&Slot>)> {
        let mut reasons: Vec<&'static str> = Vec::new();
        for (reason, _) in &self.0 {
            if !reasons.contains(reason) {
                reasons.push(reason);
            }
        }
        reasons
            .into_iter()
            .map(|reason| {
                let slots: Vec<&Slot> = self
                    .0
                    .iter()
                    .filter(|(r, _)| *r == reason)
                    .map(|(_, slot)| slot)
                    .collect();
                let mut note = reason.to_owned();
                for (i, slot) in slots.iter().enumerate() {
                    let item = format!("{}{slot}", if i == 0 { " " } else { ", " });
                    let rest = slots.len() - i;
                    // Room for this child and, should more follow, for " and N more".
                    let tail = if rest > 1 { " and 9999 more".len() } else { 0 };
                    if note.len() + item.len() + tail > NOTE_LIMIT {
                        note.push_str(&format!(" and {rest} more"));
                        break;
                    }
                    note.push_str(&item);
                }
                let only = (slots.len() == 1).then(|| slots[0]);
                (reason, note, only)
            })
            .collect()
    }
}

impl<'a> Events<'a> {
    pub fn new(ctx: &'a Context, stack: &AppStack) -> Self {
        Self {
            ctx,
            stack: stack.object_ref(&()),
        }
    }

    /// A Normal Event for each reason among the writes of a reconcile.
    pub fn wrote(&self, writes: &Writes) {
        for (reason, note, about) in writes.grouped() {
            self.normal(reason, note, about);
        }
    }

    /// A Normal Event, naming the child it is about (if one) as its related object. Published
    /// on a recorder of its own: kube's recorder folds Events with the same reason, object and
    /// related object into a series that keeps the first note, and keeps every Event it
    /// published in memory until it publishes again six minutes later.
    pub fn normal(&self, reason: &str, note: String, about: Option<&Slot>) {
        let related = about.map(|slot| self.reference(slot.kind.name(), &slot.name));
        let recorder = Recorder::new(self.ctx.client.clone(), self.ctx.reporter.clone());
        self.publish(recorder, EventType::Normal, reason, note, related);
    }

    /// A Warning Event for a blocker, naming the object it is about. The shared recorder folds
    /// the same blocker coming back into one Event with a count.
    pub fn warning(&self, blocker: &Blocker) {
        let related = blocker
            .object
            .as_ref()
            .map(|(kind, name)| self.reference(kind, name));
        let note = blocker.message.clone();
        let recorder = self.ctx.recorder.clone();
        self.publish(recorder, EventType::Warning, blocker.reason, note, related);
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
        recorder: Recorder,
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
        let stack = self.stack.clone();
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &stack).await {
                tracing::warn!(%error, reason = %event.reason, "could not publish event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::child::Kind;
    use crate::reasons::{CREATED, UPDATED};

    fn slot(kind: Kind, name: &str) -> Slot {
        Slot {
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn writes_are_one_note_per_reason_in_order() {
        let mut writes = Writes::default();
        writes.push(CREATED, slot(Kind::Secret, "books-db"));
        writes.push(UPDATED, slot(Kind::Deployment, "books-api"));
        writes.push(CREATED, slot(Kind::Service, "books-api"));
        let grouped = writes.grouped();
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].0, CREATED);
        assert_eq!(grouped[0].1, "Created Secret books-db, Service books-api");
        assert_eq!(grouped[0].2, None);
        assert_eq!(grouped[1].1, "Updated Deployment books-api");
        assert_eq!(grouped[1].2, Some(&slot(Kind::Deployment, "books-api")));
        assert!(Writes::default().grouped().is_empty());
    }

    #[test]
    fn a_long_note_names_what_fits_and_counts_the_rest() {
        let mut writes = Writes::default();
        let long = "a".repeat(60);
        for i in 0..30 {
            writes.push(CREATED, slot(Kind::Deployment, &format!("{long}-{i}")));
        }
        let (_, note, _) = &writes.grouped()[0];
        assert!(note.len() <= NOTE_LIMIT, "{}", note.len());
        let named = note.matches("Deployment ").count();
        assert!(named > 10, "{note}");
        assert!(
            note.ends_with(&format!(" and {} more", 30 - named)),
            "{note}"
        );
    }
}
