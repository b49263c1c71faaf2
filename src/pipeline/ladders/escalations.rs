//! Rungs that hand over to a human with what is needed, one case each: the ladder stops
//! there, and nothing is written after the evidence that a write cannot help.

use super::*;
use crate::execute::helm::Revision;
use serde_json::json;

/// Runs `issue` on `shop/api` deployed as `deployment` says, with `change` applied to the
/// world; the escalation's reason and the writes.
async fn escalated(
    issue: &str,
    deployment: Value,
    change: impl FnOnce(&mut World),
) -> (String, Vec<String>) {
    let mut world = world_of(deployment, vec![crash_looping()]);
    change(&mut world);
    let h = harness(world).await;
    let workflow = h.run(issue, "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Escalated);
    (escalation(&workflow, "reason"), h.cluster.writes())
}

#[tokio::test]
async fn a_helm_release_without_a_good_revision_before_the_current_escalates() {
    let release = deployment(json!({"meta.helm.sh/release-name": "shop"}), json!([]));
    let (reason, writes) = escalated("crash_loop", release, |world| {
        let only = Revision {
            version: 1,
            status: "deployed".into(),
            chart: "shop-1.0.0".into(),
            app_version: "1".into(),
        };
        world.helm_history.insert("shop".into(), vec![only]);
        world.helm_available = true;
    })
    .await;
    assert_eq!(
        reason,
        "Helm release shop/shop has no good revision before 1"
    );
    assert_eq!(
        writes,
        ["rollout_restart Deployment/shop/api"],
        "no helm rollback"
    );
}

#[tokio::test]
async fn an_olm_operand_without_a_custom_resource_owner_escalates() {
    let mut operand = deployment(json!({}), json!([]));
    operand["metadata"]["labels"] = json!({"olm.owner": "db-operator.v2"});
    let (reason, writes) = escalated("crash_loop", operand, |_| {}).await;
    assert!(
        reason.contains("has no custom resource owner to reconcile"),
        "{reason}"
    );
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn a_workload_scaled_to_zero_is_not_scaled_up() {
    let mut zero = deployment(json!({}), json!([]));
    zero["spec"]["replicas"] = json!(0);
    zero["status"]["availableReplicas"] = json!(0);
    // Zero wanted, zero available: the pods are the symptom.
    let (reason, writes) = escalated("high_cpu", zero, |world| {
        world.pods = vec![json!({"metadata": {"name": "api-1"}, "status": {"phase": "Failed"}})];
    })
    .await;
    assert_eq!(
        reason,
        "Deployment shop/api is scaled to zero, presumably on purpose"
    );
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn pods_no_node_can_take_escalate_without_a_restart() {
    let (reason, writes) = escalated("pod_not_ready", deployment(json!({}), json!([])), |world| {
        world.pods = vec![
            json!({"metadata": {"name": "api-1"}, "status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/3 nodes are available: 3 Insufficient cpu."}]}}),
        ];
    })
    .await;
    assert_eq!(
        reason,
        "no node can take the pods of Deployment shop/api: pod api-1: 0/3 nodes are available: 3 Insufficient cpu."
    );
    assert!(writes.is_empty(), "{writes:?}");
}
