//! `POST /api/v1/remediation/trigger` (one target) and `POST /api/v1/coordination/trigger`
//! (several resources, one multi-layer workflow).

use super::AppState;
use super::json::JsonBody;
use super::validate::{
    bounded, invalid, is_dns_label, kubernetes_kind, kubernetes_name, required_text,
};
use super::views::Vocabulary;
use crate::config::CompatTriggerMode;
use crate::detect::Layer;
use crate::error::ApiError;
use crate::incident::{Incident, Severity, Source, Target};
use crate::pipeline::{Detection, StartError};
use crate::plan::{Resource, StepTarget};
use crate::workflow::{Workflow, WorkflowKind};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Kinds without a namespace.
pub use crate::plan::CLUSTER_SCOPED;

const KNOWN_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Service",
    "Node",
    "ClusterOperator",
    "MachineConfigPool",
    "PersistentVolumeClaim",
    "PersistentVolume",
];

/// `pod` → `Pod`, `deployment` → `Deployment`; unknown kinds are kept as sent.
pub fn normalize_kind(kind: &str) -> String {
    KNOWN_KINDS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(kind.trim()))
        .map(|k| k.to_string())
        .unwrap_or_else(|| kind.trim().to_string())
}

/// The Go engine's and the MCP server's issue words → our issue types.
pub fn normalize_issue(issue: &str) -> String {
    let lower = issue.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match lower.as_str() {
        "crashloopbackoff" | "crashloop" | "crash_loop" | "pod_crash" | "crash_loop_back_off" => {
            "crash_loop".into()
        }
        "oomkilled" | "oom_killed" | "oom_kill" | "oom" => "oom".into(),
        "imagepullbackoff" | "errimagepull" | "image_pull_backoff" | "image_pull" => {
            "image_pull".into()
        }
        "notready" | "not_ready" | "pod_not_ready" => "pod_not_ready".into(),
        "nodenotready" | "node_not_ready" => "node_not_ready".into(),
        _ => lower,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlatTrigger {
    pub namespace: Option<String>,
    pub resource_type: String,
    pub resource_name: String,
    pub issue_type: String,
    pub severity: Option<String>,
    pub metadata: Option<BTreeMap<String, Value>>,
    pub incident_id: Option<String>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRef {
    #[serde(rename = "type")]
    pub issue_type: String,
    pub description: Option<String>,
    pub severity: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NestedTrigger {
    pub incident_id: Option<String>,
    pub namespace: Option<String>,
    pub resource: ResourceRef,
    pub issue: IssueRef,
    pub dry_run: Option<bool>,
}

/// One target, in either shape.
struct Trigger {
    external_id: Option<String>,
    namespace: Option<String>,
    kind: String,
    name: String,
    issue_type: String,
    description: String,
    severity: Severity,
    dry_run: bool,
}

fn severity(text: Option<&str>) -> Result<Severity, ApiError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Severity::Medium),
        Some(s) => s
            .to_ascii_lowercase()
            .parse()
            .map_err(|why| invalid("severity", why)),
    }
}

fn namespace_for(
    kind: &str,
    namespace: Option<String>,
    field: &str,
) -> Result<Option<String>, ApiError> {
    if CLUSTER_SCOPED.contains(&kind) {
        // A namespace sent with a Node or a ClusterOperator means nothing: ignored.
        return Ok(None);
    }
    match namespace.filter(|ns| !ns.is_empty()) {
        Some(ns) if is_dns_label(&ns) => Ok(Some(ns)),
        Some(ns) => Err(invalid(field, format!("{ns:?} is not a namespace name"))),
        None if CLUSTER_SCOPED.contains(&kind) => Ok(None),
        None => Err(invalid(
            field,
            format!("is required for the namespaced kind {kind}"),
        )),
    }
}

fn parse_trigger(body: Value) -> Result<Trigger, ApiError> {
    let nested = body.get("resource").is_some() || body.get("issue").is_some();
    let trigger = if nested {
        let t: NestedTrigger = super::json::parse(&serde_json::to_vec(&body).unwrap_or_default())?;
        let kind = normalize_kind(&kubernetes_kind("resource.kind", t.resource.kind)?);
        Trigger {
            external_id: t
                .incident_id
                .map(|id| bounded("incident_id", id, 256))
                .transpose()?,
            namespace: namespace_for(&kind, t.namespace, "namespace")?,
            name: kubernetes_name("resource.name", t.resource.name)?,
            kind,
            issue_type: normalize_issue(&required_text(
                "issue.type",
                Some(t.issue.issue_type),
                128,
            )?),
            description: bounded(
                "issue.description",
                t.issue.description.unwrap_or_default(),
                8192,
            )?,
            severity: severity(t.issue.severity.as_deref())?,
            dry_run: t.dry_run.unwrap_or(false),
        }
    } else {
        let t: FlatTrigger = super::json::parse(&serde_json::to_vec(&body).unwrap_or_default())?;
        let kind = normalize_kind(&kubernetes_kind("resource_type", t.resource_type)?);
        Trigger {
            external_id: t
                .incident_id
                .map(|id| bounded("incident_id", id, 256))
                .transpose()?,
            namespace: namespace_for(&kind, t.namespace, "namespace")?,
            name: kubernetes_name("resource_name", t.resource_name)?,
            kind,
            issue_type: normalize_issue(&required_text("issue_type", Some(t.issue_type), 128)?),
            description: t
                .metadata
                .map(|m| serde_json::to_string(&m).unwrap_or_default())
                .unwrap_or_default(),
            severity: severity(t.severity.as_deref())?,
            dry_run: t.dry_run.unwrap_or(false),
        }
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
    let now = Utc::now();
    let title = format!("{} on {}/{}", t.issue_type, t.kind, t.name);
    let mut incident = Incident::new(Source::Api, title, t.severity, now);
    incident.namespace = t.namespace.clone();
    incident.target = Some(Target {
        kind: t.kind.clone(),
        name: t.name.clone(),
    });
    incident.issue_type = t.issue_type.clone();
    incident.description = t.description;
    incident.external_id = t.external_id;
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoordinationResource {
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub issue: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CoordinationTrigger {
    pub incident_id: Option<String>,
    pub description: String,
    pub resources: Vec<CoordinationResource>,
    pub dry_run: Option<bool>,
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
    let body = body.into_inner();
    if body.resources.is_empty() || body.resources.len() > 50 {
        return Err(invalid("resources", "between 1 and 50 resources"));
    }
    let description = bounded("description", body.description, 8192)?;
    let mut resources = Vec::new();
    for (i, r) in body.resources.into_iter().enumerate() {
        let kind = normalize_kind(&kubernetes_kind(&format!("resources[{i}].kind"), r.kind)?);
        let namespace = namespace_for(&kind, r.namespace, &format!("resources[{i}].namespace"))?;
        let name = kubernetes_name(&format!("resources[{i}].name"), r.name)?;
        let issue = normalize_issue(r.issue.as_deref().unwrap_or("unknown"));
        resources.push(Resource {
            target: StepTarget {
                kind,
                namespace,
                name,
            },
            issue_type: issue,
        });
    }
    let plan = crate::plan::for_resources(&resources, &description);
    let now = Utc::now();
    let Resource {
        target: first,
        issue_type: first_issue,
    } = &resources[0];
    let mut incident = Incident::new(
        Source::Api,
        truncate_title(&description),
        Severity::High,
        now,
    );
    incident.description = description;
    incident.namespace = first.namespace.clone();
    incident.target = Some(Target {
        kind: first.kind.clone(),
        name: first.name.clone(),
    });
    incident.issue_type = first_issue.clone();
    incident.external_id = body.incident_id;
    incident.affected_resources = resources
        .iter()
        .map(|Resource { target: t, .. }| {
            format!(
                "{}/{}/{}",
                t.namespace.as_deref().unwrap_or(""),
                t.kind,
                t.name
            )
        })
        .collect();
    record_incident(&state, &incident, plan.root_cause_layer).await?;
    let workflow: Workflow = state
        .pipeline
        .start(
            &incident,
            WorkflowKind::Coordination,
            plan.clone(),
            body.dry_run.unwrap_or(false),
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

fn truncate_title(text: &str) -> String {
    let title: String = text.chars().take(256).collect();
    if title.trim().is_empty() {
        "multi-layer incident".into()
    } else {
        title
    }
}
