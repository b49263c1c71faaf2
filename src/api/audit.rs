//! `POST /webhooks/audit`: audit.k8s.io/v1 EventList batches from the API server's audit
//! webhook backend (SPEC §4.2). Token or verified client certificate; 200 after the batch's
//! incidents are committed, 503 when they cannot be (the backend retries).

use super::AppState;
use super::json::parse;
use crate::auth::{ApiToken, VerifiedClientCertificate, bearer_token};
use crate::error::ApiError;
use crate::sources::audit::{self, AuditRules, EventList, Judged, burst_incident, judge};
use crate::store::AuditOutcome;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// Body limit of audit batches (SPEC §3).
pub const AUDIT_BODY_LIMIT: usize = 10 * 1024 * 1024;

/// The audit rules. What spans batches (403 counts) is in the store, shared by every replica.
pub struct AuditState {
    pub rules: AuditRules,
}

impl AuditState {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let mut rules = AuditRules::default();
        if !settings.audit_protected_resources.is_empty() {
            rules.protected = settings.audit_protected_resources.clone();
        }
        AuditState { rules }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditAccepted {
    pub received: usize,
    #[serde(flatten)]
    pub outcome: AuditOutcome,
}

/// The token, or a client certificate the client CA verified whose common name or DNS SAN is
/// in `AUDIT_CLIENT_NAMES` (any name when the list is empty). A verified certificate with
/// none of the listed names is 403, not 401: the caller is known, and not allowed.
fn authorize(req: &HttpRequest, token: &ApiToken, allowed: &[String]) -> Result<(), ApiError> {
    let presented = bearer_token(req.headers());
    if presented.is_some_and(|presented| token.matches(presented)) {
        return Ok(());
    }
    if let Some(cert) = req.conn_data::<VerifiedClientCertificate>() {
        if cert.allowed_by(allowed) {
            return Ok(());
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "The client certificate's common name and DNS names are not in AUDIT_CLIENT_NAMES.",
        ));
    }
    match presented {
        Some(_) => Err(ApiError::unauthorized("The bearer token is not valid.")),
        None => Err(ApiError::unauthorized(
            "Send Authorization: Bearer <token>, or a client certificate signed by AUDIT_CLIENT_CA_FILE.",
        )),
    }
}

#[utoipa::path(post, path = "/webhooks/audit", tag = "webhooks", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "audit.k8s.io/v1 EventList"),
    responses(
        (status = 200, description = "Committed", body = AuditAccepted),
        (status = 400, description = "Not an EventList; nothing stored"),
        (status = 401, description = "No valid token and no verified client certificate"),
        (status = 403, description = "Client certificate not in AUDIT_CLIENT_NAMES; nothing stored"),
        (status = 413, description = "Over 10 MiB"),
        (status = 503, description = "Store unavailable; the backend retries")))]
pub async fn receive(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Data<ApiToken>,
    payload: web::Payload,
) -> Result<web::Json<AuditAccepted>, ApiError> {
    // Decided from the headers and the connection, before any of the body is read: a refused
    // request leaves its body to the body middleware, which discards it without buffering.
    authorize(&req, &token, &state.settings.audit_client_names)?;
    let list = read_event_list(&req, payload).await?;
    let now = Utc::now();
    let view = state.guard.snapshot();
    let mut judged: Vec<Judged> = list
        .items
        .iter()
        .map(|event| judge(event, &view, &state.audit.rules, now))
        .collect();
    count_denials(&state, &list, &mut judged, now).await?;
    record(&state, judged, now).await.map(web::Json)
}

/// The body, read under the route's `PayloadConfig` (10 MiB; over it, 413) only once the
/// caller is allowed, as a valid EventList (else 400).
async fn read_event_list(req: &HttpRequest, payload: web::Payload) -> Result<EventList, ApiError> {
    let body = web::Bytes::from_request(req, &mut payload.into_inner())
        .await
        .map_err(|e| ApiError::from_status(e.as_response_error().status_code()))?;
    let list: EventList = parse(&body).map_err(|e| {
        if e.status == StatusCode::UNPROCESSABLE_ENTITY {
            ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "bad_request",
                ..e
            }
        } else {
            e
        }
    })?;
    audit::validate(&list).map_err(ApiError::bad_request)?;
    Ok(list)
}

/// 403s are counted in the store, so a burst split across replicas (the API server's
/// webhook backend is load-balanced) is still one burst, reported once.
async fn count_denials(
    state: &AppState,
    list: &EventList,
    judged: &mut [Judged],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for (event, judged) in list.items.iter().zip(judged.iter_mut()) {
        let Some(denied) = judged.denied.take() else {
            continue;
        };
        let threshold = u32::try_from(state.audit.rules.denied_threshold).unwrap_or(u32::MAX);
        if let Some(count) = state
            .store
            .note_denied_access(&judged.audit_id, &denied, threshold)
            .await?
        {
            judged.outcome = "access_denied_burst";
            judged.incident = Some(burst_incident(event, count, &state.audit.rules, now));
        }
    }
    Ok(())
}

/// Commits the batch's incidents, then counts its outcomes and new incidents.
async fn record(
    state: &AppState,
    judged: Vec<Judged>,
    now: DateTime<Utc>,
) -> Result<AuditAccepted, ApiError> {
    let ids: Vec<String> = judged.iter().map(|j| j.audit_id.clone()).collect();
    let outcomes: Vec<&str> = judged.iter().map(|j| j.outcome).collect();
    let incidents: Vec<(String, crate::incident::Incident)> = judged
        .into_iter()
        .filter_map(|j| j.incident.map(|incident| (j.audit_id, incident)))
        .collect();
    // Each incident's layer, for the ones the store creates (a resent event creates none).
    let layers: std::collections::HashMap<String, crate::detect::Layer> = incidents
        .iter()
        .map(|(_, i)| (i.id.clone(), crate::plan::incident_layer(i)))
        .collect();
    let outcome = state.store.record_audit(&ids, incidents, now).await?;
    // Counted after the commit. A resent batch counts as duplicates, not as matches again.
    if outcome.duplicates == 0 {
        for label in &outcomes {
            state.metrics.audit_events.with_label_values(&[label]).inc();
        }
    } else {
        state
            .metrics
            .audit_events
            .with_label_values(&["duplicate"])
            .inc_by(outcome.duplicates);
    }
    for id in &outcome.incident_ids {
        if let Some(layer) = layers.get(id) {
            state
                .metrics
                .count_incident(crate::incident::Source::Audit, *layer);
        }
    }
    Ok(AuditAccepted {
        received: ids.len(),
        outcome,
    })
}
