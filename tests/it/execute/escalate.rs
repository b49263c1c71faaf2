//! Workflows that escalate: an ArgoCD-managed target, a ladder that does not help.

use crate::helpers::cluster::{deployment, event_answer, status};
use crate::helpers::spawn_attached;
use crate::helpers::workflow::{events_of, finished_workflow, trigger, writes_of};
use crate::kube_mock::{MockApiServer, Recorded, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

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
    let (web, replicasets) = web_with_three_revisions();
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
    assert_tried_the_whole_ladder(&workflow);
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

    assert_restart_retried_then_rollback_to_revision_2(&mock);
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

/// The Deployment `shop/web` at revision 3 and its ReplicaSets of revisions 1 to 3 (3 broken).
fn web_with_three_revisions() -> (Value, Value) {
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
    (web, replicasets)
}

fn assert_tried_the_whole_ladder(workflow: &Value) {
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
}

/// A restart retried once after the 409, then a rollback to revision 2's template.
fn assert_restart_retried_then_rollback_to_revision_2(mock: &MockApiServer) {
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
}
