//! `POST /webhooks/alertmanager`: durable, idempotent alert intake (SPEC §4.1).
//!
//! 200 only after the whole notification is committed; 503 when the store cannot commit, so
//! that Alertmanager retries; 4xx for a payload that retrying cannot fix (nothing is stored).

use super::AppState;
use super::json::JsonBody;
use super::validate::invalid;
use crate::error::ApiError;
use crate::sources::alertmanager::{self, AlertStatus, Payload, Rejection};
use crate::store::AlertBatchOutcome;
use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

/// Body limit of the Alertmanager receiver (SPEC §3).
pub const ALERTMANAGER_BODY_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Alerts in the notification.
    pub received: usize,
    #[serde(flatten)]
    pub outcome: AlertBatchOutcome,
}

fn rejected(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::TooManyAlerts(n) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_alerts",
            format!(
                "{n} alerts in one notification; at most {} are accepted (set max_alerts in the \
                 webhook receiver)",
                alertmanager::MAX_ALERTS_PER_BATCH
            ),
        ),
        Rejection::Invalid { field, reason } => invalid(&field, reason),
    }
}

#[utoipa::path(post, path = "/webhooks/alertmanager", tag = "webhooks", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "Alertmanager webhook payload, version 4"),
    responses(
        (status = 200, description = "Committed", body = Accepted),
        (status = 413, description = "Over 5 MiB or too many alerts"),
        (status = 422, description = "Not a valid version 4 payload; nothing stored"),
        (status = 503, description = "Store unavailable; Alertmanager retries")))]
pub async fn alertmanager(
    state: web::Data<AppState>,
    body: JsonBody<Payload>,
) -> Result<web::Json<Accepted>, ApiError> {
    let payload = body.into_inner();
    let now = Utc::now();
    let records = alertmanager::records(&payload, &state.settings.alert_issue_types, now)
        .map_err(rejected)?;
    for alert in &payload.alerts {
        let status = match alert.status {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        };
        state
            .metrics
            .alerts_received
            .with_label_values(&[status])
            .inc();
    }
    let outcome = state.store.record_alerts(&records, now).await?;
    state
        .metrics
        .alerts_deduplicated
        .inc_by(outcome.deduplicated);
    state
        .metrics
        .incidents
        .with_label_values(&["alertmanager", "unknown"])
        .inc_by(outcome.created);
    tracing::info!(
        receiver = %payload.receiver,
        group_key = %payload.group_key,
        alerts = records.len(),
        created = outcome.created,
        deduplicated = outcome.deduplicated,
        resolved = outcome.resolved,
        "alertmanager notification committed"
    );
    Ok(web::Json(Accepted {
        received: records.len(),
        outcome,
    }))
}
