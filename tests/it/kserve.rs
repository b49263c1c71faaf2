//! The KServe client against the real KServe model server: readiness, float predictions, the
//! anomaly-detector refining layer detection, the model going away (the circuit opens,
//! detection falls back to keywords, health says degraded) and coming back (it closes); the
//! served model's name discovered (the seed serves each predictor's model as `model`), set
//! explicitly, or missing.

use crate::helpers::{TestApp, spawn_app_with, wait_for};
use crate::peers::{free_port, start_model_server, start_model_server_serving};
use serde_json::{Value, json};
use std::time::Duration;

async fn attached_to_models(port: u16) -> TestApp {
    using_models(port, (None, None)).await
}

/// Sends an alert whose summary is `summary` and returns its incident's plan.
async fn plan_of_alert(app: &TestApp, fingerprint: &str, summary: &str) -> Value {
    let mut alert = crate::alertmanager::sample("alertmanager-sample.json");
    alert["alerts"][0]["fingerprint"] = json!(fingerprint);
    alert["alerts"][0]["annotations"]["summary"] = json!(summary);
    let incident_id = app.post_alert(&alert).await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            incident["workflow_ids"][0].as_str().expect("workflow")
        ))
        .await;
    workflow["plan"].clone()
}

fn model<'a>(models: &'a Value, name: &str) -> &'a Value {
    models["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {models}"))
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

    // The anomaly-detector's confident answer decides the layer; an unsure one does not.
    let plan = plan_of_alert(
        &app,
        "ml-1",
        "api cannot reach its volume mlhint-infrastructure",
    )
    .await;
    assert_eq!(plan["root_cause_layer"], "infrastructure", "{plan}");
    assert_eq!(layer_outcome(&app, "used").await, "1");
    let plan = plan_of_alert(&app, "ml-2", "mlhint-vague").await;
    assert_eq!(plan["root_cause_layer"], "application", "{plan}");
    assert_eq!(layer_outcome(&app, "low_confidence").await, "1");

    // The model goes away: three failures open the circuit; workflows still start, by keywords.
    let mut server = server;
    server.kill().await.expect("stop the model server");
    for i in 0..3 {
        let plan = plan_of_alert(&app, &format!("down-{i}"), "mlhint-infrastructure").await;
        assert_eq!(
            plan["root_cause_layer"], "application",
            "keywords decide: {plan}"
        );
    }
    assert_eq!(layer_outcome(&app, "unavailable").await, "3");
    let models = app.get_json("/api/v1/models").await;
    assert_eq!(model(&models, "anomaly-detector")["ready"], false);
    let health = app.get_json("/api/v1/health").await;
    // Degraded, never down: keyword detection carries on.
    assert_eq!(
        health["components"]["kserve"]["status"], "degraded",
        "{health}"
    );
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);

    // It comes back: after the open period one probe goes through and closes the circuit.
    let _server = start_model_server(port).await.expect("restarted");
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
    let plan = plan_of_alert(&app, "back-1", "mlhint-infrastructure").await;
    assert_eq!(plan["root_cause_layer"], "infrastructure");
    let health = app.get_json("/api/v1/health").await;
    assert_eq!(health["components"]["kserve"]["status"], "ok", "{health}");
}

/// An engine using the model server on `port` for both models, with `names` as
/// (KSERVE_ANOMALY_DETECTOR_MODEL, KSERVE_PREDICTIVE_ANALYTICS_MODEL).
async fn using_models(port: u16, names: (Option<&str>, Option<&str>)) -> TestApp {
    let url = format!("http://127.0.0.1:{port}");
    spawn_app_with(|env| {
        env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
        env.insert("KSERVE_ANOMALY_DETECTOR_URL".into(), url.clone());
        env.insert("KSERVE_PREDICTIVE_ANALYTICS_URL".into(), url);
        env.insert("KSERVE_TIMEOUT".into(), "2s".into());
        env.insert("KSERVE_CIRCUIT_OPEN".into(), "1s".into());
        if let Some(name) = names.0 {
            env.insert("KSERVE_ANOMALY_DETECTOR_MODEL".into(), name.into());
        }
        if let Some(name) = names.1 {
            env.insert("KSERVE_PREDICTIVE_ANALYTICS_MODEL".into(), name.into());
        }
    })
    .await
}

fn kserve_health(health: &Value) -> (String, String) {
    let kserve = &health["components"]["kserve"];
    (
        kserve["status"].as_str().unwrap_or_default().to_string(),
        kserve["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_served_as_model_after_the_engine_started_is_discovered_and_rediscovered() {
    let port = free_port();
    // The engine first, the models later (what the seed's sync waves are there to avoid).
    let url = format!("http://127.0.0.1:{port}");
    let app = spawn_app_with(|env| {
        env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
        env.insert("KSERVE_ANOMALY_DETECTOR_URL".into(), url);
        env.insert("KSERVE_TIMEOUT".into(), "2s".into());
        env.insert("KSERVE_CIRCUIT_OPEN".into(), "1s".into());
    })
    .await;
    let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
    assert_eq!(status, "degraded", "{message}");
    assert!(
        message.starts_with("anomaly-detector (model name not discovered yet): "),
        "{message}"
    );
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);

    // The seed's predictor serves its model as `model`: found without KSERVE_*_MODEL.
    let Some(server) = start_model_server_serving(port, "model=anomaly-detector").await else {
        return;
    };
    let message = wait_for(
        "kserve to become ok once the model is served",
        Duration::from_secs(60),
        Duration::from_millis(250),
        || async {
            let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
            (status == "ok").then_some(message)
        },
    )
    .await;
    assert_eq!(
        message, "anomaly-detector (model 'model', discovered): ready",
        "{message}"
    );
    let models = app.get_json("/api/v1/models").await;
    let detector = model(&models, "anomaly-detector");
    assert_eq!(detector["model"], "model", "{models}");
    assert_eq!(detector["model_source"], "discovered");
    // And used: its confident answer decides the layer.
    let plan = plan_of_alert(&app, "seed-1", "disk trouble mlhint-infrastructure").await;
    assert_eq!(plan["root_cause_layer"], "infrastructure", "{plan}");

    // Redeployed under another name: the 404 for `model` makes the engine ask again.
    let mut server = server;
    server.kill().await.expect("stop the model server");
    let _server = start_model_server_serving(port, "detector-v2=anomaly-detector")
        .await
        .expect("restarted");
    let plan = plan_of_alert(&app, "seed-2", "disk trouble mlhint-infrastructure").await;
    assert_eq!(plan["root_cause_layer"], "infrastructure", "{plan}");
    let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
    assert_eq!(status, "ok", "{message}");
    assert!(
        message.contains("anomaly-detector (model 'detector-v2', discovered): ready"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_model_names_are_used_and_a_missing_or_ambiguous_one_is_named() {
    let port = free_port();
    let Some(_server) =
        start_model_server_serving(port, "model=anomaly-detector,other=predictive-analytics").await
    else {
        return;
    };

    // Named explicitly: `model` is used as named; `forecaster` is not served.
    let app = using_models(port, (Some("model"), Some("forecaster"))).await;
    let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
    assert_eq!(status, "degraded", "{message}");
    assert!(
        message.contains(&format!(
            "predictive-analytics (model 'forecaster', explicit): KServe model 'forecaster' does not exist at http://127.0.0.1:{port}"
        )),
        "{message}"
    );
    assert!(
        message.contains("anomaly-detector (model 'model', explicit): ready"),
        "{message}"
    );
    let models = app.get_json("/api/v1/models").await;
    assert_eq!(
        model(&models, "anomaly-detector")["model_source"],
        "explicit"
    );
    assert_eq!(model(&models, "predictive-analytics")["ready"], false);
    let plan = plan_of_alert(&app, "explicit-1", "mlhint-infrastructure").await;
    assert_eq!(plan["root_cause_layer"], "infrastructure", "{plan}");
    // A missing model is the upstream's fault, said as such.
    let response = app
        .post_json(
            "/api/v1/predict",
            &json!({"hour": 10, "day_of_week": 2, "cpu_rolling_mean": 40.0, "memory_rolling_mean": 50.0}),
        )
        .await;
    assert_eq!(response.status(), 502);
    let (_, body) = crate::helpers::error_body(response).await;
    assert!(body.to_string().contains("forecaster"), "{body}");

    // Not named, two models served and neither named after its role: which one is unclear.
    let app = using_models(port, (None, None)).await;
    let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
    assert_eq!(status, "degraded", "{message}");
    assert!(
        message.contains(&format!(
            "anomaly-detector (model name not discovered yet): http://127.0.0.1:{port}/v1/models serves 2 models (model, other) and none is named 'anomaly-detector'; set KSERVE_ANOMALY_DETECTOR_MODEL to choose"
        ))
            && message.contains("KSERVE_PREDICTIVE_ANALYTICS_MODEL"),
        "{message}"
    );
}

/// A server that is not a well-behaved model server: under `/huge`, a 2 MiB model list; under
/// `/slow`, no answer for a minute.
fn hostile_model_server() -> (u16, actix_web::dev::ServerHandle) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/huge/v1/models",
                web::get().to(|| async {
                    let names: Vec<String> =
                        (0..100_000).map(|i| format!("model-{i:08}")).collect();
                    HttpResponse::Ok().json(json!({ "models": names }))
                }),
            )
            .route(
                "/slow/v1/models",
                web::get().to(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    HttpResponse::Ok().json(json!({"models": ["model"]}))
                }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (port, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_discovery_is_bounded_in_size_and_time() {
    let (port, server) = hostile_model_server();
    let app = spawn_app_with(|env| {
        env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
        env.insert(
            "KSERVE_ANOMALY_DETECTOR_URL".into(),
            format!("http://127.0.0.1:{port}/huge"),
        );
        env.insert(
            "KSERVE_PREDICTIVE_ANALYTICS_URL".into(),
            format!("http://127.0.0.1:{port}/slow"),
        );
        env.insert("KSERVE_TIMEOUT".into(), "1s".into());
    })
    .await;
    let started = std::time::Instant::now();
    let (status, message) = kserve_health(&app.get_json("/api/v1/health").await);
    // One discovery each, the slow one cut at KSERVE_TIMEOUT (1 s): well under the peer's minute.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, "degraded", "{message}");
    assert!(
        message.contains(
            "anomaly-detector (model name not discovered yet): 200 OK: answer larger than 65536 bytes"
        ),
        "{message}"
    );
    assert!(
        message.contains("predictive-analytics (model name not discovered yet): "),
        "{message}"
    );
    server.stop(false).await;
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
