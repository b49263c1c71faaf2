use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use chrono::Utc;
use coordination_engine::store::Store;
use coordination_engine::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
use serde_json::{Value, json};

/// The pipeline creates workflows (a later issue); here the store does it directly.
async fn workflow(
    app: &TestApp,
    incident: &str,
    kind: WorkflowKind,
    status: WorkflowStatus,
) -> String {
    let mut wf = Workflow::new(
        incident,
        Some("production".into()),
        kind,
        WorkflowMode::DryRun,
        Utc::now(),
    );
    wf.status = status;
    app.store
        .insert_workflow(&wf)
        .await
        .expect("insert workflow");
    wf.id
}

async fn post(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn approve_reject_and_cancel_follow_the_state_machine() {
    let app = spawn_app().await;
    let incident = app
        .create_incident(json!({"title": "t", "namespace": "production"}))
        .await;
    let awaiting = workflow(
        &app,
        &incident,
        WorkflowKind::Remediation,
        WorkflowStatus::AwaitingApproval,
    )
    .await;

    let approved: Value = post(&app, &format!("/api/v1/workflows/{awaiting}/approve"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(approved["status"], "pending");
    let again = post(&app, &format!("/api/v1/workflows/{awaiting}/approve")).await;
    assert_eq!(again.status(), 409);
    let (code, _) = error_body(again).await;
    assert_eq!(code, "conflict");

    let to_reject = workflow(
        &app,
        &incident,
        WorkflowKind::Remediation,
        WorkflowStatus::AwaitingApproval,
    )
    .await;
    let rejected: Value = post(&app, &format!("/api/v1/workflows/{to_reject}/reject"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rejected["status"], "cancelled");
    assert!(rejected["finished_at"].is_string());

    let running = workflow(
        &app,
        &incident,
        WorkflowKind::Remediation,
        WorkflowStatus::Running,
    )
    .await;
    assert_eq!(
        post(&app, &format!("/api/v1/workflows/{running}/reject"))
            .await
            .status(),
        409
    );
    let cancelled: Value = post(&app, &format!("/api/v1/workflows/{running}/cancel"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        post(&app, &format!("/api/v1/workflows/{running}/cancel"))
            .await
            .status(),
        409
    );

    let stored = app.get_json(&format!("/api/v1/workflows/{running}")).await;
    assert_eq!(stored["status"], "cancelled");
    let incident_view = app.get_json(&format!("/api/v1/incidents/{incident}")).await;
    assert_eq!(
        incident_view["workflow_ids"]
            .as_array()
            .expect("array")
            .len(),
        3
    );
}

#[tokio::test]
async fn unknown_or_malformed_workflow_ids_are_404() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/workflows/wf-12345678",
        "/api/v1/workflows/wf-0123456789abcdef0123456789abcdef",
        "/api/v1/coordination/workflows/nope",
    ] {
        let response = app.get_authed(path).await;
        assert_eq!(response.status(), 404, "{path}");
        error_body(response).await;
    }
    let response = post(
        &app,
        "/api/v1/workflows/wf-0123456789abcdef0123456789abcdef/approve",
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn workflow_lists_filter_and_coordination_views_show_only_multi_layer_workflows() {
    let app = spawn_app().await;
    let first = app.create_incident(json!({"title": "a"})).await;
    let second = app.create_incident(json!({"title": "b"})).await;
    let single = workflow(
        &app,
        &first,
        WorkflowKind::Remediation,
        WorkflowStatus::Running,
    )
    .await;
    let multi = workflow(
        &app,
        &second,
        WorkflowKind::Coordination,
        WorkflowStatus::Pending,
    )
    .await;

    let all = app.get_json("/api/v1/workflows").await;
    assert_eq!(all["total"], 2);
    let by_incident = app
        .get_json(&format!("/api/v1/workflows?incident_id={first}"))
        .await;
    assert_eq!(by_incident["total"], 1);
    assert_eq!(by_incident["workflows"][0]["id"], single.as_str());
    let running = app
        .get_json("/api/v1/workflows?status=running,verifying&namespace=production")
        .await;
    assert_eq!(running["total"], 1);

    let coordination = app.get_json("/api/v1/coordination/workflows").await;
    assert_eq!(coordination["total"], 1);
    assert_eq!(coordination["workflows"][0]["id"], multi.as_str());
    assert_eq!(
        app.get_json(&format!("/api/v1/coordination/workflows/{multi}"))
            .await["kind"],
        "coordination"
    );
    assert_eq!(
        app.get_authed(&format!("/api/v1/coordination/workflows/{single}"))
            .await
            .status(),
        404
    );

    for query in ["status=sleeping", "incident_id=bad", "limit=0"] {
        assert_eq!(
            app.get_authed(&format!("/api/v1/workflows?{query}"))
                .await
                .status(),
            400,
            "{query}"
        );
    }
}

#[tokio::test]
async fn pauses_are_global_or_per_namespace_and_survive_a_restart() {
    let app = spawn_app().await;
    let paused: Value = app
        .post_json(
            "/api/v1/pause?namespace=payments",
            &json!({"reason": "incident review"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["scope"], "namespace");
    let global = app
        .client
        .post(app.url("/api/v1/pause"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("send");
    assert_eq!(global.status(), 200, "an empty body pauses everything");

    let dir = app.data_dir.path().display().to_string();
    let restarted = spawn_app_with(|env| {
        env.insert("DATA_DIR".into(), dir);
    })
    .await;
    let listed = restarted.get_json("/api/v1/pause").await;
    let pauses = listed["pauses"].as_array().expect("array");
    assert_eq!(pauses.len(), 2, "{listed}");
    assert!(
        pauses
            .iter()
            .any(|p| p["namespace"] == "payments" && p["reason"] == "incident review")
    );

    let resumed = restarted
        .client
        .delete(restarted.url("/api/v1/pause?namespace=payments"))
        .bearer_auth(&restarted.token)
        .send()
        .await
        .expect("send");
    assert_eq!(resumed.status(), 200);
    assert_eq!(
        restarted.get_json("/api/v1/pause").await["pauses"]
            .as_array()
            .expect("array")
            .len(),
        1
    );

    let bad = app.post_json("/api/v1/pause", &json!({"why": "x"})).await;
    assert_eq!(bad.status(), 422);
    let bad_ns = app
        .post_json("/api/v1/pause?namespace=NO", &json!({}))
        .await;
    assert_eq!(bad_ns.status(), 400);
}
