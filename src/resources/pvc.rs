//! The Postgres data claim `<stack>-db-data`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::{Ownership, object_meta};
use crate::stack::{Component, ValidStack};

/// The claim, requesting `size`. The caller passes the larger of the spec's size and the
/// existing claim's, so a claim never shrinks.
pub fn data_claim(stack: &ValidStack, size: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: object_meta(
            stack,
            stack.claim_name(),
            Component::Database,
            Ownership::Retained,
        ),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: stack.database.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(size.to_owned()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The storage a claim requests.
pub fn requested_size(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    #[test]
    fn claim_requests_the_size_and_class() {
        let stack = valid_stack("database: {storage: {size: 5Gi, storageClassName: fast}}");
        let claim = data_claim(&stack, "5Gi");
        assert_eq!(claim.metadata.name.as_deref(), Some("books-db-data"));
        assert_eq!(requested_size(&claim), Some("5Gi"));
        let spec = claim.spec.unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(spec.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(claim.metadata.owner_references, None, "data is never owned");
        let purged = valid_stack("database: {retainOnDelete: false}");
        assert_eq!(data_claim(&purged, "1Gi").metadata.owner_references, None);
    }

    #[test]
    fn claim_without_class_uses_the_cluster_default() {
        let claim = data_claim(&valid_stack(""), "1Gi");
        assert_eq!(claim.spec.unwrap().storage_class_name, None);
    }
}
