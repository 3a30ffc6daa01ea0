//! The Services `<stack>-db`, `<stack>-api` and `<stack>-frontend`.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::secret::POSTGRES_PORT;
use super::{Ownership, object_meta, selector_labels};
use crate::crd::ServiceType;
use crate::stack::{Component, ValidStack};

/// Name of the container port each Service targets.
pub fn port_name(component: Component) -> &'static str {
    match component {
        Component::Database => "postgres",
        Component::Api | Component::Frontend => "http",
    }
}

pub fn service(stack: &ValidStack, component: Component) -> Service {
    let (port, service_type) = match stack.tier(component) {
        Some(tier) => (tier.port, tier.service_type),
        None => (POSTGRES_PORT, ServiceType::ClusterIP),
    };
    let type_name = match service_type {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    Service {
        metadata: object_meta(
            stack,
            stack.child_name(component),
            component,
            Ownership::Owned,
        ),
        spec: Some(ServiceSpec {
            type_: Some(type_name.into()),
            selector: Some(selector_labels(stack, component)),
            ports: Some(vec![ServicePort {
                name: Some(port_name(component).into()),
                port,
                target_port: Some(IntOrString::String(port_name(component).into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn services_select_their_component_on_its_port() {
        let stack = valid_stack("api: {image: api, serviceType: NodePort}");
        let api = service(&stack, Component::Api);
        assert_eq!(api.metadata.name.as_deref(), Some("books-api"));
        let spec = api.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.selector.unwrap()["app.kubernetes.io/component"], "api");
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 5000);

        let db = service(&stack, Component::Database).spec.unwrap();
        assert_eq!(db.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(db.ports.unwrap()[0].port, 5432);
        let frontend = service(&stack, Component::Frontend);
        assert_eq!(frontend.metadata.owner_references.unwrap()[0].name, "books");
        assert_eq!(frontend.spec.unwrap().ports.unwrap()[0].port, 8080);
    }
}
