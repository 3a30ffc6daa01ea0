//! AppStacks as the controller's store keeps them: packed like the children (`cache.rs`), since a
//! typed AppStack takes several kilobytes (its spec and status conditions are a few dozen strings
//! and maps) and the store holds every stack for as long as the operator runs. A reconcile
//! unpacks its stack when its turn comes.

use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde::{Deserialize, Deserializer};

use super::StackKey;
use super::cache::Dictionary;
use crate::crd::{AppStack, Phase};

/// An AppStack packed: its name and namespace (the store and the controller key it by them), its
/// phase (the stacks metric counts phases at every scrape), and its JSON deflated.
pub struct CachedStack {
    meta: ObjectMeta,
    phase: Option<Phase>,
    packed: Box<[u8]>,
    /// The length of the JSON unpacked.
    len: u32,
    dictionary: Arc<Dictionary>,
}

impl CachedStack {
    pub fn new(stack: &AppStack, dictionary: &Arc<Dictionary>) -> Self {
        // A stack that does not pack unpacks as nothing: its reconcile waits for its next change.
        let (packed, len) = dictionary.pack(stack);
        Self {
            meta: ObjectMeta {
                name: stack.metadata.name.clone(),
                namespace: stack.metadata.namespace.clone(),
                ..ObjectMeta::default()
            },
            phase: stack.status.as_ref().and_then(|status| status.phase),
            packed,
            len,
            dictionary: dictionary.clone(),
        }
    }

    /// The stack, typed again.
    pub fn stack(&self) -> Option<AppStack> {
        self.dictionary.unpack(&self.packed, self.len)
    }

    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// The key of the stack `namespace/name`.
    pub fn key(namespace: &str, name: &str) -> ObjectRef<Self> {
        ObjectRef::new(name).within(namespace)
    }

    /// The key the controller's maps of stacks use.
    pub fn stack_key(&self) -> StackKey {
        StackKey::new(
            self.meta.namespace.as_deref().unwrap_or_default(),
            self.meta.name.as_deref().unwrap_or_default(),
        )
    }
}

/// The stacks `event` brings, packed.
pub fn pack(
    event: watcher::Event<AppStack>,
    dictionary: &Arc<Dictionary>,
) -> watcher::Event<CachedStack> {
    use watcher::Event;
    match event {
        Event::Apply(stack) => Event::Apply(CachedStack::new(&stack, dictionary)),
        Event::Delete(stack) => Event::Delete(CachedStack::new(&stack, dictionary)),
        Event::Init => Event::Init,
        Event::InitApply(stack) => Event::InitApply(CachedStack::new(&stack, dictionary)),
        Event::InitDone => Event::InitDone,
    }
}

impl Clone for CachedStack {
    fn clone(&self) -> Self {
        Self {
            meta: self.meta.clone(),
            phase: self.phase,
            packed: self.packed.clone(),
            len: self.len,
            dictionary: self.dictionary.clone(),
        }
    }
}

impl std::fmt::Debug for CachedStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStack")
            .field("meta", &self.meta)
            .field("phase", &self.phase)
            .field("bytes", &self.len)
            .field("packed", &self.packed.len())
            .finish()
    }
}

/// Only for the controller's bounds: the store is filled from watch events.
impl<'de> Deserialize<'de> for CachedStack {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AppStack::deserialize(deserializer).map(|stack| Self::new(&stack, &Arc::default()))
    }
}

impl Resource for CachedStack {
    type DynamicType = ();
    type Scope = <AppStack as Resource>::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        AppStack::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        AppStack::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        AppStack::version(dt)
    }
    fn api_version(dt: &()) -> Cow<'_, str> {
        AppStack::api_version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        AppStack::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::AppStackStatus;

    #[test]
    fn a_cached_stack_unpacks_as_it_was_and_keeps_its_phase_and_key_beside() {
        let dictionary = Arc::new(Dictionary::default());
        let mut stack = crate::test_fixtures::stack_from_yaml("");
        stack.metadata.name = Some("books".into());
        stack.metadata.namespace = Some("shop".into());
        stack.metadata.resource_version = Some("42".into());
        stack.status = Some(AppStackStatus {
            phase: Some(Phase::Ready),
            ..AppStackStatus::default()
        });
        let first = CachedStack::new(&stack, &dictionary);
        let mut other = stack.clone();
        other.metadata.name = Some("shop".into());
        other.status = None;
        let cached = CachedStack::new(&other, &dictionary);
        assert_eq!(cached.stack().as_ref(), Some(&other));
        assert_eq!(first.stack(), Some(stack));
        assert_eq!(first.phase(), Some(Phase::Ready));
        assert_eq!(cached.phase(), None);
        assert_eq!(cached.stack_key(), StackKey::of(&other));
        assert_eq!(cached.stack_key(), StackKey::new("shop", "shop"));
        assert_eq!(
            ObjectRef::from_obj(&cached),
            CachedStack::key("shop", "shop")
        );
        assert_eq!(
            cached.meta().resource_version,
            None,
            "kept only in the JSON"
        );
    }
}
