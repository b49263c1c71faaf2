//! `POST /webhooks/alertmanager`: durable, idempotent alert intake (SPEC §4.1).
//!
//! 200 only after the notification's valid alerts are committed (alerts that fail validation
//! are skipped, counted and listed); 503 when the store cannot commit, so that Alertmanager
//! retries; 4xx for a payload that retrying cannot fix and nothing in it usable (nothing is
//! stored).

use super::AppState;
use super::json::JsonBody;
use super::validate::invalid;
use crate::error::ApiError;
use crate::sources::alertmanager::{self, Payload, Rejection, Skipped};
use crate::store::AlertBatchOutcome;
use actix_web::http::StatusCode;
use actix_web::web;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

/// Body limit of the Alertmanager receiver (SPEC §3).
pub const ALERTMANAGER_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// The 200 body: what the notification held and what became of it.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// Alerts in the notification.
    pub received: usize,
    /// Alerts stored: new, delivered again, or resolving (`incident_ids` has one per alert).
    pub accepted: usize,
    /// Alerts skipped because they failed validation; the rest of the notification is stored.
    pub rejected: usize,
    /// The skipped alerts (the first 100), in notification order.
    pub rejected_alerts: Vec<RejectedAlert>,
    #[serde(flatten)]
    pub outcome: AlertBatchOutcome,
}

/// An alert left out, and why.
#[derive(Serialize, ToSchema)]
pub struct RejectedAlert {
    /// Position in the notification's `alerts`.
    pub index: usize,
    /// As sent (empty when missing).
    pub fingerprint: String,
    /// The offending field, e.g. `alerts[3].labels.alertname`.
    pub field: String,
    /// The `reason` label of `coordination_engine_alerts_rejected_total`.
    pub reason: &'static str,
    pub message: String,
}

/// Rejected alerts listed in one answer; the metric and the log have them all.
const LISTED_REJECTIONS: usize = 100;

fn listed(skipped: &[Skipped]) -> Vec<RejectedAlert> {
    skipped
        .iter()
        .take(LISTED_REJECTIONS)
        .map(|s| RejectedAlert {
            index: s.index,
            fingerprint: s.fingerprint.clone(),
            field: s.field.clone(),
            reason: s.reason,
            message: s.message.clone(),
        })
        .collect()
}

/// Counts and logs each skipped alert (with its fingerprint, so it can be found in
/// Alertmanager).
fn report_skipped(state: &AppState, payload: &Payload, skipped: &[Skipped]) {
    for s in skipped {
        state
            .metrics
            .alerts_rejected
            .with_label_values(&[s.reason])
            .inc();
        tracing::warn!(
            receiver = %payload.receiver,
            group_key = %payload.group_key,
            fingerprint = %s.fingerprint,
            index = s.index,
            field = %s.field,
            reason = s.reason,
            message = %s.message,
            "alert skipped: it failed validation"
        );
    }
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
        Rejection::NothingUsable(skipped) => {
            let Some(first) = skipped.first() else {
                return invalid("alerts", "no alert of the notification is usable");
            };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!(
                    "{}: {} (no alert of the notification is usable: {} failed validation)",
                    first.field,
                    first.message,
                    skipped.len()
                ),
            )
            .with_details(serde_json::json!({
                "field": first.field,
                "rejected_alerts": listed(&skipped),
            }))
        }
    }
}

/// Counts the incidents the notification created, each under its detected layer. A record
/// created an incident when its own (fresh) incident id is among the outcome's: a redelivery
/// names the incident it joined instead.
fn count_created(
    state: &AppState,
    records: &[crate::sources::alertmanager::AlertRecord],
    outcome: &crate::store::AlertBatchOutcome,
) {
    let named: std::collections::HashSet<&str> =
        outcome.incident_ids.iter().map(String::as_str).collect();
    for record in records {
        if named.contains(record.incident.id.as_str()) {
            state.metrics.count_incident(
                record.incident.source,
                crate::plan::incident_layer(&record.incident),
            );
        }
    }
}

#[utoipa::path(post, path = "/webhooks/alertmanager", tag = "webhooks", security(("bearer" = [])),
    request_body(content = serde_json::Value, description = "Alertmanager webhook payload, version 4"),
    responses(
        (status = 200, description = "Committed; alerts that failed validation are skipped and listed", body = Accepted),
        (status = 413, description = "Over 5 MiB or too many alerts"),
        (status = 422, description = "Not a valid version 4 envelope, or no alert in it is usable; nothing stored"),
        (status = 503, description = "Store unavailable; Alertmanager retries")))]
pub async fn alertmanager(
    state: web::Data<AppState>,
    body: JsonBody<Payload>,
) -> Result<web::Json<Accepted>, ApiError> {
    let payload = body.into_inner();
    let now = Utc::now();
    let intake = match alertmanager::records(&payload, &state.settings.alert_issue_types, now) {
        Ok(intake) => intake,
        Err(rejection) => {
            // A 4xx is not retried: these alerts are counted once, here.
            if let Rejection::NothingUsable(skipped) = &rejection {
                report_skipped(&state, &payload, skipped);
            }
            return Err(rejected(rejection));
        }
    };
    for record in &intake.records {
        let status = if record.resolved {
            "resolved"
        } else {
            "firing"
        };
        state
            .metrics
            .alerts_received
            .with_label_values(&[status])
            .inc();
    }
    let outcome = state.store.record_alerts(&intake.records, now).await?;
    // After the commit: a 503 is retried, and the retry reports the same alerts again.
    report_skipped(&state, &payload, &intake.skipped);
    state
        .metrics
        .alerts_deduplicated
        .inc_by(outcome.deduplicated);
    count_created(&state, &intake.records, &outcome);
    tracing::info!(
        receiver = %payload.receiver,
        group_key = %payload.group_key,
        alerts = intake.records.len(),
        rejected = intake.skipped.len(),
        created = outcome.created,
        deduplicated = outcome.deduplicated,
        resolved = outcome.resolved,
        "alertmanager notification committed"
    );
    Ok(web::Json(Accepted {
        received: payload.alerts.total,
        accepted: intake.records.len(),
        rejected: intake.skipped.len(),
        rejected_alerts: listed(&intake.skipped),
        outcome,
    }))
}
