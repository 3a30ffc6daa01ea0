//! The credentials the workloads read: an `existingSecret` as it is, or the generated Secret,
//! whose password is made once and read back ever after.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use kube::ResourceExt;

use super::children::Children;
use super::error::Error;
use crate::resources::secret::{
    Credentials, credentials_secret, generate_password, missing_keys, stored_password,
};
use crate::validate::ValidStack;

pub async fn ensure_credentials(
    stack: &ValidStack,
    children: &Children<'_>,
) -> Result<Credentials, Error> {
    if let Some(name) = &stack.database.existing_secret {
        // Someone else's Secret: read it, never write it.
        let secret = children
            .get::<Secret>(name)
            .await?
            .ok_or_else(|| Error::SecretNotFound { name: name.clone() })?;
        let missing = missing_keys(&secret);
        if !missing.is_empty() {
            return Err(Error::SecretIncomplete {
                name: name.clone(),
                keys: missing.join(", "),
            });
        }
        return Ok(Credentials::of_secret(&secret));
    }

    let name = stack.generated_secret_name();
    let applied = match children.get::<Secret>(&name).await? {
        Some(existing) => {
            children.ensure_ours(&existing)?;
            let password = stored_password(&existing)
                .ok_or_else(|| Error::PasswordMissing { name: name.clone() })?;
            // Re-applying with the stored password restores edited keys (host, DATABASE_URL, …)
            // and never changes the password itself.
            children
                .apply_over(Some(existing), &credentials_secret(stack, &password))
                .await?
        }
        None => {
            // A claim without its Secret holds a database initialised with a password nobody
            // knows any more; a new random one would lock the API out of its own data.
            let claim = children
                .get::<PersistentVolumeClaim>(&stack.claim_name())
                .await?;
            if let Some(claim) = claim.filter(|c| children.is_ours(c)) {
                return Err(Error::CredentialsLost {
                    secret: name,
                    claim: claim.name_any(),
                });
            }
            children
                .apply_over(None, &credentials_secret(stack, &generate_password()))
                .await?
        }
    };
    Ok(Credentials::of_secret(&applied))
}
