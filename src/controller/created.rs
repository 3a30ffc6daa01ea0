//! Children this operator created that its caches may not have brought back yet.
//!
//! Reconciles read children from the caches only, so a stack's next reconcile, triggered by the
//! watch event of one child it created, may find another just-created child missing: the watches
//! of different kinds deliver at their own pace. Planning from that gap would create the child
//! again (a create-only write, which fails and makes the reconcile read everything afresh). The
//! object as the API server answered the create is as fresh as a read made right after it, so a
//! reconcile takes it from here until the cache has it, and no request is spent on the gap.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::lock;
use crate::plan::child::{Object, Slot};

/// Long past any watch lag; after it the caches are the only source again.
const KEPT_FOR: Duration = Duration::from_secs(60);

type Key = (String, Slot);

#[derive(Default)]
pub struct Created {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    objects: HashMap<Key, (Instant, Object)>,
    /// Keys in the order they were recorded, to drop what is older than [`KEPT_FOR`].
    order: VecDeque<(Instant, Key)>,
}

impl Created {
    /// `object` was just created in `namespace`.
    pub fn record(&self, namespace: &str, object: Object) {
        self.record_at(Instant::now(), namespace, object);
    }

    fn record_at(&self, now: Instant, namespace: &str, object: Object) {
        let key = (namespace.to_owned(), object.slot());
        let mut inner = lock(&self.inner);
        inner.expire(now);
        inner.order.push_back((now, key.clone()));
        inner.objects.insert(key, (now, object));
    }

    /// The child in `slot`, if this operator created it lately.
    pub fn get(&self, namespace: &str, slot: &Slot) -> Option<Object> {
        let key = (namespace.to_owned(), slot.clone());
        let inner = lock(&self.inner);
        let (at, object) = inner.objects.get(&key)?;
        (at.elapsed() < KEPT_FOR).then(|| object.clone())
    }

    /// The caches hold `slot` now: they are the source from here on.
    pub fn forget(&self, namespace: &str, slot: &Slot) {
        let mut inner = lock(&self.inner);
        if inner.objects.is_empty() {
            return;
        }
        inner.objects.remove(&(namespace.to_owned(), slot.clone()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.inner).objects.len()
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < KEPT_FOR {
                break;
            }
            let Some((at, key)) = self.order.pop_front() else {
                break;
            };
            // Only if it was not recorded again since.
            if self.objects.get(&key).is_some_and(|(last, _)| *last == at) {
                self.objects.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::child::Kind;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    fn service(name: &str) -> Object {
        Object::Service(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        })
    }

    #[test]
    fn a_created_child_is_found_in_its_namespace_until_forgotten() {
        let created = Created::default();
        created.record("shop", service("books-api"));
        let slot = Slot::new(Kind::Service, "books-api");
        assert_eq!(created.get("shop", &slot), Some(service("books-api")));
        assert_eq!(created.get("other", &slot), None);
        assert_eq!(
            created.get("shop", &Slot::new(Kind::Deployment, "books-api")),
            None
        );
        created.forget("shop", &slot);
        assert_eq!(created.get("shop", &slot), None);
    }

    #[test]
    fn what_was_created_long_ago_is_dropped_at_the_next_record() {
        let created = Created::default();
        let start = Instant::now();
        created.record_at(start, "shop", service("old"));
        created.record_at(start + KEPT_FOR / 2, "shop", service("again"));
        created.record_at(start + KEPT_FOR / 2, "shop", service("old"));
        created.record_at(
            start + KEPT_FOR + Duration::from_secs(1),
            "shop",
            service("new"),
        );
        // "old" was recorded again after its first record expired: kept.
        assert_eq!(created.len(), 3);
        created.record_at(start + 2 * KEPT_FOR, "shop", service("last"));
        assert_eq!(created.len(), 2, "only \"new\" and \"last\" are recent");
    }
}
