//! The served model's name: discovered (the seed serves each predictor's model as `model`),
//! set explicitly, or missing; discovery bounded in size and time against a hostile server.

use super::{kserve_health, model, plan_of_alert, using_models};
use crate::helpers::{spawn_app_with, wait_for};
use crate::peers::{free_port, start_model_server_serving};
use serde_json::json;
use std::time::Duration;

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
