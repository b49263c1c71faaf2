//! Workflows: the remediation of one incident, and the human-in-the-loop transitions.

use crate::incident::{new_id, string_enum};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;

string_enum!(
    /// Workflow states (SPEC §5.5). `not_needed`: the symptom the workflow was triggered
    /// for was not observed on the target, so nothing was written.
    WorkflowStatus {
        Pending => "pending",
        AwaitingApproval => "awaiting_approval",
        Running => "running",
        Verifying => "verifying",
        Succeeded => "succeeded",
        Failed => "failed",
        Escalated => "escalated",
        Cancelled => "cancelled",
        Interrupted => "interrupted",
        NotNeeded => "not_needed",
    }
);

impl WorkflowStatus {
    pub fn is_terminal(self) -> bool {
        use WorkflowStatus::*;
        matches!(
            self,
            Succeeded | Failed | Escalated | Cancelled | Interrupted | NotNeeded
        )
    }
}

string_enum!(
    /// Whether steps really change the cluster.
    WorkflowMode {
        Live => "live",
        DryRun => "dry_run",
    }
);

string_enum!(
    /// A single-target remediation, or a multi-layer coordination (`/coordination/*`).
    WorkflowKind {
        Remediation => "remediation",
        Coordination => "coordination",
    }
);

/// What a person asks of a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanAction {
    Approve,
    Reject,
    Cancel,
}

impl HumanAction {
    /// The state after the action, or why it is not allowed from `from`.
    pub fn apply(self, from: WorkflowStatus) -> Result<WorkflowStatus, String> {
        use WorkflowStatus::*;
        match (self, from) {
            (HumanAction::Approve, AwaitingApproval) => Ok(Pending),
            (HumanAction::Reject, AwaitingApproval) => Ok(Cancelled),
            (HumanAction::Approve | HumanAction::Reject, other) => Err(format!(
                "only a workflow awaiting approval can be approved or rejected; this one is {other}"
            )),
            (HumanAction::Cancel, other) if other.is_terminal() => {
                Err(format!("the workflow already ended ({other})"))
            }
            (HumanAction::Cancel, _) => Ok(Cancelled),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HumanAction::Approve => "approve",
            HumanAction::Reject => "reject",
            HumanAction::Cancel => "cancel",
        }
    }
}

/// One workflow, as stored and returned. `plan`, `steps` and `gate_decisions` are data the
/// pipeline writes; they are kept as JSON here so the store does not depend on the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub id: String,
    pub incident_id: String,
    pub kind: WorkflowKind,
    pub status: WorkflowStatus,
    pub mode: WorkflowMode,
    /// Namespace of the target (copied from the incident, for filtering).
    pub namespace: Option<String>,
    /// `namespace/Kind/name` of the target: one active workflow per target.
    #[serde(default)]
    pub target_key: Option<String>,
    /// When escalated: `{reason, channel, tried[], needed}`.
    #[serde(default)]
    pub escalation: Option<Value>,
    pub plan: Option<Value>,
    pub steps: Vec<Value>,
    pub gate_decisions: Vec<Value>,
    /// What a live workflow saw on each target before its first write:
    /// `{target, layer, issue_type, symptom: observed|not_observed, detail, at}`.
    #[serde(default)]
    pub evidence: Vec<Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The leader (identity and Lease transition count) that started executing it; a new
    /// leader interrupts running workflows of earlier terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<crate::leader::Term>,
}

impl Workflow {
    pub fn new(
        incident_id: &str,
        namespace: Option<String>,
        kind: WorkflowKind,
        mode: WorkflowMode,
        now: DateTime<Utc>,
    ) -> Self {
        Workflow {
            id: new_id("wf"),
            incident_id: incident_id.to_string(),
            kind,
            status: WorkflowStatus::Pending,
            mode,
            namespace,
            target_key: None,
            escalation: None,
            plan: None,
            steps: Vec::new(),
            gate_decisions: Vec::new(),
            evidence: Vec::new(),
            error: None,
            created_at: now,
            updated_at: now,
            started_at: None,
            finished_at: None,
            executor: None,
        }
    }
}

impl Workflow {
    /// Whether it spends the storm budget: a live workflow that was let through to run. Dry
    /// runs, workflows waiting for (or refused) approval, held or storm-escalated ones (never
    /// started) and those that found nothing to do (`not_needed`) do not.
    pub fn spends_budget(&self) -> bool {
        self.mode == WorkflowMode::Live
            && match self.status {
                WorkflowStatus::AwaitingApproval | WorkflowStatus::NotNeeded => false,
                WorkflowStatus::Pending | WorkflowStatus::Running | WorkflowStatus::Verifying => {
                    true
                }
                _ => self.started_at.is_some(),
            }
    }

    /// Its storm-budget bucket: from its target, or its namespace for older records.
    pub fn bucket(&self) -> Option<crate::gate::Bucket> {
        self.target_key
            .as_deref()
            .and_then(crate::gate::Bucket::of_target_key)
            .or_else(|| self.namespace.clone().map(crate::gate::Bucket::Namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_moves_an_awaiting_workflow_to_pending() {
        assert_eq!(
            HumanAction::Approve.apply(WorkflowStatus::AwaitingApproval),
            Ok(WorkflowStatus::Pending)
        );
        assert_eq!(
            HumanAction::Reject.apply(WorkflowStatus::AwaitingApproval),
            Ok(WorkflowStatus::Cancelled)
        );
    }

    #[test]
    fn only_awaiting_workflows_can_be_approved_or_rejected() {
        for status in WorkflowStatus::ALL {
            if *status != WorkflowStatus::AwaitingApproval {
                assert!(HumanAction::Approve.apply(*status).is_err(), "{status}");
                assert!(HumanAction::Reject.apply(*status).is_err(), "{status}");
            }
        }
    }

    #[test]
    fn ended_workflows_cannot_be_cancelled() {
        for status in WorkflowStatus::ALL {
            assert_eq!(
                HumanAction::Cancel.apply(*status).is_err(),
                status.is_terminal(),
                "{status}"
            );
        }
    }
}
