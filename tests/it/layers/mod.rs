//! The infrastructure and platform channels against the mock API server, and a multi-layer
//! workflow that runs infrastructure, then platform, then application, with a checkpoint after
//! each layer.

mod fixtures;

use crate::helpers::cluster::POD;
use crate::helpers::workflow::finished_workflow;
use crate::helpers::workflow::writes_of as writes;
use crate::helpers::{TestApp, spawn_attached};
use crate::kube_mock::{MockApiServer, Recorded};
use fixtures::{NODE, OPERATOR_NS, PODS_ON_NODES, POOLS};
use fixtures::{application_layer, node_layer, platform_layer, start};
use serde_json::{Value, json};

/// Checkpoints long enough for a node drain's evictions.
const LAYER_TIMEOUTS: &[(&str, &str)] = &[
    ("WORKLOAD_CHECKPOINT_TIMEOUT", "5s"),
    ("DRAIN_TIMEOUT", "3s"),
];

async fn trigger_one(app: &TestApp, kind: &str, name: &str, issue: &str) -> Value {
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"resource_type": kind, "resource_name": name, "issue_type": issue}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    finished_workflow(app, answer["workflow_id"].as_str().expect("id")).await
}

/// A node-2 workflow that must escalate with a reason naming every one of `needles`, without
/// a single write: nothing cordoned, nothing evicted.
async fn node_escalates_untouched(mock: MockApiServer, needles: &[&str]) {
    let app = spawn_attached(&mock, LAYER_TIMEOUTS).await;
    let workflow = trigger_one(&app, "node", "node-2", "node_not_ready").await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    let reason = workflow["escalation"]["reason"]
        .as_str()
        .unwrap_or_default();
    for needle in needles {
        assert!(reason.contains(needle), "{needle:?} not in {reason:?}");
    }
    assert!(
        writes(&mock.requests()).is_empty(),
        "nothing cordoned or evicted"
    );
    mock.stop().await;
}

fn step<'a>(workflow: &'a Value, action: &str) -> &'a Value {
    workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == action)
        .unwrap_or_else(|| panic!("no {action} step in {workflow}"))
}

fn evictions(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.path.ends_with("/eviction"))
        .map(|r| r.path.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_ready_node_waits_for_maintenance_then_is_cordoned_and_drained_around_a_pdb() {
    coordination_engine::tls::install_default_provider();
    let mock = start(vec![node_layer(false, 2, false)]).await;
    let app = spawn_attached(&mock, LAYER_TIMEOUTS).await;
    let workflow = trigger_one(&app, "node", "node-2", "NodeNotReady").await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let cordon = step(&workflow, "cordon");
    assert_eq!(cordon["channel"], "node");
    assert!(
        cordon["detail"].as_str().is_some_and(|d| d
            .contains("waited for maintenance (MachineConfigPool worker is updating)")
            && d.contains("cordoned node node-2")),
        "{cordon}"
    );
    assert!(
        step(&workflow, "drain")["detail"]
            .as_str()
            .is_some_and(|d| d.contains("shop/web-1 (after 2 PDB refusals)")),
        "{workflow}"
    );
    let checkpoint = step(&workflow, "checkpoint");
    assert_eq!(checkpoint["layer"], "infrastructure");
    assert!(
        checkpoint["detail"]
            .as_str()
            .is_some_and(|d| d.contains("node node-2 is not Ready: it stays cordoned")),
        "{checkpoint}"
    );

    let requests = mock.requests();
    let patch = requests
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("cordon");
    assert_eq!(patch.path, NODE);
    assert_eq!(
        patch.body,
        json!({"metadata": {"annotations": {"coordination-engine.io/cordoned": "true"}},
               "spec": {"unschedulable": true}})
    );
    assert_eq!(
        patch.query.get("fieldManager").map(String::as_str),
        Some("coordination-engine")
    );
    assert_eq!(
        evictions(&requests),
        vec![
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            "/api/v1/namespaces/shop/pods/web-1/eviction",
            "/api/v1/namespaces/shop/pods/db-0/eviction",
        ],
        "refused evictions are retried; the DaemonSet pod is skipped"
    );
    let eviction = requests
        .iter()
        .find(|r| r.path.ends_with("/eviction"))
        .expect("eviction");
    assert_eq!(eviction.body["kind"], "Eviction");
    assert_eq!(eviction.body["metadata"]["name"], "web-1");
    let listed = requests
        .iter()
        .find(|r| r.path == PODS_ON_NODES)
        .expect("pods on the node");
    assert_eq!(
        listed.query.get("fieldSelector").map(String::as_str),
        Some("spec.nodeName=node-2")
    );
    assert!(
        !requests.iter().any(|r| r.method == "DELETE"),
        "a drain never deletes pods"
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdb_that_never_yields_fails_the_drain_within_the_timeout() {
    coordination_engine::tls::install_default_provider();
    let mock = start(vec![node_layer(false, 1000, false)]).await;
    let app = spawn_attached(&mock, LAYER_TIMEOUTS).await;
    let workflow = trigger_one(&app, "node", "node-2", "node_not_ready").await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    let drain = step(&workflow, "drain");
    assert_eq!(drain["outcome"], "failed");
    assert!(
        drain["detail"].as_str().is_some_and(
            |d| d.contains("PodDisruptionBudget kept refusing the eviction of pod shop/web-1")
        ),
        "{drain}"
    );
    let tries = evictions(&mock.requests()).len();
    // DRAIN_TIMEOUT 3 s, retried every 0.3 s: about 10 tries, never unbounded.
    assert!((2..=12).contains(&tries), "{tries} eviction attempts");
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_is_never_cordoned_while_another_is_unschedulable() {
    coordination_engine::tls::install_default_provider();
    let mock = start(vec![node_layer(true, 0, false)]).await;
    node_escalates_untouched(mock, &["node-1", "MAX_UNAVAILABLE_NODES is 1"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_coordination_trigger_runs_infrastructure_then_platform_then_application() {
    coordination_engine::tls::install_default_provider();
    let mock = start(vec![
        application_layer(),
        platform_layer(),
        node_layer(false, 0, true),
    ])
    .await;
    let app = spawn_attached(&mock, LAYER_TIMEOUTS).await;
    // Listed application first: the plan orders them by layer.
    let response = app
        .post_json(
            "/api/v1/coordination/trigger",
            &json!({"description": "node down, ingress degraded, api crash looping",
                    "resources": [
                        {"kind": "Pod", "namespace": "prod", "name": "api-7d9f", "issue": "crash_loop"},
                        {"kind": "ClusterOperator", "name": "ingress", "issue": "operator_degraded"},
                        {"kind": "Node", "name": "node-2", "issue": "node_not_ready"}]}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["root_cause_layer"], "infrastructure");
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let checkpoints: Vec<&str> = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] == "checkpoint")
        .filter_map(|s| s["layer"].as_str())
        .collect();
    assert_eq!(
        checkpoints,
        vec!["infrastructure", "platform", "application"]
    );
    let order: Vec<String> = writes(&mock.requests())
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert_eq!(
        order,
        vec![
            format!("PATCH {NODE}"),
            "POST /api/v1/namespaces/shop/pods/web-1/eviction".to_string(),
            "POST /api/v1/namespaces/shop/pods/db-0/eviction".to_string(),
            format!("PATCH {NODE}"),
            format!("DELETE /api/v1/namespaces/{OPERATOR_NS}/pods/ingress-operator-abc"),
            format!("DELETE {POD}"),
        ],
        "each layer acts only after the one below passed its checkpoint (the recovered node is uncordoned)"
    );
    let uncordon = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .nth(1)
        .expect("uncordon");
    assert_eq!(
        uncordon.body,
        json!({"metadata": {"annotations": {"coordination-engine.io/cordoned": null}},
               "spec": {"unschedulable": false}})
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_cannot_be_cordoned_is_never_drained() {
    coordination_engine::tls::install_default_provider();
    let (lists, mut writes_answers) = node_layer(false, 0, false);
    // The maintenance gate cannot be read (no RBAC for MachineConfigPools): no cordon.
    writes_answers.insert(
        ("GET".into(), POOLS.into()),
        vec![(
            403,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                   "message": "machineconfigpools is forbidden"}),
        )],
    );
    let mock = MockApiServer::start_with(lists, writes_answers).await;
    node_escalates_untouched(mock, &["cannot cordon node node-2", "forbidden"]).await;
}
