//! How a live workflow ends: resolved once its checkpoints passed (the source alert has the
//! last word), not needed when no symptom was there, escalated to a human with what was tried.

use super::Pipeline;
use crate::incident::{IncidentStatus, Source};
use crate::store::IncidentChange;
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The state of the alert an incident came from, when verification passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceAlert {
    /// The incident did not come from an alert.
    None,
    Resolved,
    /// Still firing at the checkpoint's deadline.
    Firing,
}

impl SourceAlert {
    fn as_str(self) -> &'static str {
        match self {
            SourceAlert::None => "none",
            SourceAlert::Resolved => "resolved",
            SourceAlert::Firing => "firing",
        }
    }
}

impl Pipeline {
    /// Every ladder passed: waits for the source alert until `alert_deadline`, then succeeds.
    pub(super) async fn resolve(&self, mut workflow: Workflow, alert_deadline: Instant) {
        let alert = self
            .source_alert(&workflow.incident_id, alert_deadline)
            .await;
        if let Some(last) = workflow.steps.last_mut() {
            last["source_alert"] = json!(alert.as_str());
        }
        self.succeed(workflow, alert).await;
    }

    /// The symptom was not there: nothing was written. The incident keeps a note of it; an
    /// incident from a trigger (API, compatibility listener) is resolved by that evidence, one
    /// from an alert keeps following its alert (Alertmanager resolves it).
    pub(super) async fn not_needed(&self, mut workflow: Workflow, evidence: Vec<String>) {
        let seen = evidence.join("; ");
        workflow.error = None;
        let from_alert = match self.store.get_incident(&workflow.incident_id).await {
            Ok(incident) => incident.source == Source::Alertmanager,
            // Unknown: leave the status alone.
            Err(_) => true,
        };
        let change = IncidentChange {
            status: (!from_alert).then_some(IncidentStatus::Resolved),
            note: Some(format!(
                "workflow {}: not needed, the symptom was not observed ({seen}); nothing was changed",
                workflow.id
            )),
        };
        if let Err(error) = self
            .store
            .change_incident(&workflow.incident_id, change, Utc::now())
            .await
        {
            tracing::warn!(incident = %workflow.incident_id, %error, "cannot annotate the incident");
        }
        tracing::info!(workflow = %workflow.id, evidence = %seen, "symptom not observed: nothing to do");
        self.finish(workflow, WorkflowStatus::NotNeeded, None).await;
    }

    pub(super) async fn escalate(
        &self,
        workflow: Workflow,
        reason: String,
        needed: String,
        tried: Vec<String>,
    ) {
        let escalation =
            json!({"reason": reason, "channel": "human", "tried": tried, "needed": needed});
        self.finish(workflow, WorkflowStatus::Escalated, Some(escalation))
            .await;
    }

    /// Waits, until `deadline`, for the alert the incident came from to be resolved by
    /// Alertmanager (it records `resolved` notifications on the incident).
    async fn source_alert(&self, incident_id: &str, deadline: Instant) -> SourceAlert {
        let mut pause = Duration::from_millis(200);
        loop {
            match self.store.get_incident(incident_id).await {
                Ok(incident) if incident.source != Source::Alertmanager => {
                    return SourceAlert::None;
                }
                Ok(incident) if incident.status == IncidentStatus::Resolved => {
                    return SourceAlert::Resolved;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(incident = incident_id, %error, "cannot read the source alert's state");
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return SourceAlert::Firing;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Verification passed. The incident first: once the workflow reads `succeeded`, its
    /// incident is resolved, unless its source alert still fires (the alert has the last word:
    /// the incident resolves when Alertmanager says so). A dry run fixed nothing: its incident
    /// stays open.
    async fn succeed(&self, workflow: Workflow, alert: SourceAlert) {
        if workflow.mode == crate::workflow::WorkflowMode::Live {
            let change = match alert {
                SourceAlert::Firing => IncidentChange {
                    status: None,
                    note: Some(format!(
                        "workflow {}: verification passed, but the source alert still fires; the incident resolves when Alertmanager reports it resolved",
                        workflow.id
                    )),
                },
                _ => IncidentChange {
                    status: Some(IncidentStatus::Resolved),
                    note: Some(format!(
                        "resolved by workflow {}: verification passed{}",
                        workflow.id,
                        if alert == SourceAlert::Resolved {
                            ", source alert resolved"
                        } else {
                            ""
                        }
                    )),
                },
            };
            if let Err(error) = self
                .store
                .change_incident(&workflow.incident_id, change, Utc::now())
                .await
            {
                tracing::warn!(incident = %workflow.incident_id, %error, "cannot update the incident");
            }
        }
        self.finish(workflow, WorkflowStatus::Succeeded, None).await;
    }

    pub(super) async fn finish(
        &self,
        mut workflow: Workflow,
        status: WorkflowStatus,
        escalation: Option<Value>,
    ) {
        let now = Utc::now();
        workflow.status = status;
        workflow.finished_at = Some(now);
        workflow.escalation = escalation;
        if !self.persist(&mut workflow).await {
            return;
        }
        self.count_finished(&workflow, now);
        tracing::info!(workflow = %workflow.id, status = %status, "workflow finished");
    }
}
