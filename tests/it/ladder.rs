//! The ladder's finer points against the mock cluster: verification that sees restarts, scaling
//! through the `scale` subresource (never against an HPA), and held alerts judged again when a
//! pause is lifted.

use crate::helpers::cluster::{
    DEPLOYMENT, PODS, api_pod_chain, deployment, event_answer, pod_deletion, pod_list, sick_first,
};
use crate::helpers::workflow::{finished_workflow, trigger, writes_of};
use crate::helpers::{spawn_app, spawn_attached, wait_for};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::time::Duration;

/// The steps of `workflow` running `action`.
pub(crate) fn step<'a>(workflow: &'a Value, action: &str) -> Vec<&'a Value> {
    workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["action"] == action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_keeps_restarting_fails_verification_even_when_available() {
    coordination_engine::tls::install_default_provider();
    // Available and Ready at every poll, but its restart count grows at every poll.
    let growing: Vec<(u16, Value)> = (0..200)
        .map(|n| (200, pod_list(&[("api-7d9f", true, n)])))
        .collect();
    let mut answers = pod_deletion();
    answers.insert(("GET".to_string(), PODS.to_string()), growing);
    answers.insert(
        ("PATCH".to_string(), DEPLOYMENT.to_string()),
        vec![(200, deployment("prod", "api", json!({}), 2))],
    );
    let mock = MockApiServer::start_with(api_pod_chain(2, json!({})), answers).await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "pod", "api-7d9f", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    let verifications = step(&workflow, "verify");
    assert_eq!(verifications.len(), 2, "after the delete and the restart");
    for verify in verifications {
        assert_eq!(verify["outcome"], "failed");
        assert!(
            verify["detail"]
                .as_str()
                .is_some_and(|d| d.contains("still restarting: api-7d9f")),
            "{verify}"
        );
    }
    let listed = mock
        .requests()
        .into_iter()
        .find(|r| r.path == PODS)
        .expect("the pods were listed");
    assert_eq!(
        listed.query.get("labelSelector").map(String::as_str),
        Some("app=api"),
        "by the Deployment's selector"
    );
    mock.stop().await;
}

const HPAS: &str = "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers";
const SCALE: &str = "/apis/apps/v1/namespaces/prod/deployments/api/scale";

fn hpa_list(targets: &[&str]) -> Value {
    let items: Vec<Value> = targets
        .iter()
        .map(|name| {
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": format!("{name}-hpa"), "namespace": "prod"},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                         "maxReplicas": 4}})
        })
        .collect();
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
           "metadata": {"resourceVersion": "1"}, "items": items})
}

/// The Deployment `prod/api` (2 of 2 available), its pods saturated, these HPAs beside it.
async fn scale_mock(hpas: &[&str]) -> MockApiServer {
    let mut objects = api_pod_chain(2, json!({}));
    objects.insert(HPAS.to_string(), hpa_list(hpas));
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "api", "namespace": "prod"}, "spec": {"replicas": 3}});
    let mut writes = Writes::from([
        (("PATCH".to_string(), SCALE.to_string()), vec![(200, scale)]),
        event_answer("prod"),
    ]);
    // Saturated: its pods fail their readiness probes when the engine looks.
    sick_first(&mut writes, PODS, objects[PODS].clone());
    MockApiServer::start_with(objects, writes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_saturation_scales_up_by_one_replica_through_the_scale_subresource() {
    coordination_engine::tls::install_default_provider();
    let mock = scale_mock(&["other"]).await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "deployment", "api", "high_cpu").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let scaled = step(&workflow, "scale_up");
    // The scale subresource PATCH below: the Kubernetes API carried it.
    assert_eq!(scaled[0]["channel"], "kubernetes");
    assert!(
        scaled[0]["detail"].as_str().is_some_and(|d| d
            .contains("scaled Deployment prod/api to 3 replicas (was 2; undo: scale back to 2)")),
        "{workflow}"
    );
    let requests = mock.requests();
    assert_eq!(
        writes_of(&requests),
        vec![("PATCH".to_string(), SCALE.to_string())]
    );
    let patch = requests
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("patch");
    assert_eq!(patch.body, json!({"spec": {"replicas": 3}}));
    assert_eq!(
        patch.query.get("fieldManager").map(String::as_str),
        Some("coordination-engine")
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_an_hpa_scales_is_never_scaled_by_hand() {
    coordination_engine::tls::install_default_provider();
    let mock = scale_mock(&["api"]).await;
    let app = spawn_attached(&mock, &[]).await;
    let answer = trigger(&app, "prod", "deployment", "api", "high_cpu").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert!(
        workflow["escalation"]["needed"]
            .as_str()
            .is_some_and(|n| n.contains("maxReplicas") && n.contains("prod/api-hpa")),
        "{workflow}"
    );
    assert!(writes_of(&mock.requests()).is_empty(), "no scale request");
    mock.stop().await;
}

/// `DELETE /api/v1/pause?namespace=…`, its answer.
async fn resume(app: &crate::helpers::TestApp, namespace: &str) -> Value {
    app.client
        .delete(app.url(&format!("/api/v1/pause?namespace={namespace}")))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("resume")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn alerts_held_by_a_pause_are_judged_again_when_it_is_lifted() {
    let app = spawn_app().await;
    let paused = app
        .post_json(
            "/api/v1/pause?namespace=prod",
            &json!({"reason": "change freeze"}),
        )
        .await;
    assert_eq!(paused.status(), 200);
    let firing = crate::alertmanager::sample("alertmanager-sample.json");
    let incident_id = app.post_alert(&firing).await;
    let held = app.incident_with_workflow(&incident_id).await;
    app.queue_drained().await;
    let held_id = held["workflow_ids"][0].as_str().expect("id").to_string();
    let workflow = app.get_json(&format!("/api/v1/workflows/{held_id}")).await;
    assert_eq!(workflow["status"], "cancelled", "{workflow}");

    // Lifting another namespace's (absent) pause changes nothing for prod.
    let other = resume(&app, "elsewhere").await;
    assert_eq!(other["requeued"], 0);

    let resumed = resume(&app, "prod").await;
    assert_eq!(resumed["requeued"], 1, "{resumed}");
    let path = format!("/api/v1/incidents/{incident_id}");
    let incident = wait_for(
        "a second workflow for the held incident",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let incident = app.get_json(&path).await;
            (incident["workflow_ids"].as_array().map(Vec::len) == Some(2)).then_some(incident)
        },
    )
    .await;
    let ids: Vec<&str> = incident["workflow_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let rerun_id = ids
        .iter()
        .find(|id| **id != held_id)
        .expect("a new workflow");
    let rerun = app.get_json(&format!("/api/v1/workflows/{rerun_id}")).await;
    assert_eq!(rerun["gate_decisions"][0]["gate"], "pause");
    assert_eq!(rerun["gate_decisions"][0]["outcome"], "pass", "{rerun}");
    // Resuming again queues nothing more: the incident's latest workflow was not held.
    let again = resume(&app, "prod").await;
    assert_eq!(again["requeued"], 0);
}
