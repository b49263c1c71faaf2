//! Live workflows against a mock Kubernetes API server: the exact requests the engine makes,
//! verification, the ladder, and the rule that it never patches what ArgoCD manages.

use crate::helpers::cluster::{
    DEPLOYMENT, POD, api_pod_chain, deployment, event_answer, pod_deletion, status,
};
use crate::helpers::workflow::{events_of, finished_workflow, trigger, writes_of};
use crate::helpers::{spawn_app_with, spawn_attached};
use crate::kube_mock::{MockApiServer, Recorded, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

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
    // The alert still fires: the incident stays open until Alertmanager says it resolved.
    let checkpoint = &workflow["steps"][3];
    assert_eq!(checkpoint["layer"], "application");
    assert_eq!(checkpoint["source_alert"], "firing");
    let incident = app
        .get_json(&format!("/api/v1/incidents/{incident_id}"))
        .await;
    assert_ne!(incident["status"], "resolved", "{incident}");
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
    // The workflow is stored as finished before its task counts it and leaves.
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
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argocd_managed_workload_is_never_patched_and_the_workflow_escalates() {
    coordination_engine::tls::install_default_provider();
    let path = "/apis/apps/v1/namespaces/shop/deployments/cart";
    let tracked = json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart"});
    let mock = MockApiServer::start_with(
        HashMap::from([(path.to_string(), deployment("shop", "cart", tracked, 0))]),
        Writes::from([
            (
                ("PATCH".to_string(), path.to_string()),
                vec![(200, json!({}))],
            ),
            event_answer("shop"),
        ]),
    )
    .await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "shop", "deployment", "cart", "replicas_mismatch").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated");
    // The restart goes through the Application (absent here: the step fails), never through
    // a Deployment patch.
    let restart = &workflow["steps"][2];
    assert_eq!(restart["action"], "rollout_restart");
    assert_eq!(restart["channel"], "argocd");
    assert!(
        restart["detail"]
            .as_str()
            .is_some_and(|d| d.contains("404")),
        "{restart}"
    );
    assert!(
        writes_of(&mock.requests()).is_empty(),
        "no write ever reaches an ArgoCD-managed object"
    );
    assert_eq!(
        events_of(&mock.requests()),
        vec!["RemediationStepFailed", "RemediationEscalated"],
        "the failed step and the escalation are visible on the object"
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_and_a_rollback_that_do_not_help_escalate_with_what_was_tried() {
    coordination_engine::tls::install_default_provider();
    let path = "/apis/apps/v1/namespaces/shop/deployments/web";
    let mut web = deployment(
        "shop",
        "web",
        json!({"deployment.kubernetes.io/revision": "3"}),
        0,
    );
    web["spec"]["selector"] = json!({"matchLabels": {"app": "web"}});
    let revision = |n: u64, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": format!("web-{n}"), "namespace": "shop", "uid": format!("uid-rs{n}"),
                "annotations": {"deployment.kubernetes.io/revision": n.to_string()},
                "labels": {"app": "web", "pod-template-hash": format!("h{n}")},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-dep", "controller": true}]},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": format!("h{n}")}},
                             "spec": {"containers": [{"name": "app", "image": image}]}}}})
    };
    let replicasets = json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {"resourceVersion": "9"},
        "items": [revision(1, "web:0.9"), revision(2, "web:1.0"), revision(3, "web:1.1-broken")]});
    let mock = MockApiServer::start_with(
        HashMap::from([
            (path.to_string(), web.clone()),
            (
                "/apis/apps/v1/namespaces/shop/replicasets".to_string(),
                replicasets,
            ),
        ]),
        Writes::from([
            (
                ("PATCH".to_string(), path.to_string()),
                // A conflict first: retried; then the restart and the rollback.
                vec![
                    (409, status(409, "Conflict")),
                    (200, web.clone()),
                    (200, web.clone()),
                ],
            ),
            event_answer("shop"),
        ]),
    )
    .await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "shop", "deployment", "web", "crash_loop").await;
    assert_eq!(answer["status"], "pending");
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    let tried: Vec<&str> = workflow["escalation"]["tried"]
        .as_array()
        .expect("tried")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in [
        "rollout_restart",
        "verify after rollout_restart",
        "rollback",
        "verify after rollback",
    ] {
        assert!(
            tried.iter().any(|t| t.starts_with(expected)),
            "{expected}: {tried:?}"
        );
    }
    assert!(
        tried.iter().any(|t| t.contains("from revision 3 to 2")),
        "{tried:?}"
    );
    assert_eq!(workflow["escalation"]["reason"], "the ladder is exhausted");
    // Only healed workflows have a time to heal.
    let metrics = app
        .metrics_with(&[
            r#"coordination_engine_remediation_total{mode="live",status="escalated"} 1"#,
        ])
        .await;
    assert!(
        !metrics.contains("coordination_engine_time_to_heal_seconds_count"),
        "{metrics}"
    );

    let patches: Vec<Recorded> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(
        patches.len(),
        3,
        "the 409 was retried once, then restart and rollback"
    );
    for patch in &patches {
        assert_eq!(
            patch.query.get("fieldManager").map(String::as_str),
            Some("coordination-engine")
        );
    }
    for restart in &patches[..2] {
        assert!(
            restart
                .body
                .pointer("/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt")
                .is_some_and(Value::is_string),
            "{}",
            restart.body
        );
    }
    let listed = mock
        .requests()
        .into_iter()
        .find(|r| r.path == "/apis/apps/v1/namespaces/shop/replicasets")
        .expect("the ReplicaSets were listed");
    assert_eq!(
        listed.query.get("labelSelector").map(String::as_str),
        Some("app=web")
    );
    // The rollback replaces the template with revision 2's, without its pod-template-hash.
    let rollback = &patches[2].body[0];
    assert_eq!(rollback["op"], "replace");
    assert_eq!(rollback["path"], "/spec/template");
    assert_eq!(
        rollback["value"]["spec"]["containers"][0]["image"],
        "web:1.0"
    );
    assert!(
        rollback["value"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    assert_eq!(
        events_of(&mock.requests()),
        vec![
            "RemediationRolloutRestarted",
            "RemediationRolledBack",
            "RemediationEscalated"
        ]
    );
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
