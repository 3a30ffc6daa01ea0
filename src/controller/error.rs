//! Everything a reconcile can fail with. Blocking errors need a person (the spec, a refused write,
//! a clashing object) and become `Stalled=True` in the status; the rest are transient and retried
//! with backoff.

use crate::reasons;
use crate::status::Blocker;
use crate::validate::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The message includes the problems, so they are not also a `source` (printed twice).
    #[error("invalid spec: {0}")]
    InvalidSpec(SpecError),

    /// The plan found something only a person can fix; the status already says what.
    #[error("{}", .0.message)]
    Blocked(Blocker),

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

    /// Another writer (a second operator) created or changed a data object since this
    /// reconcile read it: plan again from what is there now, never write over it.
    #[error("{kind} {name} was written by another writer since it was read")]
    Raced { kind: &'static str, name: String },

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

    /// The error inside the finalizer's wrapper, if any.
    fn inner(&self) -> &Error {
        match self {
            Error::Finalizer(wrapped) => match wrapped.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(e)
                | kube::runtime::finalizer::Error::CleanupFailed(e) => e.inner(),
                _ => self,
            },
            other => other,
        }
    }

    /// The finalizer's patch found no stack: a reconcile that ran on a cached copy of a stack
    /// whose finalizer an earlier reconcile (or the previous leader) had already removed. The
    /// stack is gone; nothing failed.
    pub fn stack_gone(&self) -> bool {
        let Error::Finalizer(wrapped) = self else {
            return false;
        };
        matches!(
            wrapped.as_ref(),
            kube::runtime::finalizer::Error::AddFinalizer(kube::Error::Api(status))
            | kube::runtime::finalizer::Error::RemoveFinalizer(kube::Error::Api(status))
                if status.code == 404
        )
    }

    /// Short, stable label for metrics and Event reasons.
    pub fn reason(&self) -> &'static str {
        match self.inner() {
            Error::InvalidSpec(_) => reasons::INVALID_SPEC,
            Error::Blocked(blocker) => blocker.reason,
            Error::Rejected { .. } => reasons::REJECTED,
            Error::Kube { .. } => reasons::API_ERROR,
            Error::Raced { .. } => reasons::RACED,
            Error::Finalizer(_) => "FinalizerError",
        }
    }

    /// Retrying alone cannot fix it: a person must act.
    pub fn is_blocking(&self) -> bool {
        matches!(
            self.inner(),
            Error::InvalidSpec(_) | Error::Blocked(_) | Error::Rejected { .. }
        )
    }

    /// Only a new spec can fix it: wait for one instead of retrying.
    pub fn awaits_new_spec(&self) -> bool {
        matches!(self.inner(), Error::InvalidSpec(_))
    }

    /// What the status says about this error.
    pub fn blocker(&self) -> Blocker {
        match self.inner() {
            Error::Blocked(blocker) => blocker.clone(),
            other => Blocker {
                reason: other.reason(),
                message: other.to_string(),
                object: match other {
                    Error::Rejected { kind, name, .. }
                    | Error::Kube { kind, name, .. }
                    | Error::Raced { kind, name } => Some((*kind, name.clone())),
                    _ => None,
                },
            },
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
        let rejected = Error::from_kube("Service", "x", api_error(422));
        assert_eq!(rejected.reason(), "Rejected");
        assert!(rejected.is_blocking());
        assert!(rejected.blocker().message.contains("Service x"));
        for transient in [409, 429, 500, 503] {
            let error = Error::from_kube("Service", "x", api_error(transient));
            assert!(!error.is_blocking(), "{transient}");
            assert_eq!(error.reason(), "KubeError");
        }
    }

    #[test]
    fn the_finalizer_wrapper_is_seen_through() {
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
            Error::Blocked(Blocker {
                reason: "NameConflict",
                message: "Service books-api exists".into(),
                object: None,
            }),
        )));
        assert!(wrapped.is_blocking());
        assert_eq!(wrapped.reason(), "NameConflict");
        assert_eq!(wrapped.blocker().message, "Service books-api exists");
    }

    #[test]
    fn a_finalizer_patch_on_a_stack_already_gone_is_no_failure() {
        use kube::runtime::finalizer::Error as Finalizer;
        let gone = |e: Finalizer<Error>| Error::Finalizer(Box::new(e)).stack_gone();
        assert!(gone(Finalizer::RemoveFinalizer(api_error(404))));
        assert!(gone(Finalizer::AddFinalizer(api_error(404))));
        assert!(!gone(Finalizer::RemoveFinalizer(api_error(409))));
        assert!(!gone(Finalizer::RemoveFinalizer(api_error(500))));
        assert!(!gone(Finalizer::CleanupFailed(Error::from_kube(
            "PersistentVolumeClaim",
            "x",
            api_error(404)
        ))));
        assert!(!Error::from_kube("AppStack", "x", api_error(404)).stack_gone());
    }
}
