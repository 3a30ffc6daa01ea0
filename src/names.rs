//! Names of a stack's children, from the stack's name alone: the delete path uses them for stacks
//! whose spec never validated.

use crate::stack::Component;

/// The Deployment and Service of `component` (`books-api`, `books-db`, …).
pub fn child(stack: &str, component: Component) -> String {
    let suffix = match component {
        Component::Api => "api",
        Component::Frontend => "frontend",
        Component::Database => "db",
    };
    format!("{stack}-{suffix}")
}

/// The credentials Secret the operator generates.
pub fn credentials_secret(stack: &str) -> String {
    format!("{stack}-db-credentials")
}

/// The claim that holds the Postgres data.
pub fn data_claim(stack: &str) -> String {
    format!("{stack}-db-data")
}

pub fn ingress(stack: &str) -> String {
    stack.to_owned()
}

/// The migration Job of `image`: one per image, so an image migrates once. Job names must fit
/// the 63-character `job-name` label of their pods, so long stack names are cut; the digest of
/// the stack's name and the image keeps them apart.
pub fn migration_job(stack: &str, image: &str) -> String {
    job_per_image(stack, "-migrate-", image)
}

/// The Job that proves a database image can start (and says which Postgres it is) before the
/// database moves to it.
pub fn database_check_job(stack: &str, image: &str) -> String {
    job_per_image(stack, "-dbcheck-", image)
}

fn job_per_image(stack: &str, infix: &str, image: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{stack}\n{image}").as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let room = 63 - infix.len() - hash.len();
    let stem = stack[..stack.len().min(room)].trim_end_matches('-');
    format!("{stem}{infix}{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_jobs_are_named_per_image_and_fit_a_label_value() {
        let a = migration_job("books", "books-api:1");
        assert!(a.starts_with("books-migrate-") && a.len() == "books-migrate-".len() + 10);
        assert_eq!(a, migration_job("books", "books-api:1"));
        assert_ne!(a, migration_job("books", "books-api:2"));
        let long = "a".repeat(54);
        let named = migration_job(&long, "x");
        assert!(named.len() <= 63, "{named}");
        assert_ne!(named, migration_job(&"a".repeat(53), "x"));
    }
}
