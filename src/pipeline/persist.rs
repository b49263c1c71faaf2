//! Every step of a workflow is persisted before the next one. A write the store refuses is
//! retried; if the store keeps failing, the workflow is marked `failed` with the error, so its
//! target is not left locked by a workflow that can no longer record what it does.

use super::Pipeline;
use crate::store::StoreError;
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::{DateTime, Utc};
use std::time::Duration;

/// Writes of a workflow's progress tried before the workflow is failed.
const PERSIST_ATTEMPTS: u32 = 4;

impl Pipeline {
    /// Saves progress, retrying a failed write (the store may be busy for a moment). `false`
    /// when the workflow must stop: it was cancelled, or the store kept failing, in which case
    /// the workflow is marked `failed` with the error so its target is not left locked.
    pub(super) async fn persist(&self, workflow: &mut Workflow) -> bool {
        super::trace::log_new_steps(workflow);
        // Checked before every write: a replica that lost the lead stops where it is, writing
        // nothing (the new leader interrupts the workflow).
        if !self.leadership.is_leader() {
            tracing::warn!(workflow = %workflow.id, "no longer the leader: stopping without writing");
            return false;
        }
        let error = match self.write_with_retry(workflow).await {
            Ok(true) => return true,
            Ok(false) => {
                tracing::info!(workflow = %workflow.id, "cancelled: stopping at the step boundary");
                return false;
            }
            Err(error) => error,
        };
        tracing::error!(workflow = %workflow.id, %error, "cannot persist workflow progress: failing the workflow");
        let now = Utc::now();
        workflow.status = WorkflowStatus::Failed;
        workflow.error = Some(format!(
            "the store failed while persisting a step ({PERSIST_ATTEMPTS} attempts): {error}"
        ));
        workflow.finished_at = Some(now);
        match self.write_with_retry(workflow).await {
            Ok(true) => self.count_finished(workflow, now),
            Ok(false) => {}
            Err(error) => {
                // The target stays locked until the next start marks the workflow interrupted.
                tracing::error!(workflow = %workflow.id, %error, "cannot record the failure either");
            }
        }
        false
    }

    /// One write of the workflow, retried while the store fails (100 ms, 200 ms, … apart).
    async fn write_with_retry(&self, workflow: &mut Workflow) -> Result<bool, StoreError> {
        let mut pause = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            workflow.updated_at = Utc::now();
            match self.store.update_workflow(workflow).await {
                Err(error) if attempt < PERSIST_ATTEMPTS => {
                    tracing::warn!(workflow = %workflow.id, %error, attempt, "cannot persist workflow progress: retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Counts a workflow that reached a terminal status in the remediation metrics.
    pub(super) fn count_finished(&self, workflow: &Workflow, now: DateTime<Utc>) {
        self.metrics
            .remediations
            .with_label_values(&[workflow.mode.as_str(), workflow.status.as_str()])
            .inc();
        if let Some(started) = workflow.started_at {
            let took = (now - started).to_std().unwrap_or_default();
            self.metrics
                .remediation_duration
                .with_label_values(&[workflow.mode.as_str()])
                .observe(took.as_secs_f64());
            let healed = workflow.status == crate::workflow::WorkflowStatus::Succeeded
                && workflow.mode == crate::workflow::WorkflowMode::Live;
            if healed {
                let (layer, method) = healed_by(workflow);
                self.metrics
                    .time_to_heal
                    .with_label_values(&[layer, method])
                    .observe(took.as_secs_f64());
            }
        }
    }
}

/// The labels of a healed workflow's time to heal: its plan's root-cause layer and how the
/// first target climbed (the root cause's, lowest layer first) is deployed.
fn healed_by(workflow: &Workflow) -> (&str, &str) {
    let layer = workflow
        .plan
        .as_ref()
        .and_then(|p| p["root_cause_layer"].as_str())
        .unwrap_or("unknown");
    let method = workflow
        .steps
        .iter()
        .find_map(|s| s["deployment_method"].as_str())
        .unwrap_or("unknown");
    (layer, method)
}
