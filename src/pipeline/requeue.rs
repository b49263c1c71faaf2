//! After a pause is lifted: the alerts the pause held are judged again.

use super::Pipeline;
use crate::gate::Bucket;
use crate::store::{PageRequest, PageStart, StoreError, WorkflowFilter};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;

/// Whether the pause gate held this workflow (it was recorded as `cancelled`, not run).
fn held_by_pause(workflow: &Workflow) -> bool {
    workflow.status == WorkflowStatus::Cancelled
        && workflow.gate_decisions.iter().any(|d| {
            d.get("gate").and_then(|g| g.as_str()) == Some("pause")
                && d.get("outcome").and_then(|o| o.as_str()) == Some("block")
        })
}

impl Pipeline {
    /// After a pause is lifted: puts back on the queue every open alert incident whose latest
    /// workflow the pause held, so the gates judge it again now (buckets still paused are
    /// left alone). `bucket: None` is the global pause. Returns how many were queued.
    pub async fn requeue_held(&self, bucket: Option<&Bucket>) -> Result<usize, StoreError> {
        let pauses = self.store.list_pauses().await?;
        if pauses.iter().any(|p| p.namespace.is_none()) {
            return Ok(0);
        }
        let paused: Vec<Bucket> = pauses
            .iter()
            .filter_map(|p| p.namespace.as_deref().map(Bucket::from_pause_key))
            .collect();
        // Held workflows are cancelled ones; every page of them, newest first, not only the
        // newest 1 000 workflows of the cluster.
        let filter = WorkflowFilter {
            namespace: match bucket {
                Some(Bucket::Namespace(ns)) => Some(ns.clone()),
                _ => None,
            },
            statuses: vec![WorkflowStatus::Cancelled],
            ..Default::default()
        };
        let mut start = PageStart::Offset(0);
        let mut seen = std::collections::HashSet::new();
        let mut queued = 0;
        loop {
            let (page, _) = self
                .store
                .list_workflows(&filter, &PageRequest { limit: 500, start })
                .await?;
            for workflow in page.items {
                if !seen.insert(workflow.incident_id.clone()) || !held_by_pause(&workflow) {
                    continue;
                }
                if self
                    .requeue_if_still_held(&workflow, bucket, &paused)
                    .await?
                {
                    queued += 1;
                }
            }
            match page.next {
                Some(next) => start = next,
                None => break,
            }
        }
        Ok(queued)
    }

    /// Queues the alert incident of a pause-held `workflow` again, unless its bucket is still
    /// paused or it is outside `bucket`. Whether it was queued.
    async fn requeue_if_still_held(
        &self,
        workflow: &Workflow,
        bucket: Option<&Bucket>,
        paused: &[Bucket],
    ) -> Result<bool, StoreError> {
        let of = workflow.bucket();
        if bucket.is_some_and(|b| of.as_ref() != Some(b)) {
            return Ok(false);
        }
        if of.is_some_and(|b| paused.contains(&b)) {
            return Ok(false);
        }
        let incident = match self.store.get_incident(&workflow.incident_id).await {
            Ok(incident) => incident,
            Err(StoreError::NotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        };
        // Only when the held workflow is the incident's latest: a newer one already judged it.
        let latest = incident.workflow_ids.last() == Some(&workflow.id);
        if latest
            && incident.source == crate::incident::Source::Alertmanager
            && !incident.status.is_terminal()
        {
            self.store.enqueue(&incident.id, Utc::now()).await?;
            return Ok(true);
        }
        Ok(false)
    }
}
