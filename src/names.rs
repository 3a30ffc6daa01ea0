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
