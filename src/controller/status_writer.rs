//! Write the AppStack's status, only when it differs from what is there.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::Context;
use super::error::Error;
use crate::crd::AppStack;
use crate::status::{Observed, compute_status};

/// Field manager for status writes, apart from the children's so the two never conflict.
pub const STATUS_MANAGER: &str = "appstack-operator-status";

pub async fn write_status(
    stack: &AppStack,
    ctx: &Context,
    observed: &Observed,
) -> Result<(), Error> {
    let now = Time(jiff::Timestamp::now());
    let status = compute_status(stack.status.as_ref(), observed, &now);
    if stack.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let name = stack.name_any();
    let api: Api<AppStack> =
        Api::namespaced(ctx.client.clone(), &stack.namespace().unwrap_or_default());
    // Server-side apply of the status needs apiVersion and kind in the body.
    let patch = json!({
        "apiVersion": format!("{}/{}", crate::crd::GROUP, crate::crd::VERSION),
        "kind": "AppStack",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(STATUS_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::from_kube("AppStack", &name, e))?;
    ctx.metrics.status_write();
    ctx.status_written(stack);
    Ok(())
}
