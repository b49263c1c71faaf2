//! `/api/v1/incidents`: create, list, get, change.

use super::json::JsonBody;
use super::params::{self, PagingParams};
use super::validate::{invalid, required_text};
use super::views::{IncidentView, Vocabulary};
use super::{AppState, valid_id};
use crate::error::ApiError;
use crate::incident::IncidentStatus;
use crate::sources::manual;
pub use crate::sources::manual::{CreateIncident, TargetInput};
use crate::store::{IncidentChange, IncidentFilter, IncidentSummary};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The 201 body: the MCP server reads these at the top level.
#[derive(Serialize, ToSchema)]
pub struct Created {
    pub incident_id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub priority: i64,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub message: String,
    pub incident: IncidentView,
}

#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])),
    request_body = CreateIncident,
    responses((status = 201, body = Created), (status = 422, description = "Invalid field")))]
pub async fn create(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    body: JsonBody<CreateIncident>,
) -> Result<HttpResponse, ApiError> {
    let incident = manual::incident(body.into_inner(), Utc::now())?;
    if matches!(**vocabulary, Vocabulary::Legacy) {
        // Token-less: bounded before anything is stored.
        state.compat_limit.admit_write(&state)?;
    }
    state.store.insert_incident(&incident).await?;
    state
        .metrics
        .count_incident(incident.source, crate::plan::incident_layer(&incident));
    let view = IncidentView::new(incident, **vocabulary);
    Ok(HttpResponse::Created().json(Created {
        incident_id: view.id.clone(),
        title: view.title.clone(),
        description: view.description.clone(),
        severity: view.severity.clone(),
        priority: view.priority,
        status: view.status.clone(),
        created_at: view.created_at,
        message: "Incident created".into(),
        incident: view,
    }))
}

/// Filters of the incident list (all optional; `all` means no filter).
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    pub namespace: Option<String>,
    /// Comma-separated; `completed` = resolved, `failed` = escalated.
    pub status: Option<String>,
    pub severity: Option<String>,
    pub source: Option<String>,
    /// RFC 3339 time or a duration back from now (`24h`).
    pub since: Option<String>,
    /// 1–1000, default 50.
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<IncidentView>,
    pub total: i64,
    pub summary: IncidentSummary,
    pub limit: i64,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

const STATUS_ALIASES: &[(&str, IncidentStatus)] = &[
    ("completed", IncidentStatus::Resolved),
    ("failed", IncidentStatus::Escalated),
    ("running", IncidentStatus::Remediating),
];

#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])),
    params(ListParams), responses((status = 200, body = IncidentList), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    query: web::Query<ListParams>,
) -> Result<web::Json<IncidentList>, ApiError> {
    let q = query.into_inner();
    let filter = IncidentFilter {
        namespace: params::namespace(q.namespace.as_deref())?,
        statuses: params::enum_list("status", q.status.as_deref(), STATUS_ALIASES)?,
        severity: params::enum_one("severity", q.severity.as_deref())?,
        source: params::enum_one("source", q.source.as_deref())?,
        since: params::since(q.since.as_deref(), Utc::now())?,
    };
    let page = PagingParams {
        limit: q.limit,
        offset: q.offset,
        cursor: q.cursor,
    }
    .parse()?;
    let (rows, summary) = futures_util::future::try_join(
        state.store.list_incidents(&filter, &page),
        state.store.summarize_incidents(&filter),
    )
    .await?;
    Ok(web::Json(IncidentList {
        total: summary.total,
        incidents: rows
            .items
            .into_iter()
            .map(|i| IncidentView::new(i, **vocabulary))
            .collect(),
        summary,
        limit: page.limit,
        next_cursor: rows.next.as_ref().and_then(params::encode_cursor),
    }))
}

#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    responses((status = 200, body = IncidentView), (status = 404)))]
pub async fn get(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    id: web::Path<String>,
) -> Result<web::Json<IncidentView>, ApiError> {
    let id = valid_id("inc", &id)?;
    let incident = state.store.get_incident(id).await?;
    Ok(web::Json(IncidentView::new(incident, **vocabulary)))
}

/// Resolve, cancel and/or add a note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeIncident {
    /// `resolved` or `cancelled`.
    pub status: Option<String>,
    /// `resolve` or `cancel` (same as `status`).
    pub action: Option<String>,
    pub note: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", security(("bearer" = [])),
    request_body = ChangeIncident,
    responses((status = 200, body = IncidentView), (status = 404), (status = 409), (status = 422)))]
pub async fn change(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    id: web::Path<String>,
    body: JsonBody<ChangeIncident>,
) -> Result<web::Json<IncidentView>, ApiError> {
    let id = valid_id("inc", &id)?;
    let body = body.into_inner();
    let status = match (body.status.as_deref(), body.action.as_deref()) {
        (Some(_), Some(_)) => return Err(invalid("action", "send either status or action")),
        (Some("resolved"), None) | (None, Some("resolve")) => Some(IncidentStatus::Resolved),
        (Some("cancelled"), None) | (None, Some("cancel")) => Some(IncidentStatus::Cancelled),
        (Some(other), None) => {
            return Err(invalid(
                "status",
                format!("{other:?} is not one of resolved, cancelled"),
            ));
        }
        (None, Some(other)) => {
            return Err(invalid(
                "action",
                format!("{other:?} is not one of resolve, cancel"),
            ));
        }
        (None, None) => None,
    };
    let note = body
        .note
        .map(|n| required_text("note", Some(n), 4096))
        .transpose()?;
    if status.is_none() && note.is_none() {
        return Err(invalid("status", "send status, action or note"));
    }
    let incident = state
        .store
        .change_incident(id, IncidentChange { status, note }, Utc::now())
        .await?;
    Ok(web::Json(IncidentView::new(incident, **vocabulary)))
}
