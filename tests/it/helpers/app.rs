//! The engine in-process: `spawn_app()` and its variants (PostgreSQL, attached to the mock
//! Kubernetes API server), and the typed requests tests make to it.

use super::https_client;
use super::wait_for;
use crate::kube_mock::MockApiServer;
use coordination_engine::config::{self, Sources};
use coordination_engine::startup::Application;
use coordination_engine::store::SqlStore;
use coordination_engine::tls;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct TestApp {
    pub addr: SocketAddr,
    pub compat_addr: Option<SocketAddr>,
    pub store: Arc<SqlStore>,
    pub metrics_addr: SocketAddr,
    pub token: String,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    /// The CA that signed the serving cert (generated in `DATA_DIR/tls` or given).
    pub ca_file: PathBuf,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub async fn get_authed(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request reaches the server")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    /// POSTs raw bytes as JSON with the token (for bodies a typed client would not send).
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    /// Delivers an Alertmanager notification; returns the incident of its first alert.
    pub async fn post_alert(&self, notification: &serde_json::Value) -> String {
        let posted: serde_json::Value = self
            .post_json("/webhooks/alertmanager", notification)
            .await
            .json()
            .await
            .expect("json");
        posted["incident_ids"][0]
            .as_str()
            .expect("an incident id")
            .to_string()
    }

    /// Waits until the pipeline has given the incident a workflow; returns the incident.
    pub async fn incident_with_workflow(&self, incident_id: &str) -> serde_json::Value {
        let path = format!("/api/v1/incidents/{incident_id}");
        wait_for(
            "the pipeline to pick the incident up",
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(50),
            || async {
                let incident = self.get_json(&path).await;
                incident["workflow_ids"][0].is_string().then_some(incident)
            },
        )
        .await
    }

    /// Waits until the pipeline's queue is empty. An incident leaves the queue only after its
    /// workflow is recorded (a crash in between starts it again rather than losing it), so
    /// seeing the workflow does not yet mean the queue is drained.
    pub async fn queue_drained(&self) {
        wait_for(
            "the pipeline queue to be empty",
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(20),
            || async {
                let queued = coordination_engine::store::Store::queued_incidents(&*self.store, 10)
                    .await
                    .expect("queue");
                queued.is_empty().then_some(())
            },
        )
        .await
    }

    /// Waits until the metrics text contains every one of `lines` (counters that background
    /// tasks update after the state a test waited for is stored).
    pub async fn metrics_with(&self, lines: &[&str]) -> String {
        wait_for(
            "the metrics to show the expected lines",
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(20),
            || async {
                let text = self.metrics().await;
                lines.iter().all(|line| text.contains(line)).then_some(text)
            },
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("request reaches the server")
    }

    /// Creates an incident through the API and returns its id.
    pub async fn create_incident(&self, body: serde_json::Value) -> String {
        let response = self.post_json("/api/v1/incidents", &body).await;
        assert_eq!(response.status(), 201, "create {body}");
        let created: serde_json::Value = response.json().await.expect("json");
        created["incident_id"]
            .as_str()
            .expect("incident_id")
            .to_string()
    }

    /// GET with the token, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get_authed(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json")
    }

    /// Another process's write lock on the database: the store cannot commit until the
    /// returned connection rolls back (`release_store`).
    pub async fn lock_store(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let db = self.data_dir.path().join("coordination-engine.db");
        let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("open the database");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut blocker)
            .await
            .expect("lock");
        blocker
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("metrics listener answers")
            .text()
            .await
            .expect("metrics body")
    }
}

/// Base environment for a test app: ephemeral ports, loopback, a temp data dir.
pub fn test_env(data_dir: &Path) -> HashMap<String, String> {
    [
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PORT", "0"),
        ("METRICS_PORT", "0"),
        ("TLS_RELOAD_INTERVAL", "50ms"),
        ("LOG_LEVEL", "warn"),
        ("SHUTDOWN_TIMEOUT", "5s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("DATA_DIR".to_string(), data_dir.display().to_string())])
    .collect()
}

/// The server with embedded defaults (TLS auto: a generated CA and cert).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The server on a fresh PostgreSQL database (`DATABASE_URL`), or `None` when no test server
/// is configured (the caller skips; under `REQUIRE_PEERS` it fails instead).
pub async fn spawn_app_on_postgres() -> Option<TestApp> {
    let url = coordination_engine::store::testing::fresh_postgres_database().await?;
    let app = spawn_app_with(|env| {
        env.insert("DATABASE_URL".into(), url);
    })
    .await;
    assert_eq!(
        app.store.backend(),
        coordination_engine::store::sql::Backend::Postgres
    );
    Some(app)
}

/// The server with extra environment settings.
pub async fn spawn_app_with(customise: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    tls::install_default_provider();
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let mut env = test_env(data_dir.path());
    customise(&mut env);
    let ca_file = match env.remove("TEST_CA_FILE") {
        Some(file) => PathBuf::from(file),
        None => PathBuf::from(&env["DATA_DIR"]).join("tls").join("ca.crt"),
    };
    let tls_off = env.get("TLS_MODE").is_some_and(|mode| mode == "off");
    let settings = config::load(&Sources { files: vec![], env }).expect("test settings are valid");
    let app = Application::build(settings).await.expect("app builds");
    let (addr, metrics_addr, compat_addr) = (app.api_addr, app.metrics_addr, app.compat_addr);
    let store = app.store.clone();
    let token = app.token.expose().to_string();
    tokio::spawn(app.run_until_stopped());
    let client = if tls_off {
        reqwest::Client::new()
    } else {
        https_client(&ca_file)
    };
    TestApp {
        addr,
        compat_addr,
        store,
        metrics_addr,
        token,
        client,
        data_dir,
        ca_file,
    }
}

/// The engine attached to `mock` (a kubeconfig for it in the data dir) with checkpoints of
/// 1 s (the mock answers at once), and `env` on top: an empty value unsets a key, back to its
/// default.
pub async fn spawn_attached(mock: &MockApiServer, env: &[(&str, &str)]) -> TestApp {
    spawn_app_with(|vars| {
        let kubeconfig = mock.kubeconfig(Path::new(&vars["DATA_DIR"]));
        vars.insert("KUBECONFIG".into(), kubeconfig.display().to_string());
        vars.insert("WORKLOAD_CHECKPOINT_TIMEOUT".into(), "1s".into());
        for (key, value) in env {
            if value.is_empty() {
                vars.remove(*key);
            } else {
                vars.insert(key.to_string(), value.to_string());
            }
        }
    })
    .await
}

/// Releases a lock taken with `TestApp::lock_store`.
pub async fn release_store(mut blocker: sqlx::SqliteConnection) {
    sqlx::query("ROLLBACK")
        .execute(&mut blocker)
        .await
        .expect("unlock");
}
