//! Answers that say what really happened, against the mock API server: the trigger names how
//! each workload is deployed (from the watch caches, within its time budget, or says it could
//! not), and `incidents_total` counts each incident under its detected layer.

use crate::helpers::workflow::trigger;
use crate::helpers::{TestApp, spawn_attached, wait_for};
use crate::kube_mock::MockApiServer;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const DEPLOYMENTS: &str = "/apis/apps/v1/deployments";
const REPLICASETS: &str = "/apis/apps/v1/replicasets";
const STATEFULSETS: &str = "/apis/apps/v1/statefulsets";
/// Never answered (pods are not cached: detection asks the API server).
const STUCK_POD: &str = "/api/v1/namespaces/prod/pods/stuck-1";

fn meta(namespace: &str, name: &str, annotations: Value, labels: Value, owners: Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"), "resourceVersion": "3",
            "annotations": annotations, "labels": labels, "ownerReferences": owners}})
}

fn meta_list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
           "metadata": {"resourceVersion": "10"}, "items": items})
}

/// Three workloads as the metadata watches list them: `shop/cart` tracked by the ArgoCD
/// Application `shop`, `prod/shop-web` of the Helm release `shop`, `prod/api` deployed by hand
/// (its ReplicaSet `api-rs` too). The objects themselves are not served: only the caches can
/// answer for them, so the answers do not depend on how fast a request is on a loaded machine.
async fn cluster() -> MockApiServer {
    let deployments = meta_list(vec![
        meta(
            "shop",
            "cart",
            json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart",
                   "kubectl.kubernetes.io/last-applied-configuration": "{}"}),
            json!({"app": "cart"}),
            json!([]),
        ),
        meta(
            "prod",
            "shop-web",
            json!({"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "prod"}),
            json!({"app.kubernetes.io/instance": "shop"}),
            json!([]),
        ),
        meta("prod", "api", json!({}), json!({"app": "api"}), json!([])),
    ]);
    let replicasets = meta_list(vec![meta(
        "prod",
        "api-rs",
        json!({}),
        json!({"app": "api"}),
        json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "uid-api", "controller": true}]),
    )]);
    let mock = MockApiServer::start(HashMap::from([
        (DEPLOYMENTS.to_string(), deployments),
        (REPLICASETS.to_string(), replicasets),
        (STATEFULSETS.to_string(), meta_list(vec![])),
    ]))
    .await;
    mock.stall(STUCK_POD);
    mock
}

/// The metadata watches are open: each listed its objects into the cache first (a watcher asks
/// for the watch only after it handled its list).
async fn caches_synced(mock: &MockApiServer) {
    wait_for(
        "the metadata caches to sync",
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            let requests = mock.requests();
            [DEPLOYMENTS, REPLICASETS]
                .iter()
                .all(|path| {
                    requests.iter().any(|r| {
                        r.path == *path && r.query.get("watch").map(String::as_str) == Some("true")
                    })
                })
                .then_some(())
        },
    )
    .await
}

fn channels(plan: &Value) -> Vec<(String, String)> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("channel"))
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, c)| (a.to_string(), c.to_string()))
        .collect()
}

async fn trigger_and_check(
    app: &TestApp,
    (namespace, kind, name): (&str, &str, &str),
    method: &str,
    evidence: &str,
    plan: &[(&str, &str)],
) {
    let answer = trigger(app, namespace, kind, name, "crash_loop").await;
    assert_eq!(answer["deployment_method"], method, "{answer}");
    assert_eq!(answer["deployment_method_detected"], true, "{answer}");
    assert!(
        answer["deployment_method_detail"]
            .as_str()
            .is_some_and(|d| d.contains(evidence)),
        "{answer}"
    );
    // The plan in the answer has its channels: nothing left pending detection.
    assert_eq!(channels(&answer["plan"]), pairs(plan), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trigger_names_argocd_helm_and_manual_from_the_watch_caches() {
    coordination_engine::tls::install_default_provider();
    let mock = cluster().await;
    let app = spawn_attached(&mock, &[]).await;
    caches_synced(&mock).await;

    trigger_and_check(
        &app,
        ("shop", "deployment", "cart"),
        "argocd",
        "tracking-id annotation of Application shop",
        &[
            ("rollout_restart", "argocd"),
            // A GitOps rollback is a change in Git: a human's.
            ("rollback", "human"),
            ("escalate", "human"),
        ],
    )
    .await;
    trigger_and_check(
        &app,
        ("prod", "deployment", "shop-web"),
        "helm",
        "meta.helm.sh/release-name=shop",
        &[
            ("rollout_restart", "kubernetes"),
            ("rollback", "helm"),
            ("escalate", "human"),
        ],
    )
    .await;
    // Up the owner chain in the cache: the ReplicaSet's controller is the Deployment.
    trigger_and_check(
        &app,
        ("prod", "replicaset", "api-rs"),
        "manual",
        "Deployment api: no ArgoCD, Helm or operator marker",
        &[
            ("rollout_restart", "kubernetes"),
            ("rollback", "kubernetes"),
            ("escalate", "human"),
        ],
    )
    .await;
    let node = trigger(&app, "", "node", "worker-3", "node_not_ready").await;
    assert_eq!(
        (
            &node["deployment_method"],
            &node["deployment_method_detected"]
        ),
        (&json!("cluster"), &json!(true)),
        "{node}"
    );

    // Each incident is counted under the layer detected for it.
    app.metrics_with(&[
        r#"coordination_engine_incidents_total{layer="application",source="api"} 3"#,
        r#"coordination_engine_incidents_total{layer="infrastructure",source="api"} 1"#,
    ])
    .await;
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_whose_detection_cannot_finish_in_time_says_so() {
    coordination_engine::tls::install_default_provider();
    let mock = cluster().await;
    let app = spawn_attached(&mock, &[]).await;
    let started = Instant::now();
    let answer = trigger(&app, "prod", "pod", "stuck-1", "crash_loop").await;
    // The API server never answers: the trigger does not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["deployment_method"], "unknown", "{answer}");
    assert_eq!(answer["deployment_method_detected"], false, "{answer}");
    assert!(
        answer["deployment_method_detail"]
            .as_str()
            .is_some_and(|d| d.contains("did not finish within 100 ms")),
        "{answer}"
    );
    assert!(
        mock.requests().iter().any(|r| r.path == STUCK_POD),
        "detection asked the API server for the pod"
    );
    // Not detected: the owner-dependent steps wait for the workflow's own detection.
    assert_eq!(
        channels(&answer["plan"]),
        pairs(&[
            ("delete_pod", "kubernetes"),
            ("rollout_restart", "pending_detection"),
            ("rollback", "pending_detection"),
            ("escalate", "human"),
        ])
    );
    mock.stop().await;
}
