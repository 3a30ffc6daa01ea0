//! NetworkPolicies `<stack>-db` and `<stack>-api`, unless `networkPolicy: false`: who may connect
//! to the database and to the API. Only ingress is restricted; egress stays open.
//!
//! - The database admits the stack's API pods and its migration Jobs' pods, on 5432.
//! - The API admits the stack's frontend pods and, with an Ingress, the Ingress controller's pods
//!   (`ingress.controllerNamespace`, `ingress.controllerPodLabels`), on its port. An API Service of
//!   type NodePort or LoadBalancer is meant to be reached from outside the cluster, so then the
//!   API admits every source on its port (other ports stay closed).
//!
//! NetworkPolicies add up: to admit more (a monitoring scraper, a batch job), add a policy of
//! your own that selects the same pods.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::job::MIGRATIONS_COMPONENT;
use super::secret::POSTGRES_PORT;
use super::{
    APP_NAME, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_NAME, Ownership, object_meta, selector_labels,
};
use crate::crd::ServiceType;
use crate::stack::{Component, ValidStack};

/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `<stack>-db`: the database admits the API and the migration Jobs, on 5432.
pub fn database_policy(stack: &ValidStack) -> Option<NetworkPolicy> {
    if !stack.network_policy {
        return None;
    }
    let clients = NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([
                (LABEL_NAME.into(), APP_NAME.into()),
                (LABEL_INSTANCE.into(), stack.name.clone()),
            ])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: LABEL_COMPONENT.into(),
                operator: "In".into(),
                values: Some(vec![
                    Component::Api.label().into(),
                    MIGRATIONS_COMPONENT.into(),
                ]),
            }]),
        }),
        ..NetworkPolicyPeer::default()
    };
    Some(policy(
        stack,
        Component::Database,
        Some(vec![clients]),
        POSTGRES_PORT,
    ))
}

/// `<stack>-api`: the API admits the frontend and the Ingress controller, on its port.
pub fn api_policy(stack: &ValidStack) -> Option<NetworkPolicy> {
    if !stack.network_policy {
        return None;
    }
    let sources = match stack.api.service_type {
        // Reached from outside the cluster through a node port or a load balancer.
        ServiceType::NodePort | ServiceType::LoadBalancer => None,
        ServiceType::ClusterIP => {
            let frontend = NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector_labels(stack, Component::Frontend)),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            };
            let controller = stack.ingress.as_ref().map(|ingress| NetworkPolicyPeer {
                namespace_selector: Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        NAMESPACE_NAME_LABEL.into(),
                        ingress.controller_namespace.clone(),
                    )])),
                    ..LabelSelector::default()
                }),
                // An empty selector: every pod of the namespace.
                pod_selector: Some(LabelSelector {
                    match_labels: ingress.controller_pod_labels.clone(),
                    ..LabelSelector::default()
                }),
                ..NetworkPolicyPeer::default()
            });
            Some(std::iter::once(frontend).chain(controller).collect())
        }
    };
    Some(policy(stack, Component::Api, sources, stack.api.port))
}

/// A policy on `component`'s pods that admits `sources` (every source when `None`) on `port`.
fn policy(
    stack: &ValidStack,
    component: Component,
    sources: Option<Vec<NetworkPolicyPeer>>,
    port: i32,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: object_meta(
            stack,
            stack.child_name(component),
            component,
            Ownership::Owned,
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(stack, component)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: sources,
                ports: Some(vec![NetworkPolicyPort {
                    protocol: Some("TCP".into()),
                    port: Some(IntOrString::Int(port)),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            egress: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    fn rule(policy: &NetworkPolicy) -> &NetworkPolicyIngressRule {
        let spec = policy.spec.as_ref().unwrap();
        assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".into()][..]));
        assert!(spec.egress.is_none(), "egress stays open");
        let rules = spec.ingress.as_ref().unwrap();
        assert_eq!(rules.len(), 1);
        &rules[0]
    }

    fn port(rule: &NetworkPolicyIngressRule) -> (Option<&str>, Option<&IntOrString>) {
        let port = &rule.ports.as_ref().unwrap()[0];
        (port.protocol.as_deref(), port.port.as_ref())
    }

    fn match_labels(selector: &Option<LabelSelector>) -> BTreeMap<String, String> {
        selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_database_admits_the_api_and_migrations_on_5432() {
        let stack = valid_stack("");
        let policy = database_policy(&stack).expect("on by default");
        assert_eq!(policy.metadata.name.as_deref(), Some("books-db"));
        assert_eq!(policy.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(
            policy.metadata.owner_references.as_ref().unwrap()[0].name,
            "books"
        );
        let selected = match_labels(&policy.spec.as_ref().unwrap().pod_selector);
        assert_eq!(selected, selector_labels(&stack, Component::Database));
        let rule = rule(&policy);
        assert_eq!(port(rule), (Some("TCP"), Some(&IntOrString::Int(5432))));
        let peers = rule.from.as_ref().unwrap();
        assert_eq!(peers.len(), 1);
        let pods = peers[0].pod_selector.as_ref().unwrap();
        assert!(
            peers[0].namespace_selector.is_none(),
            "the stack's namespace only"
        );
        assert_eq!(
            pods.match_labels.as_ref().unwrap()[LABEL_INSTANCE],
            "books",
            "this stack's pods only"
        );
        let components = &pods.match_expressions.as_ref().unwrap()[0];
        assert_eq!(components.key, LABEL_COMPONENT);
        assert_eq!(components.operator, "In");
        assert_eq!(
            components.values.as_deref(),
            Some(&["api".into(), "migrations".into()][..])
        );
    }

    #[test]
    fn the_api_admits_the_frontend_and_the_ingress_controller_on_its_port() {
        let stack =
            valid_stack("api: {image: api, port: 8000}\ningress: {host: books.example.com}");
        let policy = api_policy(&stack).expect("on by default");
        assert_eq!(policy.metadata.name.as_deref(), Some("books-api"));
        let selected = match_labels(&policy.spec.as_ref().unwrap().pod_selector);
        assert_eq!(selected, selector_labels(&stack, Component::Api));
        let rule = rule(&policy);
        assert_eq!(port(rule), (Some("TCP"), Some(&IntOrString::Int(8000))));
        let peers = rule.from.as_ref().unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(
            match_labels(&peers[0].pod_selector),
            selector_labels(&stack, Component::Frontend)
        );
        assert!(peers[0].namespace_selector.is_none());
        assert_eq!(
            match_labels(&peers[1].namespace_selector),
            BTreeMap::from([(NAMESPACE_NAME_LABEL.into(), "ingress-nginx".into())]),
            "the documented default"
        );
        assert_eq!(
            peers[1].pod_selector,
            Some(LabelSelector::default()),
            "every pod of that namespace"
        );
    }

    #[test]
    fn the_ingress_controller_is_configurable() {
        let stack = valid_stack(
            "ingress: {host: books.example.com, controllerNamespace: traefik, controllerPodLabels: {app.kubernetes.io/name: traefik}}",
        );
        let policy = api_policy(&stack).unwrap();
        let controller = &rule(&policy).from.as_ref().unwrap()[1];
        assert_eq!(
            match_labels(&controller.namespace_selector)[NAMESPACE_NAME_LABEL],
            "traefik"
        );
        assert_eq!(
            match_labels(&controller.pod_selector),
            BTreeMap::from([("app.kubernetes.io/name".into(), "traefik".into())])
        );
    }

    #[test]
    fn without_an_ingress_only_the_frontend_reaches_the_api() {
        let policy = api_policy(&valid_stack("")).unwrap();
        let peers = rule(&policy).from.clone().unwrap();
        assert_eq!(peers.len(), 1);
        assert_eq!(
            match_labels(&peers[0].pod_selector)[LABEL_COMPONENT],
            "frontend"
        );
    }

    #[test]
    fn an_api_exposed_outside_the_cluster_admits_every_source_on_its_port_only() {
        for service_type in ["NodePort", "LoadBalancer"] {
            let stack = valid_stack(&format!("api: {{image: api, serviceType: {service_type}}}"));
            let policy = api_policy(&stack).unwrap();
            let rule = rule(&policy);
            assert!(rule.from.is_none(), "{service_type}: every source");
            assert_eq!(port(rule).1, Some(&IntOrString::Int(5000)));
        }
    }

    #[test]
    fn switched_off_there_are_none() {
        let stack = valid_stack("networkPolicy: false\ningress: {host: books.example.com}");
        assert!(database_policy(&stack).is_none());
        assert!(api_policy(&stack).is_none());
    }
}
