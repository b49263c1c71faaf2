//! The MCP server's anomaly requests, as it sends them, against the backfilled Prometheus and
//! the real KServe model server.

use super::go_shapes::go_decodes_analysis;
use super::setup::{int, setup_with};
use crate::helpers::TestApp;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_servers_anomaly_requests_are_answered_with_go_compatible_types() {
    let Some(setup) = setup_with(true).await else {
        return;
    };
    let app = &setup.app;
    let answers = answer_each_request_shape(app).await;
    // The model scored the vectors.
    assert!(
        answers[0]["summary"]["models_used"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("anomaly-detector"))),
        "{}",
        answers[0]
    );
    busy_is_throttled_in_half_its_periods(&answers[2]);
    // The snake_case request was scoped to one pod.
    assert_eq!(
        int(&answers[3]["summary"], "total_metrics_analyzed"),
        1,
        "{}",
        answers[3]
    );
    predict_measures_the_namespace_in_prometheus(app).await;
    // Bad requests.
    for bad in [
        json!({"metrics": ["gpu usage"]}),
        json!({"threshold": 2}),
        json!({"timeRange": "forever"}),
        json!({"modelName": "other-model"}),
        json!({"labelSelector": "app=web,"}),
    ] {
        let status = app
            .post_json("/api/v1/anomalies/analyze", &bad)
            .await
            .status();
        assert_eq!(status, 422, "{bad}");
    }
}

/// analyze-anomalies, get-remediation-recommendations, get-throttled-pods (contract §3 #4),
/// and the Go engine's snake_case keys: each answered 200 in Go-decodable types.
async fn answer_each_request_shape(app: &TestApp) -> Vec<Value> {
    let shapes = [
        json!({"timeRange": "1h", "metrics": ["cpu"], "threshold": 0.3, "modelName": "anomaly-detector", "namespace": "shop"}),
        json!({"timeRange": "6h", "metrics": ["cpu", "memory", "disk", "network"], "threshold": 0.7, "includePredictions": true}),
        json!({"timeRange": "1h", "metrics": ["cpu_usage"], "threshold": 0.25, "namespace": "shop"}),
        json!({"time_range": "1h", "metrics": [{"name": "memory"}], "threshold": 0.3, "model_name": "anomaly-detector", "namespace": "shop", "pod": "leaky-0"}),
    ];
    let mut answers = Vec::new();
    for shape in &shapes {
        let response = app.post_json("/api/v1/anomalies/analyze", shape).await;
        assert_eq!(response.status(), 200, "{shape}");
        let answer: Value = response.json().await.expect("json");
        go_decodes_analysis(&answer);
        answers.push(answer);
    }
    answers
}

fn busy_is_throttled_in_half_its_periods(throttling: &Value) {
    // get-throttled-pods: busy-0 is throttled in half its periods; the tool splits the
    // explanation at the first "/" and reads metrics.throttle_rate_pct as a fraction.
    let throttled = throttling["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|a| a["type"] == "throttling")
        .unwrap_or_else(|| panic!("no throttling anomaly: {}", throttling));
    assert!(
        throttled["explanation"]
            .as_str()
            .is_some_and(|e| e.starts_with("shop/busy-0:"))
    );
    let rate = throttled["metrics"]["throttle_rate_pct"]
        .as_f64()
        .expect("rate");
    assert!((rate - 0.5).abs() < 0.02, "{throttled}");
    // Namespace-wide: busy-0's 5 throttled periods a second over 20 in all.
    let overall = throttling["enriched_signals"]["cpu_throttle_rate"]
        .as_f64()
        .expect("throttle rate");
    assert!((overall - 0.25).abs() < 0.01, "{}", throttling);
    assert!(
        throttling["enriched_signals"]["http_error_rate"].is_null(),
        "no HTTP series: null"
    );
}

async fn predict_measures_the_namespace_in_prometheus(app: &TestApp) {
    // With Prometheus, /predict measures the namespace's usage against its requests instead of
    // taking the client's estimate: CPU 0.7 cores of 2.1 requested.
    let prediction: Value = app
        .post_json(
            "/api/v1/predict",
            &json!({"hour": 9, "day_of_week": 0, "cpu_rolling_mean": 99.0, "memory_rolling_mean": 99.0,
                    "scope": "namespace", "namespace": "shop"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        prediction["current_metrics"]["source"], "prometheus",
        "{prediction}"
    );
    let cpu = prediction["current_metrics"]["cpu_rolling_mean"]
        .as_f64()
        .expect("cpu");
    assert!((cpu - 100.0 * 0.7 / 2.1).abs() < 1.0, "{prediction}");
    let predicted = prediction["predictions"]["cpu_percent"]
        .as_f64()
        .expect("cpu");
    assert!(
        (predicted - (cpu * 1.5 + 0.25)).abs() < 0.01,
        "the model's answer: {prediction}"
    );
}
