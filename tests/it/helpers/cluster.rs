//! Kubernetes objects as the mock API server serves them (the `api` Deployment of the
//! Alertmanager fixture and its chain), and the mock's answers to the engine's writes.

use crate::kube_mock::Writes;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn pod(ns: &str, name: &str, rs: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": "uid-rs", "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}})
}

pub fn replicaset(ns: &str, name: &str, deployment: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": ns, "uid": "uid-rs",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "uid": "uid-dep", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": deployment}}}})
}

pub fn deployment(ns: &str, name: &str, annotations: Value, available: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": "uid-dep", "generation": 2, "annotations": annotations},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {"metadata": {}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": available}})
}

pub fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": format!("{reason} by the mock")})
}

/// The API server's answer to an Event the engine records.
pub fn event_answer(ns: &str) -> ((String, String), Vec<(u16, Value)>) {
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": ns},
                       "involvedObject": {}, "reason": "x"});
    (
        (
            "POST".to_string(),
            format!("/api/v1/namespaces/{ns}/events"),
        ),
        vec![(201, event)],
    )
}

pub const POD: &str = "/api/v1/namespaces/prod/pods/api-7d9f";
pub const RS: &str = "/apis/apps/v1/namespaces/prod/replicasets/api-rs";
pub const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/prod/deployments/api";

/// The crash-looping pod of the Alertmanager fixture, its ReplicaSet and its Deployment
/// (`available` pods, `annotations` on the Deployment), as the mock serves them.
pub fn api_pod_chain(available: i64, annotations: Value) -> HashMap<String, Value> {
    HashMap::from([
        (POD.to_string(), pod("prod", "api-7d9f", "api-rs")),
        (RS.to_string(), replicaset("prod", "api-rs", "api")),
        (
            DEPLOYMENT.to_string(),
            deployment("prod", "api", annotations, available),
        ),
        (PODS.to_string(), pod_list(&[("api-7d9f", true, 2)])),
    ])
}

/// The API server's answers when the engine deletes the `api-7d9f` pod and records its Event.
pub fn pod_deletion() -> Writes {
    Writes::from([
        (
            ("DELETE".to_string(), POD.to_string()),
            vec![(200, pod("prod", "api-7d9f", "api-rs"))],
        ),
        event_answer("prod"),
    ])
}

pub const PODS: &str = "/api/v1/namespaces/prod/pods";

/// The workload's pods as the API server lists them at `path`: not Ready at the first list
/// (the symptom the engine confirms before it writes), then as `healthy` lists them.
pub fn sick_first(writes: &mut Writes, path: &str, healthy: Value) {
    let mut sick = healthy.clone();
    for pod in sick["items"].as_array_mut().into_iter().flatten() {
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
    }
    writes.insert(
        ("GET".to_string(), path.to_string()),
        vec![(200, sick), (200, healthy)],
    );
}

/// A PodList of the `api` Deployment: `(name, ready, restarts)` per pod.
pub fn pod_list(pods: &[(&str, bool, i32)]) -> Value {
    let items: Vec<Value> = pods
        .iter()
        .map(|(name, ready, restarts)| {
            let mut item = pod("prod", name, "api-rs");
            item["status"] = json!({
                "conditions": [{"type": "Ready", "status": if *ready { "True" } else { "False" }}],
                "containerStatuses": [{"name": "app", "image": "app:1", "imageID": "", "ready": *ready,
                    "restartCount": restarts}]
            });
            item
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
}

/// A mock API server holding `shop/stuck`, a Deployment whose rollout never completes: its
/// restart (PATCH) is accepted and Events are recorded, but it never becomes available.
pub async fn stuck_deployment_mock() -> crate::kube_mock::MockApiServer {
    let path = "/apis/apps/v1/namespaces/shop/deployments/stuck";
    let stuck = deployment("shop", "stuck", json!({}), 0);
    crate::kube_mock::MockApiServer::start_with(
        HashMap::from([(path.to_string(), stuck.clone())]),
        Writes::from([
            (("PATCH".to_string(), path.to_string()), vec![(200, stuck)]),
            event_answer("shop"),
        ]),
    )
    .await
}
