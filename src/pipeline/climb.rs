//! Climbing one target's ladder: each rung through the channel `route` picked, recorded
//! (step, Kubernetes Event, what was tried), then its checkpoint; a change that did not help
//! is taken back before the next rung.

use super::Pipeline;
use super::rung::Rung;
use crate::cluster::{Cluster, Workload};
use crate::detect::ownership::DeploymentMethod;
use crate::plan::{Action, Step};
use crate::verify::{self, Checkpoint};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use serde_json::json;
use std::time::Instant;

/// How a target's ladder ended.
pub(super) enum LadderEnd {
    /// A checkpoint passed; `deadline` is when its time would have run out.
    Passed {
        detail: String,
        deadline: Instant,
    },
    /// A dry run reached a step that would change the cluster (accepted with `dryRun=All`).
    DryRun,
    Escalate {
        reason: String,
        needed: String,
    },
    /// Cancelled, or the store is gone.
    Stopped,
}

/// What one rung came to.
enum Performed {
    /// It acted (or failed, `check: None`); the checkpoint to run, and how to take it back.
    Acted {
        check: Option<verify::Check>,
        undo: Vec<super::rung::Undo>,
    },
    Escalate {
        reason: String,
        needed: String,
    },
}

/// What a ladder's steps share.
#[derive(Clone, Copy)]
pub(super) struct LadderContext<'a> {
    pub cluster: &'a dyn Cluster,
    pub method: &'a DeploymentMethod,
    pub workload: Option<&'a Workload>,
    pub dry_run: bool,
}

impl Pipeline {
    /// Climbs one target's ladder until a step passes its checkpoint, the ladder escalates, or
    /// the workflow is cancelled.
    pub(super) async fn climb(
        &self,
        workflow: &mut Workflow,
        ladder: &[Step],
        context: &LadderContext<'_>,
        tried: &mut Vec<String>,
    ) -> LadderEnd {
        for step in ladder {
            if self.cancelled(&workflow.id).await {
                tracing::info!(workflow = %workflow.id, "cancelled: stopping at the step boundary");
                return LadderEnd::Stopped;
            }
            let (check, undo) = match self.perform(workflow, step, context, tried).await {
                Performed::Acted { check, undo } => (check, undo),
                Performed::Escalate { reason, needed } => {
                    return LadderEnd::Escalate { reason, needed };
                }
            };
            let Some(check) = check else {
                if !self.persist(workflow).await {
                    return LadderEnd::Stopped;
                }
                continue;
            };
            if context.dry_run {
                return LadderEnd::DryRun;
            }
            if let Some(end) = self
                .checkpoint(workflow, step, &check, context, tried)
                .await
            {
                return end;
            }
            if !undo.is_empty() {
                // The change did not help: take it back before the next rung.
                for (channel, done) in self.undo(context.cluster, &undo).await {
                    workflow.steps.push(json!({
                        "order": step.order, "action": "undo", "layer": step.layer,
                        "channel": channel.as_str(),
                        "outcome": if done.starts_with("undo failed") { "failed" } else { "done" },
                        "detail": done, "at": Utc::now(),
                    }));
                    tried.push(done);
                }
            }
            workflow.status = WorkflowStatus::Running;
            if !self.persist(workflow).await {
                return LadderEnd::Stopped;
            }
        }
        LadderEnd::Escalate {
            reason: "the ladder is exhausted".into(),
            needed: "a human must look at the evidence".into(),
        }
    }

    /// Performs one rung and records it (the step, an Event on the target, what was tried).
    async fn perform(
        &self,
        workflow: &mut Workflow,
        step: &Step,
        context: &LadderContext<'_>,
        tried: &mut Vec<String>,
    ) -> Performed {
        let LadderContext {
            cluster,
            method,
            workload,
            dry_run,
        } = *context;
        let carried = self
            .rung(cluster, dry_run, step, method, workload, workflow)
            .await;
        let channel = carried.recorded_channel();
        let rung = carried.rung;
        let (lease, undo) = match &rung {
            Rung::Reversible { lease, undo, .. } => (lease.clone(), undo.clone()),
            _ => (None, Vec::new()),
        };
        let (outcome, detail) = match &rung {
            Rung::Done { detail, .. } | Rung::Reversible { detail, .. } => ("done", detail.clone()),
            Rung::Failed(reason) => ("failed", reason.clone()),
            Rung::Escalate { reason, .. } => ("escalated", reason.clone()),
        };
        if step.action.mutates() || matches!(rung, Rung::Escalate { .. }) {
            self.record_step_event(cluster, workflow, step, &rung, &detail)
                .await;
        }
        workflow.steps.push(json!({
            "order": step.order, "action": step.action.as_str(), "target": step.target,
            "layer": step.layer,
            "channel": channel.as_str(),
            "outcome": outcome, "detail": detail, "at": Utc::now(),
        }));
        if let (Some(lease), Some(last)) = (lease, workflow.steps.last_mut()) {
            last["lease"] = lease;
        }
        match rung {
            Rung::Escalate { reason, needed } => Performed::Escalate { reason, needed },
            Rung::Failed(reason) => {
                tried.push(format!("{}: {reason}", step.action.as_str()));
                Performed::Acted { check: None, undo }
            }
            Rung::Done { detail, verify } | Rung::Reversible { detail, verify, .. } => {
                if step.action.mutates() {
                    tried.push(format!("{}: {detail}", step.action.as_str()));
                }
                Performed::Acted {
                    check: verify,
                    undo,
                }
            }
        }
    }

    /// Runs the step's checkpoint and records it. `Some`: the ladder ends (passed, or the
    /// workflow must stop); `None`: it failed, and the ladder climbs on.
    async fn checkpoint(
        &self,
        workflow: &mut Workflow,
        step: &Step,
        check: &verify::Check,
        context: &LadderContext<'_>,
        tried: &mut Vec<String>,
    ) -> Option<LadderEnd> {
        let cluster = context.cluster;
        workflow.status = WorkflowStatus::Verifying;
        if !self.persist(workflow).await {
            return Some(LadderEnd::Stopped);
        }
        let began = Instant::now();
        let deadline = began + self.checkpoint_timeout;
        let checked = verify::check(cluster, check, self.checkpoint_timeout).await;
        self.count("get", &checked);
        let timeout = self.checkpoint_timeout.as_secs();
        let (passed, detail) = match checked {
            Ok(Checkpoint::Passed(d)) => (true, d),
            Ok(Checkpoint::Failed(evidence)) => (
                false,
                format!(
                    "failed after {:.1}s of {timeout}s, the evidence is conclusive: {evidence}",
                    began.elapsed().as_secs_f64(),
                ),
            ),
            Ok(Checkpoint::TimedOut(d)) => (false, format!("not healthy within {timeout}s: {d}")),
            Err(e) => (false, format!("cannot verify: {e}")),
        };
        workflow.steps.push(json!({
            "order": step.order, "action": "verify", "layer": step.layer,
            "outcome": if passed { "passed" } else { "failed" }, "detail": detail, "at": Utc::now(),
        }));
        if !passed {
            tried.push(format!("verify after {}: {detail}", step.action.as_str()));
            return None;
        }
        let detail = match check {
            verify::Check::NodeDrained(node) => format!(
                "{detail}; {}",
                cluster.uncordon_if_ready(node, context.dry_run).await
            ),
            _ => detail,
        };
        Some(LadderEnd::Passed { detail, deadline })
    }

    /// A Kubernetes Event on the step's target, so `kubectl describe` shows what happened.
    async fn record_step_event(
        &self,
        cluster: &dyn Cluster,
        workflow: &Workflow,
        step: &Step,
        rung: &Rung,
        detail: &str,
    ) {
        let reason = match (rung, step.action) {
            (Rung::Escalate { .. }, _) => "RemediationEscalated",
            (Rung::Failed(_), _) => "RemediationStepFailed",
            (_, Action::DeletePod) => "RemediationPodDeleted",
            (_, Action::RolloutRestart) => "RemediationRolloutRestarted",
            (_, Action::Rollback) => "RemediationRolledBack",
            (_, Action::ScaleUp) => "RemediationScaledUp",
            (_, Action::Cordon) => "RemediationNodeCordoned",
            (_, Action::Drain) => "RemediationNodeDrained",
            (_, Action::RestartOperatorPods) => "RemediationOperatorRestarted",
            _ => "RemediationStep",
        };
        let warning = matches!(rung, Rung::Escalate { .. } | Rung::Failed(_));
        let ns = step.target.namespace.as_deref().unwrap_or_default();
        let message = format!(
            "workflow {}: {}: {detail}",
            workflow.id,
            step.action.as_str()
        );
        cluster
            .record_event(
                (&step.target.kind, ns, &step.target.name),
                reason,
                &message,
                warning,
            )
            .await;
    }

    async fn cancelled(&self, id: &str) -> bool {
        matches!(self.store.get_workflow(id).await, Ok(w) if w.status == WorkflowStatus::Cancelled)
    }
}
