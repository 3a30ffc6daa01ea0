//! `appstack-operator render -f stack.yaml`: every object the operator would apply, offline, as
//! multi-document YAML (like `helm template`).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use crate::crd::AppStack;
use crate::plan::child::{Existing, Object};
use crate::plan::{Hold, desired_objects};
use crate::resources::secret::{KEY_PASSWORD, KEY_USERNAME};
use crate::validate::{SpecError, validate};

/// Stands in for the password, which is generated in the cluster and never printed.
pub const PLACEHOLDER_PASSWORD: &str = "GENERATED-IN-CLUSTER";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read the manifest: {0}")]
    Parse(String),
    #[error("the manifest holds no AppStack")]
    Empty,
    // The message includes the problems, so they are not also a `source` (printed twice).
    #[error("AppStack {name}: {problems}")]
    Invalid { name: String, problems: SpecError },
    #[error("{0}")]
    Held(String),
    #[error("cannot print {0}")]
    Serialize(String),
}

/// Render every AppStack in `manifest`. `namespace` applies to stacks that name none.
pub fn render(manifest: &str, namespace: &str) -> Result<String, RenderError> {
    let stacks: Vec<AppStack> =
        serde_saphyr::from_multiple(manifest).map_err(|e| RenderError::Parse(e.to_string()))?;
    if stacks.is_empty() {
        return Err(RenderError::Empty);
    }
    let mut notes = String::new();
    let mut documents = Vec::new();
    for mut stack in stacks {
        stack
            .metadata
            .namespace
            .get_or_insert_with(|| namespace.to_owned());
        let name = stack.metadata.name.clone().unwrap_or_default();
        let valid = validate(&stack).map_err(|problems| RenderError::Invalid { name, problems })?;
        // Offline nothing exists; an `existingSecret` is assumed to be there.
        let existing = Existing {
            existing_secret: valid
                .database
                .existing_secret
                .as_ref()
                .map(|name| stand_in(name)),
            ..Existing::default()
        };
        // Offline nothing can hold the stack back: `existingSecret` is stood in for.
        let objects = desired_objects(&valid, &existing, PLACEHOLDER_PASSWORD).map_err(|hold| {
            let (Hold::Blocked(blocker) | Hold::Waiting(blocker)) = hold;
            RenderError::Held(format!("AppStack {}: {}", valid.name, blocker.message))
        })?;
        for object in objects {
            // Data is made only by the operator in the cluster: applied by hand, a Secret would
            // carry a known password and a claim could be taken for data.
            if !matches!(object, Object::Secret(_) | Object::Claim(_)) {
                documents.push(to_yaml(&object)?);
            }
        }
        let data = match &valid.database.existing_secret {
            None => format!(
                "Secret {} and PersistentVolumeClaim {}",
                valid.generated_secret_name(),
                valid.claim_name()
            ),
            Some(_) => format!("PersistentVolumeClaim {}", valid.claim_name()),
        };
        notes.push_str(&format!(
            "# AppStack {}: {data} ({}) are not printed. The operator creates its data in the\n\
             # cluster (the password is generated there; a claim made by hand could be taken for\n\
             # data), so applying this output never gives the stack a known password.\n",
            valid.name, valid.database.storage_size,
        ));
    }
    let documents: String = documents.iter().map(|d| format!("---\n{d}")).collect();
    Ok(notes + &documents)
}

fn to_yaml(object: &Object) -> Result<String, RenderError> {
    serde_saphyr::to_string(&object.to_value()).map_err(|e| RenderError::Serialize(e.to_string()))
}

/// A Secret with the keys an `existingSecret` must have, standing in for the user's.
fn stand_in(name: &str) -> Secret {
    let data = [KEY_USERNAME, KEY_PASSWORD]
        .into_iter()
        .map(|key| (key.to_owned(), ByteString(PLACEHOLDER_PASSWORD.into())))
        .collect::<BTreeMap<_, _>>();
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds_and_names(yaml: &str) -> Vec<String> {
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
        documents
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn renders_the_example_stack() {
        let example = include_str!("../examples/books.yaml");
        let output = render(example, "default").unwrap();
        assert_eq!(
            kinds_and_names(&output),
            [
                "NetworkPolicy/books-db",
                "NetworkPolicy/books-api",
                "StatefulSet/books-db",
                "Deployment/books-api",
                "Deployment/books-frontend",
                "Service/books-db",
                "Service/books-api",
                "Service/books-frontend",
                "HorizontalPodAutoscaler/books-api",
                "PodDisruptionBudget/books-api",
                "PodDisruptionBudget/books-frontend",
                "Ingress/books",
                &format!(
                    "Job/{}",
                    crate::names::migration_job("books", "ghcr.io/appstack-dev/books-api:0.1.0")
                ),
            ]
        );
        assert!(
            !output.contains("ownerReferences"),
            "no UID offline, so no owner references"
        );
        assert!(
            !output.contains(PLACEHOLDER_PASSWORD) && !output.contains("kind: Secret"),
            "no password of any kind is printed"
        );
        assert!(output.starts_with(
            "# AppStack books: Secret books-db-credentials and PersistentVolumeClaim books-db-data (1Gi) are not printed."
        ));
    }

    #[test]
    fn existing_secret_renders_no_secret() {
        let manifest = "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {name: shop}\nspec:\n  api: {image: a}\n  frontend: {image: f}\n  database: {existingSecret: vault-db}\n";
        let output = render(manifest, "prod").unwrap();
        assert!(
            !kinds_and_names(&output)
                .iter()
                .any(|k| k.starts_with("Secret/"))
        );
        assert!(output.contains("namespace: prod"));
        assert!(output.contains("vault-db"));
    }

    #[test]
    fn invalid_input_names_the_field() {
        let manifest = "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {name: shop}\nspec:\n  api: {image: a, port: 0}\n  frontend: {image: f}\n";
        let error = render(manifest, "default").unwrap_err().to_string();
        assert_eq!(
            error,
            "AppStack shop: spec.api.port: must be between 1 and 65535 (got 0)"
        );
        let invalid = render(manifest, "default").unwrap_err();
        assert!(
            std::error::Error::source(&invalid).is_none(),
            "the problems are in the message, so `{{:#}}` does not print them twice"
        );
        let missing = "apiVersion: appstack.dev/v1alpha1\nkind: AppStack\nmetadata: {name: shop}\nspec:\n  api: {replicas: 1}\n  frontend: {image: f}\n";
        let error = render(missing, "default").unwrap_err().to_string();
        assert!(error.contains("image"), "{error}");
    }
}
