//! Remediation leases: with `LEASED_ACTIONS=scale_up`, an ArgoCD-managed Deployment is scaled
//! directly, but only after a lease is recorded (which the guard honours for the engine's own
//! change of exactly those paths, and for nobody else) and selfHeal is turned off.

use crate::helpers::cluster::{deployment, event_answer, pod_list, sick_first};
use crate::helpers::workflow::{finished_workflow, trigger};
use crate::helpers::{spawn_attached, wait_for};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const APPS: &str = "/apis/argoproj.io/v1alpha1/applications";
const APP: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/shop";
const CART: &str = "/apis/apps/v1/namespaces/prod/deployments/cart";
const SCALE: &str = "/apis/apps/v1/namespaces/prod/deployments/cart/scale";

/// The guard table's "kubectl edit of replicas" review, by `username`.
pub(crate) fn replicas_review(username: &str) -> Value {
    let case = crate::helpers::admission_case("kubectl edit of replicas on a managed deployment");
    let mut review = case["review"].clone();
    review["request"]["userInfo"]["username"] = json!(username);
    review
}

async fn decide(app: &crate::helpers::TestApp, username: &str) -> (bool, String) {
    let answer: Value = app
        .post_json("/webhooks/validate", &replicas_review(username))
        .await
        .json()
        .await
        .expect("json");
    let response = &answer["response"];
    (
        response["allowed"].as_bool().expect("allowed"),
        response["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// cart's pod fails its readiness probe when the engine looks (CPU saturation), then recovers.
fn with_sick_pods(mut writes: Writes) -> Writes {
    let pods = pod_list(&[("cart-1", true, 0)]);
    sick_first(&mut writes, "/api/v1/namespaces/prod/pods", pods);
    writes
}

/// An ArgoCD-managed (selfHeal) Deployment prod/cart, with answers for the selfHeal patch,
/// the scale, and the engine's event.
async fn start_managed_cart() -> MockApiServer {
    let application = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd", "resourceVersion": "3", "uid": "app-1"},
        "spec": {"syncPolicy": {"automated": {"selfHeal": true, "prune": true}}}});
    let mut cart = deployment(
        "prod",
        "cart",
        json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart"}),
        2,
    );
    cart["metadata"]["uid"] = json!("uid-cart");
    MockApiServer::start_with(
        HashMap::from([
            (
                APPS.to_string(),
                json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationList",
                       "metadata": {"resourceVersion": "3"}, "items": [application.clone()]}),
            ),
            (CART.to_string(), cart),
            (
                "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers".to_string(),
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                       "metadata": {"resourceVersion": "1"}, "items": []}),
            ),
            (
                "/api/v1/namespaces/prod/pods".to_string(),
                pod_list(&[("cart-1", true, 0)]),
            ),
        ]),
        with_sick_pods(Writes::from([
            (("PATCH".to_string(), APP.to_string()), vec![(200, application)]),
            (
                ("PATCH".to_string(), SCALE.to_string()),
                vec![(
                    200,
                    json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "cart"}, "spec": {"replicas": 3}}),
                )],
            ),
            event_answer("prod"),
        ])),
    )
    .await
}

/// The scale_up step, carried by the Kubernetes API (a scale of the workload), shows the lease
/// it ran under; returns that lease.
fn assert_the_scale_step_shows_its_lease(workflow: &Value, answer: &Value) -> Value {
    let scaled = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "scale_up")
        .expect("scale step")
        .clone();
    assert_eq!(scaled["channel"], "kubernetes");
    let lease = scaled["lease"].clone();
    assert_eq!(lease["object_uid"], "uid-cart");
    assert_eq!(lease["paths"], json!(["/spec/replicas"]));
    assert_eq!(lease["incident_id"], answer["incident_id"]);
    let detail = scaled["detail"].as_str().expect("detail");
    assert!(
        detail.contains("turned off selfHeal on Application argocd/shop")
            && detail.contains("make the change in Git"),
        "{detail}"
    );
    lease
}

fn assert_self_heal_is_off_before_the_scale(mock: &MockApiServer) {
    let writes: Vec<(String, String, Value)> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.method, r.path, r.body))
        .collect();
    assert_eq!(
        writes,
        vec![
            (
                "PATCH".to_string(),
                APP.to_string(),
                json!({"spec": {"syncPolicy": {"automated": {"selfHeal": false}}}})
            ),
            (
                "PATCH".to_string(),
                SCALE.to_string(),
                json!({"spec": {"replicas": 3}})
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_scale_up_records_the_lease_turns_off_self_heal_and_the_guard_honours_it() {
    coordination_engine::tls::install_default_provider();
    let mock = start_managed_cart().await;
    let app = spawn_attached(&mock, &[("LEASED_ACTIONS", "scale_up")]).await;
    wait_for(
        "the guard to know the Applications",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { (app.get_authed("/ready").await.status() == 200).then_some(()) },
    )
    .await;
    let engine = "system:serviceaccount:self-healing-platform:coordination-engine";
    // Before the lease, the engine is refused like anyone else.
    assert!(!decide(&app, engine).await.0);

    let answer = trigger(&app, "prod", "deployment", "cart", "high_cpu").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    let lease = assert_the_scale_step_shows_its_lease(&workflow, &answer);

    // The order matters: selfHeal off before the change, so ArgoCD does not revert it.
    assert_self_heal_is_off_before_the_scale(&mock);

    // The lease is listed, and the guard lets the engine, and only the engine, change replicas.
    let leases = app.get_json("/api/v1/leases").await;
    assert_eq!(leases["leases"][0]["id"], lease["id"]);
    let (allowed, _) = decide(&app, engine).await;
    assert!(allowed, "the engine's change under its lease");
    let (allowed, message) = decide(&app, "alice").await;
    assert!(!allowed, "a person is still refused: {message}");
    mock.stop().await;
}
