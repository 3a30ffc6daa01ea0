//! Read what the plan needs: every child slot of the stack and the `existingSecret`, all at once.
//!
//! Children come from the controller's caches, which hold what carries the operator's labels,
//! and what the operator created itself until its watch brings it back. A slot missing from them
//! is taken as empty without asking the API server: the plan creates what the stack wants there
//! with create-only writes, which fail if anything holds the name (a foreign object, or a child
//! of ours the caches lag behind), and the reconcile then plans again from [`Read::Fresh`]. A plan
//! that would block the stack is made again from [`Read::Fresh`] as well, since a lagging cache
//! could make it (credentials that look lost). In a stack that has converged every wanted child is
//! cached, and a reconcile makes no read.

use futures::future::try_join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{DynamicObject, ListParams};
use kube::{Api, Client};

use super::cache::Caches;
use super::error::Error;
use crate::plan::child::{Existing, Kind, Object, Slot};
use crate::plan::database_image;
use crate::plan::migration::{JobState, job_state};
use crate::plan::slots;
use crate::resources::job::DATABASE_CHECK_COMPONENT;
use crate::resources::{LABEL_COMPONENT, LABEL_INSTANCE};
use crate::stack::{Component, ValidStack};
use crate::status::RolloutState;

/// Where children are read from.
#[derive(Clone, Copy)]
pub enum Read<'a> {
    /// The caches only.
    Cached(&'a Caches),
    /// The API server only.
    Fresh,
}

pub async fn dereference(
    client: &Client,
    from: Read<'_>,
    stack: &ValidStack,
) -> Result<Existing, Error> {
    let reads = slots(stack)
        .into_iter()
        .map(|slot| read(client, from, stack, slot));
    let children = try_join_all(reads).await?.into_iter().flatten().collect();
    let mut existing = Existing {
        children,
        ..Existing::default()
    };
    // Only while an earlier version's database Deployment is being replaced.
    if existing
        .deployment(&stack.child_name(Component::Database))
        .is_some()
    {
        let selector = format!(
            "{LABEL_INSTANCE}={},{LABEL_COMPONENT}={}",
            stack.name,
            Component::Database.label()
        );
        let pods = Api::<Pod>::namespaced(client.clone(), &stack.namespace)
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| Error::from_kube("Pod", &selector, e))?;
        existing.database_pods = pods.items.len();
    }
    // Database image checks: read once the database and its claim are known.
    let checks = database_image::check_job_names(stack, &existing)
        .into_iter()
        .map(|name| read(client, from, stack, Slot::new(Kind::Job, name)));
    existing
        .children
        .extend(try_join_all(checks).await?.into_iter().flatten());
    if watching_rollout(stack, &existing) {
        let selector = format!("{LABEL_INSTANCE}={}", stack.name);
        let params = ListParams::default().labels(&selector);
        let (pods, sets) = futures::try_join!(
            async {
                Api::<Pod>::namespaced(client.clone(), &stack.namespace)
                    .list(&params)
                    .await
                    .map_err(|e| Error::from_kube("Pod", &selector, e))
            },
            async {
                Api::<ReplicaSet>::namespaced(client.clone(), &stack.namespace)
                    .list(&params)
                    .await
                    .map_err(|e| Error::from_kube("ReplicaSet", &selector, e))
            },
        )?;
        existing.pods = pods.items;
        existing.replica_sets = sets.items;
    }
    let existing_secret = match &stack.database.existing_secret {
        Some(name) => Api::<Secret>::namespaced(client.clone(), &stack.namespace)
            .get_opt(name)
            .await
            .map_err(|e| Error::from_kube("Secret", name, e))?,
        None => None,
    };
    existing.existing_secret = existing_secret;
    Ok(existing)
}

async fn read(
    client: &Client,
    from: Read<'_>,
    stack: &ValidStack,
    slot: Slot,
) -> Result<Option<(Slot, Object)>, Error> {
    if let Read::Cached(caches) = from {
        return Ok(caches
            .get(&stack.namespace, &slot)
            .map(|object| (slot, object)));
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &stack.namespace, &slot.kind.api_resource());
    let found = api
        .get_opt(&slot.name)
        .await
        .map_err(|e| Error::from_kube(slot.kind.name(), &slot.name, e))?;
    let Some(found) = found else {
        return Ok(None);
    };
    let object = typed(&slot, found)?;
    Ok(Some((slot, object)))
}

/// The typed object behind the API's answer.
pub fn typed(slot: &Slot, object: DynamicObject) -> Result<Object, Error> {
    serde_json::to_value(object)
        .and_then(|value| Object::from_value(slot.kind, value))
        .map_err(|e| Error::from_kube(slot.kind.name(), &slot.name, kube::Error::SerdeError(e)))
}

/// Pods and ReplicaSets are read only while they can tell something: a web tier is rolling out
/// (are its new pods failing? what was its last good template?) or a migration Job exists that
/// has not succeeded (the end of its output).
fn watching_rollout(stack: &ValidStack, existing: &Existing) -> bool {
    let rolling = [Component::Api, Component::Frontend]
        .iter()
        .filter_map(|&c| existing.deployment(&stack.child_name(c)))
        .any(|d| !RolloutState::of(d).complete());
    // Migration Jobs until they succeed (the end of a failed one's output); database checks
    // always (their output says which Postgres an image is).
    let migrating = existing.children.values().any(|o| match o {
        Object::Job(job) => {
            let component = job
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_COMPONENT));
            job_state(job, &[]) != JobState::Succeeded
                || component.map(String::as_str) == Some(DATABASE_CHECK_COMPONENT)
        }
        _ => false,
    });
    rolling || migrating
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Scope;
    use crate::resources::service::service;
    use crate::test_fixtures::valid_stack;
    use kube::runtime::watcher;

    /// A client whose every request fails: nothing listens on the discard port.
    fn unreachable() -> Client {
        let url = "http://127.0.0.1:9".parse().expect("a URL");
        Client::try_from(kube::Config::new(url)).expect("a client")
    }

    #[tokio::test]
    async fn children_are_read_from_the_caches_without_a_request_even_when_missing() {
        let client = unreachable();
        // Empty stores: their watches are never polled.
        let (caches, _watches) =
            Caches::new(&Scope::default(), &client, &watcher::Config::default());
        let stack = valid_stack("");
        let existing = dereference(&client, Read::Cached(&caches), &stack)
            .await
            .expect("a new stack is planned without asking the API server");
        assert!(existing.children.is_empty());

        // What the operator created is read back before its watch brings it.
        let api = Object::Service(service(&stack, Component::Api));
        caches.created(&stack.namespace, api.clone());
        let existing = dereference(&client, Read::Cached(&caches), &stack)
            .await
            .expect("no request");
        assert_eq!(existing.children.get(&api.slot()), Some(&api));
        assert_eq!(existing.children.len(), 1);

        assert!(
            dereference(&client, Read::Fresh, &stack).await.is_err(),
            "a fresh read asks the API server"
        );
    }
}
