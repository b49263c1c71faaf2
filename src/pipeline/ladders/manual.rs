//! The manual channel's ladders: workloads nobody else deploys, and their pods.

use super::*;
use serde_json::json;

fn manual(rollouts: Vec<(Rollout, Vec<PodState>)>) -> World {
    world_of(deployment(json!({}), json!([])), rollouts)
}

#[tokio::test]
async fn a_crash_looping_deployment_is_restarted_verified_and_resolved() {
    let h = harness(manual(vec![healthy()])).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["rollout_restart Deployment/shop/api"]);
    assert_eq!(
        steps(&workflow),
        [
            "detect done",
            "rollout_restart done kubernetes",
            "verify passed",
            "checkpoint passed"
        ]
    );
    assert_eq!(
        h.cluster.events(),
        ["RemediationRolloutRestarted Normal Deployment/shop/api"]
    );
    let incident = h
        .store
        .get_incident(&workflow.incident_id)
        .await
        .expect("incident");
    assert_eq!(incident.status, crate::incident::IncidentStatus::Resolved);
}

#[tokio::test]
async fn a_restart_and_a_rollback_that_do_not_help_escalate_with_what_was_tried() {
    let h = harness(manual(vec![crash_looping()])).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(
        h.cluster.writes(),
        [
            "rollout_restart Deployment/shop/api",
            "rollback_deployment shop/api"
        ]
    );
    assert_eq!(
        steps(&workflow),
        [
            "detect done",
            "rollout_restart done kubernetes",
            "verify failed",
            "rollback done kubernetes",
            "verify failed",
            "escalate escalated human",
        ]
    );
    // Failed fast on the evidence, not by the timeout.
    assert!(
        detail(&workflow, "verify").contains("CrashLoopBackOff"),
        "{}",
        detail(&workflow, "verify")
    );
    let tried = workflow.escalation.as_ref().expect("escalation")["tried"].to_string();
    assert!(
        tried.contains("rollout_restart") && tried.contains("rollback"),
        "{tried}"
    );
}

#[tokio::test]
async fn a_restart_that_fails_its_checkpoint_climbs_to_the_rollback_that_heals() {
    // First poll (after the restart) crash-loops; every poll after the rollback is healthy.
    let h = harness(manual(vec![crash_looping(), healthy()])).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "rollout_restart Deployment/shop/api",
            "rollback_deployment shop/api"
        ]
    );
    assert_eq!(
        h.cluster.events(),
        [
            "RemediationRolloutRestarted Normal Deployment/shop/api",
            "RemediationRolledBack Normal Deployment/shop/api"
        ]
    );
}

/// A crash-looping pod `shop/api-1` of ReplicaSet `api-rs` of the Deployment.
fn pod_world(rollouts: Vec<(Rollout, Vec<PodState>)>) -> World {
    with_pod(
        manual(rollouts),
        json!({"containerStatuses": [{"name": "web", "image": "i", "imageID": "", "ready": false,
            "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
    )
}

#[tokio::test]
async fn a_crash_looping_pod_is_deleted_and_its_workload_verified() {
    let h = harness(pod_world(vec![healthy()])).await;
    let workflow = h.run("crash_loop", "Pod", Some("shop"), "api-1").await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["delete_pod shop/api-1"]);
    assert_eq!(
        h.cluster.calls()[..2],
        ["owner_chain Pod/shop/api-1", "delete_pod shop/api-1"],
        "the pod's own state is the evidence: nothing else is read before the delete"
    );
    assert!(
        h.cluster
            .calls()
            .contains(&"workload_state Deployment/shop/api".to_string())
    );
}

#[tokio::test]
async fn a_forbidden_delete_fails_the_step_with_the_reason_and_the_next_rung_fixes_it() {
    let mut world = pod_world(vec![healthy()]);
    world
        .failures
        .insert("delete_pod", "the API server answered 403 Forbidden".into());
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Pod", Some("shop"), "api-1").await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "delete_pod shop/api-1",
            "rollout_restart Deployment/shop/api"
        ]
    );
    assert_eq!(steps(&workflow)[1], "delete_pod failed kubernetes");
    assert!(detail(&workflow, "delete_pod").contains("403 Forbidden"));
    assert_eq!(
        h.cluster.events()[0],
        "RemediationStepFailed Warning Pod/shop/api-1"
    );
}

#[tokio::test]
async fn a_healthy_workload_is_left_alone() {
    let mut healthy_deployment = deployment(json!({}), json!([]));
    healthy_deployment["status"]["availableReplicas"] = json!(2);
    let mut world = world_of(healthy_deployment, vec![healthy()]);
    world.pods = vec![
        json!({"metadata": {"name": "api-1"}, "status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}}),
    ];
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::NotNeeded);
    assert!(h.cluster.writes().is_empty(), "{:?}", h.cluster.writes());
    assert!(h.cluster.events().is_empty());
    assert_eq!(workflow.evidence[0]["symptom"], "not_observed");
    assert_eq!(
        workflow.evidence[0]["detail"],
        "Deployment shop/api: all pods available, 1 pod(s) Ready, no recent restart"
    );
}

#[tokio::test]
async fn a_bad_image_escalates_at_inspection_without_a_blind_restart() {
    let mut world = manual(vec![healthy()]);
    world.pods = vec![
        json!({"metadata": {"name": "api-1"}, "status": {"containerStatuses": [{"name": "web",
        "image": "shop:typo", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]}}),
    ];
    let h = harness(world).await;
    let workflow = h
        .run("pod_not_ready", "Deployment", Some("shop"), "api")
        .await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty());
    assert_eq!(
        steps(&workflow),
        ["detect done", "inspect_events escalated human"]
    );
    assert!(
        escalation(&workflow, "needed").contains("from shop:typo"),
        "{:?}",
        workflow.escalation
    );
}

#[tokio::test]
async fn cpu_saturation_scales_up_by_one_replica() {
    let h = harness(manual(vec![healthy()])).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["scale Deployment/shop/api 3"]);
    assert!(detail(&workflow, "scale_up").contains("(was 2; undo: scale back to 2)"));
}

#[tokio::test]
async fn a_scale_up_that_does_not_help_is_scaled_back_before_escalating() {
    let h = harness(manual(vec![crash_looping()])).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(
        h.cluster.writes(),
        ["scale Deployment/shop/api 3", "scale Deployment/shop/api 2"]
    );
    assert_eq!(
        steps(&workflow)[3..],
        [
            "verify failed",
            "undo done kubernetes",
            "escalate escalated human"
        ]
    );
    // The undo's detail is the cluster's answer to the scale back.
    assert_eq!(
        detail(&workflow, "undo"),
        "undo: scaled Deployment/shop/api to 2 replicas"
    );
}

#[tokio::test]
async fn a_workload_an_hpa_scales_is_never_scaled_by_hand() {
    let mut world = manual(vec![healthy()]);
    world
        .autoscalers
        .insert("Deployment/shop/api".into(), "api-hpa".into());
    let h = harness(world).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty());
    assert!(escalation(&workflow, "needed").contains("HPA shop/api-hpa"));
}

#[tokio::test]
async fn a_dry_run_sends_the_first_write_as_a_dry_run_and_changes_nothing() {
    let h = harness(manual(vec![crash_looping()])).await;
    let workflow = h
        .run_with("crash_loop", ("Deployment", Some("shop"), "api"), true)
        .await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        ["rollout_restart Deployment/shop/api (dry run)"]
    );
    assert!(
        !h.cluster
            .calls()
            .iter()
            .any(|c| c.starts_with("workload_state")),
        "nothing changed: nothing to verify"
    );
}
