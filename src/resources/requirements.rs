//! Requests and limits of each tier's container: the tier's `resources`, or defaults.
//!
//! cpu and memory: `resources` replaces the defaults as a whole (a limit left out is no limit).
//! Ephemeral storage (the container's logs and writable directories, see
//! [`super::filesystem`]) is bounded even then: its default request and limit apply unless
//! `resources` names `ephemeral-storage` in its requests or its limits, so that a stack written
//! for cpu and memory alone cannot fill a node's disk.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::stack::Component;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";

/// A tier's defaults: requests of cpu, memory and ephemeral storage; limits of memory and
/// ephemeral storage (no cpu limit: throttling hurts latency more than it protects neighbours).
struct Defaults {
    cpu: &'static str,
    memory: &'static str,
    memory_limit: &'static str,
    storage: &'static str,
    storage_limit: &'static str,
}

fn defaults(component: Component) -> Defaults {
    match component {
        Component::Api => Defaults {
            cpu: "100m",
            memory: "128Mi",
            memory_limit: "512Mi",
            storage: "64Mi",
            storage_limit: "1Gi",
        },
        Component::Frontend => Defaults {
            cpu: "50m",
            memory: "64Mi",
            memory_limit: "256Mi",
            storage: "32Mi",
            storage_limit: "256Mi",
        },
        Component::Database => Defaults {
            cpu: "250m",
            memory: "256Mi",
            memory_limit: "1Gi",
            storage: "64Mi",
            storage_limit: "1Gi",
        },
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
        .collect()
}

/// Fixed requests and limits, for containers that no tier's `resources` describes (checks).
pub fn bounded(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(quantities(requests)),
        limits: Some(quantities(limits)),
        ..ResourceRequirements::default()
    }
}

/// The requests and limits of `component`'s container, given the tier's `resources`.
pub fn requirements(
    component: Component,
    configured: Option<&ResourceRequirements>,
) -> ResourceRequirements {
    let d = defaults(component);
    let Some(configured) = configured else {
        return ResourceRequirements {
            requests: Some(quantities(&[
                (CPU, d.cpu),
                (MEMORY, d.memory),
                (EPHEMERAL_STORAGE, d.storage),
            ])),
            limits: Some(quantities(&[
                (MEMORY, d.memory_limit),
                (EPHEMERAL_STORAGE, d.storage_limit),
            ])),
            ..ResourceRequirements::default()
        };
    };
    let names_storage = |map: &Option<BTreeMap<String, Quantity>>| {
        map.as_ref()
            .is_some_and(|m| m.contains_key(EPHEMERAL_STORAGE))
    };
    if names_storage(&configured.requests) || names_storage(&configured.limits) {
        return configured.clone();
    }
    let with_storage = |map: &Option<BTreeMap<String, Quantity>>, amount: &str| {
        let mut map = map.clone().unwrap_or_default();
        map.insert(EPHEMERAL_STORAGE.into(), Quantity(amount.into()));
        Some(map)
    };
    ResourceRequirements {
        requests: with_storage(&configured.requests, d.storage),
        limits: with_storage(&configured.limits, d.storage_limit),
        ..configured.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount<'a>(map: &'a Option<BTreeMap<String, Quantity>>, key: &str) -> Option<&'a str> {
        map.as_ref()?.get(key).map(|q| q.0.as_str())
    }

    fn configured(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
        ResourceRequirements {
            requests: (!requests.is_empty()).then(|| quantities(requests)),
            limits: (!limits.is_empty()).then(|| quantities(limits)),
            ..ResourceRequirements::default()
        }
    }

    #[test]
    fn every_tier_has_bounded_memory_and_ephemeral_storage_by_default() {
        for component in [Component::Api, Component::Frontend, Component::Database] {
            let r = requirements(component, None);
            for key in [CPU, MEMORY, EPHEMERAL_STORAGE] {
                assert!(amount(&r.requests, key).is_some(), "{component:?} {key}");
            }
            for key in [MEMORY, EPHEMERAL_STORAGE] {
                assert!(amount(&r.limits, key).is_some(), "{component:?} {key}");
            }
            assert_eq!(amount(&r.limits, CPU), None, "no cpu limit (throttling)");
        }
        let api = requirements(Component::Api, None);
        assert_eq!(amount(&api.requests, EPHEMERAL_STORAGE), Some("64Mi"));
        assert_eq!(amount(&api.limits, EPHEMERAL_STORAGE), Some("1Gi"));
    }

    #[test]
    fn cpu_and_memory_settings_keep_the_storage_bounds() {
        let r = requirements(
            Component::Database,
            Some(&configured(&[(CPU, "1")], &[(MEMORY, "2Gi")])),
        );
        assert_eq!(amount(&r.requests, CPU), Some("1"));
        assert_eq!(
            amount(&r.requests, MEMORY),
            None,
            "cpu and memory as written"
        );
        assert_eq!(amount(&r.limits, MEMORY), Some("2Gi"));
        assert_eq!(amount(&r.requests, EPHEMERAL_STORAGE), Some("64Mi"));
        assert_eq!(amount(&r.limits, EPHEMERAL_STORAGE), Some("1Gi"));
    }

    #[test]
    fn naming_ephemeral_storage_replaces_its_defaults() {
        // A request alone means: this much, and no limit.
        let r = requirements(
            Component::Api,
            Some(&configured(&[(EPHEMERAL_STORAGE, "2Gi")], &[])),
        );
        assert_eq!(amount(&r.requests, EPHEMERAL_STORAGE), Some("2Gi"));
        assert_eq!(r.limits, None);
        // A limit alone: Kubernetes makes the request equal to it.
        let r = requirements(
            Component::Frontend,
            Some(&configured(&[], &[(EPHEMERAL_STORAGE, "10Mi")])),
        );
        assert_eq!(r.requests, None);
        assert_eq!(amount(&r.limits, EPHEMERAL_STORAGE), Some("10Mi"));
    }
}
