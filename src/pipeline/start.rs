//! Starting a workflow: the gates judge the plan against the store's state (pauses, the
//! target's history, the storm budget), the verdict is recorded, and a live workflow is handed
//! to the runner.

use super::*;

impl Pipeline {
    /// What the gates look at for a trigger on `key`, from targeted store queries (pauses,
    /// the target's history, the budget spent in the window): the cost does not grow with
    /// the number of workflows in the store.
    async fn context(
        &self,
        key: &str,
        options: &StartOptions,
        now: DateTime<Utc>,
    ) -> Result<GateContext, StoreError> {
        let bucket = Bucket::of_target_key(key);
        let pauses = self.store.list_pauses().await?;
        let history = self.store.target_history(key).await?;
        let spent = self.budget_spent(now).await?;
        let bucket_key = bucket.as_ref().map(Bucket::pause_key);
        Ok(GateContext {
            global_pause: pauses.iter().any(|p| p.namespace.is_none()),
            bucket_paused: bucket_key.is_some() && pauses.iter().any(|p| p.namespace == bucket_key),
            dry_run_requested: options.dry_run,
            detached: self.detached(),
            active_workflow: history.active_workflow,
            failed_attempts: history.failed_attempts,
            last_failed_at: history.last_failed_at,
            bucket_workflows_in_window: spent
                .iter()
                .filter(|(of, _)| bucket_key.is_some() && *of == bucket_key)
                .map(|(_, n)| n)
                .sum(),
            cluster_workflows_in_window: spent.iter().map(|(_, n)| n).sum(),
            budget: Some(self.budget),
            approval_required: self.approval.clone(),
            approval_forced: options.approval.clone(),
            bucket,
        })
    }

    /// Plans, gates and records a workflow for an incident already in the store.
    pub async fn start(
        self: &Arc<Self>,
        incident: &Incident,
        kind: WorkflowKind,
        plan: Plan,
        dry_run: bool,
    ) -> Result<Workflow, StartError> {
        let options = StartOptions {
            dry_run,
            approval: None,
        };
        self.start_with(incident, kind, plan, &options).await
    }

    /// `start`, with the options of the trigger's origin.
    pub async fn start_with(
        self: &Arc<Self>,
        incident: &Incident,
        kind: WorkflowKind,
        plan: Plan,
        options: &StartOptions,
    ) -> Result<Workflow, StartError> {
        let dry_run = options.dry_run;
        let now = Utc::now();
        let target = plan
            .steps
            .first()
            .map(|s| s.target.clone())
            .unwrap_or_else(|| incident_target(incident));
        let key = target_key(&target);
        let ctx = self.context(&key, options, now).await?;
        let (decisions, verdict) = gate(&plan, &ctx, now);
        for d in &decisions {
            self.metrics
                .gate_decisions
                .with_label_values(&[d.gate.as_str(), d.outcome.as_str()])
                .inc();
        }
        if let Verdict::Hold(_) = &verdict
            && let Some(active) = &ctx.active_workflow
        {
            return Err(StartError::AlreadyActive(active.clone()));
        }
        let mut workflow = Workflow::new(
            &incident.id,
            incident.namespace.clone(),
            kind,
            WorkflowMode::DryRun,
            now,
        );
        workflow.target_key = Some(key);
        workflow.gate_decisions = decisions
            .iter()
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect();
        workflow.plan = serde_json::to_value(&plan).ok();
        self.apply_verdict(&mut workflow, verdict, &plan, &target, dry_run, now)
            .await?;
        match self.store.insert_workflow(&workflow).await {
            Err(StoreError::Conflict(_)) => {
                // Lost a race with another start for the same target (the store is the lock).
                let key = workflow.target_key.clone().unwrap_or_default();
                let now_ctx = self.context(&key, options, now).await?;
                let active = now_ctx
                    .active_workflow
                    .unwrap_or_else(|| "(just started)".into());
                return Err(StartError::AlreadyActive(active));
            }
            other => other?,
        }
        // Runs in the background once stored; the caller gets the pending workflow.
        // On a follower it stays pending until the leader picks it up (`pick_up_pending`).
        if self.cluster.is_some()
            && workflow.status == WorkflowStatus::Pending
            && workflow.steps.is_empty()
        {
            self.spawn_run(workflow.clone(), plan.clone());
        }
        if workflow.status.is_terminal() {
            self.metrics
                .remediations
                .with_label_values(&[workflow.mode.as_str(), workflow.status.as_str()])
                .inc();
            let took = (Utc::now() - now).to_std().unwrap_or_default();
            self.metrics
                .remediation_duration
                .with_label_values(&[workflow.mode.as_str()])
                .observe(took.as_secs_f64());
        }
        tracing::info!(workflow = %workflow.id, incident = %incident.id, target = ?workflow.target_key,
            layer = plan.root_cause_layer.as_str(), status = %workflow.status, "workflow recorded");
        Ok(workflow)
    }

    /// Records the gates' verdict on the new `workflow` (a dry run when detached is recorded
    /// from its plan here; a storm pauses its bucket).
    async fn apply_verdict(
        &self,
        workflow: &mut Workflow,
        verdict: Verdict,
        plan: &Plan,
        target: &StepTarget,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match verdict {
            Verdict::Hold(reason) => {
                workflow.status = WorkflowStatus::Cancelled;
                workflow.error = Some(format!("not run: {reason}"));
                workflow.finished_at = Some(now);
            }
            Verdict::Escalate(reason) => self.storm(workflow, reason, target, now).await?,
            Verdict::AwaitApproval => {
                workflow.status = WorkflowStatus::AwaitingApproval;
                if !dry_run && !self.detached() {
                    workflow.mode = WorkflowMode::Live;
                }
            }
            // Detached: plan and record only.
            Verdict::Run { dry_run: true } if self.detached() => self.dry_run(workflow, plan, now),
            // Attached dry run: the runner sends every write with dryRun=All.
            Verdict::Run { dry_run: true } => workflow.mode = WorkflowMode::DryRun,
            Verdict::Run { dry_run: false } => workflow.mode = WorkflowMode::Live,
        }
        Ok(())
    }

    /// The storm budget is spent: the workflow escalates and its bucket (never everything) is
    /// paused until a human resumes it.
    async fn storm(
        &self,
        workflow: &mut Workflow,
        reason: String,
        target: &StepTarget,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        workflow.status = WorkflowStatus::Escalated;
        workflow.finished_at = Some(now);
        // A target without a bucket spent the cluster budget: nothing to pause, the budget
        // frees itself as its window passes.
        let bucket = Bucket::of(&target.kind, target.namespace.as_deref());
        let needed = match &bucket {
            Some(bucket) => format!(
                "check why so many workflows start at once; resume with {}",
                bucket.resume_call()
            ),
            None => format!(
                "check why so many workflows start at once; the cluster budget frees itself within {} min (POST /api/v1/pause stops all remediation)",
                self.budget.window.num_minutes()
            ),
        };
        workflow.escalation = Some(json!({
            "reason": reason, "channel": "human", "tried": [],
            "needed": needed,
            "paused": bucket.as_ref().map(Bucket::label),
        }));
        if let Some(bucket) = bucket {
            self.store
                .set_pause(&Pause {
                    namespace: Some(bucket.pause_key()),
                    reason: Some(format!("storm budget: {reason}")),
                    since: now,
                })
                .await?;
        }
        Ok(())
    }

    /// Records what each step would do, from the plan alone: nothing is sent to a cluster
    /// (detached: a workflow as it starts, or once approved).
    pub(super) fn dry_run(&self, workflow: &mut Workflow, plan: &Plan, now: DateTime<Utc>) {
        let why = if self.detached() {
            "detached (no cluster)"
        } else {
            "dry run requested"
        };
        workflow.started_at = Some(now);
        if let Some(bad) = plan
            .steps
            .iter()
            .find_map(|s| run::invalid_target(&s.target))
        {
            // What a live run would do: nothing is planned against a name that is not a
            // Kubernetes name, a human is told.
            let (reason, needed) = run::not_a_kubernetes_target(bad);
            workflow.status = WorkflowStatus::Escalated;
            workflow.escalation =
                Some(json!({"reason": reason, "channel": "human", "tried": [], "needed": needed}));
            workflow.finished_at = Some(now);
            workflow.updated_at = now;
            return;
        }
        workflow.steps = plan
            .steps
            .iter()
            .map(|step| {
                json!({
                    "order": step.order,
                    "action": step.action.as_str(),
                    "target": step.target,
                    "channel": step.channel,
                    "outcome": "dry_run",
                    "detail": format!("would {} ({}); not executed: {why}", step.action.as_str().replace('_', " "), step.expected_effect),
                    "at": now,
                })
            })
            .collect();
        workflow.status = WorkflowStatus::Succeeded;
        workflow.finished_at = Some(now);
        workflow.updated_at = now;
    }
}
