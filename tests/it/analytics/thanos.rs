//! The Thanos path (a TLS querier behind a ServiceAccount token), against a mock.

use crate::helpers::{error_body, spawn_app_with};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thanos_path_sends_the_rotated_token_trusts_the_ca_and_reports_upstream_errors() {
    use crate::kube_mock::{MockApiServer, Writes};
    coordination_engine::tls::install_default_provider();
    let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
    let vector = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
    let tls_dir = tempfile::tempdir().expect("dir");
    let (thanos, ca) = MockApiServer::start_tls(
        std::collections::HashMap::new(),
        Writes::from([
            (
                ("GET".to_string(), "/api/v1/query_range".to_string()),
                vec![
                    (200, empty.clone()),
                    (200, empty),
                    (
                        400,
                        json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
                    ),
                ],
            ),
            (
                ("GET".to_string(), "/api/v1/query".to_string()),
                vec![(200, vector)],
            ),
        ]),
        tls_dir.path(),
    )
    .await;
    let token = tls_dir.path().join("token");
    std::fs::write(&token, "first-token\n").expect("token");
    let app = spawn_app_with(|env| {
        env.insert("PROMETHEUS_URL".into(), thanos.url.clone());
        env.insert("PROMETHEUS_TOKEN_FILE".into(), token.display().to_string());
        env.insert("PROMETHEUS_CA_FILE".into(), ca.display().to_string());
    })
    .await;
    let first = app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(
        first["status"], "insufficient_data",
        "no series: no made-up numbers"
    );
    // The ServiceAccount token rotates: the next query reads the file again.
    std::fs::write(&token, "rotated-token").expect("token");
    app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    let tokens: Vec<String> = thanos
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/query_range")
        .map(|r| r.authorization.clone())
        .collect();
    assert_eq!(tokens, vec!["Bearer first-token", "Bearer rotated-token"]);
    // Prometheus' own error comes back as a 502 with its message.
    let response = app
        .get_authed("/api/v1/capacity/trends?namespace=shop")
        .await;
    assert_eq!(response.status(), 502);
    let (code, body) = error_body(response).await;
    assert_eq!(code, "upstream_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad_data") && m.contains("parse error")),
        "{body}"
    );
    thanos.stop().await;
}
