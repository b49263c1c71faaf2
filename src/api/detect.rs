//! `GET /api/v1/detect/{kind}/{namespace}/{name}`: the layer of an object and, attached to a
//! cluster, how it is deployed, with the evidence.

use super::AppState;
use crate::detect::ownership::{DeploymentMethod, deployment_method};
use crate::detect::{LayerFinding, Signal, layer_of};
use crate::error::ApiError;
use crate::execute::ExecError;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Detection {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub layer: LayerFinding,
    /// `null` when detached (ownership needs the cluster).
    pub deployment: Option<DeploymentMethod>,
    /// `attached` or `detached`.
    pub mode: &'static str,
}

#[utoipa::path(get, path = "/api/v1/detect/{kind}/{namespace}/{name}", tag = "detect",
    security(("bearer" = [])),
    responses((status = 200, body = Detection), (status = 404, description = "No such object"), (status = 503)))]
pub async fn detect(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<web::Json<Detection>, ApiError> {
    let (kind, namespace, name) = path.into_inner();
    let kind = super::remediation::normalize_kind(&kind);
    if !super::validate::is_dns_label(&namespace) || name.is_empty() || name.len() > 253 {
        return Err(ApiError::not_found(format!(
            "{kind} {namespace}/{name} is not a valid object reference"
        )));
    }
    let layer = layer_of(&Signal {
        kind: &kind,
        namespace: Some(&namespace),
        alertname: None,
        text: "",
    });
    let (deployment, mode) = match &state.cluster {
        None => (None, "detached"),
        Some(cluster) => {
            let chain = cluster
                .owner_chain((&kind, &namespace, &name), None, &|_| {})
                .await
                .map_err(|error| match error {
                    ExecError::Permanent(reason) if reason.contains("404") => {
                        ApiError::not_found(format!("{kind} {namespace}/{name} does not exist"))
                    }
                    ExecError::Permanent(reason) => ApiError::bad_request(reason),
                    ExecError::Transient(reason) => ApiError::unavailable(format!(
                        "the Kubernetes API is unavailable: {reason}"
                    )),
                })?;
            (
                Some(deployment_method(&chain, &state.guard.snapshot())),
                "attached",
            )
        }
    };
    Ok(web::Json(Detection {
        kind,
        namespace,
        name,
        layer,
        deployment,
        mode,
    }))
}
