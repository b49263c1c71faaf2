//! An ArgoCD-managed `cart` Deployment in `shop` (its Application `argocd/shop`), as the mock
//! API server and a mock argocd-server serve them, and the engine attached to them.

use super::cluster::{deployment, pod_list};
use super::{TestApp, spawn_attached};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The Deployment ArgoCD manages.
pub const CART_DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/cart";
pub const REST_APP: &str = "/api/v1/applications/shop";

/// An Application status: after `started` the operation is ours when it differs from "t1".
pub fn application(sync: &str, health: &str, phase: &str, started: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"destination": {"namespace": "shop"}},
        "status": {"sync": {"status": sync}, "health": {"status": health, "message": "cart: crash looping"},
            "operationState": {"phase": phase, "startedAt": started, "message": "ok"},
            "history": [{"id": 1, "revision": "aaa111"}, {"id": 2, "revision": "bbb222"}]}})
}

/// The Deployment (with ArgoCD's tracking id) and its pods.
pub fn cluster() -> HashMap<String, Value> {
    let tracked = json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart"});
    HashMap::from([
        (
            CART_DEPLOYMENT.to_string(),
            deployment("shop", "cart", tracked, 2),
        ),
        (
            "/api/v1/namespaces/shop/pods".to_string(),
            pod_list(&[("cart-1", true, 0)]),
        ),
    ])
}

/// Attached, with ArgoCD syncs that may take 20 s.
pub async fn attached_with(mock: &MockApiServer, env: &[(&str, &str)]) -> TestApp {
    spawn_attached(mock, &[&[("ARGOCD_SYNC_TIMEOUT", "20s")], env].concat()).await
}

/// argocd-server's answers to a sync: the Application Degraded, then `after_sync`; the sync
/// and the resource action accepted.
pub fn argocd_server_answers(after_sync: Value) -> Writes {
    Writes::from([
        (
            ("GET".to_string(), REST_APP.to_string()),
            vec![
                (200, application("Synced", "Degraded", "Succeeded", "t1")),
                (200, after_sync),
            ],
        ),
        (
            ("POST".to_string(), format!("{REST_APP}/sync")),
            vec![(200, json!({}))],
        ),
        (
            ("POST".to_string(), format!("{REST_APP}/resource/actions")),
            vec![(200, json!({}))],
        ),
    ])
}
