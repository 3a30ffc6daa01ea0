//! PodDisruptionBudgets `<stack>-api` and `<stack>-frontend`, only while a tier runs more than one
//! pod: with one pod, a budget would block node drains forever.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Ownership, object_meta, selector_labels};
use crate::stack::{Component, ValidStack};

pub fn disruption_budget(stack: &ValidStack, component: Component) -> Option<PodDisruptionBudget> {
    let tier = stack.tier(component)?;
    if tier.min_pods() <= 1 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: object_meta(
            stack,
            stack.child_name(component),
            component,
            Ownership::Owned,
        ),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(stack, component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn budget_only_with_more_than_one_pod() {
        let stack = valid_stack("api: {image: api, replicas: 2}");
        let budget = disruption_budget(&stack, Component::Api).expect("two replicas");
        assert_eq!(
            budget.spec.unwrap().max_unavailable,
            Some(IntOrString::Int(1))
        );
        assert!(
            disruption_budget(&stack, Component::Frontend).is_none(),
            "one replica"
        );
        assert!(disruption_budget(&stack, Component::Database).is_none());
        let scaled = valid_stack(
            "api: {image: api, replicas: 1, autoscaling: {minReplicas: 2, maxReplicas: 4}}",
        );
        assert!(
            disruption_budget(&scaled, Component::Api).is_some(),
            "the autoscaler keeps two"
        );
    }
}
