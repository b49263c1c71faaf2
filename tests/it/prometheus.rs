//! A real Prometheus scrapes the metrics listener and can query what the engine exports.

use crate::helpers::spawn_app;
use crate::peers::{find_binary, free_port, spawn};
use std::time::{Duration, Instant};

/// Runs an instant query until `accept` likes the first sample value, or fails at the deadline.
async fn wait_for_sample(base: &str, query: &str, accept: impl Fn(f64) -> bool) -> f64 {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = String::new();
    loop {
        tick.tick().await;
        if let Ok(response) = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query)])
            .send()
            .await
            && let Ok(body) = response.json::<serde_json::Value>().await
        {
            let value = body["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok());
            if let Some(value) = value.filter(|v| accept(*v)) {
                return value;
            }
            last = body.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no acceptable sample for {query}; last answer: {last}"
        );
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_metrics_listener() {
    let Some(prometheus) = find_binary("PROMETHEUS_BIN", &["prometheus"]) else {
        return;
    };
    let app = spawn_app().await;
    for _ in 0..5 {
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .expect("request");
    }
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: coordination-engine\n    \
             static_configs:\n      - targets: ['{}']\n",
            app.metrics_addr
        ),
    )
    .expect("config");
    let port = free_port();
    let _prometheus = spawn(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");

    // `up` is 1 only when the exposition parsed cleanly.
    wait_for_sample(&base, r#"up{job="coordination-engine"}"#, |v| v == 1.0).await;
    wait_for_sample(&base, "coordination_engine_build_info", |v| v == 1.0).await;
    let served = wait_for_sample(
        &base,
        r#"coordination_engine_http_requests_total{route="/health",method="GET",status="200"}"#,
        |v| v >= 5.0,
    )
    .await;
    assert_eq!(served, 5.0);
}
