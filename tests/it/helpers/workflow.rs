//! Workflows driven through the API: trigger one, wait for its end, and read what it sent to
//! the mock API server.

use super::{TestApp, wait_for};
use crate::kube_mock::Recorded;
use serde_json::{Value, json};
use std::time::Duration;

pub async fn finished_workflow(app: &TestApp, id: &str) -> Value {
    let path = format!("/api/v1/workflows/{id}");
    wait_for(
        "the workflow to finish",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let workflow = app.get_json(&path).await;
            matches!(
                workflow["status"].as_str(),
                Some("succeeded" | "escalated" | "failed" | "interrupted" | "not_needed")
            )
            .then_some(workflow)
        },
    )
    .await
}

/// Writes to objects (Events the engine records are left out; `events_of` lists those).
pub fn writes_of(requests: &[Recorded]) -> Vec<(String, String)> {
    requests
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/events"))
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect()
}

/// The `reason` of every Event the engine posted.
pub fn events_of(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/events"))
        .map(|r| r.body["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub async fn trigger(app: &TestApp, ns: &str, kind: &str, name: &str, issue: &str) -> Value {
    let response = app
        .post_json("/api/v1/remediation/trigger", &json!({"namespace": ns, "resource_type": kind, "resource_name": name, "issue_type": issue}))
        .await;
    assert_eq!(response.status(), 202);
    response.json().await.expect("json")
}
