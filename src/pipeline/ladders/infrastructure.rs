//! The node and platform ladders: cordon (within the maintenance gate and the node budget),
//! drain, uncordon once Ready; a degraded ClusterOperator's operator pods restarted.

use super::*;
use crate::execute::node::NodeOutcome;
use serde_json::json;

fn node(ready: &str) -> Value {
    json!({"metadata": {"name": "worker-1"},
           "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletDown"}]}})
}

/// `worker-1`, NotReady, running one pod that the drain evicts.
fn sick_node() -> World {
    let mut world = World::default();
    world.nodes.insert("worker-1".into(), node("False"));
    let running = vec![("shop".to_string(), "api-1".to_string(), true)];
    world
        .evictable
        .insert("worker-1".into(), Script::of([running, Vec::new()]));
    world
}

#[tokio::test]
async fn a_not_ready_node_is_cordoned_drained_and_uncordoned_once_drained() {
    let h = harness(sick_node()).await;
    let workflow = h.run("node_not_ready", "Node", None, "worker-1").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "cordon worker-1 max=1",
            "drain worker-1",
            "uncordon worker-1"
        ]
    );
    assert_eq!(
        steps(&workflow),
        [
            "detect done",
            "inspect_events done kubernetes",
            "cordon done node",
            "drain done node",
            "verify passed",
            "checkpoint passed"
        ]
    );
    assert_eq!(
        h.cluster.calls()[..2],
        ["node worker-1", "await_maintenance"],
        "the symptom is confirmed, then the maintenance gate, before the first write"
    );
    let evidence = &workflow.evidence[0];
    assert_eq!(evidence["symptom"], "observed");
    assert_eq!(
        evidence["detail"],
        "node worker-1 is not Ready (Ready=False: KubeletDown)"
    );
    assert_eq!(evidence["issue_type"], "node_not_ready");
}

#[tokio::test]
async fn a_ready_node_is_not_cordoned_the_workflow_is_not_needed() {
    let mut world = sick_node();
    world.nodes.insert("worker-1".into(), node("True"));
    let h = harness(world).await;
    let workflow = h.run("node_not_ready", "Node", None, "worker-1").await;
    assert_eq!(workflow.status, WorkflowStatus::NotNeeded);
    assert!(h.cluster.writes().is_empty());
    assert_eq!(workflow.evidence[0]["symptom"], "not_observed");
    assert_eq!(workflow.evidence[0]["detail"], "node worker-1 is Ready");
}

#[tokio::test]
async fn a_full_node_budget_escalates_and_the_node_is_never_drained() {
    let mut world = sick_node();
    world.cordon = Some(NodeOutcome::Escalate {
        reason: "1 node(s) already unschedulable (worker-2)".into(),
        needed: "recover or uncordon worker-2 first".into(),
    });
    let h = harness(world).await;
    let workflow = h.run("node_not_ready", "Node", None, "worker-1").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.writes(), ["cordon worker-1 max=1"]);
    assert_eq!(
        escalation(&workflow, "needed"),
        "recover or uncordon worker-2 first"
    );
}

#[tokio::test]
async fn a_degraded_machine_config_pool_escalates_before_any_cordon() {
    let mut world = sick_node();
    world.maintenance = Some(Err(NodeOutcome::Escalate {
        reason: "MachineConfigPool worker is degraded".into(),
        needed: "repair the MachineConfigPool".into(),
    }));
    let h = harness(world).await;
    let workflow = h.run("node_not_ready", "Node", None, "worker-1").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty(), "{:?}", h.cluster.writes());
    assert_eq!(
        escalation(&workflow, "reason"),
        "MachineConfigPool worker is degraded"
    );
}

#[tokio::test]
async fn a_node_that_cannot_be_cordoned_is_never_drained() {
    let mut world = sick_node();
    world
        .failures
        .insert("cordon", "the API server answered 403 Forbidden".into());
    let h = harness(world).await;
    let workflow = h.run("node_not_ready", "Node", None, "worker-1").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.writes(), ["cordon worker-1 max=1"]);
    assert!(escalation(&workflow, "reason").contains("not draining a schedulable node"));
}

fn cluster_operator(available: &str, degraded: &str) -> Value {
    json!({"metadata": {"name": "ingress"}, "status": {"conditions": [
        {"type": "Available", "status": available}, {"type": "Degraded", "status": degraded}]}})
}

#[tokio::test]
async fn a_degraded_cluster_operator_gets_its_operator_pods_restarted_and_verified() {
    let mut world = World::default();
    // Degraded for the evidence and the checkpoint's first poll, then healthy.
    let polls = [
        cluster_operator("True", "True"),
        cluster_operator("True", "True"),
        cluster_operator("True", "False"),
    ];
    world
        .cluster_operators
        .insert("ingress".into(), Script::of(polls));
    let h = harness(world).await;
    let workflow = h
        .run("operator_degraded", "ClusterOperator", None, "ingress")
        .await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["restart_operator_pods ingress"]);
    assert_eq!(steps(&workflow)[2], "restart_operator_pods done platform");
    assert!(detail(&workflow, "verify").contains("Available=True, Degraded=False"));
}

#[tokio::test]
async fn a_cluster_operator_that_stays_degraded_escalates_after_its_checkpoint() {
    let mut world = World::default();
    let degraded = cluster_operator("False", "True");
    world
        .cluster_operators
        .insert("ingress".into(), Script::of([degraded]));
    let h = harness(world).await;
    let workflow = h
        .run("operator_degraded", "ClusterOperator", None, "ingress")
        .await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.writes(), ["restart_operator_pods ingress"]);
    assert!(detail(&workflow, "verify").starts_with("not healthy within 1s"));
}
