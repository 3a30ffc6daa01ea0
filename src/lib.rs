//! appstack-operator: runs a Flask API, a Postgres database and a React frontend from one
//! `AppStack` custom resource.
//!
//! A reconcile is a pipeline: [`validate`] the spec into a [`stack::ValidStack`], read what
//! exists (`controller::dereference`), decide every write in the pure [`plan`] (built from the
//! pure [`resources`] builders), carry the writes out (`controller::execute`), and compute the
//! [`status`] (pure) from the plan and what the writes returned. `render` prints the same plan.

pub mod controller;
pub mod crd;
pub mod leader;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod plan;
pub mod plugin;
pub mod quantity;
pub mod reasons;
pub mod render;
pub mod request_count;
pub mod resources;
pub mod server;
pub mod stack;
pub mod status;
pub mod telemetry;
pub mod validate;

#[cfg(test)]
mod test_fixtures;
