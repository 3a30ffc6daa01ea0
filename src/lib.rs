//! appstack-operator: runs a Flask API, a Postgres database and a React frontend from one
//! `AppStack` custom resource.
//!
//! The pipeline is `validate → build → apply → status`: [`validate`] and [`resources`] and
//! [`status`] are pure (no client), [`controller`] does the I/O.

pub mod crd;
pub mod quantity;
pub mod resources;
pub mod validate;

#[cfg(test)]
mod test_fixtures;
