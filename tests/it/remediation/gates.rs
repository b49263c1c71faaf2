//! Gates and queues: pauses, one active workflow per target, the storm budget, approval.

use super::{seed_body, trigger};
use crate::helpers::{error_body, spawn_app, spawn_app_with};
use chrono::Utc;
use coordination_engine::store::Store;
use coordination_engine::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn gates_hold_paused_namespaces_and_refuse_a_second_active_workflow() {
    let app = spawn_app().await;
    // Paused: recorded, not run.
    app.post_json("/api/v1/pause?namespace=frozen", &json!({}))
        .await;
    let paused: Value = trigger(&app, json!({"namespace": "frozen", "resource_type": "pod", "resource_name": "p", "issue_type": "crash_loop"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(paused["status"], "cancelled");
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            paused["workflow_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(workflow["gate_decisions"][0]["outcome"], "block");
    assert!(
        workflow["steps"].as_array().expect("steps").is_empty(),
        "nothing ran"
    );

    // One active workflow per target.
    let incident = app
        .create_incident(json!({"title": "t", "namespace": "shop"}))
        .await;
    let mut active = Workflow::new(
        &incident,
        Some("shop".into()),
        WorkflowKind::Remediation,
        WorkflowMode::Live,
        Utc::now(),
    );
    active.status = WorkflowStatus::AwaitingApproval;
    active.target_key = Some("shop/Deployment/cart".into());
    app.store.insert_workflow(&active).await.expect("insert");
    let second = trigger(&app, json!({"namespace": "shop", "resource_type": "deployment", "resource_name": "cart", "issue_type": "crash_loop"})).await;
    assert_eq!(second.status(), 409);
    let (_, body) = error_body(second).await;
    assert_eq!(body["error"]["details"]["workflow_id"], active.id.as_str());

    // Storms (live workflows only; dry runs like these never spend the budget): storm.rs and
    // `a_storm_of_50_alerts_in_one_namespace_is_stopped_by_the_budget`.
}

#[tokio::test]
async fn an_alert_from_alertmanager_is_picked_up_from_the_queue() {
    let app = spawn_app().await;
    let firing = crate::alertmanager::sample("alertmanager-sample.json");
    let id = app.post_alert(&firing).await;
    let incident = app.incident_with_workflow(&id).await;
    app.queue_drained().await;
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            incident["workflow_ids"][0].as_str().expect("id")
        ))
        .await;
    assert_eq!(workflow["plan"]["issue_type"], "crash_loop");
    assert_eq!(workflow["target_key"], "prod/Pod/api-7d9f");
}

#[tokio::test]
async fn a_coordination_trigger_plans_the_lowest_layer_first() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/coordination/trigger",
            &json!({"incident_id": "ext-7", "description": "checkout down after node failure",
                    "resources": [
                        {"kind": "Deployment", "name": "checkout", "namespace": "shop", "issue": "crash_loop"},
                        {"kind": "Node", "name": "worker-3", "issue": "node_not_ready"}]}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["root_cause_layer"], "infrastructure");
    assert_eq!(
        body["affected_layers"],
        json!(["infrastructure", "application"])
    );
    assert!(body["estimated_steps"].is_i64());
    assert_eq!(
        body["plan"]["steps"][0]["target"]["kind"], "Node",
        "the node comes first"
    );
    let listed = app.get_json("/api/v1/coordination/workflows").await;
    assert_eq!(listed["workflows"][0]["id"], body["workflow_id"]);
    let empty = app
        .post_json(
            "/api/v1/coordination/trigger",
            &json!({"description": "x", "resources": []}),
        )
        .await;
    assert_eq!(empty.status(), 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_50_alerts_in_one_namespace_is_stopped_by_the_budget() {
    coordination_engine::tls::install_default_provider();
    // Attached, so each workflow is live and spends the budget; the pods do not exist (each
    // live workflow escalates: it cannot read its target).
    let mock = crate::kube_mock::MockApiServer::start(Default::default()).await;
    let app = crate::helpers::spawn_attached(&mock, &[]).await;
    let notification = fifty_alerts_in_namespace_storm();
    let posted: Value = app
        .post_json("/webhooks/alertmanager", &notification)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(posted["created"], 50);
    wait_until_the_queue_is_drained(&app).await;
    let workflows = app
        .get_json("/api/v1/workflows?namespace=storm&limit=100")
        .await;
    let mut by_status: std::collections::BTreeMap<String, usize> = Default::default();
    for w in workflows["workflows"].as_array().expect("array") {
        *by_status
            .entry(w["status"].as_str().expect("status").to_string())
            .or_default() += 1;
    }
    assert_eq!(
        by_status.get("cancelled"),
        Some(&44),
        "held by the pause the storm set: {by_status:?}"
    );
    let storms: Vec<&Value> = workflows["workflows"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|w| {
            w["escalation"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("5 live workflows for namespace storm"))
        })
        .collect();
    assert_eq!(storms.len(), 1, "the sixth: {by_status:?}");
    assert_eq!(storms[0]["escalation"]["paused"], "namespace/storm");
    let pauses = app.get_json("/api/v1/pause").await;
    assert_eq!(
        pauses["pauses"].as_array().map(Vec::len),
        Some(1),
        "{pauses}"
    );
    assert_eq!(pauses["pauses"][0]["bucket"], "namespace/storm");
    assert!(
        pauses["pauses"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("storm budget"))
    );
    assert_the_named_call_lifts_the_pause(&app, storms[0], &pauses).await;
    mock.stop().await;
}

#[tokio::test]
async fn listed_actions_wait_for_approval_and_run_once_approved() {
    let app = spawn_app_with(|env| {
        env.insert(
            "APPROVAL_REQUIRED_ACTIONS".into(),
            "delete_pod,rollback".into(),
        );
    })
    .await;
    let answer: Value = trigger(&app, seed_body("needs-approval"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["status"], "awaiting_approval");
    let id = answer["workflow_id"].as_str().expect("id");
    let approved = app
        .client
        .post(app.url(&format!("/api/v1/workflows/{id}/approve")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("approve");
    assert_eq!(approved.status(), 200);
    let workflow = app.get_json(&format!("/api/v1/workflows/{id}")).await;
    assert_eq!(
        workflow["status"], "succeeded",
        "detached: recorded as a dry run once approved: {workflow}"
    );
    assert!(
        workflow["gate_decisions"]
            .as_array()
            .expect("gates")
            .iter()
            .any(|g| g["gate"] == "approval" && g["outcome"] == "await_approval")
    );
    let env = [(
        "APPROVAL_REQUIRED_ACTIONS".to_string(),
        "reboot_cluster".to_string(),
    )]
    .into_iter()
    .collect();
    let error = coordination_engine::config::load(&coordination_engine::config::Sources {
        files: vec![],
        env,
    })
    .expect_err("unknown actions are a config error")
    .to_string();
    assert!(
        error.contains("APPROVAL_REQUIRED_ACTIONS") && error.contains("reboot_cluster"),
        "{error}"
    );
}

/// The sample notification with 50 alerts for 50 pods of namespace `storm`.
fn fifty_alerts_in_namespace_storm() -> Value {
    let mut notification = crate::alertmanager::sample("alertmanager-sample.json");
    let template = notification["alerts"][0].clone();
    notification["alerts"] = Value::Array(
        (0..50)
            .map(|i| {
                let mut alert = template.clone();
                alert["labels"]["namespace"] = json!("storm");
                alert["labels"]["pod"] = json!(format!("api-{i}"));
                alert["fingerprint"] = json!(format!("{i:016x}"));
                alert
            })
            .collect(),
    );
    notification
}

async fn wait_until_the_queue_is_drained(app: &crate::helpers::TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        if app
            .store
            .queued_incidents(100)
            .await
            .expect("queue")
            .is_empty()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the queue was not drained");
    }
}

/// The escalation names the call that lifts the pause; made exactly as written, it does.
async fn assert_the_named_call_lifts_the_pause(
    app: &crate::helpers::TestApp,
    storm: &Value,
    pauses: &Value,
) {
    let needed = storm["escalation"]["needed"].as_str().unwrap_or_default();
    let call = needed
        .split_once("resume with ")
        .map(|(_, call)| call)
        .unwrap_or_default();
    let (method, path) = call.split_once(' ').unwrap_or_default();
    assert_eq!(method, "DELETE", "{needed}");
    let resumed = app
        .client
        .delete(app.url(path))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("resume");
    assert_eq!(resumed.status(), 200, "{call}");
    // The storm's pause is gone. (The resume queues the held alerts again, and their
    // workflows may spend the budget at once and pause the namespace anew: a later pause.)
    let lifted = &pauses["pauses"][0]["since"];
    assert!(lifted.is_string(), "{pauses}");
    let pauses = app.get_json("/api/v1/pause").await;
    assert!(
        pauses["pauses"]
            .as_array()
            .expect("pauses")
            .iter()
            .all(|p| &p["since"] != lifted),
        "{call} lifted it: {pauses}"
    );
}
