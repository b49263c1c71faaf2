//! The storm budget counts live workflows per bucket (a namespace, or a kind of cluster-scoped
//! target); dry runs and held workflows do not spend it, and a spent bucket pauses only itself.

use crate::helpers::workflow::finished_workflow;
use crate::helpers::{spawn_app, spawn_attached};
use crate::kube_mock::MockApiServer;
use serde_json::{Value, json};
use std::collections::HashMap;

async fn node_trigger(app: &crate::helpers::TestApp, name: &str, dry_run: bool) -> Value {
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"resource_type": "node", "resource_name": name, "issue_type": "node_not_ready", "dry_run": dry_run}),
        )
        .await;
    assert_eq!(response.status(), 202);
    response.json().await.expect("json")
}

fn gate<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    workflow["gate_decisions"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["gate"] == name))
        .unwrap_or_else(|| panic!("no {name} gate in {workflow}"))
}

#[tokio::test]
async fn eight_dry_run_node_triggers_pause_nothing() {
    let app = spawn_app().await;
    for _ in 0..8 {
        let answer = node_trigger(&app, "worker-1", true).await;
        assert_eq!(answer["status"], "succeeded", "{answer}");
    }
    let pauses = app.get_json("/api/v1/pause").await;
    assert_eq!(pauses["pauses"], json!([]), "{pauses}");
    assert_eq!(pauses["budget"]["cluster"], 0, "dry runs spend nothing");
    // Workloads are still remediated (planned and recorded: detached).
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"namespace": "shop", "resource_type": "pod", "resource_name": "cart-1", "issue_type": "crash_loop"}),
        )
        .await;
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["status"], "succeeded", "{answer}");
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            answer["workflow_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(gate(&workflow, "storm_budget")["outcome"], "pass");
}

fn not_ready(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
           "status": {"conditions": [{"type": "Ready", "status": "False"}]}})
}

/// `node-0` … `node-<n-1>`, all NotReady, as the API server answers them.
fn not_ready_nodes(n: usize) -> HashMap<String, Value> {
    (0..n)
        .map(|i| {
            (
                format!("/api/v1/nodes/node-{i}"),
                not_ready(&format!("node-{i}")),
            )
        })
        .collect()
}

/// The storm's workflow says why it escalated and how to resume; the pause and the budget's
/// use are listed.
async fn assert_the_node_kind_is_paused(app: &crate::helpers::TestApp, storm: &Value) {
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            storm["workflow_id"].as_str().expect("id")
        ))
        .await;
    let reason = gate(&workflow, "storm_budget")["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("5 live workflows for cluster-scoped Node targets"),
        "{reason}"
    );
    assert_eq!(workflow["escalation"]["paused"], "kind/Node");
    let needed = workflow["escalation"]["needed"]
        .as_str()
        .unwrap_or_default();
    assert!(
        needed.ends_with("resume with DELETE /api/v1/pause?kind=Node"),
        "{needed}"
    );
    let pauses = app.get_json("/api/v1/pause").await;
    assert_eq!(
        pauses["pauses"].as_array().map(Vec::len),
        Some(1),
        "{pauses}"
    );
    let pause = &pauses["pauses"][0];
    assert_eq!(pause["scope"], "kind");
    assert_eq!(pause["kind"], "Node");
    assert_eq!(pause["bucket"], "kind/Node");
    assert_eq!(pause["namespace"], Value::Null);
    // The budget's use: five node workflows spent the Node bucket's five.
    let budget = &pauses["budget"];
    assert_eq!(budget["per_bucket"], 5);
    assert_eq!(budget["window_seconds"], 600);
    assert_eq!(
        budget["buckets"],
        json!([{"bucket": "kind/Node", "live_workflows": 5}]),
        "{budget}"
    );
}

async fn assert_a_crash_looping_pod_runs_live(app: &crate::helpers::TestApp) {
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"namespace": "shop", "resource_type": "pod", "resource_name": "cart-1", "issue_type": "crash_loop"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            answer["workflow_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(gate(&workflow, "pause")["outcome"], "pass", "{workflow}");
    assert_eq!(gate(&workflow, "storm_budget")["outcome"], "pass");
    assert_eq!(workflow["mode"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_node_bucket_pauses_nodes_only() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(not_ready_nodes(8)).await;
    let app = spawn_attached(&mock, &[]).await;
    // Five live node workflows (the budget of a bucket) run; the cordon is refused by the mock.
    for i in 0..5 {
        let answer = node_trigger(&app, &format!("node-{i}"), false).await;
        let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
        assert_eq!(workflow["mode"], "live");
        assert_eq!(gate(&workflow, "storm_budget")["outcome"], "pass");
    }
    let storm = node_trigger(&app, "node-5", false).await;
    assert_eq!(storm["status"], "escalated", "{storm}");
    assert_the_node_kind_is_paused(&app, &storm).await;

    // Nodes are held now…
    let held = node_trigger(&app, "node-6", false).await;
    assert_eq!(held["status"], "cancelled", "{held}");
    // …but a crash-looping pod is still remediable: its namespace's bucket is untouched.
    assert_a_crash_looping_pod_runs_live(&app).await;

    // Resuming the bucket by kind lets nodes through again.
    let resumed: Value = app
        .client
        .delete(app.url("/api/v1/pause?kind=node"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("resume")
        .json()
        .await
        .expect("json");
    assert_eq!(resumed["paused"], false);
    assert_eq!(resumed["bucket"], "kind/Node");
    let pauses = app.get_json("/api/v1/pause").await;
    assert_eq!(pauses["pauses"], json!([]));
    mock.stop().await;
}

#[tokio::test]
async fn a_kind_pause_takes_only_cluster_scoped_kinds() {
    let app = spawn_app().await;
    let paused: Value = app
        .post_json(
            "/api/v1/pause?kind=ClusterOperator",
            &json!({"reason": "upgrade"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(paused["scope"], "kind");
    assert_eq!(paused["bucket"], "kind/ClusterOperator");
    for query in ["kind=Deployment", "kind=Node&namespace=shop"] {
        let response = app
            .post_json(&format!("/api/v1/pause?{query}"), &json!({}))
            .await;
        assert_eq!(response.status(), 400, "{query}");
    }
    // The operator bucket is paused; nodes are not.
    let node = node_trigger(&app, "worker-1", false).await;
    assert_eq!(node["status"], "succeeded", "{node}");
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"resource_type": "ClusterOperator", "resource_name": "ingress", "issue_type": "operator_degraded"}),
        )
        .await;
    let operator: Value = response.json().await.expect("json");
    assert_eq!(operator["status"], "cancelled", "{operator}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_awaiting_approval_do_not_spend_the_budget() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(not_ready_nodes(8)).await;
    let app = spawn_attached(&mock, &[("APPROVAL_REQUIRED_ACTIONS", "cordon")]).await;
    for i in 0..8 {
        let answer = node_trigger(&app, &format!("node-{i}"), false).await;
        assert_eq!(answer["status"], "awaiting_approval", "node-{i}: {answer}");
    }
    let pauses = app.get_json("/api/v1/pause").await;
    assert_eq!(pauses["pauses"], json!([]), "{pauses}");
    mock.stop().await;
}

/// A KubeNodeNotReady alert as kube-state-metrics sends it: its `namespace` label is the
/// exporter's, not the node's.
fn node_alert(node: &str) -> Value {
    let mut notification = crate::alertmanager::sample("alertmanager-sample.json");
    let labels = json!({"alertname": "KubeNodeNotReady", "node": node,
                        "namespace": "openshift-monitoring", "severity": "critical"});
    notification["alerts"][0]["labels"] = labels.clone();
    notification["commonLabels"] = labels;
    notification["groupLabels"] = json!({"alertname": "KubeNodeNotReady"});
    notification
}

async fn delete_pause(app: &crate::helpers::TestApp, query: &str) -> Value {
    app.client
        .delete(app.url(&format!("/api/v1/pause?{query}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("resume")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn a_node_alert_held_by_a_kind_pause_is_judged_again_when_that_kind_is_resumed() {
    let app = spawn_app().await;
    app.post_json("/api/v1/pause?kind=Node", &json!({})).await;
    let incident_id = app.post_alert(&node_alert("worker-1")).await;
    let held = app.incident_with_workflow(&incident_id).await;
    app.queue_drained().await;
    let held_id = held["workflow_ids"][0].as_str().expect("id").to_string();
    let workflow = app.get_json(&format!("/api/v1/workflows/{held_id}")).await;
    assert_eq!(workflow["status"], "cancelled", "{workflow}");
    assert_eq!(
        workflow["target_key"], "/Node/worker-1",
        "a node has no namespace"
    );
    assert_eq!(
        gate(&workflow, "pause")["reason"],
        "remediation is paused for cluster-scoped Node targets"
    );
    // Resuming the exporter's namespace is not resuming nodes.
    assert_eq!(
        delete_pause(&app, "namespace=openshift-monitoring").await["requeued"],
        0
    );
    let resumed = delete_pause(&app, "kind=Node").await;
    assert_eq!(resumed["requeued"], 1, "{resumed}");
    let path = format!("/api/v1/incidents/{incident_id}");
    crate::helpers::wait_for(
        "a second workflow for the held node alert",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || async {
            let incident = app.get_json(&path).await;
            (incident["workflow_ids"].as_array().map(Vec::len) == Some(2)).then_some(())
        },
    )
    .await;
}
