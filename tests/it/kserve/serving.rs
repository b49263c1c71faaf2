//! The model server serving: readiness, a float prediction in the MCP server's shape, the
//! anomaly-detector refining layer detection, and the fail-over to keywords and back.

use super::{model, plan_of_alert, using_models};
use crate::helpers::{TestApp, wait_for};
use crate::peers::{free_port, start_model_server};
use serde_json::{Value, json};
use std::time::Duration;

async fn attached_to_models(port: u16) -> TestApp {
    using_models(port, (None, None)).await
}

async fn layer_outcome(app: &TestApp, outcome: &str) -> String {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "coordination_engine_ml_layer_detection_total{{outcome=\"{outcome}\"}}"
            ))
        })
        .unwrap_or_default()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_serve_predict_refine_detection_and_fail_over_to_keywords() {
    let port = free_port();
    let Some(server) = start_model_server(port).await else {
        return;
    };
    let app = attached_to_models(port).await;
    both_models_are_ready(&app).await;
    a_float_prediction_decodes_as_go(&app).await;
    the_detector_decides_the_layer_only_when_confident(&app).await;

    // The model goes away: three failures open the circuit; workflows still start, by keywords.
    let mut server = server;
    server.kill().await.expect("stop the model server");
    keywords_carry_on_while_the_model_is_away(&app).await;

    // It comes back: after the open period one probe goes through and closes the circuit.
    let _server = start_model_server(port).await.expect("restarted");
    the_circuit_closes_once_it_is_back(&app).await;
}

async fn both_models_are_ready(app: &TestApp) {
    // Readiness.
    let models = app.get_json("/api/v1/models").await;
    assert_eq!(models["enabled"], true);
    for name in ["anomaly-detector", "predictive-analytics"] {
        assert_eq!(model(&models, name)["ready"], true, "{models}");
        assert_eq!(model(&models, name)["circuit"], "closed");
    }
    assert_eq!(
        app.get_authed("/api/v1/models/anomaly-detector/health")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_authed("/api/v1/models/nope/health").await.status(),
        404
    );
}

async fn a_float_prediction_decodes_as_go(app: &TestApp) {
    // A float prediction, decoded as numbers (the MCP server's predict shape).
    let prediction: Value = app
        .post_json(
            "/api/v1/predict",
            &json!({"hour": 10, "day_of_week": 2, "cpu_rolling_mean": 40.0, "memory_rolling_mean": 50.0,
                    "scope": "namespace", "namespace": "shop"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        prediction["predictions"]["cpu_percent"], 60.25,
        "{prediction}"
    );
    assert_eq!(prediction["predictions"]["memory_percent"], 55.5);
    assert_eq!(prediction["model_info"]["confidence"], 0.87);
    assert_eq!(prediction["current_metrics"]["source"], "request");
    // As the MCP server's Go structs decode it (contract §4 #5).
    use crate::compat::assert_go_fields as go;
    go(
        &prediction,
        &[
            ("status", "string"),
            ("scope", "string"),
            ("target", "string"),
            ("trend", "string"),
            ("recommendation", "string"),
        ],
    );
    go(
        &prediction["predictions"],
        &[("cpu_percent", "number"), ("memory_percent", "number")],
    );
    go(
        &prediction["model_info"],
        &[
            ("name", "string"),
            ("version", "string"),
            ("confidence", "number"),
        ],
    );
    go(
        &prediction["current_metrics"],
        &[
            ("cpu_rolling_mean", "number"),
            ("memory_rolling_mean", "number"),
            ("timestamp", "string"),
        ],
    );
    go(
        &prediction["target_time"],
        &[
            ("hour", "int"),
            ("day_of_week", "int"),
            ("iso_timestamp", "string"),
        ],
    );
    assert_eq!(prediction["trend"], "increasing");
}

async fn the_detector_decides_the_layer_only_when_confident(app: &TestApp) {
    // The anomaly-detector's confident answer decides the layer; an unsure one does not.
    let plan = plan_of_alert(
        app,
        "ml-1",
        "api cannot reach its volume mlhint-infrastructure",
    )
    .await;
    assert_eq!(plan["root_cause_layer"], "infrastructure", "{plan}");
    assert_eq!(layer_outcome(app, "used").await, "1");
    let plan = plan_of_alert(app, "ml-2", "mlhint-vague").await;
    assert_eq!(plan["root_cause_layer"], "application", "{plan}");
    assert_eq!(layer_outcome(app, "low_confidence").await, "1");
}

async fn keywords_carry_on_while_the_model_is_away(app: &TestApp) {
    for i in 0..3 {
        let plan = plan_of_alert(app, &format!("down-{i}"), "mlhint-infrastructure").await;
        assert_eq!(
            plan["root_cause_layer"], "application",
            "keywords decide: {plan}"
        );
    }
    assert_eq!(layer_outcome(app, "unavailable").await, "3");
    let models = app.get_json("/api/v1/models").await;
    assert_eq!(model(&models, "anomaly-detector")["ready"], false);
    let health = app.get_json("/api/v1/health").await;
    // Degraded, never down: keyword detection carries on.
    assert_eq!(
        health["components"]["kserve"]["status"], "degraded",
        "{health}"
    );
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);
}

async fn the_circuit_closes_once_it_is_back(app: &TestApp) {
    wait_for(
        "the anomaly-detector's circuit to close",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let models = app.get_json("/api/v1/models").await;
            let detector = model(&models, "anomaly-detector");
            (detector["ready"] == true && detector["circuit"] == "closed").then_some(())
        },
    )
    .await;
    let plan = plan_of_alert(app, "back-1", "mlhint-infrastructure").await;
    assert_eq!(plan["root_cause_layer"], "infrastructure");
    let health = app.get_json("/api/v1/health").await;
    assert_eq!(health["components"]["kserve"]["status"], "ok", "{health}");
}

#[tokio::test]
async fn predict_without_a_model_is_503_naming_the_setting_and_bad_input_is_422() {
    let app = crate::helpers::spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/predict",
            &json!({"hour": 3, "day_of_week": 1, "scope": "namespace"}),
        )
        .await;
    assert_eq!(response.status(), 503);
    let (code, body) = crate::helpers::error_body(response).await;
    assert_eq!(code, "not_configured");
    assert!(
        body["error"]["details"]["setting"]
            .as_str()
            .is_some_and(|s| s.contains("KSERVE_PREDICTIVE_ANALYTICS_SERVICE"))
    );
    for bad in [
        json!({"hour": 24, "day_of_week": 1}),
        json!({"hour": 3, "day_of_week": 7}),
        json!({"hour": 3, "day_of_week": 1, "scope": "galaxy"}),
        json!({"hour": "three"}),
    ] {
        let status = app.post_json("/api/v1/predict", &bad).await.status();
        assert!(status == 422 || status == 400, "{bad}: {status}");
    }
    let models = app.get_json("/api/v1/models").await;
    assert_eq!(models, json!({"enabled": false, "models": []}));
}
