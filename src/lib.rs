//! appstack-operator: runs a Flask API, a Postgres database and a React frontend from one
//! `AppStack` custom resource.
//!
//! The pipeline is `validate → build → apply → status`: [`validate`] and [`resources`] and
//! [`status`] are pure (no client), [`controller`] does the I/O.

pub mod controller;
pub mod crd;
pub mod diff;
pub mod metrics;
pub mod quantity;
pub mod render;
pub mod resources;
pub mod server;
pub mod status;
pub mod telemetry;
pub mod validate;

#[cfg(test)]
mod test_fixtures;
