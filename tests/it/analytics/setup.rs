//! A Prometheus serving the backfilled series, the engine pointed at it, and, when asked,
//! the real KServe model server scoring anomalies.

use super::series::openmetrics;
use crate::helpers::{TestApp, spawn_app_with, wait_for};
use crate::peers::{find_binary, free_port, spawn};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A Prometheus serving the backfilled data, and the engine pointed at it.
pub(super) struct Setup {
    pub(super) app: TestApp,
    _prometheus: tokio::process::Child,
    _models: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

pub(super) async fn setup() -> Option<Setup> {
    setup_with(false).await
}

/// With `models`, the real KServe model server scores anomalies too.
pub(super) async fn setup_with(models: bool) -> Option<Setup> {
    // The probe client below is built before any engine starts: this test may run alone.
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let (child, base) = start_prometheus(dir.path()).await?;
    let (model_server, model_url) = if models {
        let port = free_port();
        let server = crate::peers::start_model_server(port).await?;
        (Some(server), Some(format!("http://127.0.0.1:{port}")))
    } else {
        (None, None)
    };
    let app = spawn_app_with(|env| {
        env.insert("PROMETHEUS_URL".into(), base);
        if let Some(url) = model_url {
            env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
            env.insert("KSERVE_ANOMALY_DETECTOR_URL".into(), url.clone());
            env.insert("KSERVE_PREDICTIVE_ANALYTICS_URL".into(), url);
        }
    })
    .await;
    Some(Setup {
        app,
        _prometheus: child,
        _models: model_server,
        _dir: dir,
    })
}

/// Backfills the series into a TSDB under `dir` and serves it; `None` without Prometheus.
async fn start_prometheus(dir: &Path) -> Option<(tokio::process::Child, String)> {
    let prometheus = find_binary("PROMETHEUS_BIN", &["prometheus"])?;
    let promtool = find_binary("PROMTOOL_BIN", &["promtool"])?;
    let now = chrono::Utc::now().timestamp();
    let input = dir.join("series.om");
    std::fs::write(&input, openmetrics(now)).expect("write series");
    let tsdb = dir.join("tsdb");
    let backfill = std::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&tsdb)
        .output()
        .expect("run promtool");
    assert!(
        backfill.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&backfill.stderr)
    );
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("config");
    let port = free_port();
    let child = spawn(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", tsdb.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=30d".to_string(),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_served(&base).await;
    Some((child, base))
}

/// Polls until Prometheus answers with the four pods the backfill holds.
async fn wait_until_served(base: &str) {
    let probe = reqwest::Client::new();
    wait_for(
        "Prometheus to serve the backfilled series",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let answer: Value = probe
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", "count(kube_pod_info)")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (answer["data"]["result"][0]["value"][1] == "4").then_some(())
        },
    )
    .await;
}

/// An integer field, as Go decodes it into an `int`.
pub(super) fn int(value: &Value, field: &str) -> i64 {
    value[field].as_i64().unwrap_or_else(|| {
        panic!("{field} must be a JSON integer (Go decodes it into int): {value}")
    })
}
