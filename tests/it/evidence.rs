//! Evidence first: a live workflow confirms the symptom on its target before its first write,
//! whatever the trigger's source; names that are not Kubernetes names never reach the API
//! server; a store that fails mid-workflow fails the workflow instead of locking its target.

use crate::helpers::cluster::{
    DEPLOYMENT, POD, PODS, api_pod_chain, event_answer, pod_deletion, pod_list,
};
use crate::helpers::spawn_attached;
use crate::helpers::workflow::{events_of, finished_workflow, trigger, writes_of};
use crate::kube_mock::{MockApiServer, Recorded, Writes};
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
async fn a_not_ready_node_is_acted_on() {
    coordination_engine::tls::install_default_provider();
    // The node is NotReady; the cordon is refused (no answer for the PATCH): the workflow
    // went past the evidence and tried to write.
    let mock = MockApiServer::start(HashMap::from([
        (NODE.to_string(), node("Unknown")),
        (
            "/api/v1/nodes".to_string(),
            json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "1"}, "items": [node("Unknown")]}),
        ),
    ]))
    .await;
    let app = spawn_attached(&mock, &[]).await;
    let workflow = node_trigger(&app).await;
    assert_eq!(workflow["evidence"][0]["symptom"], "observed", "{workflow}");
    assert_eq!(
        workflow["evidence"][0]["detail"],
        "node worker-1 is not Ready (Ready=Unknown: KubeletReady)"
    );
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert_eq!(
        writes_of(&mock.requests()),
        vec![("PATCH".to_string(), NODE.to_string())],
        "the cordon was attempted"
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_workload_is_left_alone_and_a_crash_looping_one_is_restarted() {
    coordination_engine::tls::install_default_provider();
    // Two of two available, its pod Ready without a recent restart.
    let mut answers = Writes::from([event_answer("prod")]);
    answers.insert(
        ("PATCH".to_string(), DEPLOYMENT.to_string()),
        vec![(200, json!({}))],
    );
    let healthy = api_pod_chain(2, json!({}));
    let mock = MockApiServer::start_with(healthy, answers.clone()).await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "deployment", "api", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "not_needed", "{workflow}");
    assert!(
        workflow["evidence"][0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 pod(s) Ready, no recent restart")),
        "{workflow}"
    );
    assert!(writes_of(&mock.requests()).is_empty());
    mock.stop().await;

    // The same Deployment with its pod not Ready: restarted.
    answers.insert(
        ("GET".to_string(), PODS.to_string()),
        vec![
            (200, pod_list(&[("api-7d9f", false, 4)])),
            (200, pod_list(&[("api-7d9f", true, 0)])),
        ],
    );
    let mock = MockApiServer::start_with(api_pod_chain(2, json!({})), answers).await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "deployment", "api", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(workflow["evidence"][0]["symptom"], "observed");
    assert_eq!(
        workflow["evidence"][0]["detail"],
        "pod api-7d9f is not Ready (Ready=False)"
    );
    assert_eq!(
        writes_of(&mock.requests()),
        vec![("PATCH".to_string(), DEPLOYMENT.to_string())]
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_for_a_pod_that_is_healthy_again_writes_nothing() {
    coordination_engine::tls::install_default_provider();
    let mut lists = api_pod_chain(2, json!({}));
    let mut ready = crate::helpers::cluster::pod("prod", "api-7d9f", "api-rs");
    ready["status"] =
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
    lists.insert(POD.to_string(), ready);
    let mock = MockApiServer::start_with(lists, pod_deletion()).await;
    let app = spawn_attached(&mock, &[]).await;
    let incident_id = app
        .post_alert(&crate::alertmanager::sample("alertmanager-sample.json"))
        .await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = finished_workflow(&app, incident["workflow_ids"][0].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "not_needed", "{workflow}");
    assert_eq!(
        workflow["evidence"][0]["detail"],
        "pod prod/api-7d9f is Ready, no recent restart"
    );
    assert!(writes_of(&mock.requests()).is_empty(), "no pod deleted");
    let incident = app
        .get_json(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_eq!(
        incident["status"], "active",
        "an alert's incident follows its alert: {incident}"
    );
    assert!(incident.to_string().contains("not needed"), "{incident}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_mid_workflow_fails_it_and_frees_the_target() {
    use sqlx::Connection;
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(api_pod_chain(2, json!({})), pod_deletion()).await;
    let app = spawn_attached(&mock, &[]).await;
    // Every write that would record the step after the pod deletion (status `verifying`)
    // fails, as a full disk or a broken volume would.
    let db = app.data_dir.path().join("coordination-engine.db");
    let mut sqlite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query(
        "CREATE TRIGGER fail_progress BEFORE UPDATE ON workflows WHEN NEW.status = 'verifying' \
         BEGIN SELECT RAISE(ABORT, 'injected store failure'); END",
    )
    .execute(&mut sqlite)
    .await
    .expect("install the failure");
    let answer = trigger(&app, "prod", "pod", "api-7d9f", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "failed", "{workflow}");
    let error = workflow["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the store failed while persisting a step (4 attempts)")
            && error.contains("injected store failure"),
        "{error}"
    );
    assert!(workflow["finished_at"].is_string());
    // The target is free again: a new trigger starts a workflow (no 409).
    sqlx::query("DROP TRIGGER fail_progress")
        .execute(&mut sqlite)
        .await
        .expect("remove the failure");
    let again = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"namespace": "prod", "resource_type": "pod", "resource_name": "api-7d9f", "issue_type": "crash_loop"}),
        )
        .await;
    assert_eq!(again.status(), 202);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordination_workflow_skips_the_targets_that_are_healthy() {
    coordination_engine::tls::install_default_provider();
    let mut lists = api_pod_chain(2, json!({}));
    lists.insert(NODE.to_string(), node("True"));
    let mock = MockApiServer::start_with(lists, pod_deletion()).await;
    let app = spawn_attached(&mock, &[]).await;
    let response = app
        .post_json(
            "/api/v1/coordination/trigger",
            &json!({"description": "api crash looping, worker-1 suspected",
                    "resources": [
                        {"kind": "Pod", "namespace": "prod", "name": "api-7d9f", "issue": "crash_loop"},
                        {"kind": "Node", "name": "worker-1", "issue": "node_not_ready"}]}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let seen: Vec<(&str, &str)> = workflow["evidence"]
        .as_array()
        .expect("evidence")
        .iter()
        .map(|e| {
            (
                e["target"]["kind"].as_str().unwrap_or_default(),
                e["symptom"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![("Node", "not_observed"), ("Pod", "observed")],
        "the node (lowest layer) first"
    );
    assert_eq!(
        writes_of(&mock.requests()),
        vec![("DELETE".to_string(), POD.to_string())],
        "the Ready node is never cordoned; the crash-looping pod is replaced"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_whose_target_is_not_a_kubernetes_name_reaches_a_human_and_not_the_api() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(HashMap::new()).await;
    let app = spawn_attached(&mock, &[]).await;
    let incident_id = app.post_alert(&instance_only_alert()).await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = finished_workflow(&app, incident["workflow_ids"][0].as_str().expect("id")).await;
    assert_eq!(workflow["mode"], "live", "{workflow}");
    assert_escalated_to_a_human(&workflow);
    let requests = mock.requests();
    assert_eq!(
        workflow_requests(&requests),
        Vec::<(&str, &str)>::new(),
        "no request but the watchers'"
    );
    mock.stop().await;
}

#[tokio::test]
async fn a_detached_engine_escalates_an_alert_whose_target_is_not_a_kubernetes_name() {
    let app = crate::helpers::spawn_app().await;
    let incident_id = app.post_alert(&instance_only_alert()).await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = finished_workflow(&app, incident["workflow_ids"][0].as_str().expect("id")).await;
    assert_escalated_to_a_human(&workflow);
}
