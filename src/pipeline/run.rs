//! A live workflow: for each target, lowest layer first, detect ownership, climb its ladder
//! through the right channel (`climb.rs`), verify after each change (a checkpoint per layer),
//! then resolve or escalate (`outcome.rs`). Every step is persisted before the next one.

use super::Pipeline;
use super::climb::{LadderContext, LadderEnd};
use super::evidence::Observed;
use super::rung::top_workload;
use super::symptom::Evidence;
use crate::cluster::Cluster;
use crate::detect::ownership::{DeploymentMethod, deployment_method};
use crate::execute::ExecError;
use crate::plan::{Plan, Step, StepTarget};
use crate::workflow::{Workflow, WorkflowStatus};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

/// How a ladder starts.
enum Opened {
    /// Its target is deployed by this method (with this top workload); climb it.
    Climb(DeploymentMethod, Option<crate::cluster::Workload>),
    /// The symptom is not there (what was seen instead): nothing to do on this target.
    Skip(String),
}

/// How the plan's ladders ended.
enum Climbed {
    /// None escalated: `climbed` ladders climbed, `skipped` ones whose symptom was not seen
    /// (what was seen instead); the source alert is awaited until `alert_deadline`.
    All {
        climbed: usize,
        skipped: Vec<String>,
        alert_deadline: Instant,
    },
    /// Hand over to a human, with the actions `tried` so far.
    Escalate {
        reason: String,
        needed: String,
        tried: Vec<String>,
    },
    /// The workflow cannot go on here (not persisted, or interrupted): nothing more to do.
    Stopped,
}

/// How a target is deployed, its top workload `(kind, namespace, name)`, and its owner chain
/// (the target object first, the top workload last).
type Ownership = (
    DeploymentMethod,
    Option<(String, String, String)>,
    Vec<Value>,
);

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

/// Records that a ladder's layer passed its checkpoint.
fn record_checkpoint(workflow: &mut Workflow, ladder: &[Step], detail: &str) {
    let first = &ladder[0];
    workflow.steps.push(json!({
        "order": ladder.last().map(|s| s.order).unwrap_or(0), "action": "checkpoint",
        "layer": first.layer, "target": first.target, "outcome": "passed",
        "detail": format!("{} layer healthy: {detail}", first.layer.as_str()), "at": Utc::now(),
    }));
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
        let climbed = self
            .climb_ladders(cluster, &mut workflow, &plan, dry_run)
            .await;
        let (climbed, skipped, alert_deadline) = match climbed {
            Climbed::All {
                climbed,
                skipped,
                alert_deadline,
            } => (climbed, skipped, alert_deadline),
            Climbed::Escalate {
                reason,
                needed,
                tried,
            } => return self.escalate(workflow, reason, needed, tried).await,
            Climbed::Stopped => return,
        };
        if dry_run {
            return self.finish(workflow, WorkflowStatus::Succeeded, None).await;
        }
        if climbed == 0 && !skipped.is_empty() {
            return self.not_needed(workflow, skipped).await;
        }
        self.resolve(workflow, alert_deadline).await;
    }

    /// Climbs one ladder per target, lowest layer first (the plan's order); the next layer
    /// starts only once this one passed its checkpoint. Every step is persisted on the way.
    async fn climb_ladders(
        &self,
        cluster: &dyn Cluster,
        workflow: &mut Workflow,
        plan: &Plan,
        dry_run: bool,
    ) -> Climbed {
        let mut tried: Vec<String> = Vec::new();
        // When the last checkpoint's time runs out: the source alert is awaited until then.
        let mut alert_deadline = Instant::now();
        // Ladders climbed, and ladders skipped because their symptom was not observed.
        let (mut climbed, mut skipped) = (0, Vec::new());
        // The plan as shown: each target's channels once its deployment method is known.
        let mut shown = plan.clone();
        for ladder in ladders(&plan.steps) {
            let opened = self
                .open_ladder(cluster, workflow, ladder, &mut shown, dry_run)
                .await;
            let (method, workload) = match opened {
                Ok(Opened::Climb(method, workload)) => (method, workload),
                Ok(Opened::Skip(seen)) => {
                    skipped.push(seen);
                    if !self.persist(workflow).await {
                        return Climbed::Stopped;
                    }
                    continue;
                }
                Err(reason) => {
                    let needed = "check the target and the engine's RBAC".to_string();
                    return Climbed::Escalate {
                        reason,
                        needed,
                        tried,
                    };
                }
            };
            climbed += 1;
            let context = LadderContext {
                cluster,
                method: &method,
                workload: workload.as_ref(),
                dry_run,
            };
            match self.climb(workflow, ladder, &context, &mut tried).await {
                LadderEnd::Passed { detail, deadline } => {
                    alert_deadline = deadline;
                    record_checkpoint(workflow, ladder, &detail);
                    if !self.persist(workflow).await {
                        return Climbed::Stopped;
                    }
                }
                // The API server accepted the change; nothing changed, nothing to verify.
                LadderEnd::DryRun => {}
                LadderEnd::Escalate { reason, needed } => {
                    return Climbed::Escalate {
                        reason,
                        needed,
                        tried,
                    };
                }
                LadderEnd::Stopped => return Climbed::Stopped,
            }
        }
        Climbed::All {
            climbed,
            skipped,
            alert_deadline,
        }
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
}
