//! Triggers and the pipeline (planning, gates, dry-run recording) through the HTTP API.

mod gates;

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use serde_json::{Value, json};

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
    assert_recorded_as_a_dry_run_after_every_gate(&workflow);

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

/// Every step recorded as a dry run, after every gate in order, the last deciding "dry run".
fn assert_recorded_as_a_dry_run_after_every_gate(workflow: &Value) {
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
