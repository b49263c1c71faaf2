//! The leader's queue consumer: new actionable alerts become workflows, workflows stored
//! pending by any replica start, each live workflow runs once per process.

use super::{Pipeline, StartError};
use crate::plan::Plan;
use crate::store::StoreError;
use crate::workflow::{Workflow, WorkflowKind};
use std::sync::Arc;
use std::time::Duration;

impl Pipeline {
    /// On the leader, every `interval`: consumes the incident queue (new actionable alerts) and
    /// starts workflows stored pending by any replica (triggers, approvals).
    pub fn spawn_queue_consumer(self: Arc<Self>, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if !self.leadership.is_leader() {
                    continue;
                }
                if let Err(error) = self.drain_queue().await {
                    tracing::warn!(%error, "pipeline queue: will retry");
                }
                if let Err(error) = self.pick_up_pending().await {
                    tracing::warn!(%error, "pending workflows: will retry");
                }
            }
        });
    }

    /// Runs `workflow` in the background, once per process, and only on the leader (elsewhere
    /// it stays pending for the leader). `false` when it was not started here.
    pub(super) fn spawn_run(self: &Arc<Self>, workflow: Workflow, plan: Plan) -> bool {
        if !self.leadership.is_leader() {
            return false;
        }
        let id = workflow.id.clone();
        {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if !in_flight.insert(id.clone()) {
                return false;
            }
        }
        let pipeline = self.clone();
        let span = super::trace::WorkflowSpan::of(&workflow);
        let run = span.around(pipeline.clone().run(workflow, plan));
        tokio::spawn(async move {
            run.await;
            pipeline
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&id);
        });
        true
    }

    pub(super) fn is_in_flight(&self, id: &str) -> bool {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(id)
    }

    /// Starts a workflow for every queued incident; an incident leaves the queue once handled.
    pub async fn drain_queue(self: &Arc<Self>) -> Result<usize, StoreError> {
        let queued = self.store.queue_entries(100).await?;
        for entry in &queued {
            let incident = match self.store.get_incident(&entry.incident_id).await {
                Ok(incident) => incident,
                Err(StoreError::NotFound(_)) => {
                    self.store.dequeue(entry).await?;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if !incident.status.is_terminal() {
                match self
                    .start(
                        &incident,
                        WorkflowKind::Remediation,
                        self.plan_with_ml(&incident).await,
                        false,
                    )
                    .await
                {
                    Ok(_) | Err(StartError::AlreadyActive(_)) => {}
                    Err(StartError::Store(error)) => return Err(error),
                }
            }
            // Only this generation: a requeue meanwhile (a pause lifted) is handled next round.
            self.store.dequeue(entry).await?;
        }
        Ok(queued.len())
    }
}
