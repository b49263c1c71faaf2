//! `/api/v1/pause`: stop (and resume) remediation globally or for one namespace. Persisted.

use super::AppState;
use super::params;
use super::validate::bounded;
use crate::error::ApiError;
use crate::store::Pause;
use actix_web::web;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScopeParams {
    /// Pause only this namespace; without it, everything.
    pub namespace: Option<String>,
}

/// Optional body of `POST /api/v1/pause`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PauseState {
    pub paused: bool,
    /// `global` or `namespace`.
    pub scope: &'static str,
    pub namespace: Option<String>,
    pub reason: Option<String>,
    pub since: Option<chrono::DateTime<Utc>>,
    /// On resume: open alert incidents the pause had held, queued for the pipeline again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct PauseList {
    pub pauses: Vec<Pause>,
}

fn scope_of(namespace: &Option<String>) -> &'static str {
    if namespace.is_some() {
        "namespace"
    } else {
        "global"
    }
}

#[utoipa::path(post, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    params(ScopeParams), request_body(content = PauseRequest, description = "optional"),
    responses((status = 200, body = PauseState)))]
pub async fn pause(
    state: web::Data<AppState>,
    query: web::Query<ScopeParams>,
    body: web::Bytes,
) -> Result<web::Json<PauseState>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    // The body is optional: an empty POST pauses without a reason.
    let request: PauseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        super::json::parse(&body)?
    };
    let reason = request
        .reason
        .map(|r| bounded("reason", r, 1024))
        .transpose()?;
    let pause = Pause {
        namespace: namespace.clone(),
        reason,
        since: Utc::now(),
    };
    state.store.set_pause(&pause).await?;
    tracing::warn!(namespace = ?pause.namespace, reason = ?pause.reason, "remediation paused");
    Ok(web::Json(PauseState {
        paused: true,
        scope: scope_of(&namespace),
        namespace,
        reason: pause.reason,
        since: Some(pause.since),
        requeued: None,
    }))
}

#[utoipa::path(delete, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    params(ScopeParams), responses((status = 200, body = PauseState)))]
pub async fn resume(
    state: web::Data<AppState>,
    query: web::Query<ScopeParams>,
) -> Result<web::Json<PauseState>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    let removed = state.store.clear_pause(namespace.as_deref()).await?;
    let requeued = state.pipeline.requeue_held(namespace.as_deref()).await?;
    if removed {
        tracing::warn!(namespace = ?namespace, requeued, "remediation resumed");
    }
    Ok(web::Json(PauseState {
        paused: false,
        scope: scope_of(&namespace),
        namespace,
        reason: None,
        since: None,
        requeued: Some(requeued),
    }))
}

#[utoipa::path(get, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    responses((status = 200, body = PauseList)))]
pub async fn list(state: web::Data<AppState>) -> Result<web::Json<PauseList>, ApiError> {
    Ok(web::Json(PauseList {
        pauses: state.store.list_pauses().await?,
    }))
}
