//! `POST /api/v1/remediation/trigger` (one target) and `POST /api/v1/coordination/trigger`
//! (several resources, one multi-layer workflow).

use super::AppState;
use super::json::JsonBody;
use super::views::Vocabulary;
use crate::config::CompatTriggerMode;
use crate::detect::Layer;
use crate::error::ApiError;
use crate::incident::Incident;
use crate::pipeline::{Detection, StartError};
use crate::sources::coordination::Coordination;
pub use crate::sources::coordination::{CoordinationResource, CoordinationTrigger};
use crate::sources::trigger::{self, Trigger};
pub use crate::sources::trigger::{
    FlatTrigger, IssueRef, NestedTrigger, ResourceRef, normalize_kind,
};
use crate::workflow::{Workflow, WorkflowKind};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Kinds without a namespace.
pub use crate::plan::CLUSTER_SCOPED;

/// The trigger's body in either shape: the shape picks the type, then the source checks it.
fn parse_trigger(body: Value) -> Result<Trigger, ApiError> {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let trigger = if trigger::is_nested(&body) {
        Trigger::from_nested(super::json::parse(&bytes)?)?
    } else {
        Trigger::from_flat(super::json::parse(&bytes)?)?
    };
    Ok(trigger)
}

/// The 202 body: the first five are strings (the MCP server decodes them as such).
#[derive(Serialize, ToSchema)]
pub struct Triggered {
    pub workflow_id: String,
    pub incident_id: String,
    pub status: String,
    /// `argocd`, `helm`, `operator` or `manual` (`cluster` for nodes and other cluster
    /// infrastructure), detected before answering; `unknown` when detached or when detection
    /// could not finish within 100 ms (`deployment_method_detected: false`).
    pub deployment_method: String,
    /// Whether `deployment_method` was detected.
    pub deployment_method_detected: bool,
    /// The evidence for the method, or why it is `unknown`.
    pub deployment_method_detail: String,
    /// e.g. `6m0s`.
    pub estimated_duration: String,
    pub plan: Option<Value>,
}

/// What a trigger may do given where it came from: the unauthenticated compatibility
/// listener follows `COMPAT_TRIGGER_MODE` (approval by default); the authenticated API acts as
/// asked.
fn start_options(
    state: &AppState,
    vocabulary: Vocabulary,
    dry_run: bool,
) -> crate::pipeline::StartOptions {
    let compat = matches!(vocabulary, Vocabulary::Legacy);
    let mode = state.settings.compat_trigger_mode;
    crate::pipeline::StartOptions {
        dry_run: dry_run || (compat && mode == CompatTriggerMode::DryRun),
        approval: (compat && mode == CompatTriggerMode::Approval).then(|| {
            "triggered on the unauthenticated compatibility listener (COMPAT_TRIGGER_MODE=approval): a human approves before anything is written".to_string()
        }),
    }
}

fn duration_text(seconds: u64) -> String {
    format!("{}m{}s", seconds / 60, seconds % 60)
}

fn conflict(error: StartError) -> ApiError {
    match error {
        StartError::AlreadyActive(id) => ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("workflow {id} is already active for this target"),
        )
        .with_details(serde_json::json!({ "workflow_id": id })),
        StartError::Store(e) => e.into(),
    }
}

/// Stores a new incident and counts it under `layer`, its plan's root cause.
async fn record_incident(
    state: &AppState,
    incident: &Incident,
    layer: Layer,
) -> Result<(), ApiError> {
    state.store.insert_incident(incident).await?;
    state.metrics.count_incident(incident.source, layer);
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/remediation/trigger", tag = "remediation", security(("bearer" = [])),
    request_body(content = FlatTrigger, description = "The Go engine's flat shape, or the MCP server's nested one"),
    responses((status = 202, body = Triggered), (status = 409, description = "A workflow is already active for the target"), (status = 422)))]
pub async fn trigger(
    state: web::Data<AppState>,
    vocabulary: web::Data<Vocabulary>,
    body: JsonBody<Value>,
) -> Result<HttpResponse, ApiError> {
    let t = parse_trigger(body.into_inner())?;
    let options = start_options(&state, **vocabulary, t.dry_run);
    if matches!(**vocabulary, Vocabulary::Legacy) {
        // Token-less: bounded before anything is stored.
        state.compat_limit.admit_write(&state)?;
        if options.approval.is_some() {
            state.compat_limit.admit_held_trigger(&state).await?;
        }
    }
    let incident = t.incident(Utc::now());
    let mut plan = crate::plan::for_incident(&incident);
    record_incident(&state, &incident, plan.root_cause_layer).await?;
    let target = crate::plan::incident_target(&incident);
    let detection = state
        .pipeline
        .detect_method(&target, crate::pipeline::DETECTION_BUDGET)
        .await;
    let (deployment_method, detected, detail) = match &detection {
        Detection::Detected(method) => {
            state.pipeline.set_plan_channels(&mut plan, &target, method);
            (method.method.to_string(), true, method.evidence.clone())
        }
        Detection::Unknown(why) => ("unknown".to_string(), false, why.clone()),
    };
    let workflow = state
        .pipeline
        .start_with(&incident, WorkflowKind::Remediation, plan.clone(), &options)
        .await
        .map_err(conflict)?;
    Ok(HttpResponse::Accepted().json(Triggered {
        workflow_id: workflow.id,
        incident_id: incident.id,
        status: workflow.status.to_string(),
        deployment_method,
        deployment_method_detected: detected,
        deployment_method_detail: detail,
        estimated_duration: duration_text(plan.estimated_duration_seconds),
        plan: workflow.plan,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct CoordinationTriggered {
    pub workflow_id: String,
    pub incident_id: String,
    pub status: String,
    pub affected_layers: Vec<Layer>,
    pub root_cause_layer: Layer,
    pub estimated_steps: i64,
    pub plan: Option<Value>,
}

#[utoipa::path(post, path = "/api/v1/coordination/trigger", tag = "remediation", security(("bearer" = [])),
    request_body = CoordinationTrigger,
    responses((status = 202, body = CoordinationTriggered), (status = 409), (status = 422)))]
pub async fn coordination_trigger(
    state: web::Data<AppState>,
    body: JsonBody<CoordinationTrigger>,
) -> Result<HttpResponse, ApiError> {
    let coordination = Coordination::parse(body.into_inner())?;
    let plan = crate::plan::for_resources(&coordination.resources, &coordination.description);
    let incident = coordination.incident(Utc::now());
    record_incident(&state, &incident, plan.root_cause_layer).await?;
    let workflow: Workflow = state
        .pipeline
        .start(
            &incident,
            WorkflowKind::Coordination,
            plan.clone(),
            coordination.dry_run,
        )
        .await
        .map_err(conflict)?;
    Ok(HttpResponse::Accepted().json(CoordinationTriggered {
        workflow_id: workflow.id,
        incident_id: incident.id,
        status: workflow.status.to_string(),
        affected_layers: plan.affected_layers.clone(),
        root_cause_layer: plan.root_cause_layer,
        estimated_steps: plan.steps.len() as i64,
        plan: workflow.plan,
    }))
}
