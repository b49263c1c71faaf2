//! Live workflows against a mock Kubernetes API server: the exact requests the engine makes,
//! verification, the ladder, and the rule that it never patches what ArgoCD manages.

mod escalate;
mod heal;

use crate::helpers::cluster::{api_pod_chain, deployment, event_answer, pod_deletion};
use crate::helpers::workflow::{finished_workflow, writes_of};
use crate::helpers::{spawn_app_with, spawn_attached};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

#[tokio::test]
async fn live_workflows_of_a_stopped_engine_are_interrupted_at_the_next_start() {
    use coordination_engine::store::Store;
    use coordination_engine::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
    let app = spawn_app_with(|_| {}).await;
    let incident = app
        .create_incident(json!({"title": "t", "namespace": "shop"}))
        .await;
    let mut running = Workflow::new(
        &incident,
        Some("shop".into()),
        WorkflowKind::Remediation,
        WorkflowMode::Live,
        chrono::Utc::now(),
    );
    running.status = WorkflowStatus::Running;
    app.store.insert_workflow(&running).await.expect("insert");
    let dir = app.data_dir.path().display().to_string();
    let restarted = spawn_app_with(|env| {
        env.insert("DATA_DIR".into(), dir);
    })
    .await;
    let workflow = restarted
        .get_json(&format!("/api/v1/workflows/{}", running.id))
        .await;
    assert_eq!(workflow["status"], "interrupted");
    assert!(
        workflow["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_against_a_cluster_sends_dry_run_all_and_changes_nothing() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(api_pod_chain(0, json!({})), pod_deletion()).await;
    let app = spawn_attached(&mock, &[]).await;
    let response = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"incident_id": "mcp-1", "namespace": "prod", "resource": {"kind": "Pod", "name": "api-7d9f"},
                    "issue": {"type": "pod_crash", "description": "", "severity": "high"}, "dry_run": true}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(workflow["mode"], "dry_run");
    let requests = mock.requests();
    let delete = requests
        .iter()
        .find(|r| r.method == "DELETE")
        .expect("a dry-run delete");
    // DeleteOptions carries dryRun in the body (kube-rs), which the API server honours.
    assert_eq!(delete.body["dryRun"], json!(["All"]), "{}", delete.body);
    assert_eq!(
        writes_of(&requests).len(),
        1,
        "one write, and it was a dry run"
    );
    let incident = app
        .get_json(&format!(
            "/api/v1/incidents/{}",
            answer["incident_id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(incident["status"], "active", "a dry run fixes nothing");
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_reports_the_layer_and_the_deployment_method_with_evidence() {
    coordination_engine::tls::install_default_provider();
    let tracked = json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart"});
    let mut objects = api_pod_chain(2, json!({"meta.helm.sh/release-name": "api"}));
    objects.insert(
        "/apis/apps/v1/namespaces/shop/deployments/cart".to_string(),
        deployment("shop", "cart", tracked, 2),
    );
    let mock = MockApiServer::start(objects).await;
    let app = spawn_attached(&mock, &[]).await;
    let cart = app.get_json("/api/v1/detect/deployment/shop/cart").await;
    assert_eq!(cart["mode"], "attached");
    assert_eq!(cart["layer"]["layer"], "application");
    assert_eq!(cart["deployment"]["method"], "argocd");
    assert_eq!(cart["deployment"]["owner"], "shop");
    // A pod is judged by its top controller.
    let pod = app.get_json("/api/v1/detect/Pod/prod/api-7d9f").await;
    assert_eq!(pod["deployment"]["method"], "helm");
    assert!(
        pod["deployment"]["evidence"]
            .as_str()
            .is_some_and(|e| e.contains("release-name"))
    );
    let missing = app.get_authed("/api/v1/detect/Deployment/shop/nope").await;
    assert_eq!(missing.status(), 404);
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_triggers_for_one_target_start_one_workflow() {
    coordination_engine::tls::install_default_provider();
    let path = "/apis/apps/v1/namespaces/shop/deployments/busy";
    let busy = deployment("shop", "busy", json!({}), 0);
    let mock = MockApiServer::start_with(
        HashMap::from([(path.to_string(), busy.clone())]),
        Writes::from([
            (("PATCH".to_string(), path.to_string()), vec![(200, busy)]),
            event_answer("shop"),
        ]),
    )
    .await;
    let app = spawn_attached(&mock, &[]).await;
    let body = json!({"namespace": "shop", "resource_type": "deployment", "resource_name": "busy", "issue_type": "crash_loop"});
    let sends = (0..8).map(|_| app.post_json("/api/v1/remediation/trigger", &body));
    let statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    mock.stop().await;
}
