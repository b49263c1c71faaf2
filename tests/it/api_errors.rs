use crate::helpers::{error_body, spawn_app};

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let (code, _) = error_body(response).await;
    assert_eq!(code, "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let app = spawn_app().await;
    for path in ["/health", "/ready", "/api/v1/openapi.json"] {
        let response = app
            .client
            .post(app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 405, "{path}");
        let (code, _) = error_body(response).await;
        assert_eq!(code, "method_not_allowed");
    }
    let response = app
        .client
        .delete(app.url("/api/v1/health"))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_request_id_is_echoed_when_sane_and_replaced_otherwise() {
    let app = spawn_app().await;
    let echoed = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("request");
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc-123");
    let (_, body) = error_body(echoed).await;
    assert_eq!(body["request_id"], "trace-abc-123");

    let too_long = "x".repeat(500);
    let replaced = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &too_long)
        .send()
        .await
        .expect("request");
    let id = replaced.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_ne!(id, too_long);
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
}

#[tokio::test]
async fn generated_request_ids_are_unique() {
    let app = spawn_app().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..20 {
        let response = app
            .client
            .get(app.url("/health"))
            .send()
            .await
            .expect("request");
        ids.insert(
            response.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_string(),
        );
    }
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn metrics_listener_errors_are_json_too() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("http://{}/nope", app.metrics_addr))
        .await
        .expect("request");
    assert_eq!(response.status(), 404);
    let (code, _) = error_body(response).await;
    assert_eq!(code, "not_found");
}
