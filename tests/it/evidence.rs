//! Evidence first, through the real binary: a live workflow confirms the symptom on its target
//! with exactly the reads it needs before its first write, whatever the trigger's source
//! (the API, the compatibility listener); names that are not Kubernetes names are refused
//! before they reach the API server. What the evidence decides is unit-tested against the
//! in-memory cluster (`src/pipeline/ladders/evidence.rs`).

use crate::helpers::spawn_attached;
use crate::helpers::workflow::{events_of, finished_workflow, writes_of};
use crate::kube_mock::{MockApiServer, Recorded};
use serde_json::{Value, json};
use std::collections::HashMap;

const NODE: &str = "/api/v1/nodes/worker-1";

fn node(ready: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"},
           "spec": {}, "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]}})
}

/// Every request but the guard's watchers (their paged lists and watches): what the workflow
/// asked the API server.
fn workflow_requests(requests: &[Recorded]) -> Vec<(&str, &str)> {
    requests
        .iter()
        .filter(|r| !r.query.contains_key("limit") && !r.query.contains_key("watch"))
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect()
}

async fn node_trigger(app: &crate::helpers::TestApp) -> Value {
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"resource_type": "node", "resource_name": "worker-1", "issue_type": "node_not_ready"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    finished_workflow(app, answer["workflow_id"].as_str().expect("id")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_node_is_not_cordoned_the_workflow_is_not_needed() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(HashMap::from([(NODE.to_string(), node("True"))])).await;
    let app = spawn_attached(&mock, &[]).await;
    let workflow = node_trigger(&app).await;
    assert_eq!(workflow["status"], "not_needed", "{workflow}");
    assert_eq!(workflow["mode"], "live");
    assert_eq!(workflow["evidence"][0]["symptom"], "not_observed");
    assert_eq!(workflow["evidence"][0]["detail"], "node worker-1 is Ready");
    assert_eq!(workflow["evidence"][0]["issue_type"], "node_not_ready");
    let requests = mock.requests();
    assert_eq!(
        workflow_requests(&requests),
        vec![("GET", NODE)],
        "the node was read once, and nothing else was asked"
    );
    assert!(writes_of(&requests).is_empty(), "{requests:?}");
    assert!(events_of(&requests).is_empty(), "not even an Event");
    let incident = app
        .get_json(&format!(
            "/api/v1/incidents/{}",
            workflow["incident_id"].as_str().expect("id")
        ))
        .await;
    assert!(
        incident.to_string().contains("not needed"),
        "the incident says why: {incident}"
    );
    assert_eq!(
        incident["status"], "resolved",
        "a triggered incident is closed by the evidence: {incident}"
    );
    // Stored as finished before it is counted.
    app.metrics_with(&[
        r#"coordination_engine_remediation_total{mode="live",status="not_needed"} 1"#,
    ])
    .await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_are_not_kubernetes_names_never_reach_the_api_server() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(HashMap::new()).await;
    let app = spawn_attached(&mock, &[]).await;
    for (body, field) in [
        (
            json!({"resource_type": "node", "resource_name": "../../api/v1/secrets", "issue_type": "node_not_ready"}),
            "resource_name",
        ),
        (
            json!({"resource_type": "node", "resource_name": "Worker_1", "issue_type": "node_not_ready"}),
            "resource_name",
        ),
        (
            json!({"namespace": "prod", "resource": {"kind": "Pod", "name": "api?watch=true"}, "issue": {"type": "crash_loop"}}),
            "resource.name",
        ),
        (
            json!({"namespace": "prod", "resource_type": "pods/exec", "resource_name": "api", "issue_type": "crash_loop"}),
            "resource_type",
        ),
    ] {
        let response = app.post_json("/api/v1/remediation/trigger", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let (code, error) = crate::helpers::error_body(response).await;
        assert_eq!(code, "validation_failed");
        assert_eq!(error["error"]["details"]["field"], field, "{error}");
    }
    let coordination = app
        .post_json(
            "/api/v1/coordination/trigger",
            &json!({"description": "x", "resources": [{"kind": "Node", "name": "-bad-"}]}),
        )
        .await;
    assert_eq!(coordination.status(), 422);
    let requests = mock.requests();
    assert_eq!(
        workflow_requests(&requests),
        Vec::<(&str, &str)>::new(),
        "no request but the watchers'"
    );
    let workflows = app.get_json("/api/v1/workflows").await;
    assert_eq!(workflows["workflows"].as_array().map(Vec::len), Some(0));
    mock.stop().await;
}

/// Triggers through the compatibility listener follow COMPAT_TRIGGER_MODE; in `live` mode the
/// evidence check still stands between the token-less caller and a healthy node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_compat_trigger_on_a_healthy_node_writes_nothing() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(HashMap::from([(NODE.to_string(), node("True"))])).await;
    let app = spawn_attached(
        &mock,
        &[("COMPAT_HTTP_PORT", "0"), ("COMPAT_TRIGGER_MODE", "live")],
    )
    .await;
    let compat = app.compat_addr.expect("compat listener");
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{compat}/api/v1/remediation/trigger"))
        .json(&json!({"resource_type": "node", "resource_name": "worker-1", "issue_type": "NodeNotReady"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "not_needed", "{workflow}");
    assert_eq!(workflow_requests(&mock.requests()), vec![("GET", NODE)]);
    mock.stop().await;
}

/// A firing alert that names only a scrape target (`instance="10.0.0.1:9100"`): its target
/// `Instance/10.0.0.1:9100` is not a Kubernetes name.
fn instance_only_alert() -> Value {
    let mut notification = crate::alertmanager::sample("alertmanager-sample.json");
    let labels = json!({"alertname": "PodCrashLooping", "instance": "10.0.0.1:9100", "severity": "critical"});
    notification["alerts"][0]["labels"] = labels.clone();
    notification["commonLabels"] = labels;
    notification
}

fn assert_escalated_to_a_human(workflow: &Value) {
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert_eq!(workflow["escalation"]["channel"], "human", "{workflow}");
    let reason = workflow["escalation"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("10.0.0.1:9100") && reason.contains("not a valid Kubernetes"),
        "{workflow}"
    );
    assert!(workflow["error"].is_null(), "{workflow}");
}

#[tokio::test]
async fn a_detached_engine_escalates_an_alert_whose_target_is_not_a_kubernetes_name() {
    let app = crate::helpers::spawn_app().await;
    let incident_id = app.post_alert(&instance_only_alert()).await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = finished_workflow(&app, incident["workflow_ids"][0].as_str().expect("id")).await;
    assert_escalated_to_a_human(&workflow);
}
