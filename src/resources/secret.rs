//! The generated database credentials Secret `<stack>-db-credentials`, and what the workloads
//! need to know about whichever Secret holds the credentials.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use sha2::{Digest, Sha256};

use super::{Ownership, object_meta};
use crate::stack::{Component, ValidStack};

pub const KEY_USERNAME: &str = "username";
pub const KEY_PASSWORD: &str = "password";
pub const KEY_DATABASE_URL: &str = "DATABASE_URL";
/// Keys a Secret must have to serve as credentials.
pub const REQUIRED_KEYS: [&str; 2] = [KEY_USERNAME, KEY_PASSWORD];

pub const POSTGRES_PORT: i32 = 5432;

/// The connection URL in the form SQLAlchemy with psycopg 3 expects.
pub fn database_url(stack: &ValidStack, user: &str, password: &str) -> String {
    format!(
        "postgresql+psycopg://{user}:{password}@{}:{POSTGRES_PORT}/{}",
        stack.database_host(),
        stack.database.name
    )
}

/// Annotation on the credentials Secret: the UID of the claim whose database the password opens.
/// A Secret that records a claim which is gone means the data is gone (`DataLost`).
pub const CLAIM_UID_ANNOTATION: &str = "appstack.dev/claim-uid";

/// The credentials Secret for `password`, recording `claim_uid` once the claim exists. The
/// password itself is generated once by the caller and read back from the existing Secret
/// afterwards: this function never invents one.
pub fn credentials_secret(stack: &ValidStack, password: &str, claim_uid: Option<&str>) -> Secret {
    let user = &stack.database.user;
    let data = [
        (KEY_USERNAME, user.clone()),
        (KEY_PASSWORD, password.to_owned()),
        ("database", stack.database.name.clone()),
        ("host", stack.database_host()),
        ("port", POSTGRES_PORT.to_string()),
        (KEY_DATABASE_URL, database_url(stack, user, password)),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), ByteString(value.into_bytes())))
    .collect();
    let mut metadata = object_meta(
        stack,
        stack.generated_secret_name(),
        Component::Database,
        Ownership::Retained,
    );
    metadata.annotations =
        claim_uid.map(|uid| BTreeMap::from([(CLAIM_UID_ANNOTATION.to_owned(), uid.to_owned())]));
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The claim UID a credentials Secret recorded.
pub fn recorded_claim(secret: &Secret) -> Option<&str> {
    let annotations = secret.metadata.annotations.as_ref()?;
    annotations.get(CLAIM_UID_ANNOTATION).map(String::as_str)
}

/// The password stored in a Secret, if it has a usable one.
pub fn stored_password(secret: &Secret) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(KEY_PASSWORD)?;
    String::from_utf8(bytes.0.clone())
        .ok()
        .filter(|p| !p.is_empty())
}

/// What the workloads need to know about the Secret that holds the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub secret_name: String,
    /// The Secret has a `DATABASE_URL` key the API can read as it is.
    pub has_database_url: bool,
    /// Digest of the Secret's data: it goes into the pod templates, so a rotated password
    /// rolls the pods that read it.
    pub hash: String,
}

impl Credentials {
    pub fn from_data(secret_name: String, data: &BTreeMap<String, ByteString>) -> Self {
        let mut digest = Sha256::new();
        for (key, value) in data {
            // Length prefixes keep ("ab","c") and ("a","bc") apart.
            digest.update((key.len() as u64).to_be_bytes());
            digest.update(key.as_bytes());
            digest.update((value.0.len() as u64).to_be_bytes());
            digest.update(&value.0);
        }
        let hash = digest
            .finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            secret_name,
            has_database_url: data.contains_key(KEY_DATABASE_URL),
            hash,
        }
    }

    pub fn of_secret(secret: &Secret) -> Self {
        let empty = BTreeMap::new();
        Self::from_data(
            secret.metadata.name.clone().unwrap_or_default(),
            secret.data.as_ref().unwrap_or(&empty),
        )
    }
}

/// Keys from [`REQUIRED_KEYS`] that `secret` lacks or has empty.
pub fn missing_keys(secret: &Secret) -> Vec<&'static str> {
    REQUIRED_KEYS
        .into_iter()
        .filter(|key| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(*key))
                .is_none_or(|v| v.0.is_empty())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::valid_stack;

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    #[test]
    fn secret_has_every_key_and_a_psycopg_url() {
        let stack = valid_stack("database: {name: catalog, user: app}");
        let secret = credentials_secret(&stack, "s3cret", None);
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("books-db-credentials")
        );
        assert_eq!(text(&secret, "username"), "app");
        assert_eq!(text(&secret, "password"), "s3cret");
        assert_eq!(text(&secret, "database"), "catalog");
        assert_eq!(text(&secret, "host"), "books-db.shop.svc");
        assert_eq!(text(&secret, "port"), "5432");
        assert_eq!(
            text(&secret, "DATABASE_URL"),
            "postgresql+psycopg://app:s3cret@books-db.shop.svc:5432/catalog"
        );
        assert_eq!(stored_password(&secret).as_deref(), Some("s3cret"));
        assert!(missing_keys(&secret).is_empty());
    }

    #[test]
    fn the_secret_is_never_owned_whatever_the_retention() {
        // Only the finalizer decides the fate of data: garbage collection never takes it.
        for spec in ["", "database: {retainOnDelete: false}"] {
            let secret = credentials_secret(&valid_stack(spec), "p", None);
            assert_eq!(secret.metadata.owner_references, None, "{spec}");
        }
    }

    #[test]
    fn hash_follows_the_data() {
        let stack = valid_stack("");
        let one = Credentials::of_secret(&credentials_secret(&stack, "one", None));
        let same = Credentials::of_secret(&credentials_secret(&stack, "one", None));
        let two = Credentials::of_secret(&credentials_secret(&stack, "two", None));
        assert_eq!(one, same);
        assert_ne!(one.hash, two.hash);
        assert!(one.has_database_url);
    }

    #[test]
    fn reports_missing_keys() {
        let mut secret = credentials_secret(&valid_stack(""), "p", None);
        secret.data.as_mut().unwrap().remove("password");
        assert_eq!(missing_keys(&secret), ["password"]);
        assert_eq!(stored_password(&secret), None);
    }
}
