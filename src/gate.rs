//! Plan × state × policy → gate decisions (SPEC §5.3). Pure: the pipeline gathers the state
//! (pauses, active workflows, recent attempts, budgets) from the store and records every
//! decision on the workflow with its reason.

use crate::plan::{Action, Plan};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    Pass,
    /// Plan and record only.
    DryRun,
    AwaitApproval,
    Block,
}

impl GateOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            GateOutcome::Pass => "pass",
            GateOutcome::DryRun => "dry_run",
            GateOutcome::AwaitApproval => "await_approval",
            GateOutcome::Block => "block",
        }
    }
}

/// Every gate, in the order they run.
pub const GATES: &[&str] = &[
    "pause",
    "single_active",
    "cooldown",
    "storm_budget",
    "approval",
    "dry_run",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateDecision {
    pub gate: String,
    pub outcome: GateOutcome,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// Storm budget: at most this many live workflows per bucket, and in the cluster, per window.
#[derive(Debug, Clone, Copy)]
pub struct StormBudget {
    pub per_bucket: u32,
    pub per_cluster: u32,
    pub window: Duration,
}

impl Default for StormBudget {
    fn default() -> Self {
        StormBudget {
            per_bucket: 5,
            per_cluster: 20,
            window: Duration::minutes(10),
        }
    }
}

/// What the storm budget counts and a storm pauses: one namespace, or one kind of
/// cluster-scoped target (nodes, cluster operators, …). A bucket's pause holds only that
/// bucket: a storm of node workflows never stops the remediation of workloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    Namespace(String),
    Kind(String),
}

/// Pauses of kind buckets are stored under this prefix; no namespace name holds a `:`.
const KIND_PAUSE_PREFIX: &str = "kind:";

impl Bucket {
    /// The bucket of a target: its namespace, or its kind when it is cluster-scoped. `None`
    /// (counted in the cluster budget only) when neither can name it: no kind, a namespaced
    /// kind without a namespace (an alert without a `namespace` label), or a namespace the API
    /// would refuse. Every bucket is one `/api/v1/pause` can name, so every pause a storm
    /// stores can be lifted with `resume_call`.
    pub fn of(kind: &str, namespace: Option<&str>) -> Option<Self> {
        if crate::plan::is_cluster_scoped(kind) {
            return Some(Bucket::Kind(kind.to_string()));
        }
        if kind.is_empty() {
            return None;
        }
        namespace
            .filter(|ns| crate::api::validate::is_dns_label(ns))
            .map(|ns| Bucket::Namespace(ns.to_string()))
    }

    /// The bucket of a workflow's `target_key` (`namespace/Kind/name`).
    pub fn of_target_key(key: &str) -> Option<Self> {
        let mut parts = key.splitn(3, '/');
        let (namespace, kind) = (parts.next()?, parts.next()?);
        Bucket::of(kind, Some(namespace))
    }

    /// The API call that lifts this bucket's pause (what an escalation tells the operator).
    pub fn resume_call(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("DELETE /api/v1/pause?namespace={ns}"),
            Bucket::Kind(kind) => format!("DELETE /api/v1/pause?kind={kind}"),
        }
    }

    /// The key a pause of this bucket is stored under (the store's `namespace` column).
    pub fn pause_key(&self) -> String {
        match self {
            Bucket::Namespace(ns) => ns.clone(),
            Bucket::Kind(kind) => format!("{KIND_PAUSE_PREFIX}{kind}"),
        }
    }

    /// The bucket a stored pause holds.
    pub fn from_pause_key(key: &str) -> Self {
        match key.strip_prefix(KIND_PAUSE_PREFIX) {
            Some(kind) => Bucket::Kind(kind.to_string()),
            None => Bucket::Namespace(key.to_string()),
        }
    }

    /// `namespace/shop` or `kind/Node`: how the API names a bucket.
    pub fn label(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("namespace/{ns}"),
            Bucket::Kind(kind) => format!("kind/{kind}"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("namespace {ns}"),
            Bucket::Kind(kind) => format!("cluster-scoped {kind} targets"),
        }
    }
}

/// What the gates look at.
#[derive(Debug, Clone, Default)]
pub struct GateContext {
    pub global_pause: bool,
    /// The target's bucket (`None`: a target without one, counted in the cluster only).
    pub bucket: Option<Bucket>,
    /// The target's bucket is paused.
    pub bucket_paused: bool,
    /// The caller asked for a dry run.
    pub dry_run_requested: bool,
    /// No cluster: everything is a dry run.
    pub detached: bool,
    /// Another workflow is active for the same target.
    pub active_workflow: Option<String>,
    /// Attempts on this target that did not fix it (failed or escalated workflows).
    pub failed_attempts: u32,
    /// When the last of them ended.
    pub last_failed_at: Option<DateTime<Utc>>,
    /// Live workflows that ran (or run) in the target's bucket within the window; dry runs
    /// and held workflows do not count.
    pub bucket_workflows_in_window: u32,
    pub cluster_workflows_in_window: u32,
    pub budget: Option<StormBudget>,
    /// Actions that need `POST /approve`.
    pub approval_required: HashSet<Action>,
    /// Why every step of this workflow needs approval, whatever its actions (a trigger from
    /// the unauthenticated compatibility listener in `approval` mode). A requested dry run
    /// writes nothing and is exempt.
    pub approval_forced: Option<String>,
}

/// What the pipeline does after the gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Run {
        dry_run: bool,
    },
    AwaitApproval,
    /// Not now (paused, cooldown, another workflow active); the reason is recorded.
    Hold(String),
    /// The storm budget is spent: pause the bucket and hand over to a human.
    Escalate(String),
}

/// Cooldown after `n` failed attempts: 1, 2, 4, … minutes, at most an hour.
pub fn cooldown(failed_attempts: usize) -> Duration {
    if failed_attempts == 0 {
        return Duration::zero();
    }
    let minutes = 1i64 << (failed_attempts.min(7) - 1);
    Duration::minutes(minutes.min(60))
}

pub fn gate(plan: &Plan, ctx: &GateContext, now: DateTime<Utc>) -> (Vec<GateDecision>, Verdict) {
    let mut decisions = Vec::new();
    let mut record = |gate: &str, outcome, reason: String| {
        decisions.push(GateDecision {
            gate: gate.into(),
            outcome,
            reason,
            at: now,
        });
    };
    if ctx.global_pause || ctx.bucket_paused {
        let scope = match (&ctx.bucket, ctx.global_pause) {
            (Some(bucket), false) => format!("for {}", bucket.describe()),
            _ => "globally".to_string(),
        };
        let reason = format!("remediation is paused {scope}");
        record("pause", GateOutcome::Block, reason.clone());
        return (decisions, Verdict::Hold(reason));
    }
    record("pause", GateOutcome::Pass, "not paused".into());
    if let Some(active) = &ctx.active_workflow {
        let reason = format!("workflow {active} is already active for this target");
        record("single_active", GateOutcome::Block, reason.clone());
        return (decisions, Verdict::Hold(reason));
    }
    record(
        "single_active",
        GateOutcome::Pass,
        "no other active workflow for the target".into(),
    );
    if let Some(last) = ctx.last_failed_at {
        let wait = cooldown(ctx.failed_attempts as usize);
        // Checked: a stored time near the end of the calendar must not panic the gate.
        if last
            .checked_add_signed(wait)
            .is_some_and(|until| now < until)
        {
            let reason = format!(
                "{} failed attempt(s): cooling down {} min after the last",
                ctx.failed_attempts,
                wait.num_minutes()
            );
            record("cooldown", GateOutcome::Block, reason.clone());
            return (decisions, Verdict::Hold(reason));
        }
    }
    record(
        "cooldown",
        GateOutcome::Pass,
        "no cooldown in effect".into(),
    );
    if let Some(budget) = ctx.budget {
        let over = if let Some(bucket) = &ctx.bucket
            && ctx.bucket_workflows_in_window >= budget.per_bucket
        {
            Some(format!(
                "{} live workflows for {} within {} min (budget {})",
                ctx.bucket_workflows_in_window,
                bucket.describe(),
                budget.window.num_minutes(),
                budget.per_bucket
            ))
        } else if ctx.cluster_workflows_in_window >= budget.per_cluster {
            Some(format!(
                "{} live workflows in the cluster within {} min (budget {})",
                ctx.cluster_workflows_in_window,
                budget.window.num_minutes(),
                budget.per_cluster
            ))
        } else {
            None
        };
        if let Some(reason) = over {
            record("storm_budget", GateOutcome::Block, reason.clone());
            return (decisions, Verdict::Escalate(reason));
        }
        record(
            "storm_budget",
            GateOutcome::Pass,
            "within the storm budget".into(),
        );
    }
    if let Some(why) = ctx
        .approval_forced
        .as_ref()
        .filter(|_| !ctx.dry_run_requested)
    {
        record("approval", GateOutcome::AwaitApproval, why.clone());
        return (decisions, Verdict::AwaitApproval);
    }
    let needs_approval: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| ctx.approval_required.contains(&s.action))
        .map(|s| s.action.as_str())
        .collect();
    if !needs_approval.is_empty() {
        record(
            "approval",
            GateOutcome::AwaitApproval,
            format!("{} need approval", needs_approval.join(", ")),
        );
        return (decisions, Verdict::AwaitApproval);
    }
    record(
        "approval",
        GateOutcome::Pass,
        "no step needs approval".into(),
    );
    let dry_run = ctx.dry_run_requested || ctx.detached;
    let reason = match (ctx.dry_run_requested, ctx.detached) {
        (true, _) => "dry run requested".to_string(),
        (false, true) => "detached (no cluster): planned and recorded only".to_string(),
        _ => "live".to_string(),
    };
    record(
        "dry_run",
        if dry_run {
            GateOutcome::DryRun
        } else {
            GateOutcome::Pass
        },
        reason,
    );
    (decisions, Verdict::Run { dry_run })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Layer;
    use crate::plan::{StepTarget, plan};

    fn crash_plan() -> Plan {
        let target = StepTarget {
            kind: "Pod".into(),
            namespace: Some("shop".into()),
            name: "cart-1".into(),
        };
        plan("crash_loop", target, &[], Layer::Application)
    }

    fn verdict(ctx: &GateContext) -> Verdict {
        gate(&crash_plan(), ctx, Utc::now()).1
    }

    #[test]
    fn gates_in_order_with_their_verdicts() {
        let now = Utc::now();
        let base = GateContext::default();
        assert_eq!(verdict(&base), Verdict::Run { dry_run: false });
        assert_eq!(
            verdict(&GateContext {
                detached: true,
                ..base.clone()
            }),
            Verdict::Run { dry_run: true }
        );
        assert_eq!(
            verdict(&GateContext {
                dry_run_requested: true,
                ..base.clone()
            }),
            Verdict::Run { dry_run: true }
        );
        assert!(
            matches!(verdict(&GateContext { global_pause: true, ..base.clone() }), Verdict::Hold(r) if r.contains("paused"))
        );
        assert!(matches!(
            verdict(&GateContext {
                bucket: Some(Bucket::Kind("Node".into())),
                bucket_paused: true,
                ..base.clone()
            }),
            Verdict::Hold(r) if r == "remediation is paused for cluster-scoped Node targets"
        ));
        assert!(matches!(
            verdict(&GateContext { active_workflow: Some("wf-1".into()), ..base.clone() }),
            Verdict::Hold(r) if r.contains("wf-1")
        ));
        let recent = GateContext {
            failed_attempts: 1,
            last_failed_at: Some(now - Duration::seconds(30)),
            ..base.clone()
        };
        assert!(matches!(verdict(&recent), Verdict::Hold(r) if r.contains("cooling down")));
        let old = GateContext {
            failed_attempts: 1,
            last_failed_at: Some(now - Duration::minutes(5)),
            ..base.clone()
        };
        assert_eq!(verdict(&old), Verdict::Run { dry_run: false });
        let storm = GateContext {
            budget: Some(StormBudget::default()),
            bucket: Some(Bucket::Namespace("shop".into())),
            bucket_workflows_in_window: 5,
            ..base.clone()
        };
        assert!(matches!(verdict(&storm), Verdict::Escalate(r) if r.contains("budget")));
        let approval = GateContext {
            approval_required: [Action::Rollback].into_iter().collect(),
            ..base.clone()
        };
        assert_eq!(verdict(&approval), Verdict::AwaitApproval);
        let compat = GateContext {
            approval_forced: Some("compat".into()),
            ..base.clone()
        };
        assert_eq!(verdict(&compat), Verdict::AwaitApproval);
        // A dry run writes nothing: it needs no approval.
        assert_eq!(
            verdict(&GateContext {
                dry_run_requested: true,
                ..compat
            }),
            Verdict::Run { dry_run: true }
        );
    }

    #[test]
    fn buckets_are_namespaces_or_kinds_and_round_trip_through_the_pause_key() {
        assert_eq!(
            Bucket::of_target_key("/Node/worker-1"),
            Some(Bucket::Kind("Node".into()))
        );
        assert_eq!(
            Bucket::of_target_key("shop/Pod/cart-1"),
            Some(Bucket::Namespace("shop".into()))
        );
        for bucket in [
            Bucket::Kind("ClusterOperator".into()),
            Bucket::Namespace("shop".into()),
        ] {
            assert_eq!(Bucket::from_pause_key(&bucket.pause_key()), bucket);
        }
        assert_eq!(Bucket::Kind("Node".into()).label(), "kind/Node");
    }

    #[test]
    fn targets_no_pause_can_name_have_no_bucket() {
        assert_eq!(Bucket::of("", None), None, "an incident without a target");
        assert_eq!(Bucket::of("", Some("shop")), None);
        for kind in ["Pod", "Deployment", "Instance"] {
            assert_eq!(Bucket::of(kind, None), None, "{kind} without a namespace");
            assert_eq!(Bucket::of(kind, Some("")), None);
            assert_eq!(Bucket::of(kind, Some("Not_A_Namespace")), None);
        }
        assert_eq!(Bucket::of_target_key("/Pod/cart-1"), None);
        assert_eq!(Bucket::of_target_key("//title"), None);
        assert_eq!(Bucket::of("Node", None), Some(Bucket::Kind("Node".into())));
        assert_eq!(
            Bucket::of("Pod", Some("shop")),
            Some(Bucket::Namespace("shop".into()))
        );
    }

    #[test]
    fn cooldown_doubles_and_is_capped() {
        assert_eq!(cooldown(0), Duration::zero());
        assert_eq!(cooldown(1), Duration::minutes(1));
        assert_eq!(cooldown(3), Duration::minutes(4));
        assert_eq!(cooldown(20), Duration::minutes(60));
    }

    #[test]
    fn every_gate_that_ran_is_recorded_with_a_reason() {
        let (decisions, _) = gate(
            &crash_plan(),
            &GateContext {
                detached: true,
                ..Default::default()
            },
            Utc::now(),
        );
        let gates: Vec<&str> = decisions.iter().map(|d| d.gate.as_str()).collect();
        assert_eq!(
            gates,
            vec!["pause", "single_active", "cooldown", "approval", "dry_run"]
        );
        assert!(decisions.iter().all(|d| !d.reason.is_empty()));
        assert_eq!(
            decisions.last().map(|d| d.outcome),
            Some(GateOutcome::DryRun)
        );
    }
}
