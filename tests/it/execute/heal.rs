//! Workflows that heal: the exact requests, verification, the next rung after a refusal.

use crate::helpers::cluster::{DEPLOYMENT, POD, api_pod_chain, deployment, pod_deletion, status};
use crate::helpers::spawn_attached;
use crate::helpers::workflow::{events_of, finished_workflow, trigger, writes_of};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_pod_from_alertmanager_is_deleted_verified_and_resolved() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(api_pod_chain(2, json!({})), pod_deletion()).await;
    let app = spawn_attached(&mock, &[]).await;
    let firing = crate::alertmanager::sample("alertmanager-sample.json");
    let incident_id = app.post_alert(&firing).await;

    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow_id = incident["workflow_ids"][0].as_str().expect("id");
    let workflow = finished_workflow(&app, workflow_id).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(workflow["mode"], "live");
    assert_deleted_verified_and_planned(&workflow);
    // The alert still fires: the incident stays open until Alertmanager says it resolved.
    let checkpoint = &workflow["steps"][3];
    assert_eq!(checkpoint["layer"], "application");
    assert_eq!(checkpoint["source_alert"], "firing");
    let incident = app
        .get_json(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_ne!(incident["status"], "resolved", "{incident}");
    assert_resolved_by_alertmanager(&app, &firing, &incident_id).await;
    assert_heal_metrics(&app).await;

    assert_one_live_delete_and_its_event(&mock);
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_delete_fails_the_step_with_the_reason_and_the_next_rung_fixes_it() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(
        api_pod_chain(2, json!({})),
        Writes::from([
            (
                ("DELETE".to_string(), POD.to_string()),
                vec![(403, status(403, "Forbidden"))],
            ),
            (
                ("PATCH".to_string(), DEPLOYMENT.to_string()),
                vec![(200, deployment("prod", "api", json!({}), 2))],
            ),
        ]),
    )
    .await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "pod", "api-7d9f", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let delete = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "delete_pod")
        .expect("delete step");
    assert_eq!(delete["outcome"], "failed");
    assert!(
        delete["detail"].as_str().is_some_and(|d| d.contains("403")),
        "{delete}"
    );
    let writes = writes_of(&mock.requests());
    assert_eq!(
        writes.iter().filter(|(m, _)| m == "DELETE").count(),
        1,
        "403 is not retried"
    );
    assert_eq!(writes.iter().filter(|(m, _)| m == "PATCH").count(), 1);
    mock.stop().await;
}

/// The pod was deleted, verified and checkpointed, on the channels the plan chose.
fn assert_deleted_verified_and_planned(workflow: &Value) {
    let outcomes: Vec<(&str, &str)> = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap_or_default(),
                s["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("detect", "done"),
            ("delete_pod", "done"),
            ("verify", "passed"),
            ("checkpoint", "passed")
        ]
    );
    assert_eq!(workflow["steps"][0]["deployment_method"], "manual");
    // The pod deletion was carried by the Kubernetes API (the DELETE below), and the stored
    // plan shows the channels detection chose: none left pending.
    assert_eq!(workflow["steps"][1]["channel"], "kubernetes");
    let planned: Vec<&str> = workflow["plan"]["steps"]
        .as_array()
        .expect("plan")
        .iter()
        .map(|s| s["channel"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        planned,
        vec!["kubernetes", "kubernetes", "kubernetes", "human"]
    );
    let verify = &workflow["steps"][2];
    assert!(
        verify["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 pods Ready, no restart")),
        "{verify}"
    );
}

/// Alertmanager says every alert of `firing` resolved: the incident is resolved.
async fn assert_resolved_by_alertmanager(
    app: &crate::helpers::TestApp,
    firing: &Value,
    incident_id: &str,
) {
    let mut resolved = firing.clone();
    resolved["status"] = json!("resolved");
    for alert in resolved["alerts"].as_array_mut().expect("alerts") {
        alert["status"] = json!("resolved");
        alert["endsAt"] = json!("2030-01-01T00:00:00Z");
    }
    let response = app.post_json("/webhooks/alertmanager", &resolved).await;
    assert_eq!(response.status(), 200);
    let incident = app
        .get_json(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(incident["status"], "resolved");
}

/// The workflow is stored as finished before its task counts it and leaves.
async fn assert_heal_metrics(app: &crate::helpers::TestApp) {
    let metrics = app
        .metrics_with(&[
            r#"coordination_engine_remediation_total{mode="live",status="succeeded"} 1"#,
            "coordination_engine_workflows_active 0",
            // Healed: its time to heal, under its layer and how the target is deployed.
            r#"coordination_engine_time_to_heal_seconds_count{layer="application",method="manual"} 1"#,
        ])
        .await;
    assert!(
        metrics.contains(
            r#"coordination_engine_cluster_requests_total{outcome="success",verb="delete"} 1"#
        ),
        "{metrics}"
    );
    // The alert's incident, under the layer detected for it.
    assert!(
        metrics.contains(
            r#"coordination_engine_incidents_total{layer="application",source="alertmanager"} 1"#
        ),
        "{metrics}"
    );
}

/// Exactly one write, a live DELETE of the pod, and the Event recorded on it.
fn assert_one_live_delete_and_its_event(mock: &MockApiServer) {
    let requests = mock.requests();
    assert_eq!(
        writes_of(&requests),
        vec![("DELETE".to_string(), POD.to_string())],
        "exactly one write"
    );
    let delete = requests
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("delete");
    assert!(
        !delete.query.contains_key("dryRun"),
        "a live delete: {:?}",
        delete.query
    );
    assert_eq!(events_of(&requests), vec!["RemediationPodDeleted"]);
    let event = requests
        .iter()
        .find(|r| r.path == "/api/v1/namespaces/prod/events")
        .expect("an event");
    assert_eq!(event.body["involvedObject"]["name"], "api-7d9f");
    assert_eq!(
        event.query.get("fieldManager").map(String::as_str),
        Some("coordination-engine")
    );
}
