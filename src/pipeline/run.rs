//! A live workflow: detect ownership, climb the ladder through the manual channel, verify
//! after each change, resolve or escalate. Every step is persisted before the next one.

use super::Pipeline;
use crate::detect::ownership::{DeploymentMethod, deployment_method};
use crate::execute::{ExecError, workload};
use crate::incident::IncidentStatus;
use crate::plan::{Action, Plan, Step};
use crate::store::IncidentChange;
use crate::verify::{self, Checkpoint};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;

/// What one rung did.
enum Rung {
    /// Acted (or inspected); `verify` is the workload to check afterwards.
    Done {
        detail: String,
        verify: Option<(String, String, String)>,
    },
    Failed(String),
    Escalate {
        reason: String,
        needed: String,
    },
}

const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// Counts a running workflow in `workflows_active` for as long as it lives, whatever path
/// `run` returns by.
struct Active(prometheus::IntGauge);

impl Active {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Active(gauge.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The top workload of an owner chain: `(kind, namespace, name)`.
fn top_workload(chain: &[Value]) -> Option<(String, String, String)> {
    let top = chain.last()?;
    let kind = top.get("kind")?.as_str()?;
    WORKLOADS.contains(&kind).then(|| {
        let text = |p: &str| {
            top.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        (
            kind.to_string(),
            text("/metadata/namespace"),
            text("/metadata/name"),
        )
    })
}

impl Pipeline {
    /// Counts one API operation in `cluster_requests_total`.
    fn count<T>(&self, verb: &str, result: &Result<T, ExecError>) {
        let outcome = if result.is_ok() { "success" } else { "error" };
        self.metrics
            .cluster_requests
            .with_label_values(&[verb, outcome])
            .inc();
    }

    pub(super) async fn run(self: Arc<Self>, mut workflow: Workflow, plan: Plan) {
        let Ok(_permit) = self.running.clone().acquire_owned().await else {
            return;
        };
        let Some(client) = self.client.clone() else {
            return;
        };
        let _active = Active::new(&self.metrics.workflows_active);
        let dry_run = workflow.mode == crate::workflow::WorkflowMode::DryRun;
        let started = Utc::now();
        workflow.status = WorkflowStatus::Running;
        workflow.started_at = Some(started);
        if !self.persist(&mut workflow).await {
            return;
        }
        let Some(first) = plan.steps.first() else {
            return self.finish(workflow, WorkflowStatus::Succeeded, None).await;
        };
        let target = first.target.clone();
        let namespace = target.namespace.clone().unwrap_or_default();
        // Ownership decides the channel: the manual channel never patches what ArgoCD, Helm or
        // an operator owns.
        let chain = workload::owner_chain(&client, &target.kind, &namespace, &target.name).await;
        self.count("get", &chain);
        let (method, workload) = match chain {
            Ok(chain) => (
                deployment_method(&chain, &self.guard.snapshot()),
                top_workload(&chain),
            ),
            Err(error) => {
                let reason = format!(
                    "cannot read {} {namespace}/{}: {error}",
                    target.kind, target.name
                );
                return self
                    .escalate(
                        workflow,
                        reason,
                        "check the target and the engine's RBAC".into(),
                        Vec::new(),
                    )
                    .await;
            }
        };
        workflow.steps.push(json!({
            "order": 0, "action": "detect", "outcome": "done", "at": Utc::now(),
            "detail": format!("deployed by {} ({:.2}): {}", method.method, method.confidence, method.evidence),
            "deployment_method": method.method,
        }));
        let mut tried: Vec<String> = Vec::new();
        for step in &plan.steps {
            if self.cancelled(&workflow.id).await {
                tracing::info!(workflow = %workflow.id, "cancelled: stopping at the step boundary");
                return;
            }
            let rung = self
                .rung(&client, dry_run, step, &method, workload.as_ref())
                .await;
            let (outcome, detail) = match &rung {
                Rung::Done { detail, .. } => ("done", detail.clone()),
                Rung::Failed(reason) => ("failed", reason.clone()),
                Rung::Escalate { reason, .. } => ("escalated", reason.clone()),
            };
            if step.action.mutates() || matches!(rung, Rung::Escalate { .. }) {
                let (reason, warning) = match (&rung, step.action) {
                    (Rung::Escalate { .. }, _) => ("RemediationEscalated", true),
                    (Rung::Failed(_), _) => ("RemediationStepFailed", true),
                    (_, Action::DeletePod) => ("RemediationPodDeleted", false),
                    (_, Action::RolloutRestart) => ("RemediationRolloutRestarted", false),
                    (_, Action::Rollback) => ("RemediationRolledBack", false),
                    _ => ("RemediationStep", false),
                };
                let ns = step.target.namespace.as_deref().unwrap_or_default();
                let message = format!(
                    "workflow {}: {}: {detail}",
                    workflow.id,
                    step.action.as_str()
                );
                workload::record_event(
                    &client,
                    (&step.target.kind, ns, &step.target.name),
                    reason,
                    &message,
                    warning,
                )
                .await;
            }
            workflow.steps.push(json!({
                "order": step.order, "action": step.action.as_str(), "target": step.target,
                "outcome": outcome, "detail": detail, "at": Utc::now(),
            }));
            match rung {
                Rung::Escalate { reason, needed } => {
                    return self.escalate(workflow, reason, needed, tried).await;
                }
                Rung::Failed(reason) => {
                    tried.push(format!("{}: {reason}", step.action.as_str()));
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                }
                Rung::Done {
                    detail,
                    verify: None,
                } => {
                    if step.action.mutates() {
                        tried.push(format!("{}: {detail}", step.action.as_str()));
                    }
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                }
                Rung::Done {
                    detail,
                    verify: Some(_),
                } if dry_run => {
                    // The API server accepted the change; nothing changed, nothing to verify.
                    tried.push(format!("{}: {detail}", step.action.as_str()));
                    return self.finish(workflow, WorkflowStatus::Succeeded, None).await;
                }
                Rung::Done {
                    detail,
                    verify: Some((kind, ns, name)),
                } => {
                    tried.push(format!("{}: {detail}", step.action.as_str()));
                    workflow.status = WorkflowStatus::Verifying;
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                    let checked =
                        verify::rollout(&client, &kind, &ns, &name, self.checkpoint_timeout).await;
                    self.count("get", &checked);
                    let (passed, detail) = match checked {
                        Ok(Checkpoint::Passed(d)) => (true, d),
                        Ok(Checkpoint::TimedOut(d)) => (
                            false,
                            format!(
                                "not healthy within {}s: {d}",
                                self.checkpoint_timeout.as_secs()
                            ),
                        ),
                        Err(e) => (false, format!("cannot verify: {e}")),
                    };
                    workflow.steps.push(json!({
                        "order": step.order, "action": "verify", "outcome": if passed { "passed" } else { "failed" },
                        "detail": detail, "at": Utc::now(),
                    }));
                    if passed {
                        return self.finish(workflow, WorkflowStatus::Succeeded, None).await;
                    }
                    tried.push(format!("verify after {}: {detail}", step.action.as_str()));
                    workflow.status = WorkflowStatus::Running;
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                }
            }
        }
        self.escalate(
            workflow,
            "the ladder is exhausted".into(),
            "a human must look at the evidence".into(),
            tried,
        )
        .await;
    }

    async fn rung(
        &self,
        client: &kube::Client,
        dry_run: bool,
        step: &Step,
        method: &DeploymentMethod,
        workload: Option<&(String, String, String)>,
    ) -> Rung {
        let target = &step.target;
        let ns = target.namespace.clone().unwrap_or_default();
        let owned_elsewhere = method.method != "manual";
        let result = match step.action {
            Action::InspectEvents => Ok(Rung::Done {
                detail: format!("deployment method {}: {}", method.method, method.evidence),
                verify: None,
            }),
            // Deleting a pod is not drift: its controller (whoever owns it) recreates it.
            Action::DeletePod if target.kind == "Pod" => {
                workload::delete_pod(client, &ns, &target.name, dry_run)
                    .await
                    .map(|detail| Rung::Done {
                        detail,
                        verify: workload.cloned(),
                    })
            }
            Action::DeletePod => Ok(Rung::Failed(format!("{} is not a pod", target.kind))),
            Action::RolloutRestart if owned_elsewhere => Ok(Rung::Escalate {
                reason: format!(
                    "{} {}/{} is managed by {} ({}); the manual channel never patches it, and the {} channel is not available in this build",
                    target.kind,
                    ns,
                    target.name,
                    method.method,
                    method.owner.as_deref().unwrap_or("unknown owner"),
                    method.method
                ),
                needed: match method.method {
                    "argocd" => format!(
                        "restart it through ArgoCD (Application {}), or fix it in Git",
                        method.owner.as_deref().unwrap_or("?")
                    ),
                    "helm" => format!(
                        "roll back or upgrade the Helm release {}",
                        method.owner.as_deref().unwrap_or("?")
                    ),
                    _ => "let its operator reconcile it, or fix the custom resource".into(),
                },
            }),
            Action::RolloutRestart => match workload {
                Some((kind, wns, name)) => {
                    workload::rollout_restart(client, kind, wns, name, Utc::now(), dry_run)
                        .await
                        .map(|detail| Rung::Done {
                            detail,
                            verify: Some((kind.clone(), wns.clone(), name.clone())),
                        })
                }
                None => Ok(Rung::Failed(format!(
                    "{} {}/{} has no restartable workload",
                    target.kind, ns, target.name
                ))),
            },
            Action::Rollback if owned_elsewhere => Ok(Rung::Escalate {
                reason: format!(
                    "{} {}/{} is managed by {} ({}); a rollback must go through it, and that channel is not available in this build",
                    target.kind, ns, target.name, method.method, method.owner.as_deref().unwrap_or("unknown owner")
                ),
                needed: "roll back through the owner (ArgoCD: sync to the previous Git revision; Helm: helm rollback)".into(),
            }),
            Action::Rollback => match workload {
                Some((kind, wns, name)) if kind == "Deployment" => workload::rollback_deployment(client, wns, name, dry_run)
                    .await
                    .map(|detail| Rung::Done { detail, verify: Some((kind.clone(), wns.clone(), name.clone())) }),
                _ => Ok(Rung::Failed(format!("no Deployment to roll back for {} {}/{}", target.kind, ns, target.name))),
            },
            Action::Cordon | Action::Drain | Action::RestartOperatorPods => {
                Ok(Rung::Escalate {
                    reason: format!("{} is not available in this build", step.action.as_str()),
                    needed: format!(
                        "{} {}/{} by hand, or through its owner",
                        step.action.as_str().replace('_', " "),
                        ns,
                        target.name
                    ),
                })
            }
            Action::Escalate => Ok(Rung::Escalate {
                reason: "the ladder is exhausted".into(),
                needed: "a human must look at the evidence".into(),
            }),
        };
        // Count the operations that reached the API server.
        let verb = match step.action {
            Action::DeletePod => Some("delete"),
            Action::RolloutRestart | Action::Rollback => Some("patch"),
            _ => None,
        };
        if let Some(verb) = verb
            && matches!(result, Ok(Rung::Done { .. }) | Err(_))
        {
            self.count(verb, &result);
        }
        result.unwrap_or_else(|error: ExecError| Rung::Failed(error.to_string()))
    }

    async fn cancelled(&self, id: &str) -> bool {
        matches!(self.store.get_workflow(id).await, Ok(w) if w.status == WorkflowStatus::Cancelled)
    }

    /// Saves progress; `false` when the store is gone (the workflow is then interrupted at the
    /// next start).
    async fn persist(&self, workflow: &mut Workflow) -> bool {
        workflow.updated_at = Utc::now();
        match self.store.update_workflow(workflow).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::info!(workflow = %workflow.id, "cancelled: stopping at the step boundary");
                false
            }
            Err(error) => {
                tracing::error!(workflow = %workflow.id, %error, "cannot persist workflow progress");
                false
            }
        }
    }

    async fn escalate(
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

    async fn finish(
        &self,
        mut workflow: Workflow,
        status: WorkflowStatus,
        escalation: Option<Value>,
    ) {
        let now = Utc::now();
        // The incident first: once the workflow reads `succeeded`, its incident is resolved.
        // A dry run fixed nothing: its incident stays open.
        if status == WorkflowStatus::Succeeded
            && workflow.mode == crate::workflow::WorkflowMode::Live
        {
            let change = IncidentChange {
                status: Some(IncidentStatus::Resolved),
                note: Some(format!(
                    "resolved by workflow {}: verification passed",
                    workflow.id
                )),
            };
            if let Err(error) = self
                .store
                .change_incident(&workflow.incident_id, change, now)
                .await
            {
                tracing::warn!(incident = %workflow.incident_id, %error, "cannot resolve the incident");
            }
        }
        workflow.status = status;
        workflow.finished_at = Some(now);
        workflow.escalation = escalation;
        if !self.persist(&mut workflow).await {
            return;
        }
        self.metrics
            .remediations
            .with_label_values(&[workflow.mode.as_str(), status.as_str()])
            .inc();
        if let Some(started) = workflow.started_at {
            let took = (now - started).to_std().unwrap_or_default();
            self.metrics
                .remediation_duration
                .with_label_values(&[workflow.mode.as_str()])
                .observe(took.as_secs_f64());
        }
        tracing::info!(workflow = %workflow.id, status = %status, "workflow finished");
    }

    /// At startup: a live workflow that was running when the engine stopped is marked
    /// `interrupted` (its target may be half-remediated; a human or a new alert decides).
    pub async fn interrupt_orphans(&self) -> Result<usize, crate::store::StoreError> {
        use crate::store::{PageRequest, PageStart, WorkflowFilter};
        let filter = WorkflowFilter {
            statuses: vec![
                WorkflowStatus::Pending,
                WorkflowStatus::Running,
                WorkflowStatus::Verifying,
            ],
            ..Default::default()
        };
        let (page, _) = self
            .store
            .list_workflows(
                &filter,
                &PageRequest {
                    limit: 1000,
                    start: PageStart::Offset(0),
                },
            )
            .await?;
        let mut count = 0;
        for mut workflow in page
            .items
            .into_iter()
            .filter(|w| w.mode == crate::workflow::WorkflowMode::Live)
        {
            workflow.status = WorkflowStatus::Interrupted;
            workflow.error = Some(
                "the engine stopped while this workflow ran; check the target and trigger again"
                    .into(),
            );
            workflow.finished_at = Some(Utc::now());
            self.store.update_workflow(&workflow).await?;
            count += 1;
        }
        Ok(count)
    }
}
