//! Plan × state × policy → gate decisions (SPEC §5.3). Pure: the pipeline gathers the state
//! (pauses, active workflows, recent attempts, budgets) from the store and records every
//! decision on the workflow with its reason.

use crate::plan::{Action, Plan};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

mod bucket;
pub use bucket::Bucket;

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

/// A gate's answer about one workflow.
enum Answer {
    /// The gate does not apply (no storm budget configured): nothing is recorded.
    Skip,
    /// Let the workflow through; the reason is recorded.
    Pass(String),
    /// Stop at this gate: record `outcome` with the reason, and the pipeline does `verdict`.
    Stop {
        outcome: GateOutcome,
        reason: String,
        verdict: Verdict,
    },
}

impl Answer {
    /// Holds the workflow (not now), recording the reason as a block.
    fn hold(reason: String) -> Self {
        Answer::Stop {
            outcome: GateOutcome::Block,
            verdict: Verdict::Hold(reason.clone()),
            reason,
        }
    }
}

type GateCheck = fn(&Plan, &GateContext, DateTime<Utc>) -> Answer;

/// The gates before the last (`dry_run`), in the order of `GATES`.
const CHECKS: [(&str, GateCheck); 5] = [
    ("pause", pause),
    ("single_active", single_active),
    ("cooldown", cooldown_gate),
    ("storm_budget", storm_budget),
    ("approval", approval),
];

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
    for (name, check) in CHECKS {
        match check(plan, ctx, now) {
            Answer::Skip => {}
            Answer::Pass(reason) => record(name, GateOutcome::Pass, reason),
            Answer::Stop {
                outcome,
                reason,
                verdict,
            } => {
                record(name, outcome, reason);
                return (decisions, verdict);
            }
        }
    }
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

fn pause(_: &Plan, ctx: &GateContext, _: DateTime<Utc>) -> Answer {
    if ctx.global_pause || ctx.bucket_paused {
        let scope = match (&ctx.bucket, ctx.global_pause) {
            (Some(bucket), false) => format!("for {}", bucket.describe()),
            _ => "globally".to_string(),
        };
        return Answer::hold(format!("remediation is paused {scope}"));
    }
    Answer::Pass("not paused".into())
}

fn single_active(_: &Plan, ctx: &GateContext, _: DateTime<Utc>) -> Answer {
    if let Some(active) = &ctx.active_workflow {
        return Answer::hold(format!(
            "workflow {active} is already active for this target"
        ));
    }
    Answer::Pass("no other active workflow for the target".into())
}

fn cooldown_gate(_: &Plan, ctx: &GateContext, now: DateTime<Utc>) -> Answer {
    if let Some(last) = ctx.last_failed_at {
        let wait = cooldown(ctx.failed_attempts as usize);
        // Checked: a stored time near the end of the calendar must not panic the gate.
        if last
            .checked_add_signed(wait)
            .is_some_and(|until| now < until)
        {
            return Answer::hold(format!(
                "{} failed attempt(s): cooling down {} min after the last",
                ctx.failed_attempts,
                wait.num_minutes()
            ));
        }
    }
    Answer::Pass("no cooldown in effect".into())
}

fn storm_budget(_: &Plan, ctx: &GateContext, _: DateTime<Utc>) -> Answer {
    let Some(budget) = ctx.budget else {
        return Answer::Skip;
    };
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
    match over {
        Some(reason) => Answer::Stop {
            outcome: GateOutcome::Block,
            verdict: Verdict::Escalate(reason.clone()),
            reason,
        },
        None => Answer::Pass("within the storm budget".into()),
    }
}

fn approval(plan: &Plan, ctx: &GateContext, _: DateTime<Utc>) -> Answer {
    let await_approval = |reason| Answer::Stop {
        outcome: GateOutcome::AwaitApproval,
        reason,
        verdict: Verdict::AwaitApproval,
    };
    if let Some(why) = ctx
        .approval_forced
        .as_ref()
        .filter(|_| !ctx.dry_run_requested)
    {
        return await_approval(why.clone());
    }
    let needs_approval: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| ctx.approval_required.contains(&s.action))
        .map(|s| s.action.as_str())
        .collect();
    if !needs_approval.is_empty() {
        return await_approval(format!("{} need approval", needs_approval.join(", ")));
    }
    Answer::Pass("no step needs approval".into())
}

#[cfg(test)]
mod tests;
