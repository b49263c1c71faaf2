//! `/api/v1/workflows` and the `/api/v1/coordination/workflows` views; approve/reject/cancel.

use super::params::{self, PagingParams};
use super::views::WorkflowView;
use super::{AppState, valid_id};
use crate::error::ApiError;
use crate::store::WorkflowFilter;
use crate::workflow::{HumanAction, WorkflowKind};
use actix_web::web;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Comma-separated workflow states.
    pub status: Option<String>,
    pub namespace: Option<String>,
    pub incident_id: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkflowList {
    pub workflows: Vec<WorkflowView>,
    pub total: i64,
    pub limit: i64,
    pub next_cursor: Option<String>,
}

async fn list_kind(
    state: &AppState,
    query: ListParams,
    kind: Option<WorkflowKind>,
) -> Result<WorkflowList, ApiError> {
    let incident_id = match query.incident_id.as_deref().filter(|v| !v.is_empty()) {
        Some(id) => Some(valid_id("inc", id).map_err(|_| {
            ApiError::bad_request(format!("incident_id {id:?} is not an incident id"))
        })?),
        None => None,
    };
    let filter = WorkflowFilter {
        statuses: params::enum_list("status", query.status.as_deref(), &[])?,
        namespace: params::namespace(query.namespace.as_deref())?,
        incident_id: incident_id.map(str::to_string),
        kind,
    };
    let page = PagingParams {
        limit: query.limit,
        offset: query.offset,
        cursor: query.cursor,
    }
    .parse()?;
    let (rows, total) = state.store.list_workflows(&filter, &page).await?;
    Ok(WorkflowList {
        workflows: rows.items,
        total,
        limit: page.limit,
        next_cursor: rows.next.as_ref().and_then(params::encode_cursor),
    })
}

#[utoipa::path(get, path = "/api/v1/workflows", tag = "workflows", security(("bearer" = [])),
    params(ListParams), responses((status = 200, body = WorkflowList), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    query: web::Query<ListParams>,
) -> Result<web::Json<WorkflowList>, ApiError> {
    Ok(web::Json(
        list_kind(&state, query.into_inner(), None).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/workflows/{id}", tag = "workflows", security(("bearer" = [])),
    responses((status = 200, body = WorkflowView), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WorkflowView>, ApiError> {
    let id = valid_id("wf", &id)?;
    Ok(web::Json(state.store.get_workflow(id).await?))
}

#[utoipa::path(get, path = "/api/v1/coordination/workflows", tag = "workflows",
    security(("bearer" = [])), params(ListParams),
    responses((status = 200, description = "Multi-layer workflows only", body = WorkflowList)))]
pub async fn list_coordination(
    state: web::Data<AppState>,
    query: web::Query<ListParams>,
) -> Result<web::Json<WorkflowList>, ApiError> {
    let list = list_kind(&state, query.into_inner(), Some(WorkflowKind::Coordination)).await?;
    Ok(web::Json(list))
}

#[utoipa::path(get, path = "/api/v1/coordination/workflows/{id}", tag = "workflows",
    security(("bearer" = [])), responses((status = 200, body = WorkflowView), (status = 404)))]
pub async fn get_coordination(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WorkflowView>, ApiError> {
    let id = valid_id("wf", &id)?;
    let workflow = state.store.get_workflow(id).await?;
    if workflow.kind != WorkflowKind::Coordination {
        return Err(ApiError::not_found(format!(
            "workflow {id} is not a multi-layer coordination workflow"
        )));
    }
    Ok(web::Json(workflow))
}

async fn act(
    state: web::Data<AppState>,
    id: web::Path<String>,
    action: HumanAction,
) -> Result<web::Json<WorkflowView>, ApiError> {
    let id = valid_id("wf", &id)?;
    let workflow = state.store.act_on_workflow(id, action, Utc::now()).await?;
    if action == HumanAction::Approve {
        state.pipeline.resume(workflow.clone()).await?;
    }
    tracing::info!(workflow = %workflow.id, action = action.as_str(), status = %workflow.status, "workflow changed by an operator");
    Ok(web::Json(workflow))
}

#[utoipa::path(post, path = "/api/v1/workflows/{id}/approve", tag = "workflows",
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowView), (status = 404), (status = 409)))]
pub async fn approve(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WorkflowView>, ApiError> {
    act(state, id, HumanAction::Approve).await
}

#[utoipa::path(post, path = "/api/v1/workflows/{id}/reject", tag = "workflows",
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowView), (status = 404), (status = 409)))]
pub async fn reject(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WorkflowView>, ApiError> {
    act(state, id, HumanAction::Reject).await
}

#[utoipa::path(post, path = "/api/v1/workflows/{id}/cancel", tag = "workflows",
    security(("bearer" = [])),
    responses((status = 200, body = WorkflowView), (status = 404), (status = 409)))]
pub async fn cancel(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<WorkflowView>, ApiError> {
    act(state, id, HumanAction::Cancel).await
}
