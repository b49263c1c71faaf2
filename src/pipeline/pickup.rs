//! Workflows this process did not start: those an earlier term left running (interrupted) and
//! those stored pending by any replica (picked up by the leader).

use super::Pipeline;
use crate::store::{PageRequest, PageStart, WorkflowFilter};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use std::sync::Arc;

impl Pipeline {
    /// When this replica starts a term (at startup with one replica): every workflow that was
    /// executing under an earlier term and is not running in this process is marked
    /// `interrupted`, with the step it was in (its target may be half-remediated; a human or a
    /// new alert decides). Pending workflows that never started are left for `pick_up_pending`.
    pub async fn interrupt_orphans(&self) -> Result<usize, crate::store::StoreError> {
        let filter = WorkflowFilter {
            statuses: vec![
                WorkflowStatus::Pending,
                WorkflowStatus::Running,
                WorkflowStatus::Verifying,
            ],
            ..Default::default()
        };
        let mut count = 0;
        for mut workflow in self.all_workflows(&filter).await? {
            let never_started = workflow.status == WorkflowStatus::Pending
                && workflow.executor.is_none()
                && workflow.steps.is_empty();
            let dry_pending = workflow.status == WorkflowStatus::Pending
                && workflow.mode != crate::workflow::WorkflowMode::Live;
            if never_started || dry_pending || self.is_in_flight(&workflow.id) {
                continue;
            }
            let last = workflow
                .steps
                .last()
                .and_then(|s| s.get("action"))
                .and_then(|a| a.as_str())
                .unwrap_or("before its first step");
            let step = if workflow.status == WorkflowStatus::Verifying {
                format!("verify after {last}")
            } else {
                last.to_string()
            };
            let by = match &workflow.executor {
                Some(term) => format!("{} (term {})", term.identity, term.transitions),
                None => "an earlier run".into(),
            };
            workflow.status = WorkflowStatus::Interrupted;
            workflow.error = Some(format!(
                "the engine stopped while this workflow ran (executed by {by}, during step {step}); check the target and trigger again"
            ));
            workflow.finished_at = Some(Utc::now());
            if self.store.update_workflow(&workflow).await? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// On the leader: starts the workflows stored pending (a trigger or an approval on any
    /// replica) that nobody runs yet. Returns how many it started.
    pub async fn pick_up_pending(self: &Arc<Self>) -> Result<usize, crate::store::StoreError> {
        let filter = WorkflowFilter {
            statuses: vec![WorkflowStatus::Pending],
            ..Default::default()
        };
        let mut started = 0;
        for workflow in self.all_workflows(&filter).await? {
            if workflow.executor.is_some()
                || !workflow.steps.is_empty()
                || self.is_in_flight(&workflow.id)
            {
                continue;
            }
            let Some(plan) = super::stored_plan(&workflow) else {
                continue;
            };
            tracing::info!(workflow = %workflow.id, "picking up a pending workflow");
            if self.spawn_run(workflow, plan) {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Every page of a workflow list, oldest pages included.
    async fn all_workflows(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<Workflow>, crate::store::StoreError> {
        let mut start = PageStart::Offset(0);
        let mut all = Vec::new();
        loop {
            let (page, _) = self
                .store
                .list_workflows(filter, &PageRequest { limit: 500, start })
                .await?;
            all.extend(page.items);
            match page.next {
                Some(next) => start = next,
                None => return Ok(all),
            }
        }
    }
}
