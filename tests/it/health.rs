use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_ok_with_the_version_over_verified_tls() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn detailed_health_is_degraded_and_detached_without_a_cluster() {
    let app = spawn_app().await;
    let response = app.get_authed("/api/v1/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["mode"], "detached");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["components"]["kubernetes"]["status"], "degraded");
    assert_eq!(body["components"]["tls"]["status"], "ok");
    assert_eq!(body["components"]["store"]["status"], "ok");
    assert!(body["components"]["store"]["latency_ms"].is_number());
    assert!(body["uptime_seconds"].is_u64(), "integer uptime: {body}");
    // SQLite: one replica, which always executes; no election.
    let leader = &body["leader"];
    assert_eq!(leader["enabled"], false, "{leader}");
    assert_eq!(leader["is_leader"], true, "{leader}");
    assert_eq!(leader["holder"], leader["identity"], "{leader}");
    assert_eq!(leader["lock"], "none");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("coordination_engine_leader 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_reports_its_checks() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["certificates_loaded"], true);
    assert_eq!(body["checks"]["store_reachable"], true);
}

#[tokio::test]
async fn tls_off_serves_plain_http() {
    let app = spawn_app_with(|env| {
        env.insert("TLS_MODE".into(), "off".into());
    })
    .await;
    let body: serde_json::Value = reqwest::get(format!("http://{}/health", app.addr))
        .await
        .expect("plain http")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "ok");
    assert!(
        !app.data_dir.path().join("tls").exists(),
        "no cert generated when TLS is off"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let before = app.metrics().await;
    assert!(
        before.contains(r#"coordination_engine_http_requests_total{method="GET",route="/health",status="200"} 0"#),
        "series exists from the first scrape:\n{before}"
    );
    for _ in 0..3 {
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .expect("request");
    }
    app.client
        .get(app.url("/no/such/route/123"))
        .send()
        .await
        .expect("request");
    let after = app.metrics().await;
    assert!(
        after.contains(r#"coordination_engine_http_requests_total{method="GET",route="/health",status="200"} 3"#),
        "{after}"
    );
    assert!(
        after.contains(r#"coordination_engine_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "raw paths never become labels:\n{after}"
    );
    assert!(!after.contains("/no/such/route"));
    assert!(
        after.contains(
            r#"coordination_engine_http_request_duration_seconds_count{route="/health"} 3"#
        )
    );
}

#[tokio::test]
async fn openapi_document_is_public_and_lists_the_routes() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/health",
        "/ready",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/workflows",
        "/api/v1/workflows/{id}",
        "/api/v1/workflows/{id}/approve",
        "/api/v1/workflows/{id}/reject",
        "/api/v1/workflows/{id}/cancel",
        "/api/v1/coordination/workflows",
        "/api/v1/coordination/workflows/{id}",
        "/api/v1/pause",
        "/webhooks/alertmanager",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
