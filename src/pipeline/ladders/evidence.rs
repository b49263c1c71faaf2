//! Evidence first: what the workflow records of its target before the first write, and what
//! that evidence decides (a restart on a pod that is not Ready, nothing at all on a pod that
//! is Ready again, the incident left to its alert).

use super::*;
use crate::incident::IncidentStatus;
use serde_json::json;

/// The workflow's evidence entries, as `(symptom, detail)`.
fn evidence(workflow: &Workflow) -> Vec<(String, String)> {
    workflow
        .evidence
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("symptom"), text("detail"))
        })
        .collect()
}

fn pod_status(ready: &str) -> Value {
    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]})
}

#[tokio::test]
async fn a_deployment_whose_pod_is_not_ready_is_restarted_on_that_evidence() {
    // Every replica available: only the pod shows the symptom.
    let mut available = deployment(json!({}), json!([]));
    available["status"]["availableReplicas"] = json!(2);
    let mut world = world_of(available, vec![healthy()]);
    world.pods = vec![json!({"metadata": {"name": "api-1"}, "status": pod_status("False")})];
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        evidence(&workflow),
        [(
            "observed".to_string(),
            "pod api-1 is not Ready (Ready=False)".to_string()
        )]
    );
    assert_eq!(workflow.evidence[0]["issue_type"], "crash_loop");
    assert_eq!(h.cluster.writes(), ["rollout_restart Deployment/shop/api"]);
}

/// `shop/api-1`, Ready, of ReplicaSet `api-rs` of the Deployment `shop/api`.
fn ready_pod_world() -> World {
    with_pod(
        world_of(deployment(json!({}), json!([])), vec![healthy()]),
        pod_status("True"),
    )
}

#[tokio::test]
async fn an_alert_for_a_pod_that_is_ready_again_writes_nothing_and_the_incident_follows_the_alert()
{
    let h = harness(ready_pod_world()).await;
    let alert = incident(
        Source::Alertmanager,
        "crash_loop",
        ("Pod", Some("shop"), "api-1"),
    );
    let started = h.start(&alert, false).await;
    let workflow = h.finished(&started.id).await;
    assert_status(&workflow, WorkflowStatus::NotNeeded);
    assert_eq!(
        evidence(&workflow),
        [(
            "not_observed".to_string(),
            "pod shop/api-1 is Ready, no recent restart".to_string()
        )]
    );
    assert!(h.cluster.writes().is_empty(), "{:?}", h.cluster.writes());
    assert!(h.cluster.events().is_empty(), "not even an Event");
    let incident = h.store.get_incident(&alert.id).await.expect("incident");
    assert_ne!(
        incident.status,
        IncidentStatus::Resolved,
        "an alert's incident follows its alert"
    );
    assert!(
        incident.notes.iter().any(|n| n.text.contains("not needed")),
        "the incident says why: {:?}",
        incident.notes
    );
}

#[tokio::test]
async fn a_triggered_incident_is_resolved_by_evidence_that_nothing_is_wrong() {
    let h = harness(ready_pod_world()).await;
    let workflow = h.run("crash_loop", "Pod", Some("shop"), "api-1").await;
    assert_status(&workflow, WorkflowStatus::NotNeeded);
    let incident = h
        .store
        .get_incident(&workflow.incident_id)
        .await
        .expect("incident");
    assert_eq!(incident.status, IncidentStatus::Resolved);
    assert!(incident.notes.iter().any(|n| n.text.contains("not needed")));
}
