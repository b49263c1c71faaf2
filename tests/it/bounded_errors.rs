//! Error answers stay small whatever the caller sent: a string or map key of 900 KiB that fails
//! validation is not echoed back (nor logged) in full, on every route that parses outside input.

use crate::helpers::{sample, spawn_app};
use serde_json::{Value, json};

/// Largest error body accepted here; the caller's text below is 900 KiB.
const SMALL: usize = 8 * 1024;

/// Just under the 1 MiB limit of the API routes, so the body reaches its parser everywhere.
fn huge() -> String {
    "x".repeat(900 * 1024)
}

/// A map with one huge key whose value has the wrong type (the path names the key).
fn huge_key() -> Value {
    json!({ huge(): 5 })
}

fn review(api_version: &str, operation: &str) -> Value {
    json!({"apiVersion": api_version, "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "cart", "namespace": "prod", "operation": operation,
            "userInfo": {"username": "alice"}, "object": {}}})
}

/// (route, with token, body, expected status): each route that parses outside input, given
/// huge caller text where validation fails.
fn huge_text_cases() -> Vec<(&'static str, bool, Value, u16)> {
    let mut alert_with_huge_label = sample("alertmanager", "alertmanager-sample.json");
    alert_with_huge_label["alerts"] = json!([{"status": "firing", "labels": huge_key(),
        "fingerprint": "0123456789abcdef", "startsAt": "2026-01-01T00:00:00Z"}]);
    let mut envelope_with_huge_key = sample("alertmanager", "alertmanager-sample.json");
    envelope_with_huge_key["commonLabels"] = huge_key();
    vec![
        ("/webhooks/validate", false, review(&huge(), "UPDATE"), 400),
        (
            "/webhooks/validate",
            false,
            review("admission.k8s.io/v1", &huge()),
            400,
        ),
        (
            "/api/v1/guard/explain",
            true,
            review(&huge(), "UPDATE"),
            400,
        ),
        (
            "/api/v1/guard/explain",
            true,
            review("admission.k8s.io/v1", &huge()),
            400,
        ),
        (
            "/webhooks/audit",
            true,
            json!({"apiVersion": huge(), "kind": "EventList", "items": []}),
            400,
        ),
        (
            "/webhooks/audit",
            true,
            json!({"apiVersion": "audit.k8s.io/v1", "kind": huge(), "items": []}),
            400,
        ),
        ("/webhooks/alertmanager", true, alert_with_huge_label, 422),
        ("/webhooks/alertmanager", true, envelope_with_huge_key, 422),
        (
            "/api/v1/incidents",
            true,
            json!({"title": "t", "severity": "high", "labels": huge_key()}),
            422,
        ),
        (
            "/api/v1/remediation/trigger",
            true,
            json!({"namespace": "prod", "resource_type": "pod", "resource_name": "api-1",
                "issue_type": "CrashLoopBackOff", "dry_run": huge()}),
            422,
        ),
    ]
}

#[tokio::test]
async fn errors_about_huge_caller_text_stay_small_on_every_parser_route() {
    let app = spawn_app().await;
    let cases = huge_text_cases();
    for (route, token, body, expected) in cases {
        let mut request = app
            .client
            .post(app.url(route))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("json"));
        if token {
            request = request.bearer_auth(&app.token);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        assert_eq!(status, expected, "{route}: {shown}");
        assert!(
            bytes.len() < SMALL,
            "{route}: an error of {} bytes: {shown}…",
            bytes.len()
        );
        let error: Value = serde_json::from_slice(&bytes).expect("JSON error");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}
