//! `/api/v1/incidents`: create, list, get, change.

use super::json::JsonBody;
use super::params::{self, PagingParams};
use super::validate::{self, bounded, bounded_map, invalid, required_text};
use super::views::{IncidentView, Vocabulary};
use super::{AppState, valid_id};
use crate::error::ApiError;
use crate::incident::{Incident, IncidentStatus, Severity, Source, Target};
use crate::store::{IncidentChange, IncidentFilter, IncidentSummary};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `target` as clients send it: `"Kind/name"` (Go engine, MCP server) or an object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TargetInput {
    Text(String),
    Object {
        kind: String,
        name: String,
        namespace: Option<String>,
    },
}

/// A manual incident. snake_case and the MCP server's camelCase keys are both accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    pub title: Option<String>,
    pub description: Option<String>,
    /// info, low, medium (default), high, critical.
    pub severity: Option<String>,
    pub target: Option<TargetInput>,
    pub namespace: Option<String>,
    #[serde(alias = "issueType")]
    pub issue_type: Option<String>,
    #[serde(alias = "affectedResources")]
    pub affected_resources: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(alias = "correlationId")]
    pub correlation_id: Option<String>,
    #[serde(alias = "externalId")]
    pub external_id: Option<String>,
    #[serde(alias = "createdBy")]
    pub created_by: Option<String>,
    /// `manual` (the MCP server) or `api` (default).
    pub source: Option<String>,
    /// 0 to 1.
    pub confidence: Option<f64>,
    /// Accepted for compatibility and kept as annotations.
    pub parameters: Option<BTreeMap<String, serde_json::Value>>,
}

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

fn build_incident(body: CreateIncident, now: DateTime<Utc>) -> Result<Incident, ApiError> {
    let title = required_text("title", body.title, 256)?;
    let severity = match body.severity.as_deref().map(str::trim) {
        None | Some("") => Severity::Medium,
        Some(text) => text.parse().map_err(|why| invalid("severity", why))?,
    };
    let source = match body.source.as_deref() {
        None | Some("api") => Source::Api,
        Some("manual") => Source::Manual,
        Some(other) => {
            return Err(invalid(
                "source",
                format!("{other:?} is not one of manual, api"),
            ));
        }
    };
    let mut incident = Incident::new(source, title, severity, now);
    incident.description = bounded("description", body.description.unwrap_or_default(), 8192)?;
    let (target_ns, target) = match body.target {
        None => (None, None),
        Some(TargetInput::Text(text)) if text.trim().is_empty() => (None, None),
        Some(TargetInput::Text(text)) => {
            let (ns, t) = Target::parse(bounded("target", text.trim().to_string(), 512)?.as_str());
            (ns, Some(t))
        }
        Some(TargetInput::Object {
            kind,
            name,
            namespace,
        }) => (
            namespace,
            Some(Target {
                kind: bounded("target.kind", kind, 63)?,
                name: required_text("target.name", Some(name), 253)?,
            }),
        ),
    };
    incident.target = target;
    incident.namespace = match body.namespace.or(target_ns).filter(|ns| !ns.is_empty()) {
        Some(ns) if validate::is_dns_label(&ns) => Some(ns),
        Some(ns) => {
            return Err(invalid(
                "namespace",
                format!("{ns:?} is not a namespace name"),
            ));
        }
        None => None,
    };
    if let Some(issue_type) = body.issue_type.filter(|t| !t.trim().is_empty()) {
        incident.issue_type = bounded("issue_type", issue_type, 128)?;
    }
    let resources = body.affected_resources.unwrap_or_default();
    if resources.len() > 100 {
        return Err(invalid("affected_resources", "at most 100 entries"));
    }
    incident.affected_resources = resources
        .into_iter()
        .map(|r| bounded("affected_resources", r, 512))
        .collect::<Result<_, _>>()?;
    incident.labels = body.labels.unwrap_or_default();
    bounded_map("labels", &incident.labels, 64)?;
    let optional =
        |field: &str, value: Option<String>| value.map(|v| bounded(field, v, 256)).transpose();
    incident.correlation_id = optional("correlation_id", body.correlation_id)?;
    incident.external_id = optional("external_id", body.external_id)?;
    incident.created_by = optional("created_by", body.created_by)?;
    incident.confidence = match body.confidence {
        Some(c) if !(0.0..=1.0).contains(&c) => {
            return Err(invalid("confidence", format!("{c} is not between 0 and 1")));
        }
        other => other,
    };
    for (key, value) in body.parameters.unwrap_or_default() {
        incident
            .annotations
            .insert(format!("parameter.{key}"), value.to_string());
    }
    bounded_map("parameters", &incident.annotations, 64)?;
    Ok(incident)
}

#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", security(("bearer" = [])),
    request_body = CreateIncident,
    responses((status = 201, body = Created), (status = 422, description = "Invalid field")))]
pub async fn create(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    body: JsonBody<CreateIncident>,
) -> Result<HttpResponse, ApiError> {
    let incident = build_incident(body.into_inner(), Utc::now())?;
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
