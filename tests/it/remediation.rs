//! Triggers and the pipeline (planning, gates, dry-run recording) through the HTTP API.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use chrono::Utc;
use coordination_engine::store::Store;
use coordination_engine::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn trigger(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/api/v1/remediation/trigger", &body).await
}

fn seed_body(name: &str) -> Value {
    // The seed README's curl, as pasted.
    json!({"namespace": "production", "resource_type": "pod", "resource_name": name,
           "issue_type": "CrashLoopBackOff", "severity": "high"})
}

#[tokio::test]
async fn the_seed_readme_trigger_plans_gates_and_records_a_dry_run_in_detached_mode() {
    let app = spawn_app().await;
    let response = trigger(&app, seed_body("my-app-abc123")).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    for field in [
        "workflow_id",
        "incident_id",
        "status",
        "deployment_method",
        "estimated_duration",
    ] {
        assert!(body[field].is_string(), "{field} is a string: {body}");
    }
    // Detached: nothing to detect from, and the answer says so.
    assert_eq!(body["deployment_method"], "unknown");
    assert_eq!(body["deployment_method_detected"], false);
    assert_eq!(
        body["deployment_method_detail"],
        "detached: no cluster to read the owner chain from"
    );
    assert_eq!(body["estimated_duration"], "6m0s");
    let actions: Vec<&str> = body["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        actions,
        vec!["delete_pod", "rollout_restart", "rollback", "escalate"]
    );

    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            body["workflow_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(workflow["mode"], "dry_run");
    assert_eq!(workflow["status"], "succeeded");
    assert_eq!(workflow["plan"]["root_cause_layer"], "application");
    assert_eq!(workflow["steps"].as_array().expect("steps").len(), 4);
    assert!(
        workflow["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["outcome"] == "dry_run")
    );
    let gates: Vec<&str> = workflow["gate_decisions"]
        .as_array()
        .expect("gates")
        .iter()
        .map(|g| g["gate"].as_str().expect("gate"))
        .collect();
    assert_eq!(
        gates,
        vec![
            "pause",
            "single_active",
            "cooldown",
            "storm_budget",
            "approval",
            "dry_run"
        ]
    );
    assert_eq!(workflow["gate_decisions"][5]["outcome"], "dry_run");

    let incident = app
        .get_json(&format!(
            "/api/v1/incidents/{}",
            body["incident_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(incident["issue_type"], "crash_loop");
    assert_eq!(incident["target"], "Pod/my-app-abc123");
    assert_eq!(incident["workflow_ids"][0], body["workflow_id"]);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"coordination_engine_remediation_total{mode="dry_run",status="succeeded"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"coordination_engine_workflow_gate_decisions_total{gate="dry_run",outcome="dry_run"} 1"#
    ));
}

#[tokio::test]
async fn the_mcp_nested_shape_keeps_the_client_incident_id_and_honours_dry_run() {
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
    })
    .await;
    let body = json!({"incident_id": "mcp-42", "namespace": "shop",
        "resource": {"kind": "Deployment", "name": "cart"},
        "issue": {"type": "pod_crash", "description": "", "severity": "critical"}, "dry_run": true});
    // Through the compatibility listener, as the MCP server sends it: no token, plain HTTP.
    let compat = app.compat_addr.expect("compat");
    let response = reqwest::Client::new()
        .post(format!("http://{compat}/api/v1/api/v1/remediation/trigger"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let incident = app
        .get_json(&format!(
            "/api/v1/incidents/{}",
            answer["incident_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(incident["external_id"], "mcp-42");
    assert_eq!(incident["severity"], "critical");
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            answer["workflow_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(workflow["gate_decisions"][5]["reason"], "dry run requested");
}

#[tokio::test]
async fn invalid_triggers_are_422_naming_the_field() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            json!({"resource_type": "pod", "resource_name": "x", "issue_type": "crash"}),
            "namespace",
        ),
        (
            json!({"namespace": "a", "resource_type": "pod", "issue_type": "crash"}),
            "resource_name",
        ),
        (
            json!({"namespace": "a", "resource_type": "pod", "resource_name": "x", "issue_type": "crash", "severity": "urgent"}),
            "severity",
        ),
        (
            json!({"namespace": "a", "resource_type": "pod", "resource_name": "x", "issue_type": "crash", "color": "red"}),
            "color",
        ),
        (
            json!({"namespace": "Bad_NS", "resource_type": "pod", "resource_name": "x", "issue_type": "crash"}),
            "namespace",
        ),
        (
            json!({"resource": {"kind": "Pod", "name": "x"}, "issue": {"type": "crash"}}),
            "namespace",
        ),
        (
            json!({"namespace": "a", "resource": {"kind": "Pod"}, "issue": {"type": "crash"}}),
            "name",
        ),
    ] {
        let response = trigger(&app, body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let (_, error) = error_body(response).await;
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{body}: {error}"
        );
    }
    // A Node is cluster-scoped: no namespace needed.
    let node = trigger(
        &app,
        json!({"resource_type": "node", "resource_name": "worker-1", "issue_type": "NodeNotReady"}),
    )
    .await;
    assert_eq!(node.status(), 202);
    let node: Value = node.json().await.expect("json");
    assert_eq!(node["plan"]["root_cause_layer"], "infrastructure");
}

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
    let posted: Value = app
        .post_json("/webhooks/alertmanager", &notification)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(posted["created"], 50);
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
    // The escalation names the call that lifts the pause; made exactly as written, it does.
    let needed = storms[0]["escalation"]["needed"]
        .as_str()
        .unwrap_or_default();
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

#[tokio::test]
async fn detect_without_a_cluster_gives_the_layer_only() {
    let app = spawn_app().await;
    let node = app.get_json("/api/v1/detect/Node/none/worker-1").await;
    assert_eq!(node["mode"], "detached");
    assert_eq!(node["layer"]["layer"], "infrastructure");
    assert!(node["deployment"].is_null());
    let system = app
        .get_json("/api/v1/detect/Pod/openshift-ingress/router-1")
        .await;
    assert_eq!(system["layer"]["layer"], "platform");
    assert_eq!(
        app.get_authed("/api/v1/detect/Pod/Bad_NS/x").await.status(),
        404
    );
}
