//! How incidents and workflows look on the wire.
//!
//! The incident view carries our fields and the fields the MCP server decodes (its contract,
//! §4 row 1: `priority` integer, `target` string, `action_type`, `tags`, …). On the
//! compatibility listener statuses use the Go engine's words (`completed`, `failed`).

use crate::incident::{Incident, Note, Target};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Which status vocabulary to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    Current,
    /// The Go engine's (compatibility listener).
    Legacy,
}

#[derive(Serialize, ToSchema)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    /// 1 (critical) … 5 (info).
    pub priority: i64,
    pub status: String,
    pub source: String,
    pub namespace: Option<String>,
    /// `Kind/name` (a string, as the Go engine's clients expect).
    pub target: Option<String>,
    /// The same target as an object.
    pub resource: Option<Target>,
    pub issue_type: String,
    /// The first planned action, `none` before any workflow.
    pub action_type: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `key=value` of every label.
    pub tags: Vec<String>,
    pub parameters: BTreeMap<String, Value>,
    pub fingerprint: Option<String>,
    pub external_id: Option<String>,
    pub correlation_id: Option<String>,
    pub created_by: Option<String>,
    pub confidence: Option<f64>,
    pub affected_resources: Vec<String>,
    pub notes: Vec<Note>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many times the source reported it.
    pub occurrences: i64,
    pub workflow_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
}

impl IncidentView {
    pub fn new(incident: Incident, vocabulary: Vocabulary) -> Self {
        let status = match vocabulary {
            Vocabulary::Current => incident.status.as_str(),
            Vocabulary::Legacy => incident.status.legacy_name(),
        };
        let completed_at = incident
            .status
            .is_terminal()
            .then_some(incident.resolved_at.unwrap_or(incident.updated_at));
        let duration_seconds =
            completed_at.map(|end| (end - incident.first_seen).num_milliseconds() as f64 / 1000.0);
        let mut parameters = BTreeMap::new();
        parameters.insert(
            "issue_type".to_string(),
            Value::from(incident.issue_type.clone()),
        );
        if let Some(ns) = &incident.namespace {
            parameters.insert("namespace".to_string(), Value::from(ns.clone()));
        }
        IncidentView {
            priority: incident.severity.priority(),
            severity: incident.severity.to_string(),
            status: status.to_string(),
            source: incident.source.to_string(),
            target: incident.target.as_ref().map(Target::display),
            resource: incident.target,
            action_type: "none".into(),
            tags: incident
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            parameters,
            started_at: incident.first_seen,
            completed_at,
            duration_seconds,
            id: incident.id,
            title: incident.title,
            description: incident.description,
            namespace: incident.namespace,
            issue_type: incident.issue_type,
            labels: incident.labels,
            annotations: incident.annotations,
            fingerprint: incident.fingerprint,
            external_id: incident.external_id,
            correlation_id: incident.correlation_id,
            created_by: incident.created_by,
            confidence: incident.confidence,
            affected_resources: incident.affected_resources,
            notes: incident.notes,
            first_seen: incident.first_seen,
            last_seen: incident.last_seen,
            occurrences: incident.occurrences,
            workflow_ids: incident.workflow_ids,
            created_at: incident.created_at,
            updated_at: incident.updated_at,
            resolved_at: incident.resolved_at,
        }
    }
}

/// A workflow as returned (the stored record; the type documents the fields).
pub type WorkflowView = Workflow;
