//! A live workflow: for each target, lowest layer first, detect ownership, climb its ladder
//! through the right channel, verify after each change (a checkpoint per layer), then resolve
//! or escalate. Every step is persisted before the next one.

use super::Pipeline;
use super::evidence::{Evidence, Observed};
use super::rung::{Rung, top_workload};
use crate::cluster::Cluster;
use crate::detect::ownership::{DeploymentMethod, deployment_method};
use crate::execute::ExecError;
use crate::incident::IncidentStatus;
use crate::incident::Source;
use crate::plan::{Action, Plan, Step, StepTarget};
use crate::store::{IncidentChange, PageRequest, PageStart, WorkflowFilter};
use crate::verify::{self, Checkpoint};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
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

/// How a target's ladder ended.
enum LadderEnd {
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

/// How a ladder starts.
enum Opened {
    /// Its target is deployed by this method (with this top workload); climb it.
    Climb(DeploymentMethod, Option<crate::cluster::Workload>),
    /// The symptom is not there (what was seen instead): nothing to do on this target.
    Skip(String),
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

/// How a target is deployed, its top workload `(kind, namespace, name)`, and its owner chain
/// (the target object first, the top workload last).
type Ownership = (
    DeploymentMethod,
    Option<(String, String, String)>,
    Vec<Value>,
);

/// What a ladder's steps share.
#[derive(Clone, Copy)]
struct LadderContext<'a> {
    cluster: &'a dyn Cluster,
    method: &'a DeploymentMethod,
    workload: Option<&'a (String, String, String)>,
    dry_run: bool,
}

/// The plan's steps grouped by target, in order (a coordination plan has one ladder per
/// resource, lowest layer first).
fn ladders(steps: &[Step]) -> Vec<&[Step]> {
    let mut groups: Vec<&[Step]> = Vec::new();
    let mut start = 0;
    for i in 1..=steps.len() {
        if i == steps.len() || steps[i].target != steps[start].target {
            groups.push(&steps[start..i]);
            start = i;
        }
    }
    groups
}

/// Why a target's name or namespace cannot be sent to the API server, if it cannot (the API
/// validates trigger names; alerts and stored plans are checked here too).
pub(super) fn invalid_target(target: &StepTarget) -> Option<String> {
    use crate::api::validate::{is_dns_label, is_dns_subdomain};
    if target.kind.is_empty() {
        // An incident that names no object: its "name" is its title, never sent as a name.
        return None;
    }
    let kind_ok = target.kind.chars().all(|c| c.is_ascii_alphanumeric());
    let namespace_ok = target.namespace.as_deref().is_none_or(is_dns_label);
    (!kind_ok || !namespace_ok || !is_dns_subdomain(&target.name)).then(|| {
        format!(
            "{} {}/{} is not a valid Kubernetes kind, namespace and name: nothing was sent to the API server",
            target.kind,
            target.namespace.as_deref().unwrap_or_default(),
            target.name
        )
    })
}

/// The escalation of a plan whose target cannot be sent to the API server: no step that
/// calls the API runs, a human looks at the alert instead.
pub(super) fn not_a_kubernetes_target(why: String) -> (String, String) {
    (
        why,
        "a human must look at the alert: its target is not a Kubernetes object the engine can act on"
            .into(),
    )
}

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

impl Pipeline {
    /// Counts one API operation in `cluster_requests_total`.
    pub(super) fn count<T>(&self, verb: &str, result: &Result<T, ExecError>) {
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
        let Some(cluster) = self.cluster.clone() else {
            return;
        };
        let cluster = cluster.as_ref();
        // The term that runs it: a later leader interrupts it if this one dies or stalls.
        let Some(term) = self.leadership.current_term() else {
            return;
        };
        let _active = Active::new(&self.metrics.workflows_active);
        let dry_run = workflow.mode == crate::workflow::WorkflowMode::DryRun;
        workflow.executor = Some(term);
        workflow.status = WorkflowStatus::Running;
        workflow.started_at = Some(Utc::now());
        if !self.persist(&mut workflow).await {
            return;
        }
        if let Some(bad) = plan.steps.iter().find_map(|s| invalid_target(&s.target)) {
            // Never let a name that is not a Kubernetes name reach an API path, but an alert
            // about such a target (`instance="10.0.0.1:9100"`) still reaches a human.
            let (reason, needed) = not_a_kubernetes_target(bad);
            return self.escalate(workflow, reason, needed, Vec::new()).await;
        }
        let mut tried: Vec<String> = Vec::new();
        // When the last checkpoint's time runs out: the source alert is awaited until then.
        let mut alert_deadline = Instant::now();
        // Ladders climbed, and ladders skipped because their symptom was not observed.
        let (mut climbed, mut skipped) = (0, Vec::new());
        // The plan as shown: each target's channels once its deployment method is known.
        let mut shown = plan.clone();
        // One ladder per target, lowest layer first (the plan's order); the next layer starts
        // only once this one passed its checkpoint.
        for ladder in ladders(&plan.steps) {
            let first = &ladder[0];
            let opened = self
                .open_ladder(cluster, &mut workflow, ladder, &mut shown, dry_run)
                .await;
            let (method, workload) = match opened {
                Ok(Opened::Climb(method, workload)) => (method, workload),
                Ok(Opened::Skip(seen)) => {
                    skipped.push(seen);
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                    continue;
                }
                Err(reason) => {
                    let needed = "check the target and the engine's RBAC".to_string();
                    return self.escalate(workflow, reason, needed, tried).await;
                }
            };
            climbed += 1;
            let context = LadderContext {
                cluster,
                method: &method,
                workload: workload.as_ref(),
                dry_run,
            };
            match self
                .climb(&mut workflow, ladder, &context, &mut tried)
                .await
            {
                LadderEnd::Passed { detail, deadline } => {
                    alert_deadline = deadline;
                    workflow.steps.push(json!({
                        "order": ladder.last().map(|s| s.order).unwrap_or(0), "action": "checkpoint",
                        "layer": first.layer, "target": first.target, "outcome": "passed",
                        "detail": format!("{} layer healthy: {detail}", first.layer.as_str()), "at": Utc::now(),
                    }));
                    if !self.persist(&mut workflow).await {
                        return;
                    }
                }
                // The API server accepted the change; nothing changed, nothing to verify.
                LadderEnd::DryRun => {}
                LadderEnd::Escalate { reason, needed } => {
                    return self.escalate(workflow, reason, needed, tried).await;
                }
                LadderEnd::Stopped => return,
            }
        }
        if dry_run {
            return self.finish(workflow, WorkflowStatus::Succeeded, None).await;
        }
        if climbed == 0 && !skipped.is_empty() {
            return self.not_needed(workflow, skipped).await;
        }
        self.resolve(workflow, alert_deadline).await;
    }

    /// Every ladder passed: waits for the source alert until `alert_deadline`, then succeeds.
    async fn resolve(&self, mut workflow: Workflow, alert_deadline: Instant) {
        let alert = self
            .source_alert(&workflow.incident_id, alert_deadline)
            .await;
        if let Some(last) = workflow.steps.last_mut() {
            last["source_alert"] = json!(alert.as_str());
        }
        self.succeed(workflow, alert).await;
    }

    /// Detects how the ladder's target is deployed and records it; then, before a live ladder
    /// writes, confirms the symptom (evidence first). `Err`: why the ladder cannot start.
    async fn open_ladder(
        &self,
        cluster: &dyn Cluster,
        workflow: &mut Workflow,
        ladder: &[Step],
        shown: &mut Plan,
        dry_run: bool,
    ) -> Result<Opened, String> {
        let first = &ladder[0];
        let (method, workload, chain) = self.ownership(cluster, &first.target).await?;
        workflow.steps.push(json!({
            "order": 0, "action": "detect", "outcome": "done", "at": Utc::now(),
            "target": first.target, "layer": first.layer,
            "detail": format!("deployed by {} ({:.2}): {}", method.method, method.confidence, method.evidence),
            "deployment_method": method.method,
        }));
        self.set_plan_channels(shown, &first.target, &method);
        workflow.plan = serde_json::to_value(&*shown).ok();
        if dry_run || !ladder.iter().any(|s| s.action.mutates()) {
            return Ok(Opened::Climb(method, workload));
        }
        let seen = Observed {
            target: &first.target,
            object: chain.first(),
            workload_object: workload.as_ref().and(chain.last()),
            workload: workload.as_ref(),
            method: &method,
        };
        let (outcome, detail, present) = match self.observe(cluster, &seen).await {
            Ok(Evidence::Present(seen)) => ("observed", seen, true),
            Ok(Evidence::Absent(seen)) => ("not_observed", seen, false),
            Err(error) => {
                return Err(format!(
                    "cannot confirm the symptom on {} {}: {error}",
                    first.target.kind, first.target.name
                ));
            }
        };
        workflow.evidence.push(json!({
            "target": first.target, "layer": first.layer, "issue_type": shown.issue_type,
            "symptom": outcome, "detail": detail, "at": Utc::now(),
        }));
        Ok(if present {
            Opened::Climb(method, workload)
        } else {
            Opened::Skip(detail)
        })
    }

    /// How the target is deployed, its top workload, and the objects read on the way (the
    /// target first). Cluster infrastructure (nodes, ClusterOperators, pools) has no deployment
    /// method.
    async fn ownership(
        &self,
        cluster: &dyn Cluster,
        target: &StepTarget,
    ) -> Result<Ownership, String> {
        if target.namespace.is_none() {
            return Ok((
                super::method::cluster_infrastructure(target),
                None,
                Vec::new(),
            ));
        }
        let namespace = target.namespace.clone().unwrap_or_default();
        let chain = cluster
            .owner_chain((&target.kind, &namespace, &target.name), None, &|_| {})
            .await;
        self.count("get", &chain);
        match chain {
            Ok(chain) => Ok((
                deployment_method(&chain, &self.guard.snapshot()),
                top_workload(&chain),
                chain,
            )),
            Err(error) => Err(format!(
                "cannot read {} {namespace}/{}: {error}",
                target.kind, target.name
            )),
        }
    }

    /// Climbs one target's ladder until a step passes its checkpoint, the ladder escalates, or
    /// the workflow is cancelled.
    async fn climb(
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

    /// The symptom was not there: nothing was written. The incident keeps a note of it; an
    /// incident from a trigger (API, compatibility listener) is resolved by that evidence, one
    /// from an alert keeps following its alert (Alertmanager resolves it).
    async fn not_needed(&self, mut workflow: Workflow, evidence: Vec<String>) {
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

    async fn finish(
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
