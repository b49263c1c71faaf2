//! The body targets: Alertmanager notifications, audit event lists, admission reviews,
//! trigger shapes and the other API bodies, each mutated from real samples.

use super::harness::{
    BODY_INPUTS, Input, MAX_BODY, app_without_pipeline, assert_mixed, drive, post, scaled,
};
use super::mutate;
use super::values;
use crate::helpers::sample;
use reqwest::Method;
use serde_json::{Value, json};

/// A group of three alerts: a mutation that spoils one leaves two to store.
fn three_alerts() -> Value {
    let mut notification = sample("alertmanager", "alertmanager-sample.json");
    let alert = notification["alerts"][0].clone();
    notification["alerts"] = (0..3)
        .map(|i| {
            let mut a = alert.clone();
            a["fingerprint"] = json!(format!("{i:016x}"));
            a["labels"]["pod"] = json!(format!("api-{i}"));
            a
        })
        .collect();
    notification
}

#[tokio::test]
async fn fuzz_alertmanager_notifications() {
    let app = app_without_pipeline(false).await;
    let seeds: Vec<Value> = [
        "alertmanager-sample.json",
        "alertmanager-sample.raw.json",
        "alertmanager-sample-resolved.json",
        "alertmanager-sample-from-prometheus.json",
    ]
    .iter()
    .map(|name| sample("alertmanager", name))
    .chain([three_alerts()])
    .collect();
    let vocabulary = values::vocabulary(&seeds);
    let statuses = drive(&app, "alertmanager", 0xA1E7, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        post("/webhooks/alertmanager", body, &[200, 400, 413, 415, 422])
    })
    .await;
    assert_mixed("alertmanager", &statuses);
}

#[tokio::test]
async fn fuzz_audit_event_lists() {
    let app = app_without_pipeline(false).await;
    let seeds: Vec<Value> = [
        "argocd-sync.json",
        "engine-remediation.json",
        "forbidden-burst.json",
        "kubectl-delete-metadata-level.json",
        "kubectl-edit.json",
        "kubectl-scale.json",
        "protected-delete.json",
        "status-update.json",
        "unmanaged-patch.json",
    ]
    .iter()
    .map(|name| sample("audit", name))
    .collect();
    let vocabulary = values::vocabulary(&seeds);
    let statuses = drive(&app, "audit", 0xA0D1, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        post("/webhooks/audit", body, &[200, 400, 413])
    })
    .await;
    assert_mixed("audit", &statuses);
}

#[tokio::test]
async fn fuzz_admission_reviews() {
    let app = app_without_pipeline(false).await;
    let cases = sample("admission", "cases.json");
    let seeds: Vec<Value> = cases["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| case["review"].clone())
        .collect();
    let vocabulary = values::vocabulary(&seeds);
    let statuses = drive(&app, "admission", 0xAD01, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        if rng.one_in(4) {
            // The same review through the explain route (token, JSON extractor).
            post("/api/v1/guard/explain", body, &[200, 400, 413, 415, 422])
        } else {
            Input {
                token: false,
                ..post("/webhooks/validate", body, &[200, 400, 413])
            }
        }
    })
    .await;
    assert_mixed("admission", &statuses);
}

#[tokio::test]
async fn fuzz_trigger_shapes() {
    let app = app_without_pipeline(true).await;
    // (seed, route): every trigger shape, and the manual incident the MCP server creates.
    let flat = json!({"namespace": "production", "resource_type": "pod", "resource_name": "api-1",
        "issue_type": "CrashLoopBackOff", "severity": "high", "dry_run": true,
        "metadata": {"source": "fuzz"}, "incident_id": "ext-1"});
    let nested = json!({"incident_id": "mcp-42", "namespace": "shop",
        "resource": {"kind": "Deployment", "name": "cart"},
        "issue": {"type": "pod_crash", "description": "", "severity": "critical"}, "dry_run": true});
    let node = json!({"resource_type": "node", "resource_name": "worker-1",
        "issue_type": "NodeNotReady", "dry_run": true});
    let coordination = json!({"incident_id": "ext-7", "description": "checkout down", "dry_run": true,
        "resources": [
            {"kind": "Deployment", "name": "checkout", "namespace": "shop", "issue": "crash_loop"},
            {"kind": "Node", "name": "worker-3", "issue": "node_not_ready"}]});
    let incident = json!({"title": "Checkout slow", "description": "p99 up", "severity": "high",
        "target": "Deployment/checkout", "namespace": "shop", "issueType": "latency",
        "labels": {"team": "shop"}, "confidence": 0.5, "source": "manual",
        "parameters": {"x": 1}});
    let single = [flat, nested, node];
    let vocabulary = values::vocabulary(
        &[
            single.to_vec(),
            vec![coordination.clone(), incident.clone()],
        ]
        .concat(),
    );
    let accepted: &[u16] = &[200, 201, 202, 400, 404, 409, 413, 415, 422, 429];
    let statuses = drive(&app, "triggers", 0x7216, scaled(BODY_INPUTS), |rng| {
        match rng.below(6) {
            0 => post(
                "/api/v1/coordination/trigger",
                mutate::body(
                    std::slice::from_ref(&coordination),
                    &vocabulary,
                    rng,
                    MAX_BODY,
                ),
                accepted,
            ),
            1 => post(
                "/api/v1/incidents",
                mutate::body(std::slice::from_ref(&incident), &vocabulary, rng, MAX_BODY),
                accepted,
            ),
            2 | 3 => {
                // The compatibility listener: no token, both of its prefixes.
                let path = rng.pick(&[
                    "/api/v1/remediation/trigger",
                    "/api/v1/api/v1/remediation/trigger",
                ]);
                Input {
                    compat: true,
                    token: false,
                    ..post(
                        path,
                        mutate::body(&single, &vocabulary, rng, MAX_BODY),
                        accepted,
                    )
                }
            }
            _ => post(
                "/api/v1/remediation/trigger",
                mutate::body(&single, &vocabulary, rng, MAX_BODY),
                accepted,
            ),
        }
    })
    .await;
    assert_mixed("triggers", &statuses);
}

#[tokio::test]
async fn fuzz_other_api_bodies() {
    let app = app_without_pipeline(false).await;
    let incident = app
        .create_incident(json!({"title": "fuzz target", "severity": "low"}))
        .await;
    let analyze = json!({"timeRange": "1h", "metrics": ["cpu", {"name": "memory"}],
        "threshold": 0.5, "modelName": "anomaly-detector", "namespace": "prod",
        "deployment": "api", "pod": "api-1", "labelSelector": "app=api",
        "includePredictions": true});
    let predict = json!({"hour": 10, "day_of_week": 2, "cpu_rolling_mean": 50.0,
        "memory_rolling_mean": 60.0, "scope": "namespace", "namespace": "prod",
        "deployment": "api", "pod": "api-1"});
    let pause = json!({"reason": "maintenance"});
    let change = json!({"status": "resolved", "action": "resolve", "note": "done"});
    let all = [
        analyze.clone(),
        predict.clone(),
        pause.clone(),
        change.clone(),
    ];
    let vocabulary = values::vocabulary(&all);
    // Prometheus and KServe do not run here: their routes answer 503 once the body is valid.
    const ALLOWED: &[u16] = &[200, 400, 404, 409, 413, 415, 422, 503];
    let change_path = format!("/api/v1/incidents/{incident}");
    let statuses = drive(&app, "api-bodies", 0xB0D7, scaled(BODY_INPUTS), |rng| {
        let (seed, path) = match rng.below(4) {
            0 => (&analyze, "/api/v1/anomalies/analyze"),
            1 => (&predict, "/api/v1/predict"),
            2 => (&pause, "/api/v1/pause?namespace=prod"),
            _ => {
                let body = mutate::body(std::slice::from_ref(&change), &vocabulary, rng, MAX_BODY);
                return Input {
                    method: Method::PATCH,
                    ..post(&change_path, body, ALLOWED)
                };
            }
        };
        post(
            path,
            mutate::body(std::slice::from_ref(seed), &vocabulary, rng, MAX_BODY),
            ALLOWED,
        )
    })
    .await;
    assert_mixed("api-bodies", &statuses);
}
