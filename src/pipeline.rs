//! The one place where the stages are chained (SPEC §5):
//! incident → detect → plan → gate → execute → verify → (escalate | resolve).
//!
//! Attached to a cluster, a live workflow runs in the background (`run.rs`): the manual channel
//! acts, checkpoints verify, the ladder climbs or escalates. Detached, or asked for a dry run,
//! each step is recorded with what it would do and nothing is written to the cluster. Each
//! transition is persisted before it is reported.

mod budget;
mod climb;
mod evidence;
mod inspect;
#[cfg(test)]
mod ladders;
mod lease;
mod method;
mod outcome;
mod owners;
mod persist;
mod pickup;
mod route;
mod run;
mod rung;
mod scale;
mod symptom;
#[cfg(test)]
mod tests;

use crate::cluster::SharedCluster;
use crate::detect::{Layer, LayerFinding, Signal, diagnose};
use crate::gate::{Bucket, GateContext, StormBudget, Verdict, gate};
use crate::incident::Incident;
use crate::metrics::Metrics;
use crate::plan::{Plan, StepTarget, plan};
use crate::store::{PageRequest, PageStart, Pause, Store, StoreError, WorkflowFilter};
use crate::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
pub use budget::{BucketUsage, BudgetUsage};
use chrono::{DateTime, Utc};
pub use method::{DETECTION_BUDGET, Detection};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Workflow states that hold the target (one active workflow per target).
pub const ACTIVE: &[WorkflowStatus] = &[
    WorkflowStatus::Pending,
    WorkflowStatus::AwaitingApproval,
    WorkflowStatus::Running,
    WorkflowStatus::Verifying,
];

/// Live workflows that run at once.
pub const MAX_RUNNING: usize = 4;

/// Why a workflow was not started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("workflow {0} is already active for this target")]
    AlreadyActive(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Pipeline {
    store: Arc<dyn Store>,
    metrics: Metrics,
    /// `None`: detached, every workflow is a dry run.
    cluster: Option<SharedCluster>,
    guard: crate::guard::SharedView,
    budget: StormBudget,
    /// How long a workload checkpoint may take (SPEC §5.5: within 2 minutes by default).
    checkpoint_timeout: Duration,
    /// Live workflows running at once.
    running: Arc<tokio::sync::Semaphore>,
    /// Actions that need a human's approval.
    approval: std::collections::HashSet<crate::plan::Action>,
    /// ArgoCD's control-plane namespaces (where an Application named without its namespace
    /// lives).
    argocd_namespaces: Vec<String>,
    /// Limits of the node and Helm channels.
    channels: crate::config::ChannelSettings,
    /// The anomaly-detector refines layer detection when configured.
    models: Arc<crate::ml::Models>,
    /// Serialises the node budget check and the cordon (`MAX_UNAVAILABLE_NODES`).
    node_budget: tokio::sync::Mutex<()>,
    /// Serialises lease publications, so a stale read never overwrites a newer one.
    lease_publish: tokio::sync::Mutex<()>,
    /// Whether this replica executes (only the elected leader does).
    leadership: crate::leader::Leadership,
    /// Workflows this process is running now (a new term leaves them alone; the pick-up loop
    /// does not start them twice).
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// `namespace/Kind/name`.
pub fn target_key(target: &StepTarget) -> String {
    format!(
        "{}/{}/{}",
        target.namespace.as_deref().unwrap_or(""),
        target.kind,
        target.name
    )
}

/// How a workflow is started (beyond its plan).
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The caller asked for a dry run.
    pub dry_run: bool,
    /// Every step waits for `POST /approve`, with this reason (unless it is a dry run).
    pub approval: Option<String>,
}

/// Whether the pause gate held this workflow (it was recorded as `cancelled`, not run).
fn held_by_pause(workflow: &Workflow) -> bool {
    workflow.status == WorkflowStatus::Cancelled
        && workflow.gate_decisions.iter().any(|d| {
            d.get("gate").and_then(|g| g.as_str()) == Some("pause")
                && d.get("outcome").and_then(|o| o.as_str()) == Some("block")
        })
}

/// The step target of an incident (its object, or the incident itself when it names none).
pub fn incident_target(incident: &Incident) -> StepTarget {
    let (kind, name) = match &incident.target {
        Some(t) => (t.kind.clone(), t.name.clone()),
        None => (String::new(), incident.title.clone()),
    };
    StepTarget {
        namespace: incident
            .namespace
            .clone()
            .filter(|_| !crate::plan::is_cluster_scoped(&kind)),
        kind,
        name,
    }
}

/// Layer detection (SPEC §5.1) of one incident: its affected layers and the root cause.
fn diagnose_incident(incident: &Incident, target: &StepTarget) -> (Vec<LayerFinding>, Layer) {
    let text = format!(
        "{} {} {}",
        incident.issue_type, incident.title, incident.description
    );
    let signal = Signal {
        kind: &target.kind,
        namespace: incident.namespace.as_deref(),
        alertname: incident.labels.get("alertname").map(String::as_str),
        text: &text,
    };
    diagnose(&[signal])
}

/// The layer an incident is counted under in `incidents_total`: the root cause its plan starts
/// from (keyword detection, known when the incident is created).
pub fn incident_layer(incident: &Incident) -> Layer {
    diagnose_incident(incident, &incident_target(incident)).1
}

/// The plan for one incident.
pub fn plan_for(incident: &Incident) -> Plan {
    let target = incident_target(incident);
    let (layers, root) = diagnose_incident(incident, &target);
    plan(&incident.issue_type, target, &layers, root)
}

/// The plan a workflow was stored with (`None` when it has none or it no longer parses).
fn stored_plan(workflow: &Workflow) -> Option<Plan> {
    serde_json::from_value(workflow.plan.clone()?).ok()
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Metrics,
        cluster: Option<SharedCluster>,
        guard: crate::guard::SharedView,
        checkpoint_timeout: Duration,
    ) -> Self {
        Pipeline {
            store,
            metrics,
            cluster,
            guard,
            budget: StormBudget::default(),
            checkpoint_timeout,
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
            approval: Default::default(),
            argocd_namespaces: Vec::new(),
            models: Default::default(),
            node_budget: tokio::sync::Mutex::new(()),
            lease_publish: tokio::sync::Mutex::new(()),
            leadership: crate::leader::Leadership::single("engine"),
            in_flight: Default::default(),
            channels: crate::config::ChannelSettings {
                drain_timeout: Duration::from_secs(300),
                max_unavailable_nodes: 1,
                helm_bin: None,
                kubeconfig: None,
                leased_actions: Vec::new(),
                lease_ttl: Duration::from_secs(900),
            },
        }
    }

    /// Executes only while `leadership` says this replica leads.
    pub fn with_leadership(mut self, leadership: crate::leader::Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    pub fn leadership(&self) -> &crate::leader::Leadership {
        &self.leadership
    }

    /// Asks the anomaly-detector for each queued incident's layer.
    pub fn with_models(mut self, models: Arc<crate::ml::Models>) -> Self {
        self.models = models;
        self
    }

    /// The plan for a queued incident: keyword detection, refined by the anomaly-detector when
    /// one is configured and confident enough (its outcome counted in
    /// `ml_layer_detection_total`).
    pub async fn plan_with_ml(&self, incident: &Incident) -> Plan {
        let keyword = plan_for(incident);
        let features = json!({
            "kind": incident.target.as_ref().map(|t| t.kind.as_str()).unwrap_or_default(),
            "namespace": incident.namespace,
            "alertname": incident.labels.get("alertname"),
            "issue_type": incident.issue_type,
            "text": format!("{} {}", incident.title, incident.description),
        });
        let Some(verdict) = self.models.classify_layer(features).await else {
            return keyword;
        };
        self.metrics
            .ml_layer_detection
            .with_label_values(&[verdict.outcome()])
            .inc();
        match verdict {
            crate::ml::LayerVerdict::Used { layer, confidence } => {
                let mut layers: Vec<crate::detect::LayerFinding> = Vec::new();
                layers.push(crate::detect::LayerFinding {
                    layer,
                    confidence,
                    evidence: format!(
                        "{} classified it ({confidence:.2})",
                        crate::ml::ANOMALY_DETECTOR
                    ),
                });
                let target = incident_target(incident);
                let mut refined = plan(&incident.issue_type, target, &layers, layer);
                for affected in keyword.affected_layers {
                    if !refined.affected_layers.contains(&affected) {
                        refined.affected_layers.push(affected);
                    }
                }
                refined
            }
            crate::ml::LayerVerdict::LowConfidence { .. } => keyword,
            crate::ml::LayerVerdict::Unavailable(why) => {
                tracing::warn!(incident = %incident.id, %why, "ML layer detection unavailable: keyword detection");
                keyword
            }
        }
    }

    /// Node drain timeout, node budget, helm binary.
    pub fn with_channels(mut self, channels: crate::config::ChannelSettings) -> Self {
        self.channels = channels;
        self
    }

    /// ArgoCD's control-plane namespaces (`ARGOCD_NAMESPACES`).
    pub fn with_argocd_namespaces(mut self, namespaces: Vec<String>) -> Self {
        self.argocd_namespaces = namespaces;
        self
    }

    /// The cluster the workflows act on (`None`: detached).
    pub fn cluster(&self) -> Option<&SharedCluster> {
        self.cluster.as_ref()
    }

    /// Whether the ArgoCD channel can carry actions.
    fn has_argocd(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.has_argocd())
    }

    /// Actions listed here wait for `POST /approve`.
    pub fn with_approval(mut self, actions: &[crate::plan::Action]) -> Self {
        self.approval = actions.iter().copied().collect();
        self
    }

    /// Runs an approved (pending) workflow: live in the background when attached, recorded
    /// from its plan when detached.
    pub async fn resume(self: &Arc<Self>, mut workflow: Workflow) -> Result<(), StoreError> {
        if workflow.status != WorkflowStatus::Pending {
            return Ok(());
        }
        let Some(plan) = stored_plan(&workflow) else {
            return Ok(());
        };
        if self.cluster.is_some() {
            self.spawn_run(workflow, plan);
        } else {
            self.dry_run(&mut workflow, &plan, Utc::now());
            self.store.update_workflow(&workflow).await?;
        }
        Ok(())
    }

    fn detached(&self) -> bool {
        self.cluster.is_none()
    }

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
    fn dry_run(&self, workflow: &mut Workflow, plan: &Plan, now: DateTime<Utc>) {
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
    fn spawn_run(self: &Arc<Self>, workflow: Workflow, plan: Plan) -> bool {
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
        tokio::spawn(async move {
            pipeline.clone().run(workflow, plan).await;
            pipeline
                .in_flight
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&id);
        });
        true
    }

    fn is_in_flight(&self, id: &str) -> bool {
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
