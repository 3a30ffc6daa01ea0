//! HorizontalPodAutoscalers `<stack>-api` and `<stack>-frontend`, only while `autoscaling` is set.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};

use super::{Ownership, object_meta};
use crate::stack::{Component, ValidStack};

/// The autoscaler of a web tier, or `None` when the tier has no `autoscaling` (then any existing
/// one must be deleted).
pub fn autoscaler(stack: &ValidStack, component: Component) -> Option<HorizontalPodAutoscaler> {
    let tier = stack.tier(component)?;
    let scaling = tier.autoscaling.as_ref()?;
    let name = stack.child_name(component);
    Some(HorizontalPodAutoscaler {
        metadata: object_meta(stack, name.clone(), component, Ownership::Owned),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name,
            },
            min_replicas: Some(scaling.min_replicas),
            max_replicas: scaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(scaling.target_cpu_utilization_percentage),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn autoscaler_targets_the_deployment_on_cpu() {
        let stack = valid_stack(
            "api: {image: api, autoscaling: {minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}}",
        );
        let hpa = autoscaler(&stack, Component::Api).expect("autoscaling is set");
        let spec = hpa.spec.unwrap();
        assert_eq!(spec.scale_target_ref.name, "books-api");
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 10));
        let metrics = spec.metrics.unwrap();
        let target = &metrics[0].resource.as_ref().unwrap().target;
        assert_eq!(target.average_utilization, Some(70));
        assert_eq!(hpa.metadata.owner_references.unwrap()[0].kind, "AppStack");
    }

    #[test]
    fn no_autoscaler_without_autoscaling_or_for_the_database() {
        let stack = valid_stack("");
        assert!(autoscaler(&stack, Component::Api).is_none());
        assert!(autoscaler(&stack, Component::Frontend).is_none());
        assert!(autoscaler(&stack, Component::Database).is_none());
    }
}
