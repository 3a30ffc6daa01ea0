//! Handing a Deployment's `replicas` to a HorizontalPodAutoscaler.
//!
//! While autoscaling is on, the operator leaves `replicas` out of what it applies, so that it and
//! the autoscaler do not fight. But if the operator owned the field, server-side apply would then
//! drop it and Kubernetes would reset the Deployment to one replica until the autoscaler reacts.
//! So before such an apply the field gets a second owner with its current value: the hand-over
//! the Kubernetes server-side apply documentation describes.

use k8s_openapi::api::apps::v1::Deployment;

use super::FIELD_MANAGER;

/// Co-owns a Deployment's `replicas` while it is handed to an autoscaler.
pub const HANDOVER_MANAGER: &str = "appstack-operator-handover";

/// The replicas to hand over before applying `live` without them, if the operator still owns
/// the field alone.
pub fn replicas_to_hand_over(live: &Deployment) -> Option<i32> {
    let owns_replicas = |manager: &str| {
        live.metadata.managed_fields.iter().flatten().any(|entry| {
            entry.manager.as_deref() == Some(manager)
                && entry.fields_v1.as_ref().is_some_and(|fields| {
                    fields
                        .0
                        .get("f:spec")
                        .and_then(|spec| spec.get("f:replicas"))
                        .is_some()
                })
        })
    };
    let replicas = live.spec.as_ref()?.replicas?;
    (owns_replicas(FIELD_MANAGER) && !owns_replicas(HANDOVER_MANAGER)).then_some(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(managers: &[&str]) -> Deployment {
        let fields: Vec<_> = managers
            .iter()
            .map(|m| {
                json!({"manager": m, "operation": "Apply", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "books-api", "managedFields": fields},
            "spec": {"replicas": 4, "selector": {}, "template": {}},
        }))
        .unwrap()
    }

    #[test]
    fn hands_over_only_what_the_operator_owns_alone() {
        assert_eq!(
            replicas_to_hand_over(&deployment(&[FIELD_MANAGER])),
            Some(4)
        );
        assert_eq!(
            replicas_to_hand_over(&deployment(&[FIELD_MANAGER, HANDOVER_MANAGER])),
            None,
            "handed over already"
        );
        assert_eq!(
            replicas_to_hand_over(&deployment(&["kube-controller-manager"])),
            None,
            "the autoscaler owns it"
        );
    }
}
