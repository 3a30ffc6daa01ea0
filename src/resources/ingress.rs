//! The Ingress `<stack>`: `apiPath` to the API Service, `/` to the frontend Service.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::service::port_name;
use super::{Ownership, object_meta};
use crate::stack::{Component, ValidStack};

/// The Ingress, or `None` when the stack has no `ingress` (then any existing one must go).
pub fn ingress(stack: &ValidStack) -> Option<Ingress> {
    let spec = stack.ingress.as_ref()?;
    let path = |path: &str, component: Component| HTTPIngressPath {
        path: Some(path.into()),
        path_type: "Prefix".into(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: stack.child_name(component),
                port: Some(ServiceBackendPort {
                    name: Some(port_name(component).into()),
                    number: None,
                }),
            }),
            resource: None,
        },
    };
    Some(Ingress {
        metadata: object_meta(
            stack,
            stack.ingress_name(),
            Component::Frontend,
            Ownership::Owned,
        ),
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(spec.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![
                        path(&spec.api_path, Component::Api),
                        path("/", Component::Frontend),
                    ],
                }),
            }]),
            tls: spec.tls.as_ref().map(|tls| {
                vec![IngressTLS {
                    hosts: Some(vec![spec.host.clone()]),
                    secret_name: Some(tls.secret_name.clone()),
                }]
            }),
            ..IngressSpec::default()
        }),
        ..Ingress::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn routes_api_path_to_the_api_and_the_rest_to_the_frontend() {
        let stack = valid_stack(
            "ingress: {host: books.example.com, className: nginx, apiPath: /v1, tls: {secretName: books-tls}}",
        );
        let ingress = ingress(&stack).expect("ingress is set");
        assert_eq!(ingress.metadata.name.as_deref(), Some("books"));
        let spec = ingress.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("books.example.com"));
        let routes: Vec<(String, String)> = rule
            .http
            .as_ref()
            .unwrap()
            .paths
            .iter()
            .map(|p| {
                (
                    p.path.clone().unwrap(),
                    p.backend.service.as_ref().unwrap().name.clone(),
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                ("/v1".into(), "books-api".into()),
                ("/".into(), "books-frontend".into())
            ]
        );
        let tls = &spec.tls.unwrap()[0];
        assert_eq!(tls.secret_name.as_deref(), Some("books-tls"));
    }

    #[test]
    fn no_ingress_when_unset() {
        assert!(ingress(&valid_stack("")).is_none());
    }
}
