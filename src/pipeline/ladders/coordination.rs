//! Plans with more than one ladder (a coordination trigger: one ladder per resource, lowest
//! layer first), and actions taken under a remediation lease with ArgoCD's selfHeal watched.

use super::*;
use crate::guard::view::AppInfo;
use serde_json::json;

/// One plan over `targets` (`(issue, kind, namespace, name)`), in the order given, the way a
/// coordination trigger chains its resources' ladders.
fn chained(targets: &[(&str, &str, Option<&str>, &str)]) -> Plan {
    let mut plans = targets
        .iter()
        .map(|(issue, kind, ns, name)| plan_for(&incident(Source::Api, issue, (kind, *ns, name))));
    let mut whole = plans.next().expect("one target at least");
    for next in plans {
        whole.steps.extend(next.steps);
    }
    for (order, step) in whole.steps.iter_mut().enumerate() {
        step.order = order as u32 + 1;
    }
    whole
}

/// A NotReady node that drains at once, and the crash-looping Deployment `shop/api`.
fn node_and_workload(node_ready: &str) -> World {
    let mut world = world_of(deployment(json!({}), json!([])), vec![healthy()]);
    world.nodes.insert(
        "worker-1".into(),
        json!({"metadata": {"name": "worker-1"},
               "status": {"conditions": [{"type": "Ready", "status": node_ready}]}}),
    );
    world
}

async fn run_chained(h: &Harness, plan: Plan) -> Workflow {
    let trigger = incident(
        Source::Api,
        "crash_loop",
        ("Deployment", Some("shop"), "api"),
    );
    h.store.insert_incident(&trigger).await.expect("incident");
    let started = h
        .pipeline
        .start(&trigger, WorkflowKind::Remediation, plan, false)
        .await
        .expect("started");
    h.finished(&started.id).await
}

const NODE_THEN_APP: [(&str, &str, Option<&str>, &str); 2] = [
    ("node_not_ready", "Node", None, "worker-1"),
    ("crash_loop", "Deployment", Some("shop"), "api"),
];

#[tokio::test]
async fn a_coordination_plan_heals_the_node_before_it_touches_the_workload() {
    let h = harness(node_and_workload("False")).await;
    let workflow = run_chained(&h, chained(&NODE_THEN_APP)).await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "cordon worker-1 max=1",
            "drain worker-1",
            "uncordon worker-1",
            "rollout_restart Deployment/shop/api"
        ]
    );
    let checkpoints = steps(&workflow)
        .into_iter()
        .filter(|s| s.starts_with("checkpoint"))
        .count();
    assert_eq!(checkpoints, 2, "one checkpoint per layer");
}

#[tokio::test]
async fn a_coordination_plan_skips_a_target_that_is_healthy() {
    let h = harness(node_and_workload("True")).await;
    let workflow = run_chained(&h, chained(&NODE_THEN_APP)).await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["rollout_restart Deployment/shop/api"]);
    let evidence: Vec<&str> = workflow
        .evidence
        .iter()
        .filter_map(|e| e["symptom"].as_str())
        .collect();
    assert_eq!(evidence, ["not_observed", "observed"]);
}

#[tokio::test]
async fn a_coordination_plan_stops_at_the_first_layer_that_escalates() {
    let mut world = node_and_workload("False");
    world
        .failures
        .insert("cordon", "the API server answered 403 Forbidden".into());
    let h = harness(world).await;
    let workflow = run_chained(&h, chained(&NODE_THEN_APP)).await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.writes(), ["cordon worker-1 max=1"]);
    assert!(
        !h.cluster
            .calls()
            .iter()
            .any(|c| c.contains("Deployment/shop/api"))
    );
}

/// The ArgoCD-managed `shop/api`, its Application `argocd/shop` watched with selfHeal on.
async fn watched_argocd(rollouts: Vec<(Rollout, Vec<PodState>)>) -> Harness {
    let tracking = json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/api"});
    let mut world = world_of(deployment(tracking, json!([])), rollouts);
    world.argocd = true;
    let h = harness_with(world, vec![crate::plan::Action::ScaleUp]).await;
    h.pipeline.guard.update(|view| {
        view.applications.insert(
            "shop".into(),
            AppInfo {
                name: "shop".into(),
                namespace: "argocd".into(),
                ignore_differences: Vec::new(),
                self_heal: true,
            },
        );
    });
    h
}

#[tokio::test]
async fn a_leased_scale_up_turns_self_heal_off_and_keeps_it_off_once_verified() {
    let h = watched_argocd(vec![healthy()]).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "set_self_heal argocd/shop false",
            "scale Deployment/shop/api 3"
        ]
    );
    assert!(
        detail(&workflow, "scale_up").contains("turned off selfHeal on Application argocd/shop")
    );
    let lease = workflow
        .steps
        .iter()
        .find(|s| s["action"] == "scale_up")
        .and_then(|s| s.get("lease"))
        .expect("the step shows its lease");
    assert_eq!(lease["object"], "Deployment shop/api");
}

#[tokio::test]
async fn a_leased_scale_up_that_does_not_help_is_scaled_back_before_self_heal_returns() {
    let h = watched_argocd(vec![crash_looping()]).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    // Scaled back first: with selfHeal on first, ArgoCD would race the undo.
    assert_eq!(
        h.cluster.writes(),
        [
            "set_self_heal argocd/shop false",
            "scale Deployment/shop/api 3",
            "scale Deployment/shop/api 2",
            "set_self_heal argocd/shop true"
        ]
    );
    assert_eq!(
        steps(&workflow)[3..],
        [
            "verify failed",
            "undo done kubernetes",
            "undo done argocd",
            "escalate escalated human"
        ]
    );
}
