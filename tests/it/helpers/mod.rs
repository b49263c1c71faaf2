//! What the tests share: the engine in-process (`app`), TLS clients (`tls`), Kubernetes objects
//! and the mock API server's answers (`cluster`, and an ArgoCD-managed app: `argocd`),
//! workflows driven through the API (`workflow`), and the general checks below.

mod app;
pub mod argocd;
pub mod cluster;
mod tls;
pub mod workflow;

pub use app::*;
pub use tls::*;

use std::path::Path;

/// Parses the error shape and checks its invariants; returns (code, body).
pub async fn error_body(response: reqwest::Response) -> (String, serde_json::Value) {
    let header_id = response
        .headers()
        .get("x-request-id")
        .expect("every response has X-Request-ID")
        .to_str()
        .expect("ascii")
        .to_string();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    assert_eq!(
        body["request_id"], header_id,
        "body and header ids agree: {body}"
    );
    let message = body["error"]["message"]
        .as_str()
        .expect("message is a string");
    assert!(!message.is_empty());
    let code = body["error"]["code"]
        .as_str()
        .expect("code is a string")
        .to_string();
    (code, body)
}

/// A fixture from `webhooks/samples/<dir>/<name>` (fixtures live once, there).
pub fn sample(dir: &str, name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples")
        .join(dir)
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).expect("sample exists"))
        .expect("sample is JSON")
}

/// The cases of the guard's table, `webhooks/samples/admission/cases.json`.
pub fn admission_cases() -> Vec<serde_json::Value> {
    sample("admission", "cases.json")["cases"]
        .as_array()
        .expect("cases array")
        .clone()
}

/// One case of that table, by name (its `review`, `expect`, …).
pub fn admission_case(name: &str) -> serde_json::Value {
    admission_cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no admission case {name:?}"))
}

/// Polls `probe` every `every` until it returns `Some`, failing after `limit`: waiting for a
/// condition, never sleeping for a fixed time.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    limit: std::time::Duration,
    every: std::time::Duration,
    mut probe: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + limit;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
    }
}
