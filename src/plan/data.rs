//! The data-safety policies: which credentials a stack runs on, when a new password may be made,
//! and how large the data claim is. Pure: the controller passes what it read and a freshly
//! generated password, which is used only where this module says so.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};

use super::Hold;
use super::child::Existing;
use super::ownership::{Owner, Standing, standing};
use crate::quantity;
use crate::reasons;
use crate::resources::pvc::requested_size;
use crate::resources::secret::{
    CLAIM_UID_ANNOTATION, missing_keys, recorded_claim, stored_password,
};
use crate::stack::ValidStack;
use crate::status::Blocker;

/// Where the stack's credentials come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The user's `existingSecret`, read as it is and never written.
    Existing(Box<Secret>),
    /// The generated Secret, with this password, recording the claim once it exists.
    Generated {
        password: String,
        claim_uid: Option<String>,
    },
}

/// An existing data object as the policies see it.
enum Found<'a, T> {
    Absent,
    Terminating,
    Foreign,
    Ours(&'a T),
}

fn found<'a, T: kube::Resource>(object: Option<&'a T>, owner: Owner<'_>) -> Found<'a, T> {
    match object {
        None => Found::Absent,
        Some(object) => match standing(object.meta(), owner) {
            Standing::Terminating => Found::Terminating,
            Standing::Foreign => Found::Foreign,
            Standing::Ours => Found::Ours(object),
        },
    }
}

/// Decide the credentials, or why the stack must hold.
///
/// - A terminating claim or Secret is not data: wait until it is gone, never adopt or mount it.
/// - A name held by someone else blocks, before any password is made.
/// - The stored password is kept for ever; a Secret without one blocks.
/// - A live claim without its Secret holds a database initialised with a password nobody knows
///   any more: a new one would lock the API out, so that blocks too (`CredentialsLost`).
/// - A Secret that recorded a claim which is gone, or replaced, means the data is gone: that
///   blocks (`DataLost`) rather than start an empty database under the old password.
/// - Only when neither exists is `fresh_password` used.
pub fn credentials(
    stack: &ValidStack,
    existing: &Existing,
    owner: Owner<'_>,
    fresh_password: &str,
) -> Result<Source, Hold> {
    let claim_name = stack.claim_name();
    let claim = found(existing.claim(&claim_name), owner);
    match claim {
        Found::Terminating => {
            return Err(Hold::Waiting(Blocker {
                reason: reasons::WAITING_FOR_PREVIOUS_CLAIM,
                message: format!(
                    "volume claim {claim_name} is being deleted; a new one is made once it is gone (pods that still mount it keep it)"
                ),
                object: Some((CLAIM, claim_name.clone())),
            }));
        }
        Found::Foreign => return Err(name_conflict(CLAIM, &claim_name)),
        Found::Absent | Found::Ours(_) => {}
    }

    if let Some(name) = &stack.database.existing_secret {
        let secret = existing.existing_secret.as_ref().ok_or_else(|| {
            blocked(
                reasons::SECRET_NOT_FOUND,
                format!("Secret {name} named by spec.database.existingSecret does not exist"),
                (SECRET, name),
            )
        })?;
        let missing = missing_keys(secret);
        if !missing.is_empty() {
            return Err(blocked(
                reasons::SECRET_INCOMPLETE,
                format!(
                    "Secret {name} lacks the keys {} (each must be present and non-empty)",
                    missing.join(", ")
                ),
                (SECRET, name),
            ));
        }
        return Ok(Source::Existing(Box::new(secret.clone())));
    }

    let secret_name = stack.generated_secret_name();
    match found(existing.secret(&secret_name), owner) {
        Found::Terminating => Err(Hold::Waiting(Blocker {
            reason: reasons::WAITING_FOR_PREVIOUS_SECRET,
            message: format!(
                "credentials Secret {secret_name} is being deleted; waiting for it to go"
            ),
            object: Some((SECRET, secret_name.clone())),
        })),
        Found::Foreign => Err(name_conflict(SECRET, &secret_name)),
        Found::Ours(secret) => match stored_password(secret) {
            Some(password) => {
                let live_claim = match claim {
                    Found::Ours(claim) => claim.metadata.uid.clone(),
                    _ => None,
                };
                if let Some(recorded) = recorded_claim(secret)
                    && live_claim.as_deref() != Some(recorded)
                {
                    return Err(blocked(
                        reasons::DATA_LOST,
                        format!(
                            "volume claim {claim_name} that held the database is gone (or was replaced) while Secret {secret_name} still holds its password; \
                             restore the claim from a backup and remove the annotation {CLAIM_UID_ANNOTATION} from the Secret, \
                             or delete the Secret too to start over with an empty database and a new password"
                        ),
                        (CLAIM, &claim_name),
                    ));
                }
                Ok(Source::Generated {
                    password,
                    claim_uid: live_claim,
                })
            }
            None => Err(blocked(
                reasons::PASSWORD_MISSING,
                format!(
                    "credentials Secret {secret_name} has no password; restore its `password` key (the database still expects the old one)"
                ),
                (SECRET, &secret_name),
            )),
        },
        Found::Absent => match claim {
            Found::Ours(_) => Err(blocked(
                reasons::CREDENTIALS_LOST,
                format!(
                    "credentials Secret {secret_name} is missing while volume claim {claim_name} holds a database initialised with its password; \
                     restore the Secret with that password, or delete the claim to start over with an empty database \
                     (the operator stops the database so that the claim can go)"
                ),
                (SECRET, &secret_name),
            )),
            _ => Ok(Source::Generated {
                password: fresh_password.to_owned(),
                claim_uid: None,
            }),
        },
    }
}

/// The size to request: the spec's, unless the claim is already larger (a re-created stack
/// adopting its old claim). Claims never shrink.
pub fn claim_size(stack: &ValidStack, claim: Option<&PersistentVolumeClaim>) -> String {
    let wanted = stack.database.storage_size.as_str();
    match claim.and_then(requested_size) {
        Some(current) if quantity::parse_nanos(current) > quantity::parse_nanos(wanted) => {
            current.to_owned()
        }
        _ => wanted.to_owned(),
    }
}

pub fn name_conflict(kind: &'static str, name: &str) -> Hold {
    blocked(
        reasons::NAME_CONFLICT,
        format!(
            "{kind} {name} already exists and is not managed by this stack; rename or delete it"
        ),
        (kind, name),
    )
}

fn blocked(reason: &'static str, message: String, object: (&'static str, &str)) -> Hold {
    Hold::Blocked(Blocker {
        reason,
        message,
        object: Some((object.0, object.1.to_owned())),
    })
}

const SECRET: &str = "Secret";
const CLAIM: &str = "PersistentVolumeClaim";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::child::{Kind, Object, Slot};
    use crate::resources::pvc::data_claim;
    use crate::resources::secret::credentials_secret;
    use crate::test_fixtures::valid_stack;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    const OWNER: Owner<'static> = Owner {
        name: "books",
        uid: Some("0b0e5f4e-uid"),
    };

    #[derive(Clone, Copy)]
    enum State {
        Absent,
        Live,
        Terminating,
        Foreign,
    }

    fn with(mut object: Object, state: State) -> Option<Object> {
        let meta = object.meta_mut();
        match state {
            State::Absent => return None,
            State::Live => {}
            State::Terminating => meta.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH)),
            State::Foreign => meta.labels = None,
        }
        Some(object)
    }

    fn existing(stack: &ValidStack, secret: State, claim: State) -> Existing {
        let mut existing = Existing::default();
        let objects = [
            with(
                Object::Secret(credentials_secret(stack, "stored", None)),
                secret,
            ),
            with(Object::Claim(data_claim(stack, "1Gi")), claim),
        ];
        for object in objects.into_iter().flatten() {
            existing.children.insert(object.slot(), object);
        }
        existing
    }

    fn outcome(result: Result<Source, Hold>) -> String {
        match result {
            Ok(Source::Generated { password, .. }) => format!("password {password}"),
            Ok(Source::Existing(_)) => "existing".into(),
            Err(Hold::Blocked(b)) => format!("blocked {}", b.reason),
            Err(Hold::Waiting(b)) => format!("waiting {}", b.reason),
        }
    }

    #[test]
    fn password_table() {
        use State::*;
        let stack = valid_stack("");
        let cases = [
            (Absent, Absent, "password fresh"),
            (Live, Live, "password stored"),
            (Live, Absent, "password stored"),
            (Absent, Live, "blocked CredentialsLost"),
            (Absent, Foreign, "blocked NameConflict"),
            (Foreign, Absent, "blocked NameConflict"),
            (Foreign, Live, "blocked NameConflict"),
            (Absent, Terminating, "waiting WaitingForPreviousClaim"),
            (Live, Terminating, "waiting WaitingForPreviousClaim"),
            (Terminating, Absent, "waiting WaitingForPreviousSecret"),
            (Terminating, Live, "waiting WaitingForPreviousSecret"),
        ];
        for (secret, claim, expected) in cases {
            let existing = existing(&stack, secret, claim);
            assert_eq!(
                outcome(credentials(&stack, &existing, OWNER, "fresh")),
                expected,
                "secret {}, claim {}",
                existing.secret("books-db-credentials").is_some(),
                existing.claim("books-db-data").is_some()
            );
        }
    }

    #[test]
    fn a_secret_without_password_blocks() {
        let stack = valid_stack("");
        let mut existing = existing(&stack, State::Live, State::Live);
        if let Some(Object::Secret(secret)) = existing
            .children
            .get_mut(&Slot::new(Kind::Secret, "books-db-credentials"))
        {
            secret.data.as_mut().unwrap().remove("password");
        }
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "blocked PasswordMissing"
        );
    }

    #[test]
    fn existing_secret_is_read_never_generated() {
        let stack = valid_stack("database: {existingSecret: vault-db}");
        let mut existing = existing(&stack, State::Absent, State::Absent);
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "blocked SecretNotFound"
        );
        let mut secret = credentials_secret(&stack, "p", None);
        secret.data.as_mut().unwrap().remove("username");
        existing.existing_secret = Some(secret.clone());
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "blocked SecretIncomplete"
        );
        secret
            .data
            .as_mut()
            .unwrap()
            .insert("username".into(), k8s_openapi::ByteString(b"app".to_vec()));
        existing.existing_secret = Some(secret);
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "existing"
        );
    }

    #[test]
    fn a_secret_whose_claim_is_gone_or_replaced_blocks_with_data_lost() {
        let stack = valid_stack("");
        let mut existing = existing(&stack, State::Live, State::Live);
        let claim_slot = Slot::new(Kind::Claim, "books-db-data");
        if let Some(claim) = existing.children.get_mut(&claim_slot) {
            claim.meta_mut().uid = Some("claim-1".into());
        }
        let Ok(Source::Generated { claim_uid, .. }) =
            credentials(&stack, &existing, OWNER, "fresh")
        else {
            panic!("the stored password is used")
        };
        assert_eq!(
            claim_uid.as_deref(),
            Some("claim-1"),
            "the Secret records its claim"
        );
        let recorded = Object::Secret(credentials_secret(&stack, "stored", Some("claim-1")));
        existing.children.insert(recorded.slot(), recorded);
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "password stored"
        );
        if let Some(claim) = existing.children.get_mut(&claim_slot) {
            claim.meta_mut().uid = Some("claim-2".into());
        }
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "blocked DataLost",
            "an empty claim made in its place"
        );
        existing.children.remove(&claim_slot);
        assert_eq!(
            outcome(credentials(&stack, &existing, OWNER, "fresh")),
            "blocked DataLost"
        );
    }

    #[test]
    fn claims_grow_and_never_shrink() {
        let stack = valid_stack("database: {storage: {size: 2Gi}}");
        assert_eq!(claim_size(&stack, None), "2Gi");
        let small = data_claim(&stack, "1Gi");
        assert_eq!(claim_size(&stack, Some(&small)), "2Gi", "grows");
        let large = data_claim(&stack, "5Gi");
        assert_eq!(
            claim_size(&stack, Some(&large)),
            "5Gi",
            "keeps the larger size"
        );
    }
}
