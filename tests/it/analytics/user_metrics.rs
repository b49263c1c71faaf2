//! Any metric the user types in an anomaly request: a catalog entry's PromQL, a raw series
//! read by its name, or a 422 naming it; it never reaches Prometheus as PromQL.

use super::go_shapes::go_decodes_analysis;
use super::series::{QUEUE_METRIC, QUEUE_SPIKE};
use super::setup::{int, setup};
use crate::helpers::{TestApp, error_body};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_metric_the_user_types_is_a_catalog_query_a_raw_series_or_a_422() {
    let Some(setup) = setup().await else { return };
    let app = &setup.app;
    catalog_names_find_the_crash_loop(app).await;
    raw_series_are_read_by_their_name(app).await;
    names_without_series_are_named_in_the_message(app).await;
    every_catalog_query_is_accepted_by_prometheus(app).await;
    anything_else_is_a_422_naming_it(app).await;
}

/// POSTs an anomaly request that must be answered 200 in Go-decodable types.
async fn analyze(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/v1/anomalies/analyze", &body).await;
    assert_eq!(response.status(), 200, "{body}");
    let answer: Value = response.json().await.expect("json");
    go_decodes_analysis(&answer);
    answer
}

/// The one anomaly of `metric` for `pod` in an answer.
fn anomaly_of<'a>(answer: &'a Value, metric: &str, pod: &str) -> &'a Value {
    answer["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|a| {
            a["metric"] == metric
                && a["explanation"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(&format!("{pod}:")))
        })
        .unwrap_or_else(|| panic!("no {metric} anomaly for {pod}: {answer}"))
}

async fn catalog_names_find_the_crash_loop(app: &TestApp) {
    // The MCP server's analyze-anomalies call as it sends it (contract §3 #4), with the
    // user's metric passed through: busy-0 crash-loops in the last 10 minutes.
    let restarts = analyze(
        app,
        json!({"timeRange": "1h", "metrics": ["pod_restarts"], "threshold": 0.3,
               "modelName": "anomaly-detector", "namespace": "shop"}),
    )
    .await;
    let crash = anomaly_of(&restarts, "pod_restarts", "shop/busy-0");
    assert_eq!(crash["type"], "spike", "{crash}");
    assert!(crash["value"].as_f64().expect("value") >= 2.0, "{crash}");
    assert!(
        crash["recommended_action"]
            .as_str()
            .is_some_and(|a| a.contains("--previous")),
        "{crash}"
    );
    assert_eq!(
        int(&restarts["summary"], "total_metrics_analyzed"),
        2,
        "busy-0 and steady-0 have the series: {restarts}"
    );
    assert_eq!(restarts["metrics_without_data"], json!([]));
    assert!(restarts.get("message").is_none(), "{restarts}");
    // The other names of the same entry answer the same.
    let alias = analyze(
        app,
        json!({"metrics": ["Container_Restarts"], "namespace": "shop", "pod": "busy-0"}),
    )
    .await;
    anomaly_of(&alias, "container_restarts", "shop/busy-0");
}

async fn raw_series_are_read_by_their_name(app: &TestApp) {
    // A raw series by its name: the application's gauge jumped to 100 on busy-0 only.
    let raw = analyze(
        app,
        json!({"timeRange": "1h", "metrics": [QUEUE_METRIC], "threshold": 0.3,
               "modelName": "anomaly-detector", "namespace": "shop"}),
    )
    .await;
    let spike = anomaly_of(&raw, QUEUE_METRIC, "shop/busy-0");
    assert_eq!(spike["value"].as_f64(), Some(QUEUE_SPIKE), "{spike}");
    assert_eq!(
        int(&raw, "anomalies_detected"),
        1,
        "steady-0 is flat: {raw}"
    );
    // A raw counter is read as its rate, and the pod filter scopes it: busy-0 has 10 CFS
    // periods a second (threshold 0 reports every series, with its value).
    let counter = analyze(
        app,
        json!({"metrics": ["container_cpu_cfs_periods_total"], "threshold": 0,
               "namespace": "shop", "pod": "busy-0"}),
    )
    .await;
    assert_eq!(
        int(&counter["summary"], "total_metrics_analyzed"),
        1,
        "{counter}"
    );
    let rate = anomaly_of(&counter, "container_cpu_cfs_periods_total", "shop/busy-0")["value"]
        .as_f64()
        .expect("value");
    assert!((rate - 10.0).abs() < 0.5, "{counter}");
}

async fn names_without_series_are_named_in_the_message(app: &TestApp) {
    // A valid name with no series, and a catalog entry whose series this cluster lacks: 200,
    // no anomalies, and a message naming both and what they need.
    let missing = analyze(
        app,
        json!({"timeRange": "1h", "metrics": ["no_such_metric_anywhere", "oom_kills"],
               "threshold": 0.3, "namespace": "shop"}),
    )
    .await;
    assert_eq!(int(&missing, "anomalies_detected"), 0, "{missing}");
    assert_eq!(
        missing["metrics_without_data"],
        json!(["no_such_metric_anywhere", "oom_kills"])
    );
    let message = missing["message"].as_str().expect("message");
    for said in [
        "no_such_metric_anywhere",
        "oom_kills",
        "container_oom_events_total",
        "namespace shop",
    ] {
        assert!(message.contains(said), "{said} in {message}");
    }
}

async fn every_catalog_query_is_accepted_by_prometheus(app: &TestApp) {
    // Every catalog entry's PromQL is accepted by the real Prometheus, scoped every way.
    use coordination_engine::analytics::metrics_catalog::CATALOG;
    let names: Vec<&str> = CATALOG.iter().map(|e| e.names[0]).collect();
    for chunk in names.chunks(10) {
        for scope in [
            json!({"namespace": "shop", "pod": "busy-0"}),
            json!({"namespace": "shop", "deployment": "web.v2"}),
            json!({"labelSelector": "app=web"}),
        ] {
            let mut body = scope.clone();
            body["metrics"] = json!(chunk);
            analyze(app, body).await;
        }
    }
}

async fn anything_else_is_a_422_naming_it(app: &TestApp) {
    // Anything that is not a metric name never reaches Prometheus: a 422 naming it.
    let long = "a".repeat(201);
    for bad in [
        r#"up{job="x"} or vector(1)"#,
        "foo)",
        "pod restarts",
        "",
        "cpu\"}",
        r#"{__name__=~".+"}"#,
        long.as_str(),
    ] {
        let response = app
            .post_json(
                "/api/v1/anomalies/analyze",
                &json!({"metrics": ["cpu", bad], "namespace": "shop"}),
            )
            .await;
        assert_eq!(response.status(), 422, "{bad:?}");
        let (code, body) = error_body(response).await;
        assert_eq!(code, "validation_failed", "{body}");
        assert_eq!(body["error"]["details"]["field"], "metrics", "{body}");
        let named = body["error"]["details"]["metric"].as_str().expect("metric");
        assert!(
            bad.starts_with(named.trim_end_matches('…')),
            "{named} for {bad:?}"
        );
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("Prometheus metric name")
                || message.contains("empty")
                || message.contains("longer"),
            "{message}"
        );
    }
}
