//! Everything a reconcile can fail with. Blocking errors need a person (the spec, a clashing
//! object, a Secret) and become `Stalled=True` in the status; the rest are transient and retried
//! with backoff.

use crate::status::Blocker;
use crate::validate::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[source] SpecError),

    #[error("{kind} {name} already exists and is not managed by this stack; rename or delete it")]
    NameConflict { kind: &'static str, name: String },

    #[error("Secret {name} named by spec.database.existingSecret does not exist")]
    SecretNotFound { name: String },

    #[error("Secret {name} lacks the keys {keys} (each must be present and non-empty)")]
    SecretIncomplete { name: String, keys: String },

    #[error(
        "credentials Secret {secret} is missing while volume claim {claim} holds a database initialised with its password; \
         restore the Secret, or delete the claim to start with an empty database"
    )]
    CredentialsLost { secret: String, claim: String },

    #[error(
        "credentials Secret {name} has no password; restore its `password` key (the database still expects the old one)"
    )]
    PasswordMissing { name: String },

    #[error("the API server rejected {kind} {name}: {message}")]
    Rejected {
        kind: &'static str,
        name: String,
        message: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error("Kubernetes API call for {kind} {name} failed: {source}")]
    Kube {
        kind: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },

    #[error(transparent)]
    Finalizer(#[from] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// Wrap an API error on `kind`/`name`: a 4xx answer (other than a conflict or throttling)
    /// will not change by retrying, so it blocks; anything else is transient.
    pub fn from_kube(kind: &'static str, name: &str, source: kube::Error) -> Self {
        let name = name.to_owned();
        match &source {
            kube::Error::Api(status) if matches!(status.code, 400 | 403 | 404 | 422) => {
                Error::Rejected {
                    kind,
                    name,
                    message: status.message.clone(),
                    source: Box::new(source),
                }
            }
            _ => Error::Kube {
                kind,
                name,
                source: Box::new(source),
            },
        }
    }

    /// Short, stable label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::NameConflict { .. } => "NameConflict",
            Error::SecretNotFound { .. } => "SecretNotFound",
            Error::SecretIncomplete { .. } => "SecretIncomplete",
            Error::CredentialsLost { .. } => "CredentialsLost",
            Error::PasswordMissing { .. } => "PasswordMissing",
            Error::Rejected { .. } => "Rejected",
            Error::Kube { .. } => "KubeError",
            Error::Finalizer(inner) => match inner.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.reason(),
                _ => "FinalizerError",
            },
        }
    }

    /// The status blocker for errors that retrying alone cannot fix.
    pub fn blocker(&self) -> Option<Blocker> {
        match self {
            Error::Kube { .. } | Error::Finalizer(_) => None,
            blocking => Some(Blocker {
                reason: blocking.reason(),
                message: blocking.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("boom", "Whatever").with_code(code),
        ))
    }

    #[test]
    fn client_errors_block_and_server_errors_retry() {
        assert_eq!(
            Error::from_kube("Service", "x", api_error(422)).reason(),
            "Rejected"
        );
        assert!(
            Error::from_kube("Service", "x", api_error(422))
                .blocker()
                .is_some()
        );
        for transient in [409, 429, 500, 503] {
            let error = Error::from_kube("Service", "x", api_error(transient));
            assert!(error.blocker().is_none(), "{transient}");
        }
    }

    #[test]
    fn blocker_message_names_the_object() {
        let error = Error::NameConflict {
            kind: "Service",
            name: "books-api".into(),
        };
        let blocker = error.blocker().unwrap();
        assert_eq!(blocker.reason, "NameConflict");
        assert!(blocker.message.contains("Service books-api"));
    }
}
