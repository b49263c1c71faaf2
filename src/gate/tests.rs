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

#[test]
fn the_checks_run_in_the_order_of_gates_with_dry_run_last() {
    let names: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!([names, vec!["dry_run"]].concat(), GATES);
}
