//! The ArgoCD channel: an ArgoCD-managed Deployment is fixed through its Application (sync, and
//! ArgoCD's restart action through argocd-server), never by a patch of the Deployment.

use crate::helpers::argocd::{
    CART_DEPLOYMENT as DEPLOYMENT, application, argocd_server_answers, attached_with, cluster,
};
use crate::helpers::cluster::{event_answer, pod_list, sick_first};
use crate::helpers::workflow::writes_of as writes;
use crate::helpers::workflow::{finished_workflow, trigger};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

const APP: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/shop";
/// cart's pod crash-loops (not Ready) when the engine first looks, then is Ready.
fn crash_looping(mut writes: Writes) -> Writes {
    let pods = pod_list(&[("cart-1", true, 0)]);
    sick_first(&mut writes, "/api/v1/namespaces/shop/pods", pods);
    writes
}

fn steps(workflow: &Value) -> Vec<(String, String, String)> {
    workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("channel"), text("outcome"))
        })
        .collect()
}

fn target() -> Value {
    json!({"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "cart"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_argocd_deployment_is_synced_through_its_application_never_patched() {
    coordination_engine::tls::install_default_provider();
    let mut writes_answers = Writes::from([
        (
            ("GET".to_string(), APP.to_string()),
            vec![
                (200, application("Synced", "Degraded", "Succeeded", "t1")),
                (200, application("Synced", "Progressing", "Running", "t2")),
                (200, application("Synced", "Healthy", "Succeeded", "t2")),
            ],
        ),
        (
            ("PATCH".to_string(), APP.to_string()),
            vec![(200, application("Synced", "Degraded", "Succeeded", "t1"))],
        ),
        event_answer("shop"),
    ]);
    writes_answers.insert(
        ("PATCH".to_string(), DEPLOYMENT.to_string()),
        vec![(200, json!({}))],
    );
    let mock = MockApiServer::start_with(cluster(), crash_looping(writes_answers)).await;
    let app = attached_with(&mock, &[]).await;
    let answer = trigger(&app, "shop", "deployment", "cart", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(
        steps(&workflow),
        vec![
            ("detect".into(), String::new(), "done".into()),
            ("rollout_restart".into(), "argocd".into(), "done".into()),
            ("verify".into(), String::new(), "passed".into()),
            ("checkpoint".into(), String::new(), "passed".into()),
        ]
    );
    let detail = workflow["steps"][1]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("through Application argocd/shop (kube, prune off)")
            && detail.contains("Healthy"),
        "{detail}"
    );

    let requests = mock.requests();
    assert_eq!(
        writes(&requests),
        vec![("PATCH".to_string(), APP.to_string())],
        "the Application is synced; the Deployment is never patched"
    );
    let patch = requests
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("patch");
    assert_eq!(
        patch.body,
        json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}},
               "operation": {"initiatedBy": {"username": "coordination-engine"},
                             "info": [{"name": "reason", "value": "coordination-engine remediation"}],
                             "sync": {"prune": false, "resources": [target()]}}})
    );
    assert_eq!(
        patch.query.get("fieldManager").map(String::as_str),
        Some("coordination-engine")
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"coordination_engine_argocd_sync_total{result="succeeded"} 1"#),
        "{metrics}"
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_sync_fails_fast_and_the_rollback_asks_for_a_revert_in_git() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(
        cluster(),
        Writes::from([
            (
                ("GET".to_string(), APP.to_string()),
                vec![
                    // The evidence: the pods look fine, the Application says Degraded.
                    (200, application("Synced", "Degraded", "Succeeded", "t1")),
                    (200, application("Synced", "Degraded", "Succeeded", "t1")),
                    (200, application("Synced", "Degraded", "Succeeded", "t2")),
                ],
            ),
            (
                ("PATCH".to_string(), APP.to_string()),
                vec![(200, application("Synced", "Degraded", "Succeeded", "t1"))],
            ),
            event_answer("shop"),
        ]),
    )
    .await;
    let app = attached_with(&mock, &[]).await;
    let answer = trigger(&app, "shop", "deployment", "cart", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert_eq!(
        workflow["evidence"][0]["detail"],
        "Application argocd/shop: Synced, Degraded"
    );
    let restart = &workflow["steps"][1];
    assert_eq!(restart["outcome"], "failed");
    assert!(
        restart["detail"]
            .as_str()
            .is_some_and(|d| d.contains("health Degraded: cart: crash looping")),
        "{restart}"
    );
    let escalation = &workflow["escalation"];
    assert!(
        escalation["reason"]
            .as_str()
            .is_some_and(|r| r.contains("rolling back is a change in Git")),
        "{escalation}"
    );
    assert!(
        escalation["needed"]
            .as_str()
            .is_some_and(|n| n.contains("revert the commits after aaa111")),
        "{escalation}"
    );
    assert_eq!(
        writes(&mock.requests()),
        vec![("PATCH".to_string(), APP.to_string())],
        "one sync, no rollback behind Git's back"
    );
    assert!(
        app.metrics()
            .await
            .contains(r#"coordination_engine_argocd_sync_total{result="degraded"} 1"#)
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_argocd_api_url_the_rest_api_syncs_and_runs_the_restart_action_over_tls() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(
        cluster(),
        crash_looping(Writes::from([event_answer("shop")])),
    )
    .await;
    let tls_dir = tempfile::tempdir().expect("dir");
    let (argocd, ca) = MockApiServer::start_tls(
        HashMap::new(),
        argocd_server_answers(application("Synced", "Healthy", "Succeeded", "t2")),
        tls_dir.path(),
    )
    .await;
    let app = attached_with(
        &mock,
        &[
            ("ARGOCD_API_URL", argocd.url.as_str()),
            ("ARGOCD_TOKEN", "argo-token"),
            ("ARGOCD_CA_FILE", ca.display().to_string().as_str()),
        ],
    )
    .await;
    let answer = trigger(&app, "shop", "deployment", "cart", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert!(
        workflow["steps"][1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("(rest, prune off)") && d.contains("restart action")),
        "{workflow}"
    );

    let calls = argocd.requests();
    assert!(calls.iter().all(|r| r.authorization == "Bearer argo-token"));
    assert_eq!(
        calls[0].query.get("appNamespace").map(String::as_str),
        Some("argocd")
    );
    let sync = calls
        .iter()
        .find(|r| r.path.ends_with("/sync"))
        .expect("a sync");
    assert_eq!(
        sync.body,
        json!({"appNamespace": "argocd", "prune": false, "dryRun": false, "resources": [target()]})
    );
    let action = calls
        .iter()
        .find(|r| r.path.ends_with("/resource/actions"))
        .expect("the restart action");
    assert_eq!(action.body, json!("restart"));
    let query = |k: &str| action.query.get(k).cloned().unwrap_or_default();
    assert_eq!(
        (
            query("namespace"),
            query("resourceName"),
            query("kind"),
            query("group"),
            query("version")
        ),
        (
            "shop".into(),
            "cart".into(),
            "Deployment".into(),
            "apps".into(),
            "v1".into()
        )
    );
    assert!(
        writes(&mock.requests()).is_empty(),
        "nothing is written through the Kubernetes API"
    );
    argocd.stop().await;
    mock.stop().await;
}
